"""Write tiny reference FASTAs and VCFs for tests (real files, indexed like the real thing)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pysam

__all__ = ["Rec", "random_sequence", "write_fasta", "write_vcf", "write_bed"]

_HEADER = """##fileformat=VCFv4.2
##FILTER=<ID=PASS,Description="All filters passed">
##FILTER=<ID=LowQual,Description="Low quality">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">
##INFO=<ID=SVLEN,Number=A,Type=Integer,Description="SV length">
##INFO=<ID=END,Number=1,Type=Integer,Description="End position">
##INFO=<ID=VAF,Number=A,Type=Float,Description="Variant allele fraction">
##ALT=<ID=DEL,Description="Deletion">
##ALT=<ID=INS,Description="Insertion">
##ALT=<ID=DUP,Description="Duplication">
##ALT=<ID=INV,Description="Inversion">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
##FORMAT=<ID=VAF,Number=A,Type=Float,Description="Variant allele fraction">
"""


@dataclass
class Rec:
    """One VCF line; ``gt`` holds one genotype per sample (a str for one sample)."""

    chrom: str
    pos: int
    ref: str
    alt: str
    gt: str | tuple[str, ...] = "0/1"
    info: str = "."
    filt: str = "PASS"
    vaf: str | None = None
    extra: dict = field(default_factory=dict)


def random_sequence(length: int, *, seed: int = 1) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice("ACGT") for _ in range(length))


def write_fasta(path: Path, contigs: dict[str, str]) -> Path:
    with open(path, "w") as fh:
        for name, seq in contigs.items():
            fh.write(f">{name}\n")
            for i in range(0, len(seq), 60):
                fh.write(seq[i : i + 60] + "\n")
    pysam.faidx(str(path))
    return path


def write_vcf(
    path: Path,
    records: list[Rec],
    *,
    contigs: dict[str, int],
    samples: tuple[str, ...] = ("S1",),
    compress: bool = True,
) -> Path:
    """Write ``records`` (sorted here) as VCF; bgzip + tabix when ``compress``."""
    lines = [_HEADER.rstrip("\n")]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    head = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
    if samples:
        head += "\tFORMAT\t" + "\t".join(samples)
    lines.append(head)
    order = {c: i for i, c in enumerate(contigs)}
    for r in sorted(records, key=lambda r: (order[r.chrom], r.pos)):
        row = [r.chrom, str(r.pos), ".", r.ref, r.alt, "50", r.filt, r.info]
        if samples:
            gts = (r.gt,) if isinstance(r.gt, str) else r.gt
            if r.vaf is not None:
                row += ["GT:VAF"] + [f"{g}:{r.vaf}" for g in gts]
            else:
                row += ["GT"] + list(gts)
        lines.append("\t".join(row))
    plain = path.with_suffix("") if path.suffix == ".gz" else path
    plain.write_text("\n".join(lines) + "\n")
    if not compress:
        return plain
    return Path(pysam.tabix_index(str(plain), preset="vcf", force=True))


def write_bed(path: Path, intervals: list[tuple[str, int, int]]) -> Path:
    path.write_text("".join(f"{c}\t{s}\t{e}\n" for c, s, e in intervals))
    return path

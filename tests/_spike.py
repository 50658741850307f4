"""Helpers for tests/test_spike.py: write variant VCFs, call variants, binomial bounds."""

from __future__ import annotations

import math
from pathlib import Path

import pysam
import pysam.bcftools

_COMP = {"A": "C", "C": "G", "G": "T", "T": "A"}


def make_variant(fasta: pysam.FastaFile, chrom: str, pos: int, kind: str) -> tuple[str, str]:
    """REF/ALT of a ``snv``, ``mnv``, ``del<N>`` or ``ins<N>`` at 1-based ``pos``."""
    b = fasta.fetch(chrom, pos - 1, pos + 10).upper()
    if kind == "snv":
        return b[0], _COMP[b[0]]
    if kind == "mnv":
        return b[:2], _COMP[b[0]] + _COMP[b[1]]
    n = int(kind[3:])
    if kind.startswith("del"):
        return b[: n + 1], b[0]
    return b[0], b[0] + "".join(_COMP[c] for c in b[1 : n + 1])


def write_vcf(path: Path, contigs: dict[str, int], rows: list[tuple]) -> Path:
    """Write rows ``(chrom, pos, ref, alt, info, gt)`` (gt may be None) as a plain VCF."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    lines += [
        '##INFO=<ID=VAF,Number=1,Type=Float,Description="Requested VAF">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1",
    ]
    for chrom, pos, ref, alt, info, gt in rows:
        lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t{info or '.'}\tGT\t{gt or './.'}")
    path.write_text("\n".join(lines) + "\n")
    return path


def call_variants(bam: Path, fasta: Path, workdir: Path) -> list[pysam.VariantRecord]:
    """bcftools mpileup + call -mv; returns the called records (with AD)."""
    bcf = workdir / f"{bam.stem}.pileup.bcf"
    pysam.bcftools.mpileup(
        "-f", str(fasta), "-a", "AD,DP", "-d", "10000", "-Ob", "-o", str(bcf), str(bam),
        catch_stdout=False,
    )
    out = workdir / f"{bam.stem}.calls.vcf"
    pysam.bcftools.call("-mv", "-o", str(out), str(bcf), catch_stdout=False)
    with pysam.VariantFile(str(out)) as vf:
        return list(vf)


def apply_to_window(ref: str, offset: int, edits: list[tuple[int, str, str]]) -> str:
    """Apply VCF-style edits ``(pos1, REF, ALT)`` to ``ref`` (which starts at 1-based offset+1)."""
    out, cur = [], 0
    for pos, r, a in sorted(edits):
        i = pos - 1 - offset
        assert ref[i : i + len(r)].upper() == r.upper()
        out.append(ref[cur:i])
        out.append(a)
        cur = i + len(r)
    out.append(ref[cur:])
    return "".join(out).upper()


def binom_bounds(n: int, p: float, alpha: float = 1e-3) -> tuple[int, int]:
    """Central ``1 - alpha`` interval of Binomial(n, p) (exact, by summing the pmf)."""
    pmf = [math.comb(n, k) * p**k * (1 - p) ** (n - k) for k in range(n + 1)]
    lo_mass = hi_mass = 0.0
    lo, hi = 0, n
    for k in range(n + 1):
        lo_mass += pmf[k]
        if lo_mass > alpha / 2:
            lo = k
            break
    for k in range(n, -1, -1):
        hi_mass += pmf[k]
        if hi_mass > alpha / 2:
            hi = k
            break
    return lo, hi


def write_sv_vcf(path: Path, contigs: dict[str, int], rows: list[tuple]) -> Path:
    """Write SV rows ``(chrom, pos, ref, alt, info)`` with the SV INFO fields declared."""
    lines = ["##fileformat=VCFv4.2"]
    lines += [f"##contig=<ID={c},length={n}>" for c, n in contigs.items()]
    lines += [
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End">',
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">',
        '##INFO=<ID=SVLEN,Number=1,Type=Integer,Description="SV length">',
        '##INFO=<ID=CN,Number=1,Type=Integer,Description="Copy number">',
        '##INFO=<ID=VAF,Number=1,Type=Float,Description="Requested VAF">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for chrom, pos, ref, alt, info in rows:
        lines.append(f"{chrom}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\t{info}")
    path.write_text("\n".join(lines) + "\n")
    return path


def raw_records(path: Path) -> list[bytes]:
    """Every record of a BAM as its raw uncompressed bytes, in file order."""
    from synthlib.spike.splice import read_uncompressed, skip_header, split_records

    data = read_uncompressed(path)
    return split_records(data[skip_header(data):])


def record_name(raw: bytes) -> str:
    """Read name of a raw BAM record (with its 4-byte length prefix)."""
    l_name = raw[4 + 8]
    return raw[4 + 32: 4 + 32 + l_name - 1].decode()

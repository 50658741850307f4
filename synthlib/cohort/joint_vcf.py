"""Merge genotype blocks into one joint, phased, multi-sample truth VCF (bgzip + tabix).

Blocks of one region are joined column-wise on the union of their sites (a site missing from a
block is homozygous REF there: de novo and spiked sites are private to their carriers), put in
cohort sample order, stripped of sites no sample carries, and written region by region. The
bytes depend only on the cohort, never on how samples were split into blocks.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pysam

from ..errors import SynthError, VariantError
from ..io.bgzf import EOF, compress
from .genotypes import SOURCE_BACKGROUND, GenotypeBlock
from .samples import Sample
from .sources import contig_lengths

__all__ = [
    "merge_blocks",
    "vcf_header",
    "vcf_body",
    "write_joint_vcf",
    "write_vcf_shard",
    "assemble_joint_vcf",
    "write_denovo_vcf",
]


def merge_blocks(blocks: Sequence[GenotypeBlock], *, sample_order: Sequence[str]) -> GenotypeBlock:
    """Join blocks of one region into one block with rows in ``sample_order``.

    Sites no sample carries are dropped.

    Raises
    ------
    VariantError
        Blocks of different regions, a sample in two blocks, or samples missing.
    """
    if not blocks:
        raise VariantError("no blocks to merge")
    region = blocks[0].region
    if any(b.region != region for b in blocks):
        raise VariantError("blocks of different regions cannot be merged", where=region.name)
    ids = [s for b in blocks for s in b.sample_ids]
    if sorted(ids) != sorted(sample_order) or len(set(ids)) != len(ids):
        raise VariantError("blocks must hold each sample of sample_order once", where=region.name)

    # Every block of a region holds the same background sites (in the same order); only the
    # private de novo / spiked sites differ, so only those need a union by key.
    first = blocks[0]
    is_bg = [b.source == SOURCE_BACKGROUND for b in blocks]
    bg_pos = first.pos[is_bg[0]]
    for b, m in zip(blocks, is_bg, strict=True):
        if not (
            np.array_equal(b.pos[m], bg_pos)
            and np.array_equal(b.ref[m], first.ref[is_bg[0]])
            and np.array_equal(b.alt[m], first.alt[is_bg[0]])
        ):
            raise VariantError("blocks disagree on the background sites", where=region.name)
    extra: dict[tuple[int, str, str], tuple[float, str, str, str]] = {}
    for b, m in zip(blocks, is_bg, strict=True):
        for i in np.flatnonzero(~m):
            key = (int(b.pos[i]), b.ref[i], b.alt[i])
            extra.setdefault(key, (float(b.pop_af[i]), b.source[i], b.gene[i], b.csq[i]))
    ekeys = sorted(extra)
    n_bg = bg_pos.size
    pos = np.concatenate([bg_pos, np.array([k[0] for k in ekeys], dtype=np.int64)])
    # Extras never share a position with a background site and are in key order among
    # themselves, so a stable sort on position gives (pos, ref, alt) order.
    order = np.argsort(pos, kind="stable")
    col_of = np.empty(order.size, dtype=np.int64)
    col_of[order] = np.arange(order.size)
    ecol = {k: int(col_of[n_bg + j]) for j, k in enumerate(ekeys)}
    obj = lambda v: np.asarray(v, dtype=object)  # noqa: E731
    f0 = is_bg[0]
    ref = np.concatenate([first.ref[f0], obj([k[1] for k in ekeys])])[order]
    alt = np.concatenate([first.alt[f0], obj([k[2] for k in ekeys])])[order]
    pop_af = np.concatenate([first.pop_af[f0], [extra[k][0] for k in ekeys]])[order]
    source = np.concatenate([first.source[f0], obj([extra[k][1] for k in ekeys])])[order]
    gene = np.concatenate([first.gene[f0], obj([extra[k][2] for k in ekeys])])[order]
    csq = np.concatenate([first.csq[f0], obj([extra[k][3] for k in ekeys])])[order]
    pos = pos[order]

    row = {s: i for i, s in enumerate(sample_order)}
    haps = np.zeros((len(sample_order), pos.size, 2), dtype=np.int8)
    for b, m in zip(blocks, is_bg, strict=True):
        rows = np.array([row[s] for s in b.sample_ids], dtype=np.int64)
        cols = np.empty(b.pos.size, dtype=np.int64)
        cols[m] = col_of[:n_bg]
        cols[~m] = [ecol[(int(b.pos[i]), b.ref[i], b.alt[i])] for i in np.flatnonzero(~m)]
        # Two 1-D scatters (columns, then rows) are much faster than one 2-D fancy index.
        wide = np.zeros((rows.size, pos.size, 2), dtype=np.int8)
        wide[:, cols] = b.haps
        haps[rows] = wide
    carried = haps.any(axis=(0, 2))
    return GenotypeBlock(
        region=region,
        sample_ids=tuple(sample_order),
        pos=pos[carried],
        ref=ref[carried],
        alt=alt[carried],
        pop_af=pop_af[carried],
        source=source[carried],
        gene=gene[carried],
        csq=csq[carried],
        haps=haps[:, carried],
    )


def vcf_header(*, samples: Sequence[Sample], fasta: Path, contigs: Iterable[str]) -> str:
    """The joint VCF header (text, ending with the ``#CHROM`` line)."""
    lengths = contig_lengths(fasta)
    lines = [
        "##fileformat=VCFv4.2",
        "##source=synthlib.cohort",
        f"##reference={fasta.name}",
        *(f"##contig=<ID={c},length={lengths[c]}>" for c in contigs),
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="ALT allele count in the cohort">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Alleles in the cohort">',
        '##INFO=<ID=AF,Number=A,Type=Float,Description="ALT allele frequency in the cohort">',
        '##INFO=<ID=POP_AF,Number=A,Type=Float,Description="Overall population AF of the '
        'source (0 for de novo and spiked variants)">',
        '##INFO=<ID=SRC,Number=1,Type=String,Description="Origin: background (population or '
        'panel), denovo (trio child) or spike (damaging variant put in cases)">',
        '##INFO=<ID=GENE,Number=1,Type=String,Description="Gene of a spiked damaging variant">',
        '##INFO=<ID=CSQ,Number=1,Type=String,Description="Consequence of a spiked damaging '
        'variant: truncating (frameshift indel) or missense (exonic SNV, label only)">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        "\t".join(
            ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT"]
            + [s.sample for s in samples]
        ),
    ]
    return "\n".join(lines) + "\n"


def vcf_body(block: GenotypeBlock) -> bytes:
    """Records of a merged block as VCF text (uncompressed bytes), sites in order.

    Genotype columns are built as one (n_sites, n_samples, 4) byte array ``a|b\\t``.
    """
    n_samples, n_sites, _ = block.haps.shape
    if n_sites == 0:
        return b""
    gt = np.empty((n_sites, n_samples, 4), dtype=np.uint8)
    gt[:, :, 0] = block.haps[:, :, 0].T + ord("0")
    gt[:, :, 1] = ord("|")
    gt[:, :, 2] = block.haps[:, :, 1].T + ord("0")
    gt[:, :, 3] = ord("\t")
    gt[:, -1, 3] = ord("\n")
    ac = block.haps.sum(axis=(0, 2), dtype=np.int64)
    an = 2 * n_samples
    chrom = block.region.chrom
    out = []
    for i in range(n_sites):
        info = (
            f"AC={ac[i]};AN={an};AF={ac[i] / an:.6g};POP_AF={block.pop_af[i]:.6g};"
            f"SRC={block.source[i]}"
        )
        if block.gene[i]:
            info += f";GENE={block.gene[i]};CSQ={block.csq[i]}"
        out.append(
            f"{chrom}\t{block.pos[i]}\t.\t{block.ref[i]}\t{block.alt[i]}\t.\tPASS\t{info}\tGT\t".encode()
        )
        out.append(gt[i].tobytes())
    return b"".join(out)


def write_joint_vcf(
    merged: Sequence[GenotypeBlock], *, samples: Sequence[Sample], fasta: Path, path: str | Path
) -> Path:
    """Write merged region blocks (in the given order) as a bgzipped, tabix-indexed VCF.

    Written to a temporary file in the destination folder, indexed, then renamed over
    ``path`` (and ``path.tbi``), so readers never see a partial file.

    Raises
    ------
    VariantError
        A block's samples differ from ``samples``, or regions are out of order.
    """
    order = tuple(s.sample for s in samples)
    for b in merged:
        if b.sample_ids != order:
            raise VariantError(
                "merged block samples differ from the samples table", where=b.region.name
            )
    contigs = list(dict.fromkeys(b.region.chrom for b in merged))
    return _write_indexed(
        Path(path),
        vcf_header(samples=samples, fasta=fasta, contigs=contigs),
        (compress(vcf_body(b)) for b in merged),
    )


def write_vcf_shard(block: GenotypeBlock, *, sample_order: Sequence[str], path: str | Path) -> Path:
    """Write one merged region's records as BGZF blocks without the EOF marker.

    Shards of consecutive regions concatenated after the header give exactly the bytes of
    :func:`write_joint_vcf` (see :func:`assemble_joint_vcf`).

    Raises
    ------
    VariantError
        The block's samples are not ``sample_order``.
    """
    if block.sample_ids != tuple(sample_order):
        raise VariantError("merged block samples differ from the samples table",
                           where=block.region.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(compress(vcf_body(block)))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def assemble_joint_vcf(
    shards: Sequence[str | Path],
    *,
    samples: Sequence[Sample],
    fasta: Path,
    contigs: Sequence[str],
    path: str | Path,
) -> Path:
    """Header + region shards (in reference order) + EOF, tabix-indexed, renamed into place.

    Raises
    ------
    VariantError
        A shard is missing. ``SynthError`` if the result cannot be indexed (unsorted shards).
    """
    missing = [str(s) for s in shards if not Path(s).exists()]
    if missing:
        raise VariantError(f"{len(missing)} VCF shards missing, e.g. {missing[0]}")
    return _write_indexed(
        Path(path),
        vcf_header(samples=samples, fasta=fasta, contigs=list(contigs)),
        (Path(s).read_bytes() for s in shards),
    )


def _write_indexed(path: Path, header: str, bodies: Iterable[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".vcf.gz")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(compress(header.encode()))
            for body in bodies:
                fh.write(body)
            fh.write(EOF)
        try:
            pysam.tabix_index(str(tmp), preset="vcf", force=True, index=str(tmp) + ".tbi")
        except (OSError, ValueError) as exc:  # unsorted input is the usual cause
            raise SynthError(f"cannot index joint VCF: {exc}", where=str(path)) from None
        os.replace(str(tmp) + ".tbi", str(path) + ".tbi")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(str(tmp) + ".tbi").unlink(missing_ok=True)
        raise
    return path


def write_denovo_vcf(*, joint_vcf: str | Path, path: str | Path) -> int:
    """Write the joint VCF's de novo records (``SRC=denovo``, all samples' genotypes) as a
    bgzipped, tabix-indexed VCF; return how many there are (0 still writes a valid file).

    ``--no-version`` keeps bcftools from recording its command line (staging paths), so the
    bytes depend on the cohort only.
    """
    import pysam.bcftools

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pysam.bcftools.view("--no-version", "-i", 'INFO/SRC="denovo"', "-Oz", "-o", str(path),
                        str(joint_vcf), catch_stdout=False)
    pysam.tabix_index(str(path), preset="vcf", force=True)
    with pysam.VariantFile(str(path)) as fh:
        return sum(1 for _ in fh)

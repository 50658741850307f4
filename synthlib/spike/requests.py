"""Read the variants to spike from a VCF and check them against the reference.

VAF comes from ``INFO/VAF``, else ``FORMAT/VAF`` of the first sample, else the first sample's
genotype (one ALT copy of two: 0.5; all copies ALT: 1.0). A phased genotype also tells which
haplotype carries the ALT (``0|1`` is haplotype 2, matching ``HP:i:2`` tags).
"""

from __future__ import annotations

from dataclasses import dataclass

import pysam

from ..errors import ReferenceDataError, VariantError
from .edit import Allele

__all__ = ["SpikeRequest", "read_requests"]

_BASES = set("ACGTN")


@dataclass(frozen=True)
class SpikeRequest:
    """One variant to put into the reads.

    Attributes
    ----------
    index
        0-based position in the VCF (used to seed this variant's draws).
    chrom, pos, ref, alt
        As in the VCF (``pos`` 1-based).
    vaf
        Requested fraction of covering reads that carry ALT, in (0, 1].
    haplotype
        1 or 2 when a phased genotype says which haplotype carries ALT, else None.
    allele
        The trimmed edit in 0-based reference coordinates.
    """

    index: int
    chrom: str
    pos: int
    ref: str
    alt: str
    vaf: float
    haplotype: int | None
    allele: Allele

    @property
    def label(self) -> str:
        return f"{self.chrom}:{self.pos} {self.ref}>{self.alt}"

    @property
    def span(self) -> tuple[int, int]:
        """0-based reference interval the VCF record covers (REF bases)."""
        return self.pos - 1, self.pos - 1 + len(self.ref)


def _vaf_of(rec: pysam.VariantRecord, label: str) -> tuple[float, int | None]:
    hap = None
    sample = rec.samples[0] if len(rec.samples) else None
    if sample is not None and "GT" in sample and sample["GT"] and None not in sample["GT"]:
        gt = sample["GT"]
        if sample.phased and len(gt) == 2 and sorted(gt) == [0, 1]:
            hap = gt.index(1) + 1
    if "VAF" in rec.header.info and rec.info.get("VAF") is not None:
        v = rec.info["VAF"]
        return float(v[0] if isinstance(v, tuple) else v), hap
    if sample is not None and "VAF" in rec.header.formats and sample.get("VAF") is not None:
        v = sample["VAF"]
        return float(v[0] if isinstance(v, tuple) else v), hap
    if sample is not None and "GT" in sample and sample["GT"] and None not in sample["GT"]:
        gt = sample["GT"]
        alt_copies = sum(1 for a in gt if a)
        if alt_copies == 0:
            raise VariantError("genotype has no ALT allele and no VAF is given", where=label)
        return alt_copies / len(gt), hap
    raise VariantError("no VAF: give INFO/VAF, FORMAT/VAF or a genotype", where=label)


def read_requests(vcf: str, fasta: pysam.FastaFile) -> list[SpikeRequest]:
    """Parse and check every record of ``vcf``.

    Raises
    ------
    VariantError
        Symbolic/breakend/multi-allelic ALT, non-ACGTN bases, VAF outside (0, 1], REF not
        matching the reference, overlapping variants.
    ReferenceDataError
        Unreadable VCF, or a contig missing from the reference.
    """
    try:
        vf = pysam.VariantFile(vcf)
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot read variants VCF: {exc}", where=str(vcf)) from exc
    lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
    out: list[SpikeRequest] = []
    with vf:
        for i, rec in enumerate(vf):
            alts = rec.alts or ()
            label = f"{rec.chrom}:{rec.pos} {rec.ref}>{','.join(alts) or '.'}"
            if len(alts) != 1:
                raise VariantError("exactly one ALT allele is supported", where=label)
            ref, alt = rec.ref.upper(), alts[0].upper()
            if alt.startswith("<") or "[" in alt or "]" in alt or alt in ("*", "."):
                raise VariantError(
                    "structural/symbolic alleles are not supported yet (SNV, MNV, indel only)",
                    where=label,
                )
            if not set(ref) <= _BASES or not set(alt) <= _BASES:
                raise VariantError("REF/ALT must be A, C, G, T or N", where=label)
            if ref == alt:
                raise VariantError("REF equals ALT", where=label)
            if rec.chrom not in lengths:
                raise ReferenceDataError("contig not in the reference FASTA", where=label)
            if rec.pos - 1 + len(ref) > lengths[rec.chrom]:
                raise VariantError("variant runs past the contig end", where=label)
            ref_seq = fasta.fetch(rec.chrom, rec.pos - 1, rec.pos - 1 + len(ref)).upper()
            if ref_seq != ref:
                raise VariantError(f"REF does not match the reference ({ref_seq})", where=label)
            vaf, hap = _vaf_of(rec, label)
            if not 0.0 < vaf <= 1.0:
                raise VariantError(f"VAF {vaf} is outside (0, 1]", where=label)
            allele = Allele.from_vcf(rec.pos - 1, ref, alt)
            out.append(SpikeRequest(i, rec.chrom, rec.pos, ref, alt, vaf, hap, allele))
    _check_overlaps(out)
    return out


def _check_overlaps(reqs: list[SpikeRequest]) -> None:
    # Two events on touching bases would need a joint haplotype; refuse instead of guessing.
    by_chrom: dict[str, list[SpikeRequest]] = {}
    for r in reqs:
        by_chrom.setdefault(r.chrom, []).append(r)
    for rs in by_chrom.values():
        rs.sort(key=lambda r: r.span)
        for a, b in zip(rs, rs[1:], strict=False):
            if b.span[0] <= a.span[1]:
                raise VariantError(
                    f"overlaps or touches another spike ({a.label}); spike them as one MNV/"
                    "complex allele or move them apart",
                    where=b.label,
                )

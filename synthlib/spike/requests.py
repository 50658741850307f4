"""Read the variants to spike from a VCF and check them against the reference.

Small variants (SNV, MNV, indel) become :class:`SpikeRequest`; records with a symbolic ALT
(``<DEL>``, ``<DUP>``, ``<DUP:TANDEM>``, ``<INV>``, ``<INS>``, ``<CNV>``) or an ``INFO/SVTYPE``
become :class:`SVRequest` (read replacement, see :mod:`synthlib.spike.replace`).

VAF comes from ``INFO/VAF``, else ``FORMAT/VAF`` of the first sample, else the first sample's
genotype (one ALT copy of two: 0.5; all copies ALT: 1.0). A phased genotype also tells which
haplotype carries the ALT (``0|1`` is haplotype 2, matching ``HP:i:2`` tags).
"""

from __future__ import annotations

from dataclasses import dataclass

import pysam

from ..errors import ReferenceDataError, VariantError
from .edit import Allele

__all__ = ["SpikeRequest", "SVRequest", "read_requests", "read_spike_vcf"]

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


@dataclass(frozen=True)
class SVRequest:
    """One structural variant to put into the reads by replacing a region's pairs.

    Attributes
    ----------
    index
        0-based position in the VCF (seeds this event's draws).
    chrom
        Contig.
    pos
        1-based VCF POS (the anchor base before the event).
    svtype
        ``DEL``, ``DUP`` (tandem), ``INV``, ``INS`` or ``CNV``.
    end
        0-based exclusive end of the affected reference bases (VCF ``END``); ``pos`` for INS.
    vaf
        Fraction of the sample's genome copies carrying the event (CNV: fraction of cells
        at copy number ``cn``), in (0, 1].
    cn
        Total copy number of a CNV, else None.
    sequence
        Inserted bases of an INS (None: random bases of ``size``, drawn from the seed).
    size
        Event length in bases.
    alt
        ALT as written in the VCF.
    """

    index: int
    chrom: str
    pos: int
    svtype: str
    end: int
    vaf: float
    cn: int | None
    sequence: str | None
    size: int
    alt: str
    ref: str = "N"

    @property
    def label(self) -> str:
        return f"{self.chrom}:{self.pos} {self.ref}>{self.alt}"

    @property
    def span(self) -> tuple[int, int]:
        """0-based reference interval touched (anchor base through the last affected base)."""
        return self.pos - 1, max(self.end, self.pos)


_SV_ALTS = {"<DEL>": "DEL", "<DUP>": "DUP", "<DUP:TANDEM>": "DUP", "<INV>": "INV",
            "<INS>": "INS", "<CNV>": "CNV"}


def _info_int(rec: pysam.VariantRecord, key: str) -> int | None:
    if key not in rec.header.info or rec.info.get(key) is None:
        return None
    v = rec.info[key]
    v = v[0] if isinstance(v, tuple) else v
    return int(float(v))


def _sv_request(i: int, rec: pysam.VariantRecord, label: str, lengths: dict[str, int],
                fasta: pysam.FastaFile) -> SVRequest:
    alt = rec.alts[0]
    svtype = _SV_ALTS.get(alt.upper())
    info_type = rec.info.get("SVTYPE") if "SVTYPE" in rec.header.info else None
    if isinstance(info_type, tuple):
        info_type = info_type[0]
    if svtype is None and info_type:
        svtype = {"DUP:TANDEM": "DUP"}.get(str(info_type).upper(), str(info_type).upper())
    if svtype not in ("DEL", "DUP", "INV", "INS", "CNV"):
        raise VariantError(f"SV type {info_type or alt} is not supported (DEL, DUP, INV, INS, "
                           "CNV)", where=label)
    if rec.chrom not in lengths:
        raise ReferenceDataError("contig not in the reference FASTA", where=label)
    pos0 = rec.pos - 1
    anchor = fasta.fetch(rec.chrom, pos0, pos0 + 1).upper()
    if rec.ref.upper()[:1] != anchor:
        raise VariantError(f"REF does not match the reference ({anchor})", where=label)
    svlen = _info_int(rec, "SVLEN")
    sequence = None
    if svtype == "INS":
        if not alt.startswith("<"):
            sequence = alt.upper()[len(rec.ref):]
            if not set(sequence) <= _BASES or not sequence:
                raise VariantError("INS sequence must be A, C, G, T or N after the REF",
                                   where=label)
        size = len(sequence) if sequence else abs(svlen or 0)
        if size < 1:
            raise VariantError("an <INS> needs INFO/SVLEN (or the inserted sequence)", where=label)
        end = pos0 + 1
    else:
        end = rec.stop if rec.stop > pos0 + 1 else (pos0 + 1 + abs(svlen) if svlen else 0)
        if end <= pos0 + 1:
            raise VariantError("a symbolic SV needs INFO/END or INFO/SVLEN", where=label)
        size = end - pos0 - 1
    if end > lengths[rec.chrom]:
        raise VariantError("variant runs past the contig end", where=label)
    cn = None
    if svtype == "CNV":
        cn = _info_int(rec, "CN")
        sample = rec.samples[0] if len(rec.samples) else None
        if cn is None and sample is not None and "CN" in rec.header.formats:
            got = sample.get("CN")
            cn = int(got) if got is not None else None
        if cn is None or cn < 0:
            raise VariantError("a <CNV> needs a copy number (INFO/CN or FORMAT/CN >= 0)",
                               where=label)
        vaf = 1.0
        if "VAF" in rec.header.info and rec.info.get("VAF") is not None:
            v = rec.info["VAF"]
            vaf = float(v[0] if isinstance(v, tuple) else v)
    else:
        vaf, _ = _vaf_of(rec, label)
    if not 0.0 < vaf <= 1.0:
        raise VariantError(f"VAF {vaf} is outside (0, 1]", where=label)
    return SVRequest(i, rec.chrom, rec.pos, svtype, end, vaf, cn, sequence, size, alt,
                     anchor)


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
    """Small variants of ``vcf``; refuses structural ones (see :func:`read_spike_vcf`)."""
    small, svs = read_spike_vcf(vcf, fasta)
    if svs:
        raise VariantError("structural alleles need read replacement: use read_spike_vcf",
                           where=svs[0].label)
    return small


def read_spike_vcf(vcf: str, fasta: pysam.FastaFile
                   ) -> tuple[list[SpikeRequest], list[SVRequest]]:
    """Parse and check every record of ``vcf``: small variants and SVs apart.

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
    svs: list[SVRequest] = []
    with vf:
        for i, rec in enumerate(vf):
            alts = rec.alts or ()
            label = f"{rec.chrom}:{rec.pos} {rec.ref}>{','.join(alts) or '.'}"
            if len(alts) != 1:
                raise VariantError("exactly one ALT allele is supported", where=label)
            ref, alt = rec.ref.upper(), alts[0].upper()
            if "[" in alt or "]" in alt or alt in ("*", "."):
                raise VariantError(
                    "breakend and missing ALT alleles are not supported (SNV, MNV, indel, "
                    "<DEL>, <DUP>, <INV>, <INS>, <CNV>)", where=label)
            has_svtype = "SVTYPE" in rec.header.info and rec.info.get("SVTYPE") is not None
            if alt.startswith("<") or has_svtype:
                svs.append(_sv_request(i, rec, label, lengths, fasta))
                continue
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
    _check_overlaps(out, svs)
    return out, svs


def _check_overlaps(reqs: list[SpikeRequest], svs: list[SVRequest] = ()) -> None:
    # Two events on touching bases would need a joint haplotype; refuse instead of guessing.
    by_chrom: dict[str, list] = {}
    for r in [*reqs, *svs]:
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

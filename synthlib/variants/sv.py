"""Structural variants: copies per haplotype, and placement of explicit and random SVs.

An SV lies inside one grid chunk, at least one read margin (``2 * fragment.max + 64``) past
the chunk start: the previous unit's read window then never sees it, so every unit builds
the same haplotypes around it without looking at other chunks (documented limit: an SV is
at most ``chunk_size - margin`` long).
"""

from __future__ import annotations

import numpy as np

from ..errors import VariantError
from ..reference import Reference
from .model import Variant, normalize

__all__ = ["SV_TYPES", "hap_copies", "sv_margin", "check_sv_fits", "make_sv", "SYMBOLIC"]

#: Spec type name -> VCF SVTYPE.
SV_TYPES = {"deletion": "DEL", "duplication": "DUP", "inversion": "INV",
            "insertion": "INS", "cnv": "CNV", "translocation": "TRA", "complex": "CPX"}
#: SV types written with a symbolic ALT and END.
SYMBOLIC = ("DEL", "DUP", "INV", "CNV")

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)


def hap_copies(v: Variant, hap: int) -> int:
    """Copies of the segment ``[pos + 1, svend)`` on haplotype ``hap`` (1 = reference).

    DEL: 0 where the allele is 1; DUP: 2; CNV: copy number split as ``ceil(CN/2)`` on
    haplotype 0 and ``floor(CN/2)`` on haplotype 1; CPX: see
    :func:`synthlib.variants.complex.cpx_carrier_copies`.
    """
    if v.svtype == "CPX":  # germline variants ride only where nothing is deleted
        from .complex import cpx_carrier_copies

        return cpx_carrier_copies(v, hap)
    if v.svtype == "CNV":
        cn = int(v.cn or 0)
        return (cn + 1) // 2 if hap == 0 else cn // 2
    if not v.gt[hap]:
        return 1
    return {"DEL": 0, "DUP": 2}.get(v.svtype or "", 1)


def cnv_genotype(cn: int) -> tuple[int, int]:
    """Phased GT of a CNV: allele 1 on the haplotypes whose copy count is not 1."""
    return (int((cn + 1) // 2 != 1), int(cn // 2 != 1))


def sv_margin(spec) -> int:
    """Bases an SV keeps from its chunk's start (the read window of the previous unit)."""
    return 2 * spec.fragment.max + 64


def check_sv_fits(spec, chrom: str, pos: int, end: int, *, where: str) -> None:
    """Raise unless ``[pos, end)`` lies in one chunk, a read margin past the chunk start."""
    cs = spec.chunk_size
    lo = (pos // cs) * cs + sv_margin(spec)
    if pos < lo or end > (pos // cs + 1) * cs:
        raise VariantError(
            f"an SV must lie inside one chunk of chunk_size={cs}, at least {sv_margin(spec)} "
            f"bases past its start (here {chrom}:{pos + 1}-{end})", where=where)


def make_sv(
    *, reference: Reference, chrom: str, pos: int, svtype: str, size: int, gt: tuple[int, int],
    vid: str, cn: int | None = None, sequence: str | None = None,
    rng: np.random.Generator | None = None, vaf: float | None = None,
) -> Variant:
    """An SV whose first affected base is ``pos + 1`` (``pos`` is the VCF anchor base).

    Raises
    ------
    VariantError
        If the span covers an N or runs off the contig.
    """
    end = pos + 1 + (0 if svtype == "INS" else size)
    if pos < 0 or end > reference.lengths[chrom]:
        raise VariantError("runs off the contig", where=vid)
    span = reference.fetch(chrom, pos, max(end, pos + 1)).decode()
    if "N" in span:
        raise VariantError("covers an N (unknown) stretch of the reference", where=vid)
    anchor = span[0]
    if svtype == "INS":
        if sequence is None:
            assert rng is not None
            sequence = _ACGT[rng.integers(0, 4, size=size)].tobytes().decode()
        # Left-normalized like any indel, so the truth matches what `bcftools norm` expects.
        npos, nref, nalt = normalize(pos, anchor, anchor + sequence,
                                     lambda a, b: reference.fetch(chrom, a, b).decode())
        return Variant(chrom, npos, nref, nalt, gt=gt, source=_source(vaf), vid=vid,
                       svtype="INS", vaf=vaf)
    if svtype == "CNV":
        gt = cnv_genotype(int(cn or 0))
    if svtype == "DEL":
        # Left-align (bcftools norm does it for <DEL> too): deleting [pos+1, end) equals
        # deleting [pos, end-1) while the anchor base equals the last deleted one.
        while pos > 0 and reference.fetch(chrom, pos, pos + 1) == reference.fetch(
                chrom, end - 1, end):
            pos, end = pos - 1, end - 1
        anchor = reference.fetch(chrom, pos, pos + 1).decode()
        if anchor == "N":
            raise VariantError("left-aligns into an N stretch", where=vid)
    return Variant(chrom, pos, anchor, f"<{svtype}>", gt=gt, source=_source(vaf), vid=vid,
                   svtype=svtype, svend=end, cn=cn, vaf=vaf)


def _source(vaf: float | None) -> str:
    # A somatic SV (with a target VAF) is labelled like a somatic small variant.
    return "spike" if vaf is None else "somatic"

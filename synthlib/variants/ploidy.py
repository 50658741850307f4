"""Per-contig (and per-region) ploidy: sex chromosomes of males, absent chrY of females.

Rules (documented in :class:`synthlib.spec.SampleSpec`):

- ``male``: chrX is haploid outside PAR1/PAR2, diploid inside them; chrY is haploid outside
  its PARs and absent (ploidy 0) inside them: reads of the X/Y PAR pair come from the chrX
  PAR, as with analysis-set references that mask the chrY PARs. PAR coordinates are those of
  GRCh37 or GRCh38, recognised by the contig's exact length; on other builds and toy
  references (short contigs named chrX/chrY) the whole contig follows the non-PAR rule.
- ``female``: chrY absent (ploidy 0: no reads, no variants).
- ``ploidy: {contig: n}`` then overrides whole contigs (0, 1 or 2).

A haploid locus keeps haplotype 0 only: germline alleles drawn on haplotype 0 (present with
probability AF) stay, as GT ``1``; spikes with any carrying genotype (het, hom, 0|1, 1|0)
become ``1``; reads come from that one haplotype at the per-haplotype depth, coverage / 2.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ..errors import VariantError
from .model import Variant

__all__ = ["PAR", "ploidy_map", "ploidy_at", "span_ploidy", "present_intervals",
           "apply_ploidy", "haploid_germline", "sex_contig", "restrict_haplotypes"]

#: Pseudo-autosomal regions, 0-based half-open, keyed by (build, X/Y); with contig lengths.
PAR = {
    ("GRCh37", "X"): [(60_000, 2_699_520), (154_931_043, 155_260_560)],
    ("GRCh37", "Y"): [(10_000, 2_649_520), (59_034_049, 59_363_566)],
    ("GRCh38", "X"): [(10_000, 2_781_479), (155_701_382, 156_030_895)],
    ("GRCh38", "Y"): [(10_000, 2_781_479), (56_887_902, 57_217_415)],
}
_LENGTHS = {("GRCh37", "X"): 155_270_560, ("GRCh37", "Y"): 59_373_566,
            ("GRCh38", "X"): 156_040_895, ("GRCh38", "Y"): 57_227_415}


def sex_contig(name: str) -> str | None:
    """``X`` or ``Y`` for chrX/X/chrY/Y, else None."""
    bare = name[3:] if name.lower().startswith("chr") else name
    return bare.upper() if bare.upper() in ("X", "Y") else None


def _pieces(length: int, par: list[tuple[int, int]], inside: int, outside: int) -> np.ndarray:
    rows, cur = [], 0
    for a, b in par:
        a, b = min(a, length), min(b, length)
        if a > cur:
            rows.append((cur, a, outside))
        if b > a:
            rows.append((a, b, inside))
        cur = max(cur, b)
    if cur < length:
        rows.append((cur, length, outside))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def ploidy_map(*, sex: str | None, overrides: dict[str, int],
               lengths: dict[str, int]) -> dict[str, np.ndarray]:
    """Ploidy of every non-diploid stretch, per contig.

    Parameters
    ----------
    sex
        ``male``, ``female`` or None.
    overrides
        Whole-contig ploidy (0..2), applied last.
    lengths
        Contig lengths of the reference.

    Returns
    -------
    dict of contig -> np.ndarray, shape (k, 3), int64
        Rows ``(start, end, ploidy)`` tiling the whole contig; contigs absent from the map
        are diploid everywhere.

    Raises
    ------
    VariantError
        If ``overrides`` names a contig the reference lacks.
    """
    out: dict[str, np.ndarray] = {}
    for contig, length in lengths.items():
        xy = sex_contig(contig)
        if xy is None or sex is None:
            continue
        if sex == "female":
            if xy == "Y":
                out[contig] = np.array([[0, length, 0]], dtype=np.int64)
            continue
        build = next((b for (b, k), n in _LENGTHS.items() if k == xy and n == length), None)
        par = PAR[(build, xy)] if build else []
        out[contig] = _pieces(length, par, inside=2 if xy == "X" else 0, outside=1)
    for contig, n in overrides.items():
        if contig not in lengths:
            raise VariantError(f"contig {contig!r} is not in the reference",
                               where=f"sample.ploidy.{contig}")
        out[contig] = np.array([[0, lengths[contig], int(n)]], dtype=np.int64)
    return {c: m for c, m in out.items() if (m[:, 2] != 2).any()}


def ploidy_at(pmap: dict[str, np.ndarray], chrom: str, pos: int) -> int:
    """Ploidy at one 0-based position."""
    m = pmap.get(chrom)
    if m is None:
        return 2
    k = int(np.searchsorted(m[:, 0], pos, side="right")) - 1
    return int(m[max(k, 0), 2])


def span_ploidy(pmap: dict[str, np.ndarray], chrom: str, start: int, end: int) -> int | None:
    """Ploidy of ``[start, end)``, or None when the span crosses a ploidy boundary."""
    m = pmap.get(chrom)
    if m is None:
        return 2
    rows = m[(m[:, 0] < max(end, start + 1)) & (m[:, 1] > start)]
    vals = set(rows[:, 2].tolist())
    return vals.pop() if len(vals) == 1 else None


def present_intervals(pmap: dict[str, np.ndarray], chrom: str, slot: int,
                      length: int) -> np.ndarray:
    """Where haplotype ``slot`` (0 or 1) exists: ploidy > slot. Shape (k, 2), merged."""
    m = pmap.get(chrom)
    if m is None:
        return np.array([[0, length]], dtype=np.int64)
    rows = m[m[:, 2] > slot][:, :2]
    if not len(rows):
        return np.zeros((0, 2), dtype=np.int64)
    # Join touching rows (a PAR next to another ploidy-2 stretch never happens, but stay safe).
    out = [list(rows[0])]
    for a, b in rows[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.array(out, dtype=np.int64)


def _haploid(v: Variant) -> Variant | None:
    if v.svtype == "CNV":
        return None
    return replace(v, gt=(1, 0), ploidy=1) if any(v.gt) else None


def apply_ploidy(variants: list[Variant], pmap: dict[str, np.ndarray], *,
                 where_of: Callable[[Variant], str] | None = None) -> list[Variant]:
    """Spikes on non-diploid loci: haploid ones become GT ``1``; absent loci raise.

    Raises
    ------
    VariantError
        Naming the variant, when it lies where the contig is absent (ploidy 0), crosses a
        ploidy boundary (a PAR edge), or is a CNV on a haploid locus (not supported).
    """
    if not pmap and all(v.ploidy == 2 for v in variants):
        return variants
    out = []
    for v in variants:
        where = where_of(v) if where_of else f"{v.vid} {v.label}"
        p = span_ploidy(pmap, v.chrom, v.pos, v.end)
        if p is None:
            raise VariantError("crosses a ploidy boundary (a pseudo-autosomal region edge)",
                               where=where)
        if p == 0:
            raise VariantError(f"{v.chrom} is absent from this sample (ploidy 0 here)",
                               where=where)
        if p == 2 and v.ploidy == 1:
            raise VariantError("haploid genotype on a diploid locus (set sample.sex or "
                               "sample.ploidy)", where=where)
        if p == 1:
            h = _haploid(v)
            if h is None:
                raise VariantError("a CNV on a haploid locus is not supported", where=where)
            v = h
        out.append(v)
    return out


def haploid_germline(variants: list[Variant], pmap: dict[str, np.ndarray]) -> list[Variant]:
    """Germline draws on non-diploid loci: haplotype 0's allele only (present w.p. AF)."""
    if not pmap:
        return variants
    out = []
    for v in variants:
        p = ploidy_at(pmap, v.chrom, v.pos)
        if p == 2:
            out.append(v)
        elif p == 1 and v.gt[0]:
            out.append(replace(v, gt=(1, 0), ploidy=1))
    return out


def restrict_haplotypes(pmap: dict[str, np.ndarray], *, contig: str, territory: np.ndarray,
                        haps: list, slots: list[int], weights: list[float], carriers: list):
    """The simulator's haplotype set with absent haplotype stretches taken out.

    A haplotype slot absent over the whole start ``territory`` (k, 2) is dropped; one absent
    over part of it keeps its weight times the present fraction (so a haploid stretch gets
    the per-haplotype depth, coverage / 2), and its absent bases get anchor -1, which no
    fragment may start on or cross. Without non-diploid stretches on ``contig`` nothing
    changes (same draws, same bytes).

    Returns
    -------
    (haps, slots, weights, carriers), filtered alike.
    """
    if contig not in pmap:
        return haps, slots, weights, carriers
    from ..intervals import intersect, merge, total

    terr = merge(np.asarray(territory, dtype=np.int64).reshape(-1, 2))
    tot = total(terr)
    big = int(pmap[contig][-1, 1])
    out: tuple[list, list, list, list] = ([], [], [], [])
    for hap, slot, w, c in zip(haps, slots, weights, carriers, strict=True):
        present = present_intervals(pmap, contig, slot, big)
        frac = total(intersect(terr, present)) / tot if tot else 0.0
        if frac <= 0:
            continue
        j = np.searchsorted(present[:, 0], hap.anchor, side="right") - 1
        inside = (j >= 0) & (hap.anchor < present[np.maximum(j, 0), 1])
        if not inside.all():
            hap = replace(hap, anchor=np.where(inside, hap.anchor, -1))
        for lst, x in zip(out, (hap, slot, w * frac, c), strict=True):
            lst.append(x)
    return out

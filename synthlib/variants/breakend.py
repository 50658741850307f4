"""Balanced reciprocal translocations: the two breakend variants, their truth records.

A translocation between contig X (break before 0-based ``bpX``) and contig Y (break before
``bpY``) is held as two :class:`Variant` records, one per side, both ``svtype="TRA"``:

- at X: ``pos = bpX - 1`` (the last base kept), ``ref`` = that base and the next one (the
  two bases that get BND records) and ``alt`` the VCF breakend ``t[Y:bpY+1[`` of its own
  junction: on a carrying haplotype X[:bpX] is followed by
  Y[bpY:] (der(X));
- at Y: the same the other way round (der(Y) = Y[:bpY] + X[bpX:]).

Both sides share ``vid`` (the event name). X and Y may be the same contig (two distant
breaks): then der(X) lacks the middle piece and der(Y) is that piece closed on itself, so
copy number stays 2 everywhere and only the two junctions are new (read depth stays flat).
Each side writes two VCF 4.3 BND records (its own junction's left end at ``bpX`` and the
partner junction's right end at ``bpX + 1``), four per event, joined by MATEID and EVENT.
"""

from __future__ import annotations

import re

import numpy as np

from ..errors import VariantError
from ..reference import Reference
from .model import Variant
from .occupancy import Occupancy

__all__ = ["make_translocation", "partner", "breakpoint", "bnd_records", "bnd_bed",
           "junction_pad", "check_breaks_clear", "random_translocations", "TRA"]

#: ``Variant.svtype`` of a translocation side.
TRA = "TRA"

_ALT = re.compile(r"^[ACGTN]\[([^:\[\]]+):(\d+)\[$")


def junction_pad(spec) -> int:
    """Bases each side of a break that must be plain reference (fragments reach that far)."""
    return spec.fragment.max + 64


def breakpoint(v: Variant) -> int:
    """0-based first base after the break on ``v``'s contig."""
    return v.pos + 1


def partner(v: Variant) -> tuple[str, int]:
    """Partner contig and its 0-based first base after the break."""
    m = _ALT.match(v.alt)
    if m is None:
        raise VariantError(f"not a translocation breakend ALT: {v.alt!r}", where=v.vid)
    return m.group(1), int(m.group(2)) - 1


def _side(v: Variant) -> int:
    c2, b2 = partner(v)
    return 0 if (v.chrom, breakpoint(v)) < (c2, b2) else 1


def make_translocation(
    *, reference: Reference, chrom: str, bp: int, chrom2: str, bp2: int, gt: tuple[int, int],
    vid: str, pad: int, vaf: float | None = None, where: str,
) -> list[Variant]:
    """Both sides of a translocation with breaks before 0-based ``bp`` and ``bp2``.

    Raises
    ------
    VariantError
        Naming ``where`` (and the field) when a contig is unknown, a break lies within
        ``pad`` of an N or a contig end, or both breaks on one contig are closer than
        ``4 * pad``.
    """
    for field, c, b in (("chrom/pos", chrom, bp), ("chrom2/pos2", chrom2, bp2)):
        if c not in reference.lengths:
            raise VariantError(f"{field}: contig {c!r} is not in the reference", where=where)
        if b - pad < 0 or b + pad > reference.lengths[c]:
            raise VariantError(f"{field}: the break must be {pad} bases from a contig end",
                               where=where)
        if b"N" in reference.fetch(c, b - pad, b + pad):
            raise VariantError(f"{field}: an N lies within {pad} bases of the break",
                               where=where)
    if chrom == chrom2 and abs(bp - bp2) < 4 * pad:
        raise VariantError(f"pos2: both breaks on {chrom} must be >= {4 * pad} bases apart",
                           where=where)
    src = "somatic" if vaf is not None else "spike"
    out = []
    for c, b, c2, b2 in ((chrom, bp, chrom2, bp2), (chrom2, bp2, chrom, bp)):
        t = reference.fetch(c, b - 1, b + 1).decode()
        out.append(Variant(c, b - 1, t, f"{t[0]}[{c2}:{b2 + 1}[", gt=gt, source=src, vid=vid,
                           svtype=TRA, vaf=vaf))
    return out


def bnd_records(v: Variant, *, info: str) -> str:
    """The two VCF lines of one side: its junction's left end, the partner's right end.

    Parameters
    ----------
    info
        INFO fields shared by both lines (SRC, VT, VAF ...), without SVTYPE/MATEID/EVENT.
    """
    c2, b2 = partner(v)
    bp = breakpoint(v)
    s = _side(v)
    gt = f"{v.gt[0]}|{v.gt[1]}"
    own, other = f"{v.vid}_j{s + 1}", f"{v.vid}_j{2 - s}"
    t, u = v.ref[0], v.ref[1]
    left = (f"{v.chrom}\t{bp}\t{own}a\t{t}\t{v.alt}\t.\tPASS\t{info};SVTYPE=BND;"
            f"MATEID={own}b;EVENT={v.vid}\tGT\t{gt}\n")
    right = (f"{v.chrom}\t{bp + 1}\t{other}b\t{u}\t]{c2}:{b2}]{u}\t.\tPASS\t"
             f"{info};SVTYPE=BND;MATEID={other}a;EVENT={v.vid}\tGT\t{gt}\n")
    return left + right


def bnd_bed(v: Variant) -> str:
    """One truth_sv.bed line for this side's break: the two bases either side of it (the
    partner is in the truth VCF's ALT)."""
    bp = breakpoint(v)
    return f"{v.chrom}\t{bp - 1}\t{bp + 1}\tBND\t{v.vid}\t{v.gt[0]}|{v.gt[1]}\t.\t0\n"


def check_breaks_clear(variants: list[Variant], *, pad: int, what: str) -> None:
    """Raise when another variant lies within ``pad`` bases of a translocation break.

    Junction fragments are built from the plain reference (plus small germline variants)
    that far either side of a break, so no other spike may sit there.
    """
    for v in variants:
        if v.svtype != TRA:
            continue
        bp = breakpoint(v)
        for w in variants:
            if w is v or w.chrom != v.chrom or (w.svtype == TRA and w.vid == v.vid
                                                 and breakpoint(w) == bp):
                continue
            if w.pos < bp + pad and bp - pad < w.end:
                raise VariantError(f"{w.label} lies within {pad} bases of the break of "
                                   f"translocation {v.vid} at {v.chrom}:{bp}", where=what)


def random_translocations(
    *, reference: Reference, territory: list[tuple[str, np.ndarray]],
    occupied: Occupancy, rng: np.random.Generator,
    gts: list[tuple[int, int]], pad: int, vaf: float | None, prefix: str, where: str,
) -> list[Variant]:
    """Place ``len(gts)`` translocations: both breaks uniform on the territory, each with
    ``pad`` accessible bases either side and clear of ``occupied`` (updated in place).

    Raises
    ------
    VariantError
        When the territory is too small or crowded to place them all.
    """
    runs: dict[str, np.ndarray] = {}
    for c, iv in territory:
        runs[c] = np.concatenate([runs.get(c, np.zeros((0, 2), np.int64)), iv])
    lengths = np.array([int((iv[:, 1] - iv[:, 0]).sum()) for _, iv in territory])
    if not len(lengths) or lengths.sum() == 0:
        raise VariantError("no territory to place translocations on", where=where)

    def draw() -> tuple[str, int]:
        k = int(rng.choice(len(territory), p=lengths / lengths.sum()))
        c, iv = territory[k]
        sizes = iv[:, 1] - iv[:, 0]
        j = int(rng.choice(len(iv), p=sizes / sizes.sum()))
        return c, int(iv[j, 0] + rng.integers(0, sizes[j]))

    def fits(c: str, b: int) -> bool:
        iv = runs[c]
        inside = bool(((iv[:, 0] <= b - pad) & (b + pad <= iv[:, 1])).any())
        return inside and not occupied.overlaps(c, b - pad, b + pad)

    out: list[Variant] = []
    for gt in gts:
        for _attempt in range(500):
            (c1, b1), (c2, b2) = draw(), draw()
            if not (fits(c1, b1) and fits(c2, b2)):
                continue
            if c1 == c2 and abs(b1 - b2) < 4 * pad:
                continue
            if (c2, b2) < (c1, b1):
                (c1, b1), (c2, b2) = (c2, b2), (c1, b1)
            try:
                pair = make_translocation(reference=reference, chrom=c1, bp=b1, chrom2=c2,
                                          bp2=b2, gt=gt, vid=f"{prefix}_{len(out) // 2}",
                                          pad=pad, vaf=vaf, where=where)
            except VariantError:
                continue
            for c, b in ((c1, b1), (c2, b2)):
                occupied.add(c, b - pad, b + pad)
            out += pair
            break
        else:
            raise VariantError(
                f"placed only {len(out) // 2} of {len(gts)} translocations: each break needs "
                f"{pad} accessible bases either side, apart from other spikes", where=where)
    return out

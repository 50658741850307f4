"""One-to-one matching of structural variants by type, breakpoints and overlap.

SV callers rarely agree on exact breakpoints, so two SVs match when they have the same
SVTYPE, both breakpoints lie within a tolerance and they overlap reciprocally (insertions:
positions within the tolerance and lengths in the same ratio). Among all candidate pairs,
the best (highest overlap, then closest breakpoints) are taken first, each SV at most once.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass

from ..errors import QCError

__all__ = ["SVCall", "sv_pair_score", "match_svs", "Breakend", "match_breakends",
           "CpxJunction", "CpxPiece", "CpxLayout", "parse_cpx_intervals", "cpx_layout"]


@dataclass(frozen=True, slots=True)
class SVCall:
    """An SV reduced to what matching needs.

    Attributes
    ----------
    chrom
        Contig.
    start, end
        0-based half-open span (``end == start`` for insertions and breakends).
    svtype
        ``DEL``, ``INS``, ``DUP``, ``INV``, ``CNV`` or ``BND``.
    length
        Length of the event in bp (0 when unknown, e.g. an ``<INS>`` without SVLEN).
    """

    chrom: str
    start: int
    end: int
    svtype: str
    length: int


def sv_pair_score(
    a: SVCall, b: SVCall, *, tolerance: int, reciprocal_overlap: float
) -> float | None:
    """How well two SVs agree (in [0, 1], higher is better), or None if they do not match."""
    if a.chrom != b.chrom or a.svtype != b.svtype:
        return None
    if abs(a.start - b.start) > tolerance:
        return None
    if a.svtype in ("INS", "BND"):
        if a.svtype == "BND" or not a.length or not b.length:
            ratio = 1.0
        else:
            ratio = min(a.length, b.length) / max(a.length, b.length)
    else:
        if abs(a.end - b.end) > tolerance:
            return None
        la, lb = max(a.end - a.start, 1), max(b.end - b.start, 1)
        overlap = min(a.end, b.end) - max(a.start, b.start)
        ratio = max(overlap, 0) / max(la, lb)
    if ratio < reciprocal_overlap:
        return None
    # Breakpoint distance only breaks ties between equally overlapping candidates.
    dist = abs(a.start - b.start) + (0 if a.svtype in ("INS", "BND") else abs(a.end - b.end))
    return ratio - dist / (4.0 * (tolerance + 1) * 1000.0)


def match_svs(
    truth: list[SVCall],
    query: list[SVCall],
    *,
    tolerance: int = 500,
    reciprocal_overlap: float = 0.5,
) -> list[tuple[int, int]]:
    """Pair truth and query SVs one-to-one.

    Parameters
    ----------
    truth, query
        SVs of each side; indices into these lists are returned.
    tolerance
        Largest allowed distance (bp) between corresponding breakpoints.
    reciprocal_overlap
        Smallest overlap as a fraction of the longer event (insertions: smallest length
        ratio), in [0, 1].

    Returns
    -------
    list of tuple
        ``(truth_index, query_index)`` pairs, best-scoring first.
    """
    if tolerance < 0:
        raise QCError(f"SV breakpoint tolerance must be >= 0, got {tolerance}")
    if not 0.0 <= reciprocal_overlap <= 1.0:
        raise QCError(f"SV reciprocal overlap must be in [0, 1], got {reciprocal_overlap}")
    by_key: dict[tuple[str, str], tuple[list[int], list[int]]] = {}
    for qi in sorted(range(len(query)), key=lambda i: query[i].start):
        q = query[qi]
        starts, idx = by_key.setdefault((q.chrom, q.svtype), ([], []))
        starts.append(q.start)
        idx.append(qi)
    cands: list[tuple[float, int, int]] = []
    for ti, t in enumerate(truth):
        entry = by_key.get((t.chrom, t.svtype))
        if entry is None:
            continue
        starts, idx = entry
        lo = bisect.bisect_left(starts, t.start - tolerance)
        hi = bisect.bisect_right(starts, t.start + tolerance)
        for k in range(lo, hi):
            qi = idx[k]
            s = sv_pair_score(
                t, query[qi], tolerance=tolerance, reciprocal_overlap=reciprocal_overlap
            )
            if s is not None:
                cands.append((-s, ti, qi))
    cands.sort()
    used_t: set[int] = set()
    used_q: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, ti, qi in cands:
        if ti in used_t or qi in used_q:
            continue
        used_t.add(ti)
        used_q.add(qi)
        pairs.append((ti, qi))
    return pairs


@dataclass(frozen=True, slots=True)
class Breakend:
    """A BND record reduced to its two ends: ``(chrom, pos)`` here and at its mate (0-based)."""

    chrom: str
    pos: int
    mate_chrom: str
    mate_pos: int


def match_breakends(
    truth: list[Breakend], query: list[Breakend], *, tolerance: int = 500
) -> list[tuple[int, int]]:
    """Pair breakends one-to-one when both ends lie within ``tolerance`` (either end order,
    since callers report a junction from either side); closest total distance first.

    Returns
    -------
    list of tuple
        ``(truth_index, query_index)`` pairs.
    """
    if tolerance < 0:
        raise QCError(f"SV breakpoint tolerance must be >= 0, got {tolerance}")

    def dist(a: Breakend, b: Breakend) -> int | None:
        best = None
        for (c1, p1, c2, p2) in ((b.chrom, b.pos, b.mate_chrom, b.mate_pos),
                                 (b.mate_chrom, b.mate_pos, b.chrom, b.pos)):
            if c1 == a.chrom and c2 == a.mate_chrom:
                d1, d2 = abs(p1 - a.pos), abs(p2 - a.mate_pos)
                if d1 <= tolerance and d2 <= tolerance:
                    best = d1 + d2 if best is None else min(best, d1 + d2)
        return best

    cands = sorted((d, ti, qi) for ti, t in enumerate(truth) for qi, q in enumerate(query)
                   if (d := dist(t, q)) is not None)
    used_t: set[int] = set()
    used_q: set[int] = set()
    pairs: list[tuple[int, int]] = []
    for _, ti, qi in cands:
        if ti not in used_t and qi not in used_q:
            used_t.add(ti)
            used_q.add(qi)
            pairs.append((ti, qi))
    return pairs


# --- complex SVs (<CPX>): junctions and per-piece copy number from CPX_TYPE + CPX_INTERVALS

_CPX_IV = re.compile(r"^(DEL|DUP|INV|INS)_([^:]+):(\d+)-(\d+)$")


@dataclass(frozen=True, slots=True)
class CpxJunction:
    """One adjacency of a complex event's haplotype that the reference does not have.

    It joins breakend ``(pos1, side1)`` to ``(pos2, side2)`` (``pos1 <= pos2``); side ``R`` is
    the right end of a reference segment (``pos`` = its last base + 1), ``L`` a left end
    (``pos`` = its first base). ``svtype`` is the orientation class a split read or a
    discordant pair reports for it: ``DEL`` (R then L further right), ``DUP`` (L then R),
    ``INV`` (R-R or L-L). ``inserted``: novel bases between the two ends.
    """

    svtype: str
    pos1: int
    side1: str
    pos2: int
    side2: str
    inserted: int = 0


@dataclass(frozen=True, slots=True)
class CpxPiece:
    """A reference interval ``[start, end)`` whose copies on a carrying haplotype differ
    from 1: ``DEL`` (0 copies) or ``DUP`` (``copies`` >= 2)."""

    kind: str
    start: int
    end: int
    copies: int


@dataclass(frozen=True, slots=True)
class CpxLayout:
    """A complex event decomposed: envelope ``[start, end)``, the carrying haplotype over it
    as ``blocks`` (``(a, b, reverse)`` reference intervals or ``(-1, n, False)`` for ``n``
    novel bases), its junctions and its deleted/duplicated pieces."""

    subtype: str
    chrom: str
    start: int
    end: int
    blocks: tuple
    junctions: tuple[CpxJunction, ...]
    pieces: tuple[CpxPiece, ...]


def parse_cpx_intervals(items) -> list[tuple[str, str, int, int]]:
    """``TYPE_chrom:start-end`` (1-based, inclusive) -> ``(TYPE, chrom, a, b)`` 0-based
    half-open; ``INS_chrom:p-p`` (insertion after base ``p``) -> ``(INS, chrom, p, p)``."""
    out = []
    for it in items:
        m = _CPX_IV.match(str(it).strip())
        if not m:
            raise QCError(f"bad CPX_INTERVALS item {it!r}")
        kind, chrom, a, b = m.group(1), m.group(2), int(m.group(3)), int(m.group(4))
        out.append((kind, chrom, a, a) if kind == "INS" else (kind, chrom, a - 1, b))
    return out


def _blocks(subtype: str, comps: list[tuple[str, str, int, int]], ins_len: int | None):
    """(envelope start, end, blocks) of a subtype from its components, written from the
    gnomAD-SV definitions (not from the simulator's piece lists)."""
    kinds = tuple(c[0] for c in comps)
    iv = [(c[2], c[3]) for c in comps]
    want = {"delINV": ("DEL", "INV"), "INVdel": ("INV", "DEL"),
            "delINVdel": ("DEL", "INV", "DEL"), "dupINV": ("DUP", "INV"),
            "INVdup": ("INV", "DUP"), "dDUP": ("DUP", "INS"),
            "dDUP_INV": ("DUP", "INV", "INS"), "delINS": ("DEL", "INS")}
    if subtype not in want:
        raise QCError(f"unknown CPX_TYPE {subtype!r}")
    if kinds != want[subtype]:
        raise QCError(f"{subtype}: CPX_INTERVALS kinds {kinds}, expected {want[subtype]}")
    if subtype in ("delINV", "INVdel", "delINVdel"):
        s, e = iv[0][0], iv[-1][1]
        inv = iv[kinds.index("INV")]
        return s, e, ((inv[0], inv[1], True),)
    if subtype == "dupINV":  # dup head [s, s+d), then the whole [s, e) inverted
        (s, d_end), (_, e) = iv
        return s, e, ((s, d_end, False), (s, e, True))
    if subtype == "INVdup":  # [s, e) inverted, then the tail [e-d, e) again
        (s, e), (d0, _) = iv
        return s, e, ((s, e, True), (d0, e, False))
    if subtype in ("dDUP", "dDUP_INV"):  # source [s, s+d) copied to the sink q
        (s, d_end), q = iv[0], iv[-1][0]
        return s, q, ((s, q, False), (s, d_end, subtype == "dDUP_INV"))
    (s, e), n = iv[0], ins_len  # delINS
    return s, e, ((-1, int(n or 0), False),)


def _adjacency(x: tuple[int, str], y: tuple[int, str]) -> CpxJunction | None:
    """Junction joining breakend ``x`` (exit of one block) to ``y`` (entry of the next)."""
    (p, sp), (q, sq) = sorted((x, y))
    if sp == sq:
        return CpxJunction("INV", p, sp, q, sq)
    if p == q:  # a right end joined to the left end at the same point: the reference
        return None
    if sp == "R":  # R at p, L at q > p: a deletion-type jump
        return CpxJunction("DEL", p, "R", q, "L")
    return CpxJunction("DUP", p, "L", q, "R")


def cpx_layout(*, subtype: str, chrom: str, intervals, ins_len: int | None = None
               ) -> CpxLayout:
    """Decompose a ``<CPX>`` record into junctions and per-piece copy numbers.

    Parameters
    ----------
    subtype
        ``INFO/CPX_TYPE`` (delINV, INVdel, delINVdel, dupINV, INVdup, dDUP, dDUP_INV, delINS).
    intervals
        ``INFO/CPX_INTERVALS`` items.
    ins_len
        Novel bases of a delINS, if known (the VCF record does not carry them: its SVLEN is
        the envelope's); only reported, matching does not use it.
    """
    comps = parse_cpx_intervals(intervals)
    if any(c[1] != chrom for c in comps):
        raise QCError(f"{subtype}: CPX_INTERVALS on another contig than {chrom}")
    s, e, blocks = _blocks(subtype, comps, ins_len)
    hap = [(s - 1, s, False), *blocks, (e, e + 1, False)]  # flanks as 1-base stand-ins
    junctions, pending, ins = [], None, 0
    for a, b, rev in hap:
        if a < 0:  # novel bases: carried over to the next reference block
            ins += b
            continue
        entry = (b, "R") if rev else (a, "L")
        if pending is not None:
            j = _adjacency(pending, entry)
            if j is None and ins:  # novel sequence at a reference-continuous point
                j = CpxJunction("INS", pending[0], "R", entry[0], "L")
            if j is not None:
                junctions.append(CpxJunction(j.svtype, j.pos1, j.side1, j.pos2, j.side2,
                                             ins))
        pending, ins = ((a, "L") if rev else (b, "R")), 0
    cuts = sorted({s, e, *[x for a, b, _ in blocks if a >= 0 for x in (a, b) if s <= x <= e]})
    pieces = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        n = sum(1 for x, y, _ in blocks if x >= 0 and x <= a and b <= y)
        if n != 1 and b > a:
            pieces.append(CpxPiece("DEL" if n == 0 else "DUP", a, b, n))
    return CpxLayout(subtype, chrom, s, e, tuple(blocks), tuple(junctions), tuple(pieces))

"""One-to-one matching of structural variants by type, breakpoints and overlap.

SV callers rarely agree on exact breakpoints, so two SVs match when they have the same
SVTYPE, both breakpoints lie within a tolerance and they overlap reciprocally (insertions:
positions within the tolerance and lengths in the same ratio). Among all candidate pairs,
the best (highest overlap, then closest breakpoints) are taken first, each SV at most once.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from ..errors import QCError

__all__ = ["SVCall", "sv_pair_score", "match_svs", "Breakend", "match_breakends"]


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

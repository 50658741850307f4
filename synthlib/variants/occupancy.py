"""Bases already taken by placed variants, per contig, with fast overlap queries.

Random placement asks "does [lo, hi) touch anything placed?" once per candidate; a linear scan
made planning quadratic (30,000 spikes took 22 s). Intervals are kept sorted by start with the
longest length seen, so a query looks only at starts in ``(lo - longest, hi)``. Batches of
candidates are asked and added at once (:meth:`Occupancy.overlaps_many`,
:meth:`Occupancy.add_many`) with numpy.
"""

from __future__ import annotations

import bisect

import numpy as np

__all__ = ["Occupancy"]


class Occupancy:
    """Half-open intervals per contig (overlapping ones allowed)."""

    def __init__(self) -> None:
        self._starts: dict[str, list[int]] = {}
        self._ends: dict[str, list[int]] = {}
        self._longest: dict[str, int] = {}

    def add(self, chrom: str, lo: int, hi: int) -> None:
        starts = self._starts.setdefault(chrom, [])
        ends = self._ends.setdefault(chrom, [])
        k = bisect.bisect_right(starts, lo)
        starts.insert(k, lo)
        ends.insert(k, hi)
        self._longest[chrom] = max(self._longest.get(chrom, 0), hi - lo)

    def overlaps(self, chrom: str, lo: int, hi: int) -> bool:
        """Whether ``[lo, hi)`` overlaps any interval of ``chrom``."""
        starts = self._starts.get(chrom)
        if not starts:
            return False
        ends = self._ends[chrom]
        first = bisect.bisect_right(starts, lo - self._longest[chrom])
        last = bisect.bisect_left(starts, hi)
        return any(ends[i] > lo for i in range(first, last))

    def add_many(self, chrom: str, lo: np.ndarray, hi: np.ndarray) -> None:
        """Add intervals ``[lo[i], hi[i])`` of ``chrom`` at once."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        if not len(lo):
            return
        starts = np.concatenate([np.asarray(self._starts.get(chrom, []), np.int64), lo])
        ends = np.concatenate([np.asarray(self._ends.get(chrom, []), np.int64), hi])
        order = np.argsort(starts, kind="stable")
        self._starts[chrom] = starts[order].tolist()
        self._ends[chrom] = ends[order].tolist()
        self._longest[chrom] = max(self._longest.get(chrom, 0), int((hi - lo).max()))

    def overlaps_many(self, chrom: str, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Whether each ``[lo[i], hi[i])`` overlaps any interval of ``chrom``: bool (n,)."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        starts = self._starts.get(chrom)
        if not starts or not len(lo):
            return np.zeros(len(lo), dtype=bool)
        s = np.asarray(starts, dtype=np.int64)
        # The largest end among the intervals starting in [first, last): a range maximum,
        # by reduceat over a sentinel-padded copy (an empty range reads the sentinel).
        e = np.append(np.asarray(self._ends[chrom], dtype=np.int64), np.iinfo(np.int64).min)
        first = np.searchsorted(s, lo - self._longest[chrom], side="right")
        last = np.searchsorted(s, hi, side="left")
        empty = last <= first
        first = np.where(empty, len(s), first)
        last = np.where(empty, len(s), last)
        bounds = np.empty(2 * len(lo), dtype=np.int64)
        bounds[0::2], bounds[1::2] = first, last
        top = np.maximum.reduceat(e, bounds)[0::2]
        return top > lo

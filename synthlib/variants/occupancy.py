"""Bases already taken by placed variants, per contig, with fast overlap queries.

Random placement asks "does [lo, hi) touch anything placed?" once per candidate; a linear scan
made planning quadratic (30,000 spikes took 22 s). Intervals are kept sorted by start with the
longest length seen, so a query looks only at starts in ``(lo - longest, hi)``.
"""

from __future__ import annotations

import bisect

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

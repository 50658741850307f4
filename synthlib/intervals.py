"""Interval arithmetic on sorted (k, 2) int64 arrays of half-open [start, end) ranges."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ReferenceDataError

__all__ = ["merge", "intersect", "subtract", "total", "read_bed", "parse_region"]


def merge(iv: np.ndarray) -> np.ndarray:
    """Sort and merge overlapping or touching intervals. Shape (k, 2) -> (k', 2)."""
    if len(iv) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out = [list(iv[0])]
    for s, e in iv[1:]:
        if s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return np.array(out, dtype=np.int64)


def intersect(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two merged interval sets. Shapes (k, 2), (m, 2) -> (j, 2)."""
    out = []
    i = j = 0
    while i < len(a) and j < len(b):
        s, e = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if s < e:
            out.append((s, e))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a`` without the bases of ``b`` (both merged). Shapes (k, 2), (m, 2) -> (j, 2)."""
    if not len(a) or not len(b):
        return a
    lo, hi = min(int(a[0, 0]), int(b[0, 0])), max(int(a[-1, 1]), int(b[-1, 1]))
    gaps = np.column_stack([np.concatenate(([lo], b[:, 1])), np.concatenate((b[:, 0], [hi]))])
    return intersect(a, gaps[gaps[:, 1] > gaps[:, 0]])


def total(iv: np.ndarray) -> int:
    """Bases covered by merged intervals."""
    return int((iv[:, 1] - iv[:, 0]).sum()) if len(iv) else 0


def parse_region(region: str) -> tuple[str, int | None, int | None]:
    """``chr:1,000-2,000`` (1-based inclusive) -> ``("chr", 999, 2000)`` (0-based half-open)."""
    chrom, _, rng = region.partition(":")
    if not rng:
        return chrom, None, None
    a, _, b = rng.replace(",", "").partition("-")
    return chrom, int(a) - 1, int(b)


def read_bed(path: Path, *, padding: int = 0) -> dict[str, np.ndarray]:
    """Read a BED file into merged per-contig intervals, each padded on both sides.

    Raises
    ------
    ReferenceDataError
        Naming ``file:line`` for a malformed line.
    """
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            parts = line.rstrip("\n").split("\t")
            try:
                chrom, s, e = parts[0], int(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                raise ReferenceDataError(
                    "BED line needs CHROM<tab>START<tab>END with integer coordinates",
                    where=f"{path}:{lineno}",
                ) from None
            if s < 0 or e <= s:
                raise ReferenceDataError(f"bad interval {s}-{e}", where=f"{path}:{lineno}")
            by_chrom.setdefault(chrom, []).append((max(0, s - padding), e + padding))
    return {c: merge(np.array(v, dtype=np.int64)) for c, v in by_chrom.items()}

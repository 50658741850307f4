"""Coverage metrics over per-base depth arrays (QC and tests).

``fold80_penalty`` follows Picard's FOLD_80_BASE_PENALTY: the fold over-coverage needed to bring
80% of the (non-zero-coverage) target bases to the mean, i.e. mean / 20th percentile.
"""

from __future__ import annotations

import numpy as np

from ..errors import QCError

__all__ = ["depth_from_intervals", "fold80_penalty", "coverage_stats"]


def depth_from_intervals(*, starts: np.ndarray, ends: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Per-base depth over ``[lo, hi)`` of half-open intervals (reads), by a difference array.

    Parameters
    ----------
    starts, ends : np.ndarray, shape (n,), int
        Read intervals ``[start, end)``; parts outside ``[lo, hi)`` are ignored.

    Returns
    -------
    np.ndarray, shape (hi - lo,), int64
    """
    if hi < lo:
        raise QCError(f"empty window {lo}-{hi}", where="depth_from_intervals")
    s = np.clip(np.asarray(starts, dtype=np.int64) - lo, 0, hi - lo)
    e = np.clip(np.asarray(ends, dtype=np.int64) - lo, 0, hi - lo)
    diff = np.zeros(hi - lo + 1, dtype=np.int64)
    np.add.at(diff, s, 1)
    np.add.at(diff, e, -1)
    return np.cumsum(diff[:-1])


def _check(depth: np.ndarray) -> np.ndarray:
    d = np.asarray(depth)
    if d.ndim != 1 or not d.size:
        raise QCError("depth must be a non-empty 1-D array", where="coverage")
    if (d < 0).any():
        raise QCError("depth must be non-negative", where="coverage")
    return d.astype(np.float64)


def fold80_penalty(depth: np.ndarray, *, exclude_zero: bool = True) -> float:
    """Picard's fold-80 base penalty: mean depth / 20th-percentile depth over target bases.

    Parameters
    ----------
    depth : np.ndarray, shape (n,)
        Depth at every target base (concatenated over targets).
    exclude_zero
        Picard computes it over non-zero-coverage bases; ``False`` keeps every base.

    Returns
    -------
    float
        >= 1 for any depth profile; ``inf`` when the 20th percentile is 0.
    """
    d = _check(depth)
    if exclude_zero:
        d = d[d > 0]
        if not d.size:
            return float("inf")
    # Picard reads the percentile off the coverage histogram: the lowest depth reaching 20%.
    p20 = float(np.quantile(d, 0.2, method="inverted_cdf"))
    return float(d.mean() / p20) if p20 > 0 else float("inf")


def coverage_stats(depth: np.ndarray) -> dict:
    """Summary of a depth array (one dict of plain floats, JSON-ready).

    Returns
    -------
    dict
        ``bases``, ``mean``, ``median``, ``sd``, ``p20``, ``fold80``, ``zero_fraction`` and
        ``pct_ge`` (fraction of bases with depth >= 1, 10, 20, 30, 50, 100).
    """
    d = _check(depth)
    f80 = fold80_penalty(d)
    return {
        "bases": int(d.size),
        "mean": float(d.mean()),
        "median": float(np.median(d)),
        "sd": float(d.std()),
        "p20": float(np.quantile(d, 0.2, method="inverted_cdf")),
        "fold80": f80 if np.isfinite(f80) else None,
        "zero_fraction": float((d == 0).mean()),
        "pct_ge": {str(t): float((d >= t).mean()) for t in (1, 10, 20, 30, 50, 100)},
    }

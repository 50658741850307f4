"""Fisher's exact test (two-sided) and multiple-testing adjustments, in plain numpy.

The hypergeometric probabilities use log-factorials (``math.lgamma``), exact enough for
cohort-sized tables (N up to millions).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["fisher_exact", "bonferroni", "benjamini_hochberg"]

# Tables whose probability equals the observed one up to rounding count as "as extreme"
# (the same relative tolerance R and scipy use).
_REL_TOL = 1 + 1e-7


def _log_comb(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def fisher_exact(*, a: int, b: int, c: int, d: int) -> tuple[float, float]:
    """Two-sided Fisher's exact test of the 2x2 table ``[[a, b], [c, d]]``.

    Returns
    -------
    (odds_ratio, p_value)
        Sample odds ratio ``a*d / (b*c)`` (``inf`` when only ``b*c`` is 0, ``nan`` when both
        products are 0), and the sum of the probabilities of every table with the same margins
        that is no more likely than the observed one.
    """
    if min(a, b, c, d) < 0:
        raise ValueError(f"counts must be >= 0, got {(a, b, c, d)}")
    n_row1, n_col1, n = a + b, a + c, a + b + c + d
    num, den = a * d, b * c
    odds = num / den if den else (math.inf if num else math.nan)
    if n == 0:
        return odds, 1.0
    lo, hi = max(0, n_row1 - (n - n_col1)), min(n_row1, n_col1)
    x = np.arange(lo, hi + 1)
    logp = np.array(
        [_log_comb(n_col1, int(k)) + _log_comb(n - n_col1, n_row1 - int(k)) for k in x]
    ) - _log_comb(n, n_row1)
    p = np.exp(logp)
    p_obs = p[a - lo]
    return odds, float(min(1.0, p[p <= p_obs * _REL_TOL].sum()))


def bonferroni(p: np.ndarray) -> np.ndarray:
    """(m,) Bonferroni-adjusted p-values ``min(1, m * p)``."""
    p = np.asarray(p, dtype=np.float64)
    return np.minimum(1.0, p * p.size)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """(m,) Benjamini-Hochberg q-values (step-up, monotone, capped at 1)."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    scaled = p[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(q, 1.0)
    return out

"""Duplicate marking of the QC alignment and the duplicate fraction the spec's library predicts.

Marking follows the standard pair rule (Picard MarkDuplicates, ``samtools markdup``): two
pairs are duplicates when both mates map to the same contig with the same unclipped 5'
positions and strands (read 1 and read 2 kept apart); one pair per set stays unmarked. It uses
only the re-aligned coordinates, never the simulator's flags.

Expected fraction. The simulator (``synthlib.reads.duplicates``) makes ``d ~ Binomial(n, r)``
copies of ``n - d`` unique molecules, each copy at its source's coordinates, so every copy is
marked. On top of that, two unique molecules collide by chance when they share start, length
and orientation. With ``rho_u`` unique fragment starts per base (locally), orientation 1/2 and
the spec's length pmf ``f(L)``, a cell (start, L, orientation) holds ``Poisson(mu)`` molecules,
``mu = rho_u f(L) / 2``, and ``mu - 1 + exp(-mu) ~ mu^2 / 2`` of them are marked by chance.
Summed over both orientations and the lengths, a window of ``W`` bases adds
``W rho_u^2 S / 4`` marked pairs, ``S = sum_L f(L)^2``. The local density comes from the
aligned fragment starts (``c`` pairs in a window: ``rho_u^2`` estimated without bias by
``(1 - r)^2 c (c - 1) / W^2``), which follows depth, capture and GC bias as they really are.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import QCError
from ..reads.fragments import fragment_distribution
from ..spec import DatasetSpec

__all__ = ["mark_duplicate_pairs", "fragment_length_pmf", "expected_duplicate_fraction",
           "DENSITY_WINDOW"]

#: Window (bases) over which the fragment-start density is taken as constant.
DENSITY_WINDOW = 50


def mark_duplicate_pairs(keys: np.ndarray) -> np.ndarray:
    """Duplicate flags of read pairs by their alignment key.

    Parameters
    ----------
    keys : np.ndarray, int64 (n, 5)
        Per pair: contig index, unclipped 5' position of read 1, its strand (0/1), unclipped
        5' position of read 2, its strand. Pairs whose mates map to different contigs or are
        unmapped should not be passed.

    Returns
    -------
    np.ndarray, bool (n,)
        True for every pair of a set of identical keys except its first (in input order).
    """
    k = np.asarray(keys, np.int64)
    if k.ndim != 2 or k.shape[1] != 5:
        raise QCError(f"duplicate keys must have shape (n, 5), got {k.shape}")
    n = len(k)
    if n == 0:
        return np.zeros(0, bool)
    order = np.lexsort(k.T[::-1])  # stable: within a set, input order is kept
    s = k[order]
    same = np.concatenate(([False], np.all(s[1:] == s[:-1], axis=1)))
    out = np.zeros(n, bool)
    out[order] = same
    return out


def fragment_length_pmf(spec: DatasetSpec, *, base_dir: Path | None = None
                        ) -> tuple[np.ndarray, np.ndarray]:
    """The fragment lengths the simulator draws and their probabilities, int64 (N,) and
    float64 (N,): the rounded, truncated normal or the empirical histogram
    (``synthlib.reads.fragments.fragment_distribution``)."""
    d = fragment_distribution(spec, base_dir=base_dir)
    return d.lengths, d.probabilities


def expected_duplicate_fraction(*, spec: DatasetSpec, keys: np.ndarray,
                                window: int = DENSITY_WINDOW, base_dir: Path | None = None
                                ) -> dict:
    """Marked fraction the spec predicts for these aligned pairs, with its standard error.

    Parameters
    ----------
    spec
        Gives the duplicate rate ``library.duplicates.rate`` and the fragment lengths.
    keys : np.ndarray, int64 (n, 5)
        As for ``mark_duplicate_pairs``; their fragment starts give the local density.
    base_dir
        Resolves a relative empirical fragment histogram of the spec.

    Returns
    -------
    dict
        ``expected`` (fraction of pairs), ``rate`` (the spec's), ``coincidental`` (expected
        chance collisions, pairs), ``sum_f2`` (``S``), ``se`` (binomial copies plus Poisson
        chance collisions, as a fraction), ``pairs``.
    """
    k = np.asarray(keys, np.int64)
    n = len(k)
    r = float(spec.library.duplicates.rate)
    _, pmf = fragment_length_pmf(spec, base_dir=base_dir)
    s2 = float(np.sum(pmf ** 2))
    if n == 0:
        return {"expected": None, "rate": r, "coincidental": 0.0, "sum_f2": s2, "se": None,
                "pairs": 0}
    start = np.minimum(k[:, 1], k[:, 3])
    _, c = np.unique(np.stack([k[:, 0], start // window], axis=1), axis=0,
                     return_counts=True)
    c = c.astype(np.float64)
    coincidental = float(s2 * (1 - r) ** 2 * np.sum(c * (c - 1)) / (4 * window))
    marked = n * r + coincidental
    var = n * r * (1 - r) + coincidental
    return {"expected": marked / n, "rate": r, "coincidental": coincidental, "sum_f2": s2,
            "se": math.sqrt(var) / n, "pairs": n}

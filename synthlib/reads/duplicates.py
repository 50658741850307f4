"""PCR and optical duplicates: which output fragments copy which unique molecule.

A library of ``n`` output fragments with duplicate rate ``r`` holds ``d ~ Binomial(n, r)``
duplicates of ``n - d`` unique molecules; each duplicate copies a molecule chosen uniformly
(so family sizes are ~Poisson, as for PCR duplicates of a complex library). A duplicate copies
the source's coordinates (same fragment, same strand, same haplotype) but gets its own
sequencing errors. A fraction ``optical_fraction`` of the duplicates are optical (the same
cluster read twice on a neighbouring tile); both kinds are flagged 0x400 when marked, the first
copy of a family never is (as Picard MarkDuplicates leaves one representative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError

__all__ = ["DUPLICATE_FLAG", "DuplicatePlan", "duplicate_plan", "duplicate_flags"]

#: SAM flag bit of a duplicate read.
DUPLICATE_FLAG = 0x400


@dataclass(frozen=True)
class DuplicatePlan:
    """Output fragments as copies of unique molecules, grouped by family.

    Attributes
    ----------
    n_unique
        Unique molecules to draw (the caller draws this many fragments).
    source : np.ndarray, shape (n,), int64
        Molecule each output fragment copies, non-decreasing (a family is contiguous, its
        unflagged first copy first), so sorted molecules give sorted output.
    is_duplicate : np.ndarray, shape (n,), bool
    is_optical : np.ndarray, shape (n,), bool
        Subset of ``is_duplicate``.
    """

    n_unique: int
    source: np.ndarray
    is_duplicate: np.ndarray
    is_optical: np.ndarray

    @property
    def rate(self) -> float:
        """Realized duplicate fraction."""
        return float(self.is_duplicate.mean()) if len(self.source) else 0.0


def duplicate_plan(
    *, rng: np.random.Generator, n_fragments: int, rate: float, optical_fraction: float = 0.0
) -> DuplicatePlan:
    """Plan ``n_fragments`` output fragments with duplicate fraction ~ ``rate``.

    Draw order: the duplicate count (one binomial), the source of each duplicate, the optical
    flags (one uniform per duplicate).

    Parameters
    ----------
    n_fragments
        Output fragments (read pairs), >= 0.
    rate
        Expected duplicate fraction in [0, 1); the realized one is ``Binomial(n, rate) / n``.
    optical_fraction
        Fraction of duplicates that are optical, in [0, 1].
    """
    if n_fragments < 0:
        raise ModelError(f"n_fragments must be >= 0, got {n_fragments}", where="duplicate_plan")
    if not 0 <= rate < 1:
        raise ModelError(f"duplicate rate must be in [0, 1), got {rate}", where="duplicate_plan")
    if not 0 <= optical_fraction <= 1:
        raise ModelError(f"optical_fraction must be in [0, 1], got {optical_fraction}",
                         where="duplicate_plan")
    d = int(rng.binomial(n_fragments, rate)) if n_fragments else 0
    n_unique = n_fragments - d
    if n_unique == 0 and d:  # every output needs a molecule to copy
        n_unique, d = 1, d - 1
    dup_src = np.sort(rng.integers(0, n_unique, size=d)) if d else np.zeros(0, np.int64)
    optical_dup = rng.random(d) < optical_fraction
    source = np.concatenate([np.arange(n_unique, dtype=np.int64), dup_src.astype(np.int64)])
    is_dup = np.concatenate([np.zeros(n_unique, bool), np.ones(d, bool)])
    is_opt = np.concatenate([np.zeros(n_unique, bool), optical_dup])
    # Stable by source: each family's original (listed first) leads its copies.
    order = np.argsort(source, kind="stable")
    return DuplicatePlan(n_unique=n_unique, source=source[order], is_duplicate=is_dup[order],
                         is_optical=is_opt[order])


def duplicate_flags(is_duplicate: np.ndarray, *, mark: bool) -> np.ndarray:
    """SAM flag bits to OR into each read: 0x400 on duplicates when ``mark``, else 0.

    Returns
    -------
    np.ndarray, shape (n,), uint16
    """
    dup = np.asarray(is_duplicate, dtype=bool)
    return np.where(dup & mark, DUPLICATE_FLAG, 0).astype(np.uint16)

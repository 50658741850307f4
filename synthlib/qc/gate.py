"""The QC gate: every conformance metric becomes a check with a declared threshold.

Defaults live in :data:`DEFAULT_THRESHOLDS`; callers override any key with a ``thresholds``
dict (a future spec ``qc:`` section would feed it). A check whose inputs are missing, or that
does not apply to the assay or depth, is ``skipped`` and does not affect the verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..errors import QCError

__all__ = ["Check", "DEFAULT_THRESHOLDS", "resolve_thresholds", "verdict_of", "make_check"]

#: Default thresholds; the comment after each says what it bounds.
DEFAULT_THRESHOLDS: dict[str, float] = {
    "snv_recall_min": 0.99,          # recall of SNVs in confident territory
    "indel_recall_min": 0.95,        # recall of insertions + deletions
    "precision_min": 0.99,           # precision of all small-variant calls
    "spike_recall_min": 0.95,        # recall of the variants the spec asked for
    "calling_min_coverage": 20.0,    # recall/precision are gated only at this depth or more
    "confident_fraction_min": 0.90,  # confident territory / territory
    "coverage_rel_tol": 0.05,        # |mean depth / spec coverage - 1|
    "fold80_rel_excess_max": 0.15,   # fold-80 <= Poisson fold-80 * (1 + this)
    "insert_mean_se": 3.0,           # |mean - expected| <= this * SE + insert_mean_rel * mean
    "insert_mean_rel": 0.01,
    "insert_sd_rel": 0.05,           # |sd - expected| <= 3 SE(sd) + this * expected
    "quality_cycle_se": 5.0,         # per cycle |mean Q - model| <= this * SE + quality_cycle_abs
    "quality_cycle_abs": 0.5,
    "mismatch_rel_tol": 0.15,        # golden BAM mismatch rate vs model, relative
    "read_mismatch_rel_tol": 0.25,   # re-aligned FASTQ mismatch rate vs model, relative
    "mapped_fraction_min": 0.98,     # reads with a primary alignment in the QC BAM
    "duplicate_rate_se": 4.0,        # |marked pair fraction - spec expectation| <= this * SE
    "duplicate_rate_rel": 0.05,      # + this * expected (copies whose mate fails to align)
    "duplicate_rate_abs": 0.001,     # + this (repeats: distinct molecules aligned alike)
    "on_target_min": 0.70,           # exome/panel: reads overlapping padded targets
    "titv_low": 1.8,                 # germline SNV Ti/Tv in [low, high] widened by 3 SE
    "titv_high": 2.4,
    "titv_min_snvs": 200.0,          # fewer germline SNVs: Ti/Tv reported, not gated
    "vaf_inside_min": 0.95,          # somatic: variants whose alt count is inside the binomial
    "vaf_interval_level": 0.999,     # interval of this coverage around the target VAF
    "sv_recall_min": 0.95,           # SVs found by the read-evidence caller / truth SVs
    "sv_breakpoint_tol": 50.0,       # bp between a split-read junction and a truth breakpoint
    "sv_depth_z": 4.0,               # depth ratio within this many SE (+ sv_depth_abs) of CN/2
    "sv_depth_abs": 0.15,
    "off_target_tol": 0.05,          # |on-target fraction - expected (off_target, landing)|
    "target_coverage_rel_tol": 0.25,  # |mean on-target depth / spec coverage - 1|
    "capture_fold80_max": 3.0,       # fold-80 over targets (typical exome 1.5-2.5)
}


@dataclass(frozen=True)
class Check:
    """One gate check.

    Attributes
    ----------
    name
        Stable identifier (``coverage_mean``, ``snv_recall``, ...).
    status
        ``pass``, ``fail`` or ``skipped``.
    value
        What was measured (None when skipped for lack of data).
    expected
        What the spec/model says (None when the check is a bound only).
    low, high
        The accepted interval (None for an open side).
    source
        Where the value comes from (``golden.bam``, ``qc.bam``, ``reads_R1.fastq.gz``...).
    note
        Why skipped, or how the tolerance was derived.
    """

    name: str
    status: str
    value: float | None
    expected: float | None
    low: float | None
    high: float | None
    source: str
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _finite(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def make_check(name: str, value: float | None, *, low: float | None = None,
               high: float | None = None, expected: float | None = None, source: str = "",
               note: str = "", skip: str | None = None) -> Check:
    """A check that passes when ``low <= value <= high`` (open sides ignored).

    ``skip`` (a reason) or a missing value makes it ``skipped``.
    """
    value, low, high, expected = map(_finite, (value, low, high, expected))
    if skip or value is None:
        return Check(name, "skipped", value, expected, low, high, source,
                     skip or note or "no data")
    ok = (low is None or value >= low) and (high is None or value <= high)
    return Check(name, "pass" if ok else "fail", value, expected, low, high, source, note)


def resolve_thresholds(overrides: dict | None) -> dict[str, float]:
    """Defaults updated with ``overrides``.

    Raises
    ------
    QCError
        For an unknown key or a non-numeric value.
    """
    out = dict(DEFAULT_THRESHOLDS)
    for k, v in (overrides or {}).items():
        if k not in DEFAULT_THRESHOLDS:
            raise QCError(f"unknown QC threshold {k!r} (known: {', '.join(DEFAULT_THRESHOLDS)})",
                          where="thresholds")
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise QCError(f"threshold {k!r} must be a number, got {v!r}", where="thresholds")
        out[k] = float(v)
    return out


def verdict_of(checks: list[Check]) -> str:
    """``fail`` if any check failed, else ``pass``."""
    return "fail" if any(c.status == "fail" for c in checks) else "pass"

"""GC bias: the GC fraction of fragments and the probability a fragment survives library prep.

Library prep loses GC-extreme fragments (PCR favours mid-GC templates; hybrid capture loses
AT-rich and GC-rich baits). The model is a documented acceptance curve

    p(gc) = exp(-|(gc - centre) / width| ** power)

which is 1 at ``centre``, unimodal, symmetric and smooth, applied by rejection sampling: a drawn
fragment is kept with probability ``p(gc)``. Curves (``CURVES``):

* ``pcr-free``: centre 0.45, width 0.35, power 4: flat between 0.25 and 0.65 GC (p >= 0.899),
  dropping only at the extremes (p(0.1) ~ 0.37), like PCR-free WGS.
* ``pcr``: centre 0.47, width 0.22, power 2: a Gaussian-like bell (p(0.3) ~ 0.55,
  p(0.65) ~ 0.51), like amplified libraries.
* ``capture``: centre 0.50, width 0.25, power 2: per-target capture efficiency factor
  (baits at extreme GC hybridize poorly).
* ``none``: p = 1.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from ..errors import ModelError

__all__ = ["CURVES", "GcCurve", "fragment_gc", "gc_acceptance", "gc_content"]

GcCurve = Literal["none", "pcr-free", "pcr", "capture"]

#: curve name -> (centre, width, power) of ``exp(-|(gc - centre) / width| ** power)``.
CURVES: dict[str, tuple[float, float, float]] = {
    "pcr-free": (0.45, 0.35, 4.0),
    "pcr": (0.47, 0.22, 2.0),
    "capture": (0.50, 0.25, 2.0),
}

_IS_GC = np.zeros(256, dtype=np.int64)
_IS_GC[list(b"GCgc")] = 1
_IS_ACGT = np.zeros(256, dtype=np.int64)
_IS_ACGT[list(b"ACGTacgt")] = 1


def fragment_gc(*, hap_seq: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """GC fraction of each fragment ``hap_seq[start:start + length]``, in O(len(seq) + n).

    Parameters
    ----------
    hap_seq : np.ndarray, shape (m,), uint8
        Sequence (ASCII bytes) the fragments lie on.
    starts, lengths : np.ndarray, shape (n,), int
        Fragments; each must lie within ``hap_seq``.

    Returns
    -------
    np.ndarray, shape (n,), float64
        G+C over A+C+G+T bases (N excluded); 0.5 for a fragment with no ACGT base.
    """
    seq = np.asarray(hap_seq)
    if seq.dtype != np.uint8 or seq.ndim != 1:
        raise ModelError("hap_seq must be a 1-D uint8 array", where="fragment_gc")
    s = np.asarray(starts, dtype=np.int64)
    e = s + np.asarray(lengths, dtype=np.int64)
    if s.shape != e.shape:
        raise ModelError("starts and lengths differ in shape", where="fragment_gc")
    if len(s) and (s.min() < 0 or e.max() > len(seq) or (e < s).any()):
        raise ModelError("a fragment lies outside hap_seq", where="fragment_gc")
    gc = np.concatenate(([0], np.cumsum(_IS_GC[seq])))
    acgt = np.concatenate(([0], np.cumsum(_IS_ACGT[seq])))
    n_gc = gc[e] - gc[s]
    n_acgt = acgt[e] - acgt[s]
    return np.where(n_acgt > 0, n_gc / np.maximum(n_acgt, 1), 0.5)


def gc_content(seq: bytes) -> float:
    """GC fraction of one sequence (N excluded; 0.5 when it has no ACGT base)."""
    a = np.frombuffer(seq, dtype=np.uint8)
    n = int(_IS_ACGT[a].sum())
    return float(_IS_GC[a].sum()) / n if n else 0.5


def gc_acceptance(gc: np.ndarray, *, curve: GcCurve = "pcr-free") -> np.ndarray:
    """Probability that a fragment (or bait) of GC fraction ``gc`` survives, in (0, 1].

    Parameters
    ----------
    gc : np.ndarray, shape (n,)
        GC fractions in [0, 1].
    curve
        ``none``, ``pcr-free``, ``pcr`` or ``capture`` (see the module docstring).

    Returns
    -------
    np.ndarray, shape (n,), float64
    """
    g = np.asarray(gc, dtype=np.float64)
    if g.size and (np.nanmin(g) < 0 or np.nanmax(g) > 1 or np.isnan(g).any()):
        raise ModelError("GC fractions must lie in [0, 1]", where="gc_acceptance")
    if curve == "none":
        return np.ones_like(g)
    if curve not in CURVES:
        raise ModelError(f"unknown GC curve {curve!r}; known: none, {', '.join(CURVES)}",
                         where="gc_acceptance")
    centre, width, power = CURVES[curve]
    return np.exp(-(np.abs((g - centre) / width) ** power))

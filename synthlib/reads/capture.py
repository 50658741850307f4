"""Hybrid-capture (exome/panel) fragment placement: uneven targets, flanks and off-target reads.

Model (all vectorized, every draw from a passed generator except the per-target efficiencies):

* **Per-target efficiency** ``w_t = LN_t * c(gc_t)``: ``LN_t`` is lognormal with mean 1 and
  log-sd ``sd`` (bait-to-bait variation), ``c`` the ``capture`` GC curve of
  :mod:`synthlib.reads.gcbias` (baits at extreme GC capture poorly). ``LN_t`` comes from a
  counter-based hash of ``(seed, contig index, target start, target end)``: the same target gets
  the same efficiency however the genome is cut into work units, and whichever subset of the
  targets a unit passes in.
* **Flank falloff**: a fragment ``[s, s + L)`` is pulled down by target ``[a, b)`` with
  probability proportional to its overlap with the target, so the start density of fragments of
  target ``t`` is ``w_t * |[s, s + L) & [a, b)|``: a trapezoid reaching ``L`` bases left of the
  target. It is drawn exactly as ``s = x - u`` with ``x ~ U[a, b)`` and ``u ~ U[0, L)``. Depth
  thus peaks over the target and falls off linearly over about one fragment length outside it
  (the "near-target" reads of Picard's HsMetrics).
* **Off-target**: a fraction ``off_target`` of the fragments start uniformly over the accessible
  genome (20-30% is typical of exome kits).

The simulator uses this model for exome/panel specs (``assay.capture.model: capture``, the
default) through :mod:`synthlib.reads.capture_plan`, which draws the same ``s = x - u`` over
haplotype coordinates so depth follows copy number.

With ``sd = 0.3`` (the default here and in :class:`synthlib.reads.library_spec.CaptureSpec`) the
fold-80 base penalty of the on-target read depth over the demo exon BED (137 exons, median
120 bp; 350 bp fragments, 2x150 reads, 100x) is 2.0 on average, 1.7-2.2 over 20 seeds (typical
exome: 1.5-2.5). About 1.76 of it is the flank shape alone (``sd = 0``): short exons under
long fragments are covered less at their edges; ``sd = 0.4`` gives ~2.1, ``0.5`` ~2.3.
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError, ReferenceDataError
from .gcbias import gc_acceptance, gc_content

__all__ = [
    "CAPTURE_STREAM",
    "capture_weights",
    "target_gc",
    "capture_start_mass",
    "draw_capture_fragments",
]

#: First element of the spawn key of the efficiency hash key (next free ``plan.Streams`` value).
CAPTURE_STREAM = 4

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _check_targets(targets: np.ndarray, where: str) -> np.ndarray:
    t = np.asarray(targets, dtype=np.int64).reshape(-1, 2)
    if len(t) and ((t[:, 1] <= t[:, 0]).any() or (t[:, 0] < 0).any()):
        raise ReferenceDataError("targets need 0 <= start < end", where=where)
    return t


def _splitmix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _hash_uniform(key: np.uint64, a: np.ndarray, b: np.ndarray, salt: int) -> np.ndarray:
    """A uniform in (0, 1) per (a, b) pair, a pure function of key, a, b and salt."""
    with np.errstate(over="ignore"):
        x = _splitmix(a.astype(np.uint64) ^ key)
        x = _splitmix(x ^ b.astype(np.uint64))
        x = _splitmix(x ^ np.uint64(salt))
    return ((x >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53


def capture_weights(
    *,
    seed: int,
    contig_index: int,
    targets: np.ndarray,
    gc: np.ndarray | None = None,
    sd: float = 0.3,
    gc_curve: str = "capture",
) -> np.ndarray:
    """Capture efficiency of each target (mean ~1), independent of how the genome is cut.

    Parameters
    ----------
    seed
        The spec seed.
    contig_index
        The contig's number in the reference.
    targets : np.ndarray, shape (k, 2), int
        Bait intervals ``[start, end)`` on the contig (the BED targets; pass the same intervals,
        padded or not, in every work unit: the coordinates are the key).
    gc : np.ndarray, shape (k,), optional
        GC fraction of each target (:func:`target_gc`); None leaves GC out.
    sd
        Log-scale standard deviation of the lognormal bait efficiency (0 = all equal).
    gc_curve
        GC curve of :func:`synthlib.reads.gcbias.gc_acceptance` for the GC factor.

    Returns
    -------
    np.ndarray, shape (k,), float64
        Relative efficiencies ``> 0``.
    """
    t = _check_targets(targets, "capture_weights")
    if sd < 0:
        raise ModelError(f"efficiency sd must be >= 0, got {sd}", where="capture_weights")
    key = np.random.SeedSequence(seed, spawn_key=(CAPTURE_STREAM, contig_index)).generate_state(
        1, np.uint64)[0]
    u1 = _hash_uniform(key, t[:, 0], t[:, 1], 1)
    u2 = _hash_uniform(key, t[:, 0], t[:, 1], 2)
    z = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)  # Box-Muller: one N(0,1) each
    w = np.exp(sd * z - sd * sd / 2.0)
    if gc is not None:
        g = np.asarray(gc, dtype=np.float64)
        if g.shape != (len(t),):
            raise ModelError(f"gc has shape {g.shape}, expected ({len(t)},)",
                             where="capture_weights")
        w = w * gc_acceptance(g, curve=gc_curve)
    return w


def target_gc(*, reference, contig: str, targets: np.ndarray) -> np.ndarray:
    """GC fraction of each target's reference sequence (one fetch per target).

    Parameters
    ----------
    reference : synthlib.reference.Reference
    targets : np.ndarray, shape (k, 2)

    Returns
    -------
    np.ndarray, shape (k,), float64
    """
    t = _check_targets(targets, "target_gc")
    return np.array([gc_content(reference.fetch(contig, int(a), int(b))) for a, b in t],
                    dtype=np.float64)


def _overlap_integral(z: np.ndarray, length: float) -> np.ndarray:
    """H(z) = integral from -inf to z of clip(v, 0, L) dv."""
    z = np.asarray(z, dtype=np.float64)
    return np.where(z <= 0, 0.0, np.where(z <= length, z * z / 2.0,
                                          length * length / 2.0 + length * (z - length)))


def capture_start_mass(
    *, targets: np.ndarray, target_weights: np.ndarray, frag_len: float,
    window: tuple[int, int] | None = None,
) -> float:
    """On-target start mass ``sum_t w_t * len_t * P(start in window | t)`` (fixed length L).

    A work unit owns the fragments starting in its chunk; its share of the on-target fragments
    is ``capture_start_mass(window=chunk) / capture_start_mass(window=None)`` (both over all of
    the contig's targets, or over the genome's by summing contigs).

    Parameters
    ----------
    targets : np.ndarray, shape (k, 2)
    target_weights : np.ndarray, shape (k,)
    frag_len
        Fragment length used for the flank shape (the mean is accurate to first order).
    window
        ``(lo, hi)``: count only starts in ``[lo, hi)``; None counts all.
    """
    t = _check_targets(targets, "capture_start_mass")
    w = np.asarray(target_weights, dtype=np.float64)
    full = w * (t[:, 1] - t[:, 0])
    if window is None:
        return float(full.sum())
    return float((w * _window_mass(t, float(frag_len), window) / float(frag_len)).sum())


def _window_mass(t: np.ndarray, length: float, window: tuple[int, int]) -> np.ndarray:
    """Per target: integral of the overlap density over starts in ``window``, shape (k,)."""
    a, b = t[:, 0].astype(np.float64), t[:, 1].astype(np.float64)

    def below(s: float) -> np.ndarray:  # integral over starts < s
        return _overlap_integral(s + length - a, length) - _overlap_integral(s + length - b,
                                                                             length)

    return below(window[1]) - below(window[0])


def draw_capture_fragments(
    *,
    rng: np.random.Generator,
    n: int,
    targets: np.ndarray,
    target_weights: np.ndarray,
    accessible: np.ndarray,
    frag_lengths: np.ndarray,
    off_target: float = 0.25,
    window: tuple[int, int] | None = None,
    max_rounds: int = 200,
) -> tuple[np.ndarray, np.ndarray]:
    """Fragment starts under the capture model.

    Draw order (fixed, so results depend only on the generator state): off-target flags
    (``n`` uniforms), off-target starts, then on-target starts: without a window one exact
    round of (target, x, u); with one, rounds of (target, start, acceptance) until every
    on-target slot has a start inside ``window``.

    Parameters
    ----------
    rng
        The work unit's generator.
    n
        Fragments to place.
    targets : np.ndarray, shape (k, 2)
        Baits ``[start, end)`` (at least those whose start support ``[a - L, b)`` meets
        ``window``; more is harmless).
    target_weights : np.ndarray, shape (k,)
        From :func:`capture_weights`.
    accessible : np.ndarray, shape (j, 2)
        Merged accessible intervals for off-target fragments (clipped to ``window``).
    frag_lengths : np.ndarray, shape (n,), int
        Length of each fragment (drawn by the caller).
    off_target
        Probability that a fragment is off target, in [0, 1).
    window
        ``(lo, hi)``: every start lies in ``[lo, hi)`` (a work unit's chunk). On-target starts
        follow the model conditioned on the window (exactly within a target; the choice of
        target uses the mean fragment length, see :func:`capture_start_mass`), so units
        drawn with their share of the fragments piece together into the whole-contig draw.

    Returns
    -------
    starts : np.ndarray, shape (n,), int64
        Fragment starts (reference coordinates); the caller checks that ``[s, s + L)`` fits
        its haplotype and accessible territory, as for WGS.
    on_target : np.ndarray, shape (n,), bool
        Whether each fragment was captured (False: off-target).
    """
    if not 0 <= off_target < 1:
        raise ModelError(f"off_target must be in [0, 1), got {off_target}",
                         where="draw_capture_fragments")
    t = _check_targets(targets, "draw_capture_fragments")
    w = np.asarray(target_weights, dtype=np.float64)
    fl = np.asarray(frag_lengths, dtype=np.int64)
    if w.shape != (len(t),) or fl.shape != (n,):
        raise ModelError("target_weights must be (k,) and frag_lengths (n,)",
                         where="draw_capture_fragments")
    acc = np.asarray(accessible, dtype=np.int64).reshape(-1, 2)
    if window is not None:
        lo, hi = window
        acc = np.stack([np.clip(acc[:, 0], lo, hi), np.clip(acc[:, 1], lo, hi)], axis=1)
        acc = acc[acc[:, 1] > acc[:, 0]]
    starts = np.empty(n, dtype=np.int64)
    off = rng.random(n) < off_target
    n_off = int(off.sum())
    if n_off:
        sizes = acc[:, 1] - acc[:, 0]
        if not sizes.sum():
            raise ReferenceDataError("no accessible bases for off-target fragments",
                                     where="draw_capture_fragments")
        cum = np.cumsum(sizes)
        pos = rng.integers(0, cum[-1], size=n_off)
        run = np.searchsorted(cum, pos, side="right")
        starts[off] = acc[run, 0] + pos - (cum[run] - sizes[run])
    pending = np.flatnonzero(~off)
    if not len(pending):
        return starts, ~off
    if window is None:
        _place_free(rng, starts, pending, t, w, fl, max_rounds)
    else:
        _place_in_window(rng, starts, pending, t, w, fl, window, max_rounds)
    return starts, ~off


def _no_room(k: int, window, max_rounds: int) -> ModelError:
    return ModelError(f"window {window} holds almost no on-target start mass "
                      f"({k} fragments unplaced after {max_rounds} rounds)",
                      where="draw_capture_fragments")


def _place_free(rng, starts, pending, t, w, fl, max_rounds) -> None:
    """Exact draw without a window: target by ``w * len``, then ``s = x - u``."""
    mass = w * (t[:, 1] - t[:, 0])
    if not len(t) or mass.sum() <= 0:
        raise ModelError("on-target fragments requested but no target has weight",
                         where="draw_capture_fragments")
    cum = np.cumsum(mass) / mass.sum()
    k = len(pending)
    ti = np.minimum(np.searchsorted(cum, rng.random(k), side="right"), len(t) - 1)
    x = t[ti, 0] + np.floor(rng.random(k) * (t[ti, 1] - t[ti, 0])).astype(np.int64)
    u = np.floor(rng.random(k) * fl[pending]).astype(np.int64)
    starts[pending] = x - u


def _place_in_window(rng, starts, pending, t, w, fl, window, max_rounds) -> None:
    """Draw conditioned on ``lo <= s < hi``.

    The target is chosen by its in-window mass at the mean fragment length (exact when all
    lengths are equal; first-order otherwise, like :func:`capture_start_mass`). Within the
    target, ``s`` is uniform over its feasible starts and kept with probability
    ``overlap(s) / max overlap``: the overlap is a trapezoid, so at least ~half the proposals
    are kept whatever the window.
    """
    lo, hi = window
    lbar, lmax = float(fl[pending].mean()), int(fl[pending].max())
    reach = (t[:, 0] - lmax + 1 < hi) & (t[:, 1] > lo)
    tc, wc = t[reach], w[reach]
    mass = wc * _window_mass(tc, lbar, window) if len(tc) else np.zeros(0)
    if not len(tc) or mass.sum() <= 0:
        mass = wc * _window_mass(tc, float(lmax), window) if len(tc) else mass
    if not len(tc) or mass.sum() <= 0:
        raise _no_room(len(pending), window, 0)
    cum = np.cumsum(mass) / mass.sum()
    for _ in range(max_rounds):
        k = len(pending)
        ti = np.minimum(np.searchsorted(cum, rng.random(k), side="right"), len(tc) - 1)
        a, b, length = tc[ti, 0], tc[ti, 1], fl[pending]
        flo, fhi = np.maximum(lo, a - length + 1), np.minimum(hi, b)  # feasible [flo, fhi)
        span = np.maximum(fhi - flo, 0)
        s = flo + np.floor(rng.random(k) * span).astype(np.int64)
        peak = np.clip(a, flo, np.maximum(fhi - 1, flo))  # a lies on the overlap's plateau

        def overlap(x, a=a, b=b, length=length):
            return np.minimum(x + length, b) - np.maximum(x, a)

        ok = (span > 0) & (rng.random(k) * overlap(peak) < overlap(s))
        starts[pending[ok]] = s[ok]
        pending = pending[~ok]
        if not len(pending):
            return
    raise _no_room(len(pending), window, max_rounds)

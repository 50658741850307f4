"""Hybrid capture wired into a plan: baits, their efficiencies and each unit's read pairs.

What ``coverage`` means for exome/panel (``assay.capture.model: capture``): the **mean read
depth over the target bases** (the BED targets, unpadded, within the spec's regions and
accessible sequence), counting both mates, duplicates included. The read pairs needed for it
are

    N = coverage * T / ((1 - f) * e_on + f * e_off)

with ``T`` the target bases, ``f`` the off-target fraction, ``e_on`` the expected read bases
a captured fragment puts on targets (flanks and neighbouring exons included; estimated once per
plan from 2**18 fragments of the model drawn from a fixed stream of the spec seed, relative
error ~0.2%) and ``e_off = 2 E[min(R, L)] T / A`` for an off-target fragment (uniform over the
``A`` accessible bases). ``Plan.pairs_for`` and :mod:`synthlib.cost` use this same count.

A unit gets ``round(N (1 - f) M_u / M)`` captured pairs, ``M_u`` its share of the on-target
start mass (:func:`synthlib.reads.capture.capture_start_mass` over its chunk, mean fragment
length) and ``round(N f A_u / A)`` off-target pairs, ``A_u`` its accessible bases. Both depend
on the plan only, so they do not change with the number of workers or the order units run in.

Inside a unit (:func:`synthlib.reads.simulate.simulate_unit`), captured fragments are drawn over
haplotype coordinates like WGS fragments: a target base ``x`` is chosen with probability
proportional to its bait's efficiency, a length ``L`` and ``u ~ U[0, L)``, and the start is
``x - u`` (kept when it lies in the unit's chunk: the model conditioned on the window). A
duplicated target thus has its bases twice in the haplotype and gets twice the fragments; a
deleted one none (depth follows copy number). Caveats: both copies of a duplicated target keep
the reference target's efficiency; inserted bases are never baits (fragments reach into them
only through the flanks); the budget of a haplotype with SVs scales by its start mass at the
mean fragment length (first order in the length spread); GC-biased libraries
(``library.gc_bias``) lose a little on-target depth at extreme-GC targets beyond ``e_on``;
starts owned by a translocation junction (:mod:`synthlib.reads.junctions`) are left to it, and
the captured fragments they would have held are drawn elsewhere in the unit.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..intervals import intersect, merge, read_bed, total
from .capture import (
    CAPTURE_STREAM,
    capture_start_mass,
    capture_weights,
    draw_capture_fragments,
    target_gc,
)
from .fragments import draw_fragment_lengths, nominal_fragment_mean

__all__ = [
    "CaptureLayout",
    "CaptureProposal",
    "capture_layout",
    "capture_pairs",
    "whole_counts",
    "pairs_from_sizes",
    "on_target_read_bases",
    "MC_FRAGMENTS",
]

#: Fragments drawn to estimate the on-target read bases of a captured fragment.
MC_FRAGMENTS = 2**18
#: Spawn-key element of that estimate's stream (apart from the contig indices of the weights).
_MC_KEY = 2**32

_CACHE: dict[tuple, CaptureLayout] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True)
class CaptureLayout:
    """The capture model of one plan: baits, efficiencies and the read pairs of every unit.

    Attributes
    ----------
    targets : dict[str, np.ndarray]
        Per contig, (j, 2) merged targets (unpadded) within the planned territory: the bases
        ``coverage`` is the mean depth over.
    baits : dict[str, np.ndarray]
        Per contig, (k, 2) merged baits: targets widened to ``min_bait_length``, clipped to
        the planned territory (targets+padding).
    weights : dict[str, np.ndarray]
        Per contig, (k,) capture efficiencies (:func:`synthlib.reads.capture.capture_weights`).
    target_bases, accessible_bases
        ``T`` and ``A`` of the module docstring.
    e_on, e_off
        Expected read bases on targets of a captured / an off-target fragment.
    total_pairs
        ``N``.
    on_pairs, off_pairs : dict[int, int]
        Captured and off-target read pairs of each unit (by unit index).
    """

    targets: dict[str, np.ndarray]
    baits: dict[str, np.ndarray]
    weights: dict[str, np.ndarray]
    target_bases: int
    accessible_bases: int
    e_on: float
    e_off: float
    total_pairs: float
    on_pairs: dict[int, int]
    off_pairs: dict[int, int]

    def bait_weight_of(self, *, contig: str, ref_pos: np.ndarray) -> np.ndarray:
        """Efficiency of the bait holding each reference position (0 outside baits).

        Parameters
        ----------
        ref_pos : np.ndarray, shape (m,), int64
            Reference positions (negative = inserted base: no bait).

        Returns
        -------
        np.ndarray, shape (m,), float64
        """
        t = self.baits.get(contig)
        out = np.zeros(len(ref_pos), dtype=np.float64)
        if t is None or not len(t):
            return out
        j = np.searchsorted(t[:, 0], ref_pos, side="right") - 1
        inside = (j >= 0) & (ref_pos >= 0) & (ref_pos < t[np.maximum(j, 0), 1])
        out[inside] = self.weights[contig][j[inside]]
        return out


class CaptureProposal:
    """Captured-fragment starts on one haplotype: ``s = x - u`` (see the module docstring).

    Parameters
    ----------
    base_weight : np.ndarray, shape (m,)
        Bait efficiency of each haplotype base (:meth:`CaptureLayout.bait_weight_of`).
    anchor : np.ndarray, shape (m,)
        Reference anchor of each haplotype base.
    lo, hi
        Only target bases anchored in ``[lo, hi)`` are proposed (the chunk plus the longest
        fragment: every other one would put its start outside the chunk).
    """

    def __init__(self, *, base_weight: np.ndarray, anchor: np.ndarray, lo: int, hi: int):
        w = np.asarray(base_weight, dtype=np.float64)
        self.cand = np.flatnonzero((w > 0) & (anchor >= lo) & (anchor < hi))
        self.cum = np.cumsum(w[self.cand])
        self.weight = w

    @property
    def empty(self) -> bool:
        return not len(self.cand)

    def __call__(self, rng: np.random.Generator, flen: np.ndarray) -> np.ndarray:
        """Starts (haplotype indices, possibly negative) for fragments of lengths ``flen``."""
        k = len(flen)
        pick = np.searchsorted(self.cum, rng.random(k) * self.cum[-1], side="right")
        x = self.cand[np.minimum(pick, len(self.cand) - 1)]
        return x - np.floor(rng.random(k) * flen).astype(np.int64)

    def start_mass(self, *, start_ok: np.ndarray, frag_len: float) -> float:
        """Start mass over haplotype indices where ``start_ok`` (box density at ``frag_len``)."""
        length = max(1, int(round(frag_len)))
        c = np.concatenate(([0.0], np.cumsum(self.weight)))
        j = np.flatnonzero(start_ok)
        return float((c[np.minimum(j + length, len(self.weight))] - c[j]).sum() / length)


def whole_counts(expect: np.ndarray) -> np.ndarray:
    """Whole counts summing to ``round(sum(expect))`` by largest remainders, shape like it."""
    expect = np.asarray(expect, dtype=np.float64)
    counts = np.floor(expect).astype(np.int64)
    extra = int(round(expect.sum())) - int(counts.sum())
    if extra > 0:
        counts[np.argsort(-(expect - counts), kind="stable")[:extra]] += 1
    return counts


def on_target_read_bases(*, starts: np.ndarray, lengths: np.ndarray, read_length: int,
                         targets: np.ndarray) -> np.ndarray:
    """Read bases of each pair on ``targets`` (both mates; a mate reads ``min(R, L)`` bases).

    Parameters
    ----------
    starts, lengths : np.ndarray, shape (n,), int
        Fragments ``[s, s + L)``.
    targets : np.ndarray, shape (k, 2)
        Merged target intervals on the same coordinates.

    Returns
    -------
    np.ndarray, shape (n,), int64
    """
    t = np.asarray(targets, dtype=np.int64).reshape(-1, 2)
    cum = np.concatenate(([0], np.cumsum(t[:, 1] - t[:, 0])))

    def upto(x):  # target bases below x
        j = np.searchsorted(t[:, 0], x, side="right") - 1
        jj = np.maximum(j, 0)
        return np.where(j < 0, 0, cum[jj] + np.minimum(x, t[jj, 1]) - t[jj, 0])

    s = np.asarray(starts, dtype=np.int64)
    e = s + np.asarray(lengths, dtype=np.int64)
    r = np.minimum(read_length, e - s)
    return upto(s + r) - upto(s) + upto(e) - upto(e - r)


def _fragment_lengths(rng: np.random.Generator, n: int, spec, base_dir=None) -> np.ndarray:
    # The simulator's truncated normal (synthlib.reads.simulate), drawn in bulk.
    fr = spec.fragment
    if fr.model == "empirical":
        return draw_fragment_lengths(rng=rng, n=n, spec=spec, base_dir=base_dir)
    lo = fr.min if spec.library.adapters else max(fr.min, spec.reads.length)
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:
        draw = np.rint(rng.normal(fr.mean, fr.sd, size=max(64, int((n - len(out)) * 1.3))))
        out = np.concatenate([out, draw[(draw >= lo) & (draw <= fr.max)].astype(np.int64)])
    return out[:n]


def _build(plan) -> CaptureLayout:
    from ..resources import resolve_file

    spec = plan.spec
    cap = spec.assay.capture
    tpath = resolve_file(spec.assay.targets or "", base_dir=plan.base_dir, what="targets")
    if getattr(spec.assay, "genes", None):  # a panel cut by gene symbol, as plan_dataset does
        from ..genes import gene_column_for, gene_targets

        raw = gene_targets(bed=tpath, genes=spec.assay.genes, gene_column=gene_column_for(
            spec.assay.targets or "", spec.assay.gene_column))
    else:
        raw = read_bed(tpath)
    contigs = list(dict.fromkeys(u.contig for u in plan.units))
    index = {u.contig: u.contig_index for u in plan.units}
    targets, baits, weights = {}, {}, {}
    for c in contigs:
        terr = [u.territory for u in plan.units if u.contig == c and len(u.territory)]
        t = raw.get(c)
        if t is None or not terr:
            continue
        terr = merge(np.concatenate(terr))
        tc = intersect(t, terr)
        if not len(tc):
            continue
        targets[c] = tc
        grow = np.maximum(cap.min_bait_length - (t[:, 1] - t[:, 0]), 0)
        wide = np.stack([t[:, 0] - grow // 2, t[:, 1] + grow - grow // 2], axis=1)
        b = intersect(merge(np.clip(wide, 0, None)), terr)
        gc = (target_gc(reference=plan.reference, contig=c, targets=b)
              if cap.gc_curve != "none" else None)
        baits[c] = b
        weights[c] = capture_weights(seed=spec.seed, contig_index=index[c], targets=b, gc=gc,
                                     sd=cap.efficiency_sd)
    target_bases = sum(total(t) for t in targets.values())
    acc = {u.index: u.accessible_bases for u in plan.units}
    accessible = sum(acc.values())
    if not target_bases:
        raise ModelError("no target base lies in the planned territory", where="assay.targets")
    mean = nominal_fragment_mean(spec, base_dir=plan.base_dir)
    mass = {u.index: (capture_start_mass(targets=baits[u.contig], target_weights=weights[
        u.contig], frag_len=mean, window=(u.start, u.end)) if u.contig in baits else 0.0)
        for u in plan.units}
    m_total = sum(mass.values())

    # e_on: read bases on targets of a captured fragment, by the model on a global line where
    # contigs follow each other (far apart: no fragment spans two).
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed,
                                                       spawn_key=(CAPTURE_STREAM, _MC_KEY)))
    gap = 10 * (spec.fragment.max + spec.reads.length)
    off, pos = {}, 0
    for c in baits:
        off[c] = pos
        pos += int(baits[c][-1, 1]) + gap
    gt = np.concatenate([targets[c] + off[c] for c in baits])
    gb = np.concatenate([baits[c] + off[c] for c in baits])
    gw = np.concatenate([weights[c] for c in baits])
    flen = _fragment_lengths(rng, MC_FRAGMENTS, spec, plan.base_dir)
    starts, _ = draw_capture_fragments(rng=rng, n=MC_FRAGMENTS, targets=gb, target_weights=gw,
                                       accessible=gb, frag_lengths=flen, off_target=0.0)
    e_on = float(on_target_read_bases(starts=starts, lengths=flen, read_length=spec.reads.length,
                                      targets=gt).mean())
    e_off = 2.0 * float(np.minimum(flen, spec.reads.length).mean()) * target_bases / max(
        accessible, 1)
    f = cap.off_target
    n_total = spec.coverage * target_bases / ((1 - f) * e_on + f * e_off)
    on_pairs = {i: int(round(n_total * (1 - f) * m / m_total)) for i, m in mass.items()}
    off_pairs = {i: int(round(n_total * f * a / max(accessible, 1))) for i, a in acc.items()}
    return CaptureLayout(targets=targets, baits=baits, weights=weights, target_bases=target_bases,
                         accessible_bases=accessible, e_on=e_on, e_off=e_off,
                         total_pairs=n_total, on_pairs=on_pairs, off_pairs=off_pairs)


def pairs_from_sizes(*, spec, target_bp: int, n_targets: int, territory_bp: int) -> int:
    """Read pairs of a capture spec known only by sizes (for costing specs not planned here).

    Same formula as a plan's (module docstring), with ``e_on`` estimated on ``n_targets``
    (at most 2,000) isolated targets of the mean length and equal efficiency: neighbouring
    exons add on-target bases in real BEDs, so this errs towards more pairs (a budget).

    Parameters
    ----------
    spec : synthlib.spec.DatasetSpec
    target_bp, n_targets
        Target bases and count (unpadded).
    territory_bp
        Accessible bases off-target reads spread over.
    """
    if target_bp <= 0 or n_targets <= 0 or territory_bp <= 0:
        raise ModelError("sizes must be positive", where="pairs_from_sizes")
    cap = spec.assay.capture
    k = min(n_targets, 2000)
    tlen = max(1, int(round(target_bp / n_targets)))
    blen = max(tlen, cap.min_bait_length)
    step = tlen + 10 * (spec.fragment.max + spec.reads.length)
    a = np.arange(k, dtype=np.int64) * step + step
    gt = np.stack([a, a + tlen], axis=1)
    gb = np.stack([a - (blen - tlen) // 2, a - (blen - tlen) // 2 + blen], axis=1)
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed,
                                                       spawn_key=(CAPTURE_STREAM, _MC_KEY)))
    flen = _fragment_lengths(rng, MC_FRAGMENTS // 4, spec)
    starts, _ = draw_capture_fragments(rng=rng, n=len(flen), targets=gb,
                                       target_weights=np.ones(k), accessible=gb,
                                       frag_lengths=flen, off_target=0.0)
    e_on = float(on_target_read_bases(starts=starts, lengths=flen,
                                      read_length=spec.reads.length, targets=gt).mean())
    e_off = 2.0 * float(np.minimum(flen, spec.reads.length).mean()) * target_bp / territory_bp
    f = cap.off_target
    return int(round(spec.coverage * target_bp / ((1 - f) * e_on + f * e_off)))


def capture_layout(plan) -> CaptureLayout | None:
    """The plan's capture layout (cached per process), or None for WGS / ``model: uniform``.

    Deterministic: a function of the spec, its resources and the plan's units only.
    """
    spec = plan.spec
    if plan.targets is None or spec.assay.type == "wgs" or spec.assay.capture.model != "capture":
        return None
    from ..spec import spec_hash

    key = (spec_hash(spec), str(plan.base_dir), len(plan.units))
    with _LOCK:
        hit = _CACHE.get(key)
    if hit is not None:
        return hit
    layout = _build(plan)
    with _LOCK:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = layout
    return layout


def capture_pairs(plan, unit) -> int:
    """Read pairs of a unit under the capture model (captured plus off-target)."""
    layout = capture_layout(plan)
    if layout is None:
        raise ModelError("the plan has no capture model", where="capture_pairs")
    return layout.on_pairs.get(unit.index, 0) + layout.off_pairs.get(unit.index, 0)

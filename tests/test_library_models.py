"""Library-prep realism: capture, GC bias, adapters, duplicates, coverage metrics."""

from __future__ import annotations

import numpy as np
import pytest

from synthlib.errors import ModelError
from synthlib.intervals import read_bed
from synthlib.reads.adapters import (
    ADAPTER_R1,
    ADAPTER_R2,
    add_adapter_readthrough,
    readthrough_cigars,
)
from synthlib.reads.capture import (
    capture_start_mass,
    capture_weights,
    draw_capture_fragments,
    target_gc,
)
from synthlib.reads.coverage import coverage_stats, depth_from_intervals, fold80_penalty
from synthlib.reads.duplicates import DUPLICATE_FLAG, duplicate_flags, duplicate_plan
from synthlib.reads.gcbias import CURVES, fragment_gc, gc_acceptance
from synthlib.reads.library_spec import CaptureSpec, LibrarySpec
from synthlib.reference import Reference
from synthlib.resources import resolve_file

READ_LEN = 150


def _binomial_tol(n: int, p: float, z: float = 4.5) -> float:
    return z * np.sqrt(p * (1 - p) / n)


@pytest.fixture(scope="module")
def exome():
    """Demo reference, its exon BED (unpadded baits on chr20) and the baits' GC."""
    ref = Reference(resolve_file("grch37-chr20-demo.fasta"))
    targets = read_bed(resolve_file("grch37-chr20-demo.exons"))["chr20"]
    gc = target_gc(reference=ref, contig="chr20", targets=targets)
    acc = ref.accessible("chr20", 0, ref.lengths["chr20"])
    return ref, targets, gc, acc


def _simulate_capture(exome, *, seed: int, coverage: float = 100.0, off_target: float = 0.25):
    """Capture fragments at ~``coverage`` on-target read depth; returns depth over targets."""
    _, targets, gc, acc = exome
    w = capture_weights(seed=seed, contig_index=0, targets=targets, gc=gc,
                        sd=CaptureSpec().efficiency_sd)
    rng = np.random.default_rng(seed)
    target_bases = int((targets[:, 1] - targets[:, 0]).sum())
    # ~54% of an on-target fragment's read bases land on the (short) exons (measured).
    n = int(coverage * target_bases / (2 * READ_LEN) / (1 - off_target) / 0.54)
    flen = np.clip(np.rint(rng.normal(350, 50, n)), READ_LEN, 1000).astype(np.int64)
    starts, on = draw_capture_fragments(rng=rng, n=n, targets=targets, target_weights=w,
                                        accessible=acc, frag_lengths=flen, off_target=off_target)
    lo, hi = int(targets[0, 0]) - 2000, int(targets[-1, 1]) + 2000
    rs = np.concatenate([starts, starts + flen - READ_LEN])
    depth = depth_from_intervals(starts=rs, ends=rs + READ_LEN, lo=lo, hi=hi)
    on_target = np.concatenate([depth[a - lo:b - lo] for a, b in targets])
    return on_target, starts, flen, on


# --- capture -----------------------------------------------------------------------------------

def test_fold80_of_simulated_exome_is_typical(exome):
    depth, *_ = _simulate_capture(exome, seed=7)
    stats = coverage_stats(depth)
    assert 85 <= stats["mean"] <= 120
    assert 1.5 <= stats["fold80"] <= 2.5
    # Not a fluke of one seed: over seeds the model stays in the typical exome range.
    f80 = [fold80_penalty(_simulate_capture(exome, seed=s)[0]) for s in range(4)]
    assert all(1.5 <= f <= 2.5 for f in f80), f80


def test_fold80_grows_with_efficiency_sd(exome):
    _, targets, gc, _ = exome
    # Fold-80 of a flat profile times per-target lognormal efficiencies: sd must matter.
    length = targets[:, 1] - targets[:, 0]
    f = []
    for sd in (0.0, 0.3, 0.6):
        w = capture_weights(seed=3, contig_index=0, targets=targets, gc=None, sd=sd)
        f.append(fold80_penalty(np.repeat(100 * w, length)))
    assert f[0] == pytest.approx(1.0)
    assert f[0] < f[1] < f[2]


def test_off_target_fraction_and_on_target_overlap(exome):
    _, targets, _, acc = exome
    p_off = 0.25
    _, starts, flen, on = _simulate_capture(exome, seed=11, off_target=p_off)
    n = len(on)
    assert abs((~on).mean() - p_off) <= _binomial_tol(n, p_off)
    # Every captured fragment overlaps a target.
    s, e = starts[on], starts[on] + flen[on]
    j = np.searchsorted(targets[:, 0], e, side="left") - 1  # last target starting before e
    assert (j >= 0).all() and (targets[j, 1] > s).all()
    # Off-target starts lie on accessible bases.
    so = starts[~on]
    k = np.searchsorted(acc[:, 0], so, side="right") - 1
    assert (k >= 0).all() and (so < acc[k, 1]).all()


def test_flank_falloff_matches_overlap_density():
    a, b, length = 10_000, 10_200, 300
    targets = np.array([[a, b]])
    n = 200_000
    rng = np.random.default_rng(5)
    starts, on = draw_capture_fragments(
        rng=rng, n=n, targets=targets, target_weights=np.ones(1), accessible=targets,
        frag_lengths=np.full(n, length), off_target=0.0)
    assert on.all()
    assert starts.min() >= a - length + 1 and starts.max() <= b - 1
    edges = np.arange(a - length, b + 1, 50)
    counts, _ = np.histogram(starts, bins=edges)
    total = capture_start_mass(targets=targets, target_weights=np.ones(1), frag_len=length)
    expected = np.array([
        capture_start_mass(targets=targets, target_weights=np.ones(1), frag_len=length,
                           window=(int(lo), int(hi)))
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]) / total * n
    assert np.all(np.abs(counts - expected) <= 5 * np.sqrt(expected) + 1)
    # The density is a trapezoid: lowest at the far left flank, flat over the core.
    assert counts[0] < counts[3] / 3

    # Conditioned on a window that cuts the flank and the core: same density, renormalized.
    lo, hi = a - 150, a + 100
    ws, won = draw_capture_fragments(
        rng=rng, n=n, targets=targets, target_weights=np.ones(1), accessible=targets,
        frag_lengths=np.full(n, length), off_target=0.0, window=(lo, hi))
    assert won.all() and ws.min() >= lo and ws.max() < hi
    inside = (edges[:-1] >= lo) & (edges[1:] <= hi)
    wcounts, _ = np.histogram(ws, bins=edges)
    wexp = expected * inside / expected[inside].sum() * n
    assert np.all(np.abs(wcounts - wexp) <= 5 * np.sqrt(wexp) + 1)
    # A window holding only the first few bases of the flank still fills quickly.
    tip = (a - length + 1, a - length + 6)
    ts, _ = draw_capture_fragments(
        rng=rng, n=1000, targets=targets, target_weights=np.ones(1), accessible=targets,
        frag_lengths=np.full(1000, length), off_target=0.0, window=tip)
    assert ((ts >= tip[0]) & (ts < tip[1])).all()


def test_window_draws_and_unit_shares(exome):
    _, targets, gc, acc = exome
    w = capture_weights(seed=1, contig_index=0, targets=targets, gc=gc)
    whole = capture_start_mass(targets=targets, target_weights=w, frag_len=350)
    for size in (10_000, 1_000_000):
        cuts = range(0, 12_000_000, size)
        parts = sum(capture_start_mass(targets=targets, target_weights=w, frag_len=350,
                                       window=(c, c + size)) for c in cuts)
        assert parts == pytest.approx(whole, rel=1e-9)
    window = (1_100_000, 1_200_000)
    rng = np.random.default_rng(2)
    starts, on = draw_capture_fragments(
        rng=rng, n=5000, targets=targets, target_weights=w, accessible=acc,
        frag_lengths=np.full(5000, 350), off_target=0.25, window=window)
    assert ((starts >= window[0]) & (starts < window[1])).all()
    assert on.any() and (~on).any()


def test_target_efficiency_independent_of_work_unit_cuts(exome):
    _, targets, gc, _ = exome
    full = capture_weights(seed=42, contig_index=0, targets=targets, gc=gc)
    for size in (10_000, 250_000, 1_000_000):
        got = np.full(len(targets), np.nan)
        for c in range(0, 12_000_000, size):
            # A unit passes the (uncut) targets that touch its window, in any order.
            sel = np.flatnonzero((targets[:, 1] > c - 1000) & (targets[:, 0] < c + size + 1000))
            sel = sel[::-1]
            got[sel] = capture_weights(seed=42, contig_index=0, targets=targets[sel], gc=gc[sel])
        np.testing.assert_array_equal(got, full)
    assert not np.array_equal(full, capture_weights(seed=43, contig_index=0, targets=targets,
                                                    gc=gc))
    assert not np.array_equal(full, capture_weights(seed=42, contig_index=1, targets=targets,
                                                    gc=gc))


def test_efficiency_is_lognormal_with_mean_one():
    k = 50_000
    starts = np.arange(k, dtype=np.int64) * 1000
    targets = np.stack([starts, starts + 120], axis=1)
    sd = 0.3
    w = capture_weights(seed=9, contig_index=3, targets=targets, sd=sd)
    log_w = np.log(w)
    assert abs(w.mean() - 1) < 5 * np.sqrt(np.exp(sd**2) - 1) / np.sqrt(k)
    assert log_w.std() == pytest.approx(sd, rel=0.02)
    assert abs(np.mean(log_w + sd**2 / 2)) < 5 * sd / np.sqrt(k)


def test_capture_gc_factor_penalizes_extreme_targets():
    targets = np.array([[0, 100], [1000, 1100], [2000, 2100]])
    gc = np.array([0.2, 0.5, 0.8])
    with_gc = capture_weights(seed=1, contig_index=0, targets=targets, gc=gc)
    without = capture_weights(seed=1, contig_index=0, targets=targets)
    ratio = with_gc / without
    assert ratio[1] == pytest.approx(1.0)
    assert ratio[0] < 0.5 and ratio[2] < 0.5


def test_capture_determinism(exome):
    _, targets, gc, acc = exome
    w = capture_weights(seed=5, contig_index=0, targets=targets, gc=gc)
    flen = np.full(2000, 300)

    def draw(seed):
        return draw_capture_fragments(rng=np.random.default_rng(seed), n=2000, targets=targets,
                                      target_weights=w, accessible=acc, frag_lengths=flen)

    a, b, c = draw(1), draw(1), draw(2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_capture_input_checks():
    rng = np.random.default_rng(0)
    t = np.array([[10, 20]])
    with pytest.raises(ModelError):
        draw_capture_fragments(rng=rng, n=3, targets=t, target_weights=np.ones(1),
                               accessible=t, frag_lengths=np.full(3, 5), off_target=1.0)
    with pytest.raises(ModelError):
        draw_capture_fragments(rng=rng, n=3, targets=t, target_weights=np.ones(2),
                               accessible=t, frag_lengths=np.full(3, 5))
    with pytest.raises(ModelError):
        capture_weights(seed=0, contig_index=0, targets=t, sd=-1)


# --- GC bias -----------------------------------------------------------------------------------

def test_fragment_gc_matches_direct_count():
    rng = np.random.default_rng(0)
    seq = rng.choice(np.frombuffer(b"ACGTN", np.uint8), size=5000, p=[.3, .2, .2, .25, .05])
    starts = rng.integers(0, 4000, size=500)
    lengths = rng.integers(1, 1000, size=500)
    got = fragment_gc(hap_seq=seq, starts=starts, lengths=lengths)
    for s, n, g in zip(starts, lengths, got, strict=True):
        frag = bytes(seq[s:s + n])
        acgt = sum(frag.count(c) for c in b"ACGT")
        want = (frag.count(b"G") + frag.count(b"C")) / acgt if acgt else 0.5
        assert g == pytest.approx(want)
    with pytest.raises(ModelError):
        fragment_gc(hap_seq=seq, starts=np.array([4900]), lengths=np.array([200]))


@pytest.mark.parametrize("curve", ["pcr-free", "pcr", "capture"])
def test_gc_curve_shape(curve):
    gc = np.linspace(0, 1, 1001)
    p = gc_acceptance(gc, curve=curve)
    centre = CURVES[curve][0]
    peak = int(np.argmax(p))
    assert gc[peak] == pytest.approx(centre, abs=1e-3) and p[peak] == pytest.approx(1.0)
    assert (p > 0).all() and (p <= 1).all()
    assert (np.diff(p[:peak + 1]) >= 0).all() and (np.diff(p[peak:]) <= 0).all()  # unimodal
    assert 0.4 <= centre <= 0.5


def test_gc_curves_relative_strength():
    free = gc_acceptance(np.array([0.1, 0.26, 0.45, 0.64, 0.9]), curve="pcr-free")
    pcr = gc_acceptance(np.array([0.1, 0.26, 0.45, 0.64, 0.9]), curve="pcr")
    assert (free[1:4] >= 0.9).all()  # PCR-free is mild over typical genomic GC
    assert free[0] < 0.5 and free[4] < 0.1  # but loses the extremes
    assert pcr[1] < free[1] and pcr[3] < free[3]  # PCR is stronger away from the centre
    np.testing.assert_array_equal(gc_acceptance(np.array([0.0, 1.0]), curve="none"), [1, 1])
    with pytest.raises(ModelError):
        gc_acceptance(np.array([0.5]), curve="bogus")
    with pytest.raises(ModelError):
        gc_acceptance(np.array([1.5]))


def test_gc_rejection_sampling_on_real_sequence(exome):
    ref = exome[0]
    seq = np.frombuffer(ref.fetch("chr20", 1_000_000, 1_400_000), np.uint8)
    rng = np.random.default_rng(4)
    n = 100_000
    lengths = np.full(n, 300)
    starts = rng.integers(0, len(seq) - 300, size=n)
    gc = fragment_gc(hap_seq=seq, starts=starts, lengths=lengths)
    kept = rng.random(n) < gc_acceptance(gc, curve="pcr")
    bins = np.digitize(gc, [0.35, 0.45, 0.55, 0.65])
    for b in np.unique(bins):
        sel = bins == b
        if sel.sum() < 500:
            continue
        expect = gc_acceptance(gc[sel], curve="pcr").mean()
        assert abs(kept[sel].mean() - expect) <= _binomial_tol(int(sel.sum()), expect)
    # Survivors are pulled towards the curve's centre.
    assert abs(gc[kept].mean() - 0.47) < abs(gc.mean() - 0.47)


# --- adapters ----------------------------------------------------------------------------------

def test_adapter_readthrough_offsets():
    length = 150
    rng = np.random.default_rng(0)
    ins = np.array([150, 300, 100, 40, 1, 149])
    bases = rng.choice(np.frombuffer(b"ACGT", np.uint8), size=(len(ins), length))
    before = bases.copy()
    for rn, adapter in ((1, ADAPTER_R1), (2, ADAPTER_R2)):
        out, n_ins = add_adapter_readthrough(bases=bases, insert_len=ins, read_number=rn)
        np.testing.assert_array_equal(bases, before)  # input untouched
        np.testing.assert_array_equal(n_ins, np.minimum(ins, length))
        for row, k in enumerate(ins):
            read = bytes(out[row])
            assert read[:min(k, length)] == bytes(before[row, :min(k, length)])
            if k < length:
                tail = read[k:]
                assert tail[:len(adapter)] == adapter[:len(tail)]
                assert set(tail[len(adapter):]) <= {ord("G")}
    cig = readthrough_cigars(n_insert=np.minimum(ins, length), read_length=length,
                             reverse=np.array([0, 0, 0, 1, 0, 1], bool))
    assert cig[0] is None and cig[1] is None
    assert cig[2] == [(0, 100), (4, 50)]
    assert cig[3] == [(4, 110), (0, 40)]
    assert cig[5] == [(4, 1), (0, 149)]


def test_adapter_custom_tail_and_checks():
    bases = np.full((1, 60), ord("T"), np.uint8)
    out, _ = add_adapter_readthrough(bases=bases, insert_len=np.array([10]), read_number=1,
                                     adapter=b"CTGTCTCTTATA", tail=b"A")
    assert bytes(out[0]) == b"T" * 10 + b"CTGTCTCTTATA" + b"A" * 38
    with pytest.raises(ModelError):
        add_adapter_readthrough(bases=bases, insert_len=np.array([0]), read_number=1)
    with pytest.raises(ModelError):
        add_adapter_readthrough(bases=bases, insert_len=np.array([10]), read_number=3)


# --- duplicates --------------------------------------------------------------------------------

@pytest.mark.parametrize("rate", [0.0, 0.05, 0.3])
def test_duplicate_rate_and_families(rate):
    n = 200_000
    plan = duplicate_plan(rng=np.random.default_rng(8), n_fragments=n, rate=rate,
                          optical_fraction=0.2)
    assert len(plan.source) == n and plan.n_unique + int(plan.is_duplicate.sum()) == n
    assert abs(plan.rate - rate) <= _binomial_tol(n, rate) + 1e-12
    assert (np.diff(plan.source) >= 0).all()
    assert set(np.unique(plan.source)) == set(range(plan.n_unique))
    # The first copy of each family is the unflagged original; copies follow it.
    first = np.concatenate([[True], np.diff(plan.source) > 0])
    np.testing.assert_array_equal(plan.is_duplicate, ~first)
    assert not (plan.is_optical & ~plan.is_duplicate).any()
    d = int(plan.is_duplicate.sum())
    if d:
        assert abs(plan.is_optical.sum() / d - 0.2) <= _binomial_tol(d, 0.2)


def test_duplicate_flags_and_determinism():
    a = duplicate_plan(rng=np.random.default_rng(1), n_fragments=1000, rate=0.1)
    b = duplicate_plan(rng=np.random.default_rng(1), n_fragments=1000, rate=0.1)
    np.testing.assert_array_equal(a.source, b.source)
    flags = duplicate_flags(a.is_duplicate, mark=True)
    np.testing.assert_array_equal(flags == DUPLICATE_FLAG, a.is_duplicate)
    assert not duplicate_flags(a.is_duplicate, mark=False).any()
    assert duplicate_plan(rng=np.random.default_rng(1), n_fragments=0, rate=0.1).rate == 0
    with pytest.raises(ModelError):
        duplicate_plan(rng=np.random.default_rng(1), n_fragments=10, rate=1.0)


# --- coverage metrics and spec -----------------------------------------------------------------

def test_coverage_metrics():
    assert fold80_penalty(np.full(100, 30)) == 1.0
    d = np.array([10] * 20 + [50] * 80)  # p20 = 10, mean = 42
    assert fold80_penalty(d) == pytest.approx(4.2)
    assert fold80_penalty(np.array([0] * 50 + [10] * 50)) == 1.0  # zero bases left out
    assert fold80_penalty(np.array([0] * 50 + [10] * 50), exclude_zero=False) == float("inf")
    rng = np.random.default_rng(0)
    s = rng.integers(0, 1000, 300)
    e = s + rng.integers(1, 200, 300)
    naive = np.zeros(1200, int)
    for a, b in zip(s, e, strict=True):
        naive[a:b] += 1
    np.testing.assert_array_equal(depth_from_intervals(starts=s, ends=e, lo=100, hi=1100),
                                  naive[100:1100])
    st = coverage_stats(np.array([0, 10, 20, 30]))
    assert st["mean"] == 15 and st["zero_fraction"] == 0.25 and st["pct_ge"]["20"] == 0.5


def test_library_spec_defaults_and_validation():
    spec = LibrarySpec.model_validate({"gc_bias": "pcr", "duplicates": {"rate": 0.1}})
    assert spec.duplicates.mark and spec.adapters
    assert CaptureSpec().off_target == 0.25
    with pytest.raises(ValueError):
        LibrarySpec.model_validate({"duplicates": {"rate": 1.5}})
    with pytest.raises(ValueError):
        CaptureSpec.model_validate({"off_taget": 0.2})

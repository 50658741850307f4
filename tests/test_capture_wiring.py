"""The hybrid-capture model wired into the simulator, checked on generated golden BAMs.

``coverage`` of an exome/panel spec (capture model) is the mean read depth over the target
bases (unpadded BED targets within the planned territory, both mates counted): the same
definition :meth:`synthlib.plan.Plan.pairs_for`, ``Plan.cost`` and :mod:`synthlib.cost` use
(all through :mod:`synthlib.reads.capture_plan`). The PCR-free library preset is checked on
the PCR-free WGS demo.
"""

from __future__ import annotations

import hashlib
import math
import random

import numpy as np
import pysam
import pytest

from synthlib import cost
from synthlib.catalog import get_entry
from synthlib.generate import FILES, SV_BED, generate_local, run_unit
from synthlib.intervals import intersect, merge
from synthlib.plan import plan_dataset
from synthlib.reads import capture_plan
from synthlib.reads.capture_plan import capture_layout
from synthlib.reads.coverage import fold80_penalty
from synthlib.spec import parse_spec

EXOME = "exome-100x-demo"


def _depth(bam_path, contig: str, iv: np.ndarray) -> list[np.ndarray]:
    with pysam.AlignmentFile(str(bam_path)) as bam:
        return [np.sum(bam.count_coverage(contig, int(a), int(b), quality_threshold=0,
                                          read_callback="all"), axis=0) for a, b in iv]


def _fragments(bam_path) -> np.ndarray:
    """(n, 2) fragment spans ``[start, start + tlen)``, one per pair (from the leftmost mate)."""
    out = []
    with pysam.AlignmentFile(str(bam_path)) as bam:
        for r in bam:
            if r.template_length > 0:
                out.append((r.reference_start, r.reference_start + r.template_length))
    return np.array(out, dtype=np.int64)


@pytest.fixture(scope="module")
def exome(tmp_path_factory):
    """The exome demo generated serially, with its layout and per-target depth."""
    entry = get_entry(EXOME)
    plan = plan_dataset(entry.spec, base_dir=entry.path.parent)
    out = generate_local(plan, dest=tmp_path_factory.mktemp("exome"))
    layout = capture_layout(plan)
    targets = layout.targets["chr20"]
    depth = _depth(out / FILES["bam"], "chr20", targets)
    return plan, out, layout, targets, depth


def test_fold80_is_typical_exome(exome):
    *_, depth = exome
    f80 = fold80_penalty(np.concatenate(depth))
    assert 1.5 <= f80 <= 2.5, f80


def test_mean_target_coverage_is_spec_coverage(exome):
    plan, _, layout, _, depth = exome
    mean = float(np.concatenate(depth).mean())
    # Pairs are fixed; what varies is which targets they land on. Relative sd of the mean
    # ~ cv(on-target bases per fragment) / sqrt(N_on) ~ 0.6 / sqrt(13,000) = 0.5%: 4.5 sd
    # (2.4%) plus 1% for the first-order parts of the count (fragments redrawn at region and
    # N edges; Monte Carlo e_on, 0.2%).
    n_on = sum(layout.on_pairs.values())
    tol = 4.5 * 0.6 / math.sqrt(n_on) + 0.01
    assert abs(mean / plan.spec.coverage - 1) < tol, (mean, tol)
    # One count everywhere: units, Plan.cost and the cost module.
    pairs = sum(plan.pairs_for(u) for u in plan.units)
    assert abs(pairs - layout.total_pairs) <= len(plan.units)
    assert plan.cost().read_pairs == pairs
    assert cost.estimate(plan)["read_pairs"] == pairs


def test_on_target_fraction_matches_off_target_setting(exome):
    plan, out, layout, _, _ = exome
    frags = _fragments(out / FILES["bam"])
    pad = plan.targets["chr20"]
    # A fragment is on target when it overlaps a padded target. Captured fragments always do;
    # an off-target one (uniform over accessible starts) does with p_hit = accessible starts
    # within (mean fragment - 1) bases left of a padded target, over accessible starts.
    acc = merge(np.concatenate([plan.reference.accessible(u.contig, int(a), int(b))
                                for u in plan.units for a, b in u.regions]))
    reach = merge(np.stack([pad[:, 0] - int(plan.spec.fragment.mean) + 1, pad[:, 1]], axis=1))
    p_hit = sum(int(e - s) for s, e in intersect(acc, reach)) / layout.accessible_bases
    f = plan.spec.assay.capture.off_target
    expect = (1 - f) + f * p_hit
    j = np.searchsorted(pad[:, 0], frags[:, 1], side="left") - 1
    on = (j >= 0) & (pad[np.maximum(j, 0), 1] > frags[:, 0])
    n = len(frags)
    tol = 4.5 * math.sqrt(expect * (1 - expect) / n)
    assert abs(on.mean() - expect) < tol, (on.mean(), expect, tol)
    assert 0.7 < on.mean() < 0.8  # the default 25% off target (+~1% hits) is visible


def test_targets_vary_but_none_is_dropped(exome):
    *_, depth = exome
    per_target = np.array([d.mean() for d in depth])
    cv = per_target.std() / per_target.mean()
    # Lognormal bait efficiencies (sd 0.3), GC and length effects: well above Poisson noise.
    assert cv > 0.25, cv
    assert (per_target > 0).all() and (np.array([d.max() for d in depth]) >= 5).all()


def _shard_md5s(plan, units, work) -> dict[str, str]:
    work.mkdir()
    for u in units:
        run_unit(plan, u, workdir=work)
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest()
            for p in sorted(work.rglob("*")) if p.is_file()}


def _small_exome(**over) -> dict:
    data = get_entry(EXOME).spec.model_dump(mode="json", exclude_defaults=True)
    data["reference"]["regions"] = ["chr20:1,000,001-1,500,000"]
    data.update(over)
    return data


def test_same_bytes_whatever_the_unit_order(tmp_path):
    plan = plan_dataset(parse_spec(_small_exome(chunk_size=100_000)))
    fwd = _shard_md5s(plan, plan.units, tmp_path / "fwd")
    capture_plan._CACHE.clear()  # a fresh worker rebuilds the layout
    shuffled = list(plan.units)
    random.Random(3).shuffle(shuffled)
    assert _shard_md5s(plan_dataset(parse_spec(_small_exome(chunk_size=100_000))), shuffled,
                       tmp_path / "shuf") == fwd
    assert len(fwd) >= len(plan.units)


def test_chunking_keeps_the_pair_count():
    totals = []
    for cs in (100_000, 250_000):
        plan = plan_dataset(parse_spec(_small_exome(chunk_size=cs)))
        totals.append((sum(plan.pairs_for(u) for u in plan.units), len(plan.units)))
    (a, na), (b, nb) = totals
    assert abs(a - b) <= na + nb  # one rounding per unit


def test_uniform_model_keeps_old_layout():
    data = _small_exome()
    data["assay"]["capture"] = {"model": "uniform"}
    plan = plan_dataset(parse_spec(data))
    assert capture_layout(plan) is None
    for u in plan.units:
        assert plan.pairs_for(u) == round(plan.spec.coverage * u.territory_bases / 300)


def test_depth_follows_copy_number_in_targets(tmp_path):
    gain = (1_208_000, 1_230_000)  # 0-based; holds 10 exons
    loss = (1_285_000, 1_294_000)  # 5 exons
    sv = {"structural": {"explicit": [
        {"type": "cnv", "chrom": "chr20", "pos": gain[0] + 1, "end": gain[1], "cn": 4},
        {"type": "cnv", "chrom": "chr20", "pos": loss[0] + 1, "end": loss[1], "cn": 1}]}}
    base = _small_exome(chunk_size=250_000, variants={}, germline={"source": "none"})
    ratio = {}
    depth = {}
    for name, over in (("ref", {}), ("sv", {"variants": sv})):
        plan = plan_dataset(parse_spec({**base, **over}))
        out = generate_local(plan, dest=tmp_path / name)
        t = capture_layout(plan).targets["chr20"]
        depth[name] = {k: np.concatenate(_depth(out / FILES["bam"], "chr20",
                                                t[(t[:, 0] >= lo) & (t[:, 1] <= hi)]))
                       for k, (lo, hi) in (("gain", gain), ("loss", loss))}
    for k in ("gain", "loss"):
        ratio[k] = depth["sv"][k].mean() / depth["ref"][k].mean()
    # ~600 fragments behind each mean: ~6% noise; copy number 4/2 and 1/2.
    assert 1.7 < ratio["gain"] < 2.3, ratio
    assert 0.38 < ratio["loss"] < 0.62, ratio


def _poisson_quantile(lam: float, q: float) -> int:
    k, cdf = 0, 0.0
    while True:
        cdf += math.exp(k * math.log(lam) - lam - math.lgamma(k + 1))
        if cdf >= q:
            return k
        k += 1


def test_pcr_free_preset_is_poisson_like(tmp_path):
    entry = get_entry("pcrfree-wgs-sv-demo")
    lib = entry.spec.library
    assert lib.preset == "pcr-free" and lib.gc_bias == "pcr-free" and lib.duplicates.rate == 0
    plan = plan_dataset(entry.spec, base_dir=entry.path.parent)
    out = generate_local(plan, dest=tmp_path)
    lo, hi = int(plan.units[0].regions[0, 0]), int(plan.units[-1].regions[-1, 1])
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        dups = sum(r.is_duplicate for r in bam)
        depth = np.sum(bam.count_coverage("chr20", int(lo), int(hi), quality_threshold=0,
                                          read_callback="all"), axis=0)
    assert dups == 0
    # Leave out the SVs (copy number != 2) and a fragment either side of them.
    keep = np.ones(len(depth), dtype=bool)
    margin = plan.spec.fragment.max
    for line in (out / SV_BED).read_text().splitlines():
        if line and not line.startswith(("#", "track")):
            _, s, e, *_ = line.split("\t")
            keep[max(0, int(s) - margin - lo):max(0, int(e) + margin - lo)] = False
    d = depth[keep]
    assert abs(d.mean() / plan.spec.coverage - 1) < 0.1
    f80 = fold80_penalty(d)
    pois = d.mean() / _poisson_quantile(d.mean(), 0.2)
    assert f80 <= 1.3 and f80 <= pois * 1.08, (f80, pois)


def test_cost_from_sizes_is_close_to_the_plan(exome):
    plan, _, layout, targets, _ = exome
    pairs = sum(plan.pairs_for(u) for u in plan.units)
    approx = capture_plan.pairs_from_sizes(spec=plan.spec, target_bp=layout.target_bases,
                                           n_targets=len(targets),
                                           territory_bp=layout.accessible_bases)
    # Isolated equal targets miss the depth neighbouring exons add: a budget errs high.
    assert pairs <= approx <= 1.25 * pairs, (pairs, approx)

"""Duplicate QC: pairs marked by re-aligned coordinates against the spec's library model.

The panel demo (library preset ``pcr``: 8% duplicates, ~26k pairs at 1000x) passes; the same
reads with the duplicate pairs removed, or judged against a spec claiming another rate, fail.
"""

from __future__ import annotations

import math

import numpy as np
import pysam
import pytest
from _qc_broken import copy_dataset, drop_pairs, golden_names

from synthlib.catalog import get_entry
from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.qc.duplicates import (
    expected_duplicate_fraction,
    fragment_length_pmf,
    mark_duplicate_pairs,
)
from synthlib.qc.run import run_qc

PANEL = "panel-somatic-1000x-demo"


def _with_rate(spec, rate: float):
    lib = spec.library.model_copy(update={
        "duplicates": spec.library.duplicates.model_copy(update={"rate": rate})})
    return spec.model_copy(update={"library": lib})


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    entry = get_entry(PANEL)
    base = entry.path.parent
    ds = generate_local(plan_dataset(entry.spec, base_dir=base),
                        dest=tmp_path_factory.mktemp("dup"))
    return ds, base, entry.spec, run_qc(dataset_dir=ds, base_dir=base)


def test_marking_rule():
    keys = np.array([
        [0, 100, 0, 400, 1],
        [0, 100, 0, 400, 1],  # same as the first: duplicate
        [0, 100, 1, 400, 0],  # mates swapped strands: another orientation, kept
        [1, 100, 0, 400, 1],  # other contig
        [0, 100, 0, 401, 1],  # other 3' end
        [0, 100, 0, 400, 1],  # third copy
    ])
    assert mark_duplicate_pairs(keys).tolist() == [False, True, False, False, False, True]
    assert mark_duplicate_pairs(np.zeros((0, 5), np.int64)).shape == (0,)


def test_chance_collisions_follow_the_model():
    """Unique fragments only (rate 0): the marked count is the chance collisions the model
    predicts from density and the length pmf (within 4 Poisson SE)."""
    spec = _with_rate(get_entry(PANEL).spec, 0.0)
    lengths, pmf = fragment_length_pmf(spec)
    rng = np.random.default_rng(3)
    n, span = 200_000, 40_000  # 5 fragment starts per base, as at ~1000x
    start = rng.integers(0, span, n)
    length = lengths[rng.choice(len(pmf), n, p=pmf)]
    strand = rng.integers(0, 2, n)
    keys = np.stack([np.zeros(n, np.int64), np.where(strand == 0, start, start + length),
                     strand, np.where(strand == 0, start + length, start), 1 - strand], axis=1)
    marked = int(mark_duplicate_pairs(keys).sum())
    exp = expected_duplicate_fraction(spec=spec, keys=keys)
    assert exp["expected"] * n == pytest.approx(exp["coincidental"])
    # Closed form for uniform density rho = n / span: n * rho * S / 4.
    assert exp["coincidental"] == pytest.approx(n * (n / span) * exp["sum_f2"] / 4, rel=0.02)
    assert abs(marked - exp["coincidental"]) < 4 * math.sqrt(exp["coincidental"]), (
        marked, exp["coincidental"])


def test_panel_duplicates_match_the_spec(panel):
    ds, _, spec, res = panel
    d = res.metrics["duplicates"]
    assert spec.library.duplicates.rate == 0.08
    assert d["candidate_pairs"] > 20_000
    # The measured fraction is the spec's rate plus chance collisions, within binomial error.
    assert abs(d["rate"] - d["expected"]) < 4 * d["se"], d
    assert 0.08 < d["expected"] < 0.09
    by = {c.name: c for c in res.checks}
    assert by["duplicate_rate"].status == "pass", by["duplicate_rate"]
    assert res.verdict == "pass", [c for c in res.checks if c.status == "fail"]
    # Marked in the QC BAM itself, both mates.
    with pysam.AlignmentFile(str(ds / "qc/qc.bam")) as fh:
        flagged = sum(1 for r in fh.fetch(until_eof=True)
                      if r.flag & 0x400 and not r.flag & 0x900)
    assert flagged == 2 * d["marked_pairs"]


def test_duplicates_removed_fail(panel, tmp_path):
    src, base, _, _ = panel
    ds = copy_dataset(src, tmp_path / "nodup")
    names = golden_names(ds / "golden.bam", lambda r: bool(r.flag & 0x400))
    assert drop_pairs(ds, names) == len(names) > 1000
    res = run_qc(dataset_dir=ds, base_dir=base)
    d = res.metrics["duplicates"]
    by = {c.name: c for c in res.checks}
    assert by["duplicate_rate"].status == "fail"
    assert d["rate"] < 0.01 and res.verdict == "fail"  # only chance collisions remain


@pytest.mark.parametrize("claimed", [0.0, 0.12])
def test_spec_claiming_another_rate_fails(panel, tmp_path, claimed):
    src, base, spec, _ = panel
    ds = copy_dataset(src, tmp_path / "claim")
    res = run_qc(dataset_dir=ds, base_dir=base, spec=_with_rate(spec, claimed))
    by = {c.name: c for c in res.checks}
    assert by["duplicate_rate"].status == "fail", by["duplicate_rate"]
    # Expected = the claimed rate plus a few tenths of a percent of chance collisions.
    assert 0 < by["duplicate_rate"].expected - claimed < 0.01


def test_sampled_mode_counts_whole_families(panel, tmp_path):
    """Sampled QC (max_pairs below the dataset's) counts only the pairs chosen around truth
    variants by golden position: whole families, so the spec's rate is still recovered."""
    src, base, _, full = panel
    ds = copy_dataset(src, tmp_path / "sampled")
    res = run_qc(dataset_dir=ds, base_dir=base, max_pairs=5_000)
    assert res.metrics["mode"] == "sampled"
    d = res.metrics["duplicates"]
    assert d["subset"] == "pairs around truth variants"
    assert 1_000 < d["candidate_pairs"] < full.metrics["duplicates"]["candidate_pairs"]
    assert abs(d["rate"] - d["expected"]) < 4 * d["se"], d
    assert {c.name: c for c in res.checks}["duplicate_rate"].status == "pass"

"""Somatic VAF accuracy from the re-aligned reads: realized alt fractions vs the truth's VAF."""

from __future__ import annotations

import json
import math

import pytest
from _qcdata import copy_dataset, rewrite_truth, somatic_dataset

from synthlib.errors import QCError
from synthlib.qc.run import run_qc
from synthlib.qc.vaf import binomial_interval


@pytest.fixture(scope="module")
def somatic(tmp_path_factory):
    ds = somatic_dataset(tmp_path_factory.mktemp("som"))
    return ds, run_qc(dataset_dir=ds)


def test_binomial_interval_is_exact():
    lo, hi = binomial_interval(300, 0.05, level=0.999)
    assert lo < 15 < hi
    # The tails outside [lo, hi] each hold at most 0.05 % (checked by direct summation).
    def pmf(k):
        return math.comb(300, k) * 0.05 ** k * 0.95 ** (300 - k)
    assert sum(pmf(k) for k in range(lo)) <= 0.0005 < sum(pmf(k) for k in range(lo + 1))
    assert sum(pmf(k) for k in range(hi + 1, 301)) <= 0.0005
    assert binomial_interval(0, 0.3) == (0, 0)
    with pytest.raises(QCError):
        binomial_interval(10, 1.5)


def test_realized_vafs_inside_binomial_intervals(somatic):
    ds, res = somatic
    vaf = res.metrics["vaf"]
    rows = vaf["variants"]
    assert len(rows) == 30 and {r["target"] for r in rows} == {0.05, 0.15, 0.3, 0.2}
    spec = json.loads((ds / "manifest.json").read_text())["spec"]
    (start, end), = [(int(a.replace(",", "")) - 1, int(b.replace(",", "")))
                     for a, b in (r.split(":")[1].split("-") for r in spec["reference"]["regions"])]
    reach = spec["fragment"]["max"]  # no fragment of the spec is longer
    for r in rows:
        # Fragments over a site at 300x: the depth is near the spec's (mates counted once),
        # except within a fragment of the region's ends, which fewer fragments can cover.
        if start + reach <= r["pos"] - 1 < end - reach:
            assert r["depth"] > 150, r
        assert r["depth"] > 0 and r["lo"] <= r["alt_reads"] <= r["hi"], r
    s = vaf["summary"]
    assert s["inside_fraction"] == 1.0
    # Mean |realized - target| of a binomial at ~280 fragments: sqrt(2/pi) * sd, about 0.02.
    exp_mae = sum(math.sqrt(2 / math.pi * r["target"] * (1 - r["target"]) / r["depth"])
                  for r in rows) / len(rows)
    assert s["mae"] < 1.5 * exp_mae
    # Each VAF stratum is unbiased within 4 SE of its pooled mean.
    for b in s["by_bin"].values():
        n_frag = sum(r["depth"] for r in rows if abs(r["target"] - b["mean_target"]) < 1e-9)
        se = math.sqrt(b["mean_target"] * (1 - b["mean_target"]) / max(n_frag, 1))
        assert abs(b["mean_realized"] - b["mean_target"]) < 4 * se * math.sqrt(b["n"]) + 0.01
    by = {c.name: c for c in res.checks}
    assert by["somatic_vaf_in_interval"].status == "pass"
    doc = json.loads((ds / "qc/qc.json").read_text())
    assert doc["metrics"]["vaf"]["summary"]["inside_fraction"] == 1.0
    assert "vaf_realized_vs_target" in (ds / "qc/report.html").read_text()
    mqc = json.loads((ds / "qc/synthlib_vaf_mqc.json").read_text())
    assert len(mqc["data"]) == 30


def test_wrong_truth_vaf_fails_the_check(somatic, tmp_path):
    ds, _ = somatic
    bad = copy_dataset(ds, tmp_path / "bad")

    def lie(lines):
        # Claim VAF 0.3 for the 0.05 SNVs: 15 alt fragments of ~300 are far outside.
        return [x.replace("VAF=0.05", "VAF=0.3") for x in lines]

    rewrite_truth(bad, lie)
    res = run_qc(dataset_dir=bad)
    by = {c.name: c for c in res.checks}
    assert by["somatic_vaf_in_interval"].status == "fail"
    assert by["somatic_vaf_in_interval"].value <= 22 / 30
    assert res.verdict == "fail"

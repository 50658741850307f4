"""Every demo entry of the catalog passes its own QC gate (generated here, QC'd whole).

Parametrized from the catalog like tests/test_catalog.py. Cohort entries (trio, ToF cohort)
have no single-dataset QC and are left out. A tumor spec with a matched normal also gets its
``normal/`` sub-dataset QC'd (it has its own manifest).
"""

from __future__ import annotations

import json

import pytest

from synthlib.catalog import catalog_dir, get_entry
from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.qc.run import run_qc

ALL = sorted(p.stem for p in catalog_dir().glob("*.yaml"))
# ``demo`` itself (100k pairs, ~55 s of QC) is QC'd by tests/test_qc_pipeline.py
# (test_demo_recovers_truth_and_passes), on the session's shared demo dataset.
DEMOS = [i for i in ALL if i.endswith("-demo") and get_entry(i).spec.cohort is None]

# Checks every dataset gets, whatever its assay (skipped only at low depth).
ALWAYS = {"insert_mean", "insert_sd", "quality_by_cycle_r1", "quality_by_cycle_r2",
          "mean_quality_r1", "mean_quality_r2", "mismatch_rate", "read_mismatch_rate",
          "mapped_fraction", "duplicate_rate", "germline_titv", "snv_recall", "indel_recall",
          "precision", "spike_recall"}
CAPTURE = {"on_target_fraction", "capture_on_target", "capture_target_depth", "capture_fold80"}


def _assert_passes(res, spec) -> None:
    by = {c.name: c for c in res.checks}
    failed = {n: (c.value, c.low, c.high) for n, c in by.items() if c.status == "fail"}
    assert res.verdict == "pass", f"{spec.id}: failed checks {failed}"
    expect = set(ALWAYS)
    if spec.assay.type == "wgs":
        expect |= {"coverage_mean", "fold80"}
    else:
        expect |= CAPTURE
    if res.metrics["mode"] == "all_reads":
        expect.add("confident_fraction")
    if res.metrics.get("vaf"):
        expect.add("somatic_vaf_in_interval")
    if res.metrics.get("sv"):
        expect.add("sv_recall")
    assert expect <= set(by), f"{spec.id}: missing checks {expect - set(by)}"
    # Gated checks are really gated: nothing but low depth or absent inputs skips one.
    if spec.coverage >= 20 and spec.assay.type != "wgs":
        for name in CAPTURE | {"insert_mean", "mapped_fraction", "confident_fraction"}:
            assert by[name].status == "pass", by[name]


@pytest.mark.parametrize("entry_id", DEMOS)
def test_demo_entry_passes_its_qc_gate(entry_id, tmp_path):
    entry = get_entry(entry_id)
    spec, base = entry.spec, entry.path.parent
    ds = generate_local(plan_dataset(spec, base_dir=base), dest=tmp_path)
    res = run_qc(dataset_dir=ds, base_dir=base)
    _assert_passes(res, spec)
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["qc"]["verdict"] == "pass"
    if (ds / "normal" / "manifest.json").exists():
        normal = run_qc(dataset_dir=ds / "normal", base_dir=base)
        nspec = json.loads((ds / "normal" / "manifest.json").read_text())["spec"]
        assert normal.verdict == "pass", [c for c in normal.checks if c.status == "fail"]
        assert nspec["coverage"] == spec.somatic.normal_coverage
        assert not normal.metrics.get("vaf")  # the normal carries no somatic variant

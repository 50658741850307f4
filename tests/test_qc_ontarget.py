"""Capture QC (exome/panel): on-target fraction, depth over targets, fold-80, per-target plot."""

from __future__ import annotations

import json

import pytest

from synthlib.catalog import resolve_spec
from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.qc.run import run_qc

REGION = "chr20:9,995,001-10,400,000"


def _exome(**update):
    spec, base = resolve_spec("exome-100x-demo")
    ref = spec.reference.model_copy(update={"regions": [REGION]})
    return spec.model_copy(update={"reference": ref, **update}), base


@pytest.fixture(scope="module")
def exome_qc(tmp_path_factory):
    spec, base = _exome()
    ds = generate_local(plan_dataset(spec, base_dir=base), dest=tmp_path_factory.mktemp("ex"),
                        overwrite=True)
    return ds, spec, run_qc(dataset_dir=ds, base_dir=base)


def test_on_target_metrics_computed_and_gated(exome_qc):
    ds, spec, res = exome_qc
    cap = res.metrics["capture"]
    assert cap["targets"] >= 10 and cap["reads"] == 2 * res.metrics["pairs"]
    assert len(cap["per_target"]) == cap["targets"]
    off = spec.assay.capture.off_target
    assert cap["off_target_expected"] == off
    by = {c.name: c for c in res.checks}
    for name in ("capture_on_target", "capture_target_depth", "capture_fold80"):
        assert by[name].status == "pass", by[name]
    # Reads overlapping padded targets: all on-target fragments plus the few off-target ones
    # landing near a target; never far above 1 - off_target + the targets' share.
    assert 1 - off - 0.1 < cap["on_target_fraction"] <= 1.0
    assert cap["on_target_fraction_mapped"] >= cap["on_target_fraction"]
    assert 1.0 <= cap["fold80"] < 3.0
    assert abs(cap["mean_target_depth"] / spec.coverage - 1) < 0.25
    html = (ds / "qc/report.html").read_text()
    assert "per_target_depth_qc_bam" in html and "Capture" in html
    mqc = json.loads((ds / "qc/synthlib_mqc.json").read_text())
    assert mqc["data"][spec.id]["on_target"] == pytest.approx(cap["on_target_fraction"])


def test_uncaptured_reads_fail_on_target(exome_qc, tmp_path):
    # A WGS library over the same region, QC'd as the exome: most reads miss the targets.
    _, _, _ = exome_qc
    spec, base = _exome()
    wgs = spec.model_copy(update={
        "assay": spec.assay.model_copy(update={"type": "wgs", "targets": None}),
        "coverage": 4.0, "variants": spec.variants.model_copy(update={"random": []})})
    ds = generate_local(plan_dataset(wgs, base_dir=base), dest=tmp_path, overwrite=True)
    res = run_qc(dataset_dir=ds, spec=spec, base_dir=base)
    by = {c.name: c for c in res.checks}
    assert by["capture_on_target"].status == "fail"
    assert by["capture_on_target"].value < 0.3
    assert res.verdict == "fail"

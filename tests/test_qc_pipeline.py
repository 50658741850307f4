"""QC of generated datasets: re-alignment, calling, conformance metrics, gate and outputs.

The demo (30x over 1 Mbp) is copied before QC so the session's ``demo_dataset`` stays as
generated for other tests.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from isal import igzip
from typer.testing import CliRunner

from synthlib.errors import QCError
from synthlib.io.checksums import digest_file
from synthlib.qc.gate import DEFAULT_THRESHOLDS, resolve_thresholds
from synthlib.qc.run import run_qc

REPO = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((REPO / "synthlib/data/schemas/qc.schema.json").read_text())
MANIFEST_SCHEMA = json.loads((REPO / "synthlib/data/schemas/manifest.schema.json").read_text())


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("qc"))
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if not f["path"].startswith("qc/")]
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


@pytest.fixture(scope="module")
def qc_demo(demo_dataset, tmp_path_factory):
    ds = _copy(demo_dataset, tmp_path_factory.mktemp("qc") / "demo")
    return ds, run_qc(dataset_dir=ds)


def test_demo_recovers_truth_and_passes(qc_demo):
    ds, res = qc_demo
    m = res.metrics
    assert m["mode"] == "all_reads" and m["alignment"]["pairs_aligned"] == m["pairs"]
    summ = m["comparison"]["by_type_summary"]
    assert summ["snv"]["recall"] >= 0.99
    assert summ["indel"]["recall"] >= 0.95
    assert m["comparison"]["allele"]["precision"] >= 0.99
    # Every variant the spec asked for is called (61 in confident territory).
    assert m["spikes"]["total"] >= 55 and m["spikes"]["recall"] >= 0.95
    assert res.verdict == "pass", [c for c in res.checks if c.status == "fail"]
    by = {c.name: c for c in res.checks}
    for name in ("coverage_mean", "fold80", "insert_mean", "insert_sd", "quality_by_cycle_r1",
                 "quality_by_cycle_r2", "mismatch_rate", "read_mismatch_rate", "snv_recall",
                 "indel_recall", "precision", "germline_titv", "duplicate_rate"):
        assert by[name].status == "pass", by[name]
    # Realized numbers within the model's own sampling error, not just within the gate.
    ins = m["insert_size"]
    assert abs(ins["mean"] - ins["expected_mean"]) < 4 * ins["expected_sd"] / np.sqrt(ins["n"])
    mm = m["mismatch"]
    se = np.sqrt(mm["expected"] / mm["golden"]["bases"])
    assert abs(mm["golden"]["rate"] - mm["expected"]) < 0.05 * mm["expected"] + 4 * se
    assert m["cost"]["fraction_of_generation"] > 0


def test_qc_outputs_schema_and_manifest(qc_demo):
    ds, res = qc_demo
    doc = json.loads((ds / "qc/qc.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["verdict"] == res.verdict == res.to_dict()["verdict"]
    html = (ds / "qc/report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    for name in ("qc.bam", "qc.bam.bai", "calls.vcf.gz", "calls.vcf.gz.csi",
                 "synthlib_mqc.json", "synthlib_checks_mqc.json"):
        assert (ds / "qc" / name).stat().st_size > 0
    mqc = json.loads((ds / "qc/synthlib_mqc.json").read_text())
    assert mqc["plot_type"] == "generalstats" and "demo" in mqc["data"]
    manifest = json.loads((ds / "manifest.json").read_text())
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    assert manifest["qc"]["verdict"] == "pass"
    assert manifest["qc"]["metrics"]["snv_recall"] >= 0.99
    files = {f["path"]: f for f in manifest["files"]}
    for rel in ("qc/qc.json", "qc/report.html", "qc/qc.bam", "qc/calls.vcf.gz",
                "reads_R1.fastq.gz"):
        assert files[rel]["md5"] == digest_file(ds / rel)["md5"]


def test_notebook_redraws_plots(qc_demo):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    ds, _ = qc_demo
    nb = nbformat.read(REPO / "notebooks/qc_report.ipynb", as_version=4)
    os.environ["SYNTH_QC_JSON"] = str(ds / "qc/qc.json")
    try:
        nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                resources={"metadata": {"path": str(REPO)}}).execute()
    finally:
        os.environ.pop("SYNTH_QC_JSON", None)
    outputs = "".join(json.dumps(o) for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert "coverage_histogram" in outputs and "quality_by_cycle" in outputs
    assert "image/svg+xml" in outputs


def test_cli_pair_mode_and_errors(qc_demo, tmp_path):
    from synthlib.cli_qc import app

    ds, _ = qc_demo
    from synthlib.resources import get_reference_bundle, resolve_file

    ref = resolve_file(get_reference_bundle("grch37-chr20-demo").fasta)
    out = tmp_path / "pair"
    r = CliRunner().invoke(app, ["--truth", str(ds / "truth.vcf.gz"), "--query",
                                 str(ds / "qc/calls.vcf.gz"), "--reference", str(ref),
                                 "--regions", str(ds / "qc/confident.bed"), "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads((out / "qc.json").read_text())
    jsonschema.validate(doc, SCHEMA)
    assert doc["metrics"]["comparison"]["by_type_summary"]["snv"]["recall"] >= 0.99
    r = CliRunner().invoke(app, [str(tmp_path / "missing")])
    assert isinstance(r.exception, QCError)  # synth main() maps it to exit 2


def test_thresholds_are_validated():
    assert resolve_thresholds({"snv_recall_min": 0.9})["snv_recall_min"] == 0.9
    assert resolve_thresholds(None) == DEFAULT_THRESHOLDS
    with pytest.raises(QCError, match="unknown QC threshold"):
        resolve_thresholds({"snv_recal_min": 0.9})
    with pytest.raises(QCError, match="must be a number"):
        resolve_thresholds({"snv_recall_min": "high"})


def _corrupt_fastq(path: Path, rng: np.random.Generator, rate: float) -> None:
    """Substitute ``rate`` of the bases at random, qualities untouched (a lying error model)."""
    with igzip.open(path, "rb") as fh:
        lines = fh.read().split(b"\n")
    seqs = lines[1::4]
    length = len(seqs[0])
    m = np.frombuffer(b"".join(seqs), np.uint8).reshape(-1, length).copy()
    hit = rng.random(m.shape) < rate
    m[hit] = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, int(hit.sum()))]
    lines[1::4] = [row.tobytes() for row in m]
    with igzip.open(path, "wb", compresslevel=0) as fh:
        fh.write(b"\n".join(lines))


def test_broken_reads_fail_the_gate(demo_dataset, tmp_path, prefect_api):
    from flows.qc_dataset import qc_dataset

    ds = _copy(demo_dataset, tmp_path / "broken")
    rng = np.random.default_rng(7)
    for mate in ("R1", "R2"):
        _corrupt_fastq(ds / f"reads_{mate}.fastq.gz", rng, 0.02)
    # max_pairs below the demo's 100k pairs exercises the sampled path (reads around truth
    # variants + a random sample).
    out = qc_dataset(str(ds), max_pairs=50_000)
    assert out["verdict"] == "fail"
    doc = json.loads((ds / "qc/qc.json").read_text())
    assert doc["metrics"]["mode"] == "sampled"
    by = {c["name"]: c for c in doc["checks"]}
    # ~0.75 * 2% of bases newly wrong on top of the model's ~0.18%.
    assert by["read_mismatch_rate"]["status"] == "fail"
    assert by["read_mismatch_rate"]["value"] > 5 * by["read_mismatch_rate"]["expected"]
    assert by["mismatch_rate"]["status"] == "pass"  # the golden BAM is untouched
    manifest = json.loads((ds / "manifest.json").read_text())
    assert manifest["qc"]["verdict"] == "fail"
    assert "read_mismatch_rate" in manifest["qc"]["metrics"]["checks_failed"]


def test_capture_without_off_target_reads_fails(tmp_path):
    """Data made with ``capture.off_target: 0`` judged against the spec's 0.25: the on-target
    fraction is too HIGH (off-target reads the spec promised are missing)."""
    from synthlib.catalog import get_entry
    from synthlib.generate import generate_local
    from synthlib.plan import plan_dataset

    entry = get_entry("panel-somatic-1000x-demo")
    spec, base = entry.spec, entry.path.parent
    assert spec.assay.capture.off_target == 0.25
    cap = spec.assay.capture.model_copy(update={"off_target": 0.0})
    made = spec.model_copy(update={"assay": spec.assay.model_copy(update={"capture": cap})})
    ds = generate_local(plan_dataset(made, base_dir=base), dest=tmp_path)
    res = run_qc(dataset_dir=ds, base_dir=base, spec=spec)
    c = {x.name: x for x in res.checks}["capture_on_target"]
    assert c.status == "fail" and c.value > c.high, c
    assert c.value > 0.98  # every read is captured
    assert res.verdict == "fail"
    # The same data against the spec it was made from passes that check.
    ok = run_qc(dataset_dir=ds, base_dir=base, spec=made)
    assert {x.name: x for x in ok.checks}["capture_on_target"].status == "pass"


def test_reads_of_one_region_removed_fail_confident_fraction(tmp_path):
    """A quarter of the territory loses its reads in the FASTQs (golden BAM intact): the
    re-aligned depth misses there, so the confident territory shrinks below the gate."""
    from _qc_broken import drop_pairs, golden_names

    from synthlib.catalog import get_entry
    from synthlib.generate import generate_local
    from synthlib.plan import plan_dataset
    from synthlib.spec import parse_spec

    entry = get_entry("demo")
    data = entry.spec.model_dump(mode="json")
    data["reference"]["regions"] = ["chr20:1,000,001-1,200,000"]
    data["variants"] = {"random": [{"type": "snv", "count": 10, "genotype": "mixed"}]}
    spec = parse_spec(data, source="test")
    ds = generate_local(plan_dataset(spec, base_dir=entry.path.parent), dest=tmp_path)
    lo, hi = 1_000_000, 1_050_000
    names = golden_names(ds / "golden.bam", lambda r: lo <= r.reference_start < hi)
    assert drop_pairs(ds, names) == len(names) > 1000
    res = run_qc(dataset_dir=ds, base_dir=entry.path.parent)
    by = {c.name: c for c in res.checks}
    c = by["confident_fraction"]
    assert c.status == "fail" and 0.65 < c.value < 0.8, c
    assert by["coverage_mean"].status == "pass"  # measured on the untouched golden BAM
    assert res.verdict == "fail"

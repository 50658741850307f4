"""Cohort QC: every per-sample dataset through run_qc, Mendelian consistency of the trio truth,
one aggregate verdict in the cohort manifest (serial path and Prefect/Dask flow).

The trio demo is shrunk to 100 kb (spec.model_copy) so each sample's QC takes a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pysam
import pytest
import yaml

from synthlib.catalog import get_entry
from synthlib.cohort.study import COHORT_FILES, generate_cohort_local, plan_cohort_study
from synthlib.io.checksums import digest_file
from synthlib.qc.cohort import aggregate_cohort_qc, mendelian_consistency, read_trios

REPO = Path(__file__).resolve().parent.parent
MANIFEST_SCHEMA = json.loads((REPO / "synthlib/data/schemas/manifest.schema.json").read_text())
REGION = "chr20:1,000,001-1,100,000"


def _small_trio(region: str = REGION):
    entry = get_entry("trio-wgs-30x-demo")
    spec = entry.spec.model_copy(update={
        "reference": entry.spec.reference.model_copy(update={"regions": [region]})})
    return spec, entry.path.parent


@pytest.fixture(scope="module")
def trio(tmp_path_factory):
    spec, base = _small_trio()
    return generate_cohort_local(plan_cohort_study(spec, base_dir=base),
                                 dest=tmp_path_factory.mktemp("trioqc"))


def _assert_cohort_pass(folder: Path, *, min_denovo: int = 1) -> dict:
    manifest = json.loads((folder / "manifest.json").read_text())
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    qc = manifest["qc"]
    assert qc["verdict"] == "pass", qc["checks"]
    assert [s["sample"] for s in qc["samples"]] == ["TRIO0001_C", "TRIO0001_F", "TRIO0001_M"]
    assert all(s["verdict"] == "pass" for s in qc["samples"])
    checks = {c["name"]: c for c in qc["checks"]}
    assert checks["samples_passing"]["value"] == 1.0
    m = qc["mendelian"]
    assert m["trios"] == 1 and m["violations"] == m["denovo"] >= min_denovo
    assert checks["mendelian_violations_unexplained"]["status"] == "pass"
    files = {f["path"]: f for f in manifest["files"]}
    for s in qc["samples"]:
        sub = folder / "samples" / s["sample"]
        sm = json.loads((sub / "manifest.json").read_text())
        jsonschema.validate(sm, MANIFEST_SCHEMA)
        assert sm["qc"]["verdict"] == "pass"
        doc = json.loads((folder / s["qc_json"]).read_text())
        assert doc["verdict"] == "pass"
        # The cohort manifest checksums the sample's final manifest and QC files.
        for rel in (f"samples/{s['sample']}/manifest.json", s["qc_json"]):
            assert files[rel]["md5"] == digest_file(folder / rel)["md5"]
    return manifest


def test_trio_cohort_qc_passes(trio):
    manifest = _assert_cohort_pass(trio)
    # The de novo truth file holds exactly the sites Mendelian checking flags.
    with pysam.VariantFile(str(trio / COHORT_FILES["denovo"])) as vf:
        assert sum(1 for _ in vf) == manifest["qc"]["mendelian"]["denovo"]


def test_broken_transmission_fails_mendelian_check(trio, tmp_path):
    """A child genotype at an inherited site changed to one its parents cannot give: one
    unexplained violation, and the aggregate verdict fails."""
    ped = trio / COHORT_FILES["ped"]
    child, father, mother = read_trios(ped)[0]
    out = tmp_path / "broken.vcf.gz"
    done = False
    with pysam.VariantFile(str(trio / COHORT_FILES["vcf"])) as src, \
            pysam.VariantFile(str(out), "wz", header=src.header) as dst:
        for rec in src:
            # Father hom-ref: a hom-alt child would need an alt allele from him.
            if (not done and rec.info.get("SRC") != "denovo"
                    and rec.samples[father]["GT"] == (0, 0)):
                rec.samples[child]["GT"] = (1, 1)
                rec.samples[child].phased = True
                done = True
            dst.write(rec)
    assert done
    m = mendelian_consistency(joint_vcf=out, ped=ped)
    assert m["n_unexplained"] == 1 and m["n_missed"] == 0
    qc = aggregate_cohort_qc(base={"verdict": "pass", "metrics": {}}, samples={}, mendelian=m)
    assert qc["verdict"] == "fail"
    # A flagged de novo the parents also carry is "missed": also a failure.
    good = mendelian_consistency(joint_vcf=trio / COHORT_FILES["vcf"], ped=ped)
    assert good["n_unexplained"] == good["n_missed"] == 0


def test_one_failing_sample_fails_the_cohort():
    samples = {"A": {"verdict": "pass", "headline": {}}, "B": {"verdict": "fail",
                                                           "headline": {"checks_failed": ["x"]}}}
    qc = aggregate_cohort_qc(base={"verdict": "pass", "metrics": {}}, samples=samples)
    assert qc["verdict"] == "fail"
    by = {c["name"]: c for c in qc["checks"]}
    assert by["samples_passing"]["value"] == 0.5 and by["samples_passing"]["status"] == "fail"


def test_flow_runs_sample_qc_as_tasks(prefect_api, tmp_path):
    from flows.cohort_study import run_cohort_study

    spec, _ = _small_trio("chr20:1,000,001-1,040,000")  # smaller still: Dask startup dominates
    path = tmp_path / "trio-small.yaml"
    path.write_text(yaml.safe_dump(spec.model_dump(mode="json")))
    folder = run_cohort_study(str(path), dest=str(tmp_path / "out"), workers=2)
    _assert_cohort_pass(folder, min_denovo=0)

"""The spike-bam flow (issue 8): SpikeSpec -> fetch, spike, bcftools re-call QC, manifest.

Real Prefect (``prefect_api``), a real Dask LocalCluster through ``flows.runtime.run_on_dask``,
the bundled NA12878 chr20 reads (~50x over chr20:9,999,911-10,001,997).
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pysam
import pytest
import yaml

from synthlib.errors import SpecError
from synthlib.qc.vaf import binomial_interval
from synthlib.resources import RESOURCES
from synthlib.spike.qc import check_spike
from synthlib.spike.spec import load_spike_spec, parse_spike_spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "deployments" / "examples" / "spike-na12878.yaml"
CHR20_BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
CHR20_FA = RESOURCES["grch37-chr20-demo.fasta"].local_path()


@pytest.fixture(scope="module")
def runs(prefect_api, tmp_path_factory):
    """The example spec on a 1-worker LocalCluster (BAM out); the same variants as a VCF, CRAM
    out, on Prefect's thread pool."""
    from flows.spike_bam import run_spike

    work = tmp_path_factory.mktemp("spike_flow")
    t = time.perf_counter()
    one = run_spike(str(EXAMPLE), dest=str(work / "out1"), workers=1)
    one["wall"] = time.perf_counter() - t
    # the VCF form: the inline variants as written by the flow, referenced by a relative path
    from synthlib.spike.spec import resolve_reference, write_variants_vcf

    spec = load_spike_spec(EXAMPLE)
    ref = Path(resolve_reference(spec.reference, base_dir=EXAMPLE.parent))
    write_variants_vcf(spec, reference=ref, path=work / "spikes.vcf")
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["variants"] = {"vcf": "spikes.vcf"}
    doc.update(output="cram", bam=str(CHR20_BAM), reference=str(CHR20_FA))
    (work / "vcf-form.yaml").write_text(yaml.safe_dump(doc))
    # same flow on Prefect's thread pool: the output must not depend on the runner (and a
    # second LocalCluster would only cost start-up time on a shared 2-core machine)
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.spike_bam import spike_bam_flow

    t = time.perf_counter()
    two = spike_bam_flow.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        spec=str(work / "vcf-form.yaml"), dest=str(work / "out2"), workers=2)
    two["wall"] = time.perf_counter() - t
    return {"one": one, "two": two, "work": work}


def _manifest(folder: str) -> dict:
    return json.loads((Path(folder) / "manifest.json").read_text())


def test_output_folder_and_manifest(runs):
    res = runs["one"]
    folder = Path(res["folder"])
    assert folder == runs["work"] / "out1" / "na12878-spiked-demo" / "1.0.0"
    names = {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}
    assert {"spiked.bam", "spiked.bam.bai", "truth.vcf.gz", "truth.vcf.gz.tbi",
            "manifest.json", "qc/calls.vcf.gz", "qc/spike_qc.json"} <= names
    assert not any(n.startswith((".work", ".spike-")) for n in names)
    assert not list(folder.parent.glob(".*staging*"))
    m = _manifest(res["folder"])
    assert m["kind"] == "spike" and m["id"] == "na12878-spiked-demo"
    assert m["spec"]["reason"].startswith("positive controls") and m["seed"] == 11
    assert {f["path"] for f in m["files"]} == names - {"manifest.json"}
    assert m["qc"]["verdict"] == "pass" == res["verdict"]
    assert m["plan"]["small_variants"] == 5 and m["plan"]["structural_variants"] == 1
    assert m["run"]["executor"] == "prefect+dask" and m["run"]["workers"] == 1
    assert pysam.samtools.quickcheck(str(folder / "spiked.bam")) == ""
    print(f"\nflow wall {res['wall']:.1f} s (in-flow {res['seconds']:.1f} s), spike "
          f"{res['spike_seconds'] * 1000:.0f} ms, {res['seconds_per_spike'] * 1000:.1f} ms/spike")


def test_qc_recalls_every_spike_within_binomial_bounds(runs):
    qc = json.loads((Path(runs["one"]["folder"]) / "qc" / "spike_qc.json").read_text())
    assert {c["name"]: c["status"] for c in qc["checks"]} == {
        "spike_recall": "pass", "spike_vaf_in_binomial_bounds": "pass",
        "sv_depth_ratio": "pass", "invalid_records": "pass"}
    for row in qc["variants"]:
        assert row["called"], row
        # the spike's own rounding rule, then bcftools' count inside Binomial(DP, VAF)
        assert row["alt_reads"] == int(row["requested"] * row["depth"] + 0.5)
        lo, hi = binomial_interval(row["ref_depth"] + row["alt_depth"], row["requested"],
                                   level=0.999)
        assert lo <= row["alt_depth"] <= hi
    (sv,) = qc["svs"]
    assert sv["svtype"] == "DEL" and abs(sv["ratio"] - 0.5) <= 0.25


def test_vcf_form_cram_other_runner_same_records(runs):
    one, two = Path(runs["one"]["folder"]), Path(runs["two"]["folder"])
    assert runs["two"]["verdict"] == "pass"
    assert (two / "spiked.cram").exists() and (two / "spiked.cram.crai").exists()

    def fields(path: Path) -> list[tuple]:
        with pysam.AlignmentFile(str(path), reference_filename=str(CHR20_FA)) as af:
            return [(r.query_name, r.flag, r.reference_start, r.query_sequence,
                     r.next_reference_start, r.template_length)
                    for r in af.fetch(until_eof=True)]

    # same variants and seed: the same reads, whatever the spec form, format and runner
    assert fields(two / "spiked.cram") == fields(one / "spiked.bam")
    assert _manifest(str(two))["run"]["workers"] == 2


def test_qc_fails_when_the_request_is_not_what_was_spiked(runs, tmp_path):
    """The check can fail: claim VAF 0.1 for the spike at 0.5 and 0.5 for the one at 1.0."""
    folder = Path(runs["one"]["folder"])
    lines = gzip.open(folder / "truth.vcf.gz", "rt").read().splitlines()
    out = []
    for line in lines:
        if line.startswith("chr20\t10000050\t"):
            line = line.replace("REQ_VAF=0.5;", "REQ_VAF=0.1;")
        elif line.startswith("chr20\t10000160\t"):
            line = line.replace("REQ_VAF=1;", "REQ_VAF=0.5;")
        out.append(line)
    lied = tmp_path / "lied.vcf"
    lied.write_text("\n".join(out) + "\n")
    qc = check_spike(bam=folder / "spiked.bam", reference=CHR20_FA, truth=lied,
                     workdir=tmp_path / "qc")
    status = {c["name"]: c["status"] for c in qc["checks"]}
    assert qc["verdict"] == "fail" and status["spike_vaf_in_binomial_bounds"] == "fail"
    bad = [(r["pos"], r["requested"]) for r in qc["variants"] if not r["vaf_ok"]]
    assert (10000050, 0.1) in bad and (10000160, 0.5) in bad


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthlib.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("edit", "field"), [
    ({"qc": {"level": 2}}, "qc.level"),
    ({"variants": {"explicit": [{"chrom": "chr20", "pos": 10000050, "ref": "C", "alt": "C"}]}},
     "variants.explicit.0"),
    ({"outptu": "cram"}, "outptu"),
])
def test_bad_spec_field_exits_2_naming_it(edit, field, tmp_path):
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc.update(edit)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(doc))
    res = _cli(["spike", "--spec", str(bad), "--dest", str(tmp_path / "out")], tmp_path)
    msg = " ".join(res.stderr.split())
    assert res.returncode == 2, res.stderr
    assert "bad.yaml" in msg and f"'{field}" in msg and "Traceback" not in msg
    assert not (tmp_path / "out").exists()


def test_spec_rules():
    base = yaml.safe_load(EXAMPLE.read_text())
    spec = parse_spike_spec(base)
    assert spec.variants.explicit[1].genotype == "hom" and spec.output == "bam"
    for variants, msg in [
        ({"vcf": "x.vcf", **base["variants"]}, "either 'vcf'"),
        ({}, "nothing to spike"),
        ({"structural": [{"type": "insertion", "chrom": "chr20", "pos": 10}]}, "exactly one"),
        ({"structural": [{"type": "cnv", "chrom": "chr20", "pos": 10, "end": 20}]}, "'cn'"),
    ]:
        with pytest.raises(SpecError, match=msg):
            parse_spike_spec({**base, "variants": variants}, source="s.yaml")
    with pytest.raises(SpecError, match="s.yaml: field 'reason'"):
        parse_spike_spec({k: v for k, v in base.items() if k != "reason"}, source="s.yaml")


def test_deployment_declared_with_shared_definitions():
    text = (REPO / "deployments" / "prefect.yaml").read_text()
    doc = yaml.safe_load(text)
    (d,) = [d for d in doc["deployments"] if d["name"] == "spike-bam"]
    path, func = d["entrypoint"].split(":")
    assert f"def {func}(" in (REPO / path).read_text()
    assert d["work_pool"] == doc["definitions"]["work_pools"]["synth"]
    assert "work_pool: *synth_pool" in text.split("name: spike-bam")[1]
    load_spike_spec(REPO / d["parameters"]["spec"])  # the default parameter is a valid spec


def test_example_copy_elsewhere_resolves_resource_names(tmp_path):
    # resource names do not depend on where the spec file lives
    shutil.copy(EXAMPLE, tmp_path / "s.yaml")
    assert load_spike_spec(tmp_path / "s.yaml").bam == "grch37-chr20-demo.na12878-reads"

"""The cohort flow end to end: `synth run tof-cohort-demo` as Prefect tasks on Dask."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pysam
import pysam.bcftools
import pytest

from synthlib.catalog import get_entry, resolve_spec
from synthlib.cohort import BURDEN_COLUMNS, read_samples_tsv, run_burden_study, simulate_cohort
from synthlib.cohort.study import COHORT_FILES, generate_cohort_local, plan_cohort_study
from synthlib.errors import SpecError
from synthlib.io.checksums import digest_file
from synthlib.spec import parse_spec, spec_hash

DEMO = "tof-cohort-demo"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(prefect_api, tmp_path_factory):
    """The demo through the flow on a LocalCluster of 1 and of 2 workers."""
    from flows.cohort_study import run_cohort_study

    out = {}
    for workers in (1, 2):
        dest = tmp_path_factory.mktemp(f"cohort-w{workers}")
        out[workers] = run_cohort_study(DEMO, dest=str(dest), workers=workers)
    return out


@pytest.fixture(scope="module")
def manifest(runs) -> dict:
    return json.loads((runs[2] / "manifest.json").read_text())


def _spiked() -> list[str]:
    return [g.gene for g in get_entry(DEMO).spec.cohort.burden]


def _data_files(folder: Path) -> list[str]:
    return sorted(
        str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()
        and p.name != "manifest.json"
    )


def test_layout_and_manifest(runs, manifest):
    spec = get_entry(DEMO).spec
    ds = runs[2]
    assert ds == ds.parent.parent / spec.id / spec.version
    assert not [p for p in ds.parent.iterdir() if p.name != spec.version]  # no staging left
    assert manifest["format"] == "synthlib.manifest/1" and manifest["kind"] == "cohort"
    assert manifest["spec_hash"] == spec_hash(spec) and manifest["seed"] == spec.seed
    listed = [f["path"] for f in manifest["files"]]
    assert listed == _data_files(ds) == sorted(COHORT_FILES.values())
    for f in manifest["files"]:
        assert {**f, "path": None} == {"path": None, **digest_file(ds / f["path"])}
    assert manifest["run"]["executor"] == "prefect+dask" and manifest["run"]["workers"] == 2
    plan = manifest["plan"]
    assert plan["samples"] == spec.cohort.n_cases + spec.cohort.n_controls + 2 * spec.cohort.trios
    assert plan["units"] == len(spec.reference.regions) * math.ceil(
        plan["samples"] / spec.cohort.sample_block)
    reads = plan["reads"]  # outputs.fastq/bam are on; reads_samples 0: planned and costed only
    assert reads["requested"] and reads["samples_with_reads"] == 0
    assert reads["per_sample"]["read_pairs"] > 0 and reads["total"]["read_pairs"] == 0
    assert reads["all_samples"]["read_pairs"] == reads["per_sample"]["read_pairs"] * plan[
        "samples"]
    qc = manifest["qc"]
    assert qc["verdict"] == "pass"
    assert qc["metrics"]["spike_carriers_in_vcf"] == qc["metrics"]["spikes_planned"] == plan[
        "spikes"] > 0


def test_burden_sorted_spiked_genes_on_top_and_significant(runs, manifest):
    df = pd.read_csv(runs[2] / "study" / "burden.tsv", sep="\t")
    assert list(df.columns) == list(BURDEN_COLUMNS)
    assert df["p_value"].is_monotonic_increasing
    spiked = _spiked()
    n_tested = int(((df["carriers_cases"] + df["carriers_controls"]) > 0).sum())
    threshold = 0.05 / n_tested
    assert set(df["gene"].head(len(spiked))) == set(spiked)
    top = df.set_index("gene").loc[spiked]
    assert (top["p_value"] < threshold).all() and (top["p_adjusted"] < 0.05).all()
    rest = df[~df["gene"].isin(spiked)]
    assert (rest["p_value"] >= threshold).all() and (rest["p_adjusted"] >= 0.05).all()
    m = manifest["qc"]["metrics"]
    assert sorted(m["significant_genes"]) == sorted(spiked)
    assert m["unspiked_genes_significant"] == []
    report = (runs[2] / "study" / "report.md").read_text()
    assert all(g in report for g in spiked)


def test_same_bytes_on_1_and_2_workers_and_serially(runs, tmp_path):
    def md5s(folder: Path) -> dict[str, str]:
        m = json.loads((folder / "manifest.json").read_text())
        return {f["path"]: f["md5"] for f in m["files"]}

    one, two = md5s(runs[1]), md5s(runs[2])
    assert one == two
    spec, base = resolve_spec(DEMO)
    serial = generate_cohort_local(plan_cohort_study(spec, base_dir=base), dest=tmp_path)
    assert md5s(serial) == two


def test_joint_vcf_is_valid(runs, manifest):
    ds = runs[2]
    vcf = ds / COHORT_FILES["vcf"]
    samples = read_samples_tsv(ds / COHORT_FILES["samples"])
    header = pysam.bcftools.view("-h", str(vcf)).splitlines()
    names = header[-1].split("\t")[9:]
    assert names == [s.sample for s in samples]
    records = pysam.bcftools.view("-H", str(vcf)).splitlines()  # parses every record
    assert len(records) == manifest["qc"]["metrics"]["sites"] > 0
    # The index answers region queries: every record lies in a spec region.
    spec = get_entry(DEMO).spec
    in_regions = sum(
        len(pysam.bcftools.view("-H", str(vcf), r.replace(",", "")).splitlines())
        for r in spec.reference.regions
    )
    assert in_regions == len(records)
    # Spiked variants: one per carrier, round(fraction * cases) per gene, never in controls.
    cases = sum(1 for s in samples if s.role == "case")
    per_gene = {}
    with pysam.VariantFile(str(vcf)) as fh:
        for rec in fh:
            if rec.info["SRC"] != "spike":
                continue
            carriers = [s for s, v in rec.samples.items() if any(a == 1 for a in v["GT"])]
            assert len(carriers) == 1 and not carriers[0].startswith("CTRL")
            per_gene[rec.info["GENE"]] = per_gene.get(rec.info["GENE"], 0) + 1
    expected = {g.gene: round(g.carrier_fraction_cases * cases) for g in spec.cohort.burden}
    assert per_gene == expected


def test_demo_design_holds_over_other_seeds(tmp_path):
    """The demo sizes are not tuned to one seed: other seeds give the same answer."""
    spec, base = resolve_spec(DEMO)
    spiked = set(_spiked())
    plan = plan_cohort_study(spec, base_dir=base)
    for seed in (1, 2):
        out = simulate_cohort(
            spec.cohort, seed=seed, regions=list(spec.reference.regions),
            out_dir=tmp_path / str(seed), reference=spec.reference.name, base_dir=base,
        )
        res = run_burden_study(
            joint_vcf=out.joint_vcf, samples_tsv=out.samples_tsv,
            genes_bed=plan.inputs.genes_bed, out_dir=tmp_path / str(seed) / "study",
            max_af=spec.cohort.max_af,
        )
        assert set(res.significant) == spiked, seed


def _cohort_doc(**changes) -> dict:
    doc = {
        "id": "c", "seed": 1, "reason": "r", "coverage": 30,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1000001-2000000"]},
        "cohort": {"n_cases": 10, "n_controls": 10},
    }
    doc.update(changes)
    return doc


def test_cohort_spec_rules():
    spec = parse_spec(_cohort_doc())
    assert spec.germline.source == "none"  # an omitted germline means none for a cohort
    assert parse_spec(_cohort_doc(germline={"source": "none"})).cohort.n_cases == 10
    with pytest.raises(SpecError, match="germline"):
        parse_spec(_cohort_doc(germline={"source": "population"}))
    with pytest.raises(SpecError, match="variants"):
        parse_spec(_cohort_doc(variants={"random": [{"type": "snv", "count": 1}]}))
    with pytest.raises(SpecError, match="somatic"):
        parse_spec(_cohort_doc(somatic={}))
    with pytest.raises(SpecError, match="regions"):
        parse_spec(_cohort_doc(reference={"name": "grch37-chr20-demo"}))
    with pytest.raises(SpecError, match="cohort"):
        plan_cohort_study(parse_spec({k: v for k, v in _cohort_doc().items() if k != "cohort"}))


def test_full_scale_entry_is_a_cohort_on_grch38():
    spec = get_entry("tof-cohort").spec
    assert spec.cohort is not None and spec.cohort.n_cases == 829
    assert {g.gene for g in spec.cohort.burden} >= {"NOTCH1", "FLT4"}
    assert spec.reference.name == "grch38"


def test_notebook_code_runs(runs, tmp_path, monkeypatch):
    """Every code cell of the notebook, in order, on the flow output above (no kernel)."""
    nb = json.loads((REPO / "notebooks" / "tof_cohort_demo.ipynb").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTH_DEST", str(runs[2].parent.parent))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    env: dict = {}
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            exec(compile("".join(cell["source"]), "tof_cohort_demo.ipynb", "exec"), env)
    assert env["ds"] == runs[2]  # it read the flow's output, it did not run its own
    assert set(env["burden"]["gene"].head(len(env["spiked"]))) == set(env["spiked"]) == set(
        _spiked())
    assert env["sites"]["spike"] == len(env["spikes"]) > 0


def test_cohort_dataset_publishes(runs, tmp_path):
    from synthlib.publish import publish_dataset

    res = publish_dataset(dataset_dir=runs[2], dest=str(tmp_path / "bucket"))
    assert res.status == "published"
    assert {u.split("/", 2)[2] for u in res.uploaded} == {*COHORT_FILES.values(), "manifest.json"}

"""Somatic variants at target VAFs and tumor/normal pairs, checked from the reads."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
from _svdata import base_spec, generate, md5

from synthlib.errors import SpecError, VariantError
from synthlib.generate import merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec
from synthlib.variants.somatic import normal_spec

REGION = {"name": "grch37-chr20-demo", "regions": ["chr20:1,300,001-1,330,000"]}


def _tumor(**over):
    return base_spec(
        "som-test", coverage=300, reference=REGION, chunk_size=10_000,
        germline={"source": "population", "population": "EUR"}, somatic={"purity": 0.8,
                                                                         "normal_coverage": 100},
        variants={"explicit": [], "random": [
            {"type": "snv", "count": 12, "vaf": 0.05}, {"type": "snv", "count": 12, "vaf": 0.3},
            {"type": "snv", "count": 5}]}, **over)


@pytest.fixture(scope="module")
def tumor(tmp_path_factory):
    return generate(_tumor(), tmp_path_factory.mktemp("tumor"))


def _alt_counts(ds, rec):
    with pysam.AlignmentFile(str(ds / "golden.bam")) as bam:
        cov = bam.count_coverage(rec.chrom, rec.pos - 1, rec.pos, quality_threshold=0,
                                 read_callback="all")
    depth = sum(int(c[0]) for c in cov)
    return int(cov["ACGT".index(rec.alts[0])][0]), depth


def _records(ds):
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        return list(f)


def test_realized_vaf_follows_target(tumor):
    # Alt reads ~ Binomial(depth, vaf) (plus ~0.3% sequencing errors each way): per variant
    # within 4.5 sigma, and pooled per VAF level within 4 sigma.
    pooled: dict[float, list[int]] = {}
    n_somatic = 0
    for rec in _records(tumor):
        if rec.info["SRC"] != "somatic":
            continue
        n_somatic += 1
        vaf = round(float(rec.info["VAF"]), 6)
        alt, depth = _alt_counts(tumor, rec)
        sd = np.sqrt(depth * vaf * (1 - vaf))
        assert abs(alt - depth * vaf) <= 4.5 * sd + 2, (rec.id, alt, depth, vaf)
        acc = pooled.setdefault(vaf, [0, 0])
        acc[0] += alt
        acc[1] += depth
    assert 20 <= n_somatic <= 24  # a few may yield to germline variants (assemble rules)
    for vaf, (alt, depth) in pooled.items():
        assert abs(alt - depth * vaf) <= 4 * np.sqrt(depth * vaf * (1 - vaf)) + 5, vaf


def test_germline_spikes_stay_half(tumor):
    recs = [r for r in _records(tumor) if r.info["SRC"] == "spike"]
    assert len(recs) == 5
    alt, depth = map(sum, zip(*(_alt_counts(tumor, r) for r in recs), strict=True))
    assert abs(alt / depth - 0.5) < 4 * np.sqrt(0.25 / depth) + 0.01


def test_tumor_normal_pair_shares_germline(tumor, tmp_path):
    nspec = normal_spec(parse_spec(_tumor()))
    assert nspec.id == "som-test-normal" and nspec.coverage == 100 and nspec.somatic is None
    normal = generate(nspec.model_dump(mode="json"), tmp_path)
    t_recs = [str(r).split("\t")[:9] for r in _records(tumor) if r.info["SRC"] != "somatic"]
    n_recs = [str(r).split("\t")[:9] for r in _records(normal)]
    assert t_recs == n_recs and len(n_recs) > 5
    with pysam.AlignmentFile(str(normal / "golden.bam")) as bam:
        assert bam.header.to_dict()["RG"][0]["SM"] == "som-test-normal"
    # The somatic sites show no alt in the normal beyond sequencing errors.
    for rec in _records(tumor):
        if rec.info["SRC"] == "somatic":
            alt, depth = _alt_counts(normal, rec)
            assert alt <= 0.03 * depth + 2, (rec.id, alt, depth)


def test_unit_order_does_not_change_bytes(tumor, tmp_path):
    plan = plan_dataset(parse_spec(_tumor()))
    work = tmp_path / "work"
    work.mkdir()
    for unit in reversed(plan.units):
        run_unit(plan, unit, workdir=work)
    merge_units(plan, workdir=work, out_dir=tmp_path / "out")
    for name in ("golden.bam", "reads_R1.fastq.gz", "reads_R2.fastq.gz", "truth.vcf.gz"):
        assert md5(tmp_path / "out" / name) == md5(tumor / name), name


def test_vaf_limits():
    with pytest.raises(VariantError, match="purity"):
        spec = _tumor()
        spec["somatic"] = {"purity": 0.4}  # a het at VAF 0.3 needs 60% tumor cells
        spec["variants"] = {"random": [{"type": "snv", "count": 1, "vaf": 0.3}]}
        plan_dataset(parse_spec(spec))
    with pytest.raises(SpecError, match="somatic"):
        parse_spec(base_spec("x", variants={"random": [{"type": "snv", "count": 1,
                                                        "vaf": 0.1}]}))


def test_matched_normal_is_generated_beside_the_tumor(tumor):
    import json

    normal = tumor / "normal"
    top = json.loads((tumor / "manifest.json").read_text())
    listed = {f["path"] for f in top["files"]}
    assert {"normal/golden.bam", "normal/truth.vcf.gz", "normal/reads_R1.fastq.gz",
            "normal/manifest.json"} <= listed
    assert top["plan"]["normal"]["id"] == "som-test-normal"
    sub = json.loads((normal / "manifest.json").read_text())
    assert sub["spec"]["somatic"] is None and sub["spec"]["coverage"] == 100
    # Same germline and germline-like spikes; none of the somatic variants.
    key = lambda r: (r.chrom, r.pos, r.ref, r.alts)  # noqa: E731
    t_recs, n_recs = _records(tumor), _records(normal)
    assert {key(r) for r in t_recs if r.info["SRC"] != "somatic"} == {key(r) for r in n_recs}
    assert all(r.info["SRC"] != "somatic" for r in n_recs)
    # Depth at the spec's normal coverage: 100x over 30 kb of 2x150 pairs (+-4 sigma).
    with pysam.AlignmentFile(str(normal / "golden.bam")) as bam:
        assert bam.header.to_dict()["RG"][0]["SM"] == "som-test-normal"
        pairs = sum(1 for r in bam if r.is_read1 and not r.is_secondary
                    and not r.is_supplementary)
    expected = 100 * 30_000 / 300
    assert abs(pairs - expected) < 4 * np.sqrt(expected) + 0.02 * expected

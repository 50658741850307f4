"""Empirical insert sizes: learned from the bundled real BAM, validated, simulated, QC'd.

Statistical checks use bounds derived from the sample sizes: a chi-square goodness-of-fit of
the golden BAM's template lengths to the histogram (critical value at alpha = 1e-3 by the
Wilson-Hilferty approximation) and a mean within Z standard errors of the exact expectation.
"""

from __future__ import annotations

import json
import math

import jsonschema
import numpy as np
import pysam
import pytest

from synthlib.errors import ModelError
from synthlib.generate import FILES, generate_local
from synthlib.io.checksums import digest_file
from synthlib.plan import plan_dataset
from synthlib.qc.metrics import expected_fragment_moments
from synthlib.reads.fragments import (
    INSERT_SIZE_DIR,
    INSERT_SIZE_SCHEMA,
    InsertSizeModel,
    fragment_distribution,
    insert_size_presets,
)
from synthlib.reads.learn import INSERT_SIZE_PRESET, learn_insert_sizes
from synthlib.resources import RESOURCES
from synthlib.spec import parse_spec, spec_hash

BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
Z = 4.5
_Z_CHI2 = 3.0902  # one-sided normal quantile of alpha = 1e-3


def _chi2_critical(df: int, z: float = _Z_CHI2) -> float:
    """Upper critical value of chi-square(df) (Wilson-Hilferty; < 1% off for df >= 10)."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def _schema() -> dict:
    return json.loads(INSERT_SIZE_SCHEMA.read_text())


def _spec(fragment: dict | None, *, seed: int = 7, id_: str = "frag-test", length: int = 100,
          coverage: float = 10.0, region: str = "chr20:1,000,001-1,200,000") -> dict:
    doc = {
        "id": id_, "version": "1.0.0", "seed": seed, "title": "fragment test",
        "reason": "tests", "reference": {"name": "grch37-chr20-demo", "regions": [region]},
        "coverage": coverage, "reads": {"length": length, "model": "illumina-novaseq-binned-2x150"},
        "germline": {"source": "none"},
        "variants": {"random": [{"type": "snv", "count": 20, "genotype": "mixed"}]},
        "chunk_size": 100_000,
    }
    if fragment is not None:
        doc["fragment"] = fragment
    return doc


def _golden_tlens(bam_path) -> np.ndarray:
    out = []
    with pysam.AlignmentFile(str(bam_path)) as bam:
        for r in bam:
            if (r.is_read1 and not r.is_secondary and not r.is_supplementary
                    and not r.is_duplicate and r.template_length != 0):
                out.append(abs(r.template_length))
    return np.asarray(out, dtype=np.int64)


# ----------------------------------------------------------------------------- learning
def test_learn_from_bundled_bam_matches_shipped_preset():
    model = learn_insert_sizes(path=BAM, name=INSERT_SIZE_PRESET, bin_width=10)
    src = model.source
    assert src["file"] == "NA12878_small.bam" and src["records_read"] == 973
    with BAM.open("rb") as fh:
        import hashlib
        assert src["md5"] == hashlib.md5(fh.read()).hexdigest()
    # Every qualifying pair is in the histogram except those past the trim quantiles.
    assert src["pairs_used"] == int(model.counts.sum()) == src["pairs_qualifying"] - src[
        "pairs_trimmed"]
    assert src["pairs_trimmed"] <= math.ceil(0.01 * src["pairs_qualifying"]) + 2
    a, b = src["trim_bounds"]
    assert model.start == a and model.stop - 1 >= b > a
    shipped = InsertSizeModel.load(INSERT_SIZE_PRESET)
    assert shipped.start == model.start and shipped.bin_width == model.bin_width
    assert np.array_equal(shipped.counts, model.counts)  # the preset is reproducible
    assert INSERT_SIZE_PRESET in insert_size_presets()
    # An NA12878 2x101 library: median insert ~300 bp.
    assert 250 < model.summary()["median"] < 380


def test_learn_filters_records(tmp_path):
    # MAPQ above every record's: nothing qualifies, and the error says which filter.
    with pytest.raises(ModelError, match="MAPQ >= 255"):
        learn_insert_sizes(path=BAM, min_mapq=255)
    strict = learn_insert_sizes(path=BAM, min_mapq=60, trim=(0.0, 1.0), bin_width=1)
    loose = learn_insert_sizes(path=BAM, min_mapq=0, trim=(0.0, 1.0), bin_width=1)
    assert strict.counts.sum() <= loose.counts.sum()
    with pysam.AlignmentFile(str(BAM)) as bam:
        n = sum(1 for r in bam if r.is_read1 and r.is_proper_pair and not r.is_secondary
                and not r.is_supplementary and not r.is_duplicate and r.mapping_quality >= 0
                and r.template_length != 0)
    assert loose.counts.sum() == n


# ------------------------------------------------------------------------------ schema
def test_preset_json_validates_against_schema(tmp_path):
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    for path in INSERT_SIZE_DIR.glob("*.json"):
        jsonschema.validate(json.loads(path.read_text()), schema,
                            cls=jsonschema.Draft202012Validator)
    out = learn_insert_sizes(path=BAM, bin_width=5).save(tmp_path / "m.json")
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)
    assert InsertSizeModel.load(out).counts.sum() == doc["summary"]["n"]


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.update(format="synthlib.insertsize/2"), "format"),
    (lambda d: d.update(counts=[0, 0]), "counts"),
    (lambda d: d.update(counts=[1, -1]), "counts"),
    (lambda d: d.pop("bin_width"), "bin_width"),
])
def test_bad_documents_fail_schema_and_loader(mutate, field):
    doc = InsertSizeModel.load(INSERT_SIZE_PRESET).to_dict()
    mutate(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, _schema(), cls=jsonschema.Draft202012Validator)
    with pytest.raises(ModelError, match=field):
        InsertSizeModel.from_dict(doc, where="x.json")


# --------------------------------------------------------------------------------- spec
def test_spec_fields_and_unchanged_dump():
    normal = parse_spec(_spec(None))
    explicit = parse_spec(_spec({"model": "normal", "mean": 350, "sd": 50}))
    # A normal spec dumps (and hashes) exactly as before the empirical option existed.
    assert "model" not in normal.model_dump(mode="json")["fragment"]
    assert spec_hash(normal) == spec_hash(explicit)
    emp = parse_spec(_spec({"model": "empirical", "empirical": INSERT_SIZE_PRESET}))
    assert emp.model_dump(mode="json")["fragment"]["empirical"] == INSERT_SIZE_PRESET
    assert spec_hash(emp) != spec_hash(normal)
    assert parse_spec(emp.model_dump(mode="json")) == emp  # a manifest's spec loads again
    from synthlib.errors import SpecError
    for bad in ({"model": "empirical"}, {"empirical": INSERT_SIZE_PRESET},
                {"model": "empirical", "empirical": INSERT_SIZE_PRESET, "mean": 300}):
        with pytest.raises(SpecError):
            parse_spec(_spec(bad))


def test_relative_path_and_truncation(tmp_path):
    InsertSizeModel.load(INSERT_SIZE_PRESET).save(tmp_path / "mine.json")
    spec = parse_spec(_spec({"model": "empirical", "empirical": "mine.json",
                             "min": 200, "max": 400}))
    d = fragment_distribution(spec, base_dir=tmp_path)
    assert d.lengths[0] == 200 and d.lengths[-1] == 400
    full = fragment_distribution(parse_spec(_spec({"model": "empirical",
                                                   "empirical": INSERT_SIZE_PRESET})))
    p = full.probabilities[(full.lengths >= 200) & (full.lengths <= 400)]
    assert np.allclose(d.probabilities, p / p.sum())
    assert expected_fragment_moments(spec, base_dir=tmp_path) == pytest.approx((d.mean, d.sd))
    with pytest.raises(ModelError, match="no such insert-size"):
        fragment_distribution(spec, base_dir=tmp_path / "elsewhere")
    rng = np.random.default_rng(1)
    x = d.sample(rng, 50_000)
    assert x.min() >= 200 and x.max() <= 400
    assert abs(x.mean() - d.mean) < Z * d.sd / math.sqrt(x.size)


# -------------------------------------------------------------------------- simulation
@pytest.fixture(scope="module")
def empirical_dataset(tmp_path_factory):
    spec = parse_spec(_spec({"model": "empirical", "empirical": INSERT_SIZE_PRESET},
                            id_="frag-empirical"))
    plan = plan_dataset(spec)
    return plan, generate_local(plan, dest=tmp_path_factory.mktemp("emp"))


def test_golden_tlen_follows_histogram(empirical_dataset):
    plan, ds = empirical_dataset
    tlen = _golden_tlens(ds / FILES["bam"])
    n = tlen.size
    assert n > 5000
    model = InsertSizeModel.load(INSERT_SIZE_PRESET)
    # No germline indels, SNV spikes only: the template length is the fragment length.
    assert tlen.min() >= model.start and tlen.max() < model.stop
    p = model.counts / model.counts.sum()
    observed = np.bincount((tlen - model.start) // model.bin_width, minlength=p.size)
    assert observed[p == 0].sum() == 0  # empty bins of the histogram stay empty
    expected = n * p[p > 0]
    assert expected.min() >= 5  # chi-square approximation holds
    stat = float((((observed[p > 0] - expected) ** 2) / expected).sum())
    df = int((p > 0).sum()) - 1
    assert stat < _chi2_critical(df), (stat, df)
    mean, sd = expected_fragment_moments(plan.spec)
    assert abs(tlen.mean() - mean) < Z * sd / math.sqrt(n)


def test_qc_insert_checks_pass(empirical_dataset):
    from synthlib.qc.run import run_qc

    _, ds = empirical_dataset
    result = run_qc(dataset_dir=ds)
    checks = [c for c in result.checks if "insert" in c.name]
    assert checks, [c.name for c in result.checks]
    assert all(c.status == "pass" for c in checks), [c.to_dict() for c in checks]
    ins = result.metrics["insert_size"]
    assert ins["expected_mean"] == pytest.approx(expected_fragment_moments(
        parse_spec(json.loads((ds / "manifest.json").read_text())["spec"]))[0])


def test_normal_default_bytes_unchanged(tmp_path):
    """A spec without ``model`` and one with ``model: normal`` give byte-identical files."""
    region = "chr20:1,500,001-1,530,000"
    a = parse_spec(_spec({"mean": 300, "sd": 40}, id_="frag-a", region=region, coverage=5))
    b = parse_spec(_spec({"model": "normal", "mean": 300, "sd": 40}, id_="frag-a",
                         region=region, coverage=5))
    da = generate_local(plan_dataset(a), dest=tmp_path / "a")
    db = generate_local(plan_dataset(b), dest=tmp_path / "b")
    for name in FILES.values():
        if (da / name).exists():
            assert digest_file(da / name)["md5"] == digest_file(db / name)["md5"], name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (da, db))
    assert ma["spec_hash"] == mb["spec_hash"] and ma["spec"] == mb["spec"]

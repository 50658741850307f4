"""Realized VAF of somatic truth records (FORMAT DP/AD/AF) against the golden BAM's reads."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pysam
import pysam.bcftools
import pytest
from _svdata import FASTA, base_spec, generate
from _variant_checks import bcftools_stderr

from synthlib.generate import generate_local, load_model, merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

REGION = {"name": "grch37-chr20-demo", "regions": ["chr20:1,400,001-1,420,000"]}


def _spec():
    return base_spec(
        "rvaf-test", coverage=200, reference=REGION, chunk_size=10_000,
        germline={"source": "population", "population": "EUR"}, somatic={"purity": 0.9},
        variants={"random": [{"type": "snv", "count": 10, "vaf": 0.08},
                             {"type": "snv", "count": 10, "vaf": 0.3},
                             {"type": "deletion", "count": 3, "vaf": 0.2, "max_size": 5},
                             {"type": "snv", "count": 3}]})


@pytest.fixture(scope="module")
def tumor(tmp_path_factory):
    return generate(_spec(), tmp_path_factory.mktemp("rvaf"))


def _somatic(ds):
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        return [r for r in f if r.info["SRC"] == "somatic"]


def _pileup(ds, rec):
    """(alt reads, reads with a base) at an SNV, every read counted (no filters)."""
    alt = depth = 0
    with pysam.AlignmentFile(str(ds / "golden.bam")) as bam:
        for col in bam.pileup(rec.chrom, rec.pos - 1, rec.pos, truncate=True, stepper="nofilter",
                              min_base_quality=0, ignore_overlaps=False, flag_filter=0,
                              max_depth=1_000_000):
            for r in col.pileups:
                if r.is_del or r.is_refskip:
                    continue
                depth += 1
                alt += r.alignment.query_sequence[r.query_position] == rec.alts[0]
    return alt, depth


def _error_rate(spec) -> float:
    """Per-base chance a read shows a wrong base or N (mean over cycles and both reads)."""
    model = load_model(plan_dataset(parse_spec(spec)))
    return float(np.mean([model.expected_error_rate(r).mean() + model.expected_no_call_rate(r)
                          .mean() for r in (1, 2)]))


def test_header_and_bcftools_accept(tumor):
    text = pysam.bcftools.view("-h", str(tumor / "truth.vcf.gz"))
    for tag in ("DP", "AD", "AF"):
        assert f"##FORMAT=<ID={tag}," in text
    body = pysam.bcftools.view("-H", str(tumor / "truth.vcf.gz"))
    assert body.count("GT:DP:AD:AF") == len(_somatic(tumor)) > 15
    for args in (("view", "-o", "/dev/null"),
                 ("norm", "-c", "e", "-f", str(FASTA), "-o", "/dev/null")):
        err = bcftools_stderr(*args, str(tumor / "truth.vcf.gz"))
        assert "[W::" not in err and "[E::" not in err and "warn" not in err.lower(), err


def test_realized_equals_independent_bam_count(tumor):
    e = _error_rate(_spec())
    snvs = [r for r in _somatic(tumor) if len(r.ref) == len(r.alts[0]) == 1]
    assert len(snvs) >= 15
    diff_sum = expect_sum = var_sum = 0.0
    for rec in snvs:
        s = rec.samples[0]
        dp, (n_ref, n_alt) = s["DP"], s["AD"]
        assert n_ref + n_alt == dp and abs(s["AF"][0] - n_alt / dp) < 1e-5
        alt_bam, depth_bam = _pileup(tumor, rec)
        assert depth_bam == dp, (rec.id, depth_bam, dp)  # the same reads span the base
        # Sequencing errors move reads off the alt (carriers, rate e) and rarely onto it
        # (others, rate e/3): the BAM count differs by about that, nothing else.
        sd = np.sqrt(dp * e)
        assert abs(alt_bam - n_alt) <= 4 * sd + 1, (rec.id, alt_bam, n_alt, dp, e)
        diff_sum += n_alt - alt_bam
        expect_sum += n_alt * e - n_ref * e / 3
        var_sum += dp * e
    assert abs(diff_sum - expect_sum) <= 4 * np.sqrt(var_sum) + 2


def test_realized_within_binomial_of_target(tumor):
    recs = _somatic(tumor)
    for rec in recs:
        s = rec.samples[0]
        vaf, dp, alt = float(rec.info["VAF"]), s["DP"], s["AD"][1]
        assert dp > 50
        # Both mates of one fragment may span the variant: variance up to twice binomial.
        sd = np.sqrt(2 * dp * vaf * (1 - vaf))
        assert abs(alt - dp * vaf) <= 4.5 * sd + 2, (rec.id, alt, dp, vaf)
    assert any(len(r.ref) > 1 for r in recs)  # deletions carry counts too


def test_counts_do_not_depend_on_unit_order(tumor, tmp_path):
    # Workers finish units in any order: run them backwards, merge, same truth bytes.
    plan = plan_dataset(parse_spec(_spec()))
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    model = load_model(plan)
    for u in reversed(plan.units):
        run_unit(plan, u, workdir=work, model=model)
    merge_units(plan, workdir=work, out_dir=out)

    def digest(p):
        return hashlib.md5(gzip.decompress(p.read_bytes())).hexdigest()

    assert digest(out / "truth.vcf.gz") == digest(tumor / "truth.vcf.gz")


def test_normal_has_no_format_counts(tmp_path):
    spec = parse_spec(base_spec("rvaf-normal", coverage=5, reference=REGION, chunk_size=10_000))
    ds = generate_local(plan_dataset(spec), dest=tmp_path)
    header = pysam.bcftools.view("-h", str(ds / "truth.vcf.gz"))
    assert "##FORMAT=<ID=AD" not in header

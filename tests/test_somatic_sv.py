"""Somatic SVs/CNVs at target VAFs: depth ratios and junction reads from the golden BAM."""

from __future__ import annotations

import pysam
import pytest
from _svdata import base_spec, generate, poisson_ok, starts_in
from _tra import break_stats, expected_counts

from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec
from synthlib.variants.somatic import normal_spec

COV, NCOV, L, MEAN, PURITY = 60, 30, 150, 350, 0.8

# (id, spec fields, window inside the event, expected tumor depth ratio to a diploid region):
# a het DEL/DUP at VAF v changes depth by -v / +v; a CNV with total copy number CN by
# (CN - 2) / 2 x 2v / alleles (alleles = haplotypes whose copy count changes).
EVENTS = [
    ("som_del", {"type": "deletion", "pos": 1_010_001, "end": 1_020_000, "vaf": 0.3},
     (1_010_500, 1_019_500), 0.7),
    ("som_dup", {"type": "duplication", "pos": 1_030_001, "end": 1_038_000, "vaf": 0.4},
     (1_030_500, 1_037_500), 1.4),
    ("som_cn4", {"type": "cnv", "pos": 1_045_001, "end": 1_053_000, "cn": 4, "vaf": 0.2},
     (1_045_500, 1_052_500), 1.2),
    ("som_cn1", {"type": "cnv", "pos": 1_060_001, "end": 1_068_000, "cn": 1, "vaf": 0.25},
     (1_060_500, 1_067_500), 0.75),
    ("germ_del", {"type": "deletion", "pos": 1_090_001, "end": 1_096_000},
     (1_090_500, 1_095_500), 0.5),
]
TRA_VAF = 0.3
TRA = {"type": "translocation", "chrom": "chr20", "pos": 1_080_001, "chrom2": "chr20",
       "pos2": 10_050_001, "vaf": TRA_VAF, "id": "som_tra"}


def _tumor() -> dict:
    svs = [{"chrom": "chr20", "id": name, **fields} for name, fields, _, _ in EVENTS]
    return base_spec(
        "som-sv", coverage=COV, chunk_size=100_000,
        reference={"name": "grch37-chr20-demo",
                   "regions": ["chr20:1,000,001-1,100,000", "chr20:10,000,001-10,100,000"]},
        germline={"source": "population", "population": "EUR"},
        somatic={"purity": PURITY, "normal_coverage": NCOV},
        variants={"structural": {"explicit": [*svs, TRA]}})


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    spec = parse_spec(_tumor())
    tumor = generate(_tumor(), tmp_path_factory.mktemp("som_sv_t"))
    normal = generate(normal_spec(spec).model_dump(mode="json"),
                      tmp_path_factory.mktemp("som_sv_n"))
    return tumor, normal


@pytest.mark.parametrize("name,window,ratio", [(e[0], e[2], e[3]) for e in EVENTS])
def test_depth_ratio_follows_vaf(pair, name, window, ratio):
    tumor, normal = pair
    a, b = window
    # Read starts in a window: (sub-)Poisson, mean = ratio x cov x (b - a) / L.
    got = starts_in(tumor / "golden.bam", "chr20", a, b)
    assert poisson_ok(got, ratio * COV * (b - a) / L), (name, got / (COV * (b - a) / L))
    # The matched normal has none of the somatic events (germline ones stay).
    n_ratio = 0.5 if name.startswith("germ") else 1.0
    got_n = starts_in(normal / "golden.bam", "chr20", a, b)
    assert poisson_ok(got_n, n_ratio * NCOV * (b - a) / L), (name, got_n)


def test_somatic_translocation_junction_reads_scale_with_vaf(pair):
    tumor, normal = pair
    # The carrying clone holds 2 x VAF of the haplotype's fragments.
    exp_split, exp_disc = expected_counts(coverage=COV, length=L, frag_mean=MEAN)
    frac = 2 * TRA_VAF
    for bp in (1_080_000, 10_050_000):
        st = break_stats(tumor / "golden.bam", "chr20", bp)
        assert poisson_ok(st["split"], frac * exp_split), (bp, st["split"], frac * exp_split)
        assert poisson_ok(st["disc"], frac * exp_disc), (bp, st["disc"], frac * exp_disc)
        assert abs(st["depth_at"] / st["depth_flank"] - 1) < 0.25, st  # ~3.5 sd, as there
        sn = break_stats(normal / "golden.bam", "chr20", bp)
        assert sn["split"] == 0 and sn["disc"] == 0


def test_truth_marks_somatic_svs_and_normal_lacks_them(pair):
    tumor, normal = pair
    with pysam.VariantFile(str(tumor / "truth.vcf.gz")) as f:
        t = {r.id: r for r in f}
    for name, fields, _, _ in EVENTS:
        assert (t[name].info["SRC"] == "somatic") == ("vaf" in fields), name
        if "vaf" in fields:
            assert abs(t[name].info["VAF"] - fields["vaf"]) < 1e-6
    bnd = [r for r in t.values() if r.info.get("EVENT") == "som_tra"]
    assert len(bnd) == 4 and all(r.info["SRC"] == "somatic" for r in bnd)
    with pysam.VariantFile(str(normal / "truth.vcf.gz")) as f:
        n = {r.id: r for r in f}
    assert not any(r.info["SRC"] == "somatic" for r in n.values())
    assert "germ_del" in n
    # Same germline background in both (somatic SVs never displace it).
    def germline(ds):
        with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
            return [(r.chrom, r.pos, r.ref, r.alts, r.samples[0]["GT"]) for r in f
                    if r.info["SRC"] == "germline"]

    assert germline(tumor) and germline(tumor) == germline(normal)
    plan_n = plan_dataset(normal_spec(parse_spec(_tumor())))
    assert not any(v.vaf is not None for v in plan_n.spikes)

"""Cohort simulation and the gene burden study (synthlib.cohort), on the bundled chr20 data."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pysam
import pysam.bcftools
import pytest
from pydantic import ValidationError

from synthlib.cohort import (
    BurdenGene,
    CohortSpec,
    benjamini_hochberg,
    cohort_samples,
    fisher_exact,
    read_samples_tsv,
    run_burden_study,
    simulate_cohort,
    simulate_cohort_block,
)
from synthlib.cohort.sources import load_panel, resolve_inputs
from synthlib.errors import SpecError
from synthlib.resources import resolve_file

REGION = "chr20:1000001-2000000"
SEED = 20240611
SPIKED = ("RAD21L1", "SIRPA")  # region-1 stand-ins for NOTCH1 and FLT4


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _burden_spec(**kw) -> CohortSpec:
    base = dict(
        n_cases=200,
        n_controls=200,
        trios=4,
        de_novo_rate=1e-6,
        ancestry={"EUR": 0.8, "AFR": 0.2},
        burden=[BurdenGene(gene=g, carrier_fraction_cases=0.1) for g in SPIKED],
    )
    base.update(kw)
    return CohortSpec(**base)


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    out = tmp_path_factory.mktemp("cohort")
    res = simulate_cohort(
        _burden_spec(), seed=SEED, regions=[REGION], out_dir=out, sample_block=200
    )
    return res


# --- genotype frequencies -------------------------------------------------------------------


def _chi2_per_dof(ac: np.ndarray, n_alleles: int, af: np.ndarray) -> tuple[float, int, float]:
    """Mean squared binomial z-score over sites, its dof, and the largest |z|."""
    var = n_alleles * af * (1 - af)
    z = (ac - n_alleles * af) / np.sqrt(var)
    return float(np.mean(z**2)), z.size, float(np.abs(z).max())


def test_population_genotypes_follow_af_and_hwe():
    spec = CohortSpec(n_cases=0, n_controls=400, ancestry={"EUR": 0.5, "AFR": 0.5})
    samples = cohort_samples(spec, seed=SEED)
    block = simulate_cohort_block(
        spec, region=REGION, sample_ids=[s.sample for s in samples], seed=SEED
    )
    inputs = resolve_inputs(spec, reference="grch37-chr20-demo")
    from synthlib.cohort.sources import load_sites, parse_region

    sites = load_sites(inputs.sites_vcf, parse_region(REGION, fasta=inputs.fasta), spec.max_indel)
    assert np.array_equal(sites.pos, block.pos)  # no spikes, no trios: background only
    for pop in ("EUR", "AFR"):
        rows = np.array([s.population == pop for s in samples])
        n = int(rows.sum())
        assert 150 < n < 250  # Binomial(400, 0.5) within 5 sd
        af = sites.af[pop]
        common = (af > 0.05) & (af < 0.95)
        ac = block.haps[rows][:, common].sum(axis=(0, 2))
        chi2, k, zmax = _chi2_per_dof(ac, 2 * n, af[common])
        # Sum of k squared z-scores ~ chi2(k): mean 1, sd sqrt(2/k); 5 sd tolerance.
        assert abs(chi2 - 1) < 5 * math.sqrt(2 / k), (pop, chi2, k)
        # Bonferroni over k sites at ~1e-6 two-sided (normal approximation for AF > 0.05).
        assert zmax < 5.5, (pop, zmax)
        # Hardy-Weinberg: heterozygotes total ~ sum of 2pq (Poisson-binomial variance).
        het = (block.dosage[rows][:, common] == 1).sum()
        p = af[common]
        exp = n * np.sum(2 * p * (1 - p))
        sd = math.sqrt(n * np.sum(2 * p * (1 - p) * (1 - 2 * p * (1 - p))))
        assert abs(het - exp) < 5 * sd, (pop, het, exp, sd)


def test_haplotype_resampling_follows_panel_af():
    spec = CohortSpec(n_cases=0, n_controls=300, genotype_source="haplotypes")
    ids = [s.sample for s in cohort_samples(spec, seed=SEED)]
    block = simulate_cohort_block(spec, region=REGION, sample_ids=ids, seed=SEED)
    inputs = resolve_inputs(spec, reference="grch37-chr20-demo")
    from synthlib.cohort.sources import parse_region

    panel = load_panel(inputs.panel_vcf, parse_region(REGION, fasta=inputs.fasta), spec.max_indel)
    assert np.array_equal(panel.pos, block.pos)
    af = panel.haps.mean(axis=1)
    common = (af > 0.05) & (af < 0.95)
    ac = block.haps[:, common].sum(axis=(0, 2))
    # Each cohort haplotype copies a uniformly drawn panel haplotype (nearly no switches over
    # 1 Mb at the meiotic map), so AC ~ Binomial(600, panel AF) at every site.
    chi2, k, _ = _chi2_per_dof(ac, 600, af[common])
    # Sites are in LD, so the squared z-scores are correlated and their mean varies more than
    # chi2(k)/k would: over 12 seeds it was 0.93 +- 0.19. The band is about +-3 of those sd;
    # a wrong template pool or a broken copy (e.g. always the same haplotype) lands far outside.
    assert 0.35 < chi2 < 1.55, (chi2, k)
    # Real LD survives: haplotypes are copies, so each cohort haplotype equals a panel one.
    panel_set = {panel.haps[:, j].tobytes() for j in range(panel.haps.shape[1])}
    copies = sum(block.haps[i, :, h].tobytes() in panel_set for i in range(50) for h in (0, 1))
    assert copies >= 90  # of 100: only a crossover (rare over 1 Mb) breaks a copy


# --- trios ----------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["population", "haplotypes"])
def test_trios_are_mendelian_and_de_novo_rate_holds(source):
    rate = 1e-5  # ~240 de novo SNVs over 12 children: a factor-2 error is ~8 sd off
    spec = CohortSpec(n_cases=12, n_controls=0, trios=12, de_novo_rate=rate, genotype_source=source)
    samples = cohort_samples(spec, seed=SEED)
    ids = [s.sample for s in samples]
    block = simulate_cohort_block(spec, region=REGION, sample_ids=ids, seed=SEED)
    row = {s: i for i, s in enumerate(ids)}
    bg = block.source == "background"
    dn = block.source == "denovo"
    n_dn = 0
    for child in (s for s in samples if s.father):
        c, f, m = (block.haps[row[x]] for x in (child.sample, child.father, child.mother))
        # Phased transmission: haplotype 0 from the father, 1 from the mother, at every site
        # except de novo ones.
        assert np.all((c[bg, 0] == f[bg, 0]) | (c[bg, 0] == f[bg, 1]))
        assert np.all((c[bg, 1] == m[bg, 0]) | (c[bg, 1] == m[bg, 1]))
        mine = dn & (c.sum(axis=1) > 0)
        assert np.all(f[mine] == 0) and np.all(m[mine] == 0)
        assert np.all(c[mine].sum(axis=1) == 1)  # de novo SNVs are heterozygous
        n_dn += int(mine.sum())
    assert n_dn == int(dn.sum())  # every de novo site belongs to one child
    n_bases = 1_000_000  # region 1 is real sequence end to end (no N)
    expected = 12 * 2 * rate * n_bases
    assert abs(n_dn - expected) < 4 * math.sqrt(expected), (n_dn, expected)


def test_no_recombination_passes_whole_haplotypes():
    spec = CohortSpec(n_cases=5, n_controls=0, trios=5, recombination="none", de_novo_rate=0)
    samples = cohort_samples(spec, seed=SEED)
    ids = [s.sample for s in samples]
    block = simulate_cohort_block(spec, region=REGION, sample_ids=ids, seed=SEED)
    row = {s: i for i, s in enumerate(ids)}
    for child in (s for s in samples if s.father):
        c, f = block.haps[row[child.sample]], block.haps[row[child.father]]
        assert np.array_equal(c[:, 0], f[:, 0]) or np.array_equal(c[:, 0], f[:, 1])


# --- determinism ----------------------------------------------------------------------------


def test_same_seed_same_vcf_whatever_the_block_split(cohort, tmp_path):
    other = simulate_cohort(
        _burden_spec(), seed=SEED, regions=[REGION], out_dir=tmp_path, sample_block=50
    )
    assert _md5(other.joint_vcf) == _md5(cohort.joint_vcf)
    assert _md5(other.samples_tsv) == _md5(cohort.samples_tsv)


def test_child_alone_equals_child_with_family():
    spec = _burden_spec()
    ids = [s.sample for s in cohort_samples(spec, seed=SEED)]
    family = simulate_cohort_block(spec, region=REGION, sample_ids=ids[:3], seed=SEED)
    alone = simulate_cohort_block(spec, region=REGION, sample_ids=[ids[2]], seed=SEED)
    carried = alone.haps[0].any(axis=1)
    fam_sites = {
        (p, r, a): i
        for i, (p, r, a) in enumerate(zip(family.pos, family.ref, family.alt, strict=True))
    }
    cols = [fam_sites[(p, r, a)] for p, r, a in zip(alone.pos, alone.ref, alone.alt, strict=True)]
    assert np.array_equal(family.haps[2][cols], alone.haps[0])
    assert carried.sum() > 100


def test_different_seed_differs(tmp_path):
    spec = CohortSpec(n_cases=5, n_controls=5)
    a = simulate_cohort(spec, seed=1, regions=[REGION], out_dir=tmp_path / "a")
    b = simulate_cohort(spec, seed=2, regions=[REGION], out_dir=tmp_path / "b")
    assert _md5(a.joint_vcf) != _md5(b.joint_vcf)


# --- joint VCF ------------------------------------------------------------------------------


def test_joint_vcf_is_valid_and_annotated(cohort):
    samples = read_samples_tsv(cohort.samples_tsv)
    assert len(samples) == 200 + 200 + 2 * 4
    assert sum(s.role == "case" for s in samples) == 200
    assert sum(s.role == "parent" for s in samples) == 8
    with pysam.VariantFile(str(cohort.joint_vcf)) as vf:
        assert list(vf.header.samples) == [s.sample for s in samples]
        spikes = {g: 0 for g in SPIKED}
        n = 0
        for rec in vf:
            n += 1
            assert all(rec.samples[s].phased for s in list(rec.samples)[:3])
            if rec.info["SRC"] == "spike":
                assert rec.info["CSQ"] in ("truncating", "missense")
                spikes[rec.info["GENE"]] += rec.info["AC"][0]
                if rec.info["CSQ"] == "truncating":  # frameshift: length change not 3k
                    assert (len(rec.alts[0]) - len(rec.ref)) % 3 != 0
                else:
                    assert len(rec.ref) == len(rec.alts[0]) == 1
        assert n == cohort.n_sites
        # round(0.1 x 200 cases) carriers per gene, one private allele each.
        assert spikes == {g: 20 for g in SPIKED}
        assert len(list(vf.fetch("chr20", 1_209_000, 1_236_000))) > 0
    out = pysam.bcftools.view("-H", "-i", 'INFO/SRC="spike"', str(cohort.joint_vcf))
    assert len(out.splitlines()) == 40
    stats = pysam.bcftools.view("-H", "-r", "chr20:1500000-1600000", str(cohort.joint_vcf))
    assert all(1_500_000 <= int(line.split("\t")[1]) <= 1_600_000 for line in stats.splitlines())


# --- burden study ---------------------------------------------------------------------------


def test_burden_study_finds_spiked_genes_only(cohort, tmp_path):
    res = run_burden_study(
        joint_vcf=cohort.joint_vcf,
        samples_tsv=cohort.samples_tsv,
        genes_bed=resolve_file("grch37-chr20-demo.exons"),
        out_dir=tmp_path / "study",
    )
    top = list(res.table["gene"][:2])
    assert sorted(top) == sorted(SPIKED)
    assert set(res.significant) == set(SPIKED)  # and no unspiked gene
    assert res.threshold == pytest.approx(0.05 / res.n_tested)
    row = res.table.set_index("gene").loc["RAD21L1"]
    assert row["carriers_cases"] >= 20 and row["n_cases"] == 200 and row["n_controls"] == 200
    text = res.burden_tsv.read_text().splitlines()
    assert text[0].split("\t")[:8] == [
        "gene", "carriers_cases", "carriers_controls", "n_cases", "n_controls",
        "odds_ratio", "p_value", "p_adjusted",
    ]  # fmt: skip
    p = [float(line.split("\t")[6]) for line in text[1:]]
    assert p == sorted(p)
    assert "RAD21L1" in res.report_md.read_text() and "<table>" in res.report_html.read_text()


def test_null_cohort_has_no_significant_gene(tmp_path):
    spec = CohortSpec(n_cases=150, n_controls=150, ancestry={"EUR": 1.0})
    out = simulate_cohort(spec, seed=7, regions=[REGION], out_dir=tmp_path)
    res = run_burden_study(
        joint_vcf=out.joint_vcf,
        samples_tsv=out.samples_tsv,
        genes_bed=resolve_file("grch37-chr20-demo.exons"),
        out_dir=tmp_path / "study",
    )
    assert res.n_tested > 5  # rare background variants do fall in exons
    assert res.significant == ()


def test_fisher_exact_matches_known_values():
    # Fisher's tea-tasting table, and a table checked against R's fisher.test.
    assert fisher_exact(a=3, b=1, c=1, d=3)[1] == pytest.approx(0.4857142857, rel=1e-9)
    odds, p = fisher_exact(a=1, b=9, c=11, d=3)
    assert odds == pytest.approx(1 * 3 / (9 * 11))
    assert p == pytest.approx(0.0027594561852200836, rel=1e-9)
    assert fisher_exact(a=0, b=0, c=5, d=5)[1] == 1.0
    assert fisher_exact(a=20, b=0, c=180, d=200)[0] == math.inf
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.5]))
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])


# --- spec -----------------------------------------------------------------------------------


def test_spec_rejects_bad_input():
    with pytest.raises(ValidationError, match="sum to 1"):
        CohortSpec(n_cases=1, n_controls=1, ancestry={"EUR": 0.5})
    with pytest.raises(ValidationError, match="trios"):
        CohortSpec(n_cases=1, n_controls=1, trios=2)
    with pytest.raises(ValidationError, match="extra"):
        CohortSpec(n_cases=1, n_controls=1, typo=1)
    spec = CohortSpec(
        n_cases=2, n_controls=0, burden=[{"gene": "NOTCH1", "carrier_fraction_cases": 1}]
    )
    with pytest.raises(SpecError, match="NOTCH1"):
        simulate_cohort_block(spec, region=REGION, sample_ids=["CASE00001"], seed=1)


def test_targets_restrict_background_and_de_novo_to_padded_intervals():
    from synthlib.cohort.sources import in_intervals, load_intervals, load_sites, parse_region

    spec = CohortSpec(
        n_cases=20, n_controls=20, trios=20, de_novo_rate=1e-4,
        targets="grch37-chr20-demo.exons", target_padding=100,
    )
    ids = [s.sample for s in cohort_samples(spec, seed=SEED)]
    block = simulate_cohort_block(spec, region=REGION, sample_ids=ids, seed=SEED)
    iv = load_intervals(resolve_file("grch37-chr20-demo.exons"), "chr20", 100)
    assert in_intervals(block.pos, iv).all()
    inputs = resolve_inputs(spec, reference="grch37-chr20-demo")
    every = load_sites(inputs.sites_vcf, parse_region(REGION, fasta=inputs.fasta), 50)
    bg = block.source == "background"
    # Every population site inside the padded targets is there, and nothing else.
    assert np.array_equal(block.pos[bg], every.pos[in_intervals(every.pos, iv)])
    denovo = int((block.source == "denovo").sum())
    region1 = iv.clip(1_000_000, 2_000_000)  # the exons of region 1 (all real sequence)
    territory = int((region1[:, 1] - region1[:, 0]).sum()) - int(bg.sum())
    expected = 20 * 2 * spec.de_novo_rate * territory  # 20 children, Poisson
    assert abs(denovo - expected) < 5 * math.sqrt(expected)

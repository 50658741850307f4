"""Per-contig ploidy (sample.sex / sample.ploidy): haploid chrX/chrY, absent chrY, from reads.

The bundled references hold chr20/chr22 only, so a toy reference is written with contigs
named chrX, chrY and chr7 whose bases are copied from real chr20 sequence, plus a sites VCF
(1000 Genomes chr20 sites moved onto chrX) for the germline background.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pysam
import pytest
from _variant_checks import FASTA, bcftools_stderr

from synthlib.errors import VariantError
from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.resources import resolve_file
from synthlib.spec import parse_spec
from synthlib.variants.assemble import chunk_variants
from synthlib.variants.ploidy import PAR, ploidy_map, present_intervals

COV, L = 20, 150
#: Toy contigs: name -> (start in real chr20, length).
CONTIGS = {"chr7": (1_200_000, 30_000), "chrX": (1_000_000, 60_000), "chrY": (1_100_000, 30_000)}


@pytest.fixture(scope="module")
def toy(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("toyref")
    src = pysam.FastaFile(str(FASTA))
    with open(d / "toy.fa", "w") as fh:
        for name, (a, n) in CONTIGS.items():
            seq = src.fetch("chr20", a, a + n).upper()
            fh.write(f">{name}\n" + "\n".join(seq[i:i + 60] for i in range(0, n, 60)) + "\n")
    pysam.faidx(str(d / "toy.fa"))
    # chr20 sites over the chrX source window, renamed and shifted onto chrX.
    sites = resolve_file("grch37-chr20-demo.sites")
    a, n = CONTIGS["chrX"]
    lines = ["##fileformat=VCFv4.2",
             *[f"##contig=<ID={c},length={m}>" for c, (_, m) in CONTIGS.items()],
             '##INFO=<ID=AF,Number=A,Type=Float,Description="AF">',
             '##INFO=<ID=EUR_AF,Number=A,Type=Float,Description="AF">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    with pysam.TabixFile(str(sites)) as tbx:
        for row in tbx.fetch("chr20", a, a + n):
            f = row.split("\t")
            info = ";".join(x for x in f[7].split(";") if x.startswith(("AF=", "EUR_AF=")))
            lines.append("\t".join(["chrX", str(int(f[1]) - a), f[2], f[3], f[4], ".", ".",
                                    info]))
    (d / "sites.vcf").write_text("\n".join(lines) + "\n")
    pysam.tabix_index(str(d / "sites.vcf"), preset="vcf", force=True)
    return d


def _spec(toy: Path, **over) -> dict:
    spec = {"id": "ploidy-test", "seed": 11, "reason": "test",
            "reference": {"name": str(toy / "toy.fa")}, "coverage": COV, "chunk_size": 60_000,
            "germline": {"source": "population", "vcf": str(toy / "sites.vcf.gz")},
            "variants": {"random": [{"type": "snv", "count": 30, "genotype": "mixed"},
                                    {"type": "deletion", "count": 6}]}}
    spec.update(over)
    return spec


def _reads(ds: Path, contig: str, a: int, b: int) -> list:
    with pysam.AlignmentFile(str(ds / "golden.bam")) as f:
        return [r for r in f.fetch(contig, a, b) if a <= r.reference_start < b]


def _poisson_ok(got: int, expected: float) -> bool:
    # Fragment starts are uniform (no GC bias): Poisson counts, 4.5 sigma plus edge slack.
    return abs(got - expected) <= 4.5 * np.sqrt(expected) + 0.01 * expected


@pytest.fixture(scope="module")
def male(toy, tmp_path_factory):
    plan = plan_dataset(parse_spec(_spec(toy, sample={"sex": "male"})))
    return plan, generate_local(plan, dest=tmp_path_factory.mktemp("male"))


def test_haploid_depth_is_half(male):
    _, ds = male
    margin = 1000  # contig ends: fragments cannot start in the last fragment length
    for contig, factor in (("chr7", 1.0), ("chrX", 0.5), ("chrY", 0.5)):
        n = CONTIGS[contig][1]
        got = len(_reads(ds, contig, margin, n - margin))
        expected = factor * COV * (n - 2 * margin) / L
        assert _poisson_ok(got, expected), (contig, got, expected)
    # One haplotype only: every read on chrX/chrY has HP=1.
    assert {r.get_tag("HP") for r in _reads(ds, "chrX", 0, 60_000)} == {1}
    assert {r.get_tag("HP") for r in _reads(ds, "chr7", 0, 30_000)} == {1, 2}


def test_haploid_truth_gt_and_bcftools(male):
    plan, ds = male
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        recs = list(f)
    on_x = [r for r in recs if r.chrom in ("chrX", "chrY")]
    on_7 = [r for r in recs if r.chrom == "chr7"]
    assert len(on_x) > 20 and len(on_7) > 3
    assert all(r.samples[0]["GT"] == (1,) for r in on_x)
    assert all(len(r.samples[0]["GT"]) == 2 for r in on_7)
    for args in (("view", "-o", "/dev/null"),
                 ("norm", "-c", "e", "-f", str(plan.reference.path), "-o", "/dev/null")):
        err = bcftools_stderr(*args, str(ds / "truth.vcf.gz"))
        assert "[W::" not in err and "[E::" not in err, err


def test_haploid_germline_is_haplotype_zero_of_the_diploid_draw(toy, male):
    # Same seed, same chunk stream: the male's chrX background is exactly the diploid
    # draw's haplotype-0 alleles, each present with probability AF.
    plan, _ = male
    diploid = plan_dataset(parse_spec(_spec(toy, variants={})))
    unit = next(u for u in plan.units if u.contig == "chrX")
    hap = [v for v in chunk_variants(plan, unit) if v.source == "germline"]
    dip = [v for v in chunk_variants(diploid, unit) if v.source == "germline"]
    assert hap == [replace(v, gt=(1, 0), ploidy=1) for v in dip if v.gt[0]]
    assert len(hap) > 10
    # Given a site drew an ALT on either haplotype (prob 1-(1-AF)^2), haplotype 0 has it with
    # probability AF / (1-(1-AF)^2): the haploid count follows that, within 4 sigma.
    af = np.array([v.af for v in dip])
    p = af / (1 - (1 - af) ** 2)
    assert abs(len(hap) - p.sum()) <= 4 * np.sqrt((p * (1 - p)).sum()) + 1, (len(hap), p.sum())


def test_female_has_no_chry(toy, tmp_path):
    plan = plan_dataset(parse_spec(_spec(toy, sample={"sex": "female"}, coverage=4)))
    ds = generate_local(plan, dest=tmp_path)
    assert _reads(ds, "chrY", 0, 30_000) == []
    assert not [v for v in plan.spikes if v.chrom == "chrY"]
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        gts = {r.chrom: r.samples[0]["GT"] for r in f}
    assert "chrY" not in gts and len(gts["chrX"]) == 2
    spec = _spec(toy, sample={"sex": "female"}, variants={"explicit": [
        {"chrom": "chrY", "pos": 5000, "ref": plan.reference.fetch("chrY", 4999, 5000).decode(),
         "alt": "A" if plan.reference.fetch("chrY", 4999, 5000) != b"A" else "C"}]})
    with pytest.raises(VariantError, match="absent"):
        plan_dataset(parse_spec(spec))


def test_par_boundary_inside_one_unit(toy, tmp_path):
    # A PAR-like map on chrX: diploid on [0, 30 kb), haploid after, in one work unit.
    plan = plan_dataset(parse_spec(_spec(toy, germline={"source": "none"}, variants={})))
    plan.ploidy = {"chrX": np.array([[0, 30_000, 2], [30_000, 60_000, 1]], dtype=np.int64)}
    ds = generate_local(plan, dest=tmp_path)
    for (a, b), factor in (((1000, 29_000), 1.0), ((31_000, 59_000), 0.5)):
        got = len(_reads(ds, "chrX", a, b))
        assert _poisson_ok(got, factor * COV * (b - a) / L), (a, b, got)
    assert {r.get_tag("HP") for r in _reads(ds, "chrX", 30_000, 60_000)} == {1}


def test_explicit_ploidy_map_on_bundled_chr20(tmp_path):
    spec = {"id": "chr20-haploid", "seed": 3, "reason": "test", "coverage": 4,
            "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,050,000"]},
            "germline": {"source": "population"}, "chunk_size": 50_000,
            "sample": {"ploidy": {"chr20": 1}}}
    plan = plan_dataset(parse_spec(spec))
    ds = generate_local(plan, dest=tmp_path)
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        gts = [r.samples[0]["GT"] for r in f]
    assert gts and all(g == (1,) for g in gts)
    got = len(_reads(ds, "chr20", 1_001_000, 1_049_000))
    assert _poisson_ok(got, 0.5 * 4 * 48_000 / L), got


def test_par_coordinates():
    x37, y37, x38 = 155_270_560, 59_373_566, 156_040_895
    m = ploidy_map(sex="male", overrides={}, lengths={"chrX": x37, "chrY": y37, "chr1": 1000})
    assert "chr1" not in m
    assert m["chrX"].tolist() == [[0, 60_000, 1], [60_000, 2_699_520, 2],
                                  [2_699_520, 154_931_043, 1], [154_931_043, 155_260_560, 2],
                                  [155_260_560, x37, 1]]
    assert present_intervals(m, "chrY", 0, y37).tolist() == [
        [0, 10_000], [2_649_520, 59_034_049], [59_363_566, y37]]
    m38 = ploidy_map(sex="male", overrides={}, lengths={"X": x38})
    assert m38["X"][1].tolist() == [*PAR[("GRCh38", "X")][0], 2]
    f = ploidy_map(sex="female", overrides={}, lengths={"chrX": x37, "chrY": y37})
    assert list(f) == ["chrY"] and f["chrY"].tolist() == [[0, y37, 0]]
    with pytest.raises(VariantError, match="chrQ"):
        ploidy_map(sex=None, overrides={"chrQ": 1}, lengths={"chrX": 10})


def test_participant_haploid_calls_on_male_chrx(toy, tmp_path):
    # A real male's VCF writes chrX calls haploid ("1"); they stay haploid in the truth.
    ref = pysam.FastaFile(str(toy / "toy.fa"))
    rows = []
    for i, pos in enumerate(range(5_001, 50_001, 5_000)):
        base = ref.fetch("chrX", pos - 1, pos).upper()
        alt = "A" if base != "A" else "C"
        rows.append(f"chrX\t{pos}\tp{i}\t{base}\t{alt}\t.\tPASS\t.\tGT\t{i % 2}")
    text = ("##fileformat=VCFv4.2\n" + "".join(f"##contig=<ID={c},length={m}>\n"
                                               for c, (_, m) in CONTIGS.items())
            + '##FORMAT=<ID=GT,Number=1,Type=String,Description="g">\n'
            + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tNA0\n"
            + "\n".join(rows) + "\n")
    (tmp_path / "gt.vcf").write_text(text)
    pysam.tabix_index(str(tmp_path / "gt.vcf"), preset="vcf", force=True)
    spec = _spec(toy, sample={"sex": "male"}, variants={}, coverage=2,
                 germline={"source": "sample", "vcf": str(tmp_path / "gt.vcf.gz")})
    ds = generate_local(plan_dataset(parse_spec(spec)), dest=tmp_path / "out")
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        got = [(r.id, r.samples[0]["GT"]) for r in f]
    assert got == [(f"p{i}", (1,)) for i in range(1, 9, 2)]


def test_haploid_somatic_vaf(toy, tmp_path):
    # On a haploid locus a somatic variant at VAF v sits in a fraction v of the cells (not 2v):
    # its realized VAF (counted against the golden BAM elsewhere) follows the target.
    spec = _spec(toy, sample={"sex": "male"}, coverage=120, germline={"source": "none"},
                 somatic={"purity": 1.0}, reference={"name": str(toy / "toy.fa"),
                                                     "regions": ["chrX"]},
                 variants={"random": [{"type": "snv", "count": 12, "vaf": 0.3}]})
    ds = generate_local(plan_dataset(parse_spec(spec)), dest=tmp_path)
    alt = dp = 0
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        for r in f:
            s = r.samples[0]
            assert s["GT"] == (1,)
            alt, dp = alt + s["AD"][1], dp + s["DP"]
    # ~60 reads per variant (one haplotype at 120x / 2, 150 bp reads): pooled binomial.
    assert dp > 400
    assert abs(alt - 0.3 * dp) <= 4 * np.sqrt(2 * dp * 0.3 * 0.7), (alt, dp)

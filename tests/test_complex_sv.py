"""Complex SVs (delINV, INVdel, delINVdel, dupINV, INVdup, dDUP, dDUP_INV, delINS), checked
from the golden BAM's reads: split reads and discordant pairs at every junction, depth per
piece, and a truth (<CPX>) that bcftools accepts."""

from __future__ import annotations

import numpy as np
import pysam
import pysam.bcftools
import pytest
from _complexdata import discordant_at, primary_starts, split_at
from _svdata import FASTA, base_spec, generate, md5

from synthlib.errors import SpecError, VariantError
from synthlib.generate import SV_BED, merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

COV, L = 30, 150

EVENTS = [  # subtype, 1-based first affected base, sizes, genotype
    ("delINV", 1010001, [300, 1500], "hom"),
    ("INVdel", 1020001, [1500, 400], "hom"),
    ("delINVdel", 1030001, [300, 1200, 300], "het"),
    ("dupINV", 1040001, [800, 1200], "hom"),
    ("INVdup", 1050001, [1200, 800], "hom"),
    ("dDUP", 1060001, [1000, 2500], "hom"),
    ("dDUP_INV", 1075001, [1000, 2500], "hom"),
    ("delINS", 1090001, [800, 40], "hom"),
]


def _junctions(sub: str, s: int, z: list[int]) -> list[tuple[int, int]]:
    """0-based (last base before, first base after) of each junction, written out by hand
    from the subtype's definition (independent of the simulator's piece lists)."""
    if sub == "delINV":
        e = s + sum(z)
        return [(s - 1, e - 1), (s + z[0], e)]
    if sub == "INVdel":
        e = s + sum(z)
        return [(s - 1, s + z[0] - 1), (s, e)]
    if sub == "delINVdel":
        e = s + sum(z)
        return [(s - 1, s + z[0] + z[1] - 1), (s + z[0], e)]
    if sub == "dupINV":
        e = s + sum(z)
        return [(s + z[0] - 1, e - 1), (s, e)]
    if sub == "INVdup":
        e = s + sum(z)
        return [(s - 1, e - 1), (s, e - z[1])]
    if sub in ("dDUP", "dDUP_INV"):
        q = s + sum(z)
        if sub == "dDUP":
            return [(q - 1, s), (s + z[0] - 1, q)]
        return [(q - 1, s + z[0] - 1), (s, q)]
    if sub == "delINS":
        return [(s - 1, s + z[0])]  # split reads span anchor + 40 inserted bases + after
    raise AssertionError(sub)


def _copies(sub: str, s: int, z: list[int], x: int) -> int:
    """Copies of reference base ``x`` on a carrying haplotype, from the definition."""
    e = s + sum(z) if sub not in ("delINS",) else s + z[0]
    if sub in ("delINV", "INVdel", "delINVdel", "delINS"):
        dels = {"delINV": [(s, s + z[0])], "INVdel": [(s + z[0], e)],
                "delINVdel": [(s, s + z[0]), (e - z[-1], e)], "delINS": [(s, e)]}[sub]
        return 0 if any(a <= x < b for a, b in dels) else 1
    if sub == "dupINV":
        return 2 if s <= x < s + z[0] else 1
    if sub == "INVdup":
        return 2 if e - z[1] <= x < e else 1
    return 2 if s <= x < s + z[0] else 1  # dDUP, dDUP_INV


def _spec(id_="cpx-test"):
    explicit = [{"type": "complex", "subtype": sub, "chrom": "chr20", "pos": p, "sizes": z,
                 "genotype": gt, "id": sub} for sub, p, z, gt in EVENTS]
    return base_spec(id_, coverage=COV, variants={"structural": {
        "explicit": explicit,
        "random": [{"type": "complex", "count": 2, "subtype": ["delINV", "dDUP"],
                    "min_size": 400, "max_size": 1500}]}})


@pytest.fixture(scope="module")
def cpx(tmp_path_factory):
    return generate(_spec(), tmp_path_factory.mktemp("cpx"))


@pytest.mark.parametrize("sub,p,z,gt", EVENTS, ids=[e[0] for e in EVENTS])
def test_split_and_discordant_reads_at_every_junction(cpx, sub, p, z, gt):
    bam = cpx / "golden.bam"
    alleles = 2 if gt == "hom" else 1
    for x, y in _junctions(sub, p - 1, z):
        # A read crosses the junction when it starts in one of ~(L - 1 - inserted) places;
        # reads start at cov / L per base, half per haplotype.
        ins = 40 if sub == "delINS" else 0
        expected = COV / 2 * alleles * (L - 1 - ins) / L
        got = split_at(bam, "chr20", x, y)
        assert abs(got - expected) <= 5 * np.sqrt(expected), (sub, x, y, got, expected)
        if sub != "delINS":  # pairs across the junction, not proper
            assert discordant_at(bam, "chr20", x, y) >= expected / 2, (sub, x, y)


@pytest.mark.parametrize("sub,p,z,gt", EVENTS, ids=[e[0] for e in EVENTS])
def test_depth_follows_pieces(cpx, sub, p, z, gt):
    s = p - 1
    e = s + (z[0] if sub == "delINS" else sum(z))
    cuts = sorted({s, e, *[s + sum(z[:k]) for k in range(1, len(z))]})
    if sub == "INVdup":
        cuts = sorted({s, e - z[1], e})
    checked = 0
    for a, b in zip(cuts, cuts[1:], strict=False):
        if b - a < 700:
            continue
        a2, b2 = a + 250, b - 250
        cn = _copies(sub, s, z, (a2 + b2) // 2)
        total = (cn * (2 if gt == "hom" else 1) + (0 if gt == "hom" else 1))
        expected = total / 2 * COV * (b2 - a2) / L
        got = primary_starts(cpx / "golden.bam", "chr20", a2, b2)
        assert abs(got - expected) <= 4 * np.sqrt(max(expected, 1)), (sub, a2, b2, got,
                                                                       expected)
        checked += 1
    assert checked


def test_truth_vcf_and_bed(cpx):
    vcf = str(cpx / "truth.vcf.gz")
    text = pysam.bcftools.view(vcf)
    assert pysam.bcftools.view.get_messages() == ""
    assert "##ALT=<ID=CPX" in text and "##INFO=<ID=CPX_INTERVALS" in text
    pysam.bcftools.norm("-c", "e", "-f", str(FASTA), "-o", "/dev/null", vcf)
    msg = pysam.bcftools.norm.get_messages().strip().splitlines()
    assert len(msg) == 1 and msg[0].startswith("Lines"), msg
    assert msg[0].split("\t")[1].split("/")[3:5] == ["0", "0"], msg
    with pysam.VariantFile(vcf) as f:
        recs = [r for r in f if r.info.get("SVTYPE") == "CPX"]
    assert len(recs) == len(EVENTS) + 2
    by = {r.id: r for r in recs}
    r = by["delINV"]
    assert r.alts == ("<CPX>",) and r.info["CPX_TYPE"] == "delINV"
    assert list(r.info["CPX_INTERVALS"]) == ["DEL_chr20:1010001-1010300",
                                             "INV_chr20:1010301-1011800"]
    assert r.stop == 1011800 and r.info["SVLEN"] == 1800
    assert by["dDUP"].info["CPX_INTERVALS"][0] == "DUP_chr20:1060001-1061000"
    bed = (cpx / SV_BED).read_text().splitlines()
    assert "chr20\t1010000\t1010300\tDEL\tdelINV:delINV\t1|1\t.\t-300" in bed
    assert sum(1 for line in bed if ":delINVdel" in line) == 3


def test_bam_valid_and_deterministic(cpx, tmp_path):
    assert pysam.samtools.quickcheck(str(cpx / "golden.bam")) == ""
    plan = plan_dataset(parse_spec(_spec()))
    work = tmp_path / "work"
    work.mkdir()
    for unit in reversed(plan.units):
        run_unit(plan, unit, workdir=work)
    merge_units(plan, workdir=work, out_dir=tmp_path / "rev")
    for name in ("golden.bam", "golden.bam.bai", "reads_R1.fastq.gz", "truth.vcf.gz"):
        assert md5(tmp_path / "rev" / name) == md5(cpx / name), name


def test_spec_rejects_bad_complex():
    with pytest.raises(SpecError, match="subtype"):
        parse_spec(base_spec("bad", variants={"structural": {"explicit": [
            {"type": "complex", "chrom": "chr20", "pos": 1010001, "sizes": [10, 10]}]}}))
    with pytest.raises(VariantError, match="needs 2 sizes"):
        plan_dataset(parse_spec(base_spec("bad2", variants={"structural": {"explicit": [
            {"type": "complex", "subtype": "delINV", "chrom": "chr20", "pos": 1010001,
             "sizes": [10, 10, 10]}]}})))

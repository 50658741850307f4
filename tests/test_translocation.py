"""Balanced translocations, checked from the golden BAM's reads and the FASTQ (mappy)."""

from __future__ import annotations

import gzip
from pathlib import Path

import mappy
import pysam
import pysam.bcftools
import pytest
from _svdata import FASTA, base_spec, generate, md5, poisson_ok
from _tra import break_stats, expected_counts

from synthlib.errors import SpecError, VariantError
from synthlib.generate import SV_BED, merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

COV, L, MEAN = 40, 150, 350
INTRA = ("chr20", 1_050_000, "chr20", 10_050_000)  # 0-based first bases after the breaks
INTER = ("chrA", 50_000, "chrB", 60_000)


def _intra_spec(id_="tra-intra", **over):
    c, bp, c2, bp2 = INTRA
    return base_spec(id_, coverage=COV, reference={
        "name": "grch37-chr20-demo",
        "regions": ["chr20:1,000,001-1,100,000", "chr20:10,000,001-10,100,000"]},
        variants={"structural": {"explicit": [
            {"type": "translocation", "chrom": c, "pos": bp + 1, "chrom2": c2, "pos2": bp2 + 1,
             "id": "t_intra"}]}}, **over)


@pytest.fixture(scope="module")
def intra(tmp_path_factory):
    return generate(_intra_spec(), tmp_path_factory.mktemp("tra_intra"))


@pytest.fixture(scope="module")
def two_contigs(tmp_path_factory):
    """A small two-contig FASTA cut from the bundled chr20 slices (bgzipped + faidx)."""
    d = tmp_path_factory.mktemp("ref2")
    with pysam.FastaFile(str(FASTA)) as f:
        a = f.fetch("chr20", 1_000_000, 1_100_000)
        b = f.fetch("chr20", 10_000_000, 10_120_000)
    plain = d / "two.fa"
    plain.write_text(f">chrA\n{a}\n>chrB\n{b}\n")
    pysam.tabix_compress(str(plain), str(d / "two.fa.gz"))
    pysam.faidx(str(d / "two.fa.gz"))
    return d / "two.fa.gz"


@pytest.fixture(scope="module")
def inter(two_contigs, tmp_path_factory):
    c, bp, c2, bp2 = INTER
    spec = base_spec("tra-inter", coverage=COV, reference={"name": str(two_contigs)},
                     variants={"structural": {"explicit": [
                         {"type": "translocation", "chrom": c, "pos": bp + 1, "chrom2": c2,
                          "pos2": bp2 + 1, "genotype": "1|0", "id": "t_inter"}]}})
    return generate(spec, tmp_path_factory.mktemp("tra_inter"))


@pytest.mark.parametrize("which", ["intra", "inter"])
def test_split_and_discordant_reads_at_both_breaks(which, request):
    ds = request.getfixturevalue(which)
    c, bp, c2, bp2 = INTRA if which == "intra" else INTER
    exp_split, exp_disc = expected_counts(coverage=COV, length=L, frag_mean=MEAN)
    for here, there, b in ((c, c2, bp), (c2, c, bp2)):
        st = break_stats(ds / "golden.bam", here, b)
        assert poisson_ok(st["split"], exp_split), (here, b, st["split"], exp_split)
        assert poisson_ok(st["disc"], exp_disc), (here, b, st["disc"], exp_disc)
        # Supplementary parts and mates point at the partner contig.
        assert st["sa"] and all(t == there for t in st["sa"])
        assert st["mates"] and all(m == there for m in st["mates"])
        # Balanced: depth at the break as in the flanks. The mean over 600 bp rests on ~200
        # read starts (sd ~7%): 0.25 is ~3.5 sd. (At 300x the carrying haplotype's depth in
        # 500 bp bins across the break stays within +-6% of cov/2.)
        assert abs(st["depth_at"] / st["depth_flank"] - 1) < 0.25, st


def test_split_reads_place_both_parts_exactly(inter):
    c, bp, c2, bp2 = INTER
    n = 0
    with pysam.AlignmentFile(str(inter / "golden.bam")) as f:
        for r in f.fetch(c, bp - 200, bp):
            if not r.has_tag("SA") or r.reference_end != bp:
                continue
            ctg, pos, strand, cigar = r.get_tag("SA").split(",")[:4]
            assert (ctg, int(pos) - 1) == (c2, bp2), r.get_tag("SA")
            n += 1
    assert n > 0


def test_fastq_aligned_with_mappy_shows_the_junction(inter, two_contigs):
    # Reads alone: minimap2 finds chimeric alignments A|B near the breaks at the expected rate.
    c, bp, c2, bp2 = INTER
    aligner = mappy.Aligner(str(two_contigs), preset="sr")
    chimeric = 0
    with gzip.open(inter / "reads_R1.fastq.gz", "rt") as fh:
        lines = fh.read().splitlines()
    for seq in lines[1::4]:
        hits = list(aligner.map(seq))
        if {h.ctg for h in hits} == {c, c2} and any(
                abs(h.r_st - bp) < 400 or abs(h.r_en - bp) < 400 for h in hits):
            chimeric += 1
    exp_split, _ = expected_counts(coverage=COV, length=L, frag_mean=MEAN)
    # R1 only: half of the split reads of both junctions (2 x exp_split in all); minimap2
    # misses parts shorter than its seeds, hence the loose lower bound.
    assert 0.3 * exp_split <= chimeric <= exp_split + 4 * exp_split ** 0.5, chimeric


def test_truth_vcf_breakends_accepted_by_bcftools(intra, inter, two_contigs):
    for ds, fasta, n_ev in ((intra, FASTA, "t_intra"), (inter, two_contigs, "t_inter")):
        vcf = str(ds / "truth.vcf.gz")
        text = pysam.bcftools.view(vcf)
        assert pysam.bcftools.view.get_messages() == ""
        pysam.bcftools.norm("-c", "e", "-f", str(fasta), "-o", "/dev/null", vcf)
        msg = pysam.bcftools.norm.get_messages().strip().splitlines()
        assert len(msg) == 1 and msg[0].startswith("Lines"), msg
        with pysam.VariantFile(vcf) as f:
            recs = {r.id: r for r in f}
        assert len(recs) == 4 and all(r.info["SVTYPE"] == "BND" for r in recs.values())
        for rid, r in recs.items():
            mate = recs[r.info["MATEID"][0]]
            assert mate.info["MATEID"][0] == rid and r.info["EVENT"] == n_ev
        assert "SVTYPE=BND" in text
        bed = (ds / SV_BED).read_text().splitlines()
        assert len(bed) == 2 and all("\tBND\t" in x for x in bed)
    c, bp, c2, bp2 = INTER
    with pysam.VariantFile(str(inter / "truth.vcf.gz")) as f:
        by_pos = {(r.chrom, r.pos): r.alts[0] for r in f}
    assert by_pos[(c, bp)].endswith(f"[{c2}:{bp2 + 1}[")
    assert by_pos[(c, bp + 1)].startswith(f"]{c2}:{bp2}]")
    assert by_pos[(c2, bp2)].endswith(f"[{c}:{bp + 1}[")
    assert by_pos[(c2, bp2 + 1)].startswith(f"]{c}:{bp}]")


def test_bam_valid_sorted_and_deterministic(intra, tmp_path):
    bam = intra / "golden.bam"
    assert pysam.samtools.quickcheck(str(bam)) == ""
    with pysam.AlignmentFile(str(bam)) as f:
        pos = [(r.reference_id, r.reference_start) for r in f]
    assert pos == sorted(pos)
    # Units run in reverse order, each on a fresh plan (as separate workers), give the same
    # bytes: junction pairs are regenerated identically by every unit that needs them.
    work = tmp_path / "work"
    work.mkdir()
    for unit in reversed(plan_dataset(parse_spec(_intra_spec())).units):
        plan = plan_dataset(parse_spec(_intra_spec()))
        run_unit(plan, plan.units[unit.index], workdir=work)
    merge_units(plan, workdir=work, out_dir=tmp_path / "rev")
    for name in ("golden.bam", "reads_R1.fastq.gz", "reads_R2.fastq.gz", "truth.vcf.gz"):
        assert md5(tmp_path / "rev" / name) == md5(intra / name), name
    pysam.index(str(tmp_path / "rev" / "golden.bam"))


def test_random_translocation_is_placed_and_validated(tmp_path):
    spec = base_spec("tra-rand", coverage=5, reference={
        "name": "grch37-chr20-demo",
        "regions": ["chr20:1,000,001-1,100,000", "chr20:10,000,001-10,100,000"]},
        variants={"structural": {"random": [{"type": "translocation", "count": 2}]}})
    plan = plan_dataset(parse_spec(spec))
    tra = [v for v in plan.spikes if v.svtype == "TRA"]
    assert len(tra) == 4 and len({v.vid for v in tra}) == 2
    assert plan_dataset(parse_spec(spec)).spikes == plan.spikes
    bad = _intra_spec("tra-bad")
    bad["variants"]["structural"]["explicit"][0]["pos2"] = 1_050_500
    with pytest.raises(VariantError, match="pos2"):
        plan_dataset(parse_spec(bad))
    with pytest.raises(SpecError, match="chrom2"):
        parse_spec(base_spec("x", variants={"structural": {"explicit": [
            {"type": "translocation", "chrom": "chr20", "pos": 1_050_001}]}}))
    assert Path(generate(spec, tmp_path) / SV_BED).read_text().count("\tBND\t") == 4


def test_match_breakends_tolerates_both_ends():
    from synthlib.qc.svmatch import Breakend, match_breakends

    truth = [Breakend("chrA", 50_000, "chrB", 60_000), Breakend("chrB", 60_001, "chrA", 49_999)]
    query = [Breakend("chrB", 60_030, "chrA", 50_020),  # reported from the other side
             Breakend("chrA", 50_010, "chrB", 61_000)]  # mate end too far
    assert match_breakends(truth, query, tolerance=100) == [(0, 0)] or \
        match_breakends(truth, query, tolerance=100) == [(1, 0)]
    assert match_breakends(truth, query, tolerance=2000) and len(
        match_breakends(truth, query, tolerance=2000)) == 2

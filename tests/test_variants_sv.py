"""Structural variants, checked from the golden BAM's reads (not the simulator's bookkeeping)."""

from __future__ import annotations

import re

import pysam
import pysam.bcftools
import pytest
from _svdata import FASTA, base_spec, generate, md5, mismatch_rate, poisson_ok, starts_in

from synthlib.errors import VariantError
from synthlib.generate import SV_BED, merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

COV, L = 20, 150

SVS = [
    {"type": "deletion", "chrom": "chr20", "pos": 1010001, "end": 1012000, "genotype": "hom",
     "id": "del_hom"},
    {"type": "duplication", "chrom": "chr20", "pos": 1030001, "end": 1033000, "id": "dup_het"},
    {"type": "inversion", "chrom": "chr20", "pos": 1050001, "end": 1052000, "genotype": "hom",
     "id": "inv_hom"},
    {"type": "insertion", "chrom": "chr20", "pos": 1070001, "length": 100, "id": "ins_het"},
    {"type": "cnv", "chrom": "chr20", "pos": 1080001, "end": 1086000, "cn": 4, "id": "cnv4"},
    {"type": "cnv", "chrom": "chr20", "pos": 1120001, "end": 1126000, "cn": 1, "id": "cnv1"},
]


def _spec(id_="sv-test", **over):
    return base_spec(id_, variants={"structural": {
        "explicit": SVS,
        "random": [{"type": "deletion", "count": 2, "min_size": 60, "max_size": 3000},
                   {"type": "inversion", "count": 1, "min_size": 500, "max_size": 2000}]}},
        **over)


@pytest.fixture(scope="module")
def sv_dataset(tmp_path_factory):
    return generate(_spec(), tmp_path_factory.mktemp("sv"))


def _reads(ds, a, b):
    with pysam.AlignmentFile(str(ds / "golden.bam")) as f:
        return list(f.fetch("chr20", a, b))


@pytest.mark.parametrize("name,a,b,cn", [
    ("normal", 1100000, 1110000, 2), ("dup_het", 1030200, 1032800, 3),
    ("cnv4", 1080200, 1085800, 4), ("cnv1", 1120200, 1125800, 1)])
def test_depth_follows_copy_number(sv_dataset, name, a, b, cn):
    # Read starts in a window are a (sub-)Poisson count with mean CN/2 x cov x len / (2L) x 2.
    expected = cn / 2 * COV * (b - a) / L
    got = starts_in(sv_dataset / "golden.bam", "chr20", a, b)
    assert poisson_ok(got, expected), (name, got, expected)


def test_no_reads_inside_homozygous_deletion(sv_dataset):
    inside = [r for r in _reads(sv_dataset, 1010000, 1012000)
              if r.get_overlap(1010000, 1012000)]
    assert inside == []
    # ...and reads across it are split: primary on one side, SA on the other.
    split = [r for r in _reads(sv_dataset, 1009500, 1010000) if r.has_tag("SA")]
    assert len(split) >= 3
    for r in split:
        sa_pos = int(r.get_tag("SA").split(",")[1])
        assert sa_pos in (1012001, *range(1009000, 1010001))
        assert r.cigartuples[0][0] == 4 or r.cigartuples[-1][0] == 4  # soft-clipped rest


def test_deletion_pairs_are_discordant(sv_dataset):
    across = [r for r in _reads(sv_dataset, 1009000, 1010000)
              if r.is_paired and not r.mate_is_unmapped and r.next_reference_start >= 1012000
              and r.reference_end <= 1010000]
    assert len(across) >= 5
    assert not any(r.is_proper_pair for r in across)
    assert all(abs(r.template_length) > 2000 for r in across)


def test_duplication_junction(sv_dataset):
    # Reads over the tandem junction (end -> start) are split back to the duplicated start,
    # and pairs across it face outwards (reverse read left of forward read).
    split = [r for r in _reads(sv_dataset, 1032800, 1033000) if r.has_tag("SA")
             and int(r.get_tag("SA").split(",")[1]) <= 1030200]
    assert len(split) >= 2
    outward = [r for r in _reads(sv_dataset, 1030000, 1030400)
               if r.is_reverse and not r.mate_is_reverse and r.next_reference_start > 1032500
               and not r.is_proper_pair]
    assert len(outward) >= 2


def _sa_span(sa: str) -> tuple[int, int]:
    """0-based [start, end) on the reference of the first part named in an SA tag."""
    _, pos, _, cigar = sa.split(";")[0].split(",")[:4]
    ref = sum(int(n) for n, op in re.findall(r"(\d+)([MIDNSHP=X])", cigar) if op in "MDN=X")
    return int(pos) - 1, int(pos) - 1 + ref


@pytest.mark.parametrize("name,pos,end", [("dup_het", 1030001, 1033000),
                                           ("cnv4", 1080001, 1086000)])
def test_tandem_copies_split_only_at_real_junctions(sv_dataset, name, pos, end):
    """The first copy continues the anchor base and the last runs on into the reference: reads
    across those seams are plain contiguous alignments; only the copy-to-copy join splits."""
    seams = (pos, end)  # 0-based first base after the left and the right seam
    crossing = dict.fromkeys(seams, 0)
    for r in _reads(sv_dataset, pos - 200, end + 200):
        if r.is_supplementary or r.is_secondary:
            continue
        if r.has_tag("SA"):
            parts = [(r.reference_start, r.reference_end), _sa_span(r.get_tag("SA"))]
            for x in seams:  # a part ending at a seam while the other starts there
                assert not ({p[1] for p in parts} & {x} and {p[0] for p in parts} & {x}), \
                    (name, r.query_name, parts)
        elif "S" not in r.cigarstring:
            for x in seams:
                crossing[x] += r.reference_start < x - 5 and r.reference_end > x + 5
    # Every copy's reads cross each seam unsplit: at 20x a few dozen per seam.
    assert min(crossing.values()) >= COV * (L - 10) / L / 3, (name, crossing)


def test_inversion_reads(sv_dataset):
    # Pairs with one read inside the inversion and one outside point the same way.
    same = [r for r in _reads(sv_dataset, 1049500, 1050000)
            if r.reference_end <= 1050000 and 1050000 < r.next_reference_start < 1052000
            and r.is_reverse == r.mate_is_reverse]
    assert len(same) >= 5
    assert not any(r.is_proper_pair for r in same)
    # Split reads over the breakpoint carry their other part on the opposite strand.
    split = [r for r in _reads(sv_dataset, 1049850, 1050000) if r.has_tag("SA")]
    assert split
    for r in split:
        sa_strand = r.get_tag("SA").split(",")[2]
        assert (sa_strand == "-") != r.is_reverse
    # Inverted-segment reads are true alignments: they match the reference (only seq errors).
    assert mismatch_rate(sv_dataset / "golden.bam", "chr20", 1050200, 1051800) < 0.02


def test_insertion_reads_soft_clip_or_insert(sv_dataset):
    with pysam.VariantFile(str(sv_dataset / "truth.vcf.gz")) as f:
        anchor = next(r.pos for r in f if r.id == "ins_het")  # 1-based = 0-based next base
    near = _reads(sv_dataset, anchor - 100, anchor + 100)
    ins_ops = [r for r in near if any(op == 1 and n == 100 for op, n in r.cigartuples or [])]
    clipped = [r for r in near if r.cigartuples and r.cigartuples[0][0] == 4
               and r.reference_start == anchor]
    assert ins_ops and clipped


def test_alignments_match_reference_around_svs(sv_dataset):
    for a, b in ((1029000, 1034000), (1079000, 1087000), (1008000, 1014000)):
        assert mismatch_rate(sv_dataset / "golden.bam", "chr20", a, b) < 0.02


def test_truth_vcf_and_bed(sv_dataset):
    vcf = str(sv_dataset / "truth.vcf.gz")
    text = pysam.bcftools.view(vcf)
    assert pysam.bcftools.view.get_messages() == ""
    for t in ("<DEL>", "<DUP>", "<INV>", "<CNV>", "SVTYPE=INS", "CN=4", "END=1012000",
              "SVLEN=-2000", "##ALT=<ID=DEL"):
        assert t in text
    pysam.bcftools.norm("-c", "e", "-f", str(FASTA), "-o", "/dev/null", vcf)
    # No warning, and nothing to realign (the truth is already left-normalized).
    msg = pysam.bcftools.norm.get_messages().strip().splitlines()
    assert len(msg) == 1 and msg[0].startswith("Lines"), msg
    assert msg[0].split("\t")[1].split("/")[3:5] == ["0", "0"], msg  # realigned, mismatch
    assert pysam.bcftools.view.get_messages() == ""
    with pysam.VariantFile(vcf) as f:
        recs = {r.id: r for r in f}
    assert recs["dup_het"].stop == 1033000 and recs["dup_het"].info["SVTYPE"] == "DUP"
    bed = (sv_dataset / SV_BED).read_text().splitlines()
    assert len(bed) == len(SVS) + 3
    assert "chr20\t1010000\t1012000\tDEL\tdel_hom\t1|1\t.\t-2000" in bed


def test_bam_is_valid(sv_dataset):
    assert pysam.samtools.quickcheck(str(sv_dataset / "golden.bam")) == ""
    with pysam.AlignmentFile(str(sv_dataset / "golden.bam")) as f:
        pos = [(r.reference_id, r.reference_start) for r in f]
    assert pos == sorted(pos)


def test_determinism(sv_dataset, tmp_path):
    # The same spec twice gives byte-identical files.
    again = generate(_spec(), tmp_path / "again")
    for name in ("golden.bam", "reads_R1.fastq.gz", "truth.vcf.gz", SV_BED):
        assert md5(again / name) == md5(sv_dataset / name)
    # Units run in reverse order (as workers might) merge to the same bytes.
    plan = plan_dataset(parse_spec(_spec()))
    work = tmp_path / "work"
    work.mkdir()
    for unit in reversed(plan.units):
        run_unit(plan, unit, workdir=work)
    merge_units(plan, workdir=work, out_dir=tmp_path / "rev")
    for name in ("golden.bam", "reads_R2.fastq.gz", "truth.vcf.gz"):
        assert md5(tmp_path / "rev" / name) == md5(sv_dataset / name)


def test_sv_outside_chunk_is_rejected():
    bad = dict(SVS[0], pos=1099001, end=1101000)
    with pytest.raises(VariantError, match="inside one chunk"):
        plan_dataset(parse_spec(base_spec("bad-sv", variants={"structural": {
            "explicit": [bad]}})))

"""Supplementary records of split reads in the golden BAM (local SVs, complex events and
translocations), checked from the BAM alone."""

from __future__ import annotations

import gzip
from collections import defaultdict

import pysam
import pytest
from _svdata import FASTA, base_spec, generate, md5

from synthlib.generate import merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

SVS = [
    {"type": "deletion", "chrom": "chr20", "pos": 1010001, "end": 1011000, "id": "del"},
    {"type": "inversion", "chrom": "chr20", "pos": 1030001, "end": 1031500, "genotype": "hom",
     "id": "inv"},
    {"type": "complex", "subtype": "dDUP_INV", "chrom": "chr20", "pos": 1050001,
     "sizes": [800, 2000], "id": "ddupinv"},
    {"type": "translocation", "chrom": "chr20", "pos": 1080001, "chrom2": "chr20",
     "pos2": 10050001, "id": "tra"},
]


def _spec(id_="supp-test"):
    return base_spec(id_, coverage=20, reference={
        "name": "grch37-chr20-demo",
        "regions": ["chr20:1,000,001-1,100,000", "chr20:10,000,001-10,100,000"]},
        variants={"structural": {"explicit": SVS}})


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    return generate(_spec(), tmp_path_factory.mktemp("supp"))


@pytest.fixture(scope="module")
def records(ds):
    with pysam.AlignmentFile(str(ds / "golden.bam")) as f:
        return list(f)


def _sa(r):
    return [tuple(e.split(",")[:4]) for e in r.get_tag("SA").rstrip(";").split(";")]


def _me(r):
    return (r.reference_name, str(r.reference_start + 1), "-" if r.is_reverse else "+",
            r.cigarstring)


def test_every_sa_part_has_a_reciprocal_supplementary(records):
    supp = [r for r in records if r.is_supplementary]
    prim = [r for r in records if not r.is_supplementary and r.has_tag("SA")]
    assert len(supp) >= 50
    by = defaultdict(list)
    for r in supp:
        by[(r.query_name, r.is_read1)].append(r)
    n_parts = 0
    for p in prim:
        mine = by.pop((p.query_name, p.is_read1))
        assert sorted(_me(s) for s in mine) == sorted(_sa(p))  # one record per SA part
        n_parts += len(mine)
        for s in mine:
            assert s.flag & 0x800 and not s.is_secondary and s.mapping_quality == 60
            assert _sa(s)[0] == _me(p)  # the primary first, then the other parts
            assert sorted(_sa(s)[1:]) == sorted(_me(o) for o in mine if o is not s)
            assert s.is_paired and s.is_read1 == p.is_read1
            assert (s.next_reference_name, s.next_reference_start) == (
                p.next_reference_name, p.next_reference_start)
            # Soft-clipped: the whole read, in its own strand's orientation.
            want = p.query_sequence if s.is_reverse == p.is_reverse else _rc(p.query_sequence)
            assert s.query_sequence == want
    assert not by  # no orphan supplementary
    assert n_parts == len(supp)


def _rc(s):
    return s[::-1].translate(str.maketrans("ACGTN", "TGCAN"))


def test_supplementary_alignments_are_true(records):
    # The supplementary's CIGAR and position place its aligned bases where they came from:
    # they match the reference up to sequencing errors.
    ref = pysam.FastaFile(str(FASTA))
    mism = total = 0
    for r in records:
        if not r.is_supplementary:
            continue
        seq = ref.fetch(r.reference_name, r.reference_start, r.reference_end).upper()
        q = r.query_sequence
        for qp, rp in r.get_aligned_pairs(matches_only=True):
            total += 1
            mism += q[qp] != seq[rp - r.reference_start]
    assert total > 2000
    assert mism / total < 0.02


def test_translocation_supplementaries_on_the_partner(records):
    at_partner = [r for r in records if r.is_supplementary
                  and 10_050_000 - 200 <= r.reference_start < 10_050_000 + 200
                  and _sa(r)[0][1] in {str(x) for x in range(1_079_700, 1_080_200)}]
    assert len(at_partner) >= 5


def test_bam_valid_sorted_indexed(ds, records):
    bam = str(ds / "golden.bam")
    assert pysam.samtools.quickcheck(bam) == ""
    pos = [(r.reference_id, r.reference_start) for r in records]
    assert pos == sorted(pos)
    with pysam.AlignmentFile(bam) as f:
        for s in [r for r in records if r.is_supplementary][::7]:
            got = [(x.query_name, x.is_supplementary, x.reference_start)
                   for x in f.fetch(s.reference_name, s.reference_start, s.reference_start + 1)]
            assert (s.query_name, True, s.reference_start) in got
            p = next(x for x in records if x.query_name == s.query_name
                     and x.is_read1 == s.is_read1 and not x.is_supplementary)
            got = [(x.query_name, x.is_supplementary)
                   for x in f.fetch(p.reference_name, p.reference_start, p.reference_start + 1)]
            assert (s.query_name, False) in got
    # The index agrees with samtools' own.
    n = int(pysam.samtools.view("-c", bam, "chr20:1050000-1053000").strip())
    assert n == sum(1 for r in records if r.reference_start < 1053000
                    and r.reference_end > 1049999)


def test_fastq_holds_no_supplementary(ds, records):
    with gzip.open(ds / "reads_R1.fastq.gz", "rt") as fh:
        n_fq = sum(1 for _ in fh) // 4
    assert n_fq == sum(1 for r in records if r.is_read1 and not r.is_supplementary)


def test_deterministic_in_any_unit_order(ds, tmp_path):
    plan = plan_dataset(parse_spec(_spec()))
    work = tmp_path / "work"
    work.mkdir()
    for unit in reversed(plan.units):
        run_unit(plan, unit, workdir=work)
    merge_units(plan, workdir=work, out_dir=tmp_path / "rev")
    for name in ("golden.bam", "golden.bam.bai"):
        assert md5(tmp_path / "rev" / name) == md5(ds / name)

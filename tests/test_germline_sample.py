"""Germline background from a real participant's genotypes (1000 Genomes, GIAB)."""

from __future__ import annotations

import pysam
import pytest

from synthlib.errors import ReferenceDataError, SpecError
from synthlib.generate import FILES, generate_local
from synthlib.plan import plan_dataset
from synthlib.resources import resolve_file
from synthlib.spec import parse_spec

REGION = "chr20:1,100,001-1,200,000"


def _spec(**germline):
    return parse_spec({
        "id": "participant", "seed": 5, "reason": "t", "coverage": 20, "chunk_size": 50_000,
        "reference": {"name": "grch37-chr20-demo", "regions": [REGION]},
        "germline": germline,
    })


def _expected(sample):
    """The participant's non-reference, ACGT, phased genotypes in the region, from the file."""
    out = {}
    path = resolve_file("grch37-chr20-demo.genotypes")
    with pysam.VariantFile(str(path)) as vcf:
        for rec in vcf.fetch("chr20", 1_100_000, 1_200_000):
            gt = rec.samples[sample]["GT"]
            if any(gt) and len(rec.ref) == 1 and all(len(a) == 1 for a in rec.alts):
                out[rec.pos] = (rec.ref, rec.alleles[max(gt)], gt)
    return out


def test_truth_is_the_participant_and_reads_carry_it(tmp_path):
    spec = _spec(source="sample", vcf="grch37-chr20-demo.genotypes", sample="HG00097")
    out = generate_local(plan_dataset(spec), dest=tmp_path)
    with pysam.VariantFile(str(out / FILES["vcf"])) as vcf:
        truth = {r.pos: (r.ref, r.alts[0], r.samples[0]["GT"]) for r in vcf}
    expected = _expected("HG00097")
    # Every SNV the participant carries is in the truth with its phased genotype, and the
    # truth has nothing the participant does not carry (chunk-edge records aside).
    snvs = {p: v for p, v in truth.items() if len(v[0]) == len(v[1]) == 1}
    assert len(expected) > 50
    assert snvs.keys() <= expected.keys()
    assert len(snvs) >= len(expected) - 2
    for pos, (ref, alt, gt) in snvs.items():
        assert (ref, alt) == expected[pos][:2] and tuple(gt) == tuple(x > 0 for x in
                                                                      expected[pos][2])
    # The reads carry them: a homozygous ALT shows (nearly) only the ALT base.
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        for pos, (_ref, alt, gt) in list(snvs.items())[:40]:
            counts = bam.count_coverage("chr20", pos - 1, pos, quality_threshold=0)
            depth = sum(c[0] for c in counts)
            k = counts["ACGT".index(alt)][0]
            if sum(gt) == 2 and depth >= 10:
                assert k >= 0.9 * depth


def test_other_participant_other_genome(tmp_path):
    a = generate_local(plan_dataset(_spec(source="sample", vcf="grch37-chr20-demo.genotypes",
                                          sample="HG00096")), dest=tmp_path / "a")
    b = generate_local(plan_dataset(_spec(source="sample", vcf="grch37-chr20-demo.genotypes",
                                          sample="HG00097")), dest=tmp_path / "b")
    assert (a / FILES["vcf"]).read_bytes() != (b / FILES["vcf"]).read_bytes()


def test_giab_participant_unphased_calls(tmp_path):
    spec = parse_spec({
        "id": "giab", "seed": 5, "reason": "t", "coverage": 5, "chunk_size": 50_000,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:10,000,001-10,100,000"]},
        "germline": {"source": "sample", "vcf": "grch37-chr20-demo.giab-na12878"},
    })
    out = generate_local(plan_dataset(spec), dest=tmp_path)
    with pysam.VariantFile(str(out / FILES["vcf"])) as vcf:
        n = sum(1 for _ in vcf)
    assert n > 50


def test_bad_participant_inputs():
    with pytest.raises(SpecError, match="needs 'vcf'"):
        _spec(source="sample")
    with pytest.raises(ReferenceDataError, match="NOBODY"):
        plan_dataset(_spec(source="sample", vcf="grch37-chr20-demo.genotypes", sample="NOBODY"))

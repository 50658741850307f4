"""B-allele fractions follow copy number: germline variants ride along in SV copies."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
from _svdata import base_spec, generate

REGION = {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,100,000"]}
CNV = (1_020_001, 1_050_000)  # 1-based: first affected base .. END
DEL = (1_060_001, 1_085_000)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    spec = base_spec(
        "baf-test", coverage=60, reference=REGION, chunk_size=100_000,
        germline={"source": "population", "population": "ALL"},
        variants={"structural": {"explicit": [
            {"type": "cnv", "chrom": "chr20", "pos": CNV[0] - 1, "end": CNV[1], "cn": 3,
             "id": "cn3"},
            {"type": "deletion", "chrom": "chr20", "pos": DEL[0] - 1, "end": DEL[1],
             "genotype": "het", "id": "del"}]}})
    return generate(spec, tmp_path_factory.mktemp("baf"))


def _germline_in(ds, lo, hi):
    with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
        return [r for r in f.fetch("chr20", lo, hi)
                if r.info["SRC"] == "germline" and len(r.ref) == 1 and len(r.alts[0]) == 1
                and lo + 1 < r.pos < hi - 1]


def _alt_frac(ds, rec):
    with pysam.AlignmentFile(str(ds / "golden.bam")) as bam:
        cov = bam.count_coverage("chr20", rec.pos - 1, rec.pos, quality_threshold=0,
                                 read_callback="all")
    depth = sum(int(c[0]) for c in cov)
    return int(cov["ACGT".index(rec.alts[0])][0]), depth


def test_cnv_baf_follows_copies(dataset):
    """CN 3 = two copies of haplotype 0, one of haplotype 1: a het SNP reads 2/3 or 1/3."""
    recs = [r for r in _germline_in(dataset, *CNV) if sorted(r.samples[0]["GT"]) == [0, 1]]
    assert len(recs) >= 5, "the CNV should keep the germline het SNPs inside it"
    pooled = {2 / 3: [0, 0], 1 / 3: [0, 0]}
    for r in recs:
        p = 2 / 3 if r.samples[0]["GT"][0] == 1 else 1 / 3
        alt, depth = _alt_frac(dataset, r)
        pooled[p][0] += alt
        pooled[p][1] += depth
    print({round(p, 3): (a, d, round(a / max(d, 1), 3)) for p, (a, d) in pooled.items()})
    for p, (alt, depth) in pooled.items():
        assert depth > 200, pooled
        # Binomial around p, widened 1.5x because a fragment can cover two nearby SNPs, plus
        # read-level error (~0.3%). The alternative without copies (1/2) lies >= 1/6 away.
        assert abs(alt / depth - p) < 4 * 1.5 * np.sqrt(p * (1 - p) / depth) + 0.01, (p, alt,
                                                                                        depth)


def test_deletion_drops_its_haplotype_and_keeps_the_other(dataset):
    """Inside a het deletion the surviving haplotype is hemizygous: its SNPs read ~100%."""
    recs = _germline_in(dataset, *DEL)
    with pysam.VariantFile(str(dataset / "truth.vcf.gz")) as f:
        sv = next(r for r in f.fetch("chr20", DEL[0] - 2, DEL[0]) if r.id == "del")
    del_hap = list(sv.samples[0]["GT"]).index(1)
    assert all(r.samples[0]["GT"][del_hap] == 0 for r in recs)
    kept = [r for r in recs if r.samples[0]["GT"][1 - del_hap] == 1]
    assert kept, "SNPs of the surviving haplotype stay in the truth"
    alt = depth = 0
    for r in kept:
        a, d = _alt_frac(dataset, r)
        alt, depth = alt + a, depth + d
    assert depth > 0 and alt / depth > 0.97

"""A true trio: father, mother and child with reads, joint phased truth, pedigree, de novos.

Runs the catalog's trio demo shrunk to 150 kb (with more de novos so both SNVs and indels
appear) through the serial cohort path, then checks the truth for Mendelian consistency and
the reads for what the truth says: de novos in the child only, inherited alleles visible.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam
import pytest

from synthlib.catalog import get_entry
from synthlib.cohort.study import COHORT_FILES, generate_cohort_local, plan_cohort_study

ENTRY = "trio-wgs-30x-demo"
REGION = "chr20:1,000,001-1,150,000"
FATHER, MOTHER, CHILD = "TRIO0001_F", "TRIO0001_M", "TRIO0001_C"


@pytest.fixture(scope="module")
def trio(tmp_path_factory) -> Path:
    entry = get_entry(ENTRY)
    spec = entry.spec
    cohort = spec.cohort.model_copy(update={"de_novo_rate": 4e-5, "de_novo_indel_fraction": 0.4})
    spec = spec.model_copy(update={
        "reference": spec.reference.model_copy(update={"regions": [REGION]}),
        "cohort": cohort,
    })
    plan = plan_cohort_study(spec, base_dir=entry.path.parent)
    return generate_cohort_local(plan, dest=tmp_path_factory.mktemp("trio"))


def _records(folder: Path) -> list[dict]:
    out = []
    with pysam.VariantFile(str(folder / COHORT_FILES["vcf"])) as vcf:
        assert list(vcf.header.samples) == [FATHER, MOTHER, CHILD]
        for r in vcf:
            gts = {s: r.samples[s]["GT"] for s in (FATHER, MOTHER, CHILD)}
            assert all(r.samples[s].phased for s in gts)
            out.append({"pos": r.pos, "ref": r.ref, "alt": r.alts[0], "src": r.info["SRC"],
                        **gts})
    return out


def _denovos(folder: Path) -> list[tuple[int, str, str]]:
    with pysam.VariantFile(str(folder / COHORT_FILES["denovo"])) as vcf:
        return [(r.pos, r.ref, r.alts[0]) for r in vcf]


def test_layout_and_pedigree(trio):
    for s in (FATHER, MOTHER, CHILD):
        for name in ("reads_R1.fastq.gz", "reads_R2.fastq.gz", "golden.bam", "truth.vcf.gz"):
            assert (trio / "samples" / s / name).stat().st_size > 0
    ped = [line.split("\t") for line in (trio / COHORT_FILES["ped"]).read_text().splitlines()]
    assert ped == [["TRIO0001", FATHER, "0", "0", "1", "1"],
                   ["TRIO0001", MOTHER, "0", "0", "2", "1"],
                   ["TRIO0001", CHILD, FATHER, MOTHER, ped[2][4], "2"]]
    assert not (trio / "study").exists()  # one trio and no controls: no burden test


def test_mendelian_consistency_except_flagged_denovos(trio):
    recs = _records(trio)
    violations, switches, last = set(), 0, None
    for r in recs:
        c0, c1 = r[CHILD]
        # Phased transmission: haplotype 0 comes from the father, 1 from the mother.
        if c0 not in r[FATHER] or c1 not in r[MOTHER]:
            violations.add((r["pos"], r["ref"], r["alt"]))
        if r[FATHER][0] != r[FATHER][1] and r["src"] != "denovo":  # informative for the father
            k = r[FATHER].index(c0)
            switches += last is not None and k != last
            last = k
    flagged = set(_denovos(trio))
    assert flagged and violations == flagged
    assert {(r["pos"], r["ref"], r["alt"]) for r in recs if r["src"] == "denovo"} == flagged
    for r in recs:
        if r["src"] == "denovo":
            assert r[FATHER] == r[MOTHER] == (0, 0) and sum(r[CHILD]) == 1
    kinds = {"snv" if len(a) == len(b) == 1 else "indel" for _, a, b in flagged}
    assert kinds == {"snv", "indel"}
    # 150 kb at ~1 cM/Mb: a crossover is rare, so the child's paternal haplotype is one of the
    # father's two almost everywhere (a switch needs a crossover, never a genotype error).
    assert switches <= 2


def _alt_count(bam: pysam.AlignmentFile, pos: int, ref: str, alt: str) -> tuple[int, int]:
    """(reads showing the allele, reads covering the site) at a 1-based VCF position."""
    if len(ref) == len(alt) == 1:
        counts = bam.count_coverage("chr20", pos - 1, pos, quality_threshold=0)
        return counts["ACGT".index(alt)][0], sum(c[0] for c in counts)
    want = len(alt) - len(ref)  # + insertion, - deletion, anchored at pos
    hits = depth = 0
    for col in bam.pileup("chr20", pos - 1, pos, truncate=True, min_base_quality=0,
                          ignore_orphans=False, stepper="nofilter"):
        for read in col.pileups:
            depth += 1
            hits += read.indel == want
    return hits, depth


def test_denovos_in_child_reads_only(trio):
    bams = {s: pysam.AlignmentFile(str(trio / "samples" / s / "golden.bam"))
            for s in (FATHER, MOTHER, CHILD)}
    for pos, ref, alt in _denovos(trio):
        k, n = _alt_count(bams[CHILD], pos, ref, alt)
        # Het at ~30x: Binomial(n, 0.5) is inside [0.15, 0.85] n for n >= 12 except ~1e-3.
        assert n >= 12 and 0.15 * n <= k <= 0.85 * n, (pos, ref, alt, k, n)
        for parent in (FATHER, MOTHER):
            k, n = _alt_count(bams[parent], pos, ref, alt)
            # Only sequencing errors can show an SNV allele (<1% per base); no indel errors.
            limit = 0 if len(ref) != len(alt) else max(1, int(0.05 * n))
            assert n >= 10 and k <= limit, (parent, pos, ref, alt, k, n)


def test_inherited_alleles_visible_in_child_reads(trio):
    bam = pysam.AlignmentFile(str(trio / "samples" / CHILD / "golden.bam"))
    het, hom, absent = [], [], []
    for r in _records(trio):
        if r["src"] != "background" or len(r["ref"]) != 1 or len(r["alt"]) != 1:
            continue
        k, n = _alt_count(bam, r["pos"], r["ref"], r["alt"])
        if n < 10:
            continue
        dose = sum(r[CHILD])
        if dose == 0 and not any(r[FATHER] + r[MOTHER]):
            continue  # a panel site none of the three carries
        (absent, het, hom)[dose].append(k / n)
    assert len(het) > 50 and len(hom) > 20 and len(absent) > 20
    # Inherited het alleles sit near half the reads; hom ones in (nearly) all of them; alleles
    # the parents carry but did not pass on are absent from the child (errors only).
    assert abs(np.median(het) - 0.5) < 0.08
    assert np.mean((np.asarray(het) > 0.1) & (np.asarray(het) < 0.9)) > 0.97
    assert np.min(hom) > 0.85
    assert np.max(absent) < 0.1

"""Truth-vs-query comparison: normalization, haplotype matching, SVs, strata (hand-worked)."""

from __future__ import annotations

import json
import math

import pysam
import pytest
from _vcf_builders import Rec, random_sequence, write_bed, write_fasta, write_vcf
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlib.errors import QCError
from synthlib.qc.compare import compare_vcfs
from synthlib.qc.normalize import decompose_mnv, normalize_allele
from synthlib.qc.svmatch import SVCall, match_svs
from synthlib.resources import DATA_DIR

CHR_LEN = 20_000


def _make_seq() -> str:
    s = list(random_sequence(CHR_LEN, seed=7))
    # 1-based 100 = C, 101-104 = AAAA, 105 = G: a homopolymer with unambiguous ends.
    s[99:105] = list("CAAAAG")
    return "".join(s)


SEQ = _make_seq()


def b(pos: int, n: int = 1) -> str:
    """Reference bases at 1-based ``pos``."""
    return SEQ[pos - 1 : pos - 1 + n]


def other(base: str) -> str:
    return {"A": "C", "C": "G", "G": "T", "T": "A"}[base]


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    d = tmp_path_factory.mktemp("ref")
    return write_fasta(d / "ref.fa", {"chr1": SEQ})


@pytest.fixture
def vcf(tmp_path):
    counter = iter(range(1000))

    def make(records, **kw):
        return write_vcf(tmp_path / f"v{next(counter)}.vcf.gz", records,
                         contigs={"chr1": CHR_LEN}, **kw)

    return make


def snv(pos: int, gt: str = "0/1", **kw) -> Rec:
    return Rec("chr1", pos, b(pos), other(b(pos)), gt, **kw)


def _cmp(truth, query, ref, **kw):
    return compare_vcfs(truth=truth, query=query, reference=ref, **kw)


# --- normalization units -------------------------------------------------------------------


def test_normalize_left_aligns_in_dinucleotide_repeat():
    seq = "GGCACACACATT"
    # Deleting the last "CA" of the repeat (0-based 8..9, anchor A at 7) left-aligns to the
    # anchor G at 1 deleting "CA" at 2..3.
    assert normalize_allele(seq=seq, pos=7, ref="ACA", alt="A") == (1, "GCA", "G")
    # Padded SNV is trimmed on both sides.
    assert normalize_allele(seq=seq, pos=2, ref="CAC", alt="CTC") == (3, "A", "T")
    assert decompose_mnv(pos=10, ref="ACG", alt="GCT") == [(10, "A", "G"), (12, "G", "T")]


def _apply_one(seq: str, pos: int, ref: str, alt: str) -> str:
    assert seq[pos : pos + len(ref)] == ref
    return seq[:pos] + alt + seq[pos + len(ref) :]


@settings(max_examples=150, deadline=None)
@given(
    seq=st.text(alphabet="AC", min_size=12, max_size=30),
    data=st.data(),
)
def test_normalize_is_leftmost_equivalent_representation(seq, data):
    # Any deletion (with its anchor base) in a low-complexity sequence: normalizing keeps the
    # haplotype and lands on the leftmost of all deletions that give the same haplotype.
    n = data.draw(st.integers(1, 4))
    p = data.draw(st.integers(1, len(seq) - n - 1))  # anchor at p-1, delete [p, p+n)
    ref, alt = seq[p - 1 : p + n], seq[p - 1]
    hap = _apply_one(seq, p - 1, ref, alt)
    npos, nref, nalt = normalize_allele(seq=seq, pos=p - 1, ref=ref, alt=alt)
    assert _apply_one(seq, npos, nref, nalt) == hap
    assert len(nref) == n + 1 and len(nalt) == 1 and nref[0] == nalt
    leftmost = min(q for q in range(1, len(seq) - n + 1) if seq[:q] + seq[q + n :] == hap)
    assert npos == leftmost - 1


def test_sv_matcher_pairs_one_to_one_and_respects_type():
    t = [SVCall("c", 1000, 3000, "DEL", 2000), SVCall("c", 1000, 3000, "DUP", 2000)]
    q = [SVCall("c", 1050, 2950, "DEL", 1900), SVCall("c", 1010, 3010, "DEL", 2000)]
    # The closer, better-overlapping DEL wins; the DUP has no partner of its type.
    assert match_svs(t, q, tolerance=500, reciprocal_overlap=0.5) == [(0, 1)]


# --- end-to-end cases ----------------------------------------------------------------------


def _mixed_truth() -> list[Rec]:
    return [
        snv(500, "0/1"),
        snv(800, "1/1"),
        Rec("chr1", 1200, b(1200, 4), b(1200), "0/1"),  # 3 bp deletion
        Rec("chr1", 1500, b(1500), b(1500) + "TTG", "1|0"),  # 3 bp insertion
        Rec("chr1", 1800, b(1800, 2), other(b(1800)) + other(b(1801)), "0/1"),  # MNV
    ]


def test_identical_files_score_perfectly(ref, vcf):
    t = vcf(_mixed_truth())
    res = _cmp(t, t, ref)
    d = res.to_dict()
    for s in ("allele", "genotype"):
        assert d[s]["tp"] == d[s]["tp_query"] == 5
        assert d[s]["fp"] == d[s]["fn"] == 0
        assert d[s]["precision"] == d[s]["recall"] == d[s]["f1"] == 1.0
    assert {m.method for m in res.matches} == {"exact"}
    json.dumps(d)  # JSON-ready


def test_homopolymer_deletion_at_first_vs_last_base_matches(ref, vcf):
    assert b(100, 6) == "CAAAAG"
    first = vcf([Rec("chr1", 100, "CA", "C", "0/1")])  # deletes the first A
    last = vcf([Rec("chr1", 103, "AA", "A", "0/1")])  # deletes the last A
    res = _cmp(first, last, ref)
    d = res.to_dict()
    assert (d["genotype"]["tp"], d["genotype"]["fp"], d["genotype"]["fn"]) == (1, 0, 0)
    assert {m.method for m in res.matches} == {"exact"}
    assert {(m.pos, m.ref, m.alt) for m in res.matches} == {(100, "CA", "C")}


def test_homopolymer_insertion_written_after_last_base_matches(ref, vcf):
    t = vcf([Rec("chr1", 100, "C", "CA", "1/1")])
    q = vcf([Rec("chr1", 104, "AG", "AAG", "1/1")])  # padded on the right, after the run
    d = _cmp(t, q, ref).to_dict()
    assert (d["genotype"]["tp"], d["genotype"]["fp"], d["genotype"]["fn"]) == (1, 0, 0)


def test_mnv_matches_two_snvs_at_allele_level(ref, vcf):
    mnv_ref = b(1800, 2)
    mnv_alt = other(mnv_ref[0]) + other(mnv_ref[1])
    t = vcf([Rec("chr1", 1800, mnv_ref, mnv_alt, "0/1")])
    q = vcf([Rec("chr1", 1800, mnv_ref[0], mnv_alt[0], "0/1"),
             Rec("chr1", 1801, mnv_ref[1], mnv_alt[1], "0/1")])
    res = _cmp(t, q, ref)
    a = res.to_dict()["allele"]
    assert (a["tp"], a["tp_query"], a["fp"], a["fn"]) == (1, 2, 0, 0)
    assert a["precision"] == a["recall"] == 1.0
    assert res.to_dict()["by_type"]["MNV"]["allele"]["tp"] == 1
    assert res.to_dict()["by_type"]["SNV"]["allele"]["tp_query"] == 2


def test_complex_allele_matches_its_decomposition_by_haplotype(ref, vcf):
    # Query: an SNV at 3001 and a 1 bp deletion after 3003. Truth: the same change written
    # as one complex allele over 3001..3004 (not an MNV, so only haplotype matching helps).
    r = b(3001, 4)
    hap = other(r[0]) + r[1:3]  # SNV at 3001, base 3004 deleted
    assert len(hap) == 3
    t = vcf([Rec("chr1", 3001, r, hap, "0/1")])
    q = vcf([Rec("chr1", 3001, r[0], other(r[0]), "0/1"),
             Rec("chr1", 3003, r[2:4], r[2], "0/1")])
    res = _cmp(t, q, ref)
    g = res.to_dict()["genotype"]
    assert (g["tp"], g["tp_query"], g["fp"], g["fn"]) == (1, 2, 0, 0)
    assert {m.method for m in res.matches} == {"haplotype"}
    # Same query but the deletion lands one base off: different haplotype, no match.
    q2 = vcf([Rec("chr1", 3001, r[0], other(r[0]), "0/1"),
              Rec("chr1", 3002, r[1:3], r[1], "0/1")])
    assert r[2] != r[3]  # otherwise both deletions would be the same allele
    a2 = _cmp(t, q2, ref).to_dict()["allele"]
    assert (a2["tp"], a2["fn"]) == (0, 1)
    # Genotypes: a hom-alt complex allele is matched by hom-alt parts only.
    t_hom = vcf([Rec("chr1", 3001, r, hap, "1/1")])
    g = _cmp(t_hom, q, ref).to_dict()["genotype"]
    assert (g["tp"], g["fp"], g["fn"]) == (0, 2, 1)
    q_mixed = vcf([Rec("chr1", 3001, r[0], other(r[0]), "1/1"),
                   Rec("chr1", 3003, r[2:4], r[2], "0/1")])
    g = _cmp(t_hom, q_mixed, ref).to_dict()["genotype"]
    assert (g["tp"], g["fp"], g["fn"]) == (0, 2, 1)
    q_hom = vcf([Rec("chr1", 3001, r[0], other(r[0]), "1|1"),
                 Rec("chr1", 3003, r[2:4], r[2], "1/1")])
    g = _cmp(t_hom, q_hom, ref).to_dict()["genotype"]
    assert (g["tp"], g["tp_query"], g["fp"], g["fn"]) == (1, 2, 0, 0)


def test_hom_mnv_vs_het_snvs_is_genotype_mismatch(ref, vcf):
    r = b(1800, 2)
    t = vcf([Rec("chr1", 1800, r, other(r[0]) + other(r[1]), "1/1")])
    q = vcf([Rec("chr1", 1800, r[0], other(r[0]), "0/1"),
             Rec("chr1", 1801, r[1], other(r[1]), "0/1")])
    d = _cmp(t, q, ref).to_dict()
    assert d["allele"]["recall"] == 1.0
    assert (d["genotype"]["tp"], d["genotype"]["fp"], d["genotype"]["fn"]) == (0, 2, 1)


def test_missing_variant_is_fn_and_extra_call_is_fp(ref, vcf):
    truth = _mixed_truth()
    t = vcf(truth)
    missing = vcf(truth[1:])
    d = _cmp(t, missing, ref).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (4, 0, 1)
    assert math.isclose(d["recall"], 0.8) and d["precision"] == 1.0
    extra = vcf(truth + [snv(9000)])
    d = _cmp(t, extra, ref).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (5, 1, 0)
    assert math.isclose(d["precision"], 5 / 6) and d["recall"] == 1.0
    assert math.isclose(d["f1"], 2 * (5 / 6) / (5 / 6 + 1))


def test_wrong_genotype_is_allele_tp_but_genotype_fp_and_fn(ref, vcf):
    t = vcf([snv(500, "0/1"), snv(800, "1/1")])
    q = vcf([snv(500, "1/1"), snv(800, "1/1")])
    res = _cmp(t, q, ref)
    d = res.to_dict()
    assert (d["allele"]["tp"], d["allele"]["fp"], d["allele"]["fn"]) == (2, 0, 0)
    assert (d["genotype"]["tp"], d["genotype"]["fp"], d["genotype"]["fn"]) == (1, 1, 1)
    # Zygosity comes from the truth: the het site is the one that fails.
    assert d["by_zygosity"]["het"]["genotype"]["recall"] == 0.0
    assert d["by_zygosity"]["hom"]["genotype"]["recall"] == 1.0
    # Phase and allele order do not matter.
    q2 = vcf([snv(500, "1|0"), snv(800, "1|1")])
    assert _cmp(t, q2, ref).to_dict()["genotype"]["fp"] == 0


def test_multiallelic_record_is_split_and_normalized(ref, vcf):
    # Deletion and insertion of an A in the homopolymer in one record, GT 1/2; and three
    # SNV ALTs at 700 of which GT 1/2 carries two (the third is not this sample's).
    alts = [x for x in "ACGT" if x != b(700)]
    t = vcf([Rec("chr1", 100, "CA", "C,CAA", "1/2"),
             Rec("chr1", 700, b(700), ",".join(alts), "1/2")])
    q = vcf([Rec("chr1", 103, "AA", "A", "0/1"), Rec("chr1", 104, "A", "AA", "0/1"),
             Rec("chr1", 700, b(700), alts[0], "0/1"), Rec("chr1", 700, b(700), alts[1], "0/1")])
    res = _cmp(t, q, ref)
    d = res.to_dict()
    assert (d["genotype"]["tp"], d["genotype"]["fp"], d["genotype"]["fn"]) == (4, 0, 0)
    truth_rows = [m for m in res.matches if m.side == "truth"]
    assert sorted((m.pos, m.ref, m.alt) for m in truth_rows) == sorted(
        [(100, "CA", "C"), (100, "C", "CA"), (700, b(700), alts[0]), (700, b(700), alts[1])]
    )
    # A query calling the third ALT instead of the second gets it as an FP.
    q2 = vcf([Rec("chr1", 700, b(700), f"{alts[0]},{alts[2]}", "1/2")])
    t2 = vcf([Rec("chr1", 700, b(700), ",".join(alts), "1/2")])
    a = _cmp(t2, q2, ref).to_dict()["allele"]
    assert (a["tp"], a["fp"], a["fn"]) == (1, 1, 1)


def _sv_del(pos: int, end: int, gt: str = "0/1") -> Rec:
    return Rec("chr1", pos, b(pos), "<DEL>", gt,
               info=f"SVTYPE=DEL;END={end};SVLEN={-(end - pos)}")


def test_sv_deletion_breakpoint_tolerance(ref, vcf):
    t = vcf([_sv_del(2000, 12000)])
    near = vcf([_sv_del(2100, 12100)])
    res = _cmp(t, near, ref)
    assert res.to_dict()["genotype"]["tp"] == 1
    assert {m.method for m in res.matches} == {"sv"}
    assert res.to_dict()["by_type"]["SV:DEL"]["allele"]["recall"] == 1.0
    # 2000 bp off on both ends: still 80 % reciprocal overlap, but beyond the tolerance.
    far = vcf([_sv_del(4000, 14000)])
    d = _cmp(t, far, ref).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (0, 1, 1)
    # One end exact, the other 2000 bp off: 83 % overlap, still no match.
    d = _cmp(t, vcf([_sv_del(2000, 14000)]), ref).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (0, 1, 1)
    # ... and accepted when the tolerance allows it.
    d = _cmp(t, far, ref, sv_breakpoint_tolerance=2500).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 0, 0)
    # Within tolerance but too little overlap for a short event.
    t_short = vcf([_sv_del(2000, 2300)])
    q_short = vcf([_sv_del(2200, 2500)])
    d = _cmp(t_short, q_short, ref).to_dict()["allele"]
    assert (d["tp"], d["fp"], d["fn"]) == (0, 1, 1)


def test_sequence_resolved_deletion_matches_symbolic(ref, vcf):
    # A 120 bp deletion written out in full in the truth, as <DEL> shifted 30 bp in the query.
    t = vcf([Rec("chr1", 5000, b(5000, 121), b(5000), "0/1")])
    q = vcf([_sv_del(5030, 5150)])
    res = _cmp(t, q, ref)
    d = res.to_dict()
    assert d["allele"]["tp"] == 1 and d["allele"]["fp"] == 0
    assert d["by_type"]["DEL:>50"]["allele"]["tp"] == 1
    assert d["by_type"]["SV:DEL"]["allele"]["tp_query"] == 1


def test_sv_insertion_length_ratio(ref, vcf):
    def ins(pos, n):
        return Rec("chr1", pos, b(pos), "<INS>", "0/1", info=f"SVTYPE=INS;SVLEN={n}")

    t = vcf([ins(6000, 300)])
    assert _cmp(t, vcf([ins(6200, 250)]), ref).to_dict()["allele"]["tp"] == 1
    assert _cmp(t, vcf([ins(6200, 100)]), ref).to_dict()["allele"]["tp"] == 0


def test_regions_restrict_and_targets_stratify(ref, tmp_path, vcf):
    t = vcf([snv(500), snv(800), snv(9000)])
    q = vcf([snv(500), snv(9500)])  # 800 missed, 9500 extra
    bed = write_bed(tmp_path / "conf.bed", [("chr1", 0, 1000)])
    res = _cmp(t, q, ref, regions=bed)
    d = res.to_dict()["allele"]
    # 9000 (FN) and 9500 (FP) lie outside: not counted.
    assert (d["tp"], d["fp"], d["fn"]) == (1, 0, 1)
    assert {m.vid: m.allele_status for m in res.matches}["chr1:9500:" + b(9500) + ">"
                                                         + other(b(9500))] == "UNK"
    tgt = write_bed(tmp_path / "tgt.bed", [("chr1", 8000, 10000)])
    by = _cmp(t, q, ref, targets=tgt).to_dict()["by_region"]
    assert (by["inside"]["allele"]["tp"], by["inside"]["allele"]["fp"],
            by["inside"]["allele"]["fn"]) == (0, 1, 1)
    assert (by["outside"]["allele"]["tp"], by["outside"]["allele"]["fn"]) == (1, 1)


def test_by_type_breakdown_counts(ref, vcf):
    truth = [
        snv(500), snv(800),
        Rec("chr1", 1200, b(1200, 4), b(1200), "0/1"),  # DEL 3
        Rec("chr1", 1400, b(1400, 11), b(1400), "0/1"),  # DEL 10
        Rec("chr1", 1600, b(1600, 21), b(1600), "1/1"),  # DEL 20
        Rec("chr1", 1900, b(1900), b(1900) + "GATTACAGATTAC", "0/1"),  # INS 12
    ]
    query = [truth[0], truth[2], truth[4], truth[5], snv(2500)]  # misses SNV 800, DEL 10
    bt = _cmp(vcf(truth), vcf(query), ref).to_dict()["by_type"]
    got = {k: (v["allele"]["tp"], v["allele"]["fp"], v["allele"]["fn"]) for k, v in bt.items()}
    assert got == {
        "SNV": (1, 1, 1),
        "DEL:1-5": (1, 0, 0),
        "DEL:6-15": (0, 0, 1),
        "DEL:16-50": (1, 0, 0),
        "INS:6-15": (1, 0, 0),
    }
    assert bt["DEL:6-15"]["allele"]["precision"] is None
    assert bt["DEL:6-15"]["allele"]["recall"] == 0.0


def test_filtered_query_records_ignored_unless_asked(ref, vcf):
    t = vcf([snv(500)])
    q = vcf([snv(500), snv(900, filt="LowQual")])
    assert _cmp(t, q, ref).to_dict()["allele"]["fp"] == 0
    assert _cmp(t, q, ref, include_filtered=True).to_dict()["allele"]["fp"] == 1


def test_zero_denominators_are_none(ref, vcf):
    t = vcf([snv(500)])
    empty = vcf([])
    d = _cmp(t, empty, ref).to_dict()["allele"]
    assert d["precision"] is None and d["recall"] == 0.0 and d["f1"] is None
    d = _cmp(empty, t, ref).to_dict()["allele"]
    assert d["recall"] is None and d["precision"] == 0.0
    table = _cmp(empty, t, ref).table()
    assert set(table["stringency"]) == {"allele", "genotype"}
    assert len(table[table["breakdown"] == "all"]) == 2


def test_sample_selection(ref, vcf):
    t = vcf([snv(500, ("0/1", "0/0")), snv(800, ("0/0", "1/1"))], samples=("A", "B"))
    q = vcf([snv(800, "1/1")])
    d = _cmp(t, q, ref, truth_sample="B").to_dict()["genotype"]
    assert (d["tp"], d["fp"], d["fn"]) == (1, 0, 0)
    d = _cmp(t, q, ref).to_dict()["genotype"]  # first sample: A
    assert (d["tp"], d["fp"], d["fn"]) == (0, 1, 1)
    with pytest.raises(QCError, match="sample 'C'"):
        _cmp(t, q, ref, truth_sample="C")


def test_vaf_breakdown(ref, vcf):
    t = vcf([snv(500, vaf="0.03"), snv(800, vaf="0.3"), snv(1100, vaf="0.04")])
    q = vcf([snv(500), snv(800)])
    bv = _cmp(t, q, ref).to_dict()["by_vaf"]
    assert (bv["0-0.05"]["allele"]["tp"], bv["0-0.05"]["allele"]["fn"]) == (1, 1)
    assert (bv["0.2-0.5"]["allele"]["tp"], bv["0.2-0.5"]["allele"]["fn"]) == (1, 0)


def test_ref_mismatch_is_an_error(ref, vcf):
    bad = vcf([Rec("chr1", 500, other(b(500)), b(500), "0/1")])
    with pytest.raises(QCError, match="does not match the reference"):
        _cmp(bad, bad, ref)


def test_real_giab_truth_against_itself_is_perfect():
    d = DATA_DIR / "references" / "grch37-chr20-demo"
    vcf_path = d / "test_nist.b37_chr20_100kbp_at_10mb.vcf.gz"
    res = compare_vcfs(
        truth=vcf_path,
        query=vcf_path,
        reference=d / "GRCh37_chr20_2regions.fa.gz",
        regions=d / "test_nist.b37_chr20_100kbp_at_10mb.bed",
    )
    out = res.to_dict()
    for s in ("allele", "genotype"):
        assert out[s]["precision"] == out[s]["recall"] == 1.0
        assert out[s]["tp"] == out[s]["tp_query"] > 0
    # Every allele the sample carries is one truth and one query row (a 1/2 record is two).
    with pysam.VariantFile(str(vcf_path)) as vf:
        n_alleles = sum(len(set(r.samples[0]["GT"]) - {0, None}) for r in vf)
    assert len(res.matches) == 2 * n_alleles
    assert n_alleles > sum(1 for _ in pysam.VariantFile(str(vcf_path)))


def test_sites_only_plain_vcf_and_chr_prefix(ref, tmp_path):
    # Truth: plain-text, sites-only, contig "1" against the FASTA's "chr1".
    plain = write_vcf(tmp_path / "t.vcf", [Rec("1", 500, b(500), other(b(500)))],
                      contigs={"1": CHR_LEN}, samples=(), compress=False)
    assert plain.suffix == ".vcf"
    q = write_vcf(tmp_path / "q.vcf.gz", [snv(500, "0/1")], contigs={"chr1": CHR_LEN})
    res = _cmp(plain, q, ref)
    d = res.to_dict()
    assert d["allele"]["tp"] == 1 and d["allele"]["fp"] == 0
    # A sites-only truth has no genotype to agree with.
    assert d["genotype"]["tp"] == 0
    assert set(d["by_zygosity"]) == {"unknown"}
    assert _cmp(plain, plain, ref).to_dict()["genotype"]["recall"] == 1.0


def test_unknown_contig_is_an_error(ref, tmp_path):
    bad = write_vcf(tmp_path / "x.vcf.gz", [Rec("chrX", 5, "A", "C")], contigs={"chrX": 100})
    with pytest.raises(QCError, match="not in the reference"):
        _cmp(bad, bad, ref)


def test_12k_variants_compare_in_linear_time(ref, tmp_path):
    # Exact matching is a hash lookup: 12k x 12k must not take anywhere near O(n*m) time
    # (~1 us per pair would be 144 s). 100k vs 100k takes ~2-3 s CPU on this machine.
    import random
    import time

    rng = random.Random(11)
    positions = rng.sample(range(50, CHR_LEN - 50), 12_000)
    recs = [snv(p, rng.choice(["0/1", "1/1"])) for p in sorted(positions)]
    t = write_vcf(tmp_path / "big_t.vcf.gz", recs, contigs={"chr1": CHR_LEN})
    q = write_vcf(tmp_path / "big_q.vcf.gz", recs[:-1000], contigs={"chr1": CHR_LEN})
    start = time.process_time()
    d = _cmp(t, q, ref).to_dict()["allele"]
    elapsed = time.process_time() - start
    assert (d["tp"], d["fp"], d["fn"]) == (11_000, 0, 1_000)
    assert elapsed < 20.0

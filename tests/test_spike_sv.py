"""SV spikes by read replacement in real NA12878 BAMs (issue 8): depth, junctions, bytes."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path

import pysam
import pytest
from _spike import make_variant, raw_records, record_name, write_sv_vcf

from synthlib.errors import VariantError
from synthlib.resources import RESOURCES
from synthlib.spike import spike_bam, validate_bam

TINY_BAM = RESOURCES["grch37-chr22-minigiab.reads"].local_path()
TINY_FA = RESOURCES["grch37-chr22-minigiab.fasta"].local_path()
CHR20_BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
CHR20_FA = RESOURCES["grch37-chr20-demo.fasta"].local_path()
CHR20_LEN = 63025520
SIM = "synth-sv"

# On the 12 kb slice (40x, 2x151): windows (event +- ~565 bp) apart, off the poly-A at 5580.
INS_SEQ = "ACGTTGCAAGGCTTACCGATTGACCATGGATCCGTAGCTAGGCATCGATCGGATATCCGAGCTTAGCAAT" * 4
TINY_SVS = [
    (1200, "<DUP>", "END=3200;SVTYPE=DUP;VAF=0.5"),
    (4400, "<INV>", "END=4900;SVTYPE=INV;VAF=0.5"),
    (6500, "<CNV>", "END=7500;SVTYPE=CNV;CN=4"),
    (9000, "INS", "SVTYPE=INS;VAF=0.5"),
    (10500, "<DEL>", "END=11000;SVTYPE=DEL;VAF=1.0"),
]


def _rows(fa: pysam.FastaFile, chrom: str, svs) -> list[tuple]:
    rows = []
    for pos, alt, info in svs:
        ref = fa.fetch(chrom, pos - 1, pos).upper()
        rows.append((chrom, pos, ref, ref + INS_SEQ if alt == "INS" else alt, info))
    return rows


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("spike_sv_tiny")
    fa = pysam.FastaFile(str(TINY_FA))
    vcf = write_sv_vcf(work / "svs.vcf", {"q": 12356}, _rows(fa, "q", TINY_SVS))
    out = work / "out.bam"
    res = spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=vcf, out=out, seed=5,
                    truth_out=work / "truth.vcf.gz")
    return {"work": work, "vcf": vcf, "out": out, "res": res, "bam": TINY_BAM, "fa": TINY_FA}


@pytest.fixture(scope="module")
def chr20(tmp_path_factory):
    work = tmp_path_factory.mktemp("spike_sv_chr20")
    fa = pysam.FastaFile(str(CHR20_FA))
    vcf = write_sv_vcf(work / "del.vcf", {"chr20": CHR20_LEN},
                       _rows(fa, "chr20", [(10_000_650, "<DEL>",
                                            "END=10001150;SVTYPE=DEL;VAF=0.5")]))
    out = work / "out.bam"
    res = spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=out, seed=2,
                    truth_out=work / "truth.vcf")
    return {"work": work, "vcf": vcf, "out": out, "res": res, "bam": CHR20_BAM, "fa": CHR20_FA}


def _starts(path: Path, chrom: str, lo: int, hi: int) -> int:
    """Primary, mapped, non-duplicate reads starting in ``[lo, hi)``."""
    with pysam.AlignmentFile(str(path)) as af:
        return sum(1 for r in af.fetch(chrom, max(lo, 0), hi)
                   if lo <= r.reference_start < hi and not r.flag & 0xF04)


def _check_depth(path: Path, sv, read_length: int) -> None:
    # Simulated read starts are uniform: rho fragments per base over the 2 copies, 2 reads
    # each, times the copy ratio; mates make counts at most 2x over-dispersed, so
    # Var <= 2 * mean. 4.5 sd bounds.
    rho, ratio = 2 * sv.fragment_density, sv.expected_ratio
    lo, hi = sv.pos, sv.end
    n_ev = _starts(path, sv.chrom, lo, hi)
    mean = rho * ratio * (hi - lo)
    if hi == lo:  # INS: only the flanks
        lo, hi = lo - 1, lo + 1
        mean = n_ev = 0
    assert abs(n_ev - mean) <= 4.5 * math.sqrt(2 * max(mean, 1)), (sv.svtype, n_ev, mean)
    w0, w1 = sv.window
    flank = (lo - read_length - w0) + (w1 - hi - read_length)
    n_fl = _starts(path, sv.chrom, w0, lo - read_length) + _starts(
        path, sv.chrom, hi + read_length, w1)
    assert abs(n_fl - rho * flank) <= 4.5 * math.sqrt(2 * rho * flank), (sv.svtype, n_fl)
    # and the event/flank depth ratio itself, against copy number
    if ratio and mean:
        got = (n_ev / (hi - lo)) / (n_fl / flank)
        assert abs(got - ratio) <= 4.5 * ratio * math.sqrt(2 / mean + 2 / (rho * flank))


def test_del_depth_halves_and_flanks_keep_depth(chr20):
    (sv,) = chr20["res"].svs
    assert sv.svtype == "DEL" and sv.expected_ratio == 0.5
    _check_depth(chr20["out"], sv, 101)
    assert sv.depth_after < 0.75 * sv.depth_before  # coverage, not only starts, dropped


def test_dup_cnv_and_homozygous_del_follow_copy_number(tiny):
    by_type = {v.svtype: v for v in tiny["res"].svs}
    assert by_type["DUP"].expected_ratio == 1.5 and by_type["CNV"].expected_ratio == 2.0
    for t in ("DUP", "CNV", "INV", "INS"):
        _check_depth(tiny["out"], by_type[t], 151)
    d = by_type["DEL"]
    assert d.depth_after == 0.0 and _starts(tiny["out"], "q", d.pos, d.end) == 0
    assert by_type["CNV"].depth_after > 1.4 * by_type["CNV"].depth_before


def _records(path: Path) -> list[pysam.AlignedSegment]:
    with pysam.AlignmentFile(str(path)) as af:
        return list(af.fetch(until_eof=True))


def _check_sa(recs: list[pysam.AlignedSegment]) -> int:
    """Every SA entry of a simulated read names a record of that read; returns split reads."""
    by_pos = {(r.query_name, r.reference_start, r.cigarstring, r.flag & 0xC0) for r in recs}
    n = 0
    for r in recs:
        if not r.query_name.startswith(SIM) or not r.has_tag("SA"):
            continue
        n += not r.is_supplementary
        for entry in r.get_tag("SA").rstrip(";").split(";"):
            chrom, pos, strand, cigar, _, _ = entry.split(",")
            assert (r.query_name, int(pos) - 1, cigar, r.flag & 0xC0) in by_pos, entry
    return n


def test_del_junction_has_split_reads_and_discordant_pairs(chr20):
    (sv,) = chr20["res"].svs
    recs = _records(chr20["out"])
    assert _check_sa(recs) >= 3
    # split at the breakpoint: one part ends at the last kept base, the other starts after
    ends = {r.query_name for r in recs if r.query_name.startswith(SIM) and r.has_tag("SA")
            and r.reference_end == sv.pos and r.cigartuples[-1][0] == 4}
    starts = {r.query_name for r in recs if r.query_name.startswith(SIM) and r.has_tag("SA")
              and r.reference_start == sv.end and r.cigartuples[0][0] == 4}
    assert ends & starts, "no read split exactly at the deletion junction"
    disc = [r for r in recs if r.query_name.startswith(SIM) and not r.flag & 0x902
            and r.template_length > sv.end - sv.pos]
    assert len(disc) >= 5 and sv.discordant_pairs >= len(disc)
    assert sv.split_reads >= 3


def test_inv_dup_ins_junction_signatures(tiny):
    by_type = {v.svtype: v for v in tiny["res"].svs}
    recs = [r for r in _records(tiny["out"]) if r.query_name.startswith(SIM)]
    assert _check_sa(recs) >= 10
    prim = [r for r in recs if not r.flag & 0x904 and not r.mate_is_unmapped]
    inv = by_type["INV"]
    same_strand = [r for r in prim if r.is_reverse == r.mate_is_reverse
                   and inv.window[0] <= r.reference_start < inv.window[1]]
    assert len(same_strand) >= 5  # a pair across an inversion breakpoint: FF or RR
    dup = by_type["DUP"]
    outward = [r for r in prim if r.is_reverse and not r.mate_is_reverse
               and r.next_reference_start > r.reference_end and r.template_length > 0
               and dup.pos <= r.reference_start < r.next_reference_start < dup.end]
    assert len(outward) >= 5  # tandem junction: reverse mate left of forward mate
    ins = by_type["INS"]
    clipped = [r for r in recs if not r.is_unmapped and (
        (r.reference_end == ins.pos and r.cigartuples[-1][0] == 4)
        or (r.reference_start == ins.pos and r.cigartuples[0][0] == 4))]
    assert len(clipped) >= 5
    for r in clipped:
        op, n = r.cigartuples[-1] if r.reference_end == ins.pos else r.cigartuples[0]
        clip = r.query_sequence[-n:] if r.reference_end == ins.pos else r.query_sequence[:n]
        # the clipped bases are inserted sequence (up to sequencing errors)
        ref_side = INS_SEQ[:n] if r.reference_end == ins.pos else INS_SEQ[-n:]
        assert sum(a != b for a, b in zip(clip, ref_side, strict=True)) <= max(2, n // 10)
    assert any(r.is_unmapped for r in recs) and ins.discordant_pairs >= 5


@pytest.mark.parametrize("case", ["chr20", "tiny"])
def test_records_outside_replaced_pairs_are_byte_identical(case, request):
    data = request.getfixturevalue(case)
    before, after = raw_records(data["bam"]), raw_records(data["out"])
    kept = [raw for raw in after if not record_name(raw).startswith(SIM)]
    kept_names = {record_name(raw) for raw in kept}
    removed = [raw for raw in before if record_name(raw) not in kept_names]
    assert kept == [raw for raw in before if record_name(raw) in kept_names]
    # whole pairs went, and each had a primary record starting in a replaced window
    wins = [(sv.chrom, *sv.window) for sv in data["res"].svs]
    with pysam.AlignmentFile(str(data["bam"])) as af:
        gone = defaultdict(list)
        for r in af.fetch(until_eof=True):
            if r.query_name not in kept_names:
                gone[r.query_name].append(r)
    assert sum(len(v) for v in gone.values()) == len(removed)
    # (records_removed counts distinct identities; the chr20 slice holds exact duplicates)
    assert 0 < data["res"].records_removed <= len(removed) <= data["res"].records_removed + 5
    for rs in gone.values():
        assert any(not r.flag & 0x900 and any(
            r.reference_name == c and w0 <= r.reference_start < w1 for c, w0, w1 in wins)
            for r in rs)
    added = len(after) - len(kept)
    assert added == data["res"].records_added > 0


@pytest.mark.parametrize("case", ["chr20", "tiny"])
def test_output_is_valid_and_consistent(case, request):
    data = request.getfixturevalue(case)
    out = data["out"]
    assert pysam.samtools.quickcheck(str(out)) == ""
    with pysam.AlignmentFile(str(out)) as af:
        assert af.check_index()
    before = Counter(k for _, k in validate_bam(bam=data["bam"], reference=data["fa"]))
    issues = validate_bam(bam=out, reference=data["fa"])
    assert Counter(k for _, k in issues) - before == Counter(), issues[:5]
    assert not [i for i in issues if i[0].startswith(SIM)]
    # simulated records: CIGAR query length == SEQ length, qualities drawn from the sample
    recs = [r for r in _records(out) if r.query_name.startswith(SIM)]
    assert all(r.infer_query_length() == r.query_length for r in recs if not r.is_unmapped)
    with pysam.AlignmentFile(str(data["bam"])) as af:
        real_q = {tuple(r.query_qualities) for r in af.fetch(until_eof=True)
                  if r.query_qualities is not None}
    assert sum(tuple(r.query_qualities) in real_q or tuple(r.query_qualities[::-1]) in real_q
               for r in recs) >= 0.95 * len(recs)


def test_truth_vcf_reports_the_svs(tiny):
    with pysam.VariantFile(str(tiny["work"] / "truth.vcf.gz")) as vf:
        recs = list(vf)
    assert [r.info["SVTYPE"] for r in recs] == ["DUP", "INV", "CNV", "INS", "DEL"]
    for rec, sv in zip(recs, tiny["res"].svs, strict=True):
        assert rec.pos == sv.pos and rec.info["DP_AFTER"] == pytest.approx(sv.depth_after)
        assert rec.info["SPLIT_READS"] == sv.split_reads
        assert 0 <= rec.info["VAF"] <= 1
    assert recs[2].info["CN"] == 4 and recs[4].stop == tiny["res"].svs[4].end
    assert recs[3].alts[0] == recs[3].ref + INS_SEQ
    assert tiny["res"].svs[4].realized_vaf == 1.0


def test_same_seed_same_bytes(chr20, tmp_path):
    again = tmp_path / "again.bam"
    spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=chr20["vcf"], out=again, seed=2)
    assert again.read_bytes() == chr20["out"].read_bytes()


def test_svs_and_small_variants_in_one_run(tmp_path):
    fa = pysam.FastaFile(str(TINY_FA))
    ref, alt = make_variant(fa, "q", 600, "snv")
    sv = _rows(fa, "q", [(10500, "<DEL>", "END=11000;SVTYPE=DEL;VAF=0.5")])[0]
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"q": 12356}, [("q", 600, ref, alt, "VAF=0.5"), sv])
    res = spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=vcf, out=tmp_path / "o.bam")
    assert len(res.variants) == 1 and len(res.svs) == 1
    assert res.variants[0].alt_reads >= 5 and res.svs[0].split_reads >= 1



@pytest.mark.parametrize(
    "svs, message",
    [
        ([(10_050_000, "<DEL>", "END=10050500;SVTYPE=DEL;VAF=0.5")], "no paired, mapped reads"),
        ([(10_000_800, "<DEL>", "END=10001000;SVTYPE=DEL;VAF=0.001")], "impossible"),
        ([(10_000_800, "<CNV>", "END=10001000;SVTYPE=CNV")], "copy number"),
        ([(10_000_800, "<DEL>", "SVTYPE=DEL;VAF=0.5")], "END or INFO/SVLEN"),
        ([(10_000_800, "<DEL>", "END=10001000;SVTYPE=DEL;VAF=0.5"),
          (10_001_300, "<DUP>", "END=10001400;SVTYPE=DUP;VAF=0.5")], "window overlaps"),
    ],
)
def test_sv_refusals_name_the_variant(tmp_path, svs, message):
    fa = pysam.FastaFile(str(CHR20_FA))
    rows = _rows(fa, "chr20", svs)
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"chr20": CHR20_LEN}, rows)
    with pytest.raises(VariantError, match=message) as exc:
        spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=tmp_path / "o.bam")
    assert f"chr20:{rows[-1][1] if 'overlaps' in message else rows[0][1]}" in str(exc.value)
    assert not (tmp_path / "o.bam").exists()


def test_small_variant_in_an_sv_window_is_refused(tmp_path):
    fa = pysam.FastaFile(str(CHR20_FA))
    ref, alt = make_variant(fa, "chr20", 10_000_700, "snv")
    sv = _rows(fa, "chr20", [(10_000_800, "<DEL>", "END=10001000;SVTYPE=DEL;VAF=0.5")])[0]
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"chr20": CHR20_LEN},
                       [("chr20", 10_000_700, ref, alt, "VAF=0.5"), sv])
    with pytest.raises(VariantError, match="replaced window"):
        spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=tmp_path / "o.bam")


def test_respiking_a_spiked_bam_keeps_split_reads_consistent(chr20, tmp_path):
    # the first DEL's split reads have supplementary records; a second SV whose window
    # holds some of them must remove whole pairs (primary + supplementary via SA) or none
    fa = pysam.FastaFile(str(CHR20_FA))
    vcf = write_sv_vcf(tmp_path / "inv.vcf", {"chr20": CHR20_LEN}, _rows(
        fa, "chr20", [(10_001_300, "<INV>", "END=10001400;SVTYPE=INV;VAF=0.5")]))
    out = tmp_path / "twice.bam"
    res = spike_bam(bam=chr20["out"], reference=CHR20_FA, variants=vcf, out=out, seed=2)
    recs = _records(out)
    first = {r.query_name for r in _records(chr20["out"]) if r.query_name.startswith(SIM)}
    second = {r.query_name for r in recs if r.query_name.startswith(SIM)} - first
    assert second and res.svs[0].pairs_simulated + res.svs[0].duplicate_pairs == len(second)
    w0, w1 = res.svs[0].window
    kept = {r.query_name for r in recs}
    supp = [r for r in _records(chr20["out"]) if r.is_supplementary]
    # both cases occur: a removed pair's supplementary outside the window went with it, and
    # a kept pair's supplementary inside the window stayed
    assert any(r.query_name not in kept and not w0 <= r.reference_start < w1 for r in supp)
    assert any(r.query_name in kept and w0 <= r.reference_start < w1 for r in supp)
    _check_sa(recs)  # every SA entry still names an existing record
    names = Counter((r.query_name, r.flag & 0xC0) for r in recs if not r.flag & 0x900)
    assert max(names.values()) == 1  # no name reused for two pairs
    before = Counter(k for _, k in validate_bam(bam=CHR20_BAM, reference=CHR20_FA))
    assert Counter(k for _, k in validate_bam(bam=out, reference=CHR20_FA)) - before == Counter()


def test_duplicates_are_replaced_at_the_observed_rate(tmp_path):
    # a copy of the chr20 reads where every other pair is also present as a flagged duplicate
    src = tmp_path / "dups.bam"
    with pysam.AlignmentFile(str(CHR20_BAM)) as af, pysam.AlignmentFile(
            str(tmp_path / "u.bam"), "wb", template=af) as out:
        recs = list(af.fetch(until_eof=True))
        twice = set(sorted({r.query_name for r in recs})[::2])
        for r in recs:
            out.write(r)
            if r.query_name in twice and not r.is_duplicate:
                d = pysam.AlignedSegment.fromstring(r.to_string(), af.header)
                d.query_name += ":dup"
                d.flag |= 0x400
                out.write(d)
    pysam.samtools.sort("-o", str(src), str(tmp_path / "u.bam"))
    fa = pysam.FastaFile(str(CHR20_FA))
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"chr20": CHR20_LEN}, _rows(
        fa, "chr20", [(10_000_650, "<DEL>", "END=10001150;SVTYPE=DEL;VAF=0.5")]))
    res = spike_bam(bam=src, reference=CHR20_FA, variants=vcf, out=tmp_path / "o.bam")
    (sv,) = res.svs
    # Poisson(0.5) copies per simulated pair: mean 0.5 n, sd sqrt(0.5 n)
    n = sv.pairs_simulated
    assert abs(sv.duplicate_pairs - 0.5 * n) <= 4.5 * math.sqrt(0.5 * n)
    dup_recs = [r for r in _records(tmp_path / "o.bam")
                if r.query_name.startswith(SIM) and r.is_duplicate]
    assert len({r.query_name for r in dup_recs}) == sv.duplicate_pairs
    assert validate_bam(bam=tmp_path / "o.bam", reference=CHR20_FA) == []

"""Spiking variants into real NA12878 BAMs (issue 8): recovered by bcftools, rest untouched."""

from __future__ import annotations

import gzip
import struct
from collections import Counter
from pathlib import Path

import pysam
import pytest
from _spike import apply_to_window, binom_bounds, call_variants, make_variant, write_vcf

from synthlib.errors import ReferenceDataError, VariantError
from synthlib.resources import RESOURCES
from synthlib.spike import spike_bam, validate_bam

TINY_BAM = RESOURCES["grch37-chr22-minigiab.reads"].local_path()
TINY_FA = RESOURCES["grch37-chr22-minigiab.fasta"].local_path()
CHR20_BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
CHR20_FA = RESOURCES["grch37-chr20-demo.fasta"].local_path()

# (pos, kind, VAF or None, GT). Sites are >= 150 bp from NA12878's own calls on this slice
# (bcftools finds 16: the 14 GIAB SNVs plus deletions at 5638 and 9251) and outside the
# poly-A stretch at 5580-5620 where reads are heavily clipped.
TINY_SPIKES = [
    (600, "snv", 0.5, None),
    (1400, "snv", 0.25, None),
    (2500, "snv", 1.0, None),
    (3000, "mnv", 0.5, None),
    (3600, "del3", 0.5, None),
    (4000, "ins2", 0.5, None),
    (7300, "del1", 0.25, None),
    (8000, "ins4", 1.0, None),
    (10000, "snv", None, "0|1"),  # VAF from GT; with the next one: cis on haplotype 2
    (10060, "del2", None, "0|1"),
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    work = tmp_path_factory.mktemp("spike_tiny")
    fa = pysam.FastaFile(str(TINY_FA))
    rows = []
    for pos, kind, vaf, gt in TINY_SPIKES:
        ref, alt = make_variant(fa, "q", pos, kind)
        rows.append(("q", pos, ref, alt, f"VAF={vaf}" if vaf else None, gt))
    vcf = write_vcf(work / "spikes.vcf", {"q": fa.get_reference_length("q")}, rows)
    out = work / "out.bam"
    res = spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=vcf, out=out, seed=7,
                    truth_out=work / "truth.vcf.gz")
    return {"work": work, "vcf": vcf, "rows": rows, "out": out, "res": res}


def _records(path: Path) -> list[pysam.AlignedSegment]:
    with pysam.AlignmentFile(str(path)) as af:
        return [r for r in af.fetch(until_eof=True) if not r.is_unmapped]


def test_realized_vaf_follows_the_rounding_rule(tiny):
    res = tiny["res"].to_dict()
    assert res["totals"]["variants"] == len(TINY_SPIKES)
    for v, (_, _, vaf, _gt) in zip(res["variants"], TINY_SPIKES, strict=True):
        req = vaf if vaf is not None else 0.5
        assert v["requested_vaf"] == req
        assert v["depth"] >= 15
        assert v["target_reads"] == int(req * v["depth"] + 0.5)
        # whole fragments: at most one read short of the target when mates overlap the site
        assert v["target_reads"] - 1 <= v["alt_reads"] <= v["target_reads"]
        assert v["realized_vaf"] == pytest.approx(v["alt_reads"] / v["depth"], abs=1e-6)
    with pysam.VariantFile(str(tiny["work"] / "truth.vcf.gz")) as vf:
        truth = list(vf)
    assert [(r.pos, r.ref, r.alts[0]) for r in truth] == [(r[1], r[2], r[3]) for r in tiny["rows"]]
    for rec, v in zip(truth, res["variants"], strict=True):
        assert rec.info["DP"] == v["depth"] and rec.info["ALT_READS"] == v["alt_reads"]
        assert rec.samples["SPIKE"]["AD"] == (v["depth"] - v["alt_reads"], v["alt_reads"])


def test_bcftools_recovers_every_spike_at_its_vaf(tiny):
    work = tiny["work"]
    before = {(r.pos, r.ref, r.alts) for r in call_variants(TINY_BAM, TINY_FA, work)}
    calls = [r for r in call_variants(tiny["out"], TINY_FA, work)
             if (r.pos, r.ref, r.alts) not in before]
    ref = pysam.FastaFile(str(TINY_FA)).fetch("q")
    truth = {v["pos"]: v for v in tiny["res"].to_dict()["variants"]}
    for _, pos, r, a, _, _ in tiny["rows"]:
        near = [c for c in calls if abs(c.pos - pos) <= 20]
        assert near, f"spike at {pos} not called"
        # compare haplotypes, not representations (MNVs come back as SNVs, indels shift)
        lo = pos - 30
        expect = apply_to_window(ref[lo : pos + 30], lo, [(pos, r, a)])
        got = apply_to_window(ref[lo : pos + 30], lo, [(c.pos, c.ref, c.alts[0]) for c in near])
        assert got == expect, f"spike at {pos}: called {[(c.pos, c.ref, c.alts) for c in near]}"
        ad = near[0].samples[0]["AD"]
        n, k = ad[0] + ad[1], ad[1]
        lo_k, hi_k = binom_bounds(n, truth[pos]["requested_vaf"])
        assert lo_k <= k <= hi_k, f"spike at {pos}: AD {ad} outside binomial [{lo_k},{hi_k}]"
        if truth[pos]["requested_vaf"] == 1.0:
            assert near[0].samples[0]["GT"] == (1, 1)
    assert len({c.pos for c in calls if all(abs(c.pos - p[1]) > 20 for p in tiny["rows"])}) == 0


def test_only_reads_at_spikes_and_their_mates_change(tiny):
    before, after = _records(TINY_BAM), _records(tiny["out"])
    assert len(before) == len(after)
    out_strings = Counter(r.to_string() for r in after)
    changed = [r for r in before if not out_strings[r.to_string()]]
    sites = [(p - 1, p - 1 + len(r)) for _, p, r, _, _, _ in tiny["rows"]]

    def at_site(r):
        return any(r.reference_start < e and r.reference_end > s for s, e in sites)

    spanning_names = {r.query_name for r in changed if at_site(r)}
    assert changed and all(r.query_name in spanning_names for r in changed)
    # every edited read keeps its name, flag, length, qualities multiset and MAPQ
    by_key = {(r.query_name, r.flag): r for r in after}
    for r in changed:
        new = by_key[(r.query_name, r.flag)]
        assert new.query_length == r.query_length and new.mapping_quality == r.mapping_quality
    assert tiny["res"].records_changed == len(changed)


def test_indel_reads_are_realigned_with_consistent_tags(tiny):
    after = _records(tiny["out"])
    fa = pysam.FastaFile(str(TINY_FA))
    del_start = 3600  # del3 at 3600: deleted bases 3601-3603 (0-based 3600-3602)
    carriers = [r for r in after if {3600, 3601, 3602} <= {
        rp for qp, rp in r.get_aligned_pairs() if qp is None}]
    assert len(carriers) == tiny["res"].variants[4].alt_reads
    for r in carriers:
        pairs = r.get_aligned_pairs()
        deleted = {rp for qp, rp in pairs if qp is None}
        assert set(range(del_start, del_start + 3)) <= deleted
        assert r.query_sequence == "".join(
            r.query_sequence[qp] for qp, _ in pairs if qp is not None)
        seq = fa.fetch("q", r.reference_start, r.reference_end)
        assert r.get_tag("NM") >= 3 and "^" + seq[del_start - r.reference_start:][:3] in (
            r.get_tag("MD").upper())
    ins = [r for r in after if any(op == 1 and n == 4 for op, n in r.cigartuples)]
    assert len(ins) >= tiny["res"].variants[7].alt_reads - 2  # reads ending in it are clipped


def test_output_is_valid_sorted_and_no_new_inconsistency(tiny):
    assert pysam.samtools.quickcheck(str(tiny["out"])) == ""
    with pysam.AlignmentFile(str(tiny["out"])) as af:
        assert af.check_index()
        assert any(pg["ID"].startswith("synth-spike") for pg in af.header.to_dict()["PG"])
    before = Counter(validate_bam(bam=TINY_BAM, reference=TINY_FA))
    after = Counter(validate_bam(bam=tiny["out"], reference=TINY_FA))
    # the slice keeps chr22 mate coordinates (mate-pos) and 6 odd NM values: none are new
    assert after - before == Counter()
    assert not any(kind in ("unsorted", "cigar-length", "md") for _, kind in after)


def test_cis_spikes_share_fragments(tiny):
    after = _records(tiny["out"])
    both = [r for r in after if r.reference_start < 9998 and r.reference_end > 10064]
    snv_alt = tiny["rows"][8][3]
    has_snv = [r.query_sequence[[q for q, p in r.get_aligned_pairs() if p == 9999][0]] == snv_alt
               if 9999 in r.get_reference_positions() else False for r in both]
    has_del = [any(op == 2 for op, _ in r.cigartuples) for r in both]
    carriers = [a or b for a, b in zip(has_snv, has_del, strict=True)]
    agree = sum(a == b for a, b, c in zip(has_snv, has_del, carriers, strict=True) if c)
    assert sum(carriers) >= 5 and agree / sum(carriers) >= 0.8


def test_same_seed_same_bytes_and_other_seed_other_reads(tiny, tmp_path):
    again = tmp_path / "again.bam"
    spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=tiny["vcf"], out=again, seed=7)
    assert again.read_bytes() == tiny["out"].read_bytes()
    other = tmp_path / "other.bam"
    spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=tiny["vcf"], out=other, seed=8)
    assert other.read_bytes() != tiny["out"].read_bytes()


def _blocks(path: Path) -> list[bytes]:
    data, out, off = path.read_bytes(), [], 0
    while off < len(data):
        (bsize,) = struct.unpack_from("<H", data, off + 16)
        out.append(data[off : off + bsize + 1])
        off += bsize + 1
    return out


def test_one_spike_rewrites_only_its_blocks(tmp_path):
    fa = pysam.FastaFile(str(CHR20_FA))
    ref, alt = make_variant(fa, "chr20", 10_000_500, "snv")
    vcf = write_vcf(tmp_path / "v.vcf", {"chr20": 63025520},
                    [("chr20", 10_000_500, ref, alt, "VAF=0.5", None)])
    out = tmp_path / "o.bam"
    res = spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=out, seed=1)
    b_in, b_out = _blocks(CHR20_BAM), _blocks(out)
    kept = set(b_in) & set(b_out)
    assert len(b_in) - len(kept) <= 3  # header block + the block(s) holding the site
    assert res.bytes_recompressed < len(gzip.decompress(CHR20_BAM.read_bytes()))


def test_chr20_phased_indels_keep_mates_consistent(tmp_path):
    # HP tags on a copy: the ALT must go to haplotype 2 (GT 0|1), whole fragments
    tagged = tmp_path / "hp.bam"
    with pysam.AlignmentFile(str(CHR20_BAM)) as src, pysam.AlignmentFile(
        str(tagged), "wb", template=src
    ) as dst:
        for r in src:
            r.set_tag("HP", 1 + sum(map(ord, r.query_name)) % 2, value_type="i")
            dst.write(r)
    pysam.index(str(tagged))
    fa = pysam.FastaFile(str(CHR20_FA))
    with pysam.VariantFile(str(RESOURCES["grch37-chr20-demo.giab-na12878"].local_path())) as g:
        giab = [r.pos for r in g.fetch("chr20", 9_999_900, 10_002_000)]
    rows = []
    for pos, kind in [(10_000_330, "del2"), (10_000_880, "ins3"), (10_001_150, "snv")]:
        assert all(abs(pos - p) > 100 for p in giab)
        ref, alt = make_variant(fa, "chr20", pos, kind)
        rows.append(("chr20", pos, ref, alt, None, "0|1"))
    vcf = write_vcf(tmp_path / "v.vcf", {"chr20": 63025520}, rows)
    out = tmp_path / "o.bam"
    res = spike_bam(bam=tagged, reference=CHR20_FA, variants=vcf, out=out, seed=3,
                    truth_out=tmp_path / "t.vcf")
    assert validate_bam(bam=out, reference=CHR20_FA) == []
    before = {r.to_string() for r in _records(tagged)}
    changed = [r for r in _records(out) if r.to_string() not in before]
    edited = [r for r in changed if r.get_tag("NM") != 0 or r.cigarstring != f"{r.query_length}M"]
    for v in res.variants:
        assert v.haplotype == 2
        hp2 = [r for r in edited if r.reference_start < v.pos and r.reference_end > v.pos + 3]
        assert hp2 and sum(r.get_tag("HP") == 2 for r in hp2) >= 0.9 * len(hp2)
    # a reverse read carrying the deletion moved its start; its mate's PNEXT/TLEN followed
    assert any(r.template_length != 0 for r in changed)


@pytest.mark.parametrize(
    "row, message",
    [
        (("q", 3, "A", "C", "VAF=0.5", None), "no read covers"),
        (("q", 600, "A", "C", "VAF=0.01", None), "impossible at depth"),
        (("q", 600, "G", "C", "VAF=0.5", None), "REF does not match"),
        (("q", 600, "A", "A[q:900[", "VAF=0.5", None), "breakend"),
        (("q", 600, "A", "C", None, "0/0"), "no ALT"),
    ],
)
def test_refusals_name_the_variant(tmp_path, row, message):
    if row[1] == 3:
        row = ("q", 3, pysam.FastaFile(str(TINY_FA)).fetch("q", 2, 3).upper(), *row[3:])
        row = (*row[:3], "C" if row[2] != "C" else "G", *row[4:])
    vcf = write_vcf(tmp_path / "v.vcf", {"q": 12356}, [row])
    with pytest.raises(VariantError, match=message) as exc:
        spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=vcf, out=tmp_path / "o.bam")
    assert f"q:{row[1]} {row[2]}>{row[3]}" in str(exc.value)
    assert not (tmp_path / "o.bam").exists()


def test_overlapping_spikes_are_refused(tmp_path):
    fa = pysam.FastaFile(str(TINY_FA))
    r1, a1 = make_variant(fa, "q", 600, "del3")
    r2, a2 = make_variant(fa, "q", 602, "snv")
    vcf = write_vcf(tmp_path / "v.vcf", {"q": 12356},
                    [("q", 600, r1, a1, "VAF=0.5", None), ("q", 602, r2, a2, "VAF=0.5", None)])
    with pytest.raises(VariantError, match=r"q:602 .*overlaps"):
        spike_bam(bam=TINY_BAM, reference=TINY_FA, variants=vcf, out=tmp_path / "o.bam")


def test_bam_on_another_reference_is_refused(tmp_path):
    fa = pysam.FastaFile(str(TINY_FA))
    seq = fa.fetch("q")
    vcf = write_vcf(tmp_path / "v.vcf", {"q": 12356},
                    [("q", 600, seq[599], "C" if seq[599] != "C" else "G", "VAF=0.5", None)])
    # other contig names entirely
    with pytest.raises(ReferenceDataError):
        spike_bam(bam=TINY_BAM, reference=CHR20_FA, variants=vcf, out=tmp_path / "o.bam")
    # same name, other length
    short = tmp_path / "short.fa"
    short.write_text(f">q\n{seq[:12000]}\n")
    with pytest.raises(ReferenceDataError, match="contig lengths differ"):
        spike_bam(bam=TINY_BAM, reference=short, variants=vcf, out=tmp_path / "o.bam")
    # same name and length, other sequence: caught by the header's M5
    other = tmp_path / "other.fa"
    other.write_text(f">q\n{seq[:100]}{'A' if seq[100] != 'A' else 'C'}{seq[101:]}\n")
    with pytest.raises(ReferenceDataError, match="M5"):
        spike_bam(bam=TINY_BAM, reference=other, variants=vcf, out=tmp_path / "o.bam")

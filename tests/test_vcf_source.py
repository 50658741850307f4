"""Spikes from a VCF (variants.vcf): record kinds, errors naming file:line/field, round trip."""

from __future__ import annotations

from pathlib import Path

import pysam
import pysam.bcftools
import pytest
from _svdata import base_spec, generate
from _variant_checks import FASTA, truth_rows

from synthlib.errors import VariantError
from synthlib.plan import plan_dataset
from synthlib.reference import Reference
from synthlib.spec import parse_spec
from synthlib.variants.vcf_source import parse_breakend, read_vcf_records, vcf_variants

REF = Reference(FASTA)
HEADER = """##fileformat=VCFv4.3
##contig=<ID=chr20,length=63025520>
##INFO=<ID=END,Number=1,Type=Integer,Description="e">
##INFO=<ID=SVTYPE,Number=1,Type=String,Description="t">
##INFO=<ID=SVLEN,Number=1,Type=Integer,Description="l">
##INFO=<ID=CN,Number=1,Type=Integer,Description="c">
##INFO=<ID=SVINSSEQ,Number=1,Type=String,Description="s">
##INFO=<ID=VAF,Number=1,Type=Float,Description="v">
##INFO=<ID=MATEID,Number=1,Type=String,Description="m">
##FORMAT=<ID=GT,Number=1,Type=String,Description="g">
##FORMAT=<ID=CN,Number=1,Type=Integer,Description="c">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def _b(pos: int, n: int = 1) -> str:
    """Reference bases at 1-based ``pos``."""
    return REF.fetch("chr20", pos - 1, pos - 1 + n).decode()


def _vcf(tmp_path: Path, rows: list[str], *, name="in.vcf", header=HEADER) -> Path:
    p = tmp_path / name
    p.write_text(header + "".join(r + "\n" for r in rows))
    return p


def _spec(**over):
    return parse_spec(base_spec("vcf-src", **over))


def _alt(base: str) -> str:
    return "C" if base != "C" else "T"


def _row(pos, ref, alt, info=".", gt="0|1", vid=".", fmt="GT"):
    return f"chr20\t{pos}\t{vid}\t{ref}\t{alt}\t.\tPASS\t{info}\t{fmt}\t{gt}"


def test_small_and_symbolic_records(tmp_path):
    p = 1_020_001
    rows = [
        _row(p, _b(p), _alt(_b(p)), gt="0/1", vid="snv_unphased"),
        _row(p + 100, _b(p + 100, 3), "".join(_alt(c) for c in _b(p + 100, 3)), gt="1|1"),
        _row(p + 200, _b(p + 200, 40), _b(p + 200), gt="1|0", vid="del39"),
        _row(p + 300, _b(p + 300), _b(p + 300) + "ACGTTGCA" * 10, gt="1/1", vid="ins80"),
        _row(p + 400, _b(p + 400), ",".join([c for c in "ACGT" if c != _b(p + 400)][:2]),
             gt="1/2"),
        _row(p + 1000, _b(p + 1000), "<DEL>", "SVTYPE=DEL;END=1022000", gt="0|1", vid="del"),
        _row(p + 3000, _b(p + 3000), "<DUP:TANDEM>", "END=1024500", gt="1|1", vid="dup"),
        _row(p + 5000, _b(p + 5000), "<INV>", "SVLEN=1000", gt="1|0", vid="inv"),
        _row(p + 7000, _b(p + 7000), "<INS>", "SVINSSEQ=ACGTACGTAAACCCGGGTTT", vid="ins_seq"),
        _row(p + 8000, _b(p + 8000), "<INS>", "SVLEN=150", vid="ins_rand"),
        _row(p + 9000, _b(p + 9000), "<CNV>", "END=1032000", gt="./.:4", fmt="GT:CN",
             vid="cnv4"),
        _row(p + 12000, _b(p + 12000), "<CNV>", "END=1034000;CN=0", gt=".", vid="cnv0"),
        _row(p + 15000, _b(p + 15000), _alt(_b(p + 15000)), gt="0/0", vid="homref"),
    ]
    spec = _spec(chunk_size=100_000)
    vs = vcf_variants(path=_vcf(tmp_path, rows), spec=spec, reference=REF)
    by = {v.vid: v for v in vs}
    assert by["snv_unphased"].gt == (0, 1) and by["snv_unphased"].svtype is None
    assert "homref" not in by
    assert by["del39"].gt == (1, 0) and len(by["del39"].ref) == 40
    assert len(by["ins80"].alt) == 81 and by["ins80"].svtype is None
    multi = [v for v in vs if v.pos == p + 399]
    assert sorted(v.gt for v in multi) == [(0, 1), (1, 0)]
    # Deletions are left-aligned like any indel: same size, maybe a few bases left.
    d = by["del"]
    assert d.svtype == "DEL" and d.svend - d.pos == 1_022_000 - (p + 1000) + 1 and d.pos < p + 1000
    assert (by["dup"].svtype, by["dup"].gt) == ("DUP", (1, 1))
    assert (by["inv"].svtype, by["inv"].svend) == ("INV", p + 5000 + 1000)
    assert by["ins_seq"].svtype == "INS" and by["ins_seq"].alt.endswith("AAACCCGGGTTT")
    assert len(by["ins_rand"].alt) == 151
    assert (by["cnv4"].cn, by["cnv4"].gt) == (4, (1, 1))
    assert (by["cnv0"].cn, by["cnv0"].gt) == (0, (1, 1))
    # The random <INS> sequence comes from the spec seed and the record's line: repeatable.
    again = vcf_variants(path=_vcf(tmp_path, rows, name="again.vcf"), spec=spec, reference=REF)
    assert again == vs


def test_no_sample_column_is_het_and_bgzip_bcf_read(tmp_path):
    p = 1_050_001
    header = HEADER.replace("\tFORMAT\tS1", "")
    rows = [f"chr20\t{p}\tx\t{_b(p)}\t{_alt(_b(p))}\t.\tPASS\t."]
    plain = _vcf(tmp_path, rows, header=header)
    gz = tmp_path / "in.vcf.gz"
    pysam.tabix_compress(str(plain), str(gz))
    bcf = tmp_path / "in.bcf"
    pysam.bcftools.view("-Ob", "-o", str(bcf), str(plain), catch_stdout=False)
    out = [vcf_variants(path=f, spec=_spec(), reference=REF) for f in (plain, gz, bcf)]
    assert out[0] == out[1] == out[2] and out[0][0].gt == (0, 1)


def test_vaf_only_for_somatic_specs(tmp_path):
    p = 1_060_001
    rows = [_row(p, _b(p), _alt(_b(p)), "VAF=0.2", vid="som"), _row(p + 50, _b(p + 50), "G"
                                                                     if _b(p + 50) != "G" else "A")]
    path = _vcf(tmp_path, rows)
    tumor = vcf_variants(path=path, spec=_spec(somatic={"purity": 0.8}), reference=REF)
    assert [v.vaf for v in tumor] == [0.2, None] and tumor[0].source == "somatic"
    normal = vcf_variants(path=path, spec=_spec(), reference=REF)
    assert [v.pos for v in normal] == [p + 49]  # the tumor's somatic record is not in a normal


@pytest.mark.parametrize("row,field,words", [
    (lambda p: _row(p, "A" if _b(p) != "A" else "C", "G"), "REF", "does not match"),
    (lambda p: "chr20\t63025520\t.\tNA\tN\t.\t.\t.\tGT\t0|1", "POS", "past the end"),
    (lambda p: _row(500_000, "N", "A"), "REF", "N (unknown)"),
    (lambda p: f"chrQ\t{p}\t.\tA\tG\t.\t.\t.\tGT\t0|1", "CHROM", "not in the reference"),
    (lambda p: _row(p, _b(p), "<DEL>", "END=abc"), "END", "malformed END"),
    (lambda p: _row(p, _b(p), "<DEL>", f"END={p - 5}"), "END", "greater than POS"),
    (lambda p: _row(p, _b(p), "<CNV>", f"END={p + 500}"), "CN", "copy number"),
    (lambda p: _row(p, _b(p), "<FOO>", f"END={p + 500}"), "ALT", "not supported"),
    (lambda p: _row(p, _b(p), _alt(_b(p)), gt="1"), "", "haploid genotype"),
    (lambda p: _row(p, _b(p), _alt(_b(p)), gt="0|3"), "GT", "does not fit"),
])
def test_bad_record_names_file_line_field(tmp_path, row, field, words):
    p = 1_070_001
    ok = _row(p - 5000, _b(p - 5000), _alt(_b(p - 5000)))
    path = _vcf(tmp_path, [ok, row(p)])
    with pytest.raises(VariantError) as exc:
        vcf_variants(path=path, spec=_spec(), reference=REF)
    line = HEADER.count("\n") + 2
    assert f"{path}:{line}" in str(exc.value) and f"/{field}" in str(exc.value) and \
        words in str(exc.value), str(exc.value)


def test_two_variants_on_one_haplotype_base(tmp_path):
    p = 1_080_001
    rows = [_row(p, _b(p, 5), _b(p), gt="0|1", vid="del4"),
            _row(p + 2, _b(p + 2), _alt(_b(p + 2)), gt="1|0", vid="other_hap"),
            _row(p + 3, _b(p + 3), _alt(_b(p + 3)), gt="0|1", vid="clash")]
    path = _vcf(tmp_path, rows[:2])
    assert len(vcf_variants(path=path, spec=_spec(), reference=REF)) == 2  # other haplotype: ok
    path = _vcf(tmp_path, rows, name="clash.vcf")
    with pytest.raises(VariantError, match="two variants on one base of haplotype 1") as exc:
        vcf_variants(path=path, spec=_spec(), reference=REF)
    assert f"{path}:{HEADER.count(chr(10)) + 3}" in str(exc.value)


def test_breakends_parse_pair_into_translocation_or_raise(tmp_path):
    p, q = 1_090_001, 1_150_001
    # One junction chr20[:p] + chr20[q-1:] and the far end of it: no reciprocal junction.
    rows = [_row(p, _b(p), f"{_b(p)}[chr20:{q}[", "SVTYPE=BND;MATEID=b2", vid="b1"),
            _row(q, _b(q), f"]chr20:{p}]{_b(q)}", "SVTYPE=BND;MATEID=b1", vid="b2")]
    path = _vcf(tmp_path, rows)
    recs = list(read_vcf_records(path))
    b = parse_breakend(recs[0], recs[0].alts[0], (0, 1))
    assert (b.mate_chrom, b.mate_pos, b.keeps_left, b.mate_keeps_left, b.mate_id) == (
        "chr20", q - 1, True, False, "b2")
    b2 = parse_breakend(recs[1], recs[1].alts[0], (0, 1))
    assert (b2.keeps_left, b2.mate_keeps_left) == (False, True)
    with pytest.raises(VariantError, match="reciprocal junction") as exc:
        vcf_variants(path=path, spec=_spec(), reference=REF)
    assert f"{path}:{HEADER.count(chr(10)) + 1}/ALT" in str(exc.value)
    # With the reciprocal junction chr20[:q-1] + chr20[p:] it is a balanced translocation.
    rows.append(_row(q - 1, _b(q - 1), f"{_b(q - 1)}[chr20:{p + 1}[", "SVTYPE=BND", vid="b3"))
    tra = vcf_variants(path=_vcf(tmp_path, rows, name="tra.vcf"), spec=_spec(), reference=REF)
    assert [(v.svtype, v.pos) for v in tra] == [("TRA", p - 1), ("TRA", q - 2)]
    # An inversion-type join is not a translocation: named, not dropped.
    bad = [_row(p, _b(p), f"{_b(p)}]chr20:{q}]", "SVTYPE=BND", vid="inv_join")]
    with pytest.raises(VariantError, match="inv_join.*not part of a balanced"):
        vcf_variants(path=_vcf(tmp_path, bad, name="bad.vcf"), spec=_spec(), reference=REF)


def test_spec_field_and_overlap_with_explicit(tmp_path):
    p = 1_100_001
    _vcf(tmp_path, [_row(p, _b(p), _alt(_b(p)), vid="from_vcf")])
    spec = base_spec("vcf-field", variants={"vcf": "in.vcf"})
    plan = plan_dataset(parse_spec(spec), base_dir=tmp_path)
    assert [v.vid for v in plan.spikes] == ["from_vcf"]
    spec["variants"]["explicit"] = [{"chrom": "chr20", "pos": p, "ref": _b(p),
                                     "alt": [c for c in "ACGT" if c != _b(p)][-1]}]
    with pytest.raises(VariantError, match="overlaps explicit"):
        plan_dataset(parse_spec(spec), base_dir=tmp_path)


def test_truth_round_trip(tmp_path):
    # A run's truth (germline background, small spikes, every SV kind) fed back as
    # variants.vcf with no germline yields the same records.
    first = base_spec(
        "rt-first", coverage=0.5, germline={"source": "population", "population": "EUR"},
        outputs={"bam": False, "fastq": False},
        variants={"random": [{"type": "snv", "count": 20, "genotype": "mixed"},
                             {"type": "mnv", "count": 5, "min_size": 2, "max_size": 4},
                             {"type": "insertion", "count": 5, "max_size": 30},
                             {"type": "deletion", "count": 5, "max_size": 30}],
                  "structural": {"random": [
                      {"type": t, "count": 1, "min_size": 100, "max_size": 3000}
                      for t in ("deletion", "duplication", "inversion", "insertion")] + [
                      {"type": "cnv", "count": 2, "min_size": 500, "max_size": 5000},
                      {"type": "translocation", "count": 1}]}})
    ds1 = generate(first, tmp_path / "a")
    rows1 = truth_rows(ds1 / "truth.vcf.gz")
    assert len(rows1) > 100
    assert {r[5] for r in rows1} >= {"DEL", "DUP", "INV", "INS", "CNV", "BND"}
    second = base_spec("rt-second", seed=99, coverage=0.5, outputs={"bam": False, "fastq": False},
                       variants={"vcf": str(ds1 / "truth.vcf.gz")})
    ds2 = generate(second, tmp_path / "b")
    assert truth_rows(ds2 / "truth.vcf.gz") == rows1


def test_tumor_truth_round_trip_keeps_vaf(tmp_path):
    # Somatic records (INFO/VAF) come back somatic at the same target VAF in a tumor spec,
    # and are left out of a spec without 'somatic' (the matched normal).
    region = {"name": "grch37-chr20-demo", "regions": ["chr20:1,300,001-1,330,000"]}
    tumor = base_spec(
        "rt-tumor", coverage=2, reference=region, chunk_size=10_000, somatic={"purity": 0.7},
        germline={"source": "population", "population": "EUR"},
        outputs={"bam": False, "fastq": False},
        variants={"random": [{"type": "snv", "count": 8, "vaf": 0.1},
                             {"type": "deletion", "count": 3, "vaf": 0.3},
                             {"type": "snv", "count": 4}]})
    ds1 = generate(tumor, tmp_path / "a")

    def rows(ds):
        with pysam.VariantFile(str(ds / "truth.vcf.gz")) as f:
            return [(*row, r.info.get("VAF")) for row, r in zip(truth_rows(ds / "truth.vcf.gz"),
                                                                 f, strict=True)]

    rows1 = rows(ds1)
    assert sum(r[-1] is not None for r in rows1) >= 10
    again = {**tumor, "id": "rt-tumor2", "germline": {"source": "none"},
             "variants": {"vcf": str(ds1 / "truth.vcf.gz")}}
    assert rows(generate(again, tmp_path / "b")) == rows1
    normal = {**again, "id": "rt-normal", "somatic": None}
    assert rows(generate(normal, tmp_path / "c")) == [r for r in rows1 if r[-1] is None]


def test_small_variants_inside_svs_follow_the_riding_rule(tmp_path):
    p = 1_120_001
    sv = _row(p, _b(p), "<DEL>", f"SVTYPE=DEL;END={p + 2000}", gt="0|1", vid="del")
    inside = p + 1000

    def snv(pos, gt, vid):
        return _row(pos, _b(pos), _alt(_b(pos)), gt=gt, vid=vid)

    # On the haplotype keeping its copy: fine (a truth VCF's germline sits there).
    ok = vcf_variants(path=_vcf(tmp_path, [sv, snv(inside, "1|0", "kept")]), spec=_spec(),
                      reference=REF)
    assert {v.vid for v in ok} == {"del", "kept"}
    # On the deleted haplotype, or on an SV's anchor base (an inversion: never left-aligned).
    inv = _row(p, _b(p), "<INV>", f"SVTYPE=INV;END={p + 2000}", gt="0|1", vid="inv")
    for name, rows in (("gone", [sv, snv(inside, "0|1", "gone")]),
                       ("anchor", [inv, snv(p, "1|0", "anchor")])):
        path = _vcf(tmp_path, rows, name=f"{name}.vcf")
        with pytest.raises(VariantError, match="overlaps the structural variant") as exc:
            vcf_variants(path=path, spec=_spec(), reference=REF)
        assert f"{path}:{HEADER.count(chr(10)) + 2}" in str(exc.value)

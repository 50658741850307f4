"""SV/CNV recovery from read evidence in the re-aligned BAM (split reads, pairs, clips, depth)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from _qcdata import copy_dataset, rewrite_truth
from _svdata import base_spec, generate

from synthlib.intervals import merge, subtract, total
from synthlib.qc.run import run_qc
from synthlib.qc.sv_evidence import TruthSV, breakpoint_windows

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
#: Evidence each SV must show (INS of novel sequence: clipped reads only).
NEEDS = {"del_hom": {"split", "pairs", "depth"}, "dup_het": {"split", "pairs", "depth"},
         "inv_hom": {"split", "pairs"}, "ins_het": {"clips"},
         "cnv4": {"split", "pairs", "depth"}, "cnv1": {"split", "pairs", "depth"}}


@pytest.fixture(scope="module")
def sv_qc(tmp_path_factory):
    ds = generate(base_spec("sv-qc", variants={"structural": {"explicit": SVS}}),
                  tmp_path_factory.mktemp("svqc"))
    return ds, run_qc(dataset_dir=ds)


def test_every_sv_recovered_with_its_evidence(sv_qc):
    ds, res = sv_qc
    sv = res.metrics["sv"]
    rows = {r["vid"]: r for r in sv["svs"]}
    assert set(rows) == set(NEEDS)
    for vid, need in NEEDS.items():
        r = rows[vid]
        assert r["found"], r
        assert need <= set(r["found_by"]), (vid, r["found_by"])
    # Copy number from depth: CN/2 within the Poisson tolerance, and the caller's estimate.
    for vid, cn in (("del_hom", 0), ("dup_het", 3), ("cnv4", 4), ("cnv1", 1)):
        d = rows[vid]["depth"]
        assert d["expected"] == cn / 2 and d["consistent"], (vid, d)
        assert rows[vid]["cn_estimate"] == cn
    s = sv["summary"]
    assert s["recall"] == 1.0 and s["unmatched_calls"] == 0
    assert set(s["by_type"]) == {"DEL", "DUP", "INV", "INS", "CNV_gain", "CNV_loss"}
    by = {c.name: c for c in res.checks}
    assert by["sv_recall"].status == "pass" and res.verdict == "pass"
    # The QC BAM carries supplementary alignments with SA tags (split reads).
    import pysam
    with pysam.AlignmentFile(str(ds / "qc/qc.bam")) as fh:
        supp = [r for r in fh.fetch("chr20", 1009000, 1013000) if r.is_supplementary]
    assert supp and all(r.has_tag("SA") for r in supp)
    html = (ds / "qc/report.html").read_text()
    assert "SV recovery" in html and "sv_recall_by_type" in html
    mqc = json.loads((ds / "qc/synthlib_sv_mqc.json").read_text())
    assert len(mqc["data"]) == 6


def test_truth_sv_never_simulated_fails_recall(sv_qc, tmp_path):
    ds, _ = sv_qc
    bad = copy_dataset(ds, tmp_path / "bad")

    def add(lines):
        extra = ("chr20\t1150000\tghost_del\tA\t<DEL>\t.\tPASS\tSRC=spike;VT=SV;SVTYPE=DEL;"
                 "END=1153000;SVLEN=-3000\tGT\t0|1\n")
        ref = __import__("pysam").FastaFile(
            str(__import__("_svdata").FASTA)).fetch("chr20", 1149999, 1150000).upper()
        extra = extra.replace("\tA\t", f"\t{ref}\t")
        return sorted(lines + [extra], key=lambda x: int(x.split("\t")[1]))

    rewrite_truth(bad, add)
    res = run_qc(dataset_dir=bad)
    rows = {r["vid"]: r for r in res.metrics["sv"]["svs"]}
    ghost = rows["ghost_del"]
    assert not ghost["found"] and ghost["split"] == 0 and ghost["pairs"] == 0
    assert ghost["depth"]["informative"] and not ghost["depth"]["consistent"]
    assert res.metrics["sv"]["summary"]["recall"] == pytest.approx(6 / 7)
    by = {c.name: c for c in res.checks}
    assert by["sv_recall"].status == "fail" and res.verdict == "fail"


def test_subtract_removes_exactly_the_other_bases():
    rng = np.random.default_rng(2)
    for _ in range(50):
        a = merge(np.sort(rng.integers(0, 1000, (8, 2)), axis=1))
        b = merge(np.sort(rng.integers(0, 1000, (6, 2)), axis=1))
        mask = np.zeros(1000, bool)
        for s, e in a:
            mask[s:e] = True
        for s, e in b:
            mask[s:e] = False
        got = np.zeros(1000, bool)
        for s, e in subtract(a, b):
            assert e > s
            got[s:e] = True
        assert np.array_equal(got, mask)


def test_breakpoint_windows_cover_every_junction():
    svs = [TruthSV("d", "DEL", "chr1", 1000, 2000, 1000, (0, 1)),
           TruthSV("b", "BND", "chr1", 5000, 700, 0, (0, 1), chrom2="chr2"),
           TruthSV("c", "CPX", "chr1", 10000, 11800, 1800, (1, 1), cpx_type="delINV",
                   cpx_intervals=("DEL_chr1:10001-10300", "INV_chr1:10301-11800"))]
    win = breakpoint_windows(svs, pad=150)
    assert win["chr2"].tolist() == [[550, 850]]
    points = [1000, 2000, 5000] + [p for j in svs[2].layout.junctions for p in (j.pos1, j.pos2)]
    for p in points:
        assert any(s <= p - 150 and p + 150 <= e for s, e in win["chr1"]), p
    assert total(win["chr1"]) < 150 * 2 * len(points) + 1

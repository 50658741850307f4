"""QC recovers complex SVs (<CPX>) from the re-aligned reads, junction by junction and piece by
piece; a <CPX> truth record that was never simulated (or of the wrong class) is not found."""

from __future__ import annotations

import pysam
import pytest
from _qcdata import CPX_EVENTS, copy_dataset, cpx_spec, rewrite_truth
from _svdata import FASTA, generate

from synthlib.errors import QCError
from synthlib.qc.run import run_qc
from synthlib.qc.svmatch import cpx_layout


def _adjacencies(sub: str, s: int, z: list[int]) -> set[tuple[int, int]]:
    """0-based (last base before, first base after) of each junction, by hand from the
    subtype definitions (same as tests/test_complex_sv.py)."""
    e = s + sum(z)
    table = {
        "delINV": [(s - 1, e - 1), (s + z[0], e)],
        "INVdel": [(s - 1, s + z[0] - 1), (s, e)],
        "delINVdel": [(s - 1, s + z[0] + z[1] - 1), (s + z[0], e)],
        "dupINV": [(s + z[0] - 1, e - 1), (s, e)],
        "INVdup": [(s - 1, e - 1), (s, e - z[1])],
        "dDUP": [(e - 1, s), (s + z[0] - 1, e)],
        "dDUP_INV": [(e - 1, s + z[0] - 1), (s, e)],
        "delINS": [(s - 1, s + z[0])],
    }
    return {tuple(sorted(x)) for x in table[sub]}


def _intervals(sub: str, s: int, z: list[int]) -> list[str]:
    c = "chr20"
    e = s + sum(z)
    if sub == "delINV":
        return [f"DEL_{c}:{s + 1}-{s + z[0]}", f"INV_{c}:{s + z[0] + 1}-{e}"]
    if sub == "dDUP":
        return [f"DUP_{c}:{s + 1}-{s + z[0]}", f"INS_{c}:{e}-{e}"]
    raise AssertionError(sub)


# Pure layout check for the classes whose intervals are written out above; every class is
# checked against the definitions on simulated data below.
_WRITTEN = [e for e in CPX_EVENTS if e[0] in ("delINV", "dDUP")]


@pytest.mark.parametrize("sub,p,z,gt", _WRITTEN, ids=[e[0] for e in _WRITTEN])
def test_layout_junctions_match_the_definitions(sub, p, z, gt):
    s = p - 1
    lay = cpx_layout(subtype=sub, chrom="chr20", intervals=_intervals(sub, s, z))
    # A breakend's "last base before" is pos - 1 on a right end, pos on a left end.
    got = {tuple(sorted((j.pos1 - (j.side1 == "R"), j.pos2 - (j.side2 == "R"))))
           for j in lay.junctions}
    assert got == _adjacencies(sub, s, z)
    kinds = {(x.kind, x.start, x.end, x.copies) for x in lay.pieces}
    assert kinds == ({("DEL", s, s + z[0], 0)} if sub == "delINV"
                     else {("DUP", s, s + z[0], 2)})


def test_layout_rejects_inconsistent_intervals():
    with pytest.raises(QCError, match="expected"):
        cpx_layout(subtype="delINV", chrom="chr20", intervals=["INV_chr20:10-20"])
    with pytest.raises(QCError, match="unknown CPX_TYPE"):
        cpx_layout(subtype="foo", chrom="chr20", intervals=["INV_chr20:10-20"])
    with pytest.raises(QCError, match="bad CPX_INTERVALS"):
        cpx_layout(subtype="delINV", chrom="chr20", intervals=["DEL:10-20"])


@pytest.fixture(scope="module")
def cpx_qc(tmp_path_factory):
    ds = generate(cpx_spec(), tmp_path_factory.mktemp("cpxqc"))
    return ds, run_qc(dataset_dir=ds)


def test_every_complex_subtype_found_with_its_evidence(cpx_qc):
    ds, res = cpx_qc
    sv = res.metrics["sv"]
    rows = {r["vid"]: r for r in sv["svs"]}
    assert set(rows) == {e[0] for e in CPX_EVENTS}
    for sub, p, z, gt in CPX_EVENTS:
        r = rows[sub]
        assert r["type"] == "CPX" and r["cpx_type"] == sub
        assert r["found"], r
        # Every junction of the definition is reported, and supported by reads.
        got = {tuple(sorted((j["pos1"] - (j["side1"] == "R"), j["pos2"] - (j["side2"] == "R"))))
               for j in r["junctions"]}
        assert got == _adjacencies(sub, p - 1, z), sub
        assert all(j["supported"] for j in r["junctions"]), r["junctions"]
        if sub != "delINS":  # 40 novel bases: reads are mostly clipped, not split
            assert all(j["split"] >= 2 for j in r["junctions"]), (sub, r["junctions"])
            assert all(j["pairs"] >= 3 for j in r["junctions"]), (sub, r["junctions"])
        else:
            assert {"pairs", "clips"} & set(r["found_by"]), r
        # Depth over deleted / duplicated pieces matches copy number (Poisson tolerance).
        for piece in r["pieces"]:
            alleles = 2 if gt == "hom" else 1
            assert piece["expected"] == pytest.approx((2 - alleles + alleles
                                                       * piece["copies"]) / 2)
            if piece["informative"]:
                assert piece["consistent"], (sub, piece)
    # Large homozygous pieces are informative: the deletion of INVdel and delINS, the
    # duplications of dupINV / INVdup / dDUP.
    for sub in ("INVdel", "delINS", "dupINV", "INVdup", "dDUP"):
        assert "depth" in rows[sub]["found_by"], (sub, rows[sub]["pieces"])
    s = sv["summary"]
    assert s["recall"] == 1.0 and s["unmatched_calls"] == 0
    assert s["by_type"]["CPX"]["recall"] == 1.0
    assert set(s["by_cpx_type"]) == {e[0] for e in CPX_EVENTS}
    by = {c.name: c for c in res.checks}
    assert by["sv_recall"].status == "pass" and res.verdict == "pass"
    assert "SV recovery" in (ds / "qc/report.html").read_text()


def _cpx_line(vid: str, sub: str, s: int, z: list[int], gt: str) -> str:
    """A <CPX> truth line (anchor base from the reference) for an event at 0-based ``s``."""
    anchor = pysam.FastaFile(str(FASTA)).fetch("chr20", s - 1, s).upper()
    e = s + sum(z)
    return (f"chr20\t{s}\t{vid}\t{anchor}\t<CPX>\t.\tPASS\tSRC=spike;VT=SV;SVTYPE=CPX;"
            f"CPX_TYPE={sub};CPX_INTERVALS={','.join(_intervals(sub, s, z))};END={e};"
            f"SVLEN={e - s}\tGT\t{gt}\n")


def test_unsimulated_or_misclassified_complex_event_not_found(cpx_qc, tmp_path):
    ds, _ = cpx_qc
    bad = copy_dataset(ds, tmp_path / "bad")
    d_s, d_z = 1_110_000, [2000, 1500]  # never simulated: flat, unbroken reads there

    def edit(lines):
        out = []
        for x in lines:
            if "\tdDUP\t" in x:  # a real dDUP relabelled as a delINV over the same bases
                f = x.split("\t")
                s = int(f[1])
                x = _cpx_line("dDUP_as_delINV", "delINV", s, [1000, 2500], "1|1")
            out.append(x)
        out.append(_cpx_line("ghost_delINV", "delINV", d_s, d_z, "1|1"))
        return sorted(out, key=lambda x: int(x.split("\t")[1]))

    rewrite_truth(bad, edit)
    res = run_qc(dataset_dir=bad)
    rows = {r["vid"]: r for r in res.metrics["sv"]["svs"]}
    ghost = rows["ghost_delINV"]
    assert not ghost["found"] and ghost["junctions_supported"] == 0
    assert all(j["split"] == 0 and j["pairs"] == 0 for j in ghost["junctions"])
    (piece,) = ghost["pieces"]  # 2 kb homozygous deletion: depth says it is not there
    assert piece["informative"] and not piece["consistent"]
    wrong = rows["dDUP_as_delINV"]
    assert not wrong["found"], wrong
    s = res.metrics["sv"]["summary"]
    assert s["n"] == len(CPX_EVENTS) + 1 and s["found"] == len(CPX_EVENTS) - 1
    assert s["by_cpx_type"]["delINV"] == {"n": 3, "found": 1, "recall": pytest.approx(1 / 3)}
    by = {c.name: c for c in res.checks}
    assert by["sv_recall"].status == "fail" and res.verdict == "fail"

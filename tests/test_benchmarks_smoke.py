"""The benchmark harness end to end on a tiny reference: no peers, no flow, real generation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_complete_results(tmp_path):
    out = tmp_path / "results"
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--quick", "--peers", "none", "--no-flow",
         "--ref-limit", "40000", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "160"})
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((out / "results.json").read_text())
    md = (out / "results.md").read_text()

    assert res["format"] == "synthlib.bench/1"
    assert "--peers none" in res["command"]
    assert res["machine"]["nproc"] >= 1 and res["machine"]["cpu_model"] is not None
    w = res["workload"]
    assert w["reference_bases"] == 80_000  # two real slices cut to 40 kb each
    assert w["pairs"] == round(10 * 80_000 / 300)

    rows = {t["name"]: t for t in res["tools"]}
    assert set(rows) == {"ours_fastq_only", "ours_fastq_bam_vcf", "bgzf_ceiling"}
    for name in ("ours_fastq_only", "ours_fastq_bam_vcf"):
        row = rows[name]
        assert row["status"] == "ok"
        # Each unit rounds its own share of the requested pairs: off by at most one per unit.
        assert abs(row["pairs"] - w["pairs"]) <= res["ours"][name[5:]]["units"]
        for key in ("cpu_s", "wall_s", "peak_rss_mb", "pairs_per_cpu_s",
                    "pairs_per_generation_cpu_s"):
            assert row[key] > 0, key
        # The child's own CPU accounting includes the generation it timed from inside.
        assert row["cpu_s"] >= row["generation_cpu_s"]
    files = res["ours"]["fastq_bam_vcf"]["files"]
    assert {"reads_R1.fastq.gz", "golden.bam", "truth.vcf.gz"} <= set(files)
    # The FASTQ target is "with the truth VCF": the FASTQ row writes it too.
    assert set(res["ours"]["fastq_only"]["files"]) == {
        "reads_R1.fastq.gz", "reads_R2.fastq.gz", "truth.vcf.gz", "truth.vcf.gz.tbi"}
    ceiling = res["ours"]["ceiling"]
    assert ceiling["fastq_bytes"] > 2 * w["pairs"] * 2 * 150  # sequence + qualities per mate
    assert 0 < res["ours"]["ceiling_ratio"] <= res["ours"]["ceiling_ratio_generation"]
    assert res["scaling"]["status"] == res["memory"]["status"] == "skipped"
    prof = res["profile"]
    assert prof["status"] == "ok" and len(prof["top_cumulative"]) == 10
    assert prof["top_cumulative"][0]["cumtime_s"] >= prof["top_cumulative"][-1]["cumtime_s"]
    assert (out / "profile.txt").stat().st_size > 0
    assert "| ours: FASTQ |" in md and res["command"] in md
    # No wgsim in this run: the speed targets are said to be unjudged, never passed.
    assert "Speed targets: not judged (wgsim did not run)." in md


def test_speed_targets_are_judged_against_same_run_wgsim():
    from benchmarks.report import _target_lines

    def row(name, rate, gen=None):
        return {"name": name, "status": "ok", "pairs_per_cpu_s": rate,
                "pairs_per_generation_cpu_s": gen}

    results = {"tools": [row("wgsim", 100_000), row("ours_fastq_only", 100_000, 120_000),
                         row("ours_fastq_bam_vcf", 49_999)]}
    fastq, bam = _target_lines(results)
    assert fastq.endswith("vs 1 x wgsim = 100,000: PASS.") and "(120,000 without" in fastq
    assert bam.endswith("vs 0.5 x wgsim = 50,000: FAIL.")
    results["tools"][0]["status"] = "failed"
    assert _target_lines(results) == ["Speed targets: not judged (wgsim did not run)."]


def test_machine_probe_runs_the_kernel_alone_then_as_a_pair():
    from benchmarks.probe import concurrency_probe

    probe = concurrency_probe(rounds=2)
    alone, pair = probe["alone_cpu_s"], probe["together_cpu_s"]
    assert alone > 0 and len(pair) == 2 and min(pair) > 0
    # From the unrounded CPU times: within rounding of the reported ones.
    assert abs(probe["slowdown"] - sum(pair) / 2 / alone) < 0.005


def test_scaling_line_shows_every_round_and_the_machine_probe():
    from benchmarks.report import _summary_lines

    runs = {"1": {"wall_s_runs": [40.0, 41.0]}, "2": {"wall_s_runs": [22.0, 25.0]}}
    sc = {"status": "ok", "reference_bases": 46_709_983, "coverage": 30.0, "units": 47,
          "pairs": 4_670_998, "wall_1_s": 40.0, "wall_2_s": 22.0, "repeats": 2, "runs": runs,
          "ratio": 0.55, "median_ratio": 0.58, "round_ratios": [0.55, 0.61], "target": 0.6,
          "pass": True, "machine_probe": {"slowdown_runs": [1.01, 1.12]}}
    lines = _summary_lines({"tools": [], "scaling": sc})
    line = next(ln for ln in lines if ln.startswith("Flow scaling"))
    assert "ratio 0.55 (target <= 0.6: PASS)" in line
    assert "each round's ratio [0.55, 0.61]" in line and "[1.01, 1.12]x" in line

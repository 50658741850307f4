"""The benchmark's results as a rich table on the terminal, and as JSON + Markdown files."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["tool_rows", "print_report", "write_report"]

_COLUMNS = ("tool", "outputs", "status", "pairs", "CPU s", "wall s", "peak RSS MB",
            "pairs/CPU-s")


def _fmt(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def tool_rows(results: dict) -> list[list[str]]:
    rows = []
    for t in results["tools"]:
        rows.append([t["label"], t["outputs"], t["status"], _fmt(t.get("pairs")),
                     _fmt(t.get("cpu_s"), 2), _fmt(t.get("wall_s"), 2),
                     _fmt(t.get("peak_rss_mb")), _fmt(t.get("pairs_per_cpu_s"), 0)])
    return rows


def _target_lines(results: dict) -> list[str]:
    """The issue's per-core speed targets, judged against wgsim measured in this same run."""
    by_name = {t["name"]: t for t in results["tools"] if t.get("status") == "ok"}
    wgsim = by_name.get("wgsim")
    if not wgsim:
        return ["Speed targets: not judged (wgsim did not run)."]
    ref = wgsim["pairs_per_cpu_s"]
    lines = []
    for name, share, what in (("ours_fastq_only", 1.0, "FASTQ.gz + truth VCF"),
                              ("ours_fastq_bam_vcf", 0.5, "FASTQ.gz + golden BAM + VCF")):
        row = by_name.get(name)
        if not row:
            continue
        got, gen = row["pairs_per_cpu_s"], row.get("pairs_per_generation_cpu_s")
        lines.append(
            f"Speed target, {what}: {got:,.0f} pairs/CPU-s whole process"
            + (f" ({gen:,.0f} without interpreter start-up)" if gen else "")
            + f" vs {share:g} x wgsim = {share * ref:,.0f}: "
            f"{'PASS' if got >= share * ref else 'FAIL'}.")
    return lines


def _summary_lines(results: dict) -> list[str]:
    lines = []
    if results.get("repeats", 1) > 1:
        lines.append(f"Each tool ran {results['repeats']} times in rounds (NEAT once); the table "
                     "shows each tool's run with the least CPU, all runs are in results.json.")
    ours = results.get("ours", {})
    if "ceiling_ratio" in ours:
        lines.append(
            f"Compression ceiling (BGZF of the same FASTQ bytes alone): "
            f"{ours['ceiling']['pairs_per_cpu_s']:,.0f} pairs/CPU-s; FASTQ-only generation "
            f"runs at {ours['ceiling_ratio']:.1%} of it (generation-only CPU: "
            f"{ours['ceiling_ratio_generation']:.1%}).")
    lines.extend(_target_lines(results))
    sc = results.get("scaling")
    if sc and sc.get("status") == "ok":
        lines.append(
            f"Flow scaling ({sc['reference_bases'] / 1e6:.1f} Mbp contig, {sc['coverage']:g}x, "
            f"{sc['units']} units, {sc['pairs']:,} pairs): 1 worker {sc['wall_1_s']:.1f} s, "
            f"2 workers {sc['wall_2_s']:.1f} s"
            + (f" (fastest of {sc['repeats']} alternating runs each: 1 worker "
               f"{sc['runs']['1']['wall_s_runs']}, 2 workers {sc['runs']['2']['wall_s_runs']})"
               if sc.get("repeats", 1) > 1 else "")
            + f", ratio {sc['ratio']:.2f} (target <= "
            f"{sc['target']}: {'PASS' if sc['pass'] else 'FAIL'})"
            + (f"; ratio of the median runs {sc['median_ratio']:.2f}"
               if sc.get("median_ratio") is not None and sc.get("repeats", 1) > 1 else "")
            + (f"; each round's ratio {sc['round_ratios']}" if sc.get("round_ratios") else "")
            + "."
            + (" Machine probe (a fixed CPU kernel with the other core busy vs idle, before "
               f"each round): {sc['machine_probe']['slowdown_runs']}x."
               if sc.get("machine_probe") else "")
            + (f" NOTE: {sc['note']}." if sc.get("machine_busy") else ""))
    elif sc:
        lines.append(f"Flow scaling: {sc.get('status')} {sc.get('reason', '')}".rstrip())
    mem = results.get("memory")
    if mem and mem.get("status") == "ok":
        peaks = ", ".join(f"{v:,.0f}" for v in mem["worker_peak_rss_mb"])
        lines.append(
            f"Memory (2 workers, {mem['coverage']:g}x of a {mem['reference_bases'] / 1e6:.1f} "
            f"Mbp contig): worker peak RSS {peaks}"
            f" MB (limit {mem['limit_mb']:,} MB: {'PASS' if mem['pass'] else 'FAIL'}).")
    prof = results.get("profile")
    if prof and prof.get("top_cumulative"):
        lines.append(f"Profile of run_unit ({prof['unit']}, {prof['pairs']:,} pairs, "
                     f"{prof['seconds']:.2f} s), top by cumulative time:")
        for r in prof["top_cumulative"]:
            lines.append(f"  {r['cumtime_s']:8.3f} s cum {r['tottime_s']:8.3f} s own "
                         f"{r['calls']:>8} calls  {r['function']}")
    return lines


def print_report(results: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    w = results["workload"]
    table = Table(title=(f"Read simulators, {w['reference_bases'] / 1e6:.2f} Mbp real GRCh37 "
                         f"chr20, {w['coverage']:g}x, 2x{w['read_length']}, fragment "
                         f"{w['fragment_mean']}±{w['fragment_sd']}"))
    for i, c in enumerate(_COLUMNS):
        table.add_column(c, justify="right" if i >= 3 else "left")
    for row in tool_rows(results):
        table.add_row(*row)
    console = Console(width=max(Console().width, 120))
    console.print(table)
    for line in _summary_lines(results):
        console.print(line, highlight=False, markup=False)


def _markdown(results: dict) -> str:
    m = results["machine"]
    w = results["workload"]
    out = [
        "# Read simulator benchmark",
        "",
        f"Command: `{results['command']}`  ",
        f"Date: {results['date']}  ",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), {m['mem_total_gb']} GB RAM, "
        f"{m['platform']}, Python {m['python']}, 1-min load at start "
        f"{m.get('loadavg_1min_at_start')}",
        "",
        f"Workload: {w['reference_bases']:,} bases of real GRCh37 chr20 ({w['reference']}), "
        f"{w['coverage']:g}x, 2x{w['read_length']}, fragment {w['fragment_mean']}±"
        f"{w['fragment_sd']}, {w['pairs']:,} read pairs requested.",
        "",
        "| " + " | ".join(_COLUMNS) + " |",
        "|" + "|".join(["---"] * 3 + ["---:"] * (len(_COLUMNS) - 3)) + "|",
    ]
    out += ["| " + " | ".join(r) + " |" for r in tool_rows(results)]
    out.append("")
    notes = [t for t in results["tools"] if t.get("reason")]
    for t in notes:
        out.append(f"- {t['label']}: {t['status']}: {t['reason']}")
    if notes:
        out.append("")
    summary = _summary_lines(results)
    if summary:
        prof_at = next((i for i, s in enumerate(summary) if s.startswith("Profile")), None)
        head = summary if prof_at is None else summary[:prof_at]
        out += [f"- {s}" for s in head]
        if prof_at is not None:
            out += ["", summary[prof_at], "", "```", *summary[prof_at + 1:], "```"]
    return "\n".join(out) + "\n"


def write_report(results: dict, *, out_dir: Path) -> tuple[Path, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath, mpath = out_dir / "results.json", out_dir / "results.md"
    jpath.write_text(json.dumps(results, indent=2) + "\n")
    mpath.write_text(_markdown(results))
    return jpath, mpath

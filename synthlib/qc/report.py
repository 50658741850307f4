"""QC outputs a person or MultiQC reads: a self-contained HTML report with inline SVG plots,
and MultiQC custom-content files (``*_mqc.json``: general stats and a checks table).

Everything is drawn from the ``qc.json`` document alone, so the report can be rebuilt (and the
notebook re-draws the same plots) without the BAMs.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from typing import Any

__all__ = ["write_html", "write_multiqc", "svg_bars", "svg_lines", "plots", "tables"]

_W, _H, _M = 560, 220, 40
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]


def _esc(x: Any) -> str:
    return html.escape(str(x))


def _frame(title: str, xlabel: str, ylabel: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H + 30}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="{_W / 2}" y="14" text-anchor="middle" font-weight="bold">{_esc(title)}</text>',
        f'<line x1="{_M}" y1="{_H}" x2="{_W - 10}" y2="{_H}" stroke="black"/>',
        f'<line x1="{_M}" y1="24" x2="{_M}" y2="{_H}" stroke="black"/>',
        f'<text x="{_W / 2}" y="{_H + 26}" text-anchor="middle">{_esc(xlabel)}</text>',
        f'<text x="10" y="{(_H + 24) / 2}" transform="rotate(-90 10 {(_H + 24) / 2})" '
        f'text-anchor="middle">{_esc(ylabel)}</text>',
    ]


def _short(v: float) -> str:
    # Tick labels must fit the 40 px margin: 71k, 1.2M rather than 7.1e+04.
    for div, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _ticks(lo: float, hi: float, axis: str, scale) -> list[str]:
    out = []
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        p = scale(v)
        label = _short(v)
        if axis == "x":
            out.append(f'<text x="{p:.1f}" y="{_H + 12}" text-anchor="middle">{label}</text>')
        else:
            out.append(f'<text x="{_M - 3}" y="{p + 4:.1f}" text-anchor="end">{label}</text>')
    return out


def svg_bars(values: list[float], *, title: str, xlabel: str, ylabel: str, x0: float = 0,
             width: float = 1, labels: list[str] | None = None) -> str:
    """A bar chart as an SVG string (bars at ``x0 + i * width``, or labelled categories)."""
    vals = [0.0 if v is None else float(v) for v in values]
    top = max(vals + [1e-12])
    n = max(len(vals), 1)
    bw = (_W - _M - 10) / n
    parts = _frame(title, xlabel, ylabel)
    for i, v in enumerate(vals):
        h = (_H - 24) * v / top
        parts.append(f'<rect x="{_M + i * bw:.2f}" y="{_H - h:.2f}" '
                     f'width="{max(bw - 0.5, 0.5):.2f}" height="{h:.2f}" '
                     f'fill="{_COLORS[0]}"><title>'
                     f'{_esc(labels[i] if labels else x0 + i * width)}: {v:.4g}</title></rect>')
        if labels:
            parts.append(f'<text x="{_M + (i + 0.5) * bw:.1f}" y="{_H + 12}" '
                         f'text-anchor="middle" font-size="9">{_esc(labels[i])}</text>')
    if not labels:
        parts += _ticks(x0, x0 + n * width, "x", lambda v: _M + (v - x0) / width * bw)
    parts += _ticks(0, top, "y", lambda v: _H - (_H - 24) * v / top)
    parts.append("</svg>")
    return "".join(parts)


def svg_lines(series: dict[str, list[float]], *, title: str, xlabel: str, ylabel: str,
              ylim: tuple[float, float] | None = None, points: bool = False) -> str:
    """Line (or point) series sharing the x axis 0..n-1, as an SVG string with a legend."""
    allv = [float(v) for s in series.values() for v in s if v is not None]
    lo, hi = ylim or (min(allv + [0.0]), max(allv + [1.0]))
    hi = hi if hi > lo else lo + 1
    n = max((len(s) for s in series.values()), default=1)
    sx = lambda i: _M + (_W - _M - 10) * i / max(n - 1, 1)  # noqa: E731
    sy = lambda v: _H - (_H - 24) * (v - lo) / (hi - lo)  # noqa: E731
    parts = _frame(title, xlabel, ylabel)
    for k, (name, s) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        pts = [(sx(i), sy(float(v))) for i, v in enumerate(s) if v is not None]
        if points:
            parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"/>'
                      for x, y in pts]
        else:
            d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
            parts.append(f'<polyline points="{d}" fill="none" stroke="{color}"/>')
        parts.append(f'<text x="{_W - 120}" y="{30 + 13 * k}" fill="{color}">{_esc(name)}</text>')
    parts += _ticks(0, n - 1, "x", sx) + _ticks(lo, hi, "y", sy)
    parts.append("</svg>")
    return "".join(parts)


def plots(data: dict) -> dict[str, str]:
    """Every plot of a ``qc.json`` document, name -> SVG."""
    m = data.get("metrics", {})
    out: dict[str, str] = {}
    cov = m.get("coverage")
    if cov:
        h = cov["histogram"]
        counts = h["counts"]
        last = max((i for i, c in enumerate(counts) if c), default=0) + 1
        out["coverage_histogram"] = svg_bars(
            counts[:last], title=f"Depth distribution (mean {cov['mean']:.1f}x)",
            xlabel="depth", ylabel="bases", width=h["bin_width"])
        if cov.get("per_target"):
            out["per_target_coverage"] = svg_lines(
                {"mean depth": [t[3] for t in cov["per_target"]]}, title="Per-target coverage",
                xlabel="target (genome order)", ylabel="mean depth", points=True)
    ins = m.get("insert_size")
    if ins and ins.get("histogram"):
        h = ins["histogram"]
        out["insert_sizes"] = svg_bars(
            h["counts"], title=f"Insert sizes (mean {ins['mean']:.1f}, expected "
            f"{ins['expected_mean']:.1f})", xlabel="bp", ylabel="pairs", width=h["bin_width"])
    q = m.get("quality")
    if q:
        series = {}
        for k, v in q.items():
            series[f"{k} observed"] = v["mean"]
            series[f"{k} model"] = v["expected"]
        out["quality_by_cycle"] = svg_lines(series, title="Mean quality by cycle",
                                            xlabel="cycle", ylabel="Phred")
    cmp = m.get("comparison")
    if cmp and cmp.get("by_type"):
        names = list(cmp["by_type"])
        out["recall_precision_by_type"] = svg_lines(
            {"recall": [cmp["by_type"][n]["allele"]["recall"] for n in names],
             "precision": [cmp["by_type"][n]["allele"]["precision"] for n in names]},
            title="Recall / precision by type and size: " + ", ".join(names),
            xlabel="stratum (" + " | ".join(names) + ")", ylabel="rate", ylim=(0.0, 1.0),
            points=True)
    vaf = m.get("vaf")
    if vaf and vaf.get("target"):
        # Sorted by target so each VAF level reads as a step with its realized scatter.
        order = sorted(range(len(vaf["target"])), key=lambda i: vaf["target"][i])
        top = min(1.0, 1.25 * max([v for v in vaf["realized"] if v is not None]
                                  + vaf["target"]))
        out["vaf_realized_vs_target"] = svg_lines(
            {"target": [vaf["target"][i] for i in order],
             "realized": [vaf["realized"][i] for i in order]},
            title="VAF realized vs target", xlabel="somatic variant (by target VAF)",
            ylabel="VAF", ylim=(0.0, top), points=True)
    cap = m.get("capture")
    if cap and cap.get("per_target"):
        out["per_target_depth_qc_bam"] = svg_lines(
            {"mean depth": [t[3] for t in cap["per_target"]]},
            title=f"Per-target depth, re-aligned reads (fold-80 {_fmt(cap['fold80'])})",
            xlabel="target (genome order)", ylabel="mean depth", points=True)
    sv = m.get("sv")
    if sv and sv.get("summary", {}).get("by_type"):
        bt = sv["summary"]["by_type"]
        out["sv_recall_by_type"] = svg_bars(
            [bt[k]["recall"] for k in bt], title="SV recall by type (read evidence)",
            xlabel="SV type", ylabel="recall", labels=list(bt))
    return out


def _table(headers: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in r) + "</tr>"
                   for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def tables(data: dict) -> dict[str, str]:
    """HTML tables of the per-variant VAF and per-SV evidence results (name -> HTML)."""
    m = data.get("metrics", {})
    out: dict[str, str] = {}
    vaf = m.get("vaf")
    if vaf and vaf.get("variants"):
        s = vaf["summary"]
        out["Somatic VAF"] = (
            f"<p>{s['measured']} of {s['n']} measured; inside the "
            f"{_fmt(vaf.get('level'))} binomial interval: {_fmt(s['inside_fraction'])}; "
            f"mean |realized - expected| {_fmt(s['mae'])}.</p>" + _table(
                ["id", "pos", "type", "target", "expected", "alt", "depth", "realized",
                 "interval", "z", "p", "inside"],
                [[r["vid"], f"{r['chrom']}:{r['pos']}", r["type"], r["target"],
                  r["expected"], r["alt_reads"], r["depth"], r["realized"],
                  f"{r['lo']}-{r['hi']}", r["z"], r["p"], r["inside"]]
                 for r in vaf["variants"]]))
    sv = m.get("sv")
    if sv and sv.get("svs"):
        s = sv["summary"]
        out["SV recovery"] = (
            f"<p>Found {s['found']} of {s['n']} (recall {_fmt(s['recall'])}); caller calls "
            f"{s['calls']}, unmatched {s['unmatched_calls']}. By evidence: "
            f"{_esc(json.dumps(s['by_evidence']))}. By size: "
            f"{_esc(json.dumps({k: v['recall'] for k, v in s['by_size'].items()}))}."
            + (f" By complex class: {_esc(json.dumps({k: v['recall'] for k, v in cpx.items()}))}."
               if (cpx := s.get("by_cpx_type")) else "") + "</p>"
            + _table(["id", "type", "pos", "size", "split", "pairs", "clips", "gaps",
                      "depth ratio", "expected", "found", "by", "CN est."],
                     [[r["vid"], f"CPX:{r['cpx_type']}" if r.get("cpx_type") else r["type"],
                       f"{r['chrom']}:{r['start']}-{r['end']}",
                       r["size"], r["split"], r["pairs"], r["clips"], r["gaps"],
                       r["depth"].get("ratio"), r["depth"].get("expected"), r["found"],
                       ",".join(r["found_by"]), r["cn_estimate"]] for r in sv["svs"]]))
    dup = m.get("duplicates")
    if dup and dup.get("candidate_pairs"):
        out["Duplicates"] = _table(
            ["pairs (both mates on one contig)", "marked", "fraction", "expected", "SE",
             "spec rate", "chance collisions (pairs)"],
            [[dup["candidate_pairs"], dup["marked_pairs"], dup["rate"], dup["expected"],
              dup["se"], dup["spec_rate"], dup["coincidental"]]])
    cap = m.get("capture")
    if cap:
        out["Capture"] = _table(
            ["on-target (all reads)", "on-target (mapped)", "expected", "mean target depth",
             "fold-80", ">=20x", "targets"],
            [[cap["on_target_fraction"], cap["on_target_fraction_mapped"],
              1 - cap["off_target_expected"], cap["mean_target_depth"], cap["fold80"],
              cap["pct_ge_20"], cap["targets"]]])
    return out


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.4g}"
    return "" if x is None else str(x)


def write_html(data: dict, path: Path) -> Path:
    """Write a self-contained HTML report (inline SVG, no external resources), atomically."""
    path = Path(path)
    verdict = data.get("verdict", "?")
    ds = data.get("dataset", {})
    rows = "".join(
        f'<tr class="{_esc(c["status"])}"><td>{_esc(c["name"])}</td><td>{_esc(c["status"])}</td>'
        f'<td>{_fmt(c["value"])}</td><td>{_fmt(c["expected"])}</td><td>{_fmt(c["low"])}</td>'
        f'<td>{_fmt(c["high"])}</td><td>{_esc(c["source"])}</td><td>{_esc(c["note"])}</td></tr>'
        for c in data.get("checks", []))
    figs = "".join(f"<figure>{svg}<figcaption>{_esc(name)}</figcaption></figure>"
                   for name, svg in plots(data).items())
    tabs = "".join(f"<h2>{_esc(k)}</h2>{v}" for k, v in tables(data).items())
    m = data.get("metrics", {})
    extra = {k: m[k] for k in ("mode", "pairs", "alignment", "timings", "cost", "truth_set",
                               "spikes") if k in m}
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>QC {_esc(ds.get('id', ''))}</title>
<style>
body {{font-family: sans-serif; margin: 2em; max-width: 1200px}}
table {{border-collapse: collapse}} td, th {{border: 1px solid #ccc; padding: 3px 6px}}
tr.fail {{background: #fdd}} tr.pass {{background: #efe}} tr.skipped {{color: #888}}
.verdict-pass {{color: #070}} .verdict-fail {{color: #b00}}
figure {{display: inline-block; margin: 8px}} pre {{background: #f6f6f6; padding: 1em}}
</style></head><body>
<h1>QC report: {_esc(ds.get('id', ds.get('truth', '')))} {_esc(ds.get('version', ''))}</h1>
<p>Format {_esc(data.get('format'))}. Verdict:
<b class="verdict-{_esc(verdict)}">{_esc(verdict).upper()}</b></p>
<h2>Checks</h2>
<table><tr><th>check</th><th>status</th><th>value</th><th>expected</th><th>low</th>
<th>high</th><th>source</th><th>note</th></tr>{rows}</table>
<h2>Plots</h2>{figs}
{tabs}
<h2>Run</h2><pre>{_esc(json.dumps(extra, indent=1, default=str))}</pre>
</body></html>
"""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(body)
    os.replace(tmp, path)
    return path


def write_multiqc(data: dict, out_dir: Path) -> list[Path]:
    """MultiQC custom content: general-stats row and a table of checks.

    Files are ``synthlib_mqc.json`` (``plot_type: generalstats``) and
    ``synthlib_checks_mqc.json`` (``plot_type: table``); ``multiqc <folder>`` picks both up.
    """
    out_dir = Path(out_dir)
    ds = data.get("dataset", {})
    sample = ds.get("id", "query")
    m = data.get("metrics", {})
    summ = m.get("comparison", {}).get("by_type_summary", {})
    general = {
        "id": "synthlib_qc", "section_name": "synthlib QC", "plot_type": "generalstats",
        "pconfig": [{"verdict": {"title": "QC verdict"}},
                    {"coverage_mean": {"title": "Mean depth", "suffix": "x"}},
                    {"snv_recall": {"title": "SNV recall", "max": 1, "min": 0}},
                    {"indel_recall": {"title": "Indel recall", "max": 1, "min": 0}},
                    {"precision": {"title": "Precision", "max": 1, "min": 0}},
                    {"vaf_inside": {"title": "VAF in interval", "max": 1, "min": 0}},
                    {"sv_recall": {"title": "SV recall", "max": 1, "min": 0}},
                    {"on_target": {"title": "On target", "max": 1, "min": 0}},
                    {"duplicates": {"title": "Duplicates", "max": 1, "min": 0}},
                    {"duplicates_expected": {"title": "Dup. expected", "max": 1, "min": 0}}],
        "data": {sample: {
            "verdict": data.get("verdict"),
            "coverage_mean": m.get("coverage", {}).get("mean"),
            "snv_recall": summ.get("snv", {}).get("recall"),
            "indel_recall": summ.get("indel", {}).get("recall"),
            "precision": m.get("comparison", {}).get("allele", {}).get("precision"),
            "vaf_inside": (m.get("vaf") or {}).get("summary", {}).get("inside_fraction"),
            "sv_recall": (m.get("sv") or {}).get("summary", {}).get("recall"),
            "on_target": (m.get("capture") or {}).get("on_target_fraction"),
            "duplicates": (m.get("duplicates") or {}).get("rate"),
            "duplicates_expected": (m.get("duplicates") or {}).get("expected"),
        }},
    }
    table = {
        "id": "synthlib_qc_checks", "section_name": "synthlib QC checks", "plot_type": "table",
        "description": "Every gate check of the dataset with its accepted interval.",
        "data": {f"{sample}: {c['name']}": {k: c[k] for k in ("status", "value", "expected",
                                                                  "low", "high", "source")}
                 for c in data.get("checks", [])},
    }
    docs = [("synthlib_mqc.json", general), ("synthlib_checks_mqc.json", table)]
    vaf = m.get("vaf") or {}
    if vaf.get("variants"):
        docs.append(("synthlib_vaf_mqc.json", {
            "id": "synthlib_qc_vaf", "section_name": "synthlib somatic VAF", "plot_type": "table",
            "description": "Realized VAF (alt fragments / depth) of each somatic truth variant "
                           "in the re-aligned reads vs its target, with the binomial interval.",
            "data": {f"{sample}: {r['vid']}": {k: r[k] for k in (
                "type", "target", "expected", "alt_reads", "depth", "realized", "lo", "hi",
                "inside", "p")} for r in vaf["variants"]}}))
    sv = m.get("sv") or {}
    if sv.get("svs"):
        docs.append(("synthlib_sv_mqc.json", {
            "id": "synthlib_qc_sv", "section_name": "synthlib SV recovery", "plot_type": "table",
            "description": "Read evidence for each truth SV in the re-aligned reads.",
            "data": {f"{sample}: {r['vid']}": {
                "type": r["type"], "size": r["size"], "split": r["split"], "pairs": r["pairs"],
                "clips": r["clips"], "depth_ratio": r["depth"].get("ratio"),
                "expected_ratio": r["depth"].get("expected"), "found": r["found"],
                "found_by": ",".join(r["found_by"])} for r in sv["svs"]}}))
    paths = []
    for name, doc in docs:
        p = out_dir / name
        tmp = p.with_name(p.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=1) + "\n")
        os.replace(tmp, p)
        paths.append(p)
    return paths

"""QC of a generated dataset: re-align, call, compare with the truth, measure, gate, report.

``run_qc`` writes ``<dataset_dir>/qc/`` (``qc.json`` in format ``synthlib.qc/1``,
``report.html``, MultiQC custom-content files, ``qc.bam`` and ``calls.vcf.gz``) and records the
verdict, headline metrics and the new files' checksums in ``manifest.json``.

Small datasets (at most ``max_pairs`` read pairs) are aligned whole. Larger ones align the pairs
whose golden alignment touches a window around a truth variant (every spike, and a
deterministic sample of the background) plus a random sample of pairs; calling and the
comparison are then restricted to those windows, and coverage is measured on random windows of
the golden BAM.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pysam

from ..errors import QCError
from ..generate import FILES
from ..intervals import intersect, merge, read_bed, subtract, total
from ..io.checksums import digest_file
from ..plan import Plan, plan_dataset
from ..reads.errormodel import ErrorModel
from ..resources import resolve_file
from ..spec import DatasetSpec, parse_spec
from . import metrics as M
from .align import align_pairs
from .call import call_variants, write_bed
from .compare import compare_vcfs
from .duplicates import expected_duplicate_fraction
from .gate import Check, make_check, resolve_thresholds, verdict_of
from .ontarget import on_target_metrics
from .sv_evidence import breakpoint_windows, read_truth_svs, sv_recovery
from .vaf import somatic_vaf

__all__ = ["QCResult", "run_qc", "qc_pair", "QC_FORMAT", "LARGE_PAIRS", "QC_FILES"]

QC_FORMAT = "synthlib.qc/1"
#: Datasets with more read pairs than this are QC'd on a sample (see the module docstring).
LARGE_PAIRS = 2_000_000
#: Pairs aligned at random in sampled mode, on top of the pairs around truth variants.
RANDOM_PAIRS = 200_000
#: Background truth variants whose windows are aligned in sampled mode (all spikes are).
FOCUS_GERMLINE = 2_000
#: Largest spec regions (bases) the aligner's index covers beyond the territory (capture).
INDEX_MAX_BASES = 200_000_000
_FOCUS_PAD = 50
_COVERAGE_WINDOWS = 200
_COVERAGE_WINDOW = 10_000

QC_FILES = {
    "json": "qc/qc.json", "html": "qc/report.html", "bam": "qc/qc.bam", "bai": "qc/qc.bam.bai",
    "vcf": "qc/calls.vcf.gz", "csi": "qc/calls.vcf.gz.csi", "mqc_general": "qc/synthlib_mqc.json",
    "mqc_table": "qc/synthlib_checks_mqc.json", "confident": "qc/confident.bed",
}


@dataclass
class QCResult:
    """Outcome of ``run_qc``.

    Attributes
    ----------
    verdict
        ``pass`` or ``fail``.
    checks
        Every gate check.
    metrics
        Every measured value (the ``metrics`` object of ``qc.json``).
    out_dir
        The ``qc/`` folder.
    """

    verdict: str
    checks: list[Check]
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    out_dir: Path
    dataset: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": QC_FORMAT,
            "dataset": self.dataset,
            "verdict": self.verdict,
            "thresholds": self.thresholds,
            "checks": [c.to_dict() for c in self.checks],
            "metrics": _jsonable(self.metrics),
        }

    def headline(self) -> dict[str, Any]:
        m = self.metrics
        cmp = m.get("comparison", {}).get("by_type_summary", {})
        return _jsonable({
            "coverage_mean": m["coverage"]["mean"],
            "fold80": m["coverage"].get("fold80"),
            "insert_mean": m["insert_size"].get("mean"),
            "mismatch_rate": m["mismatch"]["golden"].get("rate"),
            "snv_recall": cmp.get("snv", {}).get("recall"),
            "indel_recall": cmp.get("indel", {}).get("recall"),
            "precision": m.get("comparison", {}).get("allele", {}).get("precision"),
            "checks_failed": [c.name for c in self.checks if c.status == "fail"],
            "qc_cost_fraction": m["cost"].get("fraction_of_generation"),
        })


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        x = float(x)
        return x if math.isfinite(x) else None
    return x


def _atomic_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def _territory(plan: Plan) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {}
    for u in plan.units:
        if len(u.territory):
            parts.setdefault(u.contig, []).append(u.territory)
    return {c: merge(np.concatenate(v)) for c, v in parts.items()}


def _index_territory(plan: Plan, territory: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Where any read can come from: the territory plus the spec's regions (accessible
    bases). They differ for exome/panel, whose off-target fragments start anywhere in the
    regions (``synthlib.reads.capture``): the aligner's index must hold them too, or those
    reads go unmapped and the mapped fraction measures the index instead of the reads.

    WGS territory already is the regions' accessible bases. Regions larger than
    ``INDEX_MAX_BASES`` (a whole-genome exome) are left out: the index would take minutes and
    gigabytes; ``run_qc`` then lowers the expected mapped fraction by the off-target reads
    from outside the index.
    """
    parts: dict[str, list[np.ndarray]] = {c: [iv] for c, iv in territory.items()}
    if plan.targets is None or sum(total(u.regions) for u in plan.units) > INDEX_MAX_BASES:
        return territory
    for u in plan.units:
        if len(u.regions):
            acc = merge(np.asarray(plan.reference.accessible(u.contig, u.start, u.end),
                                   np.int64).reshape(-1, 2))
            parts.setdefault(u.contig, []).append(intersect(merge(u.regions), acc))
    return {c: merge(np.concatenate(v)) for c, v in parts.items()
            if sum(len(x) for x in v)}


def _landing_fraction(targets: dict[str, np.ndarray], index: dict[str, np.ndarray], *,
                      padding: int, read_length: int, accessible: int) -> float:
    """Chance that a read of an off-target fragment (start uniform over the accessible
    regions) still overlaps a padded target: read starts within ``read_length - 1`` left of
    a padded target or inside it, over the accessible bases."""
    hit = 0
    for c, iv in targets.items():
        if c in index and len(iv):
            grown = merge(np.asarray(iv, np.int64) + [-(padding + read_length - 1), padding])
            hit += total(intersect(grown, index[c]))
    return min(1.0, hit / accessible) if accessible else 0.0


def _focus_windows(truth: Path, territory: dict[str, np.ndarray], seed: int
                   ) -> dict[str, np.ndarray]:
    spikes, background = [], []
    with pysam.VariantFile(str(truth)) as vf:
        for rec in vf:
            if rec.contig in territory:
                item = (rec.contig, rec.start - _FOCUS_PAD, rec.stop + _FOCUS_PAD)
                (spikes if rec.info.get("SRC") in ("spike", "somatic") else background
                 ).append(item)
    rng = np.random.default_rng(seed)
    if len(background) > FOCUS_GERMLINE:
        pick = np.sort(rng.choice(len(background), FOCUS_GERMLINE, replace=False))
        background = [background[i] for i in pick]
    out: dict[str, list[tuple[int, int]]] = {}
    for c, s, e in spikes + background:
        out.setdefault(c, []).append((max(0, s), e))
    return {c: intersect(merge(np.array(v, np.int64)), territory[c]) for c, v in out.items()}


def _random_windows(territory: dict[str, np.ndarray], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    flat = [(c, int(s), int(e)) for c, iv in territory.items() for s, e in iv
            if e - s >= _COVERAGE_WINDOW]
    if not flat:
        return territory
    lens = np.array([e - s - _COVERAGE_WINDOW + 1 for _, s, e in flat], np.float64)
    picks = rng.choice(len(flat), _COVERAGE_WINDOWS, p=lens / lens.sum())
    out: dict[str, list[tuple[int, int]]] = {}
    for k in picks:
        c, s, e = flat[k]
        a = int(rng.integers(s, e - _COVERAGE_WINDOW + 1))
        out.setdefault(c, []).append((a, a + _COVERAGE_WINDOW))
    return {c: merge(np.array(v, np.int64)) for c, v in out.items() if c in territory}


def _names_in(bam: Path, windows: dict[str, np.ndarray]) -> set[str]:
    names: set[str] = set()
    with pysam.AlignmentFile(str(bam)) as fh:
        for c, iv in windows.items():
            for s, e in iv:
                names.update(r.query_name for r in fh.fetch(c, int(s), int(e)))
    return names


def _confident(tracks_golden: list[M.DepthTrack], tracks_qc: list[M.DepthTrack],
               min_depth: float) -> dict[str, np.ndarray]:
    """Bases where the golden depth and the re-aligned MAPQ>=20 depth both reach
    ``min_depth``: the callable and mappable part of the territory."""
    out: dict[str, list[np.ndarray]] = {}
    for g, q in zip(tracks_golden, tracks_qc, strict=True):
        ok = (g.depth >= min_depth) & (q.depth >= min_depth)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], ok.view(np.int8), [0]))))
        runs = edges.reshape(-1, 2) + g.start
        if len(runs):
            out.setdefault(g.contig, []).append(runs)
    return {c: merge(np.concatenate(v)) for c, v in out.items()}


def _spike_recall(result, spikes: set[str]) -> dict[str, Any]:
    f = result.frame
    t = f[(f["side"] == "truth") & f["vid"].isin(spikes) & (f["allele"] != "UNK")]
    tp = int((t["allele"] == "TP").sum())
    n = int(len(t))
    return {"tp": tp, "total": n, "recall": tp / n if n else None,
            "missed": t.loc[t["allele"] != "TP", "vid"].tolist()}


def _somatic_sv_vids(truth: Path) -> tuple[set[str], set[str]]:
    """Comparison ids of the truth's somatic small variants and of its SVs."""
    som, sv = set(), set()
    with pysam.VariantFile(str(truth)) as vf:
        for rec in vf:
            ids = {f"{rec.contig}:{rec.pos}:{rec.ref}>{a}" for a in rec.alts or ()}
            if rec.info.get("SVTYPE"):
                sv |= ids
            elif "VAF" in rec.info:
                som |= ids
    return som, sv


def _summarize_frame(frame, exclude: set[str]) -> dict[str, dict]:
    """``_summarize_types`` from the comparison frame, leaving out truth variants in
    ``exclude`` and the calls matched to them (allele stringency)."""
    f = frame[frame["allele"] != "UNK"]
    t = f[(f["side"] == "truth") & ~f["vid"].isin(exclude)]
    q = f[f["side"] == "query"]
    drop = np.array([bool(p) and all(v in exclude for v in p) for p in q["partners"]], bool)
    q = q.loc[~drop]
    out: dict[str, dict] = {}

    def group(vt: str) -> str:
        return ("snv" if vt == "SNV" else "mnv" if vt == "MNV"
                else "indel" if str(vt).startswith(("INS", "DEL")) else "other")

    for side, rows in (("truth", t), ("query", q)):
        for vt, allele in zip(rows["type"], rows["allele"], strict=True):
            g = out.setdefault(group(vt), {"tp": 0, "fn": 0, "tp_query": 0, "fp": 0})
            if side == "truth":
                g["tp" if allele == "TP" else "fn"] += 1
            else:
                g["tp_query" if allele == "TP" else "fp"] += 1
    for g in out.values():
        g["recall"] = g["tp"] / (g["tp"] + g["fn"]) if g["tp"] + g["fn"] else None
        g["precision"] = (g["tp_query"] / (g["tp_query"] + g["fp"])
                          if g["tp_query"] + g["fp"] else None)
    return out


def _spike_vids(truth: Path) -> set[str]:
    out = set()
    with pysam.VariantFile(str(truth)) as vf:
        for rec in vf:
            if rec.info.get("SRC") == "spike":
                out.update(f"{rec.contig}:{rec.pos}:{rec.ref}>{a}" for a in rec.alts or ())
    return out


def _summarize_types(by_type: dict) -> dict[str, dict]:
    """Collapse compare's size strata into SNV / indel / MNV counts (allele stringency)."""
    out: dict[str, dict] = {}
    for stratum, per in by_type.items():
        group = ("snv" if stratum == "SNV" else "mnv" if stratum == "MNV"
                 else "indel" if stratum.startswith(("INS", "DEL")) else "other")
        a = per["allele"]
        g = out.setdefault(group, {"tp": 0, "fn": 0, "tp_query": 0, "fp": 0})
        for k in g:
            g[k] += a[k]
    for g in out.values():
        g["recall"] = g["tp"] / (g["tp"] + g["fn"]) if g["tp"] + g["fn"] else None
        g["precision"] = (g["tp_query"] / (g["tp_query"] + g["fp"])
                          if g["tp_query"] + g["fp"] else None)
    return out


def run_qc(
    *,
    dataset_dir: Path,
    spec: DatasetSpec | None = None,
    base_dir: Path | None = None,
    thresholds: dict | None = None,
    max_pairs: int | None = None,
) -> QCResult:
    """QC one dataset folder and record the verdict in its manifest.

    Parameters
    ----------
    dataset_dir
        ``<dest>/<id>/<version>`` with ``manifest.json`` and the data files.
    spec
        The spec (default: ``manifest["spec"]``).
    base_dir
        Folder relative resource paths of the spec are resolved from.
    thresholds
        Overrides of ``gate.DEFAULT_THRESHOLDS``.
    max_pairs
        Datasets with more read pairs are QC'd on a sample (default ``LARGE_PAIRS``).

    Returns
    -------
    QCResult
        A failed gate is a verdict, not an exception.

    Raises
    ------
    QCError
        When QC cannot run (missing manifest or files, bad thresholds).
    """
    t_start = time.perf_counter()
    dataset_dir = Path(dataset_dir)
    mpath = dataset_dir / "manifest.json"
    if not mpath.exists():
        raise QCError("no manifest.json: not a dataset folder", where=str(dataset_dir))
    manifest = json.loads(mpath.read_text())
    if spec is None:
        spec = parse_spec(manifest.get("spec"), source=str(mpath))
    # Explicit arguments win over the spec's qc section, which wins over the defaults.
    th = resolve_thresholds({**spec.qc.thresholds, **(thresholds or {})})
    if max_pairs is None:
        max_pairs = spec.qc.max_pairs
    max_pairs = LARGE_PAIRS if max_pairs is None else int(max_pairs)
    if max_pairs < 1:
        raise QCError(f"max_pairs must be >= 1, got {max_pairs}")
    files = {k: dataset_dir / v for k, v in FILES.items()}
    for k in ("r1", "r2", "vcf"):
        if not files[k].exists():
            raise QCError(f"dataset has no {FILES[k]}", where=str(dataset_dir))
    has_golden = files["bam"].exists()

    plan = plan_dataset(spec, base_dir=base_dir)
    ref = plan.reference
    territory = _territory(plan)
    targets = None
    if spec.assay.type != "wgs":
        targets = read_bed(resolve_file(spec.assay.targets or "", base_dir=base_dir,
                                        what="targets"), padding=0)
    model = ErrorModel.load(spec.reads.model).for_read_length(spec.reads.length)
    pairs = int(manifest.get("run", {}).get("pairs") or plan.cost().read_pairs)
    sampled = pairs > max_pairs
    out = dataset_dir / "qc"
    out.mkdir(exist_ok=True)
    timings: dict[str, float] = {}

    # --- which pairs to align, where to call
    if sampled:
        focus = _focus_windows(files["vcf"], territory, spec.seed)
        names = _names_in(files["bam"], focus) if has_golden else set()
        frac = min(1.0, RANDOM_PAIRS / max(pairs, 1))
        draw = np.random.default_rng(spec.seed).random(pairs + 1) < frac

        def keep(i: int, name: str) -> bool:
            return name in names or (i < len(draw) and bool(draw[i]))

        analysis = focus if has_golden else {}
    else:
        keep = None
        analysis = territory
    t = time.perf_counter()
    index = _index_territory(plan, territory)
    aln = align_pairs(r1=files["r1"], r2=files["r2"], reference=ref, territory=index,
                      out_bam=out / "qc.bam", sample=spec.id, max_fragment=spec.fragment.max,
                      keep=keep, expected_pairs=None if sampled else pairs)
    timings["align"] = time.perf_counter() - t

    # --- golden BAM: depth, insert sizes, error sample; QC BAM: mappable depth
    t = time.perf_counter()
    cov_intervals = _random_windows(territory, spec.seed) if sampled else territory
    if has_golden:
        g_tracks, g = M.golden_read_stats(bam=files["bam"], intervals=cov_intervals,
                                          expected_reads=2 * pairs)
        cov_source = "golden.bam"
    else:
        g_tracks = M.depth_tracks(bam=out / "qc.bam", intervals=cov_intervals)
        g = {"tlen": aln.insert_sizes, "reads": [], "reads_seen": None,
             "duplicates_flagged": None}
        cov_source = "qc/qc.bam"
    coverage = M.coverage_metrics(g_tracks, targets=targets)
    coverage["source"] = cov_source + (" (random windows)" if sampled else "")
    on_target = None
    if targets is not None and has_golden and not sampled:
        on_target = g["reads_seen"] / (2 * pairs) if pairs else None
    min_depth = max(3.0, 0.5 * spec.coverage)
    if analysis:
        a_golden = (g_tracks if not sampled else
                    M.depth_tracks(bam=files["bam"], intervals=analysis))
        if not has_golden:
            a_golden = M.depth_tracks(bam=out / "qc.bam", intervals=analysis)
        a_qc = M.depth_tracks(bam=out / "qc.bam", intervals=analysis, min_mapq=20)
        confident = _confident(a_golden, a_qc, min_depth)
        golden_callable = _confident(a_golden, a_golden, min_depth)
    else:
        confident, golden_callable = {}, {}
    timings["depth"] = time.perf_counter() - t

    # --- calls and comparison
    t = time.perf_counter()
    comparison: dict[str, Any] = {}
    spike: dict[str, Any] = {}
    compared: dict[str, np.ndarray] = {}
    if analysis:
        call_bed = write_bed(analysis, out / "called_regions.bed")
        vcf, _ = call_variants(bam=out / "qc.bam", reference=ref.path, regions_bed=call_bed,
                               out_vcf=out / "calls.vcf.gz", sample=spec.id,
                               max_depth=max(250, int(4 * spec.coverage)))
        # Small variants are compared away from SV breakpoints (a read length either side).
        near_sv = breakpoint_windows(read_truth_svs(files["vcf"]), pad=spec.reads.length)
        compared = {c: subtract(iv, near_sv.get(c, np.zeros((0, 2), np.int64)))
                    for c, iv in confident.items()}
        conf_bed = write_bed(compared or {next(iter(territory)): np.zeros((0, 2), np.int64)},
                             out / "confident.bed")
        tgt_bed = write_bed(targets, out / "targets.bed") if targets is not None else None
        res = compare_vcfs(truth=files["vcf"], query=vcf, reference=ref.path, regions=conf_bed,
                           targets=tgt_bed)
        comparison = res.to_dict()
        comparison["by_type_summary"] = _summarize_types(comparison["by_type"])
        somatic_ids, sv_ids = _somatic_sv_vids(files["vcf"])
        spike = _spike_recall(res, _spike_vids(files["vcf"]) - sv_ids)
        if somatic_ids or sv_ids:
            # Low-VAF somatic variants are not germline calls and SVs are not small variants:
            # the small-variant recall gates count the rest; somatic variants are judged by
            # their realized VAF and SVs by the read-evidence caller below.
            comparison["by_type_summary_all"] = comparison["by_type_summary"]
            comparison["by_type_summary"] = _summarize_frame(res.frame, somatic_ids | sv_ids)
            comparison["excluded"] = {"somatic": len(somatic_ids), "sv": len(sv_ids)}
    timings["call_compare"] = time.perf_counter() - t

    # --- somatic VAFs, SV evidence, capture metrics (all from the re-aligned reads)
    t = time.perf_counter()
    vaf = somatic_vaf(bam=out / "qc.bam", truth_vcf=files["vcf"], reference=ref,
                      level=th["vaf_interval_level"])
    vaf = vaf if vaf["variants"] else {}
    sv: dict[str, Any] = {}
    if read_truth_svs(files["vcf"]):
        sv = sv_recovery(bam=out / "qc.bam", truth_vcf=files["vcf"],
                         max_insert=spec.fragment.max, read_length=spec.reads.length,
                         territory=territory, tol=int(th["sv_breakpoint_tol"]),
                         depth_z=th["sv_depth_z"], depth_abs=th["sv_depth_abs"])
    capture: dict[str, Any] = {}
    if targets is not None:
        capture = on_target_metrics(bam=out / "qc.bam", targets=targets,
                                    padding=spec.assay.padding, territory=territory)
        capture["off_target_expected"] = spec.assay.capture.off_target
        capture["off_target_landing"] = _landing_fraction(
            targets, index, padding=spec.assay.padding, read_length=spec.reads.length,
            accessible=sum(u.accessible_bases for u in plan.units))
    timings["vaf_sv_capture"] = time.perf_counter() - t

    # --- reads: quality, mismatches, inserts
    t = time.perf_counter()
    quality = {f"r{r}": M.quality_by_cycle(fastq=files[f"r{r}"]) for r in (1, 2)}
    mask = M.variant_mask(files["vcf"], territory)
    base_freqs = _base_freqs(ref, territory)
    expected_err = float(np.mean([model.expected_error_rate(r, base_freqs=base_freqs).mean()
                                  for r in (1, 2)]))
    mismatch = {
        "expected": expected_err,
        "golden": M.mismatch_rate(reads=g["reads"], reference=ref, masked=mask)
        if g["reads"] else {"rate": None},
        "reads": M.mismatch_rate(reads=aln.single_block, reference=ref, masked=mask),
    }
    tlen = g["tlen"]
    if has_golden and targets is not None and not sampled:
        # The depth pass reads only pairs whose left mate overlaps a padded target, and a long
        # captured fragment's left mate misses it more often: that selection biased the mean
        # low by ~1.5 bp (3 SE) on the exome demo. Every pair of the golden BAM is unbiased.
        tlen = _all_template_lengths(files["bam"])
    inserts = M.insert_size_metrics(tlen)
    inserts["source"] = ("golden.bam" + (" (all pairs)" if tlen is not g["tlen"] else "")
                         if has_golden else "qc/qc.bam")
    inserts["qc_bam"] = M.insert_size_metrics(aln.insert_sizes)
    inserts["qc_bam"].pop("histogram", None)
    exp_mean, exp_sd = M.expected_fragment_moments(spec, base_dir=base_dir)
    inserts["expected_mean"], inserts["expected_sd"] = exp_mean, exp_sd
    truthset = M.truth_set_metrics(files["vcf"])
    timings["reads"] = time.perf_counter() - t

    qc_seconds = time.perf_counter() - t_start
    gen_seconds = manifest.get("run", {}).get("seconds")
    metrics: dict[str, Any] = {
        "mode": "sampled" if sampled else "all_reads",
        "pairs": pairs,
        "alignment": {**aln.to_dict(),
                      "mapped_fraction": aln.reads_mapped / max(1, 2 * aln.pairs_aligned)},
        "territory_bases": sum(total(v) for v in territory.values()),
        "index_bases": sum(total(v) for v in index.values()),
        "region_accessible_bases": sum(u.accessible_bases for u in plan.units),
        "analysis_bases": sum(total(v) for v in analysis.values()),
        "confident_bases": sum(total(v) for v in confident.values()),
        "compared_bases": sum(total(v) for v in compared.values()),
        "confident_min_depth": min_depth,
        "golden_callable_bases": sum(total(v) for v in golden_callable.values()),
        "coverage": coverage,
        "on_target_fraction": on_target,
        "insert_size": inserts,
        "quality": {k: {**v, "expected": M.expected_quality(model, int(k[1]))[0].tolist()}
                    for k, v in quality.items()},
        "mismatch": mismatch,
        "duplicates": _duplicate_metrics(spec, aln, g, subset=names if sampled else None,
                                         base_dir=base_dir),
        "truth_set": truthset,
        "comparison": comparison,
        "spikes": spike,
        "vaf": vaf,
        "sv": sv,
        "capture": capture,
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "cost": {"qc_seconds": round(qc_seconds, 2), "generation_seconds": gen_seconds,
                 "fraction_of_generation": (qc_seconds / gen_seconds) if gen_seconds else None},
    }
    checks = _checks(spec, model, metrics, quality, th, sampled=sampled)
    result = QCResult(
        verdict=verdict_of(checks), checks=checks, metrics=metrics, thresholds=th, out_dir=out,
        dataset={"id": spec.id, "version": spec.version, "spec_hash": manifest.get("spec_hash"),
                 "assay": spec.assay.type, "coverage": spec.coverage})
    _write_outputs(result, dataset_dir=dataset_dir, manifest=manifest)
    return result


def _duplicate_metrics(spec: DatasetSpec, aln, g: dict, *, subset: set[str] | None,
                       base_dir: Path | None) -> dict[str, Any]:
    """Pairs marked duplicate in the QC BAM (by re-aligned coordinates) next to the fraction
    the spec's library predicts (``synthlib.qc.duplicates``).

    In sampled mode the random pair sample splits duplicate families, so only the pairs
    chosen by their golden position around truth variants (``subset``: whole families, as a
    copy shares its source's position) are counted; an empty subset leaves it unmeasured.
    """
    keys, marked = aln.dup_keys, aln.dup_marked
    if subset is not None:
        sel = np.fromiter((nm in subset for nm in aln.dup_names), bool, len(aln.dup_names))
        keys, marked = keys[sel], marked[sel]
    exp = expected_duplicate_fraction(spec=spec, keys=keys, base_dir=base_dir)
    n = len(keys)
    k = int(marked.sum())
    return {"marked_pairs": k, "candidate_pairs": n, "rate": k / n if n else None,
            "subset": "pairs around truth variants" if subset is not None else "all pairs",
            "qc_bam_marked_pairs": aln.duplicate_pairs, **{
                k: exp[k] for k in ("expected", "se", "coincidental", "sum_f2")},
            "spec_rate": exp["rate"], "golden_flagged_reads": g["duplicates_flagged"]}


def _duplicate_check(d: dict, th: dict, *, sampled: bool) -> Check:
    """``duplicate_rate``: marked fraction within SE, relative and absolute tolerances."""
    exp = d["expected"]
    if exp is None:
        return make_check("duplicate_rate", None, source="qc/qc.bam")
    half = (th["duplicate_rate_se"] * d["se"] + th["duplicate_rate_rel"] * exp
            + th["duplicate_rate_abs"])
    return make_check(
        "duplicate_rate", d["rate"], expected=exp, low=max(0.0, exp - half), high=exp + half,
        source="qc/qc.bam (pairs marked by re-aligned 5' ends)",
        note=("pairs around truth variants (sampled mode); " if sampled else "")
        + f"spec rate {d['spec_rate']:.3f} + {d['coincidental']:.1f} chance collisions; "
          f"{th['duplicate_rate_se']:.0f} SE + {th['duplicate_rate_rel']:.0%} "
          f"+ {th['duplicate_rate_abs']}")


def _all_template_lengths(bam: Path) -> np.ndarray:
    """Template lengths of every proper pair of a BAM (left mates), int64 (n,)."""
    out: list[int] = []
    with pysam.AlignmentFile(str(bam)) as fh:
        for r in fh.fetch(until_eof=True):
            if r.template_length > 0 and r.flag & 0x2 and not r.flag & 0x900:
                out.append(r.template_length)
    return np.asarray(out, np.int64)


def _base_freqs(ref, territory: dict[str, np.ndarray]) -> np.ndarray:
    counts = np.zeros(4)
    for c, iv in territory.items():
        for s, e in iv[:50]:
            seq = np.frombuffer(ref.fetch(c, int(s), int(min(e, s + 200_000))), np.uint8)
            counts += [np.count_nonzero(seq == ord(b)) for b in "ACGT"]
    # Reads come from both strands: the true base composition is strand-symmetric.
    at, cg = (counts[0] + counts[3]) / 2, (counts[1] + counts[2]) / 2
    f = np.array([at, cg, cg, at])
    return f / f.sum() if f.sum() else np.full(4, 0.25)


def _checks(spec: DatasetSpec, model: ErrorModel, m: dict, quality: dict, th: dict,
            *, sampled: bool) -> list[Check]:
    checks: list[Check] = []
    cov = m["coverage"]
    c = spec.coverage
    tol = th["coverage_rel_tol"]
    checks.append(make_check("coverage_mean", cov["mean"], expected=c, low=c * (1 - tol),
                             high=c * (1 + tol), source=cov["source"],
                             note=f"mean depth over the territory within {tol:.0%} of the spec",
                             skip="capture assay: see capture_target_depth"
                             if m.get("capture") else None))
    pf = M.poisson_fold80(c)
    # The 20th-percentile depth is an integer: at low depth one step down of it (e.g. 6 -> 5 at
    # 8x) moves fold-80 by far more than any relative excess, so allow that one step.
    one_step = c / max(round(c / pf) - 1, 1)
    checks.append(make_check(
        "fold80", cov["fold80"], expected=pf,
        high=max(pf * (1 + th["fold80_rel_excess_max"]), one_step),
        source=cov["source"], note="Poisson fold-80 at the spec depth, plus the allowed excess "
                                   "or one integer step of the 20th-percentile depth",
        skip="capture assays are not Poisson-uniform" if spec.assay.type != "wgs" else None))
    if spec.assay.type != "wgs":
        checks.append(make_check("on_target_fraction", m["on_target_fraction"],
                                 low=th["on_target_min"], source="golden.bam"))

    ins = m["insert_size"]
    if ins.get("n"):
        se = ins["expected_sd"] / math.sqrt(ins["n"])
        half = th["insert_mean_se"] * se + th["insert_mean_rel"] * ins["expected_mean"]
        checks.append(make_check(
            "insert_mean", ins["mean"], expected=ins["expected_mean"],
            low=ins["expected_mean"] - half, high=ins["expected_mean"] + half,
            source=ins["source"], note="truncated-normal mean; 3 SE + 1%"))
        se_sd = ins["expected_sd"] / math.sqrt(2 * ins["n"])
        half = 3 * se_sd + th["insert_sd_rel"] * ins["expected_sd"]
        checks.append(make_check(
            "insert_sd", ins["sd"], expected=ins["expected_sd"], low=ins["expected_sd"] - half,
            high=ins["expected_sd"] + half, source=ins["source"]))

    for key, q in quality.items():
        r = int(key[1])
        qi = M.quality_check_inputs(model, q, r)
        dev = np.abs(qi["observed"] - qi["expected"])
        allowed = th["quality_cycle_se"] * qi["se"] + th["quality_cycle_abs"]
        worst = float(np.max(dev - allowed))
        checks.append(make_check(
            f"quality_by_cycle_{key}", worst, high=0.0, expected=0.0,
            source=f"reads_{key.upper()}.fastq.gz",
            note="max over cycles of |mean Q - model| minus its tolerance (<= 0 passes)"))
        checks.append(make_check(
            f"mean_quality_{key}", float(qi["observed"].mean()),
            expected=float(qi["expected"].mean()),
            low=float(qi["expected"].mean()) - th["quality_cycle_abs"],
            high=float(qi["expected"].mean()) + th["quality_cycle_abs"],
            source=f"reads_{key.upper()}.fastq.gz"))

    mm = m["mismatch"]
    exp = mm["expected"]
    for name, key, tol_key, src in (("mismatch_rate", "golden", "mismatch_rel_tol", "golden.bam"),
                                    ("read_mismatch_rate", "reads", "read_mismatch_rel_tol",
                                     "qc/qc.bam")):
        d = mm[key]
        rate, n = d.get("rate"), d.get("bases") or 0
        se = math.sqrt(exp * (1 - exp) / n) if n else 0.0
        half = 3 * se + th[tol_key] * exp
        checks.append(make_check(name, rate, expected=exp, low=exp - half, high=exp + half,
                                 source=src, note="model expected_error_rate, away from variants"))

    # The aligner's index holds every base a read can come from (off-target capture reads
    # included: _index_territory), so every assay expects the same mapped fraction; only when
    # the regions were too large to index do off-target reads from outside it go unmapped.
    lost = 0.0
    if m.get("capture") and m["region_accessible_bases"]:
        outside = max(0.0, 1 - m["index_bases"] / m["region_accessible_bases"])
        lost = spec.assay.capture.off_target * outside
    checks.append(make_check("mapped_fraction", m["alignment"]["mapped_fraction"],
                             low=th["mapped_fraction_min"] - lost, source="qc/qc.bam",
                             note=f"minus {lost:.3f}: off-target reads from outside the index"
                             if lost > 0.001 else ""))
    checks.append(_duplicate_check(m["duplicates"], th, sampled=sampled))

    ts = m["truth_set"]
    n_snv = ts["germline_snvs"]
    if n_snv >= th["titv_min_snvs"] and ts["germline_snv_titv"] is not None:
        p = ts["germline_transitions"] / n_snv
        se = math.sqrt(p * (1 - p) / n_snv) / (1 - p) ** 2
        checks.append(make_check("germline_titv", ts["germline_snv_titv"], expected=2.05,
                                 low=th["titv_low"] - 3 * se, high=th["titv_high"] + 3 * se,
                                 source="truth.vcf.gz"))
    else:
        checks.append(make_check("germline_titv", ts["germline_snv_titv"], source="truth.vcf.gz",
                                 skip=f"fewer than {th['titv_min_snvs']:.0f} germline SNVs"))

    gate_calls = None if c >= th["calling_min_coverage"] else (
        f"coverage {c}x below calling_min_coverage {th['calling_min_coverage']:.0f}x")
    cmp = m["comparison"]
    if not cmp:
        gate_calls = gate_calls or "no comparison (no golden BAM in sampled mode)"
    summ = cmp.get("by_type_summary", {})
    src = "qc/calls.vcf.gz vs truth.vcf.gz (confident territory away from SV breakpoints)"
    if not sampled:
        # WGS depth is Poisson around the spec's: nearly every territory base reaches half of
        # it in the golden BAM, so the fraction is of the territory. Capture depth is not
        # uniform by design (flanks, bait efficiency: judged by the capture_* checks); what
        # re-alignment must keep is the golden BAM's callable bases, so it is the denominator.
        capture = bool(m.get("capture"))
        terr = m["golden_callable_bases" if capture else "territory_bases"]
        frac = m["confident_bases"] / terr if terr else None
        checks.append(make_check(
            "confident_fraction", frac, low=th["confident_fraction_min"],
            source="golden.bam + qc/qc.bam", skip=gate_calls,
            note="of the bases at half the spec depth in golden.bam" if capture
            else "of the territory"))
    checks.append(make_check("snv_recall", summ.get("snv", {}).get("recall"),
                             low=th["snv_recall_min"], source=src, skip=gate_calls))
    checks.append(make_check("indel_recall", summ.get("indel", {}).get("recall"),
                             low=th["indel_recall_min"], source=src, skip=gate_calls))
    checks.append(make_check("precision", cmp.get("allele", {}).get("precision"),
                             low=th["precision_min"], source=src, skip=gate_calls))
    checks.append(make_check("spike_recall", m["spikes"].get("recall"),
                             low=th["spike_recall_min"], source=src, skip=gate_calls))
    checks += _extra_checks(spec, m, th)
    return checks


def _extra_checks(spec: DatasetSpec, m: dict, th: dict) -> list[Check]:
    """Somatic VAF accuracy, SV recovery and capture checks (present only when they apply)."""
    checks: list[Check] = []
    vaf = m.get("vaf") or {}
    if vaf:
        s = vaf["summary"]
        checks.append(make_check(
            "somatic_vaf_in_interval", s["inside_fraction"], low=th["vaf_inside_min"],
            source="qc/qc.bam pileup vs truth INFO/VAF",
            note=f"fraction of somatic variants whose alt fragment count lies in the "
                 f"{th['vaf_interval_level']:.1%} Binomial(depth, VAF) interval"))
    sv = m.get("sv") or {}
    if sv:
        checks.append(make_check(
            "sv_recall", sv["summary"]["recall"], low=th["sv_recall_min"],
            source="qc/qc.bam split reads, pairs, clips, depth",
            note="truth SVs found by the read-evidence caller"))
    cap = m.get("capture") or {}
    if cap:
        off = cap["off_target_expected"]
        # Captured reads overlap their padded target; an off-target read does with the chance
        # that its uniform start lands next to one (the panel's targets fill much of its
        # small regions). Two-sided: too many on-target reads means off-target reads missing.
        exp = 1 - off + off * cap.get("off_target_landing", 0.0)
        checks.append(make_check(
            "capture_on_target", cap["on_target_fraction"], expected=exp,
            low=max(0.0, exp - th["off_target_tol"]), high=min(1.0, exp + th["off_target_tol"]),
            source="qc/qc.bam",
            note="reads overlapping padded targets / all reads, vs 1 - off_target plus the "
                 "off-target reads landing on padded targets"))
        c = spec.coverage
        tol = th["target_coverage_rel_tol"]
        checks.append(make_check(
            "capture_target_depth", cap["mean_target_depth"], expected=c, low=c * (1 - tol),
            high=c * (1 + tol), source="qc/qc.bam", note="mean depth over the targets"))
        checks.append(make_check(
            "capture_fold80", cap["fold80"], high=th["capture_fold80_max"],
            source="qc/qc.bam", note="fold-80 base penalty over the targets"))
    return checks


def _write_outputs(result: QCResult, *, dataset_dir: Path, manifest: dict) -> None:
    from .report import write_html, write_multiqc

    out = result.out_dir
    data = result.to_dict()
    _atomic_json(out / "qc.json", data)
    write_html(data, out / "report.html")
    write_multiqc(data, out)
    qc_files = sorted(str(p.relative_to(dataset_dir)) for p in out.iterdir()
                      if p.is_file() and not p.name.endswith(".tmp"))
    kept = [f for f in manifest.get("files", []) if not f["path"].startswith("qc/")]
    kept += [{"path": f, **digest_file(dataset_dir / f)} for f in qc_files]
    manifest["files"] = sorted(kept, key=lambda f: f["path"])
    manifest["qc"] = {"verdict": result.verdict, "metrics": result.headline(),
                      "format": QC_FORMAT, "report": QC_FILES["html"]}
    _atomic_json(dataset_dir / "manifest.json", manifest)


def qc_pair(
    *,
    truth: Path,
    query: Path,
    reference: Path,
    bam: Path | None = None,
    regions: Path | None = None,
    out_dir: Path,
) -> dict:
    """Compare any query VCF with any truth VCF (and summarize a BAM's depth if given).

    Writes ``out_dir/qc.json`` (format ``synthlib.qc/1``, no gate thresholds beyond the
    calling ones) and ``report.html``; returns the JSON document.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in (truth, query, reference):
        if not Path(p).exists():
            raise QCError("file not found", where=str(p))
    res = compare_vcfs(truth=truth, query=query, reference=reference, regions=regions)
    comparison = res.to_dict()
    comparison["by_type_summary"] = _summarize_types(comparison["by_type"])
    metrics: dict[str, Any] = {"comparison": comparison}
    if bam is not None:
        if regions is not None:
            iv = read_bed(Path(regions))
        else:
            with pysam.AlignmentFile(str(bam)) as fh:
                iv = {c: np.array([[0, n]], np.int64) for c, n in
                      zip(fh.references, fh.lengths, strict=True)
                      if any(True for _ in fh.fetch(c, 0, n))}
        metrics["coverage"] = M.coverage_metrics(M.depth_tracks(bam=Path(bam), intervals=iv))
        metrics["coverage"]["source"] = Path(bam).name
    th = resolve_thresholds(None)
    summ = comparison["by_type_summary"]
    checks = [
        make_check("snv_recall", summ.get("snv", {}).get("recall"), low=th["snv_recall_min"],
                   source=Path(query).name),
        make_check("indel_recall", summ.get("indel", {}).get("recall"),
                   low=th["indel_recall_min"], source=Path(query).name),
        make_check("precision", comparison["allele"]["precision"], low=th["precision_min"],
                   source=Path(query).name),
    ]
    data = _jsonable({"format": QC_FORMAT, "dataset": {"truth": str(truth), "query": str(query)},
                      "verdict": verdict_of(checks), "thresholds": th,
                      "checks": [c.to_dict() for c in checks], "metrics": metrics})
    from .report import write_html

    _atomic_json(out_dir / "qc.json", data)
    write_html(data, out_dir / "report.html")
    return data

"""QC of a cohort dataset: every per-sample dataset through ``run_qc``, plus cohort checks.

A cohort folder holds the joint truth (``cohort.vcf.gz``, ``cohort.ped``, ``denovo.vcf.gz``)
and per-sample datasets under ``samples/<id>/`` (each an ordinary dataset with its own
``manifest.json``). The cohort verdict passes only when the generation checks
(``finish_cohort``), every sample's QC gate and every cohort-level check pass.

Cohort-level check: Mendelian consistency of the joint truth. In a trio every child genotype
must take one allele from each parent, except at the child's de novo variants (``SRC=denovo``):
the set of violating sites must equal the set of flagged de novo sites, no more (a broken
transmission) and no fewer (a de novo the parents also carry). Burden spikes (``SRC=spike``)
are planted in cases by the spec, trio children included, without their parents: such a
violation is explained by the spec and counted apart (``spike_violations``); it is a de facto
de novo that ``denovo.vcf.gz`` does not list.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pysam

from ..errors import QCError
from .gate import Check, make_check

__all__ = ["sample_dirs", "read_trios", "mendelian_consistency", "aggregate_cohort_qc",
           "qc_cohort_samples", "finish_cohort_qc"]


def sample_dirs(cohort_dir: Path) -> list[Path]:
    """Per-sample dataset folders (``samples/<id>/`` with a ``manifest.json``), sorted."""
    root = Path(cohort_dir) / "samples"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "manifest.json").exists())


def read_trios(ped: Path) -> list[tuple[str, str, str]]:
    """``(child, father, mother)`` of every pedigree row with both parents known."""
    out = []
    for line in Path(ped).read_text().splitlines():
        cols = line.split("\t")
        if len(cols) >= 4 and cols[2] != "0" and cols[3] != "0":
            out.append((cols[1], cols[2], cols[3]))
    return out


def mendelian_consistency(*, joint_vcf: Path, ped: Path) -> dict[str, Any]:
    """Sites where a trio child's genotype cannot come from its parents, vs flagged de novos.

    Returns
    -------
    dict
        ``trios``, ``sites_checked``, ``violations`` (outside burden spikes), ``denovo`` and
        ``spike_violations`` (counts of child-site pairs); ``unexplained`` (violations not
        flagged ``SRC=denovo``), ``missed`` (flagged de novos that are no violation) and
        ``spike_violation_sites``, each a list of ``child:chrom:pos``, at most 20, with the
        counts ``n_unexplained`` and ``n_missed``.
    """
    for p in (joint_vcf, ped):
        if not Path(p).exists():
            raise QCError("file not found", where=str(p))
    trios = read_trios(ped)
    violations: set[str] = set()
    denovo: set[str] = set()
    spiked: set[str] = set()
    n = 0
    with pysam.VariantFile(str(joint_vcf)) as vf:
        known = set(vf.header.samples)
        trios = [t for t in trios if set(t) <= known]
        for rec in vf:
            n += 1
            is_dn = rec.info.get("SRC") == "denovo"
            is_spike = rec.info.get("SRC") == "spike"
            for child, father, mother in trios:
                c = rec.samples[child]["GT"]
                f = rec.samples[father]["GT"]
                m = rec.samples[mother]["GT"]
                if None in (*c, *f, *m) or len(c) != 2:
                    continue  # missing or haploid calls: not judged
                key = f"{child}:{rec.contig}:{rec.pos}"
                a, b = c
                if not ((a in f and b in m) or (b in f and a in m)):
                    (spiked if is_spike else violations).add(key)
                if is_dn and any(c):
                    denovo.add(key)
    unexplained = sorted(violations - denovo)
    missed = sorted(denovo - violations)
    return {"trios": len(trios), "sites_checked": n, "violations": len(violations),
            "spike_violations": len(spiked), "spike_violation_sites": sorted(spiked)[:20],
            "denovo": len(denovo), "unexplained": unexplained[:20],
            "n_unexplained": len(unexplained), "missed": missed[:20], "n_missed": len(missed)}


def aggregate_cohort_qc(*, base: dict, samples: dict[str, dict],
                        mendelian: dict | None = None) -> dict[str, Any]:
    """The cohort manifest's ``qc``: generation checks, per-sample verdicts, cohort checks.

    Parameters
    ----------
    base
        ``finish_cohort``'s ``{"verdict", "metrics"}``.
    samples
        ``{sample id: {"verdict", "headline", "qc_json"}}`` (``flows.qc_dataset.qc_task``'s
        result; ``qc_json`` relative to the cohort folder).
    mendelian
        ``mendelian_consistency``'s result (None: no trio).

    Returns
    -------
    dict
        ``verdict`` (pass only if everything passed), ``metrics`` (the generation metrics),
        ``checks`` (cohort-level), ``samples`` (per-sample table rows).
    """
    checks: list[Check] = [make_check(
        "generation", 1.0 if base.get("verdict") == "pass" else 0.0, low=1.0,
        source="finish_cohort", note="planned spikes in the joint VCF with their carriers")]
    n_pass = sum(1 for s in samples.values() if s["verdict"] == "pass")
    checks.append(make_check(
        "samples_passing", n_pass / len(samples) if samples else None, low=1.0,
        source="samples/<id>/qc/qc.json", note=f"{n_pass} of {len(samples)} samples pass",
        skip=None if samples else "no per-sample reads"))
    if mendelian is not None and mendelian["trios"]:
        bad = mendelian["n_unexplained"] + mendelian["n_missed"]
        checks.append(make_check(
            "mendelian_violations_unexplained", float(bad), expected=0.0, high=0.0,
            source="cohort.vcf.gz + cohort.ped",
            note=f"{mendelian['violations']} violations vs {mendelian['denovo']} flagged de "
                 "novo: unexplained + missed must be 0; "
                 f"{mendelian['spike_violations']} more at burden spikes planted in children"))
    table = [{"sample": sid, "verdict": s["verdict"], "qc_json": s.get("qc_json"),
              **{k: (s.get("headline") or {}).get(k) for k in (
                  "coverage_mean", "snv_recall", "indel_recall", "precision",
                  "checks_failed")}} for sid, s in sorted(samples.items())]
    verdict = "fail" if any(c.status == "fail" for c in checks) else "pass"
    return {"verdict": verdict, "metrics": base.get("metrics", {}),
            "checks": [c.to_dict() for c in checks], "samples": table,
            "mendelian": mendelian}


def qc_cohort_samples(*, cohort_dir: Path, base_dir: Path | None = None,
                      thresholds: dict | None = None, max_pairs: int | None = None
                      ) -> dict[str, dict]:
    """``run_qc`` on every per-sample dataset of a cohort folder, serially.

    Returns
    -------
    dict
        ``{sample id: {"verdict", "headline", "qc_json"}}``, ``qc_json`` relative to
        ``cohort_dir``.
    """
    from .run import run_qc

    out = {}
    for d in sample_dirs(cohort_dir):
        res = run_qc(dataset_dir=d, base_dir=base_dir, thresholds=thresholds, max_pairs=max_pairs)
        out[d.name] = {"verdict": res.verdict, "headline": res.headline(),
                       "qc_json": str((res.out_dir / "qc.json").relative_to(cohort_dir))}
    return out


def finish_cohort_qc(*, cohort_dir: Path, base: dict, samples: dict[str, dict]
                     ) -> tuple[dict[str, Any], list[str]]:
    """Cohort checks and aggregation after the samples' QC ran in ``cohort_dir``.

    Returns
    -------
    (qc, files)
        The cohort manifest's ``qc`` (``aggregate_cohort_qc``) and the files QC wrote under
        ``samples/<id>/qc/``, relative to ``cohort_dir`` (for the manifest's checksums).
    """
    cohort_dir = Path(cohort_dir)
    ped, vcf = cohort_dir / "cohort.ped", cohort_dir / "cohort.vcf.gz"
    mendel = None
    if ped.exists() and vcf.exists() and read_trios(ped):
        mendel = mendelian_consistency(joint_vcf=vcf, ped=ped)
    qc = aggregate_cohort_qc(base=base, samples=samples, mendelian=mendel)
    files = sorted(str(p.relative_to(cohort_dir)) for d in sample_dirs(cohort_dir)
                   for p in (d / "qc").glob("*") if p.is_file() and not p.name.endswith(".tmp"))
    return qc, files

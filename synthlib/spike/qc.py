"""QC of a spiked BAM: re-call the spiked sites and compare with what was asked for.

* **Recall**: bcftools (:func:`synthlib.qc.call.call_variants`) on the output BAM, restricted
  to the spiked small variants +- ``flank`` bp, must call each callable spike (requested VAF
  >= ``callable_vaf``) at the same normalized allele (trimmed, left-aligned).
* **VAF**: for every called spike, the ALT depth bcftools counted (``FORMAT/AD``) lies in
  the central ``level`` interval of Binomial(ref + alt depth, requested VAF). The spike edits
  ``floor(vaf * depth + 0.5)`` reads, so a correct spike sits at the interval's centre; the
  binomial width absorbs the reads bcftools drops (base quality, MAPQ) and is what a real
  sample at that VAF would show.
* **SVs**: depth after / depth before over each DEL/DUP/CNV (from the truth VCF) within
  ``sv_ratio_tolerance`` of the expected ratio.
* **Consistency**: :func:`synthlib.spike.validate.validate_bam` over the spiked regions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError
from ..qc.call import call_variants, write_bed
from ..qc.gate import make_check, verdict_of
from ..qc.normalize import normalize_allele
from ..qc.vaf import binomial_interval
from .spec import SpikeQC
from .validate import validate_bam

__all__ = ["check_spike"]

_FLANK = 150
_NORM_PAD = 500


def _norm(fasta: pysam.FastaFile, chrom: str, pos1: int, ref: str, alt: str
          ) -> tuple[str, int, str, str]:
    """Normalized ``(chrom, pos0, ref, alt)`` on a window (left-shifts stay within it)."""
    a = max(0, pos1 - 1 - _NORM_PAD)
    seq = fasta.fetch(chrom, a, pos1 - 1 + len(ref) + _NORM_PAD).upper()
    p, r, x = normalize_allele(seq=seq, pos=pos1 - 1 - a, ref=ref.upper(), alt=alt.upper())
    return chrom, p + a, r, x


def _regions(rows: list[dict], lengths: dict[str, int]) -> dict[str, np.ndarray]:
    by: dict[str, list[tuple[int, int]]] = {}
    for r in rows:
        a = max(0, r["pos"] - 1 - _FLANK)
        b = min(lengths[r["chrom"]], r["pos"] - 1 + len(r["ref"]) + _FLANK)
        by.setdefault(r["chrom"], []).append((a, b))
    out = {}
    for chrom in sorted(by, key=list(lengths).index):
        merged: list[list[int]] = []
        for a, b in sorted(by[chrom]):
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        out[chrom] = np.asarray(merged, np.int64).reshape(-1, 2)
    return out


def _read_truth(truth: Path) -> tuple[list[dict], list[dict]]:
    small, svs = [], []
    with pysam.VariantFile(str(truth)) as vf:
        for rec in vf:
            if "SVTYPE" in rec.info:
                svs.append({"chrom": rec.chrom, "pos": rec.pos, "svtype": rec.info["SVTYPE"],
                            "end": rec.stop, "before": float(rec.info["DP_BEFORE"]),
                            "after": float(rec.info["DP_AFTER"]),
                            "expected": float(rec.info["EXP_RATIO"]),
                            "window": tuple(rec.info["WINDOW"])})
            else:
                # INFO floats are float32: round off the 0.40000000596 noise
                small.append({"chrom": rec.chrom, "pos": rec.pos, "ref": rec.ref,
                              "alt": rec.alts[0],
                              "requested": round(float(rec.info["REQ_VAF"]), 6),
                              "realized": round(float(rec.info["VAF"]), 6),
                              "depth": int(rec.info["DP"]),
                              "alt_reads": int(rec.info["ALT_READS"])})
    return small, svs


def _calls(vcf: Path, fasta: pysam.FastaFile) -> dict[tuple, tuple[int, int]]:
    """Normalized allele -> (ref depth, alt depth) from FORMAT/AD."""
    out: dict[tuple, tuple[int, int]] = {}
    with pysam.VariantFile(str(vcf)) as vf:
        for rec in vf:
            ad = rec.samples[0].get("AD") if len(rec.samples) else None
            for i, alt in enumerate(rec.alts or ()):
                if alt.startswith("<") or alt == "*":
                    continue
                key = _norm(fasta, rec.chrom, rec.pos, rec.ref, alt)
                if ad is not None and None not in ad:
                    out[key] = (int(ad[0]), int(ad[i + 1]))
                else:
                    out[key] = (0, 0)
    return out


def check_spike(*, bam: Path, reference: Path, truth: Path, workdir: Path,
                thresholds: SpikeQC | None = None, min_mapq: int = 0) -> dict:
    """Re-call the spiked small variants, check VAFs, SV depth ratios and record consistency.

    Parameters
    ----------
    bam
        The spiked, indexed BAM (a CRAM works too: bcftools decodes it with ``reference``).
    reference
        Local FASTA (with ``.fai``; bgzipped also ``.gzi``).
    truth
        Truth VCF written by :func:`synthlib.spike.spike_bam`.
    workdir
        Where ``calls.vcf.gz`` (+ ``.csi``) and ``regions.bed`` are written.
    thresholds
        :class:`~synthlib.spike.spec.SpikeQC` (defaults when None).
    min_mapq
        MAPQ floor of the pileup (the spike's own; 0 counts every read the spike counted).

    Returns
    -------
    dict
        ``verdict`` (``pass``/``fail``), ``checks`` (list of check dicts), ``metrics``
        (headline numbers), ``variants`` (one row per small spike: requested, realized,
        called ref/alt depth, interval) and ``svs``; ``calls`` names the VCF.

    Raises
    ------
    QCError
        bcftools failed, or an input is missing.
    """
    qc = thresholds or SpikeQC()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if not Path(truth).exists():
        raise QCError("truth VCF of the spike not found", where=str(truth))
    small, svs = _read_truth(Path(truth))
    checks = []
    rows: list[dict] = []
    calls_path = None
    with pysam.FastaFile(str(reference)) as fasta:
        lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
        if small:
            bed = write_bed(_regions(small, lengths), workdir / "regions.bed")
            calls_path, _ = call_variants(bam=Path(bam), reference=Path(reference),
                                          regions_bed=bed, out_vcf=workdir / "calls.vcf.gz",
                                          max_depth=10_000, min_mapq=min_mapq)
            called = _calls(calls_path, fasta)
            for t in small:
                key = _norm(fasta, t["chrom"], t["pos"], t["ref"], t["alt"])
                ad = called.get(key)
                row = {**t, "called": ad is not None, "callable":
                       t["requested"] >= qc.callable_vaf}
                if ad is not None:
                    n = ad[0] + ad[1]
                    lo, hi = binomial_interval(n, t["requested"], level=qc.level)
                    row.update(ref_depth=ad[0], alt_depth=ad[1], called_vaf=ad[1] / n if n else
                               None, interval=[lo, hi], vaf_ok=bool(n and lo <= ad[1] <= hi))
                rows.append(row)
            callable_ = [r for r in rows if r["callable"]]
            recall = (sum(r["called"] for r in callable_) / len(callable_)
                      if callable_ else None)
            checks.append(make_check(
                "spike_recall", recall, low=qc.min_recall, expected=1.0, source="bcftools",
                note=f"{len(callable_)} spikes with requested VAF >= {qc.callable_vaf:g}"))
            measured = [r for r in rows if r["called"]]
            in_bounds = (sum(r["vaf_ok"] for r in measured) / len(measured)
                         if measured else None)
            checks.append(make_check(
                "spike_vaf_in_binomial_bounds", in_bounds, low=1.0, expected=1.0,
                source="bcftools FORMAT/AD",
                note=f"central {qc.level:g} interval of Binomial(DP, requested VAF)"))
    sv_rows = []
    for s in svs:
        ratio = s["after"] / s["before"] if s["before"] > 0 else None
        ok = None
        if s["svtype"] in ("DEL", "DUP", "CNV") and ratio is not None:
            ok = abs(ratio - s["expected"]) <= qc.sv_ratio_tolerance
        sv_rows.append({**s, "ratio": ratio, "ratio_ok": ok})
    judged = [r for r in sv_rows if r["ratio_ok"] is not None]
    if judged:
        checks.append(make_check(
            "sv_depth_ratio", sum(r["ratio_ok"] for r in judged) / len(judged), low=1.0,
            expected=1.0, source="truth DP_BEFORE/DP_AFTER",
            note=f"|after/before - expected| <= {qc.sv_ratio_tolerance:g} per DEL/DUP/CNV"))
    issues = 0
    spans = [(t["chrom"], t["pos"] - 1 - _FLANK, t["pos"] + len(t["ref"]) + _FLANK)
             for t in small]
    spans += [(s["chrom"], s["window"][0] - 1, s["window"][1]) for s in svs]
    for chrom, a, b in spans:
        issues += len(validate_bam(bam=bam, reference=reference,
                                   region=f"{chrom}:{max(1, a + 1)}-{b}"))
    checks.append(make_check("invalid_records", issues, high=qc.max_invalid_records,
                             expected=0, source="validate_bam",
                             note="MD/NM, CIGAR, mate fields and order in the spiked regions"))
    called_n = sum(r["called"] for r in rows)
    return {
        "verdict": verdict_of(checks),
        "checks": [c.to_dict() for c in checks],
        "metrics": {
            "small_variants": len(rows),
            "small_called": called_n,
            "structural_variants": len(sv_rows),
            "invalid_records": issues,
            **{c.name: c.value for c in checks},
        },
        "variants": rows,
        "svs": sv_rows,
        "calls": str(calls_path) if calls_path else None,
    }

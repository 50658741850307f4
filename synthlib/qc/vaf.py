"""Somatic VAF accuracy: realized allele fractions in the re-aligned reads vs the truth's targets.

The simulator draws, for every fragment, a cell coordinate ``u`` and shows a somatic variant
with threshold ``t = 2 * vaf / alleles`` on a carrying haplotype when ``u < t``
(:mod:`synthlib.reads.simulate`), so a fragment over the site carries the alt allele with
probability exactly the truth's ``INFO/VAF`` (purity is already folded into it: the spec
bounds ``vaf`` by ``purity / 2``). Fragments are independent, so the alt count over ``n``
fragments is Binomial(n, VAF). Counting is per fragment (both mates over a site count once)
because overlapping mates carry the same draw and would overdisperse a per-read count.

Indels are matched by the haplotype they produce, not by their CIGAR position: a read's gap is
the truth's when deleting (inserting) it yields the same local sequence, which absorbs the
aligner's placement of gaps in repeats.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError
from ..reference import Reference

__all__ = ["binomial_interval", "somatic_vaf", "VAF_BINS"]

#: Upper edges of the VAF strata of the summary.
VAF_BINS = (0.02, 0.05, 0.1, 0.2, 0.35, 1.0)
_FLANK = 60


def binomial_interval(n: int, p: float, *, level: float = 0.999) -> tuple[int, int]:
    """Central interval ``[lo, hi]`` of alt counts holding at least ``level`` of Binomial(n, p).

    Returns
    -------
    (int, int)
        ``P(X < lo) <= (1 - level) / 2`` and ``P(X > hi) <= (1 - level) / 2``.
    """
    if n < 0 or not 0.0 <= p <= 1.0:
        raise QCError(f"binomial_interval needs n >= 0 and 0 <= p <= 1, got {n}, {p}")
    if n == 0:
        return 0, 0
    if p in (0.0, 1.0):
        return (0, 0) if p == 0.0 else (n, n)
    k = np.arange(n + 1)
    logpmf = (np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        for i in k]) + k * math.log(p) + (n - k) * math.log1p(-p))
    cdf = np.cumsum(np.exp(logpmf))
    tail = (1.0 - level) / 2
    lo = int(np.searchsorted(cdf, tail, side="right"))  # first k with P(X <= k) > tail
    sf = 1.0 - cdf  # P(X > k)
    hi = int(np.argmax(sf <= tail))
    return lo, hi


def _binom_two_sided_p(k: int, n: int, p: float) -> float:
    """Two-sided p-value: twice the smaller tail, capped at 1."""
    if n == 0:
        return 1.0
    ks = np.arange(n + 1)
    logpmf = (np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        for i in ks]) + ks * math.log(max(p, 1e-300))
              + (n - ks) * math.log1p(-min(p, 1 - 1e-16)))
    pmf = np.exp(logpmf)
    return float(min(1.0, 2 * min(pmf[:k + 1].sum(), pmf[k:].sum())))


def _gap_extent(local: str, i: int, ref: str, alt: str) -> tuple[int, int]:
    """Window offsets ``[lo, hi)`` spanned by every placement of an indel equivalent to
    ``ref -> alt`` at offset ``i`` (the gap slides along a repeat without changing the
    haplotype)."""
    n_ref = len(ref)

    def placed(j: int) -> str:
        if len(alt) > n_ref:  # insertion of alt[1:] after base j
            return local[:j + 1] + alt[1:] + local[j + n_ref:]
        return local[:j + 1] + local[j + n_ref:]  # deletion of the bases after j

    want = placed(i)
    lo = hi = i
    while lo - 1 >= 0 and placed(lo - 1) == want:
        lo -= 1
    while hi + n_ref < len(local) and placed(hi + 1) == want:
        hi += 1
    return lo, hi + n_ref + 1


def _allele_of(read: pysam.AlignedSegment, pos: int, ref: str, alt: str, local: str,
               lstart: int) -> str | None:
    """``alt``, ``ref``, ``other`` or None (read does not span the site) for one read.

    ``local`` is the reference over ``[lstart, lstart + len(local))`` around the site.
    """
    if len(ref) == len(alt):
        pairs = {rp: qp for qp, rp in read.get_aligned_pairs(matches_only=True)}
        qs = [pairs.get(pos + i) for i in range(len(ref))]
        if any(q is None for q in qs):
            return None
        seq = read.query_sequence
        got = "".join(seq[q] for q in qs)
        return "alt" if got == alt else "ref" if got == ref else "other"
    # Indel: rebuild the read's haplotype over the local window and compare with both alleles.
    a, b = lstart, lstart + len(local)
    hap_alt = local[:pos - a] + alt + local[pos - a + len(ref):]
    # A read must cover every placement of the gap (repeat context) plus a few bases, or its
    # end inside a repeat would read as the reference whatever it carries.
    lo, hi = _gap_extent(local, pos - a, ref, alt)
    if read.reference_start > a + lo - 5 or read.reference_end < a + hi + 5:
        return None
    seq = read.query_sequence
    pieces, rpos = [], read.reference_start
    qpos = 0
    for op, ln in read.cigartuples:
        if op in (0, 7, 8):
            pieces.append(("M", rpos, qpos, ln))
            rpos += ln
            qpos += ln
        elif op == 1:
            pieces.append(("I", rpos, qpos, ln))
            qpos += ln
        elif op in (2, 3):
            pieces.append(("D", rpos, qpos, ln))
            rpos += ln
        elif op == 4:
            qpos += ln
    # Read haplotype restricted to the window: reference bases outside the read's span are
    # filled from the reference so only the read's own gaps can differ.
    out = [local[:max(0, read.reference_start - a)]]
    for kind, rp, qp, ln in pieces:
        if kind == "M":
            s, e = max(rp, a), min(rp + ln, b)
            if s < e:
                out.append(seq[qp + s - rp:qp + e - rp])
        elif kind == "I" and a < rp < b:
            out.append(seq[qp:qp + ln])
    out.append(local[max(0, read.reference_end - a):])
    got = "".join(out)
    if got == hap_alt:
        return "alt"
    if got == local:
        return "ref"
    # Substitutions (sequencing errors) elsewhere in the window: classify by the gap alone.
    gap = sum(ln if k == "I" else -ln for k, rp, _, ln in pieces
              if k in ("I", "D") and a < rp < b)
    if gap == len(alt) - len(ref):
        return "alt"
    return "ref" if gap == 0 else "other"


def somatic_vaf(
    *, bam: Path, truth_vcf: Path, reference: Reference, min_mapq: int = 20,
    level: float = 0.999,
) -> dict:
    """Realized VAF of every somatic truth SNV/MNV/indel in a (re-aligned) BAM.

    Parameters
    ----------
    bam
        Indexed, coordinate-sorted BAM (the QC aligner's output).
    truth_vcf
        Truth VCF; records with ``INFO/VAF`` (``SRC=somatic``) are measured.
    reference
        The dataset's reference.
    min_mapq
        Reads below this mapping quality are ignored.
    level
        Coverage of the binomial interval each realized count is tested against.

    Returns
    -------
    dict
        ``variants``: list of dicts (``vid``, ``chrom``, ``pos`` 1-based, ``ref``, ``alt``,
        ``type``, ``target``, ``expected``, ``alt_reads``, ``depth`` (fragments showing ref
        or alt), ``other``, ``realized``, ``lo``/``hi`` (binomial interval of the alt count),
        ``inside``, ``z``, ``p``); ``summary``: ``n``, ``measured``, ``inside_fraction``,
        ``mae``, ``mean_depth``, ``by_bin`` (per VAF stratum: n, inside, mae); and parallel
        lists ``target`` / ``realized`` for plotting.
    """
    for p in (bam, truth_vcf):
        if not Path(p).exists():
            raise QCError("file not found", where=str(p))
    if not 0 < level < 1:
        raise QCError(f"level must be in (0, 1), got {level}")
    rows = []
    with pysam.VariantFile(str(truth_vcf)) as vf, pysam.AlignmentFile(str(bam)) as fh:
        for rec in vf:
            if "VAF" not in rec.info or rec.info.get("SVTYPE") or not rec.alts:
                continue
            alt = rec.alts[0]
            if alt.startswith("<"):
                continue
            target = round(float(rec.info["VAF"]), 6)  # INFO floats are float32
            pos = rec.start
            lstart = max(0, pos - _FLANK)
            local = reference.fetch(rec.contig, lstart, rec.stop + _FLANK).decode()
            frag: dict[str, str] = {}
            for r in fh.fetch(rec.contig, pos, rec.stop):
                if r.flag & 0xF04 or r.mapping_quality < min_mapq:
                    continue
                a = _allele_of(r, pos, rec.ref, alt, local, lstart)
                if a is None:
                    continue
                prev = frag.get(r.query_name)
                # Mates disagreeing means a sequencing error on one: the allele call wins.
                if prev is None or (prev == "other" and a != "other"):
                    frag[r.query_name] = a
            k = sum(v == "alt" for v in frag.values())
            n = sum(v in ("alt", "ref") for v in frag.values())
            lo, hi = binomial_interval(n, target, level=level)
            sd = math.sqrt(n * target * (1 - target)) if n else 0.0
            rows.append({
                "vid": rec.id, "chrom": rec.contig, "pos": rec.pos, "ref": rec.ref, "alt": alt,
                "type": "SNV" if len(rec.ref) == len(alt) == 1 else
                        "MNV" if len(rec.ref) == len(alt) else "indel",
                "target": target, "expected": target, "alt_reads": k, "depth": n,
                "other": sum(v == "other" for v in frag.values()),
                "realized": k / n if n else None, "lo": lo, "hi": hi,
                "inside": bool(n and lo <= k <= hi),
                "z": (k - n * target) / sd if sd else None,
                "p": _binom_two_sided_p(k, n, target),
            })
    return {"variants": rows, "summary": _summary(rows), "level": level,
            "target": [r["target"] for r in rows],
            "realized": [r["realized"] for r in rows]}


def _summary(rows: list[dict]) -> dict:
    measured = [r for r in rows if r["depth"]]
    out: dict = {"n": len(rows), "measured": len(measured)}
    if not measured:
        return {**out, "inside_fraction": None, "mae": None, "mean_depth": None, "by_bin": {}}
    err = [abs(r["realized"] - r["expected"]) for r in measured]
    out["inside_fraction"] = sum(r["inside"] for r in measured) / len(measured)
    out["mae"] = float(np.mean(err))
    out["mean_depth"] = float(np.mean([r["depth"] for r in measured]))
    by: dict[str, dict] = {}
    lo = 0.0
    for hi in VAF_BINS:
        sel = [r for r in measured if lo < r["target"] <= hi]
        if sel:
            by[f"({lo:g},{hi:g}]"] = {
                "n": len(sel), "inside": sum(r["inside"] for r in sel),
                "mae": float(np.mean([abs(r["realized"] - r["expected"]) for r in sel])),
                "mean_realized": float(np.mean([r["realized"] for r in sel])),
                "mean_target": float(np.mean([r["target"] for r in sel]))}
        lo = hi
    out["by_bin"] = by
    return out

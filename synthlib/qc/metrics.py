"""Conformance metrics: what a dataset's files show, next to what its spec and model promise.

Each function measures one thing and returns JSON-ready numbers together with the expectation
the model gives (``expected``) and a standard error where sampling makes one meaningful; the
gate (``gate.py``) turns them into pass/fail checks.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError
from ..reads.errormodel import BANK_SIZE, ErrorModel
from ..reads.fragments import fragment_moments
from ..reference import Reference
from ..spec import DatasetSpec

__all__ = [
    "DepthTrack",
    "depth_tracks",
    "coverage_metrics",
    "golden_read_stats",
    "mismatch_rate",
    "quality_by_cycle",
    "insert_size_metrics",
    "truth_set_metrics",
    "expected_fragment_moments",
    "poisson_fold80",
    "variant_mask",
]

_TRANSITIONS = {("A", "G"), ("G", "A"), ("C", "T"), ("T", "C")}
_HIST_BINS = 201  # depth 0..199 and ">= 200" (as multiples of the mean for deep data)


class DepthTrack:
    """Per-base depth over one interval ``[start, end)`` of one contig.

    Attributes
    ----------
    depth : np.ndarray, int32 (end - start,)
        Reads whose aligned span covers the base (deletions inside a read count as covered).
    """

    __slots__ = ("contig", "start", "end", "depth")

    def __init__(self, contig: str, start: int, end: int) -> None:
        self.contig, self.start, self.end = contig, int(start), int(end)
        self.depth = np.zeros(self.end - self.start + 1, np.int64)  # diff array until closed

    def add(self, starts: np.ndarray, ends: np.ndarray) -> None:
        s = np.clip(starts - self.start, 0, self.end - self.start)
        e = np.clip(ends - self.start, 0, self.end - self.start)
        np.add.at(self.depth, s, 1)
        np.add.at(self.depth, e, -1)

    def close(self) -> None:
        self.depth = np.cumsum(self.depth[:-1]).astype(np.int32)


def depth_tracks(
    *, bam: Path, intervals: dict[str, np.ndarray], min_mapq: int = 0,
    on_read: object = None,
) -> list[DepthTrack]:
    """Depth of primary, mapped, non-duplicate reads over each interval.

    Parameters
    ----------
    bam
        Indexed BAM.
    intervals
        ``{contig: (k, 2) int64}`` merged half-open intervals.
    min_mapq
        Reads below this mapping quality are not counted.
    on_read
        Optional callable ``on_read(read)`` called once per counted read overlapping the
        intervals (a read spanning two intervals is passed once), e.g. to collect inserts.

    Returns
    -------
    list of DepthTrack
        One per interval, in input order.
    """
    tracks = []
    with pysam.AlignmentFile(str(bam)) as fh:
        for contig, iv in intervals.items():
            prev_end = -1
            for s, e in np.asarray(iv, np.int64).reshape(-1, 2):
                tr = DepthTrack(contig, s, e)
                starts, ends = [], []
                for r in fh.fetch(contig, int(s), int(e)):
                    if r.flag & 0xF04 or r.mapping_quality < min_mapq:
                        continue  # unmapped, secondary, qc-fail, duplicate, supplementary
                    starts.append(r.reference_start)
                    ends.append(r.reference_end)
                    # A read starting before prev_end was seen with the previous interval.
                    if on_read is not None and r.reference_start >= prev_end:
                        on_read(r)
                tr.add(np.asarray(starts, np.int64), np.asarray(ends, np.int64))
                tr.close()
                tracks.append(tr)
                prev_end = int(e)
    return tracks


def poisson_fold80(mean: float) -> float:
    """Fold-80 base penalty of Poisson depth with this mean: ``mean / 20th percentile``."""
    if mean <= 0:
        return float("nan")
    k, cdf = 0, 0.0
    while True:
        cdf += math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1))
        if cdf >= 0.2:
            return mean / max(k, 1)
        k += 1


def coverage_metrics(tracks: list[DepthTrack], *, targets: dict[str, np.ndarray] | None = None
                     ) -> dict:
    """Mean/median depth, distribution, fold-80 penalty and per-target means.

    Parameters
    ----------
    tracks
        Depth over the territory.
    targets
        Unpadded targets (exome/panel): per-target mean depth is reported for those inside
        the tracks.

    Returns
    -------
    dict
        ``mean``, ``median``, ``sd``, ``fold80``, ``pct_ge`` (fraction of bases at >= 1, 10,
        20, 30, 50, 100x), ``histogram`` (counts of bases at depth 0..199, last bin >= 200
        when the mean is below 100, else depth in bins of ``mean / 50``), ``bases``, and
        ``per_target`` (list of ``[contig, start, end, mean]``) when targets are given.
    """
    if not tracks:
        raise QCError("no territory to measure coverage over")
    d = np.concatenate([t.depth for t in tracks]).astype(np.int64)
    if not d.size:
        raise QCError("territory has no bases")
    mean = float(d.mean())
    p20 = float(np.percentile(d, 20))
    width = 1 if mean < 100 else max(1, int(round(mean / 50)))
    hist = np.bincount(np.minimum(d // width, _HIST_BINS - 1), minlength=_HIST_BINS)
    out = {
        "bases": int(d.size),
        "mean": mean,
        "median": float(np.median(d)),
        "sd": float(d.std()),
        "fold80": mean / p20 if p20 > 0 else None,
        "pct_ge": {str(x): float(np.mean(d >= x)) for x in (1, 10, 20, 30, 50, 100)},
        "histogram": {"bin_width": width, "counts": hist.tolist()},
    }
    if targets is not None:
        per = []
        for tr in tracks:
            tg = targets.get(tr.contig)
            if tg is None:
                continue
            for s, e in tg:
                a, b = max(int(s), tr.start), min(int(e), tr.end)
                if a < b:
                    per.append([tr.contig, int(s), int(e),
                                float(tr.depth[a - tr.start:b - tr.start].mean())])
        out["per_target"] = per
    return out


def variant_mask(truth_vcf: Path, intervals: dict[str, np.ndarray], *, indel_margin: int = 10
                 ) -> dict[str, np.ndarray]:
    """Reference positions touched by truth variants, as sorted int64 arrays per contig.

    SNV/MNV bases are masked exactly; indels with ``indel_margin`` bases either side, since a
    read aligned across an indel near its end may show it as mismatches.
    """
    out: dict[str, list[np.ndarray]] = {}
    with pysam.VariantFile(str(truth_vcf)) as vf:
        for rec in vf:
            if rec.contig not in intervals:
                continue
            alts = rec.alts or ()
            s = rec.start
            if any(len(a) != len(rec.ref) for a in alts):
                pos = np.arange(s - indel_margin, rec.stop + indel_margin + 1)
            else:
                pos = np.arange(s, rec.stop)
            out.setdefault(rec.contig, []).append(pos)
    return {c: np.unique(np.concatenate(v)) for c, v in out.items()}


def mismatch_rate(
    *, reads: Iterable[tuple[str, int, bytes]], reference: Reference,
    masked: dict[str, np.ndarray],
) -> dict:
    """Fraction of read bases that differ from the reference, away from truth variants.

    Parameters
    ----------
    reads
        ``(contig, start, bases)`` of reads aligned without indels (reference orientation).
    masked
        Positions excluded per contig (``variant_mask``).

    Returns
    -------
    dict
        ``rate`` (mismatches, not N, per base, N included in the denominator as the model's
        ``expected_error_rate`` is), ``mismatches``, ``bases``, ``n_bases``, ``reads``.
    """
    groups: dict[tuple[str, int, int], list[tuple[int, bytes]]] = {}
    for contig, start, seq in reads:
        groups.setdefault((contig, start >> 20, len(seq)), []).append((start, seq))
    mism = bases = nbases = nreads = 0
    for (contig, bucket, length), items in groups.items():
        lo = bucket << 20
        hi = min(reference.lengths[contig], ((bucket + 1) << 20) + length + 1)
        ref = np.frombuffer(reference.fetch(contig, lo, hi), np.uint8)
        starts = np.fromiter((s for s, _ in items), np.int64, len(items))
        seqs = np.frombuffer(b"".join(q for _, q in items), np.uint8).reshape(-1, length)
        idx = (starts - lo)[:, None] + np.arange(length)
        ok_rows = idx[:, -1] < len(ref)
        idx, seqs = idx[ok_rows], seqs[ok_rows]
        r = ref[idx]
        keep = np.ones(idx.shape, bool)
        mk = masked.get(contig)
        if mk is not None and mk.size:
            keep &= ~np.isin(idx + lo, mk)
        keep &= r != ord("N")
        is_n = seqs == ord("N")
        mism += int(np.count_nonzero(keep & ~is_n & (seqs != r)))
        bases += int(np.count_nonzero(keep))
        nbases += int(np.count_nonzero(keep & is_n))
        nreads += int(len(seqs))
    return {"rate": mism / bases if bases else None, "mismatches": mism, "bases": bases,
            "n_bases": nbases, "reads": nreads}


class _GoldenCollector:
    """Per-read callback of ``depth_tracks`` over the golden BAM: insert sizes and a sample of
    indel-free reads for the mismatch rate."""

    def __init__(self, every: int, limit: int) -> None:
        self.every, self.limit = max(1, every), limit
        self.tlen: list[int] = []
        self.reads: list[tuple[str, int, bytes]] = []
        self.dup_flagged = 0
        self.seen = 0
        self._k = 0

    def __call__(self, r: pysam.AlignedSegment) -> None:
        self.seen += 1
        if r.flag & 0x400:
            self.dup_flagged += 1
        if r.template_length > 0 and r.flag & 0x2:
            self.tlen.append(r.template_length)
        self._k += 1
        if self._k % self.every == 0 and len(self.reads) < self.limit:
            cig = r.cigartuples
            if cig is not None and len(cig) == 1 and cig[0][0] == 0:
                self.reads.append((r.reference_name, r.reference_start, r.query_sequence.encode()))


def golden_read_stats(*, bam: Path, intervals: dict[str, np.ndarray], expected_reads: int,
                      sample_reads: int = 60_000) -> tuple[list[DepthTrack], dict]:
    """Depth over ``intervals`` plus insert sizes, duplicates and a read sample from one pass.

    Returns
    -------
    (list of DepthTrack, dict)
        The dict holds ``tlen`` (int64 (n,) template lengths of proper pairs, one per pair),
        ``reads`` (the mismatch sample), ``reads_seen`` and ``duplicates_flagged``.
    """
    col = _GoldenCollector(expected_reads // max(1, sample_reads), sample_reads)
    tracks = depth_tracks(bam=bam, intervals=intervals, on_read=col)
    return tracks, {"tlen": np.asarray(col.tlen, np.int64), "reads": col.reads,
                    "reads_seen": col.seen, "duplicates_flagged": col.dup_flagged}


def quality_by_cycle(*, fastq: Path, max_reads: int = 200_000) -> dict:
    """Mean Phred quality at each cycle of the first ``max_reads`` reads of a FASTQ.

    Returns
    -------
    dict
        ``mean`` (list, (L,)), ``reads``, ``read_length``; reads of another length are skipped.
    """
    from itertools import islice

    from isal import igzip

    with igzip.open(str(fastq), "rb") as fh:
        quals = [line.rstrip(b"\n") for line in islice(fh, 3, 4 * max_reads, 4)]
    if not quals:
        raise QCError("FASTQ has no reads", where=str(fastq))
    length = max(set(map(len, quals)), key=[len(q) for q in quals].count)
    same = [q for q in quals if len(q) == length]
    m = np.frombuffer(b"".join(same), np.uint8).reshape(-1, length).astype(np.float64) - 33
    return {"mean": m.mean(axis=0).tolist(), "reads": len(same), "read_length": length}


def expected_quality(model: ErrorModel, read_number: int) -> tuple[np.ndarray, np.ndarray]:
    """Model mean and standard deviation of the quality at each cycle, shapes (L,), (L,)."""
    dist = model.cycle_bin_distribution(read_number)
    qv = model.quality_values.astype(np.float64)
    mean = dist @ qv
    var = np.maximum(dist @ (qv ** 2) - mean ** 2, 0.0)
    return mean, np.sqrt(var)


def quality_check_inputs(model: ErrorModel, observed: dict, read_number: int) -> dict:
    """Per-cycle observed vs expected quality and the tolerance per cycle.

    Qualities come from a bank of ``BANK_SIZE`` pre-drawn strings, so the realized mean per
    cycle scatters around the model's with SE = sd / sqrt(min(reads, BANK_SIZE)).
    """
    mean, sd = expected_quality(model, read_number)
    obs = np.asarray(observed["mean"], np.float64)
    if obs.size != mean.size:
        raise QCError(f"read {read_number} has {obs.size} cycles, the model {mean.size}")
    se = sd / math.sqrt(min(observed["reads"], BANK_SIZE))
    return {"observed": obs, "expected": mean, "se": se}


def expected_fragment_moments(
    spec: DatasetSpec, *, base_dir: Path | None = None,
) -> tuple[float, float]:
    """Mean and sd of the simulator's fragment lengths: a normal rounded to integers and
    truncated to ``[min, max]`` (``[max(min, read length), max]`` without adapter read-through,
    ``library.adapters: false``), as ``synthlib.reads.simulate`` draws them. For
    ``fragment.model: empirical`` the learned histogram's exact moments over the same bounds
    (``synthlib.reads.fragments``; ``base_dir`` resolves a relative histogram path).

    Capture (exome/panel) leaves the length distribution alone: a captured fragment's start is
    ``x - u`` with ``x`` a bait base and ``u ~ U[0, L)``, so a target's start mass is
    ``w * len * L / L``, the same for every length ``L`` (``synthlib.reads.capture``).
    """
    fr = spec.fragment
    if fr.model == "empirical":
        return fragment_moments(spec, base_dir=base_dir)
    lo = fr.min if spec.library.adapters else max(fr.min, spec.reads.length)
    hi = fr.max
    if fr.sd == 0:
        return float(fr.mean), 0.0
    a, b = (lo - 0.5 - fr.mean) / fr.sd, (hi + 0.5 - fr.mean) / fr.sd

    def pdf(x: float) -> float:
        return math.exp(-x * x / 2) / math.sqrt(2 * math.pi)

    def cdf(x: float) -> float:
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    z = cdf(b) - cdf(a)
    mean = fr.mean + fr.sd * (pdf(a) - pdf(b)) / z
    var = fr.sd ** 2 * (1 + (a * pdf(a) - b * pdf(b)) / z - ((pdf(a) - pdf(b)) / z) ** 2)
    return mean, math.sqrt(var + 1 / 12)


def insert_size_metrics(tlen: np.ndarray) -> dict:
    """Mean, sd, quantiles and a 10 bp histogram of template lengths, shape (n,)."""
    t = np.asarray(tlen, np.int64)
    if not t.size:
        return {"n": 0, "mean": None, "sd": None}
    edges = np.arange(0, int(t.max()) + 20, 10)
    counts, _ = np.histogram(t, bins=edges)
    return {"n": int(t.size), "mean": float(t.mean()), "sd": float(t.std(ddof=1)) if t.size > 1
            else 0.0, "median": float(np.median(t)),
            "histogram": {"bin_width": 10, "start": 0, "counts": counts.tolist()}}


def truth_set_metrics(truth_vcf: Path, *, sample: str | None = None) -> dict:
    """Counts by type and source, Ti/Tv and het/hom of the truth VCF.

    Returns
    -------
    dict
        ``variants``, ``by_type``, ``by_source``, ``snv_titv`` (all), ``germline_snv_titv`` and
        ``germline_snvs`` / ``germline_transitions`` (for its standard error), ``het``,
        ``hom``, ``het_hom_ratio``.
    """
    by_type: dict[str, int] = {}
    by_source: dict[str, int] = {}
    ti = tv = gti = gtv = het = hom = 0
    with pysam.VariantFile(str(truth_vcf)) as vf:
        smp = sample or (list(vf.header.samples)[0] if vf.header.samples else None)
        for rec in vf:
            src = str(rec.info.get("SRC", "unknown"))
            by_source[src] = by_source.get(src, 0) + 1
            alt = (rec.alts or ("",))[0]
            vt = rec.info.get("VT") or _vtype(rec.ref, alt)
            by_type[vt] = by_type.get(vt, 0) + 1
            if len(rec.ref) == 1 and len(alt) == 1:
                is_ti = (rec.ref, alt) in _TRANSITIONS
                ti, tv = ti + is_ti, tv + (not is_ti)
                if src == "germline":
                    gti, gtv = gti + is_ti, gtv + (not is_ti)
            if smp is not None:
                gt = [a for a in (rec.samples[smp].get("GT") or ()) if a is not None]
                if len(gt) == 2 and any(gt):
                    if gt[0] == gt[1]:
                        hom += 1
                    else:
                        het += 1
    return {
        "variants": sum(by_type.values()), "by_type": by_type, "by_source": by_source,
        "snv_titv": ti / tv if tv else None,
        "germline_snv_titv": gti / gtv if gtv else None,
        "germline_snvs": gti + gtv, "germline_transitions": gti,
        "het": het, "hom": hom, "het_hom_ratio": het / hom if hom else None,
    }


def _vtype(ref: str, alt: str) -> str:
    if len(ref) == len(alt):
        return "SNV" if len(ref) == 1 else "MNV"
    if len(ref) == 1 and alt.startswith(ref):
        return "INS"
    if len(alt) == 1 and ref.startswith(alt):
        return "DEL"
    return "COMPLEX"

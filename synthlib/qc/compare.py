"""Compare a query VCF against a truth VCF, GA4GH style, for any pair of VCFs.

Matching runs in stages, each on what the previous left unmatched:

1. **exact**: identical normalized allele (``normalize.py`` splits, trims and left-aligns);
2. **mnv-split**: an MNV whose every SNV is present, unmatched, on the other side;
3. **haplotype**: nearby unmatched small variants are clustered; within a cluster, the
   largest subsets of truth and of query alleles that turn the reference window into the
   same sequence are matched (so an MNV matches two SNVs and a complex allele matches its
   decomposition), repeated until no further pair is found;
4. **sv**: structural variants by type, breakpoint tolerance and reciprocal overlap.

Two stringencies are reported. *Allele*: an allele-matched variant is a TP whatever its
genotype. *Genotype*: the genotype must agree as well (unphased; for haplotype matches, the
haplotypes built from the hom-alt members must agree too); otherwise the truth variant is
an FN and the query variant an FP.

Counting follows hap.py: truth variants give TP and FN (recall = TP / (TP + FN)), query
variants give TP_query and FP (precision = TP_query / (TP_query + FP)); an MNV matched by
two SNVs is one truth TP and two query TPs.
"""

from __future__ import annotations

import gc
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import QCError
from .normalize import (
    Atom,
    ReferenceCache,
    RegionSet,
    decompose_mnv,
    read_atoms,
    size_bin,
)
from .svmatch import SVCall, match_svs

__all__ = ["MatchRecord", "ComparisonResult", "compare_vcfs", "VAF_BINS"]

#: Edges of the VAF strata; the last bin includes 1.0.
VAF_BINS = (0.0, 0.05, 0.1, 0.2, 0.5, 1.0)

_STRINGENCIES = ("allele", "genotype")
_FRAME_COLUMNS = [
    "side", "vid", "chrom", "pos", "ref", "alt", "type", "zygosity", "vaf", "vaf_bin",
    "region", "allele", "genotype", "method", "partners",
]


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """The fate of one normalized variant of the truth or the query.

    Attributes
    ----------
    side
        ``truth`` or ``query``.
    vid
        Original record, ``chrom:POS:REF>ALT``.
    chrom, pos, ref, alt
        Normalized allele (``pos`` 1-based, as in VCF).
    type
        By-type stratum, e.g. ``SNV``, ``DEL:6-15``, ``SV:DUP``.
    zygosity
        Stratum used for the zygosity breakdown: the truth genotype for truth variants and
        for matched query variants, the query's own for unmatched query variants.
    allele_status, genotype_status
        ``TP``, ``FN`` (truth) or ``FP`` (query); ``UNK`` outside the ``regions`` BED.
    method
        ``exact``, ``mnv-split``, ``haplotype``, ``sv`` or ``""`` when unmatched.
    partners
        ``vid`` of the variants on the other side it was matched with.
    """

    side: str
    vid: str
    chrom: str
    pos: int
    ref: str
    alt: str
    type: str
    zygosity: str
    allele_status: str
    genotype_status: str
    method: str
    partners: tuple[str, ...]


def _rate(num: int, den: int) -> float | None:
    return num / den if den else None


def _metrics(tp: int, tp_query: int, fp: int, fn: int) -> dict[str, Any]:
    precision = _rate(tp_query, tp_query + fp)
    recall = _rate(tp, tp + fn)
    if precision is None or recall is None:
        f1 = None
    elif precision + recall == 0:
        f1 = 0.0
    else:
        f1 = 2 * precision * recall / (precision + recall)
    return {
        "tp": tp, "tp_query": tp_query, "fp": fp, "fn": fn,
        "truth_total": tp + fn, "query_total": tp_query + fp,
        "precision": precision, "recall": recall, "f1": f1,
    }


def _type_order(name: str) -> tuple[int, str]:
    order = ["SNV", "MNV", "INS:1-5", "INS:6-15", "INS:16-50", "INS:>50",
             "DEL:1-5", "DEL:6-15", "DEL:16-50", "DEL:>50"]
    return (order.index(name), "") if name in order else (len(order), name)


class ComparisonResult:
    """Outcome of ``compare_vcfs``: per-variant fates plus summary metrics.

    Parameters
    ----------
    frame
        One row per normalized variant of either side (columns as ``frame`` below).
    settings
        The parameters the comparison ran with (reported in ``to_dict``).
    """

    def __init__(self, frame: pd.DataFrame, settings: dict[str, Any]) -> None:
        self._frame = frame
        self.settings = settings

    @property
    def frame(self) -> pd.DataFrame:
        """Per-variant table, shape (n_truth + n_query, 15), one row per normalized allele."""
        return self._frame

    @property
    def matches(self) -> list[MatchRecord]:
        """Per-variant records (truth and query), in file order, truth first."""
        f = self._frame
        return [
            MatchRecord(side=r.side, vid=r.vid, chrom=r.chrom, pos=int(r.pos), ref=r.ref,
                        alt=r.alt, type=r.type, zygosity=r.zygosity, allele_status=r.allele,
                        genotype_status=r.genotype, method=r.method, partners=r.partners)
            for r in f.itertuples(index=False)
        ]

    def _count(self, mask: np.ndarray | None, stringency: str) -> dict[str, Any]:
        f = self._frame
        status = f[stringency].to_numpy()
        truth = f["side"].to_numpy() == "truth"
        if mask is not None:
            status = status[mask]
            truth = truth[mask]
        tp = int(np.count_nonzero(truth & (status == "TP")))
        fn = int(np.count_nonzero(truth & (status == "FN")))
        tpq = int(np.count_nonzero(~truth & (status == "TP")))
        fp = int(np.count_nonzero(~truth & (status == "FP")))
        return _metrics(tp, tpq, fp, fn)

    def metrics(self, stringency: str = "allele") -> dict[str, Any]:
        """Overall counts and rates for ``allele`` or ``genotype`` stringency."""
        if stringency not in _STRINGENCIES:
            raise QCError(f"unknown stringency {stringency!r} (allele, genotype)")
        return self._count(None, stringency)

    def _strata(self, column: str) -> dict[str, dict[str, dict[str, Any]]]:
        f = self._frame
        values = f[column].to_numpy()
        counted = f["allele"].to_numpy() != "UNK"
        present = sorted({v for v in values[counted] if v is not None}, key=_type_order)
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for v in present:
            mask = values == v
            out[v] = {s: self._count(mask, s) for s in _STRINGENCIES}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; rates with a zero denominator are None."""
        return {
            "allele": self.metrics("allele"),
            "genotype": self.metrics("genotype"),
            "by_type": self._strata("type"),
            "by_zygosity": self._strata("zygosity"),
            "by_vaf": self._strata("vaf_bin"),
            "by_region": self._strata("region"),
            "settings": dict(self.settings),
        }

    def table(self) -> pd.DataFrame:
        """One row per (stratum, stringency): columns ``breakdown, stratum, stringency``
        followed by the counts and rates of ``metrics``."""
        d = self.to_dict()
        rows = []
        for s in _STRINGENCIES:
            rows.append({"breakdown": "all", "stratum": "all", "stringency": s, **d[s]})
        for key in ("by_type", "by_zygosity", "by_vaf", "by_region"):
            for stratum, per in d[key].items():
                for s in _STRINGENCIES:
                    rows.append({"breakdown": key[3:], "stratum": stratum, "stringency": s,
                                 **per[s]})
        return pd.DataFrame(rows)


class _State:
    """Match bookkeeping for one side."""

    def __init__(self, atoms: list[Atom]) -> None:
        self.atoms = atoms
        n = len(atoms)
        self.method = [""] * n
        self.partners: dict[int, list[int]] = defaultdict(list)
        self.gt_ok = [False] * n

    def free(self, i: int) -> bool:
        return not self.method[i]


def _link(t: _State, q: _State, ts: list[int], qs: list[int], method: str, gt_ok: bool) -> None:
    for i in ts:
        t.method[i] = method
        t.partners[i].extend(qs)
        t.gt_ok[i] = gt_ok
    for j in qs:
        q.method[j] = method
        q.partners[j].extend(ts)
        q.gt_ok[j] = gt_ok


def _exact_stage(t: _State, q: _State) -> None:
    index: dict[tuple, list[int]] = defaultdict(list)
    for j, a in enumerate(q.atoms):
        if not a.symbolic:
            index[(a.chrom, a.pos, a.ref, a.alt)].append(j)
    for i, a in enumerate(t.atoms):
        if a.symbolic:
            continue
        cands = index.get((a.chrom, a.pos, a.ref, a.alt))
        if not cands:
            continue
        k = 0
        if len(cands) > 1:
            # Prefer a candidate with the same genotype when the query repeats an allele.
            k = next((k for k, j in enumerate(cands) if q.atoms[j].zyg == a.zyg), 0)
        j = cands.pop(k)
        t.method[i] = q.method[j] = "exact"
        t.partners[i].append(j)
        q.partners[j].append(i)
        t.gt_ok[i] = q.gt_ok[j] = q.atoms[j].zyg == a.zyg


def _mnv_split_stage(t: _State, q: _State) -> None:
    for a_side, b_side, a_is_truth in ((t, q, True), (q, t, False)):
        snvs: dict[tuple, list[int]] = defaultdict(list)
        for j, b in enumerate(b_side.atoms):
            if b_side.free(j) and b.vtype == "SNV":
                snvs[(b.chrom, b.pos, b.ref, b.alt)].append(j)
        if not snvs:
            continue
        for i, a in enumerate(a_side.atoms):
            if a.vtype != "MNV" or not a_side.free(i):
                continue
            parts = decompose_mnv(pos=a.pos, ref=a.ref, alt=a.alt)
            lists = [snvs.get((a.chrom, p, r, x)) for p, r, x in parts]
            if not all(lists):
                continue
            picked = [lst.pop(0) for lst in lists]
            gt_ok = all(b_side.atoms[j].zyg == a.zyg for j in picked)
            if a_is_truth:
                _link(t, q, [i], picked, "mnv-split", gt_ok)
            else:
                _link(t, q, picked, [i], "mnv-split", gt_ok)


def _haplotypes(atoms: list[Atom], seq: str, w0: int, w1: int) -> dict[str, int]:
    """Sequence of the window ``[w0, w1)`` for every non-overlapping subset of ``atoms``.

    ``atoms`` are sorted by position. Returns haplotype -> bit mask of the largest subset
    giving it (the empty subset excluded).
    """
    best: dict[str, int] = {}
    n = len(atoms)
    parts: list[str] = []

    def walk(i: int, last: int, mask: int) -> None:
        if i == n:
            if mask:
                h = "".join(parts) + seq[last:w1]
                old = best.get(h)
                if old is None or mask.bit_count() > old.bit_count():
                    best[h] = mask
            return
        walk(i + 1, last, mask)
        a = atoms[i]
        if a.pos >= last:
            parts.append(seq[last : a.pos])
            parts.append(a.alt)
            walk(i + 1, a.pos + len(a.ref), mask | (1 << i))
            parts.pop()
            parts.pop()

    walk(0, w0, 0)
    return best


def _apply(atoms: list[Atom], seq: str, w0: int, w1: int) -> str:
    out, last = [], w0
    for a in atoms:
        out.append(seq[last : a.pos])
        out.append(a.alt)
        last = a.pos + len(a.ref)
    out.append(seq[last:w1])
    return "".join(out)


def _haplotype_stage(
    t: _State, q: _State, ref: ReferenceCache, *, window: int, max_cluster: int
) -> None:
    items = []
    for side, st in ((0, t), (1, q)):
        for i, a in enumerate(st.atoms):
            if st.free(i) and not a.is_sv:
                items.append((a.chrom, a.pos, a.pos + len(a.ref), side, i))
    items.sort()
    clusters: list[list[tuple]] = []
    cur: list[tuple] = []
    cur_end = -1
    for it in items:
        if cur and (it[0] != cur[0][0] or it[1] > cur_end + window):
            clusters.append(cur)
            cur, cur_end = [], -1
        cur.append(it)
        cur_end = max(cur_end, it[2])
    if cur:
        clusters.append(cur)
    for cl in clusters:
        ts = [it[4] for it in cl if it[3] == 0]
        qs = [it[4] for it in cl if it[3] == 1]
        if not ts or not qs or len(ts) > max_cluster or len(qs) > max_cluster:
            continue
        seq = ref.seq(cl[0][0])
        while ts and qs:
            ta = [t.atoms[i] for i in ts]
            qa = [q.atoms[j] for j in qs]
            w0 = min(a.pos for a in ta + qa)
            w1 = max(a.pos + len(a.ref) for a in ta + qa)
            th = _haplotypes(ta, seq, w0, w1)
            qh = _haplotypes(qa, seq, w0, w1)
            best = None
            for h, tm in th.items():
                qm = qh.get(h)
                if qm is not None:
                    score = tm.bit_count() + qm.bit_count()
                    if best is None or score > best[0]:
                        best = (score, tm, qm)
            if best is None:
                break
            _, tm, qm = best
            tsel = [k for k in range(len(ts)) if tm >> k & 1]
            qsel = [k for k in range(len(qs)) if qm >> k & 1]
            t_hom = _apply([ta[k] for k in tsel if ta[k].zyg == "hom"], seq, w0, w1)
            q_hom = _apply([qa[k] for k in qsel if qa[k].zyg == "hom"], seq, w0, w1)
            # Unknown (sites-only) genotypes agree only with each other.
            t_unk = {ta[k].zyg == "unknown" for k in tsel}
            q_unk = {qa[k].zyg == "unknown" for k in qsel}
            gt_ok = t_hom == q_hom and t_unk == q_unk
            ti = [ts[k] for k in tsel]
            qj = [qs[k] for k in qsel]
            _link(t, q, ti, qj, "haplotype", gt_ok)
            ts = [i for i in ts if i not in ti]
            qs = [j for j in qs if j not in qj]


def _sv_call(a: Atom) -> SVCall:
    return SVCall(chrom=a.chrom, start=a.start, end=a.end, svtype=a.svtype or "BND",
                  length=a.size)


def _sv_stage(t: _State, q: _State, *, tolerance: int, overlap: float) -> None:
    ti = [i for i, a in enumerate(t.atoms) if a.is_sv and t.free(i)]
    qj = [j for j, a in enumerate(q.atoms) if a.is_sv and q.free(j)]
    if not ti or not qj:
        return
    pairs = match_svs(
        [_sv_call(t.atoms[i]) for i in ti],
        [_sv_call(q.atoms[j]) for j in qj],
        tolerance=tolerance,
        reciprocal_overlap=overlap,
    )
    for a, b in pairs:
        i, j = ti[a], qj[b]
        _link(t, q, [i], [j], "sv", t.atoms[i].zyg == q.atoms[j].zyg)


def _vaf_bin(v: float | None) -> str:
    if v is None or not math.isfinite(v):
        return "unknown"
    for lo, hi in zip(VAF_BINS[:-1], VAF_BINS[1:], strict=True):
        if lo <= v < hi:
            return f"{lo:g}-{hi:g}"
    return f"{VAF_BINS[-2]:g}-{VAF_BINS[-1]:g}" if v == VAF_BINS[-1] else "unknown"


def _inside(atoms: list[Atom], bed: RegionSet) -> np.ndarray:
    out = np.zeros(len(atoms), bool)
    by_chrom: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(atoms):
        by_chrom[a.chrom].append(i)
    for chrom, idx in by_chrom.items():
        ix = np.asarray(idx)
        s = np.fromiter((atoms[i].pos for i in idx), np.int64, len(idx))
        # The span covers every reference base the allele touches (anchor base included) so
        # that both representations of an indel sit on the same side of a region boundary.
        e = np.fromiter(
            (max(atoms[i].pos + len(atoms[i].ref), atoms[i].end) for i in idx), np.int64, len(idx)
        )
        out[ix] = bed.contains(chrom, s, e)
    return out


def _frame(
    t: _State, q: _State, regions: RegionSet | None, targets: RegionSet | None
) -> pd.DataFrame:
    has_vaf = any(a.vaf is not None for a in t.atoms)
    parts = []
    for side, st, other, miss in (("truth", t, q, "FN"), ("query", q, t, "FP")):
        atoms = st.atoms
        n = len(atoms)
        matched = np.fromiter((bool(m) for m in st.method), bool, n)
        gt_ok = np.fromiter(st.gt_ok, bool, n)
        allele = np.where(matched, "TP", miss).astype(object)
        genotype = np.where(matched & gt_ok, "TP", miss).astype(object)
        if regions is not None:
            outside = ~_inside(atoms, regions)
            allele[outside] = "UNK"
            genotype[outside] = "UNK"
        # Matched query variants are stratified by their truth partner's genotype and VAF,
        # so that per-stratum precision refers to the same truth population as recall.
        source = list(atoms)
        if side == "query":
            for j, ps in st.partners.items():
                source[j] = other.atoms[ps[0]]
        region = None
        if targets is not None:
            region = np.where(_inside(atoms, targets), "inside", "outside").astype(object)
        vafs = [a.vaf for a in source]
        partners = st.partners
        parts.append(pd.DataFrame({
            "side": side,
            "vid": [a.vid for a in atoms],
            "chrom": [a.chrom for a in atoms],
            "pos": np.fromiter((a.pos + 1 for a in atoms), np.int64, n),
            "ref": [a.ref for a in atoms],
            "alt": [a.alt for a in atoms],
            "type": [size_bin(a.vtype, a.size) for a in atoms],
            "zygosity": [a.zyg for a in source],
            "vaf": vafs,
            "vaf_bin": [_vaf_bin(v) for v in vafs] if has_vaf else None,
            "region": region,
            "allele": allele,
            "genotype": genotype,
            "method": st.method,
            "partners": [
                tuple(other.atoms[k].vid for k in partners[i]) if i in partners else ()
                for i in range(n)
            ],
        }, columns=_FRAME_COLUMNS))
    return pd.concat(parts, ignore_index=True)


def compare_vcfs(
    *,
    truth: str | Path,
    query: str | Path,
    reference: str | Path,
    regions: str | Path | None = None,
    targets: str | Path | None = None,
    truth_sample: str | None = None,
    query_sample: str | None = None,
    sv_breakpoint_tolerance: int = 500,
    sv_reciprocal_overlap: float = 0.5,
    include_filtered: bool = False,
    haplotype_window: int = 10,
    max_cluster_size: int = 10,
    vaf_field: str | None = None,
) -> ComparisonResult:
    """Match a query VCF against a truth VCF and count TP/FP/FN at two stringencies.

    Parameters
    ----------
    truth, query
        VCF or bgzipped VCF files; contig names may differ from the reference by a ``chr``
        prefix.
    reference
        FASTA both were called against (indexed; bgzipped needs ``.gzi`` too).
    regions
        BED restricting the comparison (e.g. confident regions): variants not fully inside
        are matched as usual but reported ``UNK`` and left out of every count.
    targets
        BED for the ``by_region`` breakdown (``inside`` / ``outside``).
    truth_sample, query_sample
        Sample whose genotypes are used; None takes the first.
    sv_breakpoint_tolerance
        Largest distance (bp) between corresponding SV breakpoints.
    sv_reciprocal_overlap
        Smallest reciprocal overlap of two SVs (insertions: smallest length ratio).
    include_filtered
        Also compare records whose FILTER is not PASS or ``.`` (both files).
    haplotype_window
        Unmatched small variants closer than this (bp) are compared as one haplotype.
    max_cluster_size
        Clusters with more variants than this on one side are not haplotype-matched (the
        search is exponential in it); their variants stay FN/FP.
    vaf_field
        FORMAT/INFO field with the truth's variant allele fraction (default: ``VAF``, then
        FORMAT ``AF``); drives the ``by_vaf`` breakdown.

    Returns
    -------
    ComparisonResult
    """
    if haplotype_window < 0:
        raise QCError(f"haplotype_window must be >= 0, got {haplotype_window}")
    if sv_breakpoint_tolerance < 0:
        raise QCError(f"sv_breakpoint_tolerance must be >= 0, got {sv_breakpoint_tolerance}")
    if not 0.0 <= sv_reciprocal_overlap <= 1.0:
        raise QCError(f"sv_reciprocal_overlap must be in [0, 1], got {sv_reciprocal_overlap}")
    if not 1 <= max_cluster_size <= 16:
        raise QCError(f"max_cluster_size must be in 1..16, got {max_cluster_size}")
    ref = ReferenceCache(reference)
    # Hundreds of thousands of small acyclic objects: the cyclic GC would rescan them
    # repeatedly for nothing (about a third of the run time at 100k variants).
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        t_atoms = read_atoms(truth, reference=ref, sample=truth_sample,
                             include_filtered=include_filtered, vaf_field=vaf_field)
        q_atoms = read_atoms(query, reference=ref, sample=query_sample,
                             include_filtered=include_filtered, vaf_field=vaf_field)
        reg = RegionSet(regions, reference=ref) if regions is not None else None
        tgt = RegionSet(targets, reference=ref) if targets is not None else None
        t, q = _State(t_atoms), _State(q_atoms)
        _exact_stage(t, q)
        _mnv_split_stage(t, q)
        _haplotype_stage(t, q, ref, window=haplotype_window, max_cluster=max_cluster_size)
        _sv_stage(t, q, tolerance=sv_breakpoint_tolerance, overlap=sv_reciprocal_overlap)
    finally:
        ref.close()
        if gc_was_enabled:
            gc.enable()
    settings = {
        "truth": str(truth), "query": str(query), "reference": str(reference),
        "regions": None if regions is None else str(regions),
        "targets": None if targets is None else str(targets),
        "truth_sample": truth_sample, "query_sample": query_sample,
        "sv_breakpoint_tolerance": sv_breakpoint_tolerance,
        "sv_reciprocal_overlap": sv_reciprocal_overlap,
        "include_filtered": include_filtered, "haplotype_window": haplotype_window,
        "max_cluster_size": max_cluster_size,
    }
    return ComparisonResult(_frame(t, q, reg, tgt), settings)

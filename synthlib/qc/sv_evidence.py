"""SV/CNV recovery from read evidence in the re-aligned (QC) BAM, and a small caller.

Evidence, gathered in one pass over the BAM:

* **split reads**: a primary alignment with an ``SA`` tag; consecutive pieces in read order
  form a junction typed by strands and order: same strand and a forward jump = DEL, a
  backward jump = DUP (tandem), opposite strands = INV, another contig = BND;
* **discordant pairs**: FR pairs longer than the longest fragment (DEL), RF pairs (DUP),
  FF/RR pairs (INV), mates on another contig (BND);
* **clipped reads** (>= ``MIN_CLIP`` soft-clipped bases) and **in-alignment gaps**
  (CIGAR I/D >= ``MIN_GAP``): novel-sequence insertions and short deletions;
* **depth ratio** over an event vs its flanks, from read starts (a count, so Poisson): the
  expected ratio is the truth's copy number / 2.

The caller clusters junctions (split reads first, pairs as support or as pair-only calls),
clip pile-ups with both sides present, and gaps, into calls ``(type, chrom, start, end)``; a
DEL/DUP call gets a copy-number estimate from depth. A truth SV is **found** when a call of a
compatible type matches its breakpoints (split/gap/clip calls within ``tol``, pair-only calls
within the longest fragment).

A complex event (``<CPX>``) is judged by its components (:func:`..svmatch.cpx_layout`): each
junction of its haplotype is **supported** by >= ``min_split`` split reads (or CIGAR gaps)
within ``tol`` of both breakends, by >= ``min_pairs`` discordant pairs of the junction's
orientation whose mates lie on the correct side of each breakend, within the longest fragment,
or by >= ``min_clips`` reads soft-clipped on the matching side at each of its two breakends
(a junction with novel sequence in it is often only clipped, not split).
Each deleted / duplicated piece long enough for depth gets the ratio its copy number implies
(flanks taken outside the whole event). The event is **found** when a strict majority of its
junctions is supported (every junction for the 1- and 2-junction subtypes, the common case)
and no informative piece contradicts its expected depth.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError
from ..intervals import merge
from .svmatch import CpxJunction, CpxLayout, cpx_layout

__all__ = ["TruthSV", "Junction", "Evidence", "read_truth_svs", "collect_evidence",
           "depth_ratio", "call_svs", "sv_recovery", "cpx_evidence", "breakpoint_windows",
           "SIZE_BINS", "MIN_CLIP", "MIN_GAP"]

MIN_CLIP = 20
MIN_GAP = 50
#: Upper edges (bp) of the size strata of the recall summary.
SIZE_BINS = (50, 300, 1_000, 10_000, 10**9)
_CIGAR = re.compile(r"(\d+)([MIDNSHP=X])")
_COMPAT = {"DEL": ("DEL",), "DUP": ("DUP",), "INV": ("INV",), "INS": ("INS",),
           "BND": ("BND", "DEL", "DUP", "INV"), "CNV_loss": ("DEL",), "CNV_gain": ("DUP",)}


@dataclass
class TruthSV:
    """One truth SV. ``start``/``end`` are 0-based: affected bases ``[start, end)`` (INS and
    BND: ``start == end`` = the junction)."""

    vid: str
    svtype: str
    chrom: str
    start: int
    end: int
    size: int
    gt: tuple[int, int]
    cn: int | None = None
    vaf: float | None = None
    chrom2: str | None = None
    cpx_type: str | None = None
    cpx_intervals: tuple[str, ...] = ()

    @property
    def layout(self) -> CpxLayout | None:
        """Junctions and pieces of a complex event (None for other SVs)."""
        if self.svtype != "CPX":
            return None
        try:
            return cpx_layout(subtype=self.cpx_type or "", chrom=self.chrom,
                              intervals=self.cpx_intervals)
        except QCError as e:
            raise QCError(f"truth <CPX> record {self.vid}: {e.message}",
                          where=f"{self.chrom}:{self.start + 1}") from e

    def piece_ratio(self, copies: int) -> float:
        """Expected depth ratio of a reference piece with ``copies`` per carrying haplotype."""
        alleles = sum(1 for a in self.gt if a)
        total = 2.0 - alleles + alleles * copies
        frac = 1.0 if self.vaf is None else min(1.0, 2 * self.vaf / max(1, alleles))
        return 1.0 + (total / 2 - 1.0) * frac

    @property
    def expected_ratio(self) -> float | None:
        """Depth over the event / flanks implied by the truth (None: no depth change)."""
        alleles = sum(a for a in self.gt if a)
        if self.svtype == "CNV":
            total = float(self.cn or 0)
        elif self.svtype == "DEL":
            total = 2.0 - alleles
        elif self.svtype == "DUP":
            total = 2.0 + alleles
        else:
            return None
        frac = 1.0 if self.vaf is None else min(1.0, 2 * self.vaf / max(1, alleles))
        return 1.0 + (total / 2 - 1.0) * frac

    @property
    def kind(self) -> str:
        if self.svtype == "CNV":
            return "CNV_loss" if (self.cn or 0) < 2 else "CNV_gain"
        return self.svtype


@dataclass(frozen=True)
class Junction:
    """A breakpoint pair: ``pos1 <= pos2`` on ``chrom`` (BND: ``pos2`` on ``chrom2``)."""

    svtype: str
    chrom: str
    pos1: int
    pos2: int
    chrom2: str | None = None


@dataclass
class Evidence:
    """Everything ``collect_evidence`` found (lists of junctions / positions)."""

    split: list[Junction] = field(default_factory=list)
    pairs: list[Junction] = field(default_factory=list)
    clips: dict[str, list[tuple[int, str]]] = field(default_factory=dict)  # (pos, side)
    gaps: list[Junction] = field(default_factory=list)  # DEL/INS from CIGAR
    reads: int = 0


def read_truth_svs(truth_vcf: Path) -> list[TruthSV]:
    """SV records of a truth VCF (``INFO/SVTYPE`` set)."""
    out = []
    with pysam.VariantFile(str(truth_vcf)) as vf:
        smp = list(vf.header.samples)[0] if vf.header.samples else None
        for rec in vf:
            st = rec.info.get("SVTYPE")
            if not st:
                continue
            gt = tuple(a or 0 for a in (rec.samples[smp].get("GT") if smp else (0, 1)))
            vaf = rec.info.get("VAF")
            vaf = round(float(vaf), 6) if vaf is not None else None
            chrom2 = None
            if st == "BND":
                m = re.search(r"[\[\]]([^:\[\]]+):(\d+)[\[\]]", rec.alts[0])
                if not m:
                    continue
                chrom2, p2 = m.group(1), int(m.group(2))
                out.append(TruthSV(rec.id or ".", st, rec.contig, rec.pos, p2, 0,
                                   (gt + (0, 0))[:2], vaf=vaf, chrom2=chrom2))
                continue
            if st == "INS":
                size = abs(int(rec.info.get("SVLEN") or len(rec.alts[0]) - len(rec.ref)))
                a = b = rec.start + len(rec.ref)  # junction after the anchor base(s)
            else:
                a, b = rec.pos, int(rec.info.get("END") or rec.stop)
                size = b - a
            if st == "CPX":
                ivs = rec.info.get("CPX_INTERVALS") or ()
                ivs = (ivs,) if isinstance(ivs, str) else tuple(ivs)
                out.append(TruthSV(rec.id or ".", st, rec.contig, a, b, size,
                                   (gt + (0, 0))[:2], vaf=vaf,
                                   cpx_type=str(rec.info.get("CPX_TYPE") or ""),
                                   cpx_intervals=ivs))
                continue
            cn = rec.info.get("CN")
            out.append(TruthSV(rec.id or ".", st, rec.contig, a, b, size, (gt + (0, 0))[:2],
                               cn=int(cn) if cn is not None else None, vaf=vaf))
    return out


def breakpoint_windows(svs: list[TruthSV], *, pad: int) -> dict[str, np.ndarray]:
    """``pad`` bases either side of every breakpoint of ``svs`` (both ends of an SV, the
    junctions of a complex event, both sides of a breakend), merged per contig.

    Reads across a junction are clipped or misplaced by an aligner, and a caller turns their
    mismatches into small calls that no truth holds; small-variant benchmarks leave these
    windows out (as Genome in a Bottle's benchmark regions leave out its SVs).
    """
    points: dict[str, list[int]] = {}
    for sv in svs:
        here = points.setdefault(sv.chrom, [])
        if sv.svtype == "BND":
            here.append(sv.start)
            points.setdefault(sv.chrom2 or sv.chrom, []).append(sv.end)
            continue
        here += [sv.start, sv.end]
        if sv.layout is not None:
            here += [p for j in sv.layout.junctions for p in (j.pos1, j.pos2)]
    return {c: merge(np.array([[max(0, p - pad), p + pad] for p in ps], dtype=np.int64))
            for c, ps in points.items()}


def _segments(read: pysam.AlignedSegment) -> list[tuple[str, int, int, bool, int, int]]:
    """Pieces of a chimeric read ``(contig, ref_start, ref_end, reverse, q_start, q_end)``
    with query coordinates in the read's original orientation, sorted by ``q_start``."""
    out = []
    n = read.infer_read_length() or len(read.query_sequence or "")

    def add(contig, start, cig, reverse):
        ops = [(int(k), op) for k, op in _CIGAR.findall(cig)]
        lead = ops[0][0] if ops and ops[0][1] in "SH" else 0
        trail = ops[-1][0] if ops and ops[-1][1] in "SH" else 0
        span = sum(k for k, op in ops if op in "MDN=X")
        qs, qe = (trail, n - lead) if reverse else (lead, n - trail)
        out.append((contig, start, start + span, reverse, qs, qe))

    add(read.reference_name, read.reference_start, read.cigarstring, read.is_reverse)
    for part in read.get_tag("SA").rstrip(";").split(";"):
        c, p, sd, cig, mq, _ = part.split(",")
        if int(mq) > 0:
            add(c, int(p) - 1, cig, sd == "-")
    return sorted(out, key=lambda s: s[4])


def _junction(x, y) -> Junction | None:
    cx, sx, ex, rx = x[:4]
    cy, sy, ey, ry = y[:4]
    if cx != cy:
        px = sx if rx else ex
        py = ey if ry else sy
        return Junction("BND", cx, px, py, cy)
    if rx == ry:
        (s1, e1), (s2, e2) = ((sy, ey), (sx, ex)) if rx else ((sx, ex), (sy, ey))
        # (s1, e1) precedes (s2, e2) along the read's reference-forward reading.
        if s2 >= e1 - 10:
            return Junction("DEL", cx, e1, s2) if s2 > e1 else None
        return Junction("DUP", cx, min(s2, e1), max(s2, e1))
    if not rx:  # + then -: left junction joins x's end with y's end
        a, b = sorted((ex, ey))
    else:  # - then +: right junction joins x's start with y's start
        a, b = sorted((sx, sy))
    return Junction("INV", cx, a, b)


def collect_evidence(*, bam: Path, max_insert: int, min_mapq: int = 20,
                     regions: dict[str, np.ndarray] | None = None) -> Evidence:
    """One pass over the BAM (or ``regions``, ``{contig: (k, 2) int64}``) gathering evidence.

    Parameters
    ----------
    max_insert
        Longest template of a normal pair (the spec's ``fragment.max``).
    min_mapq
        Primary alignments below this mapping quality give no evidence.
    """
    if not Path(bam).exists():
        raise QCError("BAM not found", where=str(bam))
    ev = Evidence()
    seen_pairs: set[str] = set()
    with pysam.AlignmentFile(str(bam)) as fh:
        if regions is None:
            iters = [fh.fetch(c) for c in fh.references]
        else:
            iters = [fh.fetch(c, int(s), int(e)) for c, iv in regions.items() for s, e in iv]
        for it in iters:
            for r in it:
                if r.flag & 0xF04 or r.mapping_quality < min_mapq:
                    continue
                ev.reads += 1
                c = r.reference_name
                if r.has_tag("SA"):
                    segs = _segments(r)
                    for x, y in zip(segs, segs[1:], strict=False):
                        j = _junction(x, y)
                        if j is not None:
                            ev.split.append(j)
                cig = r.cigartuples or []
                if cig and cig[0][0] == 4 and cig[0][1] >= MIN_CLIP and not r.has_tag("SA"):
                    ev.clips.setdefault(c, []).append((r.reference_start, "L"))
                if cig and cig[-1][0] == 4 and cig[-1][1] >= MIN_CLIP and not r.has_tag("SA"):
                    ev.clips.setdefault(c, []).append((r.reference_end, "R"))
                p = r.reference_start
                for op, ln in cig:
                    if op == 2 and ln >= MIN_GAP:
                        ev.gaps.append(Junction("DEL", c, p, p + ln))
                    elif op == 1 and ln >= MIN_GAP:
                        ev.gaps.append(Junction("INS", c, p, p + ln))
                    if op in (0, 2, 3, 7, 8):
                        p += ln
                j = _pair_junction(r, max_insert)
                if j is not None and r.query_name not in seen_pairs:
                    seen_pairs.add(r.query_name)
                    ev.pairs.append(j)
    return ev


def _pair_junction(r: pysam.AlignedSegment, max_insert: int) -> Junction | None:
    if not r.is_paired or r.mate_is_unmapped or r.is_unmapped:
        return None
    c, mc = r.reference_name, r.next_reference_name
    if c != mc:
        return Junction("BND", c, r.reference_end if not r.is_reverse else r.reference_start,
                        r.next_reference_start, mc)
    me = r.next_reference_start + r.query_length  # mate end, to read length precision
    left_first = (r.reference_start, r.is_read2) <= (r.next_reference_start, r.is_read1)
    if left_first:
        ls, le, lrev, rs, re_, rrev = (r.reference_start, r.reference_end, r.is_reverse,
                                       r.next_reference_start, me, r.mate_is_reverse)
    else:
        ls, le, lrev, rs, re_, rrev = (r.next_reference_start, me, r.mate_is_reverse,
                                       r.reference_start, r.reference_end, r.is_reverse)
    if lrev == rrev:
        return Junction("INV", c, le if not lrev else ls, re_ if not rrev else rs)
    if lrev and not rrev:
        return Junction("DUP", c, ls, re_)
    if re_ - ls > max_insert:
        return Junction("DEL", c, le, rs)
    return None


def _starts(fh: pysam.AlignmentFile, chrom: str, a: int, b: int, min_mapq: int) -> int:
    if b <= a:
        return 0
    return sum(1 for r in fh.fetch(chrom, a, b)
               if not r.flag & 0xF04 and r.mapping_quality >= min_mapq
               and a <= r.reference_start < b)


def depth_ratio(*, bam: Path, chrom: str, start: int, end: int, read_length: int,
                min_mapq: int = 0, territory: dict[str, np.ndarray] | None = None,
                flank_span: tuple[int, int] | None = None) -> dict:
    """Read-start density over ``[start, end)`` relative to its flanks.

    The event loses one read length at each edge (reads starting just before it still cover
    it); flanks are as long as the event, 500 bp to 10 kb, clipped to ``territory``, and lie
    around ``flank_span`` when given (a piece of a complex event: outside the whole event).

    Returns
    -------
    dict
        ``ratio``, ``se`` (delta method on Poisson counts), ``event_reads``, ``flank_reads``,
        ``event_bases``, ``flank_bases`` (``ratio`` None when too short to measure).
    """
    a, b = start + read_length // 2, end - read_length // 2
    if b - a < 100:
        return {"ratio": None, "se": None, "note": "event too short for depth"}
    f = int(min(10_000, max(500, end - start)))
    fs, fe = flank_span if flank_span is not None else (start, end)
    flanks = [(fs - read_length - f, fs - read_length), (fe + read_length, fe + read_length + f)]
    if territory is not None and chrom in territory:
        iv = territory[chrom]
        clipped = []
        for fs, fe in flanks:
            for ts, te in iv:
                s, e = max(fs, int(ts)), min(fe, int(te))
                if s < e:
                    clipped.append((s, e))
        flanks = clipped
    flanks = [(max(0, s), e) for s, e in flanks if e > max(0, s)]
    with pysam.AlignmentFile(str(bam)) as fh:
        ne = _starts(fh, chrom, a, b, min_mapq)
        nf = sum(_starts(fh, chrom, s, e, min_mapq) for s, e in flanks)
    fb = sum(e - s for s, e in flanks)
    if not fb or not nf:
        return {"ratio": None, "se": None, "note": "no flank reads"}
    ratio = (ne / (b - a)) / (nf / fb)
    se = max(ratio, 1.0 / max(ne, 1)) * math.sqrt(1 / max(ne, 1) + 1 / nf)
    return {"ratio": ratio, "se": se, "event_reads": ne, "flank_reads": nf,
            "event_bases": b - a, "flank_bases": fb}


def _cluster(junctions: list[Junction], tol: int, min_support: int) -> list[dict]:
    groups: list[dict] = []
    for j in sorted(junctions, key=lambda j: (j.svtype, j.chrom, j.pos1, j.pos2)):
        for g in reversed(groups[-20:]):
            if (g["type"] == j.svtype and g["chrom"] == j.chrom and g["chrom2"] == j.chrom2
                    and abs(g["p1"][-1] - j.pos1) <= tol and abs(np.median(g["p2"]) - j.pos2)
                    <= tol):
                g["p1"].append(j.pos1)
                g["p2"].append(j.pos2)
                break
        else:
            groups.append({"type": j.svtype, "chrom": j.chrom, "chrom2": j.chrom2,
                           "p1": [j.pos1], "p2": [j.pos2]})
    out = []
    for g in groups:
        if len(g["p1"]) >= min_support:
            out.append({"type": g["type"], "chrom": g["chrom"], "chrom2": g["chrom2"],
                        "start": int(np.median(g["p1"])), "end": int(np.median(g["p2"])),
                        "support": len(g["p1"])})
    return out


def call_svs(ev: Evidence, *, max_insert: int, tol: int = 50, min_split: int = 2,
             min_pairs: int = 3, min_clips: int = 2) -> list[dict]:
    """Turn evidence into calls: dicts with ``type``, ``chrom``, ``start``, ``end``, ``by``
    (evidence kinds) and per-kind ``support``."""
    calls = []
    for c in _cluster(ev.split, tol, min_split):
        n = c.pop("support")
        calls.append({**c, "by": ["split"], "split": n, "pairs": 0})
    for c in _cluster(ev.gaps, tol, min_split):
        n = c.pop("support")
        calls.append({**c, "by": ["gap"], "gap": n, "pairs": 0})
    for c in _cluster(ev.pairs, max_insert, min_pairs):
        n = c.pop("support")
        for k in calls:
            if (k["type"] == c["type"] and k["chrom"] == c["chrom"]
                    and abs(k["start"] - c["start"]) <= max_insert
                    and abs(k["end"] - c["end"]) <= max_insert):
                k["pairs"] += n
                if "pairs" not in k["by"]:
                    k["by"].append("pairs")
                break
        else:
            calls.append({**c, "by": ["pairs"], "pairs": n, "pair_only": True})
    # Insertions of novel sequence: reads clipped on both sides of one point.
    for chrom, items in ev.clips.items():
        pos = np.array([p for p, _ in items], np.int64)
        side = np.array([s == "L" for s, _ in ((s, 0) for _, s in items)])
        order = np.argsort(pos)
        pos, side = pos[order], side[order]
        i = 0
        while i < len(pos):
            j = i
            while j + 1 < len(pos) and pos[j + 1] - pos[i] <= 10:
                j += 1
            nl, nr = int(side[i:j + 1].sum()), int((~side[i:j + 1]).sum())
            if nl >= min_clips and nr >= min_clips:
                p = int(np.median(pos[i:j + 1]))
                if not any(k["chrom"] == chrom and min(abs(k["start"] - p), abs(k["end"] - p))
                           <= tol for k in calls):
                    calls.append({"type": "INS", "chrom": chrom, "chrom2": None, "start": p,
                                  "end": p, "by": ["clips"], "clips": nl + nr, "pairs": 0})
            i = j + 1
        calls += _clip_deletions(chrom, pos, side, calls, tol=tol, max_len=max_insert,
                                 min_clips=min_clips)
    return calls


def _clip_deletions(chrom: str, pos: np.ndarray, left: np.ndarray, calls: list[dict], *,
                    tol: int, max_len: int, min_clips: int) -> list[dict]:
    """Deletions too short for split alignments: reads clipped on their right at ``p1`` and
    reads clipped on their left at ``p2``, ``MIN_GAP <= p2 - p1 <= max_len``."""
    def piles(sel: np.ndarray) -> list[int]:
        v, n = np.unique(pos[sel], return_counts=True)
        return [int(p) for p, k in zip(v, n, strict=True) if k >= min_clips]

    out = []
    rights, lefts = piles(~left), piles(left)
    for p1 in rights:
        cand = [p2 for p2 in lefts if MIN_GAP <= p2 - p1 <= max_len]
        if not cand:
            continue
        p2 = min(cand)
        if any(k["chrom"] == chrom and k["type"] == "DEL" and abs(k["start"] - p1) <= tol
               and abs(k["end"] - p2) <= tol for k in calls + out):
            continue
        n = int(np.sum((pos == p1) & ~left) + np.sum((pos == p2) & left))
        out.append({"type": "DEL", "chrom": chrom, "chrom2": None, "start": p1, "end": p2,
                    "by": ["clips"], "clips": n, "pairs": 0})
    return out


def _matches(call: dict, sv: TruthSV, tol: int, max_insert: int) -> bool:
    if call["type"] not in _COMPAT[sv.kind] or call["chrom"] != sv.chrom:
        return False
    t = max_insert if call.get("pair_only") else tol
    if sv.svtype == "INS":
        return abs(call["start"] - sv.start) <= t or (
            call["type"] == "INS" and call["start"] - t <= sv.start <= call["end"] + t)
    if sv.svtype == "BND":
        return _bnd_near(call["type"], call.get("chrom2"), call["start"], call["end"], sv, t)
    return abs(call["start"] - sv.start) <= t and abs(call["end"] - sv.end) <= t


def _size_bin(size: int) -> str:
    lo = 0
    for hi in SIZE_BINS:
        if size < hi:
            return f"[{lo},{hi})" if hi < 10**9 else f">={lo}"
        lo = hi
    return f">={lo}"


def sv_recovery(
    *, bam: Path, truth_vcf: Path, max_insert: int, read_length: int,
    territory: dict[str, np.ndarray] | None = None, tol: int = 50, depth_z: float = 4.0,
    depth_abs: float = 0.15, min_mapq: int = 20,
) -> dict:
    """Per truth SV: evidence counts, depth ratio vs expectation, found or not; plus recall
    by type and size and the caller's unmatched calls.

    Returns
    -------
    dict
        ``svs`` (list of per-SV dicts: ``vid``, ``type``, ``chrom``, ``start``, ``end``,
        ``size``, ``split``, ``pairs``, ``clips``, ``gaps``, ``depth`` (ratio, se, expected,
        ``consistent``, ``informative``), ``found``, ``found_by``, ``cn_estimate``),
        ``summary`` (``n``, ``found``, ``recall``, ``by_type``, ``by_size``,
        ``by_evidence``, ``calls``, ``unmatched_calls``), ``calls``.
    """
    truth = read_truth_svs(truth_vcf)
    regions = None
    if territory is not None:
        regions = territory
    ev = collect_evidence(bam=bam, max_insert=max_insert, min_mapq=min_mapq, regions=regions)
    calls = call_svs(ev, max_insert=max_insert, tol=tol)
    for k in calls:
        if k["type"] in ("DEL", "DUP") and k["end"] - k["start"] >= 2 * read_length:
            d = depth_ratio(bam=bam, chrom=k["chrom"], start=k["start"], end=k["end"],
                            read_length=read_length, territory=territory)
            k["cn_estimate"] = None if d["ratio"] is None else int(round(2 * d["ratio"]))
    rows = []
    used = set()
    for sv in truth:
        if sv.svtype == "CPX":
            row = cpx_evidence(sv=sv, ev=ev, bam=bam, max_insert=max_insert,
                               read_length=read_length, territory=territory, tol=tol,
                               depth_z=depth_z, depth_abs=depth_abs)
            hit = [i for i, k in enumerate(calls) if _cpx_call_matches(k, sv, row, tol,
                                                                       max_insert)]
            used.update(hit)
            row["calls"] = [{k: calls[i][k] for k in ("type", "start", "end")} for i in hit]
            rows.append(row)
            continue
        near = max_insert
        row = {"vid": sv.vid, "type": sv.kind, "svtype": sv.svtype, "chrom": sv.chrom,
               "start": sv.start, "end": sv.end, "size": sv.size, "gt": list(sv.gt),
               "cn": sv.cn, "vaf": sv.vaf, "size_bin": _size_bin(sv.size)}
        compat = _COMPAT[sv.kind]
        row["split"] = sum(1 for j in ev.split if j.svtype in compat and j.chrom == sv.chrom
                           and _near(j, sv, tol))
        row["pairs"] = sum(1 for j in ev.pairs if j.svtype in compat and j.chrom == sv.chrom
                           and _near(j, sv, near))
        row["gaps"] = sum(1 for j in ev.gaps if j.svtype in compat and j.chrom == sv.chrom
                          and _near(j, sv, tol))
        row["clips"] = sum(1 for p, _ in ev.clips.get(sv.chrom, [])
                           if abs(p - sv.start) <= tol or abs(p - sv.end) <= tol)
        exp = sv.expected_ratio
        depth: dict = {"expected": exp, "informative": False, "consistent": None}
        if exp is not None:
            d = depth_ratio(bam=bam, chrom=sv.chrom, start=sv.start, end=sv.end,
                            read_length=read_length, territory=territory)
            depth.update(d)
            if d["ratio"] is not None:
                # Poisson SEs under each hypothesis, from the flank density (not from the
                # observed count, which is 0 over a homozygous deletion).
                depth["se_expected"] = _ratio_se(d, exp)
                depth["informative"] = abs(exp - 1.0) > depth_z * _ratio_se(d, 1.0) + depth_abs
                depth["consistent"] = (abs(d["ratio"] - exp)
                                       <= depth_z * _ratio_se(d, exp) + depth_abs)
        row["depth"] = depth
        hit = [i for i, k in enumerate(calls) if _matches(k, sv, tol, max_insert)]
        used.update(hit)
        row["found"] = bool(hit)
        by = sorted({b for i in hit for b in calls[i]["by"]})
        if depth["informative"] and depth["consistent"]:
            by.append("depth")
        row["found_by"] = by
        row["calls"] = [{k: calls[i][k] for k in ("type", "start", "end")} for i in hit]
        row["cn_estimate"] = next((calls[i].get("cn_estimate") for i in hit
                                   if calls[i].get("cn_estimate") is not None), None)
        rows.append(row)
    return {"svs": rows, "calls": calls, "summary": _summary(rows, calls, used),
            "evidence_reads": ev.reads, "tolerance": tol}


def _ratio_se(d: dict, r: float) -> float:
    """SE of the depth ratio if the true ratio were ``r``: Poisson counts with the event's
    expected count taken from the flank density."""
    expected_event = r * d["flank_reads"] / d["flank_bases"] * d["event_bases"]
    return r * math.sqrt(1 / max(expected_event, 1.0) + 1 / d["flank_reads"])


def _bnd_near(svtype: str, chrom2: str | None, p1: int, p2: int, sv: TruthSV, t: int) -> bool:
    """A junction matches a breakend pair: another contig's junction (BND) near both sides,
    or, for a breakend pair within one contig, a junction of any orientation whose two
    positions are the pair's (a reciprocal swap reads as DEL/DUP/INV-like junctions)."""
    if sv.chrom2 != sv.chrom:
        return svtype == "BND" and chrom2 == sv.chrom2 and (
            abs(p1 - sv.start) <= t and abs(p2 - sv.end) <= t)
    a, b = sorted((sv.start, sv.end))
    x, y = sorted((p1, p2))
    return abs(x - a) <= t and abs(y - b) <= t


def _near(j: Junction, sv: TruthSV, t: int) -> bool:
    if sv.svtype == "INS":
        return abs(j.pos1 - sv.start) <= t
    if sv.svtype == "BND":
        return _bnd_near(j.svtype, j.chrom2, j.pos1, j.pos2, sv, t)
    if sv.svtype == "DEL" or (sv.svtype == "CNV" and j.svtype == "DEL"):
        # Pairs: left mate before the deletion, right mate after it, within a fragment.
        return (sv.start - t <= j.pos1 <= sv.start + min(t, 50)
                and sv.end - min(t, 50) <= j.pos2 <= sv.end + t)
    return abs(j.pos1 - sv.start) <= t and abs(j.pos2 - sv.end) <= t


def _summary(rows: list[dict], calls: list[dict], used: set[int]) -> dict:
    def rec(sel: list[dict]) -> dict:
        f = sum(r["found"] for r in sel)
        return {"n": len(sel), "found": f, "recall": f / len(sel) if sel else None}

    out = rec(rows)
    out["by_type"] = {t: rec([r for r in rows if r["type"] == t])
                      for t in sorted({r["type"] for r in rows})}
    out["by_size"] = {b: rec([r for r in rows if r["size_bin"] == b])
                      for b in sorted({r["size_bin"] for r in rows},
                                      key=lambda s: int(re.findall(r"\d+", s)[0]))}
    kinds = ("split", "pairs", "gap", "clips", "depth")
    out["by_evidence"] = {k: sum(k in r["found_by"] for r in rows) for k in kinds}
    cpx = [r for r in rows if r.get("cpx_type")]
    out["by_cpx_type"] = {t: rec([r for r in cpx if r["cpx_type"] == t])
                          for t in sorted({r["cpx_type"] for r in cpx})}
    out["calls"] = len(calls)
    out["unmatched_calls"] = len(calls) - len(used)
    return out


def _junction_counts(j: CpxJunction, ev: Evidence, chrom: str, tol: int,
                     max_insert: int) -> tuple[int, int, int]:
    """(split reads + CIGAR gaps, discordant pairs, clipped reads at the weaker breakend)
    supporting one junction of an event."""
    def close(x: Junction) -> bool:
        return (x.chrom == chrom and x.chrom2 is None and x.svtype == j.svtype
                and abs(x.pos1 - j.pos1) <= tol and abs(x.pos2 - j.pos2) <= tol)

    def side_ok(x: int, p: int, side: str) -> bool:
        # A mate next to a right end lies left of it (within a fragment), and vice versa.
        return p - max_insert <= x <= p + tol if side == "R" else p - tol <= x <= p + max_insert

    split = sum(1 for x in ev.split if close(x))
    split += sum(1 for x in ev.gaps if x.svtype == "DEL" and close(x))
    pairs = sum(1 for x in ev.pairs
                if x.chrom == chrom and x.chrom2 is None and x.svtype == j.svtype
                and side_ok(x.pos1, j.pos1, j.side1) and side_ok(x.pos2, j.pos2, j.side2))
    # Clipped (not split) reads: a right end is clipped on the read's right, a left end on
    # its left; a junction needs a pile-up at both of its breakends.
    clips = ev.clips.get(chrom, [])
    at = [sum(1 for p, s in clips if s == side and abs(p - pos) <= 10)
          for pos, side in ((j.pos1, j.side1), (j.pos2, j.side2))]
    return split, pairs, min(at)


def cpx_evidence(*, sv: TruthSV, ev: Evidence, bam: Path, max_insert: int, read_length: int,
                 territory: dict[str, np.ndarray] | None = None, tol: int = 50,
                 depth_z: float = 4.0, depth_abs: float = 0.15, min_split: int = 2,
                 min_pairs: int = 3, min_clips: int = 2) -> dict:
    """Per-junction and per-piece evidence of one complex truth event, and whether it is found.

    Returns
    -------
    dict
        The per-SV row of :func:`sv_recovery` (``split``/``pairs``/``gaps``/``clips`` summed
        over junctions, ``depth`` summarising the pieces) plus ``cpx_type``, ``junctions``
        (``type``, ``pos1``, ``side1``, ``pos2``, ``side2``, ``split``, ``pairs``, ``clips``
        (the smaller pile-up of its two breakends), ``supported``), ``pieces`` (``kind``,
        ``start``, ``end``, ``copies``, ``expected``, ``ratio``, ``se``, ``informative``,
        ``consistent``), ``junctions_supported``.
    """
    if sv.svtype != "CPX":
        raise QCError(f"{sv.vid}: not a complex event ({sv.svtype})")
    lay = sv.layout
    jrows = []
    for j in lay.junctions:
        split, pairs, clips = _junction_counts(j, ev, sv.chrom, tol, max_insert)
        jrows.append({"type": j.svtype, "pos1": j.pos1, "side1": j.side1, "pos2": j.pos2,
                      "side2": j.side2, "split": split, "pairs": pairs, "clips": clips,
                      "supported": (split >= min_split or pairs >= min_pairs
                                    or clips >= min_clips)})
    prows = []
    for p in lay.pieces:
        exp = sv.piece_ratio(p.copies)
        d = depth_ratio(bam=bam, chrom=sv.chrom, start=p.start, end=p.end,
                        read_length=read_length, territory=territory,
                        flank_span=(lay.start, lay.end))
        row = {"kind": p.kind, "start": p.start, "end": p.end, "copies": p.copies,
               "expected": exp, "ratio": d.get("ratio"), "se": d.get("se"),
               "informative": False, "consistent": None}
        if d["ratio"] is not None:
            row["informative"] = abs(exp - 1.0) > depth_z * _ratio_se(d, 1.0) + depth_abs
            row["consistent"] = abs(d["ratio"] - exp) <= depth_z * _ratio_se(d, exp) + depth_abs
        prows.append(row)
    n_sup = sum(r["supported"] for r in jrows)
    informative = [r for r in prows if r["informative"]]
    depth_ok = all(r["consistent"] for r in informative)
    found = bool(jrows) and n_sup > len(jrows) / 2 and depth_ok
    by = []
    if any(r["split"] >= min_split for r in jrows):
        by.append("split")
    if any(r["pairs"] >= min_pairs for r in jrows):
        by.append("pairs")
    if any(r["clips"] >= min_clips for r in jrows):
        by.append("clips")
    if informative and depth_ok:
        by.append("depth")
    first = informative[0] if informative else (prows[0] if prows else {})
    depth = {"expected": first.get("expected"), "ratio": first.get("ratio"),
             "informative": bool(informative),
             "consistent": depth_ok if informative else None}
    edges = {x for j in lay.junctions for x in (j.pos1, j.pos2)}
    return {
        "vid": sv.vid, "type": "CPX", "svtype": "CPX", "cpx_type": sv.cpx_type,
        "chrom": sv.chrom, "start": sv.start, "end": sv.end, "size": sv.size,
        "gt": list(sv.gt), "cn": None, "vaf": sv.vaf, "size_bin": _size_bin(sv.size),
        "split": sum(r["split"] for r in jrows), "pairs": sum(r["pairs"] for r in jrows),
        "gaps": sum(1 for x in ev.gaps if x.chrom == sv.chrom and x.svtype == "DEL"
                    and any(abs(x.pos1 - j.pos1) <= tol and abs(x.pos2 - j.pos2) <= tol
                            for j in lay.junctions)),
        "clips": sum(1 for p, _ in ev.clips.get(sv.chrom, [])
                     if any(abs(p - x) <= tol for x in edges)),
        "depth": depth, "junctions": jrows, "pieces": prows,
        "junctions_supported": n_sup, "found": found, "found_by": by,
        "cn_estimate": None,
    }


def _cpx_call_matches(call: dict, sv: TruthSV, row: dict, tol: int, max_insert: int) -> bool:
    """A caller's call explained by the event (so not an unmatched call): one of its
    junctions, or a call joining two of its breakends (clip pile-ups at the two ends of a
    deleted piece read as a deletion)."""
    if call["chrom"] != sv.chrom or call.get("chrom2"):
        return False
    t = max_insert if call.get("pair_only") else tol
    if any(call["type"] == j["type"] and abs(call["start"] - j["pos1"]) <= t
           and abs(call["end"] - j["pos2"]) <= t for j in row["junctions"]):
        return True
    ends = [x for j in row["junctions"] for x in (j["pos1"], j["pos2"])]
    return (any(abs(call["start"] - x) <= t for x in ends)
            and any(abs(call["end"] - x) <= t for x in ends))

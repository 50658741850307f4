"""Spike structural variants by replacing the read pairs of a region with simulated ones.

For an SV (DEL, tandem DUP, INV, INS, CNV) the reads cannot be edited one by one: depth must
follow the new copy number, and junctions need split reads and discordant pairs. So, around
the event, a *window* ``W = [event start - F, event end + F)`` is rebuilt, with ``F`` the
largest fragment length seen nearby:

1. **Profile** (from the BAM itself, around the event): read length, the fragment-length
   distribution (``|TLEN|`` of proper pairs) and whole quality strings of real reads (in
   cycle order, read 1 and read 2 apart) to draw from.
2. **Remove** every pair with a primary record starting in ``W``: both mates (found by name
   near the window, else through RNEXT/PNEXT wherever it is), their supplementary records
   (through ``SA``) and secondary ones in the window.
3. **Simulate** pairs from the altered haplotypes (:func:`synthlib.variants.haplotype.
   build_haplotypes` with a :func:`synthlib.variants.sv.make_sv` variant) mixed with the
   reference haplotype by the requested VAF/CN: fragment starts are Poisson with the density
   measured on the removed pairs (non-duplicate fragments per base per genome copy), so
   depth follows copy number; a simulated pair is kept under the same rule as removal (a
   primary start in ``W``), so depth stays continuous at the window edges.
4. **Align** by construction: each base knows its reference position, strand and segment in
   the haplotype; a read crossing a junction gets its primary alignment on the segment with
   most bases (rest soft-clipped), supplementary records and ``SA`` tags for the others (at
   least :data:`MIN_SPLIT` bases), MD/NM against the reference, mate fields and flags of a
   pair (proper only when the fragment lies in one segment).

Limits: fragments wholly inside inserted sequence (both mates unmapped) are dropped; the
replaced reads have MAPQ 60; duplicates are copies of a simulated pair (same alignment and
bases, flag 0x400) at the window's observed duplicate rate; fragments shorter than the read
length are not
drawn.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from hashlib import blake2b

import numpy as np
import pysam

from ..errors import VariantError
from ..variants.haplotype import INSERTED, Haplotype, build_haplotypes
from ..variants.model import Variant
from ..variants.sv import make_sv
from .requests import SVRequest

__all__ = ["MIN_SPLIT", "SVOutcome", "SVPlan", "RegionProfile", "profile_region", "plan_sv"]

#: A read's secondary segment needs this many aligned bases to be a supplementary alignment.
MIN_SPLIT = 20
#: A read needs this many aligned bases on its best segment to count as mapped.
MIN_MAPPED = 20

_SKIP = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
_ID_FLAGS = 0x40 | 0x80 | 0x100 | 0x800
_PROFILE_PAD = 5000
_MAX_PROFILE_READS = 20000

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b
_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_CODE = np.full(256, 4, dtype=np.int64)
for _i, _c in enumerate(b"ACGT"):
    _CODE[_c] = _i

Ident = tuple[int, int, str, int]


def _ident(r: pysam.AlignedSegment) -> Ident:
    return (r.reference_id, r.reference_start, r.query_name, r.flag & _ID_FLAGS)


@dataclass
class RegionProfile:
    """What the sample's own reads look like near an event.

    Attributes
    ----------
    read_length
        Most common read length (query length with soft clips, no hard clips).
    fragment_lengths : np.ndarray, shape (n,), int64
        ``|TLEN|`` of proper pairs (one per pair), at least ``read_length``.
    quals : tuple of two np.ndarray, shape (k, read_length), uint8
        Quality strings in cycle order, of read 1 and read 2.
    read_group
        Most common ``RG`` tag value, or None.
    tags
        Which of ``MD``, ``NM``, ``MC`` the reads carry.
    """

    read_length: int
    fragment_lengths: np.ndarray
    quals: tuple[np.ndarray, np.ndarray]
    read_group: str | None
    tags: frozenset[str]

    @property
    def max_fragment(self) -> int:
        return int(self.fragment_lengths.max())


def profile_region(af: pysam.AlignmentFile, chrom: str, lo: int, hi: int, *,
                   where: str) -> RegionProfile:
    """Learn read length, fragment sizes and qualities from reads in ``[lo, hi)``.

    Raises
    ------
    VariantError
        No paired reads, or fewer than 20 proper pairs to learn fragment sizes from.
    """
    lens: Counter[int] = Counter()
    tlens: list[int] = []
    quals: tuple[list, list] = ([], [])
    rgs: Counter[str] = Counter()
    tags: set[str] = set()
    n = 0
    for r in af.fetch(chrom, max(lo, 0), hi):
        if r.flag & _SKIP or not r.is_paired:
            continue
        n += 1
        if n > _MAX_PROFILE_READS:
            break
        cig = r.cigartuples or []
        if any(op == 5 for op, _ in cig):
            continue
        lens[r.query_length] += 1
        if r.is_proper_pair and r.template_length > 0:
            tlens.append(r.template_length)
        q = r.query_qualities
        if q is not None:
            arr = np.asarray(q, dtype=np.uint8)
            quals[0 if r.is_read1 else 1].append(arr[::-1] if r.is_reverse else arr)
        if r.has_tag("RG"):
            rgs[str(r.get_tag("RG"))] += 1
        tags.update(t for t in ("MD", "NM", "MC") if r.has_tag(t))
    if not lens:
        raise VariantError("no paired, mapped reads near the event: SV spiking replaces read "
                           "pairs and needs paired-end data", where=where)
    rl = lens.most_common(1)[0][0]
    fl = np.array([t for t in tlens if t >= rl], dtype=np.int64)
    if len(fl) < 20:
        raise VariantError(f"only {len(fl)} proper pairs near the event: too few to learn "
                           "fragment sizes", where=where)
    # the top 0.1% are typically mis-paired reads; they would blow up the window
    fl = fl[fl <= np.quantile(fl, 0.999)]
    pools = []
    for k in (0, 1):
        same = [q for q in quals[k] if len(q) == rl]
        pools.append(np.stack(same) if same else None)
    if pools[0] is None and pools[1] is None:
        pools = [np.full((1, rl), 30, np.uint8)] * 2
    pools = [p if p is not None else pools[1 - k] for k, p in enumerate(pools)]
    return RegionProfile(rl, fl, (pools[0], pools[1]),
                         rgs.most_common(1)[0][0] if rgs else None, frozenset(tags))


@dataclass
class SVOutcome:
    """What one SV became.

    ``pos`` is the 1-based anchor base (after left-alignment), so the affected reference
    bases are 0-based ``[pos, end)``; ``window`` the replaced 0-based ``[w0, w1)``;
    ``fragment_density`` the non-duplicate fragments per base (all copies) measured on the
    removed pairs, which the simulation draws with; depths are mean per-base coverage of
    primary, non-duplicate reads over the event, ``flank_depth_after`` over the rest of the
    window. ``realized_vaf`` is ALT fragments across the haplotype's first junction (or
    holding inserted bases) over those plus REF fragments across the left breakpoint.
    """

    chrom: str
    pos: int
    svtype: str
    end: int
    requested_vaf: float
    cn: int | None
    realized_vaf: float
    depth_before: float
    depth_after: float
    flank_depth_after: float
    expected_ratio: float
    window: tuple[int, int]
    pairs_removed: int
    records_removed: int
    pairs_simulated: int
    alt_pairs: int
    split_reads: int
    discordant_pairs: int
    fragment_density: float = 0.0
    duplicate_pairs: int = 0
    alt: str = ""
    ref: str = "N"


@dataclass
class SVPlan:
    """The records one SV removes and adds (not yet written)."""

    request: SVRequest
    outcome: SVOutcome
    removed: dict[Ident, pysam.AlignedSegment]
    added: list[pysam.AlignedSegment] = field(default_factory=list)


class _FastaRef:
    """The two things :func:`make_sv` asks of a reference, over a pysam FASTA."""

    def __init__(self, fasta: pysam.FastaFile) -> None:
        self._fa = fasta
        self.lengths = dict(zip(fasta.references, fasta.lengths, strict=True))

    def fetch(self, chrom: str, a: int, b: int) -> bytes:
        return self._fa.fetch(chrom, a, b).upper().encode()


def _variant(req: SVRequest, fasta: pysam.FastaFile, rng: np.random.Generator) -> Variant:
    gt = (1, 1)
    return make_sv(reference=_FastaRef(fasta), chrom=req.chrom, pos=req.pos - 1,
                   svtype=req.svtype, size=req.size, gt=gt, vid=req.label, cn=req.cn,
                   sequence=req.sequence, rng=rng)


def _collect(af: pysam.AlignmentFile, chrom: str, w0: int, w1: int, pad: int
             ) -> tuple[dict[Ident, pysam.AlignedSegment], int]:
    """Records of every pair with a primary record starting in ``[w0, w1)``.

    Returns the records by identity, and the numbers of non-duplicate and duplicate
    (flag 0x400 or 0x200) fragments whose leftmost
    primary record starts in the window (the density estimate's numerator).
    """
    names: set[str] = set()
    for r in af.fetch(chrom, w0, w1):
        if w0 <= r.reference_start < w1 and not r.flag & 0x900:
            names.add(r.query_name)
    found: dict[Ident, pysam.AlignedSegment] = {}
    clen = af.get_reference_length(chrom)
    for r in af.fetch(chrom, max(w0 - pad, 0), min(w1 + pad, clen)):
        if r.query_name in names:
            found[_ident(r)] = r
    todo = [r for r in found.values() if not r.flag & 0x900]
    seen_prim = {(r.query_name, r.flag & 0xC0) for r in todo}
    while todo:
        # batched: one sweep per cluster of wanted positions (a fetch per read would scan
        # every read overlapping the position: depth squared at thousands-x)
        wants: dict[str, dict[tuple[int, str, int], int]] = {}
        for r in todo:
            mate_bits = 0xC0 ^ (r.flag & 0xC0) if r.is_paired else 0
            if (r.is_paired and (r.query_name, mate_bits) not in seen_prim
                    and r.next_reference_id >= 0):
                contig = af.get_reference_name(r.next_reference_id)
                if 0 <= r.next_reference_start < af.get_reference_length(contig):
                    wants.setdefault(contig, {})[
                        (r.next_reference_start, r.query_name, mate_bits)] = -1
            if r.has_tag("SA"):
                for entry in str(r.get_tag("SA")).rstrip(";").split(";"):
                    parts = entry.split(",")
                    if len(parts) >= 2 and parts[0] in af.references:
                        p = int(parts[1]) - 1
                        if 0 <= p < af.get_reference_length(parts[0]):
                            wants.setdefault(parts[0], {})[
                                (p, r.query_name, r.flag & 0xC0)] = 0x800
        todo = []
        for contig, keys in wants.items():
            for lo, hi in _clusters(sorted({k[0] for k in keys}), gap=2000):
                for m in af.fetch(contig, lo, hi + 1):
                    if m.reference_start < lo:
                        continue
                    kind = keys.get((m.reference_start, m.query_name, m.flag & 0xC0))
                    if kind is None:
                        continue
                    key = _ident(m)
                    if kind == -1 and not m.flag & 0x900 and key not in found:
                        found[key] = m
                        seen_prim.add((m.query_name, m.flag & 0xC0))
                        todo.append(m)
                    elif kind == 0x800 and m.flag & 0x800:
                        found.setdefault(key, m)
    starts: dict[str, list[int]] = {}
    dup: set[str] = set()
    for r in found.values():
        if r.flag & 0x900:
            continue
        if r.flag & 0x600:
            dup.add(r.query_name)
        if r.reference_id == af.get_tid(chrom):
            starts.setdefault(r.query_name, []).append(r.reference_start)
    lead = [nm for nm, s in starts.items() if w0 <= min(s) < w1]
    n_dup = sum(1 for nm in lead if nm in dup)
    return found, len(lead) - n_dup, n_dup


def _clusters(points: list[int], *, gap: int) -> list[tuple[int, int]]:
    out: list[list[int]] = []
    for p in points:
        if out and p - out[-1][1] <= gap:
            out[-1][1] = p
        else:
            out.append([p, p])
    return [(a, b) for a, b in out]


# -- alignment by construction ----------------------------------------------------------------
def _cigar(rp: np.ndarray) -> list[tuple[int, int]]:
    """CIGAR of bases at reference positions ``rp`` (ascending, -1 = no position)."""
    mapped = np.flatnonzero(rp != INSERTED)
    first, last = int(mapped[0]), int(mapped[-1])
    if last - first + 1 == len(mapped) and rp[last] - rp[first] == last - first:
        # the common case: one gapless run, soft clips around it
        ops = [(4, first)] if first else []
        ops.append((0, last - first + 1))
        if last < len(rp) - 1:
            ops.append((4, len(rp) - 1 - last))
        return ops
    ops: list[tuple[int, int]] = [(4, first)] if first else []
    prev = None
    for k in range(first, last + 1):
        p = int(rp[k])
        if p == INSERTED:
            op = 1
        else:
            if prev is not None and p - prev > 1:
                ops.append((2, p - prev - 1))
            prev = p
            op = 0
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + 1)
        else:
            ops.append((op, 1))
    if last < len(rp) - 1:
        ops.append((4, len(rp) - 1 - last))
    return ops


def _blocks(hap: Haplotype, a: int, rl: int) -> list[dict]:
    """One alignment per haplotype segment the read ``hap[a:a+rl]`` touches."""
    p0, p1 = int(hap.ref_pos[a]), int(hap.ref_pos[a + rl - 1])
    if hap.seg[a] == hap.seg[a + rl - 1] and p0 != INSERTED and p1 != INSERTED:
        # most reads: one segment, gapless (checked by the span), no split
        if not hap.rev[a] and p1 - p0 == rl - 1:
            return [{"n": rl, "rev": False, "pos": p0, "end": p1 + 1, "cigar": [(0, rl)]}]
        if hap.rev[a] and p0 - p1 == rl - 1:
            return [{"n": rl, "rev": True, "pos": p1, "end": p0 + 1, "cigar": [(0, rl)]}]
    seg = hap.seg[a:a + rl]
    rp = hap.ref_pos[a:a + rl]
    cuts = [0, *(np.flatnonzero(np.diff(seg)) + 1).tolist(), rl]
    out = []
    for x, y in zip(cuts, cuts[1:], strict=False):
        r = rp[x:y]
        mapped = r[r != INSERTED]
        if not len(mapped):
            continue
        rev = bool(hap.rev[a + x])
        full = np.full(rl, INSERTED, dtype=np.int64)
        if rev:
            full[rl - y:rl - x] = r[::-1]
        else:
            full[x:y] = r
        out.append({"n": int(len(mapped)), "rev": rev, "pos": int(mapped.min()),
                    "end": int(mapped.max()) + 1, "cigar": _cigar(full)})
    return out


def _md_nm(cigar: list[tuple[int, int]], seq: str, ref: str, ref_off: int, pos: int
           ) -> tuple[str, int]:
    """MD and NM of an alignment (read ``N`` and reference ``N`` count as mismatches)."""
    md: list[str] = []
    run = nm = 0
    q, r = 0, pos - ref_off
    for op, n in cigar:
        if op == 0:
            rs = ref[r:r + n]
            a = np.frombuffer(seq[q:q + n].encode(), np.uint8)
            b = np.frombuffer(rs.encode(), np.uint8)
            prev = 0
            for k in np.flatnonzero((a != b) | (b == 78)).tolist():  # 78 = "N"
                md.append(f"{run + k - prev}{rs[k]}")
                run, prev = 0, k + 1
                nm += 1
            run += n - prev
            q += n
            r += n
        elif op == 1:
            q += n
            nm += n
        elif op == 4:
            q += n
        elif op == 2:
            md.append(f"{run}^{ref[r:r + n]}")
            run = 0
            nm += n
            r += n
    md.append(str(run))
    return "".join(md), nm


def _cigar_str(cigar: list[tuple[int, int]]) -> str:
    return "".join(f"{n}{'MIDNSHP=X'[op]}" for op, n in cigar)


def _coverage(records, lo: int, hi: int) -> np.ndarray:
    cov = np.zeros(hi - lo + 1, dtype=np.int64)
    for r in records:
        for a, b in r.get_blocks():
            a, b = max(a, lo), min(b, hi)
            if a < b:
                cov[a - lo] += 1
                cov[b - lo] -= 1
    return np.cumsum(cov)[:-1]


def _fragment_seed(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 1)))


def plan_sv(*, af: pysam.AlignmentFile, fasta: pysam.FastaFile, req: SVRequest, seed: int,
            name_prefix: str | None = None) -> SVPlan:
    """Work out the pairs to remove and the simulated pairs replacing them for one SV.

    Parameters
    ----------
    af
        The indexed input BAM.
    fasta
        The reference it is aligned to.
    req
        The event.
    seed
        Run seed; the event's draws use ``SeedSequence(seed, spawn_key=(req.index, 1))``.

    Raises
    ------
    VariantError
        No coverage in the window, too few pairs to learn from, or a VAF whose expected ALT
        fragments round to zero at the observed depth.
    """
    rng = _fragment_seed(seed, req.index)
    var = _variant(req, fasta, rng)
    ev_lo, ev_hi = var.pos + 1, max(var.end, var.pos + 1)  # affected bases [ev_lo, ev_hi)
    clen = af.get_reference_length(req.chrom)
    prof = profile_region(af, req.chrom, ev_lo - _PROFILE_PAD, ev_hi + _PROFILE_PAD,
                          where=req.label)
    rl, lmax = prof.read_length, prof.max_fragment
    flank = lmax + 1
    w0, w1 = max(ev_lo - flank, 0), min(ev_hi + flank, clen)
    removed, n_frag, n_dup = _collect(af, req.chrom, w0, w1, pad=lmax + rl)
    # duplicates per simulated fragment, as observed (PCR-heavy panels: often > 1)
    dup_lam = n_dup / n_frag if n_frag else 0.0
    if n_frag == 0:
        raise VariantError(f"no read pair starts in the window {req.chrom}:{w0 + 1}-{w1}: "
                           "no coverage to replace", where=req.label)
    rho = n_frag / (w1 - w0)  # fragments per base, all genome copies
    # haplotypes over the window plus room for the fragments that start or end near it
    h0, h1 = max(w0 - lmax - rl, 0), min(w1 + lmax + rl, clen)
    ref_bytes = fasta.fetch(req.chrom, h0, h1).upper().encode()
    if req.svtype == "CNV":
        alt_haps = build_haplotypes(ref_bytes, start=h0, variants=[var])
        weights = [req.vaf, req.vaf]
    else:
        alt_haps = build_haplotypes(ref_bytes, start=h0, variants=[var])[:1]
        weights = [2 * req.vaf]
    ref_hap = build_haplotypes(ref_bytes, start=h0, variants=[])[0]
    alt_haps = [_real_junctions(h) for h in alt_haps]
    sources = [(h, w, True) for h, w in zip(alt_haps, weights, strict=True)]
    sources.append((ref_hap, 2.0 - sum(weights), False))
    expected_alt = rho / 2 * weights[0] * lmax
    if req.svtype != "CNV" and expected_alt < 0.5:
        raise VariantError(
            f"VAF {req.vaf} is impossible at the observed depth: {rho * rl:.1f}x gives "
            f"{expected_alt:.2f} ALT fragments per fragment length", where=req.label)
    # names unique per event and per input: re-spiking a spiked BAM must not reuse the names
    # of reads it keeps (the digest covers the names of the pairs being replaced)
    digest = blake2b(f"{seed}\t{req.label}".encode(), digest_size=4)
    for name in sorted({r.query_name for r in removed.values()}):
        digest.update(name.encode() + b"\n")
    prefix = name_prefix or f"synth-sv{req.index}-{digest.hexdigest()}"
    contig_ref = fasta.fetch(req.chrom, h0, h1).upper()
    tid = af.get_tid(req.chrom)
    added: list[pysam.AlignedSegment] = []
    n_pairs = alt_pairs = split = discordant = dups = 0
    ref_sup = alt_sup = 0
    k_name = 0
    for hap, weight, is_alt in sources:
        if weight <= 0:
            continue
        cand = np.flatnonzero((hap.anchor >= w0 - lmax) & (hap.anchor < w1))
        first_j = np.flatnonzero(np.diff(hap.seg))
        first_j = int(first_j[0]) + 1 if len(first_j) else -1
        ins_cum = np.concatenate(([0], np.cumsum(hap.ref_pos == INSERTED)))
        n = int(rng.poisson(rho / 2 * weight * len(cand)))
        starts = np.sort(cand[rng.integers(0, len(cand), size=n)])
        lens = prof.fragment_lengths[rng.integers(0, len(prof.fragment_lengths), size=n)]
        for s, L in zip(starts.tolist(), lens.tolist(), strict=True):
            if s + L > len(hap.seq):
                continue
            pair = _simulate_pair(hap, int(s), int(L), rl, prof, rng)
            if pair is None:
                continue
            reads, proper = pair
            placed = [rd["pos"] for rd in reads if rd["mapped"]]
            if not any(w0 <= p < w1 for p in placed):
                continue
            name = f"{prefix}:{k_name}"
            k_name += 1
            recs = _records(af.header, tid, req.chrom, name, reads, proper, prof, contig_ref,
                            h0)
            added.extend(recs)
            n_pairs += 1
            for _ in range(int(rng.poisson(dup_lam)) if dup_lam else 0):
                for r in _records(af.header, tid, req.chrom, f"{prefix}:{k_name}", reads,
                                  proper, prof, contig_ref, h0):
                    r.flag |= 0x400
                    added.append(r)
                k_name += 1
                dups += 1
            split += sum(1 for rd in reads if rd["mapped"] and len(rd["sa"]) > 0)
            if not proper:  # across a junction, or a mate unmapped inside inserted bases
                discordant += 1
            if is_alt:
                alt_pairs += 1
                if (s < first_j <= s + L - 1) or ins_cum[s + L] > ins_cum[s]:
                    alt_sup += 1
            elif _covers_breakpoint(hap, int(s), int(L), ev_lo, ev_hi, req.svtype):
                ref_sup += 1
    lo_cov, hi_cov = w0, w1
    orig = [r for r in af.fetch(req.chrom, lo_cov, hi_cov) if not r.flag & _SKIP]
    kept = [r for r in orig if _ident(r) not in removed]
    new_prim = [r for r in added if not r.flag & _SKIP]
    cov_before = _coverage(orig, lo_cov, hi_cov)
    cov_after = _coverage(kept + new_prim, lo_cov, hi_cov)
    ev_a, ev_b = (ev_lo, ev_hi) if ev_hi > ev_lo else (ev_lo - 1, ev_lo + 1)
    ev_a, ev_b = ev_a - lo_cov, ev_b - lo_cov
    flank_idx = np.r_[0:max(ev_a - rl, 1), min(ev_b + rl, len(cov_after) - 1):len(cov_after)]
    expected = _expected_ratio(req)
    outcome = SVOutcome(
        chrom=req.chrom, pos=var.pos + 1, svtype=req.svtype, end=var.end, ref=var.ref,
        alt=req.alt if req.svtype != "INS" else var.alt, requested_vaf=req.vaf, cn=req.cn,
        realized_vaf=round(alt_sup / (alt_sup + ref_sup), 6) if alt_sup + ref_sup else 0.0,
        depth_before=round(float(cov_before[ev_a:ev_b].mean()), 3),
        depth_after=round(float(cov_after[ev_a:ev_b].mean()), 3),
        flank_depth_after=round(float(cov_after[flank_idx].mean()), 3),
        expected_ratio=expected, window=(w0, w1), pairs_removed=len(
            {r.query_name for r in removed.values()}),
        records_removed=len(removed), pairs_simulated=n_pairs, alt_pairs=alt_pairs,
        split_reads=split, discordant_pairs=discordant, fragment_density=rho,
        duplicate_pairs=dups)
    return SVPlan(req, outcome, removed, added)


def _real_junctions(hap: Haplotype) -> Haplotype:
    """The haplotype with segments cut only where the reference really jumps.

    :func:`build_haplotypes` starts a segment at each tandem copy, including where the first
    copy continues the anchor base contiguously; a read across that seam aligns in one piece.
    """
    rp, rev = hap.ref_pos, hap.rev
    step = np.where(rev[1:], -1, 1)
    contiguous = (rev[1:] == rev[:-1]) & ((rp[1:] == rp[:-1] + step)
                                           | (rp[1:] == INSERTED) | (rp[:-1] == INSERTED))
    cut = (np.diff(hap.seg) != 0) & ~contiguous
    seg = np.concatenate(([0], np.cumsum(cut))).astype(np.int32)
    return replace(hap, seg=seg)


def _expected_ratio(req: SVRequest) -> float:
    """Depth over the event relative to before (INS/INV: 1)."""
    v = req.vaf
    if req.svtype == "DEL":
        return 1.0 - v
    if req.svtype == "DUP":
        return 1.0 + v
    if req.svtype == "CNV":
        return (1.0 - v) + v * (req.cn or 0) / 2.0
    return 1.0


def _covers_breakpoint(hap: Haplotype, s: int, L: int, ev_lo: int, ev_hi: int,
                       svtype: str) -> bool:
    """A reference-haplotype fragment across the left breakpoint (the REF allele's support).

    One breakpoint only, as an ALT fragment counts once, at its haplotype's first junction.
    """
    a, b = int(hap.ref_pos[s]), int(hap.ref_pos[s + L - 1])
    return a < ev_lo <= b


def _simulate_pair(hap: Haplotype, s: int, L: int, rl: int, prof: RegionProfile,
                   rng: np.random.Generator):
    """Two reads of the fragment ``hap[s:s+L]``; None when both would be unmapped."""
    read1_left = bool(rng.integers(0, 2))
    reads = []
    spans_junction = hap.seg[s] != hap.seg[s + L - 1]
    for j, a in enumerate((s, s + L - rl)):
        is_r1 = read1_left == (j == 0)
        pool = prof.quals[0 if is_r1 else 1]
        q = pool[int(rng.integers(0, len(pool)))]
        bases = hap.seq[a:a + rl].copy()
        cyc = bases if j == 0 else _COMP[bases[::-1]]  # cycle order
        err = rng.random(rl) < 10.0 ** (-q.astype(np.float64) / 10.0)
        err &= _CODE[cyc] < 4
        if err.any():
            cyc = cyc.copy()
            cyc[err] = _ACGT[(_CODE[cyc[err]] + rng.integers(1, 4, size=int(err.sum()))) % 4]
        hap_bases = cyc if j == 0 else _COMP[cyc[::-1]]
        hap_q = q if j == 0 else q[::-1]
        blocks = _blocks(hap, a, rl)
        good = [b for b in blocks if b["n"] >= MIN_MAPPED]
        if not good:
            reads.append({"mapped": False, "is_r1": is_r1, "j": j, "seq": cyc, "qual": q,
                          "pos": -1, "blocks": [], "sa": []})
            continue
        prim = max(good, key=lambda b: b["n"])
        others = [b for b in good if b is not prim and b["n"] >= MIN_SPLIT]
        reads.append({"mapped": True, "is_r1": is_r1, "j": j, "hap_seq": hap_bases,
                      "hap_q": hap_q, "prim": prim, "blocks": [prim, *others],
                      "sa": others, "pos": prim["pos"]})
    if not any(rd["mapped"] for rd in reads):
        return None
    proper = all(rd["mapped"] for rd in reads) and not spans_junction
    return reads, proper


def _records(header, tid, chrom, name, reads, proper, prof, ref, ref_off):
    """pysam records (primaries, then supplementaries) of one simulated pair."""
    for rd in reads:  # an unmapped read sits at its mate
        if not rd["mapped"]:
            rd["pos"] = next(o["pos"] for o in reads if o["mapped"])
    aligned = []
    for rd in reads:
        per_block = []
        if rd["mapped"]:
            for b in rd["blocks"]:
                seq = _COMP[rd["hap_seq"][::-1]] if b["rev"] else rd["hap_seq"]
                qual = rd["hap_q"][::-1] if b["rev"] else rd["hap_q"]
                s = seq.tobytes().decode()
                md, nm = _md_nm(b["cigar"], s, ref, ref_off, b["pos"])
                per_block.append({**b, "seq": s, "qual": qual, "md": md, "nm": nm,
                                  "reverse": (rd["j"] == 1) ^ b["rev"]})
        aligned.append(per_block)
    both = all(rd["mapped"] for rd in reads)
    if both:
        lo = min(al[0]["pos"] for al in aligned)
        hi = max(al[0]["end"] for al in aligned)
    out = []
    for j, (rd, al) in enumerate(zip(reads, aligned, strict=True)):
        mate, mal = reads[1 - j], aligned[1 - j]
        base = 0x1 | (0x2 if proper else 0) | (0x40 if rd["is_r1"] else 0x80)
        if mate["mapped"]:
            base |= 0x20 if mal[0]["reverse"] else 0
        else:
            base |= 0x8
        if not rd["mapped"]:
            rec = pysam.AlignedSegment(header)
            rec.query_name = name
            rec.flag = base | 0x4
            rec.reference_id = tid
            rec.reference_start = rd["pos"]
            rec.mapping_quality = 0
            rec.query_sequence = rd["seq"].tobytes().decode()
            rec.query_qualities = pysam.qualitystring_to_array(
                (rd["qual"] + 33).tobytes().decode())
            rec.next_reference_id = tid
            rec.next_reference_start = mate["pos"]
            rec.template_length = 0
            _tags(rec, prof, mc=mal[0]["cigar"] if mal else None)
            out.append(rec)
            continue
        if both:
            leftmost = al[0]["pos"] < mal[0]["pos"] or (al[0]["pos"] == mal[0]["pos"] and j == 0)
            tlen = (hi - lo) * (1 if leftmost else -1)
        else:
            tlen = 0
        sa_all = [(f"{chrom},{b['pos'] + 1},{'-' if b['reverse'] else '+'},"
                   f"{_cigar_str(b['cigar'])},60,{b['nm']};") for b in al]
        for k, b in enumerate(al):
            rec = pysam.AlignedSegment(header)
            rec.query_name = name
            rec.flag = base | (0x10 if b["reverse"] else 0) | (0x800 if k else 0)
            rec.reference_id = tid
            rec.reference_start = b["pos"]
            rec.mapping_quality = 60
            rec.cigartuples = b["cigar"]
            rec.query_sequence = b["seq"]
            rec.query_qualities = pysam.qualitystring_to_array(
                (b["qual"] + 33).tobytes().decode())
            rec.next_reference_id = tid
            rec.next_reference_start = mate["pos"]
            rec.template_length = tlen
            _tags(rec, prof, mc=mal[0]["cigar"] if mal else None, md=b["md"], nm=b["nm"])
            if len(al) > 1:
                rec.set_tag("SA", "".join(sa for i, sa in enumerate(sa_all) if i != k),
                            value_type="Z")
            out.append(rec)
    return out


def _tags(rec, prof: RegionProfile, *, mc=None, md=None, nm=None) -> None:
    if prof.read_group is not None:
        rec.set_tag("RG", prof.read_group, value_type="Z")
    if mc is not None and "MC" in prof.tags:
        rec.set_tag("MC", _cigar_str(mc), value_type="Z")
    if md is not None:
        rec.set_tag("MD", md, value_type="Z")
        rec.set_tag("NM", nm, value_type="i")

"""Paired-end reads of one work unit, drawn in bulk from its haplotypes.

Fragments are placed over haplotype coordinates (so depth follows copy number: a duplicated
segment gets twice the fragments, a deleted one none) and owned by the unit where the first
base's reference anchor lies. Every draw comes from the unit's own generator, in a fixed order
(per haplotype fragment lengths and starts, then strands, then R1 and R2 errors batch by
batch), so a unit's reads depend only on the spec and the unit's identity.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..intervals import intersect, merge
from ..io.bam import CIGAR_OPS, FLAG, RecordBatch, encode_records, pack_seq, reg2bin
from ..io.fastq import fastq_bytes, read_names
from ..plan import Plan, Streams, WorkUnit, unit_seed
from ..variants.assemble import window_variants
from ..variants.complex import cpx_territory_delta
from ..variants.haplotype import INSERTED, Haplotype, build_haplotypes
from ..variants.model import Variant
from ..variants.ploidy import restrict_haplotypes
from ..variants.realized import clone_levels, hap_carriers, support_counts
from ..variants.sv import hap_copies
from .adapters import add_adapter_readthrough, readthrough_cigars
from .capture_plan import CaptureProposal, capture_layout, whole_counts
from .duplicates import duplicate_flags, duplicate_plan
from .errormodel import ErrorModel
from .fragments import draw_fragment_lengths, nominal_fragment_mean
from .gcbias import fragment_gc, gc_acceptance
from .supplementary import supplementary_records

__all__ = ["ReadBatch", "simulate_unit", "BATCH_PAIRS", "fragment_starts"]

#: Pairs built at once; bounds the memory of the read matrices of a unit. Halving it from
#: 65,536 took ~115 MB off a unit's peak (first touches of that memory cost ~1 s/GB on the
#: benchmark VM) at no measurable cost per batch.
BATCH_PAIRS = 32_768

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b


def _revcomp(m: np.ndarray) -> np.ndarray:
    return _COMP[m[:, ::-1]]


@dataclass
class ReadBatch:
    """One batch of simulated pairs: FASTQ text of both mates and raw BAM records."""

    r1: bytes | memoryview
    r2: bytes | memoryview
    records: list[RecordBatch]
    """Raw BAM records in parts, unsorted (empty without a BAM): sorted once, by the caller."""
    pairs: int
    support: dict[str, list[int]] | None = None
    """Somatic specs: per somatic variant ``[alt reads, spanning reads]`` of this batch."""


def _fragment_lengths(rng: np.random.Generator, n: int, plan: Plan) -> np.ndarray:
    fr = plan.spec.fragment
    if fr.model == "empirical":  # inverse CDF of the learned histogram (reads/fragments.py)
        return draw_fragment_lengths(rng=rng, n=n, spec=plan.spec, base_dir=plan.base_dir)
    # With adapter read-through a fragment may be shorter than the read (read into the adapter).
    lo = fr.min if plan.spec.library.adapters else max(fr.min, plan.spec.reads.length)
    hi = fr.max
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:  # truncated normal by rejection, in bulk
        draw = np.rint(rng.normal(fr.mean, fr.sd, size=max(64, int((n - len(out)) * 1.3))))
        out = np.concatenate([out, draw[(draw >= lo) & (draw <= hi)].astype(np.int64)])
    return out[:n]


def fragment_starts(plan: Plan, unit: WorkUnit) -> np.ndarray:
    """Where fragments of this unit may start, as (k, 2) intervals inside the chunk.

    WGS: the unit's accessible territory. Exome/panel: padded targets shifted left by half a
    mean fragment, so fragments centre on targets and a chunk owns exactly the fragments that
    start in it (no dip at chunk edges).
    """
    if plan.targets is None:
        return unit.territory
    shift = int(round(nominal_fragment_mean(plan.spec, base_dir=plan.base_dir) / 2))
    tg = plan.targets.get(unit.contig)
    if tg is None or not len(tg):
        return np.zeros((0, 2), dtype=np.int64)
    shifted = merge(np.clip(tg - shift, 0, None))
    return intersect(shifted, np.array([[unit.start, unit.end]], dtype=np.int64))


def _allowed(plan: Plan, unit: WorkUnit, wend: int) -> np.ndarray:
    regions = [u.regions for u in plan.units[unit.index:]
               if u.contig == unit.contig and u.start < wend]
    acc = plan.reference.accessible(unit.contig, unit.start, wend)
    return intersect(merge(acc), merge(np.concatenate(regions)))


def _inside(x: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """Whether each position lies in merged intervals ``iv`` (k, 2); shape like ``x``."""
    if not len(iv):
        return np.zeros(len(x), dtype=bool)
    j = np.searchsorted(iv[:, 0], x, side="right") - 1
    return (j >= 0) & (x < iv[np.maximum(j, 0), 1])


def _draw_on_haplotype(rng, plan, hap: Haplotype, n: int, elig: np.ndarray, ok: np.ndarray,
                       propose: CaptureProposal | None = None):
    """``n`` fragments starting at haplotype indices ``elig``, lying on ``ok`` bases only.

    Starts are uniform over ``elig``, or drawn by ``propose`` (captured fragments) and kept
    when they fall in ``elig``.

    With a GC bias curve, a fitting fragment is kept with probability ``gc_acceptance`` of its
    GC fraction (one uniform each) and more are drawn until ``n`` are kept. A fragment shorter
    than the read must lie on one forward segment and hold a reference base (the adapter
    read-through path builds such reads from the fragment alone).
    """
    m = len(hap.seq)
    length = plan.spec.reads.length
    curve = plan.spec.library.gc_bias
    # Fragment [s, s + len) fits when no bad base lies in it: compare with the next bad base.
    next_bad = np.minimum.accumulate(np.where(ok, m, np.arange(m))[::-1])[::-1]
    next_bad = np.concatenate([next_bad, [m]])
    short_ok = plan.spec.library.adapters and plan.spec.fragment.min < length
    if short_ok:
        ins_cum = np.concatenate(([0], np.cumsum(hap.ref_pos == INSERTED)))
        rev_cum = np.concatenate(([0], np.cumsum(hap.rev)))
    if propose is not None:
        is_elig = np.zeros(m, dtype=bool)
        is_elig[elig] = True
    got_s, got_l = [], []
    have = 0
    for _ in range(100):
        if have >= n:
            break
        k = max(64, int((n - have) * 1.3))
        flen = _fragment_lengths(rng, k, plan)
        if propose is None:
            s = elig[rng.integers(0, len(elig), size=k)]
            fit = s + flen <= next_bad[s]
        else:
            s = propose(rng, flen)
            valid = (s >= 0) & (s < m)
            s = np.where(valid, s, 0)
            fit = valid & is_elig[s] & (s + flen <= next_bad[s])
        if short_ok:
            e = np.minimum(s + flen, m)
            plain = ((hap.seg[s] == hap.seg[e - 1]) & (rev_cum[e] == rev_cum[s])
                     & (ins_cum[e] - ins_cum[s] < e - s))
            fit &= (flen >= length) | plain
        if curve != "none":
            fs, fln = s[fit], flen[fit]
            keep = rng.random(len(fs)) < gc_acceptance(
                fragment_gc(hap_seq=hap.seq, starts=fs, lengths=fln), curve=curve)
            fit[np.flatnonzero(fit)[~keep]] = False
        got_s.append(s[fit])
        got_l.append(flen[fit])
        have += int(fit.sum())
    if not got_s:
        z = np.zeros(0, dtype=np.int64)
        return z, z
    return np.concatenate(got_s)[:n], np.concatenate(got_l)[:n]


def _sv_territory(svs: list[Variant], slot: int, starts_iv: np.ndarray, e_ref: int) -> int:
    """Start territory of a haplotype: the reference's, plus or minus what its SVs add."""
    out = e_ref
    for v in svs:
        if v.svtype == "INS":
            if v.gt[slot] and _inside(np.array([v.pos]), starts_iv)[0]:
                out += len(v.alt) - 1
        elif v.svtype == "CPX":
            out += cpx_territory_delta(v, slot, starts_iv)
        elif v.svtype != "INV":
            span = intersect(starts_iv, np.array([[v.pos + 1, v.end]], dtype=np.int64))
            out += (hap_copies(v, slot) - 1) * int((span[:, 1] - span[:, 0]).sum())
    return max(out, 0)


def _draw_fragments(rng, plan, unit, haps, slots, weights, svs, n_ref, wend):
    """Fragments over haplotype coordinates, so depth follows copy number.

    A haplotype with weight ``w`` gets ``n_ref * w * E_h / E_ref`` fragments, where ``E_h``
    counts its bases whose reference anchor lies in the unit's start territory (``E_ref`` for
    the reference): a duplicated segment gets twice the fragments, a deleted one none.

    Returns
    -------
    (hap, start, length) : three (n,) int64 arrays, sorted by the start's reference anchor.
    """
    layout = capture_layout(plan)
    if layout is not None:  # exome/panel under the capture model
        return _draw_captured(rng, plan, unit, haps, slots, weights, svs, layout, wend)
    starts_iv = merge(fragment_starts(plan, unit))
    allowed = _allowed(plan, unit, wend)
    e_ref = int((starts_iv[:, 1] - starts_iv[:, 0]).sum()) if len(starts_iv) else 0
    z = np.zeros(0, dtype=np.int64)
    if n_ref == 0 or e_ref == 0 or not len(allowed):
        return z, z, z
    # Budget per haplotype: its start territory as changed by SVs only (small indels leave
    # it alone, so a plain diploid region gets exactly the reference's pairs), split by
    # largest remainders so the total is a whole, fixed number.
    # Each haplotype's own SV list (somatic clones differ); translocation junctions own the
    # starts just before each break on a carrying haplotype (synthlib.reads.junctions).
    from .junctions import start_exclusions

    excl = [start_exclusions(h.svs, slot, plan.spec.fragment.max)
            for h, slot in zip(haps, slots, strict=True)]
    expect = np.array([
        n_ref * w * max(_sv_territory(list(h.svs), slot, starts_iv, e_ref)
                        - _covered(intersect(starts_iv, ex)), 0) / e_ref
        for w, slot, h, ex in zip(weights, slots, haps, excl, strict=True)])
    counts = np.floor(expect).astype(np.int64)
    extra = int(round(expect.sum())) - int(counts.sum())
    if extra > 0:
        counts[np.argsort(-(expect - counts), kind="stable")[:extra]] += 1
    hs, ss, ls, keys = [], [], [], []
    for k, hap in enumerate(haps):
        ok = _inside(hap.anchor, allowed)
        elig = np.flatnonzero(_inside(hap.anchor, starts_iv) & ok
                              & ~_inside(hap.anchor, excl[k]))
        n = int(counts[k])
        if n == 0 or not len(elig):
            continue
        s, fl = _draw_on_haplotype(rng, plan, hap, n, elig, ok)
        hs.append(np.full(len(s), k, dtype=np.int64))
        ss.append(s)
        ls.append(fl)
        keys.append(hap.anchor[s])
    return _by_anchor(hs, ss, ls, keys)


def _covered(iv: np.ndarray) -> int:
    return int((iv[:, 1] - iv[:, 0]).sum()) if len(iv) else 0


def _draw_captured(rng, plan, unit, haps, slots, weights, svs, layout, wend):
    """Exome/panel fragments under the capture model (:mod:`synthlib.reads.capture_plan`).

    Captured and off-target fragments start in the unit's chunk on allowed bases, over
    haplotype coordinates. A haplotype's captured budget scales with its capture start mass
    when the window holds SVs (1 otherwise: small indels leave it alone), its off-target
    budget with its start territory, as for WGS. Draw order: per haplotype, captured then
    off-target fragments.
    """
    allowed = _allowed(plan, unit, wend)
    starts_iv = intersect(allowed, np.array([[unit.start, unit.end]], dtype=np.int64))
    e_ref = int((starts_iv[:, 1] - starts_iv[:, 0]).sum()) if len(starts_iv) else 0
    n_on = layout.on_pairs.get(unit.index, 0)
    n_off = layout.off_pairs.get(unit.index, 0)
    z = np.zeros(0, dtype=np.int64)
    if e_ref == 0 or n_on + n_off == 0:
        return z, z, z
    lo, hi = unit.start, unit.end + plan.spec.fragment.max  # targets a start in the chunk hits
    mean = nominal_fragment_mean(plan.spec, base_dir=plan.base_dir)

    def proposal(ref_pos, anchor):
        return CaptureProposal(base_weight=layout.bait_weight_of(contig=unit.contig,
                                                                 ref_pos=ref_pos),
                               anchor=anchor, lo=lo, hi=hi)

    props = [proposal(h.ref_pos, h.anchor) for h in haps]
    ratio = np.ones(len(haps))
    if any(h.svs for h in haps) and n_on:
        ref_pos = np.arange(unit.start, wend, dtype=np.int64)
        m_ref = proposal(ref_pos, ref_pos).start_mass(start_ok=_inside(ref_pos, starts_iv),
                                                      frag_len=mean)
        if m_ref > 0:
            ratio = np.array([p.start_mass(start_ok=_inside(h.anchor, starts_iv), frag_len=mean)
                              for p, h in zip(props, haps, strict=True)]) / m_ref
    from .junctions import start_exclusions  # translocation junctions own these starts

    excl = [start_exclusions(h.svs, slot, plan.spec.fragment.max)
            for h, slot in zip(haps, slots, strict=True)]
    on = whole_counts(n_on * np.asarray(weights, dtype=np.float64) * ratio)
    off = whole_counts(np.array([
        n_off * w * max(_sv_territory(list(h.svs), slot, starts_iv, e_ref)
                        - _covered(intersect(starts_iv, ex)), 0) / e_ref
        for w, slot, h, ex in zip(weights, slots, haps, excl, strict=True)]))
    hs, ss, ls, keys = [], [], [], []
    for k, hap in enumerate(haps):
        ok = _inside(hap.anchor, allowed)
        elig = np.flatnonzero(_inside(hap.anchor, starts_iv) & ok
                              & ~_inside(hap.anchor, excl[k]))
        if not len(elig):
            continue
        for n, prop in ((int(on[k]), props[k]), (int(off[k]), None)):
            if n == 0 or (prop is not None and prop.empty):
                continue
            s, fl = _draw_on_haplotype(rng, plan, hap, n, elig, ok, propose=prop)
            hs.append(np.full(len(s), k, dtype=np.int64))
            ss.append(s)
            ls.append(fl)
            keys.append(hap.anchor[s])
    return _by_anchor(hs, ss, ls, keys)


def _by_anchor(hs: list, ss: list, ls: list, keys: list):
    """Haplotype, start and length of the drawn fragments, ordered by their start's anchor
    (stable, so draws at one anchor keep their draw order)."""
    if not ss:
        z = np.zeros(0, dtype=np.int64)
        return z, z, z
    h, s, fl, key = (np.concatenate(x) for x in (hs, ss, ls, keys))
    order = np.argsort(key, kind="stable")
    return h[order], s[order], fl[order]


def _haplotype_set(plan: Plan, unit: WorkUnit, ref: bytes, wend: int):
    """Haplotypes of the unit's window, each with its HP slot (0/1) and read weight.

    Without somatic variants: the two germline haplotypes, weight 1/2 each. With them: nested
    clones. A fragment's cell has a uniform coordinate ``u``; a somatic variant with threshold
    ``t = ploidy * vaf / (alleles in GT)`` is present when ``u < t``. The distinct thresholds cut
    [0, 1) into levels; each level is one pair of haplotypes weighted by its width / 2.
    """
    variants = window_variants(plan, unit, wend)
    normal = [v for v in variants if v.vaf is None]
    somatic = [v for v in variants if v.vaf is not None]
    if not somatic:
        return build_haplotypes(ref, start=unit.start, variants=normal), [0, 1], [0.5, 0.5]
    haps, slots, weights = [], [], []
    # One definition of the levels, shared with the realized-VAF counts.
    for lo, hi, carried in clone_levels(somatic):
        for slot, hap in enumerate(build_haplotypes(ref, start=unit.start,
                                                    variants=normal + carried)):
            haps.append(hap)
            slots.append(slot)
            weights.append((hi - lo) / 2)
    return haps, slots, weights


_OP_M, _OP_I, _OP_D, _OP_S = (CIGAR_OPS[c] for c in "MIDS")


def _cigar(rp: np.ndarray) -> list[tuple[int, int]]:
    """CIGAR of a read whose bases sit at reference positions ``rp`` (INSERTED = -1).

    Leading/trailing inserted bases are soft-clipped; a deletion sits between two mapped
    bases whose reference positions jump (see :func:`_cigars`).
    """
    return _cigars(np.asarray(rp)[None, :])[0]


def _cigars(rp: np.ndarray) -> list[list[tuple[int, int]]]:
    """:func:`_cigar` of every row of ``rp`` (k, L) at once (each row with a mapped base).

    Every base gets its operation (S outside the first..last mapped base, I inserted, M
    mapped); a run starts where the operation changes or the reference jumps between two
    mapped bases, and a jump puts a D of its size before the run. Only the final lists are
    built in Python, one tuple per operation.
    """
    k, length = rp.shape
    mapped = rp != INSERTED
    first = mapped.argmax(axis=1)
    last = length - 1 - mapped[:, ::-1].argmax(axis=1)
    col = np.arange(length)
    core = (col >= first[:, None]) & (col <= last[:, None])
    op = np.where(mapped, _OP_M, np.where(core, _OP_I, _OP_S))
    # Reference position of the previous mapped base (-1 before the first one).
    prev = np.empty_like(rp)
    prev[:, 0] = -1
    prev[:, 1:] = np.maximum.accumulate(np.where(mapped, rp, -1), axis=1)[:, :-1]
    gap = np.where(mapped & (prev >= 0), rp - prev - 1, 0)
    starts = np.ones((k, length), dtype=bool)
    starts[:, 1:] = (op[:, 1:] != op[:, :-1]) | (gap[:, 1:] > 0)
    row, j = np.nonzero(starts)
    ends = np.append(j[1:], length)
    ends[np.flatnonzero(np.diff(row))] = length  # a row's last run ends at the read end
    out: list[list[tuple[int, int]]] = [[] for _ in range(k)]
    for r, a, b, o, g in zip(row.tolist(), j.tolist(), ends.tolist(), op[row, j].tolist(),
                             gap[row, j].tolist(), strict=True):
        ops = out[r]
        if g > 0:
            ops.append((_OP_D, g))
        ops.append((o, b - a))
    return out


def _align(hap: Haplotype, ins_cum: np.ndarray, hstart: np.ndarray, length: int):
    """Reference start, span and CIGARs of reads at hap indices; the CIGARs only of reads that
    are not simply <L>M, by their index in ``hstart`` (most reads are simple)."""
    rp0 = hap.ref_pos[hstart]
    rp1 = hap.ref_pos[hstart + length - 1]
    n_ins = ins_cum[hstart + length] - ins_cum[hstart]
    simple = (n_ins == 0) & (rp1 - rp0 == length - 1)
    pos = rp0.copy()
    span = np.full(len(hstart), length, dtype=np.int64)
    odd = np.flatnonzero(~simple)
    if not len(odd):
        return pos, span, {}
    rp = hap.ref_pos[hstart[odd, None] + np.arange(length)]  # (k, L); each has a mapped base
    mapped = rp != INSERTED
    rows = np.arange(len(odd))
    lo = rp[rows, mapped.argmax(axis=1)]
    hi = rp[rows, length - 1 - mapped[:, ::-1].argmax(axis=1)]
    pos[odd], span[odd] = lo, hi - lo + 1
    return pos, span, dict(zip(odd.tolist(), _cigars(rp), strict=True))


def _read_blocks(hap: Haplotype, i: int, length: int) -> list[dict]:
    """Alignment blocks of the read at haplotype ``[i, i + length)``, one per SV segment.

    Each block: mapped-base count, strand of the segment (``rev``), reference start, span and
    the CIGAR of the whole read in that block's reference orientation (the rest soft-clipped).
    """
    seg = hap.seg[i : i + length]
    rp = hap.ref_pos[i : i + length]
    cuts = [0, *(np.flatnonzero(np.diff(seg)) + 1).tolist(), length]
    out = []
    for a, b in zip(cuts, cuts[1:], strict=False):
        r = rp[a:b]
        mapped = r[r != INSERTED]
        if not len(mapped):
            continue
        rev = bool(hap.rev[i + a])
        full = np.full(length, INSERTED, dtype=np.int64)
        if rev:
            full[length - b : length - a] = r[::-1]
        else:
            full[a:b] = r
        out.append({"n": len(mapped), "rev": rev, "pos": int(mapped.min()),
                    "span": int(mapped.max() - mapped.min() + 1), "cigar": _cigar(full)})
    return out


_OPS = "MIDNSHP=X"


def _cigar_text(ops: list[tuple[int, int]]) -> str:
    return "".join(f"{n}{_OPS[op]}" for op, n in ops)


def _pack(bases: np.ndarray) -> bytes:
    codes = _SEQ_CODE[bases]
    if len(codes) % 2:
        codes = np.concatenate([codes, np.zeros(1, np.uint8)])
    return ((codes[0::2] << 4) | codes[1::2]).tobytes()


_SEQ_CODE = np.full(256, 15, dtype=np.uint8)
for _i, _c in enumerate("=ACMGRSVTWYHKDBN"):
    _SEQ_CODE[ord(_c)] = _i


def _record(*, name: bytes, ref_id: int, pos: int, span: int, flag: int, mapq: int,
            cigar: list[tuple[int, int]], bases: np.ndarray, quals: np.ndarray, mate_pos: int,
            tlen: int, tags: bytes) -> bytes:
    cig = struct.pack(f"<{len(cigar)}I", *[(n << 4) | op for op, n in cigar])
    bin_ = int(reg2bin(np.array([pos]), np.array([pos + max(span, 1)]))[0])
    body = struct.pack("<iiBBHHHiiii", ref_id, pos, len(name) + 1, mapq, bin_, len(cigar), flag,
                       len(bases), ref_id, mate_pos, tlen)
    body += name + b"\0" + cig + _pack(bases) + quals.tobytes() + tags
    return struct.pack("<i", len(body)) + body


def _complex_pairs(*, hap: Haplotype, hs: np.ndarray, he: np.ndarray, rows: np.ndarray,
                   length: int, lseq, lq, rseq, rq, st, names, keys, ref_id: int, contig: str,
                   rg: bytes, hp: np.ndarray, dup: np.ndarray) -> RecordBatch:
    """Records of pairs touching an SV junction or an inverted segment, one by one.

    A read spanning a junction gets its primary alignment on the block with most mapped
    bases (the rest soft-clipped) and an ``SA`` tag naming the other blocks; reads with no
    mapped base (inside a long insertion) are unmapped and placed at their mate. A pair is
    proper only when its whole fragment lies in one segment.
    """
    data, pos_out, key_out = [], [], []
    for t, row in enumerate(rows):
        mates = []
        for j, (i, b, q) in enumerate(((hs[t], lseq[row], lq[row]),
                                       (he[t], rseq[row], rq[row]))):
            blocks = _read_blocks(hap, int(i), length)
            if not blocks:
                seq_ = b if j == 0 else _COMP[b[::-1]]
                qual = q if j == 0 else q[::-1]
                mates.append({"mapped": False, "seq": seq_, "qual": qual, "reverse": False,
                              "anchor": int(hap.anchor[i]), "pos": int(hap.anchor[i]),
                              "span": 1, "cigar": [], "sa": b""})
                continue
            prim = max(blocks, key=lambda x: x["n"])
            sa = "".join(
                f"{contig},{x['pos'] + 1},{'-' if (j == 1) ^ x['rev'] else '+'},"
                f"{_cigar_text(x['cigar'])},60,0;" for x in blocks if x is not prim)
            mates.append({
                "mapped": True, "reverse": (j == 1) ^ prim["rev"],
                "seq": _COMP[b[::-1]] if prim["rev"] else b,
                "qual": q[::-1] if prim["rev"] else q,
                "pos": prim["pos"], "span": prim["span"], "cigar": prim["cigar"],
                "sa": (b"SAZ" + sa.encode() + b"\0") if sa else b"",
                "blocks": blocks, "prim": prim, "hb": b, "hq": q, "j": j})
        a, c = mates
        if not a["mapped"] and c["mapped"]:
            a["pos"] = c["pos"]
        if not c["mapped"] and a["mapped"]:
            c["pos"] = a["pos"]
        both = a["mapped"] and c["mapped"]
        proper = both and hap.seg[hs[t]] == hap.seg[he[t] + length - 1]
        lo = min(a["pos"], c["pos"])
        hi = max(a["pos"] + a["span"], c["pos"] + c["span"])
        first_left = st[row] == 0
        for j, (me, mate) in enumerate(((a, c), (c, a))):
            flag = FLAG.PAIRED | (FLAG.PROPER if proper else 0)
            flag |= FLAG.READ1 if (j == 0) == first_left else FLAG.READ2
            flag |= FLAG.REVERSE if me["reverse"] else 0
            flag |= FLAG.MATE_REVERSE if mate["reverse"] else 0
            flag |= 0 if me["mapped"] else 0x4
            flag |= 0 if mate["mapped"] else 0x8
            flag |= int(dup[row])
            leftmost = me["pos"] < mate["pos"] or (me["pos"] == mate["pos"] and j == 0)
            tlen = (hi - lo) * (1 if leftmost else -1) if both else 0
            tags = rg + b"HPC" + bytes([int(hp[row]) + 1]) + me["sa"]
            data.append(_record(
                name=names[row].tobytes(), ref_id=ref_id, pos=me["pos"], span=me["span"],
                flag=flag, mapq=60 if me["mapped"] else 0, cigar=me["cigar"], bases=me["seq"],
                quals=me["qual"], mate_pos=mate["pos"], tlen=tlen, tags=tags))
            pos_out.append(me["pos"])
            key_out.append(int(keys[row]) | j)
            if me["mapped"] and len(me["blocks"]) > 1:  # the other parts of a split read
                for _, p_, k_, rec in supplementary_records(
                        name=names[row].tobytes(), blocks=me["blocks"], primary=me["prim"],
                        reverse_of=lambda x, jj=me["j"]: (jj == 1) ^ x["rev"],
                        contig_of=lambda x: contig, ref_id_of=lambda x: ref_id,
                        bases=me["hb"], quals=me["hq"], flag=flag, next_ref_id=ref_id,
                        next_pos=mate["pos"], mate_span=mate["span"],
                        tags=tags[:len(tags) - len(me["sa"])],
                        key=int(keys[row]) | j):
                    data.append(rec)
                    pos_out.append(p_)
                    key_out.append(k_)
    if not data:
        return RecordBatch.empty()
    lens = np.array([len(d) for d in data], dtype=np.int64)
    return RecordBatch(np.frombuffer(b"".join(data), np.uint8).copy(),
                       np.concatenate(([0], np.cumsum(lens))),
                       np.array(pos_out, np.int64), np.array(key_out, np.int64))


def simulate_unit(
    plan: Plan, unit: WorkUnit, *, model: ErrorModel, sample: str
) -> Iterator[ReadBatch]:
    """Simulate the unit's read pairs, batch by batch.

    Fragments are drawn over haplotype coordinates (depth follows copy number); every draw
    comes from the unit's own generator in a fixed order.

    Yields
    ------
    ReadBatch
        FASTQ text for R1/R2 and (if the spec asks for a BAM) raw BAM records of both mates at
        their true positions, with an ``RG`` tag and an ``HP`` tag (haplotype 1 or 2), and an
        ``SA`` tag on reads split by an SV junction.
    """
    spec = plan.spec
    length = spec.reads.length
    margin = 2 * spec.fragment.max + 64
    contig_len = plan.reference.lengths[unit.contig]
    wend = min(contig_len, unit.end + margin)
    ref = plan.reference.fetch(unit.contig, unit.start, wend)
    haps, slots, weights = _haplotype_set(plan, unit, ref, wend)
    # Somatic carriers per haplotype (realized VAF); haploid/absent loci (sex chromosomes).
    somatic = [v for v in window_variants(plan, unit, wend) if v.vaf is not None]
    carriers = hap_carriers(somatic, len(haps))
    haps, slots, weights, carriers = restrict_haplotypes(
        getattr(plan, "ploidy", {}), contig=unit.contig, territory=unit.territory, haps=haps,
        slots=slots, weights=weights, carriers=carriers)
    # A tumor sample draws its reads from another stream than its matched normal.
    tumor = (1,) if spec.somatic is not None else ()
    rng = np.random.default_rng(
        unit_seed(spec.seed, Streams.READS, unit.contig_index, unit.grid, *tumor))

    svs = [v for v in window_variants(plan, unit, wend) if v.svtype is not None]
    hap_of, starts, flen = _draw_fragments(rng, plan, unit, haps, slots, weights, svs,
                                           plan.pairs_for(unit), wend)
    n = len(starts)
    strand = rng.integers(0, 2, size=n)
    dup = np.zeros(n, dtype=bool)
    ds = spec.library.duplicates
    if ds.rate > 0 and n:
        # The drawn fragments are the output; a random subset of them are the unique molecules
        # and the rest become copies (same haplotype, start, length, strand; own errors).
        dp = duplicate_plan(rng=rng, n_fragments=n, rate=ds.rate,
                            optical_fraction=ds.optical_fraction)
        keep = np.sort(rng.choice(n, size=dp.n_unique, replace=False))
        src = keep[dp.source]
        hap_of, starts, flen, strand = hap_of[src], starts[src], flen[src], strand[src]
        dup = dp.is_duplicate
    dup_flag = duplicate_flags(dup, mark=ds.mark).astype(np.int64)
    slot_of = np.asarray(slots, dtype=np.int64)[hap_of] if n else hap_of
    ins_cums = [np.concatenate(([0], np.cumsum(h.ref_pos == INSERTED))) for h in haps]
    rev_cums = [np.concatenate(([0], np.cumsum(h.rev))) for h in haps]
    # Every haplotype and its reverse complement end to end: a read is one window of it, the
    # forward read at ``off + start``, the reverse one at ``off + 2 * len - (start + flen)``.
    hap_len = np.array([len(h.seq) for h in haps], dtype=np.int64)
    hap_off = np.concatenate(([0], np.cumsum(2 * hap_len)[:-1])).astype(np.int64)
    # (N-padded so that it always holds a window; the padding is never read.)
    both = np.concatenate([x for h in haps for x in (h.seq, _COMP[h.seq[::-1]])]
                          + [np.full(length, ord("N"), np.uint8)])
    both_win = sliding_window_view(both, length)
    ref_id = plan.reference.contigs.index(unit.contig)
    prefix = f"{spec.id}:{unit.index:06d}:"
    rg = b"RGZ" + sample.encode() + b"\0"

    for b0 in range(0, n, BATCH_PAIRS):
        sl = slice(b0, min(n, b0 + BATCH_PAIRS))
        m = sl.stop - sl.start
        s, fl, hk, st, hp = starts[sl], flen[sl], hap_of[sl], strand[sl], slot_of[sl]
        df = dup_flag[sl]
        short_any = bool((fl < length).any())
        # Reads of fragments shorter than the read are built here (N-padded), the rest gathered.
        left = np.empty((m, length), dtype=np.uint8) if short_any else None
        right = np.empty((m, length), dtype=np.uint8) if short_any else None
        lpos = np.empty(m, np.int64)
        rpos = np.empty(m, np.int64)
        lspan = np.empty(m, np.int64)
        rspan = np.empty(m, np.int64)
        lcig: dict[int, list] = {}  # CIGARs of the reads that are not simply <L>M, by row
        rcig: dict[int, list] = {}
        hard = np.zeros(m, dtype=bool)
        hard_parts = []
        for h, hap in enumerate(haps):
            sel = np.flatnonzero(hk == h)
            if not len(sel):
                continue
            short = fl[sel] < length
            if short.any():
                _short_reads(hap=hap, rows=sel[short], hs=s[sel[short]], fl=fl[sel[short]],
                             length=length, left=left, right=right, lpos=lpos, rpos=rpos,
                             lspan=lspan, rspan=rspan, lcig=lcig, rcig=rcig)
                sel = sel[~short]
            hs = s[sel]
            he = hs + fl[sel] - length
            ic, rc = ins_cums[h], rev_cums[h]
            # Pairs crossing an SV junction, touching an inversion or with a read made only of
            # inserted bases take the slow path.
            cx = ((hap.seg[hs] != hap.seg[he + length - 1]) | (rc[he + length] - rc[hs] > 0)
                  | (ic[hs + length] - ic[hs] == length) | (ic[he + length] - ic[he] == length))
            if cx.any():
                hard[sel[cx]] = True
                hard_parts.append((h, sel[cx], hs[cx], he[cx]))
            sel, hs, he = sel[~cx], hs[~cx], he[~cx]
            if not len(sel) or not spec.outputs.bam:
                continue  # alignments are only needed for the golden BAM
            lp, lsp, lc = _align(hap, ic, hs, length)
            rp, rsp, rc_ = _align(hap, ic, he, length)
            lpos[sel], lspan[sel], rpos[sel], rspan[sel] = lp, lsp, rp, rsp
            for dst, src in ((lcig, lc), (rcig, rc_)):
                for k, c in src.items():
                    dst[int(sel[k])] = c
        fwd_first = (st == 0)[:, None]
        r1, r2 = _pair_bases(both_win, hap_off=hap_off[hk], hap_len=hap_len[hk], starts=s,
                             flen=fl, forward_first=st == 0, length=length)
        if short_any:
            rows = np.flatnonzero(fl < length)
            rc_right = _revcomp(right[rows])
            f = fwd_first[rows]
            r1[rows] = np.where(f, left[rows], rc_right)
            r2[rows] = np.where(f, rc_right, left[rows])
            r1, _ = add_adapter_readthrough(bases=r1, insert_len=fl, read_number=1)
            r2, _ = add_adapter_readthrough(bases=r2, insert_len=fl, read_number=2)
        r1e, q1 = model.apply(rng=rng, bases=r1, read_number=1)
        r2e, q2 = model.apply(rng=rng, bases=r2, read_number=2)
        serial = np.arange(sl.start, sl.stop, dtype=np.int64)
        names = read_names(prefix, serial)
        fq1 = fastq_bytes(names, r1e, q1)
        fq2 = fastq_bytes(names, r2e, q2)
        records: list[RecordBatch] = []
        if spec.outputs.bam:
            key = (unit.index << 33) | (serial << 1)
            easy = np.flatnonzero(~hard)
            parts = []
            if len(easy):
                parts.extend(_simple_records(
                    easy=easy, hard=hard, names=names, ref_id=ref_id, lpos=lpos, rpos=rpos,
                    lspan=lspan, rspan=rspan, lcig=lcig, rcig=rcig, r1e=r1e, q1=q1, r2e=r2e,
                    q2=q2, st=st, hp=hp, rg=rg, key=key, dup=df))
            if hard_parts:
                # Back to haplotype orientation: the left read is forward, the right one
                # reverse.
                lseq = np.where(fwd_first, r1e, r2e)
                lq = np.where(fwd_first, q1, q2)
                rseq = _revcomp(np.where(fwd_first, r2e, r1e))
                rq = np.where(fwd_first, q2, q1)[:, ::-1]
            for h, rows, hs, he in hard_parts:
                parts.append(_complex_pairs(
                    hap=haps[h], hs=hs, he=he, rows=rows, length=length, lseq=lseq, lq=lq,
                    rseq=rseq, rq=rq, st=st, names=names, keys=key, ref_id=ref_id,
                    contig=unit.contig, rg=rg, hp=hp, dup=df))
            records = parts
        support = support_counts(haps=haps, carriers=carriers, somatic=somatic, hap_of=hk,
                                 starts=s, flen=fl, length=length) if somatic else None
        yield ReadBatch(r1=fq1, r2=fq2, records=records, pairs=m, support=support)
    from .junctions import junction_batch

    jb = junction_batch(plan, unit, model=model)  # pairs across translocation junctions
    if jb is not None:
        yield jb


def _pair_bases(both_win, *, hap_off, hap_len, starts, flen, forward_first, length
                ) -> tuple[np.ndarray, np.ndarray]:
    """R1 and R2 bases in sequencing order, each gathered in one pass.

    ``both_win`` are the length-``length`` windows of every haplotype followed by its reverse
    complement; ``hap_off``/``hap_len`` (n,) locate each pair's haplotype there. The left read
    starts at the fragment start, the right one is the reverse complement of the fragment's
    last ``length`` bases; R1 is the left one when ``forward_first``. Rows of fragments
    shorter than the read are left for the caller (their index is clamped into range).

    Returns
    -------
    r1, r2 : (n, length) uint8
    """
    fwd = hap_off + starts
    rev = hap_off + 2 * hap_len - (starts + flen)
    rev = np.where(flen < length, fwd, rev)
    return (both_win[np.where(forward_first, fwd, rev)],
            both_win[np.where(forward_first, rev, fwd)])


def _short_reads(*, hap: Haplotype, rows, hs, fl, length, left, right, lpos, rpos, lspan, rspan,
                 lcig, rcig) -> None:
    """Fill the rows of fragments shorter than the read (adapter read-through), in place.

    Both mates cover the whole insert from the fragment start: the left read holds the
    fragment then ``N`` (the adapter comes later, in sequencing orientation), the right one
    ``N`` then the fragment, so its reverse complement starts with the insert. CIGARs are the
    insert's alignment plus a soft clip of the adapter part (after a forward read, before a
    reverse one). Fragments here lie on one forward segment (the draw ensures it).
    """
    m_hap = len(hap.seq)
    col = np.arange(length)[None, :]
    inside = col < fl[:, None]
    frag = hap.seq[np.minimum(hs[:, None] + col, m_hap - 1)]
    n_ = np.uint8(ord("N"))
    left[rows] = np.where(inside, frag, n_)
    # Right-align the insert: position j holds fragment base j - (L - fl).
    shift = col - (length - fl)[:, None]
    right[rows] = np.where(shift >= 0, hap.seq[np.clip(hs[:, None] + shift, 0, m_hap - 1)], n_)
    rt_f = readthrough_cigars(n_insert=fl, read_length=length,
                              reverse=np.zeros(len(rows), dtype=bool))
    rt_r = readthrough_cigars(n_insert=fl, read_length=length,
                              reverse=np.ones(len(rows), dtype=bool))
    for i, row in enumerate(rows.tolist()):
        rp = hap.ref_pos[hs[i] : hs[i] + fl[i]]
        mapped = rp[rp != INSERTED]
        pos, span = int(mapped[0]), int(mapped[-1] - mapped[0] + 1)
        lpos[row] = rpos[row] = pos
        lspan[row] = rspan[row] = span
        if span == fl[i] and len(mapped) == fl[i]:
            lcig[row], rcig[row] = rt_f[i], rt_r[i]
            continue
        core = _cigar(rp)
        clip = length - int(fl[i])
        lc = [*core[:-1], (_OP_S, core[-1][1] + clip)] if core[-1][0] == _OP_S else [
            *core, (_OP_S, clip)]
        rc_ = [(_OP_S, core[0][1] + clip), *core[1:]] if core[0][0] == _OP_S else [
            (_OP_S, clip), *core]
        lcig[row], rcig[row] = lc, rc_


def _simple_records(*, easy, hard, names, ref_id, lpos, rpos, lspan, rspan, lcig, rcig, r1e,
                    q1, r2e, q2, st, hp, rg, key, dup) -> list[RecordBatch]:
    """Records of ordinary pairs (one segment, forward-left / reverse-right), in bulk.

    Both mates' sequences are packed once, with their reverse complements; each record then
    takes its row from R1 or R2 (R1 rows first, then R2's) by the pair's strand, so no
    haplotype-orientation copy of the batch is made. Left and right mates come back as two
    parts: the caller sorts all parts in one copy.
    """
    m = len(easy)
    n_rows = len(r1e)
    fwd = st[easy] == 0
    hp, dup = hp[easy], dup[easy]
    lpos, rpos, lspan, rspan = lpos[easy], rpos[easy], lspan[easy], rspan[easy]
    p1, rc1 = pack_seq(r1e, revcomp=True)
    p2, rc2 = pack_seq(r2e, revcomp=True)
    quals = np.concatenate([q1, q2])
    # The left read is R1 of a forward-first pair, else R2; the right read the other one.
    left_rows = np.where(fwd, easy, n_rows + easy)
    right_rows = np.where(fwd, n_rows + easy, easy)
    first_flag = np.where(fwd, FLAG.READ1, FLAG.READ2)
    second_flag = np.where(fwd, FLAG.READ2, FLAG.READ1)
    base = FLAG.PAIRED | FLAG.PROPER
    tlen = rpos + rspan - lpos
    hp_tag = np.empty((m, 4), np.uint8)
    hp_tag[:, :3] = np.frombuffer(b"HPC", np.uint8)
    hp_tag[:, 3] = hp + 1
    tags = np.concatenate([np.broadcast_to(np.frombuffer(rg, np.uint8), (m, len(rg))),
                           hp_tag], axis=1)

    def by_record(cigars: dict[int, list]) -> dict[int, list]:
        # Batch rows -> record indices (easy is sorted), in one search.
        rows = np.fromiter(cigars, dtype=np.int64, count=len(cigars))
        at = np.searchsorted(easy, rows).tolist()
        return {a: c for a, c, h in zip(at, cigars.values(), hard[rows].tolist(), strict=True)
                if not h}

    left_rec = encode_records(
        names=names, name_rows=easy, ref_id=ref_id, pos=lpos,
        flag=base | FLAG.MATE_REVERSE | first_flag | dup, mapq=60, cigars=by_record(lcig),
        ref_span=lspan, seq=np.concatenate([p1, p2]), quals=quals, seq_rows=left_rows,
        mate_pos=rpos, tlen=tlen, key=key[easy], tags=tags)
    right_rec = encode_records(
        names=names, name_rows=easy, ref_id=ref_id, pos=rpos,
        flag=base | FLAG.REVERSE | second_flag | dup, mapq=60, cigars=by_record(rcig),
        ref_span=rspan, seq=np.concatenate([rc1, rc2]), quals=quals[:, ::-1],
        seq_rows=right_rows, mate_pos=lpos, tlen=-tlen, key=key[easy] | 1, tags=tags)
    return [left_rec, right_rec]

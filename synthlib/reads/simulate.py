"""Paired-end reads of one work unit, drawn in bulk from its two haplotypes.

Every draw comes from the unit's own generator, in a fixed order (fragment lengths, starts,
haplotypes, strands, then R1 and R2 errors batch by batch), so a unit's reads depend only on
the spec and the unit's identity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..intervals import intersect, merge
from ..io.bam import CIGAR_OPS, FLAG, RecordBatch, encode_records
from ..io.fastq import fastq_bytes, read_names
from ..plan import Plan, Streams, WorkUnit, unit_seed
from ..variants.assemble import window_variants
from ..variants.haplotype import INSERTED, Haplotype, build_haplotypes
from .errormodel import ErrorModel

__all__ = ["ReadBatch", "simulate_unit", "BATCH_PAIRS", "fragment_starts"]

#: Pairs built at once; bounds the memory of the read matrices of a unit.
BATCH_PAIRS = 65_536

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b


def _revcomp(m: np.ndarray) -> np.ndarray:
    return _COMP[m[:, ::-1]]


@dataclass
class ReadBatch:
    """One batch of simulated pairs: FASTQ text of both mates and raw BAM records."""

    r1: bytes
    r2: bytes
    records: RecordBatch | None
    pairs: int


def _fragment_lengths(rng: np.random.Generator, n: int, plan: Plan) -> np.ndarray:
    fr = plan.spec.fragment
    lo, hi = max(fr.min, plan.spec.reads.length), fr.max
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
    shift = int(round(plan.spec.fragment.mean / 2))
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


def _draw_fragments(rng, plan, unit, n, wend):
    starts_iv = fragment_starts(plan, unit)
    allowed = _allowed(plan, unit, wend)
    lens_iv = starts_iv[:, 1] - starts_iv[:, 0]
    total = int(lens_iv.sum())
    if n == 0 or total == 0 or not len(allowed):
        z = np.zeros(0, dtype=np.int64)
        return z, z
    cum = np.cumsum(lens_iv)
    got_s, got_l = [], []
    have = 0
    for _ in range(100):
        m = max(64, int((n - have) * 1.3))
        flen = _fragment_lengths(rng, m, plan)
        off = rng.integers(0, total, size=m)
        k = np.searchsorted(cum, off, side="right")
        s = starts_iv[k, 0] + off - (cum[k] - lens_iv[k])
        j = np.searchsorted(allowed[:, 0], s, side="right") - 1
        run = allowed[np.maximum(j, 0)]
        ok = (j >= 0) & (s >= run[:, 0]) & (s + flen <= run[:, 1])
        got_s.append(s[ok])
        got_l.append(flen[ok])
        have += int(ok.sum())
        if have >= n:
            break
    s, flen = np.concatenate(got_s)[:n], np.concatenate(got_l)[:n]
    order = np.argsort(s, kind="stable")
    return s[order], flen[order]


def _cigar(rp: np.ndarray) -> list[tuple[int, int]]:
    """CIGAR of a read whose bases sit at reference positions ``rp`` (INSERTED = -1)."""
    mapped = np.flatnonzero(rp != INSERTED)
    first, last = mapped[0], mapped[-1]
    ops: list[tuple[int, int]] = []

    def add(op: int, n: int) -> None:
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + n)
        else:
            ops.append((op, n))

    if first:
        add(CIGAR_OPS["S"], int(first))
    prev = None
    for i in range(first, last + 1):
        if rp[i] == INSERTED:
            add(CIGAR_OPS["I"], 1)
            continue
        if prev is not None and rp[i] - prev > 1:
            add(CIGAR_OPS["D"], int(rp[i] - prev - 1))
        add(CIGAR_OPS["M"], 1)
        prev = rp[i]
    if last < len(rp) - 1:
        add(CIGAR_OPS["S"], int(len(rp) - 1 - last))
    return ops


def _align(hap: Haplotype, ins_cum: np.ndarray, hstart: np.ndarray, length: int):
    """Reference start, span and CIGAR (None when simply <L>M) of reads at hap indices."""
    rp0 = hap.ref_pos[hstart]
    rp1 = hap.ref_pos[hstart + length - 1]
    n_ins = ins_cum[hstart + length] - ins_cum[hstart]
    simple = (n_ins == 0) & (rp1 - rp0 == length - 1)
    pos = rp0.copy()
    span = np.full(len(hstart), length, dtype=np.int64)
    cigars: list = [None] * len(hstart)
    for i in np.flatnonzero(~simple):
        rp = hap.ref_pos[hstart[i] : hstart[i] + length]
        mapped = rp[rp != INSERTED]
        pos[i], span[i] = mapped[0], mapped[-1] - mapped[0] + 1
        cigars[i] = _cigar(rp)
    return pos, span, (cigars if (~simple).any() else None)


def simulate_unit(
    plan: Plan, unit: WorkUnit, *, model: ErrorModel, sample: str
) -> Iterator[ReadBatch]:
    """Simulate the unit's read pairs, batch by batch.

    Yields
    ------
    ReadBatch
        FASTQ text for R1/R2 and (if the spec asks for a BAM) raw BAM records of both mates at
        their true positions, with an ``RG`` tag and an ``HP`` tag (haplotype 1 or 2).
    """
    spec = plan.spec
    length = spec.reads.length
    margin = 2 * spec.fragment.max + 64
    contig_len = plan.reference.lengths[unit.contig]
    wend = min(contig_len, unit.end + margin)
    ref = plan.reference.fetch(unit.contig, unit.start, wend)
    haps = build_haplotypes(ref, start=unit.start, variants=window_variants(plan, unit, wend))
    rng = np.random.default_rng(
        unit_seed(spec.seed, Streams.READS, unit.contig_index, unit.grid))

    n = plan.pairs_for(unit)
    starts, flen = _draw_fragments(rng, plan, unit, n, wend)
    n = len(starts)
    hap_of = rng.integers(0, 2, size=n)
    strand = rng.integers(0, 2, size=n)
    ins_cums = [np.concatenate(([0], np.cumsum(h.ref_pos == INSERTED))) for h in haps]
    windows = [sliding_window_view(h.seq, length) for h in haps]
    ref_id = plan.reference.contigs.index(unit.contig)
    prefix = f"{spec.id}:{unit.index:06d}:"
    rg = b"RGZ" + sample.encode() + b"\0"

    for b0 in range(0, n, BATCH_PAIRS):
        sl = slice(b0, min(n, b0 + BATCH_PAIRS))
        m = sl.stop - sl.start
        s, fl, hp, st = starts[sl], flen[sl], hap_of[sl], strand[sl]
        left = np.empty((m, length), dtype=np.uint8)
        right = np.empty((m, length), dtype=np.uint8)
        lpos = np.empty(m, np.int64)
        rpos = np.empty(m, np.int64)
        lspan = np.empty(m, np.int64)
        rspan = np.empty(m, np.int64)
        lcig: list = [None] * m
        rcig: list = [None] * m
        for h, hap in enumerate(haps):
            sel = np.flatnonzero(hp == h)
            if not len(sel):
                continue
            hs = hap.hap_index(s[sel])
            # A haplotype shortened by deletions may not reach the fragment's end: clip.
            he = np.minimum(hs + fl[sel], len(hap.seq)) - length
            left[sel] = windows[h][hs]
            right[sel] = windows[h][he]
            lp, lsp, lc = _align(hap, ins_cums[h], hs, length)
            rp, rsp, rc = _align(hap, ins_cums[h], he, length)
            lpos[sel], lspan[sel], rpos[sel], rspan[sel] = lp, lsp, rp, rsp
            for dst, src in ((lcig, lc), (rcig, rc)):
                if src is not None:
                    for k, c in zip(sel, src, strict=True):
                        dst[k] = c
        rc_right = _revcomp(right)
        fwd_first = (st == 0)[:, None]
        r1 = np.where(fwd_first, left, rc_right)
        r2 = np.where(fwd_first, rc_right, left)
        r1e, q1 = model.apply(rng=rng, bases=r1, read_number=1)
        r2e, q2 = model.apply(rng=rng, bases=r2, read_number=2)
        serial = np.arange(sl.start, sl.stop, dtype=np.int64)
        names = read_names(prefix, serial)
        fq1 = fastq_bytes(names, r1e, q1)
        fq2 = fastq_bytes(names, r2e, q2)
        records = None
        if spec.outputs.bam:
            # Back to reference orientation: the left read is forward, the right one reverse.
            lseq = np.where(fwd_first, r1e, r2e)
            lq = np.where(fwd_first, q1, q2)
            rseq = _revcomp(np.where(fwd_first, r2e, r1e))
            rq = np.where(fwd_first, q2, q1)[:, ::-1]
            first_flag = np.where(st == 0, FLAG.READ1, FLAG.READ2)
            second_flag = np.where(st == 0, FLAG.READ2, FLAG.READ1)
            base = FLAG.PAIRED | FLAG.PROPER
            tlen = rpos + rspan - lpos
            hp_tag = np.empty((m, 4), np.uint8)
            hp_tag[:, :3] = np.frombuffer(b"HPC", np.uint8)
            hp_tag[:, 3] = hp + 1
            tags = np.concatenate([np.broadcast_to(np.frombuffer(rg, np.uint8), (m, len(rg))),
                                   hp_tag], axis=1)
            key = (unit.index << 33) | (serial << 1)
            left_rec = encode_records(
                names=names, ref_id=ref_id, pos=lpos, flag=base | FLAG.MATE_REVERSE | first_flag,
                mapq=60, cigars=lcig if any(c is not None for c in lcig) else None,
                ref_span=lspan, bases=lseq, quals=lq, mate_pos=rpos, tlen=tlen, key=key,
                tags=tags)
            right_rec = encode_records(
                names=names, ref_id=ref_id, pos=rpos, flag=base | FLAG.REVERSE | second_flag,
                mapq=60, cigars=rcig if any(c is not None for c in rcig) else None,
                ref_span=rspan, bases=rseq, quals=rq, mate_pos=lpos, tlen=-tlen, key=key | 1,
                tags=tags)
            records = RecordBatch.concat([left_rec, right_rec])
        yield ReadBatch(r1=fq1, r2=fq2, records=records, pairs=m)

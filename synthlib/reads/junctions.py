"""Read pairs across the two junctions of each translocation, shared by the units they touch.

A translocation side ``v`` at contig X (break before ``bpX``, partner Y/``bpY``) owns the
fragments that *start* in ``[bpX - F, bpX)`` on its carrying haplotypes (``F`` =
``fragment.max``): they run along der(X) = X[:bpX] + Y[bpY:], so those crossing the break
become split reads (primary + supplementary record, ``SA`` tags naming each other) and
discordant pairs (mates on different contigs, proper-pair flag off). The regular draws of a
carrying haplotype skip those starts (:func:`start_exclusions`), so depth stays flat.

Every draw comes from ``SeedSequence(seed, (Streams.JUNCTIONS, side index, slot, tumor))``,
so every unit whose chunk holds one of the records regenerates the very same fragments,
bases, qualities and errors (a few hundred pairs: cheap). The unit holding a fragment's
start writes its FASTQ pair; each unit writes only the BAM records positioned in its own
chunk, so shards stay sorted and no spill is needed. Junction fragments get no GC bias,
duplicates or adapter read-through (documented simplification).
"""

from __future__ import annotations

import numpy as np

from ..intervals import merge
from ..io.bam import FLAG, RecordBatch, pack_record
from ..io.fastq import fastq_bytes, read_names
from ..plan import Plan, Streams, WorkUnit, unit_seed
from ..variants.assemble import chunk_variants
from ..variants.breakend import TRA, breakpoint, partner
from ..variants.haplotype import INSERTED, build_haplotypes
from ..variants.model import Variant
from ..variants.somatic import somatic_threshold
from .errormodel import ErrorModel
from .fragments import draw_fragment_lengths
from .simulate import ReadBatch, _cigar, _cigar_text
from .supplementary import supplementary_records

__all__ = ["start_exclusions", "junction_batch", "junction_pairs", "translocation_sides"]

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b

#: Sort-key space of junction records (regular keys are ``unit << 33 | serial << 1``).
_KEY_BASE = 1 << 61


def translocation_sides(plan: Plan) -> list[Variant]:
    """Every translocation side of the plan, in a fixed order (their stream index)."""
    return [v for v in plan.spikes if v.svtype == TRA]


def start_exclusions(svs, slot: int, fmax: int) -> np.ndarray:
    """Reference intervals (k, 2) where a haplotype's regular fragments may not start.

    Parameters
    ----------
    svs
        The haplotype's structural variants (``Haplotype.svs``); translocation sides carried
        on ``slot`` own the starts ``[bp - fmax, bp)``.
    """
    iv = [(breakpoint(v) - fmax, breakpoint(v)) for v in svs
          if v.svtype == TRA and v.gt[slot]]
    if not iv:
        return np.zeros((0, 2), dtype=np.int64)
    return merge(np.array(iv, dtype=np.int64))


def _small_variants(plan: Plan, contig: str, a: int, b: int) -> list[Variant]:
    out = []
    for u in plan.units:
        if u.contig == contig and u.start < b and a < u.end:
            out += [v for v in chunk_variants(plan, u)
                    if v.svtype is None and v.vaf is None and a <= v.pos and v.end <= b]
    return out


def _piece(plan: Plan, contig: str, a: int, b: int, slot: int):
    ref = plan.reference.fetch(contig, a, b)
    hap = build_haplotypes(ref, start=a, variants=_small_variants(plan, contig, a, b))[slot]
    return hap.seq, hap.ref_pos


def _lengths(rng: np.random.Generator, n: int, plan: Plan) -> np.ndarray:
    fr, length = plan.spec.fragment, plan.spec.reads.length
    if fr.model == "empirical":
        return draw_fragment_lengths(rng=rng, n=n, spec=plan.spec, base_dir=plan.base_dir,
                                     min_length=length)
    lo, hi = max(fr.min, length), fr.max
    out = np.empty(0, dtype=np.int64)
    while len(out) < n:  # truncated normal by rejection, like the regular fragments
        draw = np.rint(rng.normal(fr.mean, fr.sd, size=max(64, int((n - len(out)) * 1.3))))
        out = np.concatenate([out, draw[(draw >= lo) & (draw <= hi)].astype(np.int64)])
    return out[:n]


def _blocks(rp: np.ndarray, ctg: np.ndarray) -> list[dict]:
    """Alignment blocks of one read (bases at reference positions ``rp`` on side ``ctg``)."""
    out = []
    for side in (0, 1):
        sel = ctg == side
        mapped = rp[sel & (rp != INSERTED)]
        if not len(mapped):
            continue
        full = np.where(sel, rp, INSERTED)
        out.append({"side": side, "rev": False, "n": len(mapped), "pos": int(mapped.min()),
                    "span": int(mapped.max() - mapped.min() + 1), "cigar": _cigar(full)})
    return out


def junction_pairs(plan: Plan, index: int, slot: int, *, model: ErrorModel) -> dict:
    """The fragments of one translocation side's junction on one haplotype slot.

    Cached on the plan (a unit may need the same junction for several records).

    Returns
    -------
    dict with ``names`` (n, W) uint8, ``r1``/``r2``/``q1``/``q2`` (n, L) uint8 FASTQ
    reads, ``start`` (n,) int64 reference start of each fragment on the side's contig, and
    ``records``: list of ``(contig, pos, key, bytes)``.
    """
    cache = plan.__dict__.setdefault("_junction_cache", {})
    if (index, slot) in cache:
        return cache[(index, slot)]
    spec = plan.spec
    v = translocation_sides(plan)[index]
    c2, bp2 = partner(v)
    bp = breakpoint(v)
    fmax, length = spec.fragment.max, spec.reads.length
    tumor = 1 if spec.somatic is not None else 0
    rng = np.random.default_rng(unit_seed(spec.seed, Streams.JUNCTIONS, index, slot, tumor))
    lseq, lrp = _piece(plan, v.chrom, bp - fmax, bp, slot)
    rseq, rrp = _piece(plan, c2, bp2, bp2 + fmax + length, slot)
    seq = np.concatenate([lseq, rseq])
    rp = np.concatenate([lrp, rrp])
    ctg = np.concatenate([np.zeros(len(lseq), np.int8), np.ones(len(rseq), np.int8)])
    nl = len(lseq)
    # A carrying haplotype's share of the fragments: 1/2, or the carrying clone's part of it.
    w = 0.5 * (somatic_threshold(v.vaf, v.gt) if v.vaf is not None else 1.0)
    n = int(round(spec.coverage / (2 * length) * w * fmax))
    s = rng.integers(0, nl, size=n)
    fl = np.minimum(_lengths(rng, n, plan), len(seq) - s)
    st = rng.integers(0, 2, size=n)
    col = np.arange(length)
    li = s[:, None] + col
    ri = (s + fl - length)[:, None] + col
    left, right = seq[li], seq[ri]
    r1 = np.where((st == 0)[:, None], left, _COMP[right[:, ::-1]])
    r2 = np.where((st == 0)[:, None], _COMP[right[:, ::-1]], left)
    r1e, q1 = model.apply(rng=rng, bases=r1, read_number=1)
    r2e, q2 = model.apply(rng=rng, bases=r2, read_number=2)
    names = read_names(f"{spec.id}:t{index:04d}{slot}:", np.arange(n, dtype=np.int64))
    lq = np.where((st == 0)[:, None], q1, q2)
    lb = np.where((st == 0)[:, None], r1e, r2e)
    rb = _COMP[np.where((st == 0)[:, None], r2e, r1e)[:, ::-1]]
    rq = np.where((st == 0)[:, None], q2, q1)[:, ::-1]
    anchor = np.maximum.accumulate(np.where(lrp != INSERTED, lrp, -1))
    contigs = (v.chrom, c2)
    ids = {c: plan.reference.contigs.index(c) for c in contigs}
    rg = b"RGZ" + spec.id.encode() + b"\0"
    records = []
    for k in range(n):
        mates = []
        for j, idx, b_, q_ in ((0, li[k], lb[k], lq[k]), (1, ri[k], rb[k], rq[k])):
            blocks = _blocks(rp[idx], ctg[idx])
            prim = max(blocks, key=lambda x: x["n"])
            strand = "-" if j else "+"
            sa = "".join(f"{contigs[x['side']]},{x['pos'] + 1},{strand},"
                         f"{_cigar_text(x['cigar'])},60,0;" for x in blocks if x is not prim)
            mates.append((prim, b_, q_, (b"SAZ" + sa.encode() + b"\0") if sa else b"", blocks))
        crosses = s[k] + fl[k] > nl
        (pa, *_), (pc, *_) = mates
        same = pa["side"] == pc["side"]  # mates across the junction: TLEN 0 (discordant)
        lo = min(pa["pos"], pc["pos"])
        hi = max(pa["pos"] + pa["span"], pc["pos"] + pc["span"])
        for j, (me, mate) in enumerate(((mates[0], mates[1]), (mates[1], mates[0]))):
            p, b_, q_, sa, blocks = me
            pm = mate[0]
            flag = FLAG.PAIRED | (0 if crosses else FLAG.PROPER)
            flag |= FLAG.READ1 if (j == 0) == (st[k] == 0) else FLAG.READ2
            flag |= FLAG.REVERSE if j else FLAG.MATE_REVERSE
            leftmost = p["pos"] < pm["pos"] or (p["pos"] == pm["pos"] and j == 0)
            tlen = ((hi - lo) * (1 if leftmost else -1)) if same else 0
            hp = b"HPC" + bytes([slot + 1])
            rec = pack_record(
                name=names[k].tobytes(), ref_id=ids[contigs[p["side"]]], pos=p["pos"],
                span=p["span"], flag=flag, mapq=60, cigar=p["cigar"], bases=b_, quals=q_,
                next_ref_id=ids[contigs[pm["side"]]], next_pos=pm["pos"], tlen=tlen,
                tags=rg + hp + sa)
            key = _KEY_BASE | (index << 44) | (slot << 42) | (k << 1) | j
            records.append((contigs[p["side"]], p["pos"], key, rec))
            # The other part of a split read: a supplementary record, wherever it lies (the
            # unit whose chunk holds it writes it, as for any record here).
            records += supplementary_records(
                name=names[k].tobytes(), blocks=blocks, primary=p,
                reverse_of=lambda x, jj=j: bool(jj), contig_of=lambda x: contigs[x["side"]],
                ref_id_of=lambda x: ids[contigs[x["side"]]], bases=b_, quals=q_, flag=flag,
                next_ref_id=ids[contigs[pm["side"]]], next_pos=pm["pos"], mate_span=pm["span"],
                tags=rg + hp, key=key)
    out = {"names": names, "r1": r1e, "r2": r2e, "q1": q1, "q2": q2,
           "start": anchor[s], "contig": v.chrom, "records": records}
    if len(cache) > 16:
        cache.clear()
    cache[(index, slot)] = out
    return out


def _touches(v: Variant, unit: WorkUnit, fmax: int, length: int) -> bool:
    c2, bp2 = partner(v)
    bp = breakpoint(v)
    return ((unit.contig == v.chrom and unit.start < bp + length and bp - fmax < unit.end)
            or (unit.contig == c2 and unit.start < bp2 + fmax and bp2 - length < unit.end))


def junction_batch(plan: Plan, unit: WorkUnit, *, model: ErrorModel) -> ReadBatch | None:
    """The unit's share of all junction pairs: FASTQ of the fragments starting in its chunk,
    BAM records positioned in its chunk. None when no junction touches the unit."""
    spec = plan.spec
    fmax, length = spec.fragment.max, spec.reads.length
    fq1, fq2, recs = [], [], []
    pairs = 0
    touched = False
    for index, v in enumerate(translocation_sides(plan)):
        if not _touches(v, unit, fmax, length):
            continue
        for slot in (0, 1):
            if not v.gt[slot]:
                continue
            touched = True
            jp = junction_pairs(plan, index, slot, model=model)
            if v.chrom == unit.contig:
                own = np.flatnonzero((jp["start"] >= unit.start) & (jp["start"] < unit.end))
                if len(own):
                    fq1.append(fastq_bytes(jp["names"][own], jp["r1"][own], jp["q1"][own]))
                    fq2.append(fastq_bytes(jp["names"][own], jp["r2"][own], jp["q2"][own]))
                    pairs += len(own)
            recs += [r for r in jp["records"]
                     if r[0] == unit.contig and unit.start <= r[1] < unit.end]
    if not touched:
        return None
    records = None
    if spec.outputs.bam:
        if recs:
            data = [r[3] for r in recs]
            lens = np.array([len(d) for d in data], dtype=np.int64)
            records = RecordBatch(np.frombuffer(b"".join(data), np.uint8).copy(),
                                  np.concatenate(([0], np.cumsum(lens))),
                                  np.array([r[1] for r in recs], np.int64),
                                  np.array([r[2] for r in recs], np.int64))
        else:
            records = RecordBatch.empty()
    return ReadBatch(r1=b"".join(fq1), r2=b"".join(fq2), records=[records] if records else [],
                     pairs=pairs)

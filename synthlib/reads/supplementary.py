"""Supplementary BAM records of split reads (the other parts of a chimeric alignment).

An aligner reports a read that spans a junction as one primary record plus one supplementary
record (flag ``0x800``) per other part, each with an ``SA`` tag naming all the other parts:
the primary's lists the supplementaries, a supplementary's lists the primary first, then the
other supplementaries (SAM spec 1.6, section 1.5). Supplementaries here are soft-clipped
(like ``bwa mem -Y``): they hold the whole read, so depth and pileups see every aligned base
once. They go to the golden BAM only, never to the FASTQ.

Sort keys: a supplementary gets its primary's key with bit 60 set and its part number in
bits 57-59, so it sorts after every regular record at the same position and stays unique
(regular keys use bits 0-56: unit < 2**24; junction keys bit 61 and bits 0-56).
"""

from __future__ import annotations

import numpy as np

from ..io.bam import pack_record

__all__ = ["SUPPLEMENTARY", "supplementary_records", "sa_entry", "SUPP_KEY"]

#: SAM flag of a supplementary alignment.
SUPPLEMENTARY = 0x800
#: Key bit of supplementary records.
SUPP_KEY = 1 << 60
_FLAG_REVERSE = 0x10

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b

_OPS = "MIDNSHP=X"


def _cigar_text(ops: list[tuple[int, int]]) -> str:
    return "".join(f"{n}{_OPS[op]}" for op, n in ops)


def sa_entry(*, contig: str, block: dict, reverse: bool) -> str:
    """One ``SA`` entry ``rname,pos,strand,CIGAR,mapQ,NM;`` of an alignment part."""
    return (f"{contig},{block['pos'] + 1},{'-' if reverse else '+'},"
            f"{_cigar_text(block['cigar'])},60,0;")


def supplementary_records(
    *, name: bytes, blocks: list[dict], primary: dict, reverse_of, contig_of, ref_id_of,
    bases: np.ndarray, quals: np.ndarray, flag: int, next_ref_id: int, next_pos: int,
    mate_span: int, tags: bytes, key: int,
) -> list[tuple[str, int, int, bytes]]:
    """The supplementary records of one split read.

    Parameters
    ----------
    blocks
        The read's alignment parts (``pos``, ``span``, ``cigar`` in the part's reference
        orientation, soft-clipped elsewhere, ``rev`` when the part is reverse-complemented
        relative to ``bases``); ``primary`` is one of them (the primary record's).
    reverse_of, contig_of, ref_id_of
        Callables of a block: its strand on the reference (BAM flag 0x10), contig name and
        reference index.
    bases, quals : np.ndarray, shape (L,), uint8
        The read in the orientation blocks with ``rev`` False align in.
    flag
        The primary record's flag; 0x10 is replaced per part and 0x800 set.
    next_ref_id, next_pos, mate_span
        The mate's primary alignment: TLEN is computed from this part and it, as aligners
        do (0 when on another contig).
    tags
        Tags before ``SA`` (``RG``, ``HP``).

    Returns
    -------
    list of ``(contig, pos, key, raw record)``, one per non-primary block.
    """
    others = [b for b in blocks if b is not primary]
    if not others:
        return []
    out = []
    prim_sa = sa_entry(contig=contig_of(primary), block=primary, reverse=reverse_of(primary))
    for k, blk in enumerate(others):
        rev = bool(blk["rev"])
        seq = _COMP[bases[::-1]] if rev else bases
        qual = quals[::-1] if rev else quals
        sa = prim_sa + "".join(sa_entry(contig=contig_of(o), block=o, reverse=reverse_of(o))
                               for o in others if o is not blk)
        rid = ref_id_of(blk)
        tlen = 0
        if rid == next_ref_id:
            lo, hi = min(blk["pos"], next_pos), max(blk["pos"] + blk["span"], next_pos + mate_span)
            tlen = (hi - lo) * (1 if blk["pos"] <= next_pos else -1)
        f = (flag & ~_FLAG_REVERSE) | SUPPLEMENTARY | (_FLAG_REVERSE if reverse_of(blk) else 0)
        rec = pack_record(
            name=name, ref_id=rid, pos=blk["pos"], span=blk["span"], flag=f,
            mapq=60, cigar=blk["cigar"], bases=seq, quals=qual, next_ref_id=next_ref_id,
            next_pos=next_pos, tlen=tlen, tags=tags + b"SAZ" + sa.encode() + b"\0")
        out.append((contig_of(blk), blk["pos"], key | SUPP_KEY | (min(k + 1, 7) << 57), rec))
    return out

"""Raw BAM records encoded in bulk with numpy, and BAM headers.

Records with a single-operation CIGAR (the vast majority) are encoded as one fixed-width byte
matrix; the few with indels go through a small per-record path. Shards hold raw records so
they can be merged in work-unit order and compressed as BGZF bodies.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

__all__ = ["RecordBatch", "encode_records", "pack_record", "pack_seq", "bam_header", "reg2bin",
           "CIGAR_OPS", "FLAG"]

CIGAR_OPS = {"M": 0, "I": 1, "D": 2, "N": 3, "S": 4, "H": 5, "P": 6, "=": 7, "X": 8}


class FLAG:
    PAIRED = 0x1
    PROPER = 0x2
    REVERSE = 0x10
    MATE_REVERSE = 0x20
    READ1 = 0x40
    READ2 = 0x80
    DUPLICATE = 0x400


_SEQ_CODE = np.full(256, 15, dtype=np.uint8)
for _i, _c in enumerate("=ACMGRSVTWYHKDBN"):
    _SEQ_CODE[ord(_c)] = _i

_FIXED = np.dtype([
    ("block_size", "<i4"), ("ref_id", "<i4"), ("pos", "<i4"), ("l_read_name", "u1"),
    ("mapq", "u1"), ("bin", "<u2"), ("n_cigar_op", "<u2"), ("flag", "<u2"), ("l_seq", "<i4"),
    ("next_ref_id", "<i4"), ("next_pos", "<i4"), ("tlen", "<i4"),
])


def reg2bin(beg: np.ndarray, end: np.ndarray) -> np.ndarray:
    """UCSC binning index of 0-based ``[beg, end)`` alignments (SAM spec 5.3), vectorized."""
    beg = np.asarray(beg, dtype=np.int64)
    e = np.asarray(end, dtype=np.int64) - 1
    conds = [(beg >> s) == (e >> s) for s in (14, 17, 20, 23, 26)]
    choices = [off + (beg >> s) for s, off in ((14, 4681), (17, 585), (20, 73), (23, 9), (26, 1))]
    return np.select(conds, choices, default=0).astype(np.uint16)


def _gather(sources: list[np.ndarray], source: np.ndarray, starts: np.ndarray,
            lens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate records ``sources[source[i]][starts[i] : starts[i] + lens[i]]`` in order.

    Returns the bytes and their record offsets (n + 1,). One vectorized copy per source and
    distinct record length (a handful: reads with indels have other lengths), each record
    moved as a single ``void`` element of its width, instead of one Python slice per record.
    """
    offsets = np.zeros(len(lens) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    if not len(lens):
        return out, offsets
    # Records grouped by (source, width) in one stable sort, then one move per group.
    group = np.asarray(source, dtype=np.int64) * (int(lens.max()) + 1) + lens
    by_group = np.argsort(group, kind="stable")
    cuts = np.flatnonzero(np.diff(group[by_group])) + 1
    for sel in np.split(by_group, cuts):
        width = int(lens[sel[0]])
        if width == 0:
            continue
        data = sources[int(source[sel[0]])]
        cell = np.dtype((np.void, width))
        src = np.ndarray((len(data) - width + 1,), cell, buffer=data, strides=(1,))
        dst = np.ndarray((len(out) - width + 1,), cell, buffer=out, strides=(1,))
        dst[offsets[sel]] = src[starts[sel]]
    return out, offsets


@dataclass
class RecordBatch:
    """Raw BAM records (without BGZF) and a sort key per record.

    Attributes
    ----------
    data : np.ndarray, uint8 (total bytes,)
    offsets : np.ndarray, int64 (n + 1,)
        Record i is ``data[offsets[i]:offsets[i+1]]``.
    pos : np.ndarray, int64 (n,)
        Alignment start; with ``key`` the sort order.
    key : np.ndarray, int64 (n,)
        Tie-breaker within a position (unit, fragment and mate), unique per record.
    """

    data: np.ndarray
    offsets: np.ndarray
    pos: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.pos)

    @staticmethod
    def empty() -> RecordBatch:
        z = np.zeros(0, dtype=np.int64)
        return RecordBatch(np.zeros(0, np.uint8), np.zeros(1, np.int64), z, z)

    def take(self, order: np.ndarray) -> RecordBatch:
        """Records in the given order: whole records are moved, never single bytes."""
        order = np.asarray(order, dtype=np.int64)
        lens = np.diff(self.offsets)
        if len(lens) and (lens == lens[0]).all():
            width = int(lens[0])
            data = self.data.reshape(-1, width)[order].ravel()
            new_off = np.arange(len(order) + 1, dtype=np.int64) * width
        else:
            data, new_off = _gather([self.data], np.zeros(len(order), np.int64),
                                    self.offsets[:-1][order], lens[order])
        return RecordBatch(data, new_off, self.pos[order], self.key[order])

    @staticmethod
    def merge_sorted(batches: list[RecordBatch]) -> RecordBatch:
        """All records of ``batches`` sorted by (pos, key), copied once (no concat first)."""
        pieces = list(RecordBatch.sorted_pieces(batches, piece_bytes=None))
        return pieces[0] if pieces else RecordBatch.empty()

    @staticmethod
    def sorted_pieces(batches: list[RecordBatch], *, piece_bytes: int | None
                      ) -> Iterator[RecordBatch]:
        """The records of ``batches`` sorted by (pos, key), as consecutive pieces of about
        ``piece_bytes`` each (``None``: one piece). Only the order is computed for all
        records at once; their bytes are copied piece by piece, so sorting needs one
        piece of memory beyond the input, not a second copy of it."""
        batches = [b for b in batches if len(b)]
        if not batches:
            return
        pos = np.concatenate([b.pos for b in batches])
        key = np.concatenate([b.key for b in batches])
        order = np.lexsort((key, pos))
        source = np.repeat(np.arange(len(batches)), [len(b) for b in batches])[order]
        starts = np.concatenate([b.offsets[:-1] for b in batches])[order]
        lens = np.concatenate([np.diff(b.offsets) for b in batches])[order]
        cuts = [0, len(order)]
        if piece_bytes is not None:
            ends = np.cumsum(lens)
            marks = np.arange(piece_bytes, int(ends[-1]), piece_bytes)
            cuts = [0, *np.unique(np.searchsorted(ends, marks, side="right")).tolist(),
                    len(order)]
        data = [b.data for b in batches]
        for a, b in zip(cuts, cuts[1:], strict=False):
            if b > a:
                piece, offsets = _gather(data, source[a:b], starts[a:b], lens[a:b])
                yield RecordBatch(piece, offsets, pos[order[a:b]], key[order[a:b]])

    def slice(self, start: int, stop: int) -> RecordBatch:
        """Records ``start:stop`` as a view (no copy)."""
        o0, o1 = int(self.offsets[start]), int(self.offsets[stop])
        return RecordBatch(self.data[o0:o1], self.offsets[start : stop + 1] - o0,
                           self.pos[start:stop], self.key[start:stop])

    def copy(self) -> RecordBatch:
        """The records in arrays of their own (a slice's views keep its parent alive)."""
        return RecordBatch(self.data.copy(), self.offsets.copy(), self.pos.copy(),
                           self.key.copy())

    def sorted(self) -> RecordBatch:
        return RecordBatch.merge_sorted([self])

    @staticmethod
    def concat(batches: list[RecordBatch]) -> RecordBatch:
        batches = [b for b in batches if len(b)]
        if not batches:
            return RecordBatch.empty()
        shifts = np.cumsum([0] + [len(b.data) for b in batches[:-1]])
        tails = [b.offsets[1:] + s for b, s in zip(batches, shifts, strict=True)]
        offsets = np.concatenate([[0], *tails])
        return RecordBatch(
            np.concatenate([b.data for b in batches]), offsets,
            np.concatenate([b.pos for b in batches]), np.concatenate([b.key for b in batches]))

    def split(self, boundary: int) -> tuple[RecordBatch, RecordBatch]:
        """(records with pos < boundary, the rest); the batch must be sorted."""
        k = int(np.searchsorted(self.pos, boundary, side="left"))
        return self.slice(0, k), self.slice(k, len(self))


# Packed byte of every pair of ASCII bases, indexed by the pair read as one little-endian
# uint16: BAM's 4-bit codes for two bases in a single lookup.
_PAIR_CODE = ((_SEQ_CODE[np.arange(65536) & 0xFF] << 4) | _SEQ_CODE[np.arange(65536) >> 8]
              ).astype(np.uint8)
# The complement of a 4-bit code ("=ACMGRSVTWYHKDBN") is its bit reversal; a packed byte of
# bases (x, y) becomes that of (comp y, comp x).
_COMP4 = np.array([0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15], dtype=np.uint8)
_RC_BYTE = ((_COMP4[np.arange(256) & 15] << 4) | _COMP4[np.arange(256) >> 4]).astype(np.uint8)
_ASCII_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTNacgtn", b"TGCANtgcan", strict=True):
    _ASCII_COMP[_a] = _b


def _pack_seq(bases: np.ndarray) -> np.ndarray:
    """BAM 4-bit sequence of (n, L) ASCII bases: (n, ceil(L / 2)) uint8."""
    if bases.shape[1] % 2:
        bases = np.concatenate([bases, np.full((bases.shape[0], 1), ord("="), np.uint8)],
                               axis=1)
    pairs = np.ascontiguousarray(bases, dtype=np.uint8).view("<u2")
    return _PAIR_CODE[pairs]


def pack_seq(bases: np.ndarray, *, revcomp: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
    """BAM 4-bit sequences of (n, L) ASCII bases, and with ``revcomp`` those of their reverse
    complements: ((n, ceil(L / 2)), (n, ceil(L / 2)) or None) uint8.

    For even L the reverse complement is taken on the packed bytes (half the bytes of
    reversing the bases, and no second packing).
    """
    packed = _pack_seq(bases)
    if not revcomp:
        return packed, None
    if bases.shape[1] % 2 == 0:
        return packed, _RC_BYTE[packed[:, ::-1]]
    return packed, _pack_seq(_ASCII_COMP[bases[:, ::-1]])


def encode_records(
    *,
    names: np.ndarray,
    name_rows: np.ndarray,
    ref_id: int,
    pos: np.ndarray,
    flag: np.ndarray,
    mapq: int,
    cigars: Mapping[int, list[tuple[int, int]]] | None,
    ref_span: np.ndarray,
    seq: np.ndarray,
    quals: np.ndarray,
    seq_rows: np.ndarray,
    mate_pos: np.ndarray,
    tlen: np.ndarray,
    key: np.ndarray,
    tags: bytes | np.ndarray = b"",
) -> RecordBatch:
    """Encode reads of one contig as raw BAM records.

    Record i takes its name from row ``name_rows[i]`` of ``names`` and its sequence and
    qualities from row ``seq_rows[i]`` of ``seq`` and ``quals``: records are gathered from
    the batch's arrays in one copy each, instead of first copying rows out per mate.

    Parameters
    ----------
    names : (m, W) uint8
    name_rows, seq_rows : (n,) int
    pos, flag, mate_pos, tlen, key : (n,) int
    cigars
        CIGAR ``[(op, length), ...]`` of the records (by record index) that are not a simple
        ``<L>M``; None or empty when every read is simple.
    ref_span : (n,) int
        Reference bases each alignment covers (for the bin field).
    seq : (k, ceil(L / 2)) uint8
        Reference-orientation sequences packed by :func:`pack_seq`.
    quals : (k, L) uint8
        Reference-orientation Phred qualities (any strides).
    tags : bytes or (n, T) uint8
        Optional-field bytes shared by all records, or one row per record.
    """
    n = len(pos)
    length = quals.shape[1]
    name_rows = np.asarray(name_rows, dtype=np.int64)
    seq_rows = np.asarray(seq_rows, dtype=np.int64)
    w = names.shape[1] + 1
    tag_rows = np.asarray(np.frombuffer(tags, np.uint8) if isinstance(tags, bytes) else tags)
    tag_len = tag_rows.shape[-1] if tag_rows.size else 0
    simple = np.ones(n, dtype=bool)
    if cigars:
        simple[np.fromiter(cigars.keys(), dtype=np.int64, count=len(cigars))] = False
    fixed = np.zeros(n, dtype=_FIXED)
    fixed["ref_id"] = ref_id
    fixed["pos"] = pos
    fixed["l_read_name"] = w
    fixed["mapq"] = mapq
    fixed["bin"] = reg2bin(pos, pos + np.maximum(ref_span, 1))
    fixed["n_cigar_op"] = 1
    fixed["flag"] = flag
    fixed["l_seq"] = length
    fixed["next_ref_id"] = ref_id
    fixed["next_pos"] = mate_pos
    fixed["tlen"] = tlen
    rec_len = 36 + w + 4 + seq.shape[1] + length + tag_len
    fixed["block_size"] = rec_len - 4

    # Reads with indels first (a few, one record each), so that the whole batch is written
    # into one buffer: the fixed-width matrix of simple reads, then those records.
    complex_idx = np.flatnonzero(~simple)
    blobs = []
    for i in complex_idx:
        ops = cigars[i]
        cig = struct.pack(f"<{len(ops)}I", *[(ln << 4) | op for op, ln in ops])
        f = fixed[i].copy()
        f["n_cigar_op"] = len(ops)
        body_len = 36 + w + len(cig) + seq.shape[1] + length + tag_len
        f["block_size"] = body_len - 4
        r = seq_rows[i]
        trow = (tag_rows if tag_rows.ndim == 1 else tag_rows[i]).tobytes() if tag_len else b""
        blobs.append(f.tobytes() + names[name_rows[i]].tobytes() + b"\0" + cig
                     + seq[r].tobytes() + quals[r].tobytes() + trow)
    tail = b"".join(blobs)

    idx = np.flatnonzero(simple)
    data = np.empty(len(idx) * rec_len + len(tail), dtype=np.uint8)
    mat = data[: len(idx) * rec_len].reshape(-1, rec_len)
    # Rows gathered with ``take`` (one copy per row), about twice as fast as 2-D fancy
    # indexing; the structured array is gathered as plain bytes.
    fixed_bytes = fixed.view(np.uint8).reshape(n, 36)
    mat[:, :36] = fixed_bytes if len(idx) == n else np.take(fixed_bytes, idx, axis=0)
    mat[:, 36 : 36 + w - 1] = np.take(names, name_rows[idx], axis=0)
    mat[:, 36 + w - 1] = 0
    c = 36 + w
    mat[:, c : c + 4] = np.frombuffer(struct.pack("<I", length << 4), np.uint8)
    c += 4
    ridx = seq_rows[idx]
    mat[:, c : c + seq.shape[1]] = np.take(seq, ridx, axis=0)
    c += seq.shape[1]
    mat[:, c : c + length] = np.take(quals, ridx, axis=0)
    if tag_len:
        mat[:, c + length :] = tag_rows if tag_rows.ndim == 1 else tag_rows[idx]
    data[len(idx) * rec_len :] = np.frombuffer(tail, np.uint8)

    all_lens = np.concatenate([np.full(len(idx), rec_len, dtype=np.int64),
                               np.array([len(b) for b in blobs], dtype=np.int64)])
    order_ids = np.concatenate([idx, complex_idx])
    return RecordBatch(data, np.concatenate(([0], np.cumsum(all_lens))),
                       np.asarray(pos, np.int64)[order_ids], np.asarray(key, np.int64)[order_ids])


def pack_record(
    *, name: bytes, ref_id: int, pos: int, span: int, flag: int, mapq: int,
    cigar: list[tuple[int, int]], bases: np.ndarray, quals: np.ndarray, next_ref_id: int,
    next_pos: int, tlen: int, tags: bytes,
) -> bytes:
    """One raw BAM record whose mate may lie on another contig (``next_ref_id``).

    Parameters
    ----------
    bases, quals : (L,) uint8
        Reference-orientation bases (ASCII) and Phred qualities.
    """
    cig = struct.pack(f"<{len(cigar)}I", *[(n << 4) | op for op, n in cigar])
    bin_ = int(reg2bin(np.array([pos]), np.array([pos + max(span, 1)]))[0])
    seq = _pack_seq(np.asarray(bases, np.uint8)[None, :])[0]
    body = struct.pack("<iiBBHHHiiii", ref_id, pos, len(name) + 1, mapq, bin_, len(cigar), flag,
                       len(bases), next_ref_id, next_pos, tlen)
    body += name + b"\0" + cig + seq.tobytes() + np.asarray(quals, np.uint8).tobytes() + tags
    return struct.pack("<i", len(body)) + body


def bam_header(*, contigs: dict[str, int], sample: str, program_version: str) -> bytes:
    """Uncompressed BAM header: magic, SAM text (@HD, @SQ, @RG, @PG) and the reference list.

    It holds nothing that depends on the run's time, place or worker count.
    """
    text = "@HD\tVN:1.6\tSO:coordinate\n"
    text += "".join(f"@SQ\tSN:{c}\tLN:{n}\n" for c, n in contigs.items())
    text += f"@RG\tID:{sample}\tSM:{sample}\tPL:ILLUMINA\n"
    text += f"@PG\tID:synthlib\tPN:synthlib\tVN:{program_version}\n"
    tb = text.encode()
    out = [b"BAM\1", struct.pack("<i", len(tb)), tb, struct.pack("<i", len(contigs))]
    for c, n in contigs.items():
        name = c.encode() + b"\0"
        out += [struct.pack("<i", len(name)), name, struct.pack("<i", n)]
    return b"".join(out)

"""BAM index (BAI) built from the records as they are written, without reading the BAM back.

A unit compresses its own BAM body; the merge only copies bytes. Indexing the merged file
with htslib would decompress all of it again, serially, at the end of every run (about 8% of
a 1-worker run). Instead each piece of the BAM carries a small table of its records (reference,
start, end, bin, uncompressed offset) and of its BGZF block sizes; the merge shifts those to
file offsets and writes the index in one vectorized pass. The result is a valid BAI (SAM spec
section 5.2): same bins, chunks and linear index semantics as htslib, though chunks may be
split where htslib would merge them, so the bytes can differ from ``samtools index``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bgzf import BLOCK_DATA_SIZE

__all__ = ["RecordTable", "BaiWriter", "record_table", "block_starts", "virtual_offsets",
           "write_bai", "LINEAR_SHIFT"]

#: Linear-index window of 16 kbp.
LINEAR_SHIFT = 14
_PSEUDO_BIN = 37450
#: CIGAR operations that consume the reference: M, D, N, =, X.
_REF_OPS = np.zeros(16, dtype=bool)
_REF_OPS[[0, 2, 3, 7, 8]] = True


@dataclass
class RecordTable:
    """Per-record facts the index needs, for one run of consecutive records.

    Attributes
    ----------
    ref_id, beg, end, bin : np.ndarray, shape (n,)
        Reference index, 0-based start, end (exclusive; ``beg + 1`` for unmapped) and bin.
    unmapped : np.ndarray, shape (n,), bool
    offset : np.ndarray, shape (n + 1,), int64
        Uncompressed offset of each record in its piece, and the piece's length.
    """

    ref_id: np.ndarray
    beg: np.ndarray
    end: np.ndarray
    bin: np.ndarray
    unmapped: np.ndarray
    offset: np.ndarray

    def save(self, path: Path, *, blocks: np.ndarray) -> None:
        """Save with the block starts of the body the records were compressed into."""
        np.savez(path, ref_id=self.ref_id, beg=self.beg, end=self.end, bin=self.bin,
                 unmapped=self.unmapped, offset=self.offset, blocks=blocks)

    @staticmethod
    def load(path: Path) -> tuple[RecordTable, np.ndarray]:
        """The table and its body's block starts, as saved by :meth:`save`."""
        with np.load(path) as z:
            return (RecordTable(z["ref_id"], z["beg"], z["end"], z["bin"], z["unmapped"],
                                z["offset"]), z["blocks"])


def _u32(data: np.ndarray, at: np.ndarray) -> np.ndarray:
    b = data[at[:, None] + np.arange(4)].astype(np.uint32)
    return b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16) | (b[:, 3] << 24)


def record_table(data: np.ndarray, offsets: np.ndarray) -> RecordTable:
    """Parse the index facts of raw BAM records, vectorized.

    Parameters
    ----------
    data : np.ndarray, shape (total,), uint8
        Concatenated raw records (each starting with its ``block_size``).
    offsets : np.ndarray, shape (n + 1,), int64
        Record ``i`` is ``data[offsets[i]:offsets[i+1]]``.
    """
    data = np.asarray(data, dtype=np.uint8)
    offsets = np.asarray(offsets, dtype=np.int64)
    starts = offsets[:-1]
    n = len(starts)
    if n == 0:
        z = np.zeros(0, np.int64)
        return RecordTable(z.astype(np.int32), z, z, z.astype(np.int32), z.astype(bool),
                           offsets.copy())
    ref_id = _u32(data, starts + 4).view(np.int32)
    beg = _u32(data, starts + 8).view(np.int32).astype(np.int64)
    bin_mq_nl = _u32(data, starts + 12)
    flag_nc = _u32(data, starts + 16)
    l_name = (bin_mq_nl & 0xFF).astype(np.int64)
    bins = (bin_mq_nl >> 16).astype(np.int32)
    n_cigar = (flag_nc & 0xFFFF).astype(np.int64)
    unmapped = ((flag_nc >> 16) & 0x4) != 0
    # Every CIGAR word of every record, gathered at once.
    cig0 = starts + 36 + l_name
    rec_of = np.repeat(np.arange(n), n_cigar)
    within = np.arange(int(n_cigar.sum())) - np.repeat(np.cumsum(n_cigar) - n_cigar, n_cigar)
    words = _u32(data, cig0[rec_of] + 4 * within)
    consumed = np.where(_REF_OPS[words & 0xF], words >> 4, 0).astype(np.int64)
    span = np.bincount(rec_of, weights=consumed, minlength=n).astype(np.int64)
    end = beg + np.where(unmapped | (span == 0), 1, span)
    return RecordTable(ref_id, beg, end, bins, unmapped, offsets.copy())


def block_starts(body: bytes | memoryview) -> np.ndarray:
    """Compressed offset of every BGZF block of ``body``, and the body's length at the end.

    Returns
    -------
    np.ndarray, shape (blocks + 1,), int64
    """
    view = memoryview(body)
    out, at = [], 0
    while at < len(view):
        out.append(at)
        at += struct.unpack_from("<H", view, at + 16)[0] + 1
    out.append(len(view))
    return np.asarray(out, dtype=np.int64)


def virtual_offsets(offset: np.ndarray, blocks: np.ndarray, base: int) -> np.ndarray:
    """Virtual offsets of uncompressed offsets in a body written by ``bgzf.compress``.

    Every block but the last holds exactly ``BLOCK_DATA_SIZE`` bytes, so block ``k`` starts at
    uncompressed offset ``k * BLOCK_DATA_SIZE``; ``base`` is where the body starts in the file.
    """
    k = offset // BLOCK_DATA_SIZE
    return ((base + blocks[k]) << 16) | (offset - k * BLOCK_DATA_SIZE)


@dataclass
class _Piece:
    table: RecordTable
    vbeg: np.ndarray
    vend: np.ndarray


class BaiWriter:
    """Collects pieces in file order, then writes the index."""

    def __init__(self, n_ref: int) -> None:
        self.n_ref = n_ref
        self.pieces: list[_Piece] = []

    def add(self, table: RecordTable, *, blocks: np.ndarray, base: int) -> None:
        """Records of one BGZF body written at file offset ``base``."""
        if not len(table.beg):
            return
        v = virtual_offsets(table.offset, blocks, base)
        self.pieces.append(_Piece(table, v[:-1], v[1:]))

    def write(self, path: Path) -> None:
        write_bai(path, pieces=self.pieces, n_ref=self.n_ref)


def write_bai(path: Path, *, pieces: list[_Piece], n_ref: int) -> None:
    """Write a BAI for records given in file order (the BAM must be coordinate-sorted)."""
    cat = (lambda f: np.concatenate([f(p) for p in pieces])) if pieces else (
        lambda f: np.zeros(0, np.int64))
    ref = cat(lambda p: p.table.ref_id).astype(np.int64)
    beg, end = cat(lambda p: p.table.beg), cat(lambda p: p.table.end)
    bins = cat(lambda p: p.table.bin).astype(np.int64)
    unm = cat(lambda p: p.table.unmapped).astype(bool)
    vbeg, vend = cat(lambda p: p.vbeg), cat(lambda p: p.vend)
    out = [b"BAI\1", struct.pack("<i", n_ref)]
    placed = ref >= 0
    for r in range(n_ref):
        sel = np.flatnonzero(ref == r)
        out.append(_reference_index(beg[sel], end[sel], bins[sel], unm[sel], vbeg[sel],
                                    vend[sel], sel))
    out.append(struct.pack("<Q", int((~placed).sum())))
    tmp = Path(path).with_name(Path(path).name + ".part")
    tmp.write_bytes(b"".join(out))
    tmp.replace(path)


def _reference_index(beg, end, bins, unm, vbeg, vend, rows) -> bytes:
    if not len(beg):
        return struct.pack("<ii", 0, 0)
    # Chunks: runs of records that are consecutive in the file and share a bin.
    order = np.lexsort((rows, bins))
    b, r = bins[order], rows[order]
    new = np.ones(len(b), dtype=bool)
    new[1:] = (b[1:] != b[:-1]) | (r[1:] != r[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [len(b)]]) - 1
    c_bin = b[first]
    c_beg, c_end = vbeg[order][first], vend[order][last]
    ubins, counts = np.unique(c_bin, return_counts=True)
    parts = [struct.pack("<i", len(ubins) + 1)]
    at = 0
    for ub, cnt in zip(ubins.tolist(), counts.tolist(), strict=True):
        chunks = np.empty((cnt, 2), dtype="<u8")
        chunks[:, 0], chunks[:, 1] = c_beg[at:at + cnt], c_end[at:at + cnt]
        parts.append(struct.pack("<Ii", ub, cnt) + chunks.tobytes())
        at += cnt
    n_unmapped = int(unm.sum())
    parts.append(struct.pack("<IiQQQQ", _PSEUDO_BIN, 2, int(vbeg[0]), int(vend[-1]),
                             len(beg) - n_unmapped, n_unmapped))
    # Linear index: smallest start offset of the records overlapping each 16 kbp window.
    w0, w1 = beg >> LINEAR_SHIFT, (end - 1) >> LINEAR_SHIFT
    n_win = int(w1.max()) + 1
    lin = np.full(n_win, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(lin, w0, vbeg)
    multi = np.flatnonzero(w1 > w0)
    if len(multi):
        reps = (w1 - w0)[multi]
        win = np.repeat(w0[multi], reps) + (np.arange(int(reps.sum()))
                                            - np.repeat(np.cumsum(reps) - reps, reps)) + 1
        np.minimum.at(lin, win, np.repeat(vbeg[multi], reps))
    # Empty windows take the previous window's offset (htslib's rule), leading ones 0.
    empty = lin == np.iinfo(np.int64).max
    idx = np.where(~empty, np.arange(n_win), -1)
    idx = np.maximum.accumulate(idx)
    lin = np.where(idx >= 0, lin[np.maximum(idx, 0)], 0)
    parts.append(struct.pack("<i", n_win) + lin.astype("<u8").tobytes())
    return b"".join(parts)

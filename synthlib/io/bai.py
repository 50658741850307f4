"""BAM index (BAI) built from the records as they are written, without reading the BAM back.

A unit compresses its own BAM body; the merge only copies bytes. Indexing the merged file
with htslib would decompress all of it again, serially, at the end of every run (about 8% of
a 1-worker run). Instead each unit indexes its own body (:func:`partial_index`: chunks per
bin, linear-index minima, counts, with offsets relative to the body) and the merge shifts
those to file offsets and combines them. Memory stays bounded by the chunk size: a partial
index grows with the bins and 16 kbp windows a body touches, not with its reads. The result
is a valid BAI (SAM spec section 5.2): same bins, chunks and linear index semantics as
htslib, though chunks may be split where htslib would merge them (and small bins are not
folded into their parents), so the bytes can differ from ``samtools index``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bgzf import BLOCK_DATA_SIZE

__all__ = ["RecordTable", "PartialIndex", "BaiWriter", "record_table", "partial_index",
           "block_starts", "virtual_offsets", "write_bai", "LINEAR_SHIFT"]

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



def _at(data: np.ndarray, dtype: np.dtype | str, at: np.ndarray) -> np.ndarray:
    """Items of ``dtype`` starting at the byte offsets ``at`` of ``data``: one gather through
    a view whose items start at every byte (no per-byte gathers)."""
    dtype = np.dtype(dtype)
    view = np.ndarray((len(data) - dtype.itemsize + 1,), dtype=dtype, buffer=data,
                      strides=(1,))
    return view[at]


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
    # Bytes 4-19 of each record as two little-endian words (plain integer gathers; a
    # structured dtype is copied field by field): refID, pos | l_read_name, mapq, bin,
    # n_cigar_op, flag.
    w0 = _at(data, "<u8", starts + 4)
    w1 = _at(data, "<u8", starts + 12)
    ref_id = (w0 & 0xFFFFFFFF).astype(np.uint32).view(np.int32)
    beg = (w0 >> 32).astype(np.uint32).view(np.int32).astype(np.int64)
    l_name = (w1 & 0xFF).astype(np.int64)
    bins = ((w1 >> 16) & 0xFFFF).astype(np.int32)
    n_cigar = ((w1 >> 32) & 0xFFFF).astype(np.int64)
    unmapped = ((w1 >> 48) & 0x4) != 0
    # Reference span from the CIGAR words: one gather for the (most) records with a single
    # operation, then every word of the others at once.
    cig0 = starts + 36 + l_name
    span = np.zeros(n, dtype=np.int64)
    one = np.flatnonzero(n_cigar == 1)
    words = _at(data, "<u4", cig0[one])
    span[one] = np.where(_REF_OPS[words & 0xF], words >> 4, 0)
    many = np.flatnonzero(n_cigar > 1)
    if len(many):
        k = n_cigar[many]
        rec_of = np.repeat(np.arange(len(many)), k)
        within = np.arange(int(k.sum())) - np.repeat(np.cumsum(k) - k, k)
        words = _at(data, "<u4", cig0[many][rec_of] + 4 * within)
        consumed = np.where(_REF_OPS[words & 0xF], words >> 4, 0).astype(np.int64)
        span[many] = np.bincount(rec_of, weights=consumed, minlength=len(many)).astype(np.int64)
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


_FIELDS = ("c_ref", "c_bin", "c_beg", "c_end", "l_ref", "l_win", "l_off", "r_ref", "r_mapped",
           "r_unmapped", "r_beg", "r_end")


@dataclass
class PartialIndex:
    """The index of one BGZF body, with offsets relative to the body's start.

    Its size follows the bins and 16 kbp windows the body touches, not its record count, so a
    merge holding one per work unit stays small whatever the coverage.

    Attributes
    ----------
    c_ref, c_bin, c_beg, c_end : np.ndarray, shape (k,)
        Chunks: reference, bin, virtual start and end.
    l_ref, l_win, l_off : np.ndarray, shape (w,)
        Linear index: smallest record start per (reference, window).
    r_ref, r_mapped, r_unmapped, r_beg, r_end : np.ndarray, shape (r,)
        Per reference: record counts and the span of its records.
    n_no_coor : int
        Records without a reference.
    """

    c_ref: np.ndarray
    c_bin: np.ndarray
    c_beg: np.ndarray
    c_end: np.ndarray
    l_ref: np.ndarray
    l_win: np.ndarray
    l_off: np.ndarray
    r_ref: np.ndarray
    r_mapped: np.ndarray
    r_unmapped: np.ndarray
    r_beg: np.ndarray
    r_end: np.ndarray
    n_no_coor: int = 0

    def shifted(self, base: int) -> PartialIndex:
        """The same index for a body written at file offset ``base``."""
        d = base << 16
        return PartialIndex(self.c_ref, self.c_bin, self.c_beg + d, self.c_end + d, self.l_ref,
                            self.l_win, self.l_off + d, self.r_ref, self.r_mapped,
                            self.r_unmapped, self.r_beg + d, self.r_end + d, self.n_no_coor)

    @staticmethod
    def concat(parts: list[PartialIndex]) -> PartialIndex:
        """One index of bodies written one after another (each part already shifted to its
        place): the writer merges chunks and linear minima across parts anyway."""
        if len(parts) == 1:
            return parts[0]
        return PartialIndex(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS),
                            n_no_coor=sum(p.n_no_coor for p in parts))

    def save(self, path: Path) -> None:
        np.savez(path, n_no_coor=np.array(self.n_no_coor),
                 **{f: getattr(self, f) for f in _FIELDS})

    @staticmethod
    def load(path: Path) -> PartialIndex:
        with np.load(path) as z:
            return PartialIndex(*(z[f] for f in _FIELDS), n_no_coor=int(z["n_no_coor"]))


def _merge_chunks(ref, bins, beg, end):
    """Chunks sorted by (reference, bin, start); ones of a bin that start in the BGZF block
    where the previous one ends are merged (htslib's rule: one seek reads both)."""
    order = np.lexsort((beg, bins, ref))
    ref, bins, beg, end = ref[order], bins[order], beg[order], end[order]
    if len(ref) < 2:
        return ref, bins, beg, end
    same = (ref[1:] == ref[:-1]) & (bins[1:] == bins[:-1]) & ((beg[1:] >> 16) <= (end[:-1] >> 16))
    # Runs joined by `same` collapse to (first start, largest end).
    start = np.flatnonzero(np.concatenate(([True], ~same)))
    run_end = np.maximum.reduceat(end, start)
    return ref[start], bins[start], beg[start], run_end


def partial_index(table: RecordTable, *, blocks: np.ndarray) -> PartialIndex:
    """Index a body's records (``table``, in file order) compressed into ``blocks``."""
    v = virtual_offsets(table.offset, np.asarray(blocks, dtype=np.int64), 0)
    vbeg, vend = v[:-1], v[1:]
    placed = table.ref_id >= 0
    ref = table.ref_id[placed].astype(np.int64)
    bins = table.bin[placed].astype(np.int64)
    beg, end = table.beg[placed], table.end[placed]
    vb, ve = vbeg[placed], vend[placed]
    n = len(ref)
    if n == 0:  # e.g. a unit of an absent contig (female chrY): nothing to index
        z = np.zeros(0, dtype=np.int64)
        return PartialIndex(z, z, z, z, z, z, z, z, z, z, z, z, int((~placed).sum()))
    # Chunks: runs of records consecutive in the file with the same (reference, bin).
    rows = np.arange(n)
    order = np.lexsort((rows, bins, ref))
    r, b, w = ref[order], bins[order], rows[order]
    new = np.ones(n, dtype=bool)
    new[1:] = (r[1:] != r[:-1]) | (b[1:] != b[:-1]) | (w[1:] != w[:-1] + 1)
    first = np.flatnonzero(new)
    last = np.concatenate([first[1:], [n]]) - 1
    c_ref, c_bin, c_beg, c_end = _merge_chunks(r[first], b[first], vb[order][first],
                                               ve[order][last])
    # Linear index: every window each record overlaps, then the minimum start per window.
    w0, w1 = beg >> LINEAR_SHIFT, (end - 1) >> LINEAR_SHIFT
    reps = w1 - w0 + 1
    l_ref = np.repeat(ref, reps)
    l_win = np.repeat(w0, reps) + (np.arange(int(reps.sum())) - np.repeat(np.cumsum(reps) - reps,
                                                                           reps))
    l_off = np.repeat(vb, reps)
    l_ref, l_win, l_off = _min_per_key(l_ref, l_win, l_off)
    # Per reference: counts and span.
    r_ref, idx, counts = np.unique(ref, return_index=True, return_counts=True)
    unm = table.unmapped[placed]
    r_unmapped = np.bincount(np.searchsorted(r_ref, ref), weights=unm, minlength=len(r_ref))
    r_last = idx + counts - 1
    return PartialIndex(c_ref, c_bin, c_beg, c_end, l_ref, l_win, l_off, r_ref,
                        counts - r_unmapped.astype(np.int64), r_unmapped.astype(np.int64),
                        vb[idx], ve[r_last], int((~placed).sum()))


def _min_per_key(ref, win, off):
    if not len(ref):
        return ref, win, off
    order = np.lexsort((off, win, ref))
    ref, win, off = ref[order], win[order], off[order]
    keep = np.ones(len(ref), dtype=bool)
    keep[1:] = (ref[1:] != ref[:-1]) | (win[1:] != win[:-1])
    return ref[keep], win[keep], off[keep]


class BaiWriter:
    """Collects the partial indexes of a BAM's bodies in file order, then writes the BAI."""

    def __init__(self, n_ref: int) -> None:
        self.n_ref = n_ref
        self.parts: list[PartialIndex] = []

    def add(self, part: PartialIndex, *, base: int) -> None:
        """The partial index of a body written at file offset ``base``."""
        self.parts.append(part.shifted(base))

    def add_records(self, table: RecordTable, *, body: bytes, base: int) -> None:
        """Records compressed into ``body`` (a small piece indexed on the spot)."""
        if len(table.beg):
            self.add(partial_index(table, blocks=block_starts(body)), base=base)

    def write(self, path: Path) -> None:
        write_bai(path, parts=self.parts, n_ref=self.n_ref)


def write_bai(path: Path, *, parts: list[PartialIndex], n_ref: int) -> None:
    """Write a BAI from the partial indexes of a coordinate-sorted BAM's bodies."""
    def cat(name: str) -> np.ndarray:
        arrays = [getattr(p, name) for p in parts]
        return np.concatenate(arrays).astype(np.int64) if arrays else np.zeros(0, np.int64)

    c_ref, c_bin, c_beg, c_end = _merge_chunks(cat("c_ref"), cat("c_bin"), cat("c_beg"),
                                               cat("c_end"))
    l_ref, l_win, l_off = _min_per_key(cat("l_ref"), cat("l_win"), cat("l_off"))
    r_ref, r_mapped, r_unmapped = cat("r_ref"), cat("r_mapped"), cat("r_unmapped")
    r_beg, r_end = cat("r_beg"), cat("r_end")
    out = [b"BAI\1", struct.pack("<i", n_ref)]
    for r in range(n_ref):
        cs = slice(*np.searchsorted(c_ref, [r, r + 1]))
        if cs.start == cs.stop:
            out.append(struct.pack("<ii", 0, 0))
            continue
        rows = r_ref == r
        bins, counts = np.unique(c_bin[cs], return_counts=True)
        body = [struct.pack("<i", len(bins) + 1)]
        at = cs.start
        for ub, cnt in zip(bins.tolist(), counts.tolist(), strict=True):
            chunks = np.empty((cnt, 2), dtype="<u8")
            chunks[:, 0], chunks[:, 1] = c_beg[at:at + cnt], c_end[at:at + cnt]
            body.append(struct.pack("<Ii", ub, cnt) + chunks.tobytes())
            at += cnt
        body.append(struct.pack("<IiQQQQ", _PSEUDO_BIN, 2, int(r_beg[rows].min()),
                                int(r_end[rows].max()), int(r_mapped[rows].sum()),
                                int(r_unmapped[rows].sum())))
        ls = slice(*np.searchsorted(l_ref, [r, r + 1]))
        win, off = l_win[ls], l_off[ls]
        lin = np.zeros(int(win.max()) + 1, dtype=np.int64)
        have = np.zeros(len(lin), dtype=bool)
        lin[win], have[win] = off, True
        # Empty windows take the previous window's offset (htslib's rule), leading ones 0.
        prev = np.maximum.accumulate(np.where(have, np.arange(len(lin)), -1))
        lin = np.where(prev >= 0, lin[np.maximum(prev, 0)], 0)
        body.append(struct.pack("<i", len(lin)) + lin.astype("<u8").tobytes())
        out.append(b"".join(body))
    out.append(struct.pack("<Q", sum(p.n_no_coor for p in parts)))
    tmp = Path(path).with_name(Path(path).name + ".part")
    tmp.write_bytes(b"".join(out))
    tmp.replace(path)

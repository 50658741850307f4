"""Rewrite a few byte ranges of a BAM without touching the rest of the file.

A BAM is a chain of BGZF blocks; a virtual offset ``coffset << 16 | uoffset`` names a byte
inside the uncompressed content of the block at file offset ``coffset``. To replace the
records between two virtual offsets we copy every block before the range verbatim,
decompress only the blocks the range touches, substitute the bytes, recompress them, and copy
every following block verbatim. Cost is proportional to the number and size of the ranges;
the untouched part of the file is a plain byte copy.

The BAI linear index gives, for each 16 kbp window, the smallest virtual offset of a record
overlapping it: the place to start a sequential scan for a region.
"""

from __future__ import annotations

import shutil
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from ..errors import ReferenceDataError
from ..io import bgzf

__all__ = ["Replacement", "BaiLinearIndex", "splice_bam", "header_bytes", "split_records"]

_LINEAR_SHIFT = 14


@dataclass(frozen=True)
class Replacement:
    """Uncompressed bytes between virtual offsets ``[vo_start, vo_end)`` become ``data``."""

    vo_start: int
    vo_end: int
    data: bytes


class BaiLinearIndex:
    """The linear part of a ``.bai`` index (per reference: one virtual offset per 16 kbp)."""

    def __init__(self, path: Path) -> None:
        raw = Path(path).read_bytes()
        if raw[:4] != b"BAI\x01":
            raise ReferenceDataError("not a BAI index", where=str(path))
        (n_ref,) = struct.unpack_from("<i", raw, 4)
        off = 8
        self._linear: list[tuple[int, ...]] = []
        self._ref_beg: list[int | None] = []
        for _ in range(n_ref):
            (n_bin,) = struct.unpack_from("<i", raw, off)
            off += 4
            ref_beg = None
            for _ in range(n_bin):
                bin_id, n_chunk = struct.unpack_from("<Ii", raw, off)
                off += 8
                if bin_id == 37450 and n_chunk >= 1:  # pseudo-bin: span of this reference
                    ref_beg = struct.unpack_from("<Q", raw, off)[0]
                off += 16 * n_chunk
            (n_intv,) = struct.unpack_from("<i", raw, off)
            off += 4
            self._linear.append(struct.unpack_from(f"<{n_intv}Q", raw, off))
            off += 8 * n_intv
            self._ref_beg.append(ref_beg)

    def start_offset(self, tid: int, pos: int) -> int | None:
        """A virtual offset at or before every record of ``tid`` overlapping ``pos``.

        None when the index holds nothing for ``tid`` (scan from the header end instead).
        """
        lin = self._linear[tid] if tid < len(self._linear) else ()
        w = min(pos >> _LINEAR_SHIFT, len(lin) - 1)
        while w >= 0:
            if lin[w]:
                return lin[w]
            w -= 1
        return self._ref_beg[tid] if tid < len(self._ref_beg) else None


def _read_block(fh, coffset: int) -> tuple[bytes, int]:
    """Decompressed content and compressed size of the block at ``coffset``."""
    fh.seek(coffset)
    head = fh.read(18)
    if len(head) < 18:
        return b"", 0
    if head[:4] != b"\x1f\x8b\x08\x04" or head[12:14] != b"BC":
        raise ReferenceDataError(f"not a BGZF block at byte {coffset}", where=fh.name)
    (bsize,) = struct.unpack_from("<H", head, 16)
    body = fh.read(bsize + 1 - 18)
    return zlib.decompress(body[:-8], -15), bsize + 1


def splice_bam(src: Path, dst: Path, replacements: list[Replacement]) -> int:
    """Write ``src`` to ``dst`` with the given ranges replaced; returns bytes recompressed.

    Replacements must not overlap. Ranges sharing a BGZF block are handled together.
    """
    # (start, end): a pure insertion at v sorts before a replacement starting at v
    reps = sorted(replacements, key=lambda r: (r.vo_start, r.vo_end))
    for a, b in zip(reps, reps[1:], strict=False):
        if b.vo_start < a.vo_end:
            raise ValueError("overlapping replacements")
    groups: list[list[Replacement]] = []
    for r in reps:
        if groups and (r.vo_start >> 16) <= (groups[-1][-1].vo_end >> 16):
            groups[-1].append(r)
        else:
            groups.append([r])
    recompressed = 0
    size = src.stat().st_size
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        cursor = 0
        for group in groups:
            c_first = group[0].vo_start >> 16
            c_last = group[-1].vo_end >> 16
            _copy_range(fin, fout, cursor, c_first)
            # decompress the touched blocks, remembering where each starts in the buffer
            starts: dict[int, int] = {}
            buf = bytearray()
            c = c_first
            last_size = 0
            while True:
                starts[c] = len(buf)
                data, last_size = _read_block(fin, c)
                buf += data
                if c >= c_last or last_size == 0:
                    break
                c += last_size
            out = bytearray()
            prev = starts[c_first] + (group[0].vo_start & 0xFFFF)
            out += buf[:prev]
            for r in group:
                beg = starts[r.vo_start >> 16] + (r.vo_start & 0xFFFF)
                out += buf[prev:beg]
                out += r.data
                prev = starts[r.vo_end >> 16] + (r.vo_end & 0xFFFF)
            out += buf[prev:]
            fout.write(bgzf.compress(bytes(out)))
            recompressed += len(out)
            cursor = min(c_last + last_size, size)
        _copy_range(fin, fout, cursor, size)
    # the EOF marker may have been absorbed into a rewritten group
    with open(dst, "rb+") as fh:
        fh.seek(max(0, fh.seek(0, 2) - len(bgzf.EOF)))
        if fh.read() != bgzf.EOF:
            fh.write(bgzf.EOF)
    return recompressed


def _copy_range(fin, fout, beg: int, end: int) -> None:
    if end <= beg:
        return
    fin.seek(beg)
    remaining = end - beg
    while remaining:
        chunk = fin.read(min(remaining, 1 << 22))
        if not chunk:
            break
        fout.write(chunk)
        remaining -= len(chunk)


def header_bytes(text: str, references: list[tuple[str, int]]) -> bytes:
    """Serialize a BAM header (magic, text, reference list) as stored uncompressed."""
    raw = text.encode()
    parts = [b"BAM\x01", struct.pack("<i", len(raw)), raw, struct.pack("<i", len(references))]
    for name, length in references:
        nb = name.encode() + b"\x00"
        parts += [struct.pack("<i", len(nb)), nb, struct.pack("<i", length)]
    return b"".join(parts)


def split_records(data: bytes) -> list[bytes]:
    """Split concatenated uncompressed BAM records (each prefixed by its block size)."""
    out = []
    off = 0
    while off < len(data):
        (n,) = struct.unpack_from("<i", data, off)
        out.append(bytes(data[off : off + 4 + n]))
        off += 4 + n
    return out


def read_uncompressed(path: Path) -> bytes:
    """All uncompressed content of a small BGZF file (multi-member gzip)."""
    import gzip

    with gzip.open(path, "rb") as fh:
        return fh.read()


def skip_header(data: bytes) -> int:
    """Offset of the first record in uncompressed BAM content."""
    (l_text,) = struct.unpack_from("<i", data, 4)
    off = 8 + l_text
    (n_ref,) = struct.unpack_from("<i", data, off)
    off += 4
    for _ in range(n_ref):
        (l_name,) = struct.unpack_from("<i", data, off)
        off += 4 + l_name + 4
    return off


def copy_file(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)

"""BGZF compression: gzip members of at most 64 KiB, so that files concatenate and index.

Shards are written as BGZF *bodies* (blocks without the end-of-file marker); a final file is
the concatenation of bodies in work-unit order plus :data:`EOF`. This is what makes output
byte-identical whatever the number of workers.
"""

from __future__ import annotations

import struct
import zlib

try:  # isal's deflate is ~5x faster than zlib at level 1; same format
    from isal import isal_zlib as _deflate_mod

    _HAVE_ISAL = True
except ImportError:  # pragma: no cover - isal is a declared dependency
    _deflate_mod = zlib
    _HAVE_ISAL = False

__all__ = ["EOF", "compress", "BLOCK_DATA_SIZE"]

#: Uncompressed bytes per block; htslib uses the same so blocks stay under 64 KiB compressed.
BLOCK_DATA_SIZE = 0xFF00

#: The empty block htslib writes at the end of every BGZF file.
EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

_HEADER = struct.Struct("<4BI2BH2BHH")


def _block(data: bytes, level: int) -> bytes:
    # isal levels are 0-3; zlib 0-9. Level 1 is the speed point in both.
    if _HAVE_ISAL:
        comp = _deflate_mod.compressobj(min(level, 3), _deflate_mod.DEFLATED, -15)
    else:
        comp = zlib.compressobj(level, zlib.DEFLATED, -15)
    payload = comp.compress(data) + comp.flush()
    if len(payload) > 0xFFFF - 25 - 1:  # incompressible: store
        comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        payload = comp.compress(data) + comp.flush()
    bsize = len(payload) + 25  # header 18 + footer 8 - 1
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize)
    footer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))
    return header + payload + footer


def compress(data: bytes | bytearray | memoryview, *, level: int = 1) -> bytes:
    """Compress ``data`` into BGZF blocks, without the EOF marker.

    Parameters
    ----------
    data
        Uncompressed bytes of any length (empty gives ``b""``).
    level
        Deflate level (isal: 0-3, zlib: 0-9). Level 1 is the throughput sweet spot.

    Returns
    -------
    bytes
        Concatenated BGZF blocks; append :data:`EOF` to make a complete file.
    """
    view = memoryview(data).cast("B")
    return b"".join(
        _block(bytes(view[i : i + BLOCK_DATA_SIZE]), level)
        for i in range(0, len(view), BLOCK_DATA_SIZE)
    )

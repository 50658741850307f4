"""BGZF compression: gzip members of at most 64 KiB, so that files concatenate and index.

Shards are written as BGZF *bodies* (blocks without the end-of-file marker); a final file is
the concatenation of bodies in work-unit order plus :data:`EOF`. This is what makes output
byte-identical whatever the number of workers.
"""

from __future__ import annotations

import struct
import zlib

# zlib-ng, not isal: ISA-L's output can depend on stale hash-table memory (valid deflate,
# different bytes from run to run), which breaks byte-identical output. zlib-ng at level 2
# matches isal's speed here (~290 MB/s) with a better ratio, and a fresh stream is
# deterministic for a given library version (recorded in the manifest).
from zlib_ng import zlib_ng as _deflate_mod

__all__ = ["EOF", "compress", "BLOCK_DATA_SIZE", "DEFAULT_LEVEL"]

#: Deflate level of every BGZF block written (zlib-ng).
DEFAULT_LEVEL = 2

#: Uncompressed bytes per block; htslib uses the same so blocks stay under 64 KiB compressed.
BLOCK_DATA_SIZE = 0xFF00

#: The empty block htslib writes at the end of every BGZF file.
EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

_HEADER = struct.Struct("<4BI2BH2BHH")


def _block(data: bytes, level: int) -> bytes:
    comp = _deflate_mod.compressobj(level, _deflate_mod.DEFLATED, -15)
    payload = comp.compress(data) + comp.flush()
    if len(payload) > 0xFFFF - 25 - 1:  # incompressible: store
        comp = zlib.compressobj(0, zlib.DEFLATED, -15)
        payload = comp.compress(data) + comp.flush()
    bsize = len(payload) + 25  # header 18 + footer 8 - 1
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize)
    footer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data))
    return header + payload + footer


def compress(data: bytes | bytearray | memoryview, *, level: int = DEFAULT_LEVEL) -> bytes:
    """Compress ``data`` into BGZF blocks, without the EOF marker.

    Parameters
    ----------
    data
        Uncompressed bytes of any length (empty gives ``b""``).
    level
        Deflate level (0-9); 2 is the throughput sweet spot of zlib-ng.

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

"""BGZF compression: gzip members of at most 64 KiB, so that files concatenate and index.

Shards are written as BGZF *bodies* (blocks without the end-of-file marker); a final file is
the concatenation of bodies in work-unit order plus :data:`EOF`. This is what makes output
byte-identical whatever the number of workers.
"""

from __future__ import annotations

import struct
import zlib

# ISA-L level 1 through its stateless API with cleared buffers (synthlib.io.igzip): 2.8x zlib-ng
# level 2 here at the same ratio, and a block's bytes depend on its data alone. Where ISA-L
# cannot be called, libdeflate level 1 (deterministic, 1.5x zlib-ng) writes the blocks; the
# manifest names the codec in use either way.
import deflate as _libdeflate

from . import igzip as _igzip

__all__ = ["EOF", "compress", "BLOCK_DATA_SIZE", "DEFAULT_LEVEL", "codec_version"]

#: Deflate level of every BGZF block written (1 for both codecs).
DEFAULT_LEVEL = 1

#: Uncompressed bytes per block; htslib uses the same so blocks stay under 64 KiB compressed.
BLOCK_DATA_SIZE = 0xFF00

#: The empty block htslib writes at the end of every BGZF file.
EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")

_HEADER = struct.Struct("<4BI2BH2BHH")
_FOOTER = struct.Struct("<II")
_MAX_PAYLOAD = 0xFFFF - 25 - 1


def codec_version() -> str:
    """Name and version of the deflate implementation behind every block (for provenance)."""
    from importlib.metadata import version

    if _igzip.available():
        return _igzip.version()
    return f"libdeflate via deflate {version('deflate')}"


def _block(data: memoryview, level: int) -> bytes:
    payload = (_igzip.deflate(data, level) if _igzip.available()
               else _libdeflate.deflate_compress(data, level))
    if payload is None or len(payload) > _MAX_PAYLOAD:  # incompressible: store
        payload = zlib.compress(data, 0, -15)
    bsize = len(payload) + 25  # header 18 + footer 8 - 1
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize)
    return header + payload + _FOOTER.pack(_libdeflate.crc32(data), len(data))


def compress(data: bytes | bytearray | memoryview, *, level: int = DEFAULT_LEVEL) -> bytes:
    """Compress ``data`` into BGZF blocks, without the EOF marker.

    Parameters
    ----------
    data
        Uncompressed bytes of any length (empty gives ``b""``).
    level
        Deflate level; 1 is the fastest of both codecs.

    Returns
    -------
    bytes
        Concatenated BGZF blocks; append :data:`EOF` to make a complete file.
    """
    view = memoryview(data).cast("B")
    return b"".join(
        _block(view[i : i + BLOCK_DATA_SIZE], level)
        for i in range(0, len(view), BLOCK_DATA_SIZE)
    )

"""BGZF compression: gzip members of at most 64 KiB, so that files concatenate and index.

Shards are written as BGZF *bodies* (blocks without the end-of-file marker); a final file is
the concatenation of bodies in work-unit order plus :data:`EOF`. This is what makes output
byte-identical whatever the number of workers.
"""

from __future__ import annotations

import struct
import zlib

# ISA-L level 0 through its stateless API (synthlib.io.igzip): the fastest deflate here, and
# its output depends on the block's data alone. Its levels 1-3 build a Huffman code per block,
# and that path was measured writing other bytes for the same block in about one process in
# eight (it varies with the process's address layout: 1 of 31 stack shifts under
# ``setarch -R`` changed it), so it is not used. Where ISA-L cannot be called, libdeflate
# level 1 (deterministic by design) writes the blocks; the manifest names the codec either way.
import deflate as _libdeflate

from . import igzip as _igzip

__all__ = ["EOF", "compress", "BLOCK_DATA_SIZE", "ISAL_LEVEL", "LIBDEFLATE_LEVEL",
           "codec_version"]

#: Deflate level of every block with ISA-L (fixed Huffman tables: see above).
ISAL_LEVEL = 0
#: Deflate level of every block with the libdeflate fallback.
LIBDEFLATE_LEVEL = 1

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
        return f"{_igzip.version()}, level {ISAL_LEVEL}"
    return f"libdeflate via deflate {version('deflate')}, level {LIBDEFLATE_LEVEL}"


def _block(data: memoryview) -> bytes:
    payload = (_igzip.deflate(data, ISAL_LEVEL) if _igzip.available()
               else _libdeflate.deflate_compress(data, LIBDEFLATE_LEVEL))
    if payload is None or len(payload) > _MAX_PAYLOAD:  # incompressible: store
        payload = zlib.compress(data, 0, -15)
    bsize = len(payload) + 25  # header 18 + footer 8 - 1
    header = _HEADER.pack(0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"), 2, bsize)
    return header + payload + _FOOTER.pack(_libdeflate.crc32(data), len(data))


def compress(data: bytes | bytearray | memoryview) -> bytes:
    """Compress ``data`` into BGZF blocks, without the EOF marker.

    Parameters
    ----------
    data
        Uncompressed bytes of any length (empty gives ``b""``).

    Returns
    -------
    bytes
        Concatenated BGZF blocks; append :data:`EOF` to make a complete file.
    """
    view = memoryview(data).cast("B")
    return b"".join(
        _block(view[i : i + BLOCK_DATA_SIZE])
        for i in range(0, len(view), BLOCK_DATA_SIZE)
    )

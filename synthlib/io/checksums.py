"""File checksums as GCS reports them: md5 (hex and base64) and crc32c (base64)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c

__all__ = ["FileDigest", "Digester", "digest_file"]

_CHUNK = 4 << 20


class FileDigest(dict):
    """``{"size": int, "md5": hex, "md5_b64": str, "crc32c_b64": str}``."""


class Digester:
    """Size, md5 and crc32c of a byte stream fed in order (``update``), as a FileDigest."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5()
        self._crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, piece: bytes) -> None:
        self._md5.update(piece)
        self._crc.update(piece)  # google_crc32c takes bytes (not a writable buffer)
        self.size += len(piece)

    def digest(self) -> FileDigest:
        return FileDigest(
            size=self.size,
            md5=self._md5.hexdigest(),
            md5_b64=base64.b64encode(self._md5.digest()).decode(),
            crc32c_b64=base64.b64encode(self._crc.digest()).decode(),
        )


def digest_file(path: str | Path) -> FileDigest:
    """Size, md5 and crc32c of a file, read in 4 MiB pieces (bounded memory)."""
    d = Digester()
    with open(path, "rb") as fh:
        while piece := fh.read(_CHUNK):
            d.update(piece)
    return d.digest()

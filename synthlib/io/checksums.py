"""File checksums as GCS reports them: md5 (hex and base64) and crc32c (base64)."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import google_crc32c

__all__ = ["FileDigest", "digest_file"]

_CHUNK = 4 << 20


class FileDigest(dict):
    """``{"size": int, "md5": hex, "md5_b64": str, "crc32c_b64": str}``."""


def digest_file(path: str | Path) -> FileDigest:
    """Size, md5 and crc32c of a file, read in 4 MiB pieces (bounded memory)."""
    md5 = hashlib.md5()
    crc = google_crc32c.Checksum()
    size = 0
    with open(path, "rb") as fh:
        while piece := fh.read(_CHUNK):
            md5.update(piece)
            crc.update(piece)
            size += len(piece)
    return FileDigest(
        size=size,
        md5=md5.hexdigest(),
        md5_b64=base64.b64encode(md5.digest()).decode(),
        crc32c_b64=base64.b64encode(crc.digest()).decode(),
    )

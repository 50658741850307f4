"""FASTQ text built as one numpy byte matrix per batch (no per-read Python)."""

from __future__ import annotations

import numpy as np

__all__ = ["fastq_bytes", "read_names"]


def read_names(prefix: str, serial: np.ndarray, *, digits: int = 9) -> np.ndarray:
    """Fixed-width read names ``<prefix><serial zero-padded>``.

    Returns
    -------
    np.ndarray, shape (n, len(prefix) + digits), uint8
    """
    n = len(serial)
    pre = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    out = np.empty((n, len(pre) + digits), dtype=np.uint8)
    out[:, : len(pre)] = pre
    powers = 10 ** np.arange(digits - 1, -1, -1, dtype=np.int64)
    out[:, len(pre) :] = (serial[:, None] // powers) % 10 + 48
    return out


def fastq_bytes(names: np.ndarray, bases: np.ndarray, quals: np.ndarray) -> memoryview:
    """FASTQ records ``@name\\nSEQ\\n+\\nQUAL\\n``.

    Parameters
    ----------
    names : (n, W) uint8
    bases : (n, L) uint8 ASCII
    quals : (n, L) uint8 Phred (0..93); +33 is added here.

    Returns
    -------
    memoryview
        The records as one contiguous bytes-like buffer (no copy into a ``bytes``).
    """
    n, w = names.shape
    length = bases.shape[1]
    rec = np.empty((n, 1 + w + 1 + length + 3 + length + 1), dtype=np.uint8)
    rec[:, 0] = ord("@")
    rec[:, 1 : 1 + w] = names
    c = 1 + w
    rec[:, c] = 10
    rec[:, c + 1 : c + 1 + length] = bases
    c += 1 + length
    rec[:, c : c + 3] = (10, ord("+"), 10)
    c += 3
    np.add(quals, 33, out=rec[:, c : c + length])
    rec[:, -1] = 10
    return memoryview(rec.reshape(-1))

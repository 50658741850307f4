"""Adapter read-through: a fragment shorter than the read is read into the adapter.

In sequencing orientation a read of an insert of ``ins < L`` bases is the insert, then the
adapter of the other end (Illumina TruSeq: R1 reads ``ADAPTER_R1``, R2 reads ``ADAPTER_R2``),
then, past the adapter, a poly-G tail (two-colour chemistry reads "no signal" as G). In the
golden BAM such a read is the insert aligned and the rest soft-clipped: a forward read has CIGAR
``{ins}M{L - ins}S``; a reverse read (whose adapter sits on its left in reference orientation)
``{L - ins}S{ins}M`` at the fragment start (see :func:`readthrough_cigars`).
"""

from __future__ import annotations

import numpy as np

from ..errors import ModelError

__all__ = ["ADAPTER_R1", "ADAPTER_R2", "add_adapter_readthrough", "readthrough_cigars"]

#: Illumina TruSeq adapter read through by read 1 (Illumina adapter sequences document).
ADAPTER_R1 = b"AGATCGGAAGAGCACACGTCTGAACTCCAGTCA"
#: Illumina TruSeq adapter read through by read 2.
ADAPTER_R2 = b"AGATCGGAAGAGCGTCGTGTAGGGAAAGAGTGT"

_CIGAR_M, _CIGAR_S = 0, 4


def add_adapter_readthrough(
    *,
    bases: np.ndarray,
    insert_len: np.ndarray,
    read_number: int,
    adapter: bytes | None = None,
    tail: bytes = b"G",
) -> tuple[np.ndarray, np.ndarray]:
    """Overwrite every base past the insert with adapter, then a homopolymer tail.

    Call before the error model, so adapter bases get errors and qualities like any other.

    Parameters
    ----------
    bases : np.ndarray, shape (n, L), uint8
        Reads in sequencing orientation whose first ``min(ins, L)`` bases are the insert
        (for R1 of a forward fragment: the fragment from its start; for R2: the reverse
        complement of the fragment from its end). Not modified.
    insert_len : np.ndarray, shape (n,), int
        Fragment (insert) length of each read, >= 1.
    read_number
        1 or 2: which TruSeq adapter is read (when ``adapter`` is None).
    adapter
        Adapter sequence to use instead of the TruSeq one.
    tail
        One base repeated after the adapter (``b"G"`` two-colour, ``b"A"`` four-colour).

    Returns
    -------
    bases : np.ndarray, shape (n, L), uint8
        A new array (the input when no read is short).
    n_insert : np.ndarray, shape (n,), int64
        Insert bases in each read, ``min(ins, L)`` (the aligned part).
    """
    b = np.asarray(bases)
    if b.ndim != 2 or b.dtype != np.uint8:
        raise ModelError("bases must be an (n, L) uint8 array", where="add_adapter_readthrough")
    n, length = b.shape
    ins = np.asarray(insert_len, dtype=np.int64)
    if ins.shape != (n,) or (n and ins.min() < 1):
        raise ModelError("insert_len must be (n,) and >= 1", where="add_adapter_readthrough")
    if adapter is None:
        if read_number not in (1, 2):
            raise ModelError(f"read_number must be 1 or 2, got {read_number}",
                             where="add_adapter_readthrough")
        adapter = ADAPTER_R1 if read_number == 1 else ADAPTER_R2
    if len(tail) != 1:
        raise ModelError("tail must be one base", where="add_adapter_readthrough")
    n_insert = np.minimum(ins, length)
    short = np.flatnonzero(ins < length)
    if not len(short):
        return b, n_insert
    after = (adapter + tail * length)[:length]
    tail_seq = np.frombuffer(after, dtype=np.uint8)
    out = b.copy()
    rel = np.arange(length)[None, :] - ins[short, None]  # position past the insert
    rows, cols = np.nonzero(rel >= 0)
    out[short[rows], cols] = tail_seq[rel[rows, cols]]
    return out, n_insert


def readthrough_cigars(
    *, n_insert: np.ndarray, read_length: int, reverse: np.ndarray
) -> list[list[tuple[int, int]] | None]:
    """BAM CIGARs (op, length) of reads with adapter read-through; None for a full ``LM`` read.

    Parameters
    ----------
    n_insert : np.ndarray, shape (n,)
        From :func:`add_adapter_readthrough`.
    reverse : np.ndarray, shape (n,), bool
        Whether the read is on the reverse strand (adapter soft clip on its left).
    """
    out: list[list[tuple[int, int]] | None] = [None] * len(n_insert)
    for i in np.flatnonzero(np.asarray(n_insert) < read_length):
        m, s = int(n_insert[i]), read_length - int(n_insert[i])
        out[i] = [(_CIGAR_S, s), (_CIGAR_M, m)] if reverse[i] else [(_CIGAR_M, m), (_CIGAR_S, s)]
    return out

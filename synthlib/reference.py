"""Reference access through pysam: contigs, uppercase slices, and accessible (non-N) runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

from .errors import ReferenceDataError

__all__ = ["Reference", "acgt_runs"]

_SCAN_WINDOW = 4_000_000
_UPPER = bytes.maketrans(b"acgtn", b"ACGTN")


def acgt_runs(seq: bytes, *, offset: int = 0, min_len: int = 1) -> np.ndarray:
    """Maximal runs of A/C/G/T (no N or other IUPAC codes) in ``seq``.

    Parameters
    ----------
    seq
        Uppercase sequence.
    offset
        Added to every coordinate (the 0-based position of ``seq[0]``).
    min_len
        Shorter runs are dropped.

    Returns
    -------
    np.ndarray, shape (k, 2), int64
        Half-open ``[start, end)`` intervals, sorted.
    """
    arr = np.frombuffer(seq, dtype=np.uint8)
    ok = (arr == 65) | (arr == 67) | (arr == 71) | (arr == 84)
    edges = np.flatnonzero(np.diff(np.concatenate(([False], ok, [False])).astype(np.int8)))
    runs = edges.reshape(-1, 2).astype(np.int64)
    runs = runs[(runs[:, 1] - runs[:, 0]) >= min_len]
    return runs + offset


@dataclass
class Reference:
    """An indexed FASTA (plain or bgzipped), opened lazily so it pickles to Dask workers.

    Parameters
    ----------
    path
        FASTA with a ``.fai`` (and ``.gzi`` when bgzipped) beside it.
    """

    path: Path

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self._fasta: pysam.FastaFile | None = None
        if not self.path.exists():
            raise ReferenceDataError("reference FASTA not found", where=str(self.path))
        try:
            fa = pysam.FastaFile(str(self.path))
        except (OSError, ValueError) as exc:
            raise ReferenceDataError(f"not an indexed FASTA: {exc}", where=str(self.path)) from None
        self.lengths: dict[str, int] = dict(zip(fa.references, fa.lengths, strict=True))
        fa.close()

    def __getstate__(self) -> dict:
        return {"path": self.path, "lengths": self.lengths, "_fasta": None}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    @property
    def contigs(self) -> list[str]:
        return list(self.lengths)

    def _fa(self) -> pysam.FastaFile:
        if self._fasta is None:
            self._fasta = pysam.FastaFile(str(self.path))
        return self._fasta

    def check_contig(self, contig: str, *, where: str | None = None) -> int:
        """Length of ``contig``; raises naming the known contigs when it is absent."""
        if contig not in self.lengths:
            known = ", ".join(list(self.lengths)[:10])
            raise ReferenceDataError(
                f"contig {contig!r} is not in reference {self.path.name} (has: {known})",
                where=where,
            )
        return self.lengths[contig]

    def fetch(self, contig: str, start: int, end: int) -> bytes:
        """Uppercase bases of ``contig[start:end]`` (0-based, half-open, clipped to the contig)."""
        length = self.check_contig(contig)
        start, end = max(0, start), min(end, length)
        if end <= start:
            return b""
        return self._fa().fetch(contig, start, end).encode("ascii").translate(_UPPER)

    def accessible(self, contig: str, start: int, end: int, *, min_len: int = 1) -> np.ndarray:
        """ACGT runs within ``[start, end)``, scanned in windows so memory stays bounded.

        Returns
        -------
        np.ndarray, shape (k, 2), int64
        """
        pieces = []
        for w0 in range(start, end, _SCAN_WINDOW):
            w1 = min(end, w0 + _SCAN_WINDOW)
            pieces.append(acgt_runs(self.fetch(contig, w0, w1), offset=w0))
        if not pieces:
            return np.zeros((0, 2), dtype=np.int64)
        runs = np.concatenate(pieces)
        # Join runs split by a window edge.
        if len(runs) > 1:
            joined = [runs[0].copy()]
            for s, e in runs[1:]:
                if s == joined[-1][1]:
                    joined[-1][1] = e
                else:
                    joined.append(np.array([s, e]))
            runs = np.array(joined, dtype=np.int64)
        return runs[(runs[:, 1] - runs[:, 0]) >= min_len]

"""Sorting a work unit's BAM records in bounded memory (an external merge sort).

A unit's records come batch by batch in fragment order, not position order. Holding them all
until one sort made a worker's memory grow with coverage (about 1 GB for a 1 Mbp unit at
100x). :class:`RecordSorter` keeps at most ``run_bytes`` of records in memory: beyond that it
sorts what it holds and writes it to a run file. Reading back, it yields the records in
(pos, key) order in pieces of about ``piece_bytes``, reading from each run only the slice a
piece needs. (pos, key) is unique per record, so the order, and every byte written from it,
is the same however the records were cut into runs.

A unit whose records fit in one run never touches the disk. Either way sorting copies records
piece by piece (:meth:`RecordBatch.sorted_pieces`): memory holds the unsorted records and one
sorted piece, never two copies of everything.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .bam import RecordBatch

__all__ = ["RecordSorter", "RUN_BYTES", "PIECE_BYTES"]

#: Records held in memory before a sorted run goes to disk. Writing a run costs about 2 s
#: per GB here (page-cache pages are fresh memory), so it is set above a 100x unit of 1 Mbp
#: (~220 MB): runs are for deeper units, where memory would otherwise grow without bound.
RUN_BYTES = 256 << 20
#: About how many record bytes each merged piece holds.
PIECE_BYTES = 32 << 20


@dataclass
class _Run:
    """One sorted run on disk: record bytes, and its offsets, positions and keys."""

    data: Path
    offsets: np.ndarray  # (n + 1,) int64, memory-mapped
    pos: np.ndarray  # (n,) int64, memory-mapped
    key: np.ndarray  # (n,) int64, memory-mapped

    def read(self, fd: int, a: int, b: int) -> RecordBatch:
        """Records ``a:b`` (a sorted slice), their bytes read with one ``pread``."""
        o0, o1 = int(self.offsets[a]), int(self.offsets[b])
        buf = np.frombuffer(os.pread(fd, o1 - o0, o0), dtype=np.uint8) if o1 > o0 else (
            np.zeros(0, np.uint8))
        return RecordBatch(buf, np.asarray(self.offsets[a:b + 1]) - o0,
                           np.asarray(self.pos[a:b]), np.asarray(self.key[a:b]))


class RecordSorter:
    """Collect raw BAM records, then read them back sorted by (pos, key).

    Parameters
    ----------
    workdir, stem
        Run files are ``workdir/<stem>.run<k>.*``; :meth:`close` removes them.
    run_bytes, piece_bytes
        Memory budget of the collecting side and size of the pieces read back (default:
        :data:`RUN_BYTES`, :data:`PIECE_BYTES`).
    """

    def __init__(self, *, workdir: Path, stem: str, run_bytes: int | None = None,
                 piece_bytes: int | None = None) -> None:
        run_bytes = RUN_BYTES if run_bytes is None else run_bytes
        piece_bytes = PIECE_BYTES if piece_bytes is None else piece_bytes
        if run_bytes < 1 or piece_bytes < 1:
            raise ValueError("run_bytes and piece_bytes must be positive")
        self._workdir, self._stem = Path(workdir), stem
        self._run_bytes, self._piece_bytes = run_bytes, piece_bytes
        self._pending: list[RecordBatch] = []
        self._pending_bytes = 0
        self._runs: list[_Run] = []
        self._files: list[Path] = []

    @property
    def runs(self) -> int:
        """Sorted runs written to disk so far."""
        return len(self._runs)

    def add(self, batches: list[RecordBatch]) -> None:
        """Take records (any order); spills a sorted run when the budget is reached."""
        for b in batches:
            if len(b):
                self._pending.append(b)
                self._pending_bytes += len(b.data)
        if self._pending_bytes >= self._run_bytes:
            self._spill()

    def _spill(self) -> None:
        base = self._workdir / f"{self._stem}.run{len(self._runs)}"
        data = base.with_name(base.name + ".bin")
        self._files.append(data)
        tables: dict[str, list[np.ndarray]] = {"offsets": [np.zeros(1, np.int64)], "pos": [],
                                               "key": []}
        written = 0
        with open(data, "wb") as fh:
            for piece in RecordBatch.sorted_pieces(self._pending, piece_bytes=self._piece_bytes):
                fh.write(memoryview(piece.data))
                tables["offsets"].append(piece.offsets[1:] + written)
                tables["pos"].append(piece.pos)
                tables["key"].append(piece.key)
                written += len(piece.data)
        self._pending, self._pending_bytes = [], 0
        arrays = []
        for name, parts in tables.items():
            path = base.with_name(f"{base.name}.{name}.npy")
            self._files.append(path)
            np.save(path, np.concatenate(parts).astype(np.int64, copy=False))
            arrays.append(np.load(path, mmap_mode="r"))
        self._runs.append(_Run(data, *arrays))

    def pieces(self) -> Iterator[RecordBatch]:
        """Every record, sorted by (pos, key), in consecutive pieces.

        Each piece holds about ``piece_bytes`` of records (more only when one position
        alone holds more). No records: one empty piece.
        """
        if not self._runs:
            if not self._pending:
                yield RecordBatch.empty()
            yield from RecordBatch.sorted_pieces(self._pending, piece_bytes=self._piece_bytes)
            self._pending, self._pending_bytes = [], 0
            return
        if self._pending:
            self._spill()
        runs = self._runs
        mean = sum(int(r.offsets[-1]) for r in runs) / max(1, sum(len(r.pos) for r in runs))
        share = max(1, int(self._piece_bytes / max(mean, 1.0)) // len(runs))
        at = [0] * len(runs)
        fds = [os.open(r.data, os.O_RDONLY) for r in runs]
        try:
            while any(a < len(r.pos) for a, r in zip(at, runs, strict=True)):
                # Up to `share` records per run fall below the smallest look-ahead position.
                ahead = [int(r.pos[a + share]) for a, r in zip(at, runs, strict=True)
                         if a + share < len(r.pos)]
                lo = min(int(r.pos[a]) for a, r in zip(at, runs, strict=True) if a < len(r.pos))
                hi = max(min(ahead), lo + 1) if ahead else None
                parts = []
                for k, r in enumerate(runs):
                    b = len(r.pos) if hi is None else int(np.searchsorted(r.pos, hi, "left"))
                    if b > at[k]:
                        parts.append(r.read(fds[k], at[k], b))
                        at[k] = b
                yield RecordBatch.merge_sorted(parts)
        finally:
            for fd in fds:
                os.close(fd)

    def close(self) -> None:
        """Remove the run files (idempotent)."""
        self._runs, self._pending = [], []
        for path in self._files:
            path.unlink(missing_ok=True)
        self._files = []

    def __enter__(self) -> RecordSorter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

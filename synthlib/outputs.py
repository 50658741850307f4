"""A dataset's final FASTQ and BAM files, written front to back with their checksums taken on
the way out.

Two ways lead into them, and both give the same bytes:

- On a cluster, units write shards (:func:`synthlib.generate.run_unit`) and
  :func:`synthlib.generate.merge_units` appends them in unit order.
- A serial run streams each unit straight in (:class:`SerialOutputs`), with no shards. Every
  byte is then written once instead of twice. Page-cache writes measured about 0.7 GB/s on
  the 2-vCPU VM, so the second write cost about 0.4 CPU-s per 270 MB of FASTQ.gz and BAM.

Either way, the BAM's unit seams go through one :class:`BamAssembler`. A unit's records below
its start plus a margin (its head) are merged with the previous unit's records past that
unit's end (its spill).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from . import __version__
from .errors import SynthError
from .io import bgzf
from .io.bai import BaiWriter, PartialIndex, record_table
from .io.bam import RecordBatch, bam_header
from .io.checksums import Digester, FileDigest
from .plan import Plan, WorkUnit

__all__ = [
    "FILES",
    "MergedFile",
    "BamAssembler",
    "SerialOutputs",
    "head_margin",
    "sample_name",
]

#: Output file names inside ``<dest>/<id>/<version>/``.
FILES = {
    "r1": "reads_R1.fastq.gz",
    "r2": "reads_R2.fastq.gz",
    "bam": "golden.bam",
    "bai": "golden.bam.bai",
    "vcf": "truth.vcf.gz",
    "tbi": "truth.vcf.gz.tbi",
}

_COPY_CHUNK = 4 << 20


def sample_name(plan: Plan) -> str:
    """The sample name in the BAM's read group and the VCF's column."""
    return plan.spec.id


def head_margin(plan: Plan) -> int:
    """How far past a unit's start the previous unit's records can reach."""
    return 2 * plan.spec.fragment.max + 64


class MergedFile:
    """A file written front to back, its size, md5 and crc32c taken from the bytes as they
    go out (no second read). Shards are appended by read and write: inside a flow, with the
    units' gigabyte of fresh shards in the page cache, ``copy_file_range`` measured about
    half as fast, and the checksums need the bytes in memory anyway."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fh = open(self.path, "wb")  # noqa: SIM115 - closed by close()
        self._digest = Digester()

    def write(self, data: bytes | memoryview) -> None:
        self._digest.update(data)
        self._fh.write(data)

    def tell(self) -> int:
        return self._digest.size

    def append(self, src_path: Path) -> None:
        with open(src_path, "rb", buffering=0) as src:
            while piece := src.read(_COPY_CHUNK):
                self.write(piece)

    def close(self) -> FileDigest:
        self._fh.close()
        return self._digest.digest()

    def discard(self) -> None:
        """Close and remove a file that will not be completed."""
        self._fh.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> MergedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._fh.close()


class BamAssembler:
    """The merged, coordinate-sorted BAM and its BAI, unit by unit in unit order.

    For each unit, call :meth:`head` once, then :meth:`body` or :meth:`body_file` for each
    compressed body, then :meth:`spill`. End with :meth:`finish`.
    """

    def __init__(self, plan: Plan, path: Path) -> None:
        contigs = plan.reference.lengths
        self._file = MergedFile(path)
        self._bai = BaiWriter(len(contigs))
        self._pending = RecordBatch.empty()
        self._pending_contig: str | None = None
        self._file.write(bgzf.compress(bam_header(contigs=contigs, sample=sample_name(plan),
                                                  program_version=__version__)))

    def _records(self, batch: RecordBatch) -> None:
        body = bgzf.compress(batch.data)
        self._bai.add_records(record_table(batch.data, batch.offsets), body=body,
                              base=self._file.tell())
        self._file.write(body)

    def head(self, contig: str, head: RecordBatch) -> None:
        """A unit's records below its start + margin: the previous unit's spill sorts in
        among them (or is written first if that unit was on another contig)."""
        if len(self._pending) and self._pending_contig != contig:
            self._records(self._pending)
            self._pending = RecordBatch.empty()
        self._records(RecordBatch.merge_sorted([self._pending, head]))
        self._pending = RecordBatch.empty()

    def body(self, data: bytes, index: PartialIndex) -> None:
        """Compressed records; ``index`` is their partial index relative to ``data``."""
        self._bai.add(index, base=self._file.tell())
        self._file.write(data)

    def body_file(self, path: Path, index: PartialIndex) -> None:
        """A body shard on disk (its index relative to the shard's start)."""
        self._bai.add(index, base=self._file.tell())
        self._file.append(path)

    def spill(self, contig: str, spill: RecordBatch) -> None:
        """A unit's records at or past its end, held for the next unit's head."""
        self._pending, self._pending_contig = spill, contig

    def finish(self, index_path: Path) -> FileDigest:
        """Write the last spill, the EOF block and the BAI; the BAM's checksums."""
        self._records(self._pending)
        self._file.write(bgzf.EOF)
        digest = self._file.close()
        self._bai.write(index_path)
        return digest

    def discard(self) -> None:
        self._file.discard()


class SerialOutputs:
    """The FASTQs and BAM of a plan, streamed by its units as they run, in unit order, in
    this process (``run_unit(..., outputs=self)``); :meth:`finish` completes them.

    Written under ``<name>.tmp`` in ``out_dir`` and renamed by :meth:`finish`; used as a
    context manager, a run that raises leaves no partial file behind.
    """

    def __init__(self, plan: Plan, *, out_dir: Path) -> None:
        self._plan = plan
        self._out_dir = Path(out_dir)
        self._out_dir.mkdir(parents=True, exist_ok=True)
        self._next = 0
        out = plan.spec.outputs
        self._parts = [*(["r1", "r2"] if out.fastq else []), *(["bam"] if out.bam else [])]
        self.mates: list[MergedFile] = []
        self.bam: BamAssembler | None = None
        try:
            if out.fastq:
                self.mates = [MergedFile(self._tmp(FILES[m])) for m in ("r1", "r2")]
            if out.bam:
                self.bam = BamAssembler(plan, self._tmp(FILES["bam"]))
        except BaseException:
            self.discard()
            raise

    def _tmp(self, name: str) -> Path:
        return self._out_dir / (name + ".tmp")

    @property
    def parts(self) -> list[str]:
        """The merge parts (:data:`synthlib.generate.MERGE_PARTS`) streamed here."""
        return list(self._parts)

    def take(self, unit: WorkUnit) -> None:
        """Check that ``unit`` is the next one in order (the files are front to back)."""
        if unit.index != self._next:
            raise SynthError(f"units stream into the files in order: expected unit "
                             f"{self._next}, got unit {unit.index}")
        self._next += 1

    def finish(self, *, digests: dict[str, FileDigest] | None = None) -> list[str]:
        """Complete every streamed file (EOF blocks, BAI) and rename it into place.

        Returns the names written; ``digests`` (if given) gets their checksums.
        """
        if self._next != len(self._plan.units):
            raise SynthError(f"{len(self._plan.units) - self._next} of "
                             f"{len(self._plan.units)} units were not streamed")
        taken: dict[str, FileDigest] = {}
        for key, mate in zip(("r1", "r2"), self.mates, strict=False):
            mate.write(bgzf.EOF)
            taken[FILES[key]] = mate.close()
        written = list(taken)
        if self.bam is not None:
            taken[FILES["bam"]] = self.bam.finish(self._tmp(FILES["bai"]))
            written += [FILES["bam"], FILES["bai"]]
        for name in written:
            os.replace(self._tmp(name), self._out_dir / name)
        self.mates, self.bam = [], None
        if digests is not None:
            digests.update(taken)
        return written

    def discard(self) -> None:
        """Remove every file not yet finished."""
        for mate in self.mates:
            mate.discard()
        if self.bam is not None:
            self.bam.discard()
        for key in ("r1", "r2", "bam", "bai"):
            self._tmp(FILES[key]).unlink(missing_ok=True)
        self.mates, self.bam = [], None

    def __enter__(self) -> SerialOutputs:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            self.discard()


def split_pieces(plan: Plan, unit: WorkUnit, pieces: Iterable[RecordBatch]
                 ) -> Iterable[tuple[RecordBatch, RecordBatch, RecordBatch]]:
    """Each sorted piece of a unit's records as ``(head, body, spill)``: below start +
    margin, up to the unit's end, and past it. Heads come before any body (sorted input)."""
    head_cut = unit.start + head_margin(plan)
    for piece in pieces:
        inside, spill = piece.split(unit.end)
        head, body = inside.split(head_cut)
        yield head, body, spill

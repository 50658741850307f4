"""Generation as plain functions: run one work unit into shards; merge shards into files.

Flows (``flows/``) wrap these as Prefect tasks on Dask; ``generate_local`` runs them serially,
streaming the units' FASTQ and BAM straight into the final files
(:class:`synthlib.outputs.SerialOutputs`) instead of shards. Shards are defined by work
units, never by workers, and are concatenated in unit order, so the final files are
byte-identical on any number of workers and in either mode.

Shard files of unit ``uNNNNNN`` in the work folder:

- ``uNNNNNN.R1.bgzf`` / ``.R2.bgzf``: FASTQ as BGZF bodies (no EOF marker)
- ``uNNNNNN.vcf.bgzf``: truth VCF records of variants whose POS is in the chunk
- ``uNNNNNN.bam.head.npz``: raw BAM records with pos < start + margin (merged with the
  previous unit's spill at merge time)
- ``uNNNNNN.bam.body.bgzf``: the rest of the unit's records below its chunk end, compressed
- ``uNNNNNN.bam.spill.npz``: records at or past the chunk end (reverse mates)
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pysam

from . import __version__
from .errors import SynthError
from .io import bgzf
from .io.bai import PartialIndex, block_starts, partial_index, record_table
from .io.bam import RecordBatch
from .io.checksums import FileDigest, digest_file
from .io.record_sort import RecordSorter
from .outputs import FILES, BamAssembler, MergedFile, SerialOutputs, sample_name, split_pieces
from .plan import Plan, WorkUnit
from .reads.errormodel import ErrorModel
from .reads.simulate import simulate_unit
from .spec import DatasetSpec, spec_hash
from .variants.assemble import chunk_variants
from .variants.realized import add_support, annotated_shards, with_realized_header, write_support
from .variants.truth import sv_bed, vcf_header, vcf_records

__all__ = [
    "UnitResult",
    "run_unit",
    "merge_units",
    "merge_parts",
    "merge_order",
    "merge_groups",
    "MERGE_PARTS",
    "write_manifest",
    "write_manifest_for",
    "dataset_dir",
    "staged",
    "keep_work",
    "generate_local",
    "run_serial",
    "companions",
    "companion_files",
    "write_pair_manifest",
    "FILES",
    "SV_BED",
    "MANIFEST_FORMAT",
]

MANIFEST_FORMAT = "synthlib.manifest/1"

#: Written beside the truth only when the spec has structural variants (SV/CNV intervals).
SV_BED = "truth_sv.bed"


@dataclass(frozen=True)
class UnitResult:
    """What a unit wrote (paths are inside the work folder) and how long it took."""

    index: int
    pairs: int
    variants: int
    seconds: float


def _atomic_write(path: Path, data: bytes | list[bytes]) -> None:
    with _AtomicFile(path) as fh:
        for piece in [data] if isinstance(data, bytes) else data:
            fh.write(piece)
        fh.commit()


def _save_records(path: Path, batch: RecordBatch) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, data=batch.data, offsets=batch.offsets, pos=batch.pos, key=batch.key)
    os.replace(tmp, path)


def _load_records(path: Path) -> RecordBatch:
    with np.load(path) as z:
        return RecordBatch(z["data"], z["offsets"], z["pos"], z["key"])


def load_model(plan: Plan) -> ErrorModel:
    """The spec's error model at its read length, loaded once per process.

    Its quality bank costs ~0.1 s to build and is a pure function of the model file, so
    every unit a worker runs shares one copy.
    """
    return _cached_model(plan.spec.reads.model, plan.spec.reads.length)


@functools.lru_cache(maxsize=8)
def _cached_model(name: str, length: int) -> ErrorModel:
    return ErrorModel.load(name).for_read_length(length)


def run_unit(plan: Plan, unit: WorkUnit, *, workdir: Path, model: ErrorModel | None = None,
             outputs: SerialOutputs | None = None) -> UnitResult:
    """Simulate one unit and write its shards into ``workdir`` (each written atomically).

    With ``outputs`` (a serial run, units in order), its FASTQ and BAM go straight into the
    final files instead of shards; the truth VCF shard is written either way.
    """
    t0 = time.perf_counter()
    workdir = Path(workdir)
    model = model or load_model(plan)
    spec = plan.spec
    if outputs is not None:
        outputs.take(unit)
    variants = chunk_variants(plan, unit)
    _atomic_write(workdir / f"{unit.name}.vcf.bgzf", bgzf.compress(vcf_records(variants).encode()))

    pairs = 0
    support: dict[str, list[int]] = {}
    # FASTQ blocks go out as they are made and records to a bounded sorter: a unit's
    # memory follows its batch size, not its coverage.
    with contextlib.ExitStack() as stack:
        mates: list[_AtomicFile] | list[MergedFile] = []
        if outputs is not None:
            mates = outputs.mates
        elif spec.outputs.fastq:
            mates = [stack.enter_context(_AtomicFile(workdir / f"{unit.name}.{m}.bgzf"))
                     for m in ("R1", "R2")]
        sorter = stack.enter_context(RecordSorter(workdir=workdir, stem=f"{unit.name}.bam"))
        for batch in simulate_unit(plan, unit, model=model, sample=sample_name(plan)):
            add_support(support, batch.support)
            if mates:
                mates[0].write(bgzf.compress(batch.r1))
                mates[1].write(bgzf.compress(batch.r2))
            sorter.add(batch.records)
            pairs += batch.pairs
        if spec.somatic is not None:  # realized VAF counts, summed over units at merge time
            write_support(workdir / f"{unit.name}.support.json", support)
        if outputs is None:
            for mate in mates:
                mate.commit()
        if spec.outputs.bam:
            if outputs is not None:
                _stream_bam(plan, unit, outputs.bam, sorter)
            else:
                _write_bam_shards(plan, unit, workdir, sorter)
    return UnitResult(unit.index, pairs, len(variants), time.perf_counter() - t0)


class _AtomicFile:
    """A file written under ``<name>.tmp`` and renamed into place by :meth:`commit`; left
    uncommitted (an exception), the partial file is removed."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self._fh = open(self.tmp, "wb")  # noqa: SIM115 - closed by commit or __exit__

    def write(self, data: bytes | memoryview) -> None:
        self._fh.write(data)

    def commit(self) -> None:
        self._fh.close()
        os.replace(self.tmp, self.path)

    def __enter__(self) -> _AtomicFile:
        return self

    def __exit__(self, *exc: object) -> None:
        if not self._fh.closed:
            self._fh.close()
            self.tmp.unlink(missing_ok=True)


def _body_index(data: bytes, body: RecordBatch) -> PartialIndex:
    return partial_index(record_table(body.data, body.offsets), blocks=block_starts(data))


def _write_bam_shards(plan: Plan, unit: WorkUnit, workdir: Path, sorter: RecordSorter) -> None:
    """The unit's records, sorted, as three shards: ``head`` (below ``start`` + margin, where
    the previous unit's spill sorts in), the compressed ``body`` with its partial index, and
    ``spill`` (at or past ``end``, from fragments that start inside)."""
    heads, spills, index = [], [], []
    with _AtomicFile(workdir / f"{unit.name}.bam.body.bgzf") as body_file:
        written = 0
        for head, body, spill in split_pieces(plan, unit, sorter.pieces()):
            # Copies: a view would keep the whole piece alive until the end.
            heads.append(head.copy())
            spills.append(spill.copy())
            if len(body) or not index:
                data = bgzf.compress(body.data)
                # The body's own index; the merge only shifts it to the body's place.
                index.append(_body_index(data, body).shifted(written))
                body_file.write(data)
                written += len(data)
        body_file.commit()
    _save_records(workdir / f"{unit.name}.bam.head.npz", RecordBatch.concat(heads))
    tmp = workdir / f"{unit.name}.bam.body.idx.tmp.npz"
    PartialIndex.concat(index).save(tmp)
    os.replace(tmp, workdir / f"{unit.name}.bam.body.idx.npz")
    _save_records(workdir / f"{unit.name}.bam.spill.npz", RecordBatch.concat(spills))


def _stream_bam(plan: Plan, unit: WorkUnit, bam: BamAssembler, sorter: RecordSorter) -> None:
    """The unit's sorted records straight into the final BAM: the same bytes as its shards
    would give at merge (heads all sort before the first body record)."""
    heads, spills = [], []
    started = False
    for head, body, spill in split_pieces(plan, unit, sorter.pieces()):
        spills.append(spill.copy())  # held until the next unit: not a view of the piece
        if not started:
            heads.append(head)
            if len(body):
                bam.head(unit.contig, RecordBatch.concat(heads))
                started = True
        if len(body):
            data = bgzf.compress(body.data)
            bam.body(data, _body_index(data, body))
    if not started:
        bam.head(unit.contig, RecordBatch.concat(heads))
    bam.spill(unit.contig, RecordBatch.concat(spills))


def _concat(out: Path, parts: list[Path], *, head: bytes = b"", consume: bool = False,
            before: Callable[[int], None] | None = None) -> FileDigest:
    with MergedFile(out) as fh:
        fh.write(head)
        for i, p in enumerate(parts):
            if before is not None:
                before(i)
            fh.append(p)
            if consume:
                p.unlink()
        fh.write(bgzf.EOF)
        return fh.close()


def _merge_bam(plan: Plan, workdir: Path, out: Path, index: Path, *, consume: bool = False,
               ready: Callable[[WorkUnit], None] | None = None) -> FileDigest:
    """Write the merged BAM and its index from the units' shards."""
    bam = BamAssembler(plan, out)
    try:
        for unit in plan.units:
            if ready is not None:
                ready(unit)
            shards = [workdir / f"{unit.name}.bam.{s}"
                      for s in ("head.npz", "body.bgzf", "body.idx.npz", "spill.npz")]
            bam.head(unit.contig, _load_records(shards[0]))
            bam.body_file(shards[1], PartialIndex.load(shards[2]))
            bam.spill(unit.contig, _load_records(shards[3]))
            if consume:
                for shard in shards:
                    shard.unlink()
        return bam.finish(index)
    except BaseException:
        bam.discard()
        raise


#: Outputs merged independently of each other (so a cluster can merge them side by side),
#: the longest first: the BAM's merge re-sorts the records near unit seams and builds the BAI.
MERGE_PARTS = ("bam", "r1", "r2", "vcf")


def merge_parts(plan: Plan) -> list[str]:
    """The :data:`MERGE_PARTS` this plan writes, in order."""
    out = plan.spec.outputs
    wanted = {"r1": out.fastq, "r2": out.fastq, "bam": out.bam, "vcf": out.vcf}
    return [p for p in MERGE_PARTS if wanted[p]]


#: Relative merge cost of each part (bytes written and digested): the BAM weighs about as
#: much as both FASTQs, the truth VCF next to nothing.
_PART_WEIGHT = {"bam": 2.0, "r1": 1.0, "r2": 1.0, "vcf": 0.1}


def merge_order(plan: Plan) -> list[str]:
    """The plan's :func:`merge_parts`, the costliest first (for packing or claiming)."""
    return sorted(merge_parts(plan), key=lambda p: -_PART_WEIGHT[p])


def merge_groups(plan: Plan, *, workers: int) -> list[list[str]]:
    """The plan's :func:`merge_parts` packed into at most ``workers`` groups of about equal
    cost (longest first, each to the lightest group): one merge task per group, so that
    no task waits behind another for a worker while a worker sits idle.
    """
    if workers < 1:
        raise SynthError(f"workers must be at least 1, got {workers}", where="merge_groups")
    parts = merge_order(plan)
    groups: list[list[str]] = [[] for _ in range(min(workers, len(parts)))]
    loads = [0.0] * len(groups)
    for part in parts:
        k = loads.index(min(loads))
        groups[k].append(part)
        loads[k] += _PART_WEIGHT[part]
    return [sorted(g, key=MERGE_PARTS.index) for g in groups]


def merge_units(plan: Plan, *, workdir: Path, out_dir: Path,
                parts: Sequence[str] | None = None,
                digests: dict[str, FileDigest] | None = None, consume: bool = False,
                ready: Callable[[WorkUnit], None] | None = None) -> list[str]:
    """Concatenate the shards of every unit, in unit order, into the final files.

    Parameters
    ----------
    parts
        Which of :func:`merge_parts` to write (default: all of them). Parts share no files,
        so they may run at the same time in different processes.
    digests
        If given, filled with the checksums of every file written (name -> FileDigest):
        those of the FASTQs and the BAM are taken while writing them.
    consume
        Remove each shard once its bytes are in the final file: the merge tasks then free
        the work folder's gigabyte side by side, instead of the flow at its end. A merge
        that consumed its shards cannot be run again.
    ready
        Called with each unit before its shards are used (all of them first for the VCF):
        a merge started while units still run waits there
        (:func:`synthlib.claims.await_unit`).

    Returns
    -------
    list of str
        Names of the files written into ``out_dir`` (each appears only when complete).
    """
    workdir, out_dir = Path(workdir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    todo = merge_parts(plan)
    if parts is not None:
        unknown = sorted(set(parts) - set(MERGE_PARTS))
        if unknown:
            raise SynthError(f"unknown merge part(s) {unknown}; parts are {list(MERGE_PARTS)}")
        todo = [p for p in todo if p in parts]
    spec = plan.spec
    names = [u.name for u in plan.units]
    written = []
    taken: dict[str, FileDigest] = {}
    for mate in ("r1", "r2"):
        if mate in todo:
            tmp = out_dir / (FILES[mate] + ".tmp")
            taken[FILES[mate]] = _concat(
                tmp, [workdir / f"{n}.{mate.upper()}.bgzf" for n in names], consume=consume,
                before=None if ready is None else lambda i: ready(plan.units[i]))
            os.replace(tmp, out_dir / FILES[mate])
            written.append(FILES[mate])
    if "bam" in todo:
        tmp = out_dir / (FILES["bam"] + ".tmp")
        taken[FILES["bam"]] = _merge_bam(plan, workdir, tmp, out_dir / (FILES["bai"] + ".tmp"),
                                         consume=consume, ready=ready)
        os.replace(out_dir / (FILES["bai"] + ".tmp"), out_dir / FILES["bai"])
        os.replace(tmp, out_dir / FILES["bam"])
        written += [FILES["bam"], FILES["bai"]]
    if "vcf" in todo:
        if ready is not None:  # every unit's records are in the truth file
            for unit in plan.units:
                ready(unit)
        header = vcf_header(contigs=plan.reference.lengths, sample=sample_name(plan),
                            reference_name=spec.reference.name,
                            complex_svs=any(v.svtype == "CPX" for v in plan.spikes))
        tmp = out_dir / (FILES["vcf"] + ".tmp")
        shards = [workdir / f"{n}.vcf.bgzf" for n in names]
        if spec.somatic is not None:  # somatic records get their realized DP/AD/AF
            header = with_realized_header(header)
            shards = annotated_shards(workdir, names)
        _concat(tmp, shards, head=bgzf.compress(header.encode()), consume=consume)
        pysam.tabix_index(str(tmp), preset="vcf", force=True,
                          index=str(out_dir / (FILES["tbi"] + ".tmp")))
        os.replace(out_dir / (FILES["tbi"] + ".tmp"), out_dir / FILES["tbi"])
        os.replace(tmp, out_dir / FILES["vcf"])
        written += [FILES["vcf"], FILES["tbi"]]
        if any(v.svtype for v in plan.spikes):
            _atomic_write(out_dir / SV_BED, sv_bed(plan.spikes).encode())
            written.append(SV_BED)
    if digests is not None:
        digests.update({n: taken.get(n) or digest_file(out_dir / n) for n in written})
    return written


def software_versions() -> dict[str, str]:
    import importlib.metadata  # here: 25 ms of imports that only the manifest needs

    return {
        "synthlib": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        # Read from the installed metadata: importing pandas only for this cost ~0.4 s.
        "pandas": importlib.metadata.version("pandas"),
        "pysam": pysam.__version__,
        "htslib": pysam.version.__htslib_version__,
        "deflate": bgzf.codec_version(),
    }


def write_manifest(
    plan: Plan, *, out_dir: Path, files: list[str], run: dict, qc: dict | None = None,
    digests: Mapping[str, FileDigest] | None = None,
) -> Path:
    """Write ``manifest.json`` last: spec, hash, seed, software, and every file's checksums.

    Times, paths and worker counts belong here (``run``), never in the data files.
    """
    return write_manifest_for(plan.spec, out_dir=out_dir, files=files, run=run, qc=qc,
                              plan_summary={"units": len(plan.units), **plan.cost().to_dict()},
                              digests=digests)


def write_manifest_for(
    spec: DatasetSpec, *, out_dir: Path, files: list[str], run: dict, plan_summary: dict,
    qc: dict | None = None, kind: str | None = None,
    digests: Mapping[str, FileDigest] | None = None,
) -> Path:
    """The manifest of any dataset kind (one individual, or ``kind="cohort"``), written
    atomically; ``plan_summary`` says what was planned and what it was estimated to cost.

    ``digests`` holds checksums already taken by whoever wrote a file (right after writing
    it, in parallel); every other file is read and digested here.
    """
    digests = digests or {}
    manifest = {
        "format": MANIFEST_FORMAT,
        **({"kind": kind} if kind else {}),
        "id": spec.id,
        "version": spec.version,
        "title": spec.title,
        "spec_hash": spec_hash(spec),
        "seed": spec.seed,
        "spec": spec.model_dump(mode="json"),
        "software": software_versions(),
        "created": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "plan": plan_summary,
        "run": run,
        "qc": qc or {"verdict": "not_run", "metrics": {}},
        "files": [{"path": f, **(digests.get(f) or digest_file(Path(out_dir) / f))}
                  for f in sorted(files)],
    }
    path = Path(out_dir) / "manifest.json"
    _atomic_write(path, (json.dumps(manifest, indent=2, default=_json_scalar) + "\n").encode())
    return path


def _json_scalar(value: object) -> object:
    # Plans carry numpy scalars (counts, sizes); JSON takes their Python values.
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def dataset_dir(dest: Path, spec: DatasetSpec) -> Path:
    """``<dest>/<id>/<version>``: where a dataset's files live."""
    return Path(dest) / spec.id / spec.version


def stage_dir(final: Path) -> Path:
    """A fresh staging folder beside ``final``; renamed onto it when everything is written."""
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.staging-", dir=final.parent))
    staging.chmod(0o755)  # mkdtemp makes it private; a published dataset is for reading
    return staging


def keep_work() -> bool:
    """Whether work folders are kept after success (``SYNTH_KEEP_WORK=1``), to compare runs
    shard by shard."""
    return bool(os.environ.get("SYNTH_KEEP_WORK"))


@contextlib.contextmanager
def staged(final: Path) -> Iterator[tuple[Path, Path]]:
    """A staging folder for ``final`` with a ``.work`` folder inside: ``(staging, work)``.

    If the body raises, the whole staging folder goes (nothing half written stays behind);
    if it succeeds, only ``.work`` goes (``SYNTH_KEEP_WORK=1`` keeps it, to compare runs
    shard by shard), and the caller promotes ``staging`` onto ``final``.
    """
    staging = stage_dir(final)
    work = staging / ".work"
    work.mkdir()
    try:
        yield staging, work
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    if not keep_work():
        shutil.rmtree(work, ignore_errors=True)


def promote(staging: Path, final: Path, *, overwrite: bool) -> None:
    """Move a finished staging folder into place (the dataset appears all at once)."""
    if final.exists():
        if not overwrite:
            shutil.rmtree(staging, ignore_errors=True)
            raise SynthError(
                "dataset folder already exists (use --overwrite to replace it)", where=str(final))
        old = final.with_name(final.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
        os.replace(staging, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, final)


def companions(plan: Plan) -> dict[str, Plan]:
    """Datasets generated with this one, in sub-folders of its folder: for a tumor spec whose
    ``somatic.normal_coverage`` is set, its matched normal under ``normal/`` (same seed and
    germline; :func:`synthlib.variants.somatic.normal_spec`)."""
    spec = plan.spec
    if spec.somatic is None or spec.somatic.normal_coverage is None:
        return {}
    from .plan import plan_dataset
    from .variants.somatic import normal_spec

    return {"normal": plan_dataset(normal_spec(spec), base_dir=plan.base_dir)}


def companion_files(name: str, sub: Plan, *, staging: Path, work: Path, run: dict) -> list[str]:
    """Merge a companion's units (run in ``work/<name>``) into ``staging/<name>`` with its
    own manifest; returns its file names relative to ``staging``."""
    files = merge_units(sub, workdir=work / name, out_dir=staging / name)
    write_manifest(sub, out_dir=staging / name, files=files, run=run)
    return [f"{name}/{f}" for f in [*files, "manifest.json"]]


def write_pair_manifest(plan: Plan, subs: dict[str, Plan], *, out_dir: Path, files: list[str],
                        run: dict, digests: Mapping[str, FileDigest] | None = None) -> Path:
    """The manifest of a dataset with companions: its plan summary counts them too."""
    summary = {"units": len(plan.units), **plan.cost().to_dict()}
    for name, sub in subs.items():
        summary[name] = {"id": sub.spec.id, "units": len(sub.units), **sub.cost().to_dict()}
    return write_manifest_for(plan.spec, out_dir=out_dir, files=files, run=run,
                              plan_summary=summary, digests=digests)


def run_serial(plan: Plan, *, workdir: Path, out_dir: Path,
               digests: dict[str, FileDigest] | None = None
               ) -> tuple[list[UnitResult], list[str]]:
    """Every unit in order in this process, its FASTQ and BAM streamed straight into the
    final files in ``out_dir`` (:class:`synthlib.outputs.SerialOutputs`), the rest merged
    from shards in ``workdir``; returns the units' results and the names written.
    ``digests`` (if given) gets every file's checksums."""
    model = load_model(plan)
    digests = {} if digests is None else digests
    with SerialOutputs(plan, out_dir=out_dir) as outputs:
        results = [run_unit(plan, u, workdir=workdir, model=model, outputs=outputs)
                   for u in plan.units]
        files = outputs.finish(digests=digests)
    files += merge_units(plan, workdir=workdir, out_dir=out_dir, digests=digests,
                         parts=[p for p in merge_parts(plan) if p not in outputs.parts])
    return results, files


def generate_local(plan: Plan, *, dest: Path, overwrite: bool = False) -> Path:
    """Generate a dataset serially in this process (no Prefect, no Dask): for tests and tools.

    A tumor spec with ``somatic.normal_coverage`` also gets its matched normal under
    ``normal/`` (see :func:`companions`).
    """
    final = dataset_dir(dest, plan.spec)
    t0 = time.perf_counter()
    subs = companions(plan)
    with staged(final) as (staging, work):
        digests: dict[str, FileDigest] = {}
        results, files = run_serial(plan, workdir=work, out_dir=staging, digests=digests)
        run = {"executor": "local", "workers": 1,
               "seconds": round(time.perf_counter() - t0, 2),
               "pairs": sum(r.pairs for r in results)}
        for name, sub in subs.items():
            (work / name).mkdir()
            sub_results = [run_unit(sub, u, workdir=work / name, model=load_model(sub))
                           for u in sub.units]
            sub_run = {**run, "pairs": sum(r.pairs for r in sub_results)}
            files += companion_files(name, sub, staging=staging, work=work, run=sub_run)
        run["seconds"] = round(time.perf_counter() - t0, 2)
        write_pair_manifest(plan, subs, out_dir=staging, files=files, run=run, digests=digests)
    promote(staging, final, overwrite=overwrite)
    return final

"""The ``generate_dataset`` flow: plan, simulate work units as Dask tasks, merge, manifest."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait

from synthlib.allocator import keep_freed_memory
from synthlib.catalog import resolve_spec
from synthlib.generate import (
    UnitResult,
    companion_files,
    companions,
    dataset_dir,
    merge_parts,
    merge_units,
    promote,
    run_unit,
    staged,
    write_pair_manifest,
)
from synthlib.io.checksums import FileDigest
from synthlib.plan import Plan, WorkUnit, plan_dataset

from .runtime import Shipped, dask_task_runner, run_on_dask

__all__ = ["generate_dataset", "run_generate", "set_progress_hook", "submit_units",
           "submit_merges", "merged"]

_progress: Callable[[str, int, int], None] | None = None


def set_progress_hook(hook: Callable[[str, int, int], None] | None) -> None:
    """Called as ``hook(stage, done, total)`` while the flow runs (the CLI draws a bar)."""
    global _progress
    _progress = hook


def _tick(stage: str, done: int, total: int) -> None:
    if _progress is not None:
        _progress(stage, done, total)


@task(cache_policy=NO_CACHE)
def plan_task(spec_ref: str) -> Plan:
    spec, base_dir = resolve_spec(spec_ref)
    return plan_dataset(spec, base_dir=base_dir)


@task(cache_policy=NO_CACHE)
def unit_task(plan: Shipped[Plan], units: list[WorkUnit], workdir: str) -> list[UnitResult]:
    """Simulate a batch of consecutive units (each with its own seeds and shards)."""
    keep_freed_memory()
    return [run_unit(plan.value, u, workdir=Path(workdir)) for u in units]


def submit_units(plan: Shipped[Plan], workdir: str, *, workers: int) -> list[PrefectFuture]:
    """The plan's units in batches (:meth:`Plan.unit_batches`), one task each: Prefect's
    per-task cost (~0.15 s of context, client and state handling on the worker, ~0.06 s of
    submission here) is paid per batch. Each future's result is its batch's list of
    :class:`UnitResult`."""
    batches = plan.value.unit_batches(workers=max(1, workers))
    return [unit_task.submit(plan, batch, workdir) for batch in batches]


@task(cache_policy=NO_CACHE)
def merge_task(plan: Shipped[Plan], workdir: str, staging: str, part: str
               ) -> dict[str, FileDigest]:
    """Merge one output part; its files' checksums, taken while writing them."""
    digests: dict[str, FileDigest] = {}
    merge_units(plan.value, workdir=Path(workdir), out_dir=Path(staging), parts=[part],
                digests=digests)
    return digests


def submit_merges(plan: Shipped[Plan], workdir: str, staging: str) -> list[PrefectFuture]:
    """One merge task per output part (FASTQ mates, BAM, VCF), run side by side: the merge
    and the checksums of a 30x dataset's gigabyte of files were the flow's longest serial
    step. Each future's result maps file name -> checksums."""
    return [merge_task.submit(plan, workdir, staging, part) for part in merge_parts(plan.value)]


def merged(futures: list[PrefectFuture]) -> dict[str, FileDigest]:
    """The checksums of every file the merge futures wrote."""
    return {name: d for fut in futures for name, d in fut.result().items()}


@task(cache_policy=NO_CACHE)
def companion_task(name: str, sub: Shipped[Plan], staging: str, work: str, workers: int
                   ) -> list[str]:
    run = {"executor": "prefect+dask", "workers": workers}
    return companion_files(name, sub.value, staging=Path(staging), work=Path(work), run=run)


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def promote_task(staging: str, final: str, overwrite: bool) -> str:
    promote(Path(staging), Path(final), overwrite=overwrite)
    return final


@flow(name="generate-dataset", task_runner=dask_task_runner())
def generate_dataset(
    spec: str = "demo", dest: str = "out", overwrite: bool = False, workers: int = 2,
    qc: bool = True,
) -> str:
    """Generate one dataset into ``<dest>/<id>/<version>/`` and return that folder.

    Parameters
    ----------
    spec
        Catalog id or path to a spec YAML.
    dest
        Local folder standing in for the bucket.
    overwrite
        Replace an existing dataset folder of the same id and version.
    workers
        Recorded in the manifest (the cluster itself is the task runner's).
    qc
        Run QC on the finished files before the folder appears; the verdict goes into the
        manifest (a failed dataset is kept locally, marked failed, and never published).
    """
    t0 = time.perf_counter()
    plan = plan_task(spec)
    final = dataset_dir(Path(dest), plan.spec)
    futures: list = []
    subs = companions(plan)  # a tumor's matched normal, generated beside it
    with staged(final) as (staging, work):
        shipped = {"": Shipped(plan)} | {name: Shipped(sub) for name, sub in subs.items()}
        for name in subs:
            (work / name).mkdir()
        try:
            jobs = [(name, fut) for name, ship in shipped.items()
                    for fut in submit_units(ship, str(work / name), workers=workers)]
            futures += [fut for _, fut in jobs]
            total = len(plan.units) + sum(len(sub.units) for sub in subs.values())
            results: dict[str, list[UnitResult]] = {}
            for name, fut in jobs:
                results.setdefault(name, []).extend(fut.result())
                _tick("units", sum(map(len, results.values())), total)
            merges = submit_merges(shipped[""], str(work), str(staging))
            extra = [companion_task.submit(name, shipped[name], str(staging), str(work), workers)
                     for name in subs]
            futures += merges + extra
            digests = merged(merges)
            files = [*digests, *(f for fut in extra for f in fut.result())]
        except BaseException:
            wait(futures)  # let running tasks finish before their folder is removed
            raise
        _tick("merge", 1, 1)
        run = {"executor": "prefect+dask", "workers": workers,
               "seconds": round(time.perf_counter() - t0, 2),
               "pairs": sum(r.pairs for r in results[""]),
               "unit_seconds": round(sum(r.seconds for r in results[""]), 2)}
        write_pair_manifest(plan, subs, out_dir=staging, files=files, run=run, digests=digests)
        if qc:
            from .qc_dataset import qc_task

            verdict = qc_task.submit(str(staging), base_dir=str(plan.base_dir)).result()
            _tick("qc", 1, 1)
            if verdict["verdict"] != "pass":
                _tick("qc failed", 1, 1)
    return promote_task(str(staging), str(final), overwrite)


def run_generate(
    spec: str, *, dest: str, workers: int = 2, address: str | None = None,
    overwrite: bool = False, qc: bool = True,
) -> Path:
    """Run the flow on a LocalCluster of ``workers`` processes, or on the scheduler at
    ``address`` (see :func:`flows.runtime.run_on_dask`)."""
    return Path(run_on_dask(generate_dataset, workers=workers, address=address, spec=spec,
                            dest=dest, overwrite=overwrite, qc=qc))

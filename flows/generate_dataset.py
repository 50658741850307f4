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
from synthlib.claims import (
    await_unit,
    done_results,
    run_claimed_merges,
    run_claimed_units,
    units_done,
)
from synthlib.generate import (
    FILES,
    UnitResult,
    companion_files,
    companions,
    dataset_dir,
    keep_work,
    load_model,
    merge_groups,
    merge_parts,
    merge_units,
    promote,
    run_unit,
    staged,
    write_pair_manifest,
)
from synthlib.io.checksums import FileDigest
from synthlib.plan import Plan, plan_dataset

from .runtime import Shipped, dask_task_runner, run_on_dask

__all__ = ["generate_dataset", "run_generate", "set_progress_hook", "submit_units",
           "await_claimers", "unit_results", "submit_merges", "claim_task", "submit_claimers",
           "claimed_merges", "merged"]

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
def unit_task(plan: Shipped[Plan], workdir: str, claimer: int | None = None,
              units: list[int] | None = None) -> list[UnitResult]:
    """Claim and simulate units until none is left, as claimer number ``claimer``
    (:func:`synthlib.claims.run_claimed_units`); with ``units`` (indices), simulate exactly
    those."""
    keep_freed_memory()
    if units is None:
        return run_claimed_units(plan.value, workdir=Path(workdir), claimer=claimer)
    return [run_unit(plan.value, plan.value.units[i], workdir=Path(workdir)) for i in units]


def submit_units(plan: Shipped[Plan], workdir: str, *, workers: int) -> list[PrefectFuture]:
    """One unit-claiming task per worker (claimers ``0 .. workers - 1``): they share out the
    plan's units as they go.

    Prefect's cost per task is about 0.2 CPU-s (serializing the settings context at
    submission, then task-run state handling on the worker and the API server), competing
    with the units for the same cores. Guided batches needed 11 tasks for 30 units on 2
    workers, and claiming needs 2. Collect the results with :func:`unit_results`.
    """
    return [unit_task.submit(plan, workdir, i) for i in range(max(1, workers))]


def await_claimers(workdir: str, futures: list[PrefectFuture], *,
                   progress: Callable[[int], None] | None = None, poll: float = 1.0) -> None:
    """Wait for the claiming ``futures`` (re-raising a unit's error once all have stopped),
    looking every ``poll`` seconds; meanwhile ``progress(done)`` hears how many units are
    finished."""
    pending, seen = list(futures), -1
    while pending:
        pending = list(wait(pending, timeout=poll).not_done)
        done = units_done(Path(workdir))
        if progress is not None and done != seen:
            progress(done)
            seen = done
    for fut in futures:
        fut.result()


def unit_results(plan: Shipped[Plan], workdir: str, futures: list[PrefectFuture], *,
                 progress: Callable[[int], None] | None = None) -> list[UnitResult]:
    """Every unit's result, in unit order, once the claiming ``futures`` are done.

    While they run, ``progress(done)`` hears how many units are finished. A unit that no task
    completed (its worker died, and Dask's rerun of that task found it claimed) runs in a
    task of its own. (The tasks of :func:`submit_claimers` merge as well: their merges run
    abandoned units themselves.)
    """
    await_claimers(workdir, futures, progress=progress)
    results = {r.index: r for fut in futures for r in fut.result()}
    missing = [u.index for u in plan.value.units if u.index not in results]
    if missing:
        results.update((r.index, r)
                       for r in unit_task.submit(plan, workdir, None, missing).result())
    return [results[u.index] for u in plan.value.units]


@task(cache_policy=NO_CACHE)
def merge_task(plan: Shipped[Plan], workdir: str, staging: str, parts: list[str],
               consume: bool, claimers: int | None = None) -> dict[str, FileDigest]:
    """Merge some output parts; their files' checksums, taken while writing them. With
    ``claimers``, units may still be running: each is awaited before its shards are used
    (:func:`synthlib.claims.await_unit`)."""
    digests: dict[str, FileDigest] = {}
    work = Path(workdir)
    ready = None if claimers is None else (
        lambda unit: await_unit(plan.value, unit, workdir=work, claimers=claimers))
    merge_units(plan.value, workdir=work, out_dir=Path(staging), parts=parts,
                digests=digests, consume=consume, ready=ready)
    return digests


def submit_merges(plan: Shipped[Plan], workdir: str, staging: str, *, workers: int = 2,
                  consume: bool = False) -> list[PrefectFuture]:
    """The output parts (BAM, FASTQ mates, VCF) merged side by side, in at most ``workers``
    tasks of about equal cost (:func:`synthlib.generate.merge_groups`): the merge and the
    checksums of a 30x dataset's gigabyte of files were the flow's longest serial step.
    Each future's result maps file name -> checksums. With ``consume``, each task removes
    its shards as it merges them (see :func:`synthlib.generate.merge_units`). Submit them
    once the units are done (:func:`submit_claimers` merges as workers run out of units)."""
    return [merge_task.submit(plan, workdir, staging, group, consume)
            for group in merge_groups(plan.value, workers=max(1, workers))]


@task(cache_policy=NO_CACHE)
def claim_task(plan: Shipped[Plan], workdir: str, staging: str, claimer: int, claimers: int,
               consume: bool) -> dict[str, FileDigest]:
    """Claimer number ``claimer`` of ``claimers``: simulate units until none is left to claim,
    then merge output parts until none is left (:func:`synthlib.claims.run_claimed_merges`);
    returns the checksums of the files merged here."""
    keep_freed_memory()
    model = load_model(plan.value)
    work = Path(workdir)
    run_claimed_units(plan.value, workdir=work, claimer=claimer, model=model)
    return run_claimed_merges(plan.value, workdir=work, out_dir=Path(staging),
                              claimers=claimers, consume=consume, model=model)


def submit_claimers(plan: Shipped[Plan], workdir: str, staging: str, *, workers: int,
                    consume: bool) -> list[PrefectFuture]:
    """One :func:`claim_task` per worker: they share out the units, and then the merges,
    each merge starting on the first worker to run out of units (the last units still
    running elsewhere are awaited shard by shard). Collect with :func:`claimed_merges`."""
    n = max(1, workers)
    return [claim_task.submit(plan, workdir, staging, i, n, consume) for i in range(n)]


def claimed_merges(plan: Shipped[Plan], workdir: str, staging: str,
                   futures: list[PrefectFuture], *, consume: bool,
                   progress: Callable[[int], None] | None = None) -> dict[str, FileDigest]:
    """The checksums of every merged file, once the claiming ``futures`` are done.

    A part claimed by a task whose worker died (Dask's rerun of that task found it claimed)
    is merged by a task of its own."""
    await_claimers(workdir, futures, progress=progress)
    digests = merged(futures)
    missing = [p for p in merge_parts(plan.value) if FILES[p] not in digests]
    if missing:
        digests.update(merge_task.submit(plan, workdir, staging, missing, consume,
                                         len(futures)).result())
    return digests


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
            consume = not keep_work()
            claims = submit_claimers(shipped[""], str(work), str(staging), workers=workers,
                                     consume=consume)
            jobs = {name: submit_units(ship, str(work / name), workers=workers)
                    for name, ship in shipped.items() if name}
            futures += claims + [fut for futs in jobs.values() for fut in futs]
            total = len(plan.units) + sum(len(sub.units) for sub in subs.values())

            def progress(_done: int) -> None:
                _tick("units", sum(units_done(work / name) for name in shipped), total)

            digests = claimed_merges(shipped[""], str(work), str(staging), claims,
                                     consume=consume, progress=progress)
            results: dict[str, list[UnitResult]] = {
                name: unit_results(shipped[name], str(work / name), futs, progress=progress)
                for name, futs in jobs.items()}
            extra = [companion_task.submit(name, shipped[name], str(staging), str(work), workers)
                     for name in subs]
            futures += extra
            results[""] = done_results(plan, work)
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

"""The ``generate_dataset`` flow: plan, simulate work units as Dask tasks, merge, manifest."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from synthlib.allocator import keep_freed_memory
from synthlib.catalog import resolve_spec
from synthlib.generate import (
    UnitResult,
    companion_files,
    companions,
    dataset_dir,
    merge_units,
    promote,
    run_unit,
    staged,
    write_pair_manifest,
)
from synthlib.plan import Plan, WorkUnit, plan_dataset

from .runtime import Shipped, dask_task_runner, run_on_dask

__all__ = ["generate_dataset", "run_generate", "set_progress_hook"]

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
def unit_task(plan: Shipped[Plan], unit: WorkUnit, workdir: str) -> UnitResult:
    keep_freed_memory()
    return run_unit(plan.value, unit, workdir=Path(workdir))


@task(cache_policy=NO_CACHE)
def merge_task(plan: Shipped[Plan], workdir: str, staging: str) -> list[str]:
    return merge_units(plan.value, workdir=Path(workdir), out_dir=Path(staging))


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
        jobs = [("", plan, u) for u in plan.units]
        jobs += [(name, sub, u) for name, sub in subs.items() for u in sub.units]
        for name in subs:
            (work / name).mkdir()
        try:
            futures += [unit_task.submit(Shipped(p), u, str(work / name)) for name, p, u in jobs]
            results: dict[str, list[UnitResult]] = {}
            for i, ((name, _, _), fut) in enumerate(zip(jobs, futures, strict=True)):
                results.setdefault(name, []).append(fut.result())
                _tick("units", i + 1, len(futures))
        except BaseException:
            wait(futures)  # let running units finish before their folder is removed
            raise
        merges = {"": merge_task.submit(Shipped(plan), str(work), str(staging))}
        merges |= {name: companion_task.submit(name, Shipped(sub), str(staging), str(work), workers)
                   for name, sub in subs.items()}
        files = [f for m in merges.values() for f in m.result()]
        _tick("merge", 1, 1)
        run = {"executor": "prefect+dask", "workers": workers,
               "seconds": round(time.perf_counter() - t0, 2),
               "pairs": sum(r.pairs for r in results[""]),
               "unit_seconds": round(sum(r.seconds for r in results[""]), 2)}
        write_pair_manifest(plan, subs, out_dir=staging, files=files, run=run)
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

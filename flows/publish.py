"""Generate, QC and publish one dataset: the ``generate-and-publish`` flow and its tasks.

The steps, each safe to repeat after a crash:

1. Ask the destination's ``catalog.json`` whether this (id, version) is already published from
   the same spec hash by the same synthlib version; if so, stop (``"skipped"``).
2. Simulate the work units as Dask tasks. Shards go to a persistent work folder and every unit
   task's result is persisted there under a cache key of (spec hash, synthlib version, unit
   index), so a re-run after an interruption reuses finished units instead of recomputing them.
3. Merge the shards into a dataset folder inside the work folder (skipped when a finished merge
   with its manifest is already there).
4. Run QC (:func:`synthlib.qc.run.run_qc`). A failing verdict publishes nothing
   (``"qc_failed"``); the work folder stays for inspection.
5. Publish atomically (:func:`synthlib.publish.publish_dataset`; retried with backoff, as it is
   network I/O), then drop the work folder.

Work folders live under ``$SYNTH_WORK_DIR`` (default ``<synthlib cache>/work``) as
``<id>/<version>/<spec hash[:16]>-<synthlib version>/``, so two specs or two software versions
never share shards or cached results.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait
from prefect.tasks import exponential_backoff

import synthlib
from flows.generate_dataset import merged, plan_task, submit_merges
from flows.runtime import Shipped, ad_hoc_run, dask_task_runner, ensure_api, state_exception
from synthlib.allocator import keep_freed_memory
from synthlib.errors import CatalogError, StorageError
from synthlib.generate import UnitResult, promote, run_unit, stage_dir, write_manifest
from synthlib.io.storage import Storage, open_storage
from synthlib.plan import Plan, WorkUnit
from synthlib.publish import publish_dataset, read_catalog
from synthlib.spec import DatasetSpec, spec_hash

__all__ = [
    "WORK_ENV",
    "DatasetWork",
    "work_root",
    "published_state",
    "task_runner",
    "unit_task",
    "qc_task",
    "publish_task",
    "produce_and_publish",
    "generate_and_publish",
    "run_to_url",
]

#: Environment variable naming the root of persistent work folders.
WORK_ENV = "SYNTH_WORK_DIR"
#: A Dask cluster class (dotted path) and its JSON keyword arguments, e.g.
#: ``dask_kubernetes.operator.KubeCluster`` and ``{"name": "synth", "n_workers": 8}``.
CLUSTER_CLASS_ENV = "SYNTH_DASK_CLUSTER_CLASS"
CLUSTER_KWARGS_ENV = "SYNTH_DASK_CLUSTER_KWARGS"


def work_root(work_dir: str | Path | None = None) -> Path:
    """``work_dir``, else ``$SYNTH_WORK_DIR``, else ``<synthlib cache>/work``."""
    if work_dir:
        return Path(work_dir)
    env = os.environ.get(WORK_ENV)
    if env:
        return Path(env)
    from synthlib.fetch import cache_dir

    return cache_dir() / "work"


@dataclass(frozen=True)
class DatasetWork:
    """The persistent work folder of one (spec, software version).

    Attributes
    ----------
    root
        ``<work root>/<id>/<version>/<spec hash[:16]>-<synthlib version>``.
    units
        Unit shards (``u000000.R1.bgzf``, ...).
    results
        Prefect result storage: one persisted record per finished unit.
    dataset
        The merged dataset folder (``<root>/dataset/<id>/<version>``).
    """

    root: Path

    @classmethod
    def for_spec(cls, spec: DatasetSpec, *, work_dir: str | Path | None = None) -> DatasetWork:
        key = f"{spec_hash(spec)[:16]}-{synthlib.__version__}"
        return cls(work_root(work_dir) / spec.id / spec.version / key)

    @property
    def units(self) -> Path:
        return self.root / "units"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def dataset(self) -> Path:
        return self.root / "dataset" / self.root.parent.parent.name / self.root.parent.name


def _unit_shards(plan: Plan, unit: WorkUnit, units: Path) -> list[Path]:
    """The files :func:`synthlib.generate.run_unit` leaves for ``unit`` (each atomic)."""
    names = [f"{unit.name}.vcf.bgzf"]
    if plan.spec.outputs.fastq:
        names += [f"{unit.name}.R1.bgzf", f"{unit.name}.R2.bgzf"]
    if plan.spec.outputs.bam:
        names += [f"{unit.name}.bam.head.npz", f"{unit.name}.bam.body.bgzf",
                  f"{unit.name}.bam.spill.npz"]
    return [units / n for n in names]


def _unit_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    # The unit's output is a function of the spec and the software only; the index names it.
    plan: Plan = parameters["plan"].value
    unit: WorkUnit = parameters["unit"]
    return f"synth-unit-{spec_hash(plan.spec)}-{synthlib.__version__}-{unit.index}"


@task(cache_key_fn=_unit_cache_key, persist_result=True)
def unit_task(plan: Shipped[Plan], unit: WorkUnit, workdir: str) -> UnitResult:
    """Simulate one unit into ``workdir``; its result is persisted under the unit cache key."""
    keep_freed_memory()
    return run_unit(plan.value, unit, workdir=Path(workdir))


def _is_io_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only storage failures; a QC refusal or a catalog conflict will not heal."""
    exc = state_exception(state)
    return isinstance(exc, StorageError | OSError | ConnectionError | TimeoutError)


def _open_dest(dest: str) -> Storage:
    """The destination storage (a seam for fault-injection tests)."""
    return open_storage(dest)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=2),
      retry_jitter_factor=0.5, retry_condition_fn=_is_io_error)
def publish_task(dataset_dir: str, dest: str, require_qc_pass: bool = True) -> dict:
    """Publish a finished dataset folder to ``dest`` (idempotent; retried on I/O errors)."""
    res = publish_dataset(dataset_dir=dataset_dir, dest=_open_dest(dest),
                          require_qc_pass=require_qc_pass)
    return {"status": res.status, "uploaded": list(res.uploaded),
            "already_present": list(res.already_present), "manifest_url": res.manifest_url,
            "catalog_url": res.catalog_url, "catalog_attempts": res.catalog_attempts}


@task(cache_policy=NO_CACHE)
def qc_task(dataset_dir: str, spec: DatasetSpec, base_dir: str) -> dict:
    """Run QC on a merged dataset folder; returns ``{"verdict": ..., "metrics": ...}``."""
    # Imported here: QC lives in its own module and may be absent from older installs.
    from synthlib.qc.run import run_qc

    result = run_qc(dataset_dir=Path(dataset_dir), spec=spec, base_dir=Path(base_dir))
    manifest = json.loads((Path(dataset_dir) / "manifest.json").read_text())
    qc = manifest.get("qc") or {}
    return {"verdict": str(result.verdict), "metrics": qc.get("metrics", {})}


def task_runner(*, workers: int = 2, address: str | None = None):
    """The Dask task runner, chosen by configuration alone.

    Order: ``address`` or ``$SYNTH_DASK_ADDRESS`` (an existing scheduler); else
    ``$SYNTH_DASK_CLUSTER_CLASS`` with JSON ``$SYNTH_DASK_CLUSTER_KWARGS`` (a cluster the flow
    creates and tears down, e.g. ``dask_kubernetes.operator.KubeCluster``); else a LocalCluster
    of ``workers`` processes on 127.0.0.1.
    """
    cluster_class = os.environ.get(CLUSTER_CLASS_ENV)
    if not (address or os.environ.get("SYNTH_DASK_ADDRESS")) and cluster_class:
        from prefect_dask import DaskTaskRunner

        try:
            kwargs = json.loads(os.environ.get(CLUSTER_KWARGS_ENV) or "{}")
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{CLUSTER_KWARGS_ENV} is not JSON: {exc}") from None
        return DaskTaskRunner(cluster_class=cluster_class, cluster_kwargs=kwargs)
    return dask_task_runner(workers=workers, address=address)


# --------------------------------------------------------------------------------------------
# the steps, run inside a flow (they submit tasks to the flow's task runner)


def published_state(dest: str, spec: DatasetSpec) -> str:
    """``"absent"``, ``"current"`` (same spec hash and synthlib version) or ``"stale"`` (same
    spec hash, other synthlib version).

    Raises
    ------
    CatalogError
        The destination lists this (id, version) from a different spec: published versions
        never change, so the spec's version must be bumped.
    """
    catalog = read_catalog(_open_dest(dest))
    for entry in catalog["datasets"]:
        if entry.get("id") == spec.id and entry.get("version") == spec.version:
            if entry.get("spec_hash") != spec_hash(spec):
                raise CatalogError(
                    f"{spec.id} {spec.version} is already published at {dest} from a different "
                    "spec; published versions never change: bump the spec's version")
            built_by = (entry.get("software") or {}).get("synthlib")
            return "current" if built_by == synthlib.__version__ else "stale"
    return "absent"


def _generate(plan: Plan, work: DatasetWork, *, workers: int) -> dict:
    """Units as Dask tasks (cached), then merge and manifest into ``work.dataset``."""
    final = work.dataset
    if (final / "manifest.json").is_file():
        return {"units_run": 0, "units_cached": len(plan.units), "merged": False}
    work.units.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    storage = work.results  # a Path: Prefect stores results there without a saved block
    futures = []
    shipped = Shipped(plan)
    for u in plan.units:
        # A cached result whose shards were deleted would be a lie: recompute that unit.
        missing = not all(p.is_file() for p in _unit_shards(plan, u, work.units))
        runner = unit_task.with_options(result_storage=storage, refresh_cache=missing or None)
        futures.append(runner.submit(shipped, u, str(work.units)))
    results: list[UnitResult] = [f.result() for f in futures]
    cached = sum(1 for f in futures if f.state.name == "Cached")
    staging = stage_dir(final)
    merges: list = []
    try:
        merges += submit_merges(shipped, str(work.units), str(staging), workers=workers)
        digests = merged(merges)
        run = {"executor": "prefect+dask", "workers": workers,
               "seconds": round(time.perf_counter() - t0, 2),
               "pairs": sum(r.pairs for r in results),
               "unit_seconds": round(sum(r.seconds for r in results), 2),
               "units_cached": cached}
        write_manifest(plan, out_dir=staging, files=list(digests), run=run, digests=digests)
    except BaseException:
        wait(merges)  # a failed part must not leave the others writing into a removed folder
        shutil.rmtree(staging, ignore_errors=True)
        raise
    promote(staging, final, overwrite=True)
    return {"units_run": len(futures) - cached, "units_cached": cached, "merged": True}


def produce_and_publish(plan: Plan, *, dest: str, workers: int,
                        work_dir: str | Path | None = None) -> dict:
    """Skip, or generate + QC + publish one planned dataset; returns its status row.

    Must run inside a flow: unit tasks go to that flow's task runner.
    """
    spec = plan.spec
    row: dict[str, Any] = {"id": spec.id, "version": spec.version,
                           "spec_hash": spec_hash(spec), "dest": dest,
                           "units_run": 0, "units_cached": 0, "uploaded": 0}
    state = published_state(dest, spec)
    if state != "absent":
        row["status"] = "skipped" if state == "current" else "stale"
        if state == "stale":
            row["message"] = ("published by another synthlib version; published versions never "
                              "change: bump the spec's version to publish this build")
        return row
    work = DatasetWork.for_spec(spec, work_dir=work_dir)
    row.update(_generate(plan, work, workers=workers))
    manifest = json.loads((work.dataset / "manifest.json").read_text())
    verdict = (manifest.get("qc") or {}).get("verdict", "not_run")
    if verdict != "pass":
        qc = qc_task(str(work.dataset), spec, str(plan.base_dir))
        verdict = qc["verdict"]
    row["qc"] = verdict
    if verdict != "pass":
        row["status"] = "qc_failed"
        row["work_dir"] = str(work.root)  # kept: the QC report explains the failure
        get_run_logger().warning("%s %s: QC verdict %r, not published (see %s)",
                                 spec.id, spec.version, verdict, work.dataset)
        return row
    pub = publish_task(str(work.dataset), dest)
    row["status"] = pub["status"]
    row["uploaded"] = len(pub["uploaded"])
    row["manifest_url"] = pub["manifest_url"]
    if not os.environ.get("SYNTH_KEEP_WORK"):
        shutil.rmtree(work.root, ignore_errors=True)
    return row


@flow(name="generate-and-publish", task_runner=task_runner())
def generate_and_publish(spec: str, dest: str, workers: int = 2,
                         work_dir: str | None = None) -> dict:
    """Generate one dataset, QC it and publish it to ``dest`` unless already published.

    Parameters
    ----------
    spec
        Catalog id or path to a spec YAML.
    dest
        ``gs://bucket/prefix`` or a local folder standing in for the bucket.
    workers
        Local Dask worker processes (ignored when a scheduler address is configured).
    work_dir
        Root of persistent work folders (default ``$SYNTH_WORK_DIR`` or the synthlib cache).

    Returns
    -------
    dict
        ``status`` (``published``, ``skipped``, ``stale`` or ``qc_failed``), ``id``,
        ``version``, ``spec_hash``, ``units_run``, ``units_cached``, ``uploaded``, ...
    """
    plan = plan_task(spec)
    return produce_and_publish(plan, dest=dest, workers=workers, work_dir=work_dir)


def run_to_url(spec: str, dest: str, workers: int = 2, address: str | None = None,
               *, work_dir: str | None = None) -> str:
    """``synth run SPEC --dest URL``: generate, QC and publish; return the manifest URL.

    Raises
    ------
    QCError
        QC failed (nothing was published).
    CatalogError
        The destination holds this (id, version) from another spec or software version.
    """
    from synthlib.errors import QCError

    ensure_api()
    runner = task_runner(workers=workers, address=address)
    with ad_hoc_run():
        row = generate_and_publish.with_options(task_runner=runner)(
            spec=spec, dest=dest, workers=workers, work_dir=work_dir)
    if row["status"] == "qc_failed":
        raise QCError(f"{row['id']} {row['version']}: QC failed, nothing published "
                      f"(report in {row.get('work_dir')})")
    if row["status"] == "stale":
        raise CatalogError(f"{row['id']} {row['version']}: {row['message']}", where=dest)
    return row.get("manifest_url") or _manifest_url(dest, row)


def _manifest_url(dest: str, row: dict) -> str:
    return _open_dest(dest).url_for(f"{row['id']}/{row['version']}/manifest.json")


if __name__ != "flows.publish":
    # Loaded as a script (a Prefect worker runs ``flows/publish.py:generate_and_publish``):
    # use the package's objects, so Dask workers can unpickle the tasks by module name.
    from flows.publish import generate_and_publish  # noqa: F811

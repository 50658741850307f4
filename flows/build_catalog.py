"""The ``build-catalog`` flow: generate, QC and publish catalog entries in priority order.

Each selected entry goes through :func:`flows.publish.produce_and_publish`: skipped when the
destination already lists it from the same spec hash and synthlib version, otherwise its work
units run as Dask tasks whose results are persisted under the work folder, so an interrupted
build resumes where it stopped (finished units and merged datasets are reused, published
datasets are skipped). One entry failing (a spec whose data is missing, a QC failure) does not
stop the others; it is reported in its row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from flows.generate_dataset import plan_task
from flows.publish import produce_and_publish, task_runner
from flows.runtime import ad_hoc_run, ensure_api
from synthlib.catalog import CatalogEntry, entries, get_entry
from synthlib.errors import CatalogError, SynthError

__all__ = ["select_entries", "build_catalog", "run_build_catalog", "is_demo_scale"]


def is_demo_scale(entry_id: str) -> bool:
    """Demo-scale entries run offline on bundled data: ``demo`` and every ``*-demo``."""
    return entry_id == "demo" or entry_id.endswith("-demo")


def select_entries(*, max_priority: int = 2, only: list[str] | None = None,
                   demo_only: bool = True, catalog: str | Path | None = None
                   ) -> list[CatalogEntry]:
    """The entries a build covers, in build order (priority, then id).

    ``only`` names entries explicitly (then priority and scale are not filtered); otherwise
    entries with ``priority <= max_priority`` at demo scale (``demo_only``) or full scale.
    """
    if not 1 <= max_priority <= 5:
        raise CatalogError(f"max_priority must be 1..5, got {max_priority}")
    folder = Path(catalog) if catalog else None
    if only:
        picked = [get_entry(i, folder=folder) for i in dict.fromkeys(only)]
        return sorted(picked, key=lambda e: (e.spec.priority, e.id))
    return [e for e in entries(folder=folder)
            if e.spec.priority <= max_priority and is_demo_scale(e.id) == demo_only]


@flow(name="build-catalog", task_runner=task_runner())
def build_catalog(max_priority: int = 2, dest: str = "out/bucket", workers: int = 2,
                  only: list[str] | None = None, demo_only: bool = True,
                  catalog: str | None = None, work_dir: str | None = None) -> list[dict]:
    """Generate, QC and publish every selected catalog entry not yet published at ``dest``.

    Parameters
    ----------
    max_priority
        Build entries with priority <= this (1 = most wanted).
    dest
        ``gs://bucket/prefix`` or a local folder standing in for the bucket.
    workers
        Local Dask worker processes (ignored when a scheduler address is configured).
    only
        Build exactly these entry ids (no priority or scale filter).
    demo_only
        Demo-scale entries (offline, bundled data); False selects the full-scale ones.
    catalog
        Folder of catalog YAMLs (default ``$SYNTH_CATALOG_DIR`` or the project's ``catalog/``).
    work_dir
        Root of persistent work folders (default ``$SYNTH_WORK_DIR`` or the synthlib cache).

    Returns
    -------
    list of dict
        One row per entry, in build order: ``id``, ``version``, ``status`` (``published``,
        ``skipped``, ``stale``, ``qc_failed`` or ``failed`` with ``error``), ``units_run``,
        ``units_cached``, ``uploaded``.
    """
    log = get_run_logger()
    rows: list[dict[str, Any]] = []
    for entry in select_entries(max_priority=max_priority, only=only, demo_only=demo_only,
                                catalog=catalog):
        try:
            plan = plan_task(str(entry.path))
            row = produce_and_publish(plan, dest=dest, workers=workers, work_dir=work_dir)
        except SynthError as exc:
            # Data errors are the entry's, not the build's: record and go on with the rest.
            log.error("%s: %s", entry.id, exc)
            row = {"id": entry.id, "version": entry.spec.version, "status": "failed",
                   "error": str(exc), "units_run": 0, "units_cached": 0, "uploaded": 0}
        log.info("%s %s: %s", row["id"], row["version"], row["status"])
        rows.append(row)
    return rows


def run_build_catalog(*, max_priority: int = 2, dest: str = "out/bucket", workers: int = 2,
                      only: list[str] | None = None, demo_only: bool = True,
                      catalog: str | None = None, work_dir: str | None = None,
                      address: str | None = None) -> list[dict]:
    """Run :func:`build_catalog` with one Prefect API for the process and its Dask workers, on a
    LocalCluster of ``workers`` processes or on the scheduler at ``address``."""
    ensure_api()
    runner = task_runner(workers=workers, address=address)
    with ad_hoc_run():
        return build_catalog.with_options(task_runner=runner)(
            max_priority=max_priority, dest=dest, workers=workers, only=only,
            demo_only=demo_only, catalog=catalog, work_dir=work_dir)

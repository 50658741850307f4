"""The ``qc_dataset`` flow: QC one generated dataset folder as a single Prefect task.

QC is compute on local files (alignment, calling, counting): the task neither caches (its
inputs are files that may be regenerated in place) nor retries (a failure is a bug or a bad
input, and a failed verdict is a result, not an error).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from synthlib.qc.run import run_qc

from .runtime import ad_hoc_run, ensure_api

__all__ = ["qc_task", "qc_dataset", "run_qc_flow"]


@task(cache_policy=NO_CACHE, retries=0)
def qc_task(dataset_dir: str, thresholds: dict | None = None, max_pairs: int | None = None,
            base_dir: str | None = None) -> dict:
    """Run QC on a dataset folder; returns ``{"verdict", "qc_json", "headline"}``."""
    result = run_qc(dataset_dir=Path(dataset_dir), thresholds=thresholds, max_pairs=max_pairs,
                    base_dir=Path(base_dir) if base_dir else None)
    return {"verdict": result.verdict, "qc_json": str(result.out_dir / "qc.json"),
            "headline": result.headline()}


@flow(name="qc-dataset")
def qc_dataset(dataset_dir: str, thresholds: dict | None = None,
               max_pairs: int | None = None) -> dict:
    """QC ``<dest>/<id>/<version>``: writes ``qc/`` and updates ``manifest.json``.

    Returns
    -------
    dict
        ``verdict`` (``pass``/``fail``), path of ``qc.json`` and headline metrics.
    """
    return qc_task(dataset_dir, thresholds, max_pairs)


def run_qc_flow(dataset_dir: str, **kwargs) -> dict:
    """Start the flow against this process's Prefect API (``ensure_api``)."""
    ensure_api()
    with ad_hoc_run():
        return qc_dataset(dataset_dir, **kwargs)

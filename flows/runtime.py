"""Process setup shared by flows: one Prefect API for this process and its Dask workers.

Dask worker processes inherit the environment; without ``PREFECT_API_URL`` each would start
its own temporary Prefect server. So before a cluster starts we make sure the variable names
one API: the configured one, or a single temporary server started here.
"""

from __future__ import annotations

import os
from typing import Any, Generic, TypeVar

__all__ = ["prepare_environment", "ensure_api", "dask_task_runner", "run_on_dask", "Shipped",
           "state_exception"]

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
    "DASK_LOGGING__DISTRIBUTED": "error",
    "DASK_DISTRIBUTED__WORKER__DAEMON": "false",
}


def state_exception(state: Any) -> BaseException | None:
    """The exception a failed task state holds (for retry conditions), or None."""
    if isinstance(state.data, BaseException):
        return state.data
    try:
        exc = state.result(raise_on_failure=False)
    except Exception:  # noqa: BLE001 - an unreadable state is not worth retrying
        return None
    return exc if isinstance(exc, BaseException) else None


def prepare_environment() -> None:
    """Quiet, offline-friendly Prefect defaults (explicit settings win)."""
    for key, value in _DEFAULTS.items():
        os.environ.setdefault(key, value)


def ensure_api() -> str:
    """Return the Prefect API URL in force, starting one temporary server if there is none."""
    prepare_environment()
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer

        server = SubprocessASGIServer()
        server.start(timeout=int(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
        url = server.api_url
    os.environ["PREFECT_API_URL"] = url
    return url


def dask_task_runner(*, workers: int = 2, address: str | None = None):
    """A DaskTaskRunner on an existing scheduler (``address`` or ``SYNTH_DASK_ADDRESS``), or on
    a fresh LocalCluster of ``workers`` single-threaded processes bound to 127.0.0.1."""
    from prefect_dask import DaskTaskRunner

    address = address or os.environ.get("SYNTH_DASK_ADDRESS") or None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
            "silence_logs": 40,
        },
    )


def run_on_dask(flow, *, workers: int = 2, address: str | None = None, **params):
    """Run ``flow(workers=workers, **params)`` on a LocalCluster of ``workers`` processes, or on
    the scheduler at ``address``, with one Prefect API serving the flow and its workers."""
    ensure_api()
    runner = dask_task_runner(workers=workers, address=address)
    return flow.with_options(task_runner=runner)(workers=workers, **params)


T = TypeVar("T")


class Shipped(Generic[T]):
    """A task argument Prefect hands over without walking into it.

    Prefect visits every element of a task's parameters at each submission (to find
    futures), and Dask tokenizes them: for a plan with tens of thousands of spikes that cost
    more CPU than the tasks themselves. A plain object with slots is neither visited nor
    walked; the task reads ``.value``.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __dask_tokenize__(self) -> object:
        inner = getattr(self.value, "__dask_tokenize__", None)
        return ("Shipped", inner() if inner else id(self.value))

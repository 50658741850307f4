"""Process setup shared by flows: one Prefect API for this process and its Dask workers.

Dask worker processes inherit the environment; without ``PREFECT_API_URL`` each would start
its own temporary Prefect server. So before a cluster starts we make sure the variable names
one API: the configured one, or a single temporary server started here.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

__all__ = ["prepare_environment", "ensure_api", "ad_hoc_run", "dask_task_runner", "run_on_dask",
           "Shipped", "state_exception"]

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


_HEARTBEAT_VARS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


@contextmanager
def ad_hoc_run() -> Iterator[None]:
    """Settings for flow runs started by this process (the CLI, tests, the benchmark) rather
    than by a deployment's worker: no flow-run heartbeats, unless the environment asks.

    Prefect's heartbeat thread sleeps in 1 s steps, and the engine joins it as the run ends:
    every run ended up to 1 s late (an empty flow took 1.0 s to return, 0.04 s without).
    Heartbeats let an automation mark a deployment's crashed run; an ad hoc run has its
    caller waiting on it. Deployment runs keep Prefect's default.
    """
    if any(os.environ.get(name) for name in _HEARTBEAT_VARS):
        yield
        return
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        yield


def dask_task_runner(*, workers: int = 2, address: str | None = None):
    """A DaskTaskRunner on an existing scheduler (``address`` or ``SYNTH_DASK_ADDRESS``), or on
    a fresh LocalCluster of ``workers`` single-threaded processes bound to 127.0.0.1."""
    import dask.config
    from prefect_dask import DaskTaskRunner

    address = address or os.environ.get("SYNTH_DASK_ADDRESS") or None
    if address:
        return DaskTaskRunner(address=address)
    # A task goes to a worker only when the worker is free (Dask's default, 1.1, queues a
    # second one on it): our tasks are few and long, and a task queued behind a long one
    # waited there for work stealing while the other worker sat idle.
    # Each worker's statistical profiler samples every thread's stack 100 times a second (for
    # the dashboard, unused here): about 3 % of a worker's CPU, and GIL waits for the task.
    # Housekeeping timers (event-loop tick every 20 ms, system monitor every 0.5 s, memory
    # monitor every 0.1 s, work stealing every 0.1 s) cost an idle 2-worker cluster about
    # 0.06 CPU-s per second, on the cores the units need; at these intervals, a quarter of
    # that. Stealing has nothing to do: tasks wait at the scheduler until a worker is free.
    dask.config.set({"distributed.scheduler.worker-saturation": 1.0,
                     "distributed.worker.profile.enabled": False,
                     "distributed.admin.tick.interval": "1s",
                     "distributed.admin.system-monitor.interval": "2s",
                     "distributed.worker.memory.monitor-interval": "1s",
                     "distributed.scheduler.work-stealing": False})
    return DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "host": "127.0.0.1",
            "dashboard_address": "127.0.0.1:0",
            "silence_logs": 40,
            # Each worker imports the generator as it starts (flows/worker_setup.py).
            "preload": ["flows.worker_setup"],
        },
    )


def run_on_dask(flow, *, workers: int = 2, address: str | None = None, **params):
    """Run ``flow(workers=workers, **params)`` on a LocalCluster of ``workers`` processes, or on
    the scheduler at ``address``, with one Prefect API serving the flow and its workers."""
    ensure_api()
    runner = dask_task_runner(workers=workers, address=address)
    with ad_hoc_run():
        return flow.with_options(task_runner=runner)(workers=workers, **params)


T = TypeVar("T")

_UNSET = object()
_RECEIVED: OrderedDict[bytes, Any] = OrderedDict()  # digest -> value, newest last
_RECEIVED_MAX = 4
_RECEIVED_LOCK = threading.Lock()


class Shipped(Generic[T]):
    """A task argument serialized once, however many tasks it goes to.

    Prefect visits every element of a task's parameters at each submission (to find
    futures), and Dask tokenizes and pickles each task on the client, unpickles it on the
    scheduler and again on the worker: for a plan with tens of thousands of spikes that was
    about 0.5 CPU-s per task in the flow process, more than a work unit's own time on a
    small unit. Here the value is pickled once into bytes (copied, never walked, on the way);
    the scheduler only holds the bytes, and each worker process decodes a given payload
    once (the task reads ``.value``).
    """

    __slots__ = ("_value", "_blob", "_digest")

    def __init__(self, value: T) -> None:
        self._value: Any = value
        self._blob: bytes | None = None
        self._digest = b""

    @property
    def value(self) -> T:
        if self._value is _UNSET:
            self._value = _decode(self._digest, self._blob)
        return self._value

    def _payload(self) -> tuple[bytes, bytes]:
        if self._blob is None:
            self._blob = pickle.dumps(self._value, protocol=pickle.HIGHEST_PROTOCOL)
            self._digest = hashlib.blake2b(self._blob, digest_size=16).digest()
        return self._digest, self._blob

    def __reduce__(self):
        return (_received, self._payload())

    def __dask_tokenize__(self) -> object:
        inner = getattr(self._value, "__dask_tokenize__", None)
        if inner is not None:
            return ("Shipped", inner())
        return ("Shipped", self._payload()[0])


def _received(digest: bytes, blob: bytes) -> Shipped:
    shipped: Shipped = Shipped.__new__(Shipped)
    shipped._value, shipped._blob, shipped._digest = _UNSET, blob, digest
    return shipped


def _decode(digest: bytes, blob: bytes | None) -> Any:
    with _RECEIVED_LOCK:
        if digest in _RECEIVED:
            _RECEIVED.move_to_end(digest)
            return _RECEIVED[digest]
    assert blob is not None
    value = pickle.loads(blob)
    with _RECEIVED_LOCK:
        _RECEIVED[digest] = value
        while len(_RECEIVED) > _RECEIVED_MAX:
            _RECEIVED.popitem(last=False)
    return value

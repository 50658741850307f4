"""Scale-out by address alone: a real ``dask scheduler`` and two ``dask worker`` processes.

The flow is pointed at the scheduler only by its address (what ``SYNTH_DASK_ADDRESS`` does on a
cloud cluster) and must produce byte-identical files to the serial run (a 4-unit spec: the demo
itself goes through the same code in tests/test_flow.py).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from _servers import free_port

from synthlib.generate import FILES
from synthlib.io.checksums import digest_file

REPO = Path(__file__).resolve().parent.parent
DASK = str(Path(sys.executable).with_name("dask"))
DATA_FILES = [FILES[k] for k in ("r1", "r2", "bam", "vcf")]


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in reversed(procs):  # workers first, then the scheduler
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


@contextlib.contextmanager
def _cluster(prefect_api: str, cwd: Path) -> Iterator[tuple[str, list[subprocess.Popen]]]:
    """A ``dask scheduler`` and two ``dask worker`` processes (each under its nanny) on
    127.0.0.1, both connected: ``(address, processes)``, stopped on exit."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = dict(os.environ, PREFECT_API_URL=prefect_api, PYTHONPATH=str(REPO),
               DASK_DISTRIBUTED__WORKER__DAEMON="false")
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env,
             "cwd": cwd}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                               "--no-dashboard"], **quiet)]
    try:
        for _ in range(2):
            procs.append(subprocess.Popen(
                [DASK, "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                 "--nworkers", "1", "--no-dashboard"], **quiet))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address, procs
    finally:
        _stop(procs)


def _spec_and_serial(tmp_path: Path, name: str, text: str):
    """The spec ``text`` written as ``<name>.yaml``, its plan, and its serial run's folder
    (the bytes a cluster run must give)."""
    from synthlib.generate import generate_local
    from synthlib.plan import plan_dataset
    from synthlib.spec import load_spec

    spec = tmp_path / f"{name}.yaml"
    spec.write_text(text)
    plan = plan_dataset(load_spec(spec), base_dir=tmp_path)
    return spec, plan, generate_local(plan, dest=tmp_path / "serial")


SPEC = """\
id: cluster-tiny
seed: 7
reason: scale-out test
coverage: 10
chunk_size: 20000
fragment: {mean: 300, sd: 30, max: 600}
reference: {name: grch37-chr20-demo, regions: ['chr20:1,000,001-1,080,000']}
variants:
  random:
    - {type: snv, count: 6}
    - {type: deletion, count: 2}
"""


def test_generate_on_an_existing_cluster_by_address(prefect_api, tmp_path):
    from distributed import Client

    from flows.generate_dataset import run_generate

    spec, plan, serial = _spec_and_serial(tmp_path, "cluster-tiny", SPEC)
    assert len(plan.units) == 4  # more units than workers: both workers get some

    with _cluster(prefect_api, tmp_path) as (address, procs):
        with Client(address, timeout=30) as client:
            n_workers = len(client.scheduler_info()["workers"])
        folder = run_generate(str(spec), dest=str(tmp_path / "out"), workers=2, address=address)
        # Both workers ran units (the scheduler remembers which worker held which task).
        with Client(address, timeout=30) as client:
            per_worker = client.run(lambda dask_worker: len(dask_worker.data) +
                                    dask_worker.state.executed_count)
        assert n_workers == 2
        for name in DATA_FILES:
            assert digest_file(folder / name)["md5"] == digest_file(serial / name)["md5"]
        assert len(per_worker) == 2 and all(n > 0 for n in per_worker.values()), per_worker
        assert all(p.poll() is None for p in procs)  # the flow used the cluster, did not own it


KILL_SPEC = """\
id: cluster-kill
seed: 11
reason: a worker dies mid-run
coverage: 40
chunk_size: 20000
fragment: {mean: 300, sd: 30, max: 600}
reference: {name: grch37-chr20-demo, regions: ['chr20:1,000,001-1,300,000']}
variants:
  random:
    - {type: snv, count: 20}
    - {type: deletion, count: 4}
"""


def test_a_worker_killed_mid_run_changes_no_byte(prefect_api, tmp_path):
    """One worker process is killed (SIGKILL) once the first unit is done: its nanny starts
    a new one, Dask runs the lost claiming task again, the unit it held is run by whoever
    needs it, and the files are those of the serial run."""
    import signal
    import threading
    import time

    from distributed import Client

    from flows.generate_dataset import run_generate

    spec, plan, serial = _spec_and_serial(tmp_path, "cluster-kill", KILL_SPEC)
    assert len(plan.units) == 15

    killed: list[int] = []
    with _cluster(prefect_api, tmp_path) as (address, _procs):
        with Client(address, timeout=30) as client:
            victim = sorted(client.run(os.getpid).values())[0]
        out = tmp_path / "out"

        def kill_after_first_unit() -> None:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                done = list(out.glob("*/*/.work/u*.done")) if out.exists() else []
                if done:
                    os.kill(victim, signal.SIGKILL)
                    killed.append(len(done))
                    return
                time.sleep(0.01)

        killer = threading.Thread(target=kill_after_first_unit, daemon=True)
        killer.start()
        folder = run_generate(str(spec), dest=str(out), workers=2, address=address)
        killer.join(5)
        assert killed and killed[0] < len(plan.units), killed  # it died with units to go
        for name in DATA_FILES:
            assert digest_file(folder / name)["md5"] == digest_file(serial / name)["md5"]

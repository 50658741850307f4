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

"""The generate_dataset flow, really run: Prefect API, Dask LocalCluster, real files.

Same spec, same bytes: 1 worker, 2 workers and the serial path give identical data files.
"""

from __future__ import annotations

import json

from synthlib.generate import FILES
from synthlib.io.checksums import digest_file

DATA_FILES = [FILES[k] for k in ("r1", "r2", "bam", "vcf")]


def _md5s(folder):
    return {name: digest_file(folder / name)["md5"] for name in DATA_FILES}


def test_flow_is_deterministic_across_worker_counts(prefect_api, demo_dataset, tmp_path):
    from flows.generate_dataset import run_generate

    one = run_generate("demo", dest=str(tmp_path / "w1"), workers=1, qc=False)
    two = run_generate("demo", dest=str(tmp_path / "w2"), workers=2)  # with QC, as by default
    assert one == tmp_path / "w1" / "demo" / "1.0.0"
    assert _md5s(one) == _md5s(two) == _md5s(demo_dataset)
    manifest = json.loads((two / "manifest.json").read_text())
    assert manifest["run"]["executor"] == "prefect+dask" and manifest["run"]["workers"] == 2
    # Checksums taken by the merge tasks are those of the files as they stand.
    for entry in manifest["files"]:
        assert {k: entry[k] for k in ("size", "md5", "crc32c_b64")} == {
            k: digest_file(two / entry["path"])[k] for k in ("size", "md5", "crc32c_b64")}
    # QC ran inside the flow before the folder appeared, and passed.
    assert manifest["qc"]["verdict"] == "pass"
    assert (two / "qc" / "qc.json").exists() and (two / "qc" / "report.html").exists()
    assert json.loads((one / "manifest.json").read_text())["qc"]["verdict"] == "not_run"
    # No staging folders or shards left behind.
    assert sorted(p.name for p in (tmp_path / "w2" / "demo").iterdir()) == ["1.0.0"]


def test_existing_dataset_is_not_overwritten_by_accident(prefect_api, tmp_path):
    import pytest

    from flows.generate_dataset import run_generate
    from synthlib.errors import SynthError

    spec = tmp_path / "mini.yaml"
    spec.write_text(
        "id: mini\nseed: 3\nreason: t\ncoverage: 2\nchunk_size: 50000\n"
        "reference: {name: grch37-chr20-demo, regions: ['chr20:1,000,001-1,100,000']}\n")
    first = run_generate(str(spec), dest=str(tmp_path / "out"), workers=1, qc=False)
    before = _md5s(first)
    with pytest.raises(SynthError, match="already exists"):
        run_generate(str(spec), dest=str(tmp_path / "out"), workers=1, qc=False)
    assert _md5s(first) == before
    assert sorted(p.name for p in (tmp_path / "out" / "mini").iterdir()) == ["1.0.0"]


def _heartbeat_seen_by_a_flow_run() -> object:
    from prefect import flow
    from prefect.settings import get_current_settings

    @flow(name="heartbeat-probe")
    def probe() -> object:
        return get_current_settings().flows.heartbeat_frequency

    return probe()


def test_ad_hoc_runs_skip_heartbeats_unless_the_environment_asks(prefect_api, monkeypatch):
    from prefect.settings import get_current_settings

    from flows.runtime import ad_hoc_run

    for name in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"):
        monkeypatch.delenv(name, raising=False)
    default = get_current_settings().flows.heartbeat_frequency
    assert default is not None  # Prefect's default: the thread whose join held every run
    with ad_hoc_run():
        assert _heartbeat_seen_by_a_flow_run() is None
    assert get_current_settings().flows.heartbeat_frequency == default
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(default))
    with ad_hoc_run():  # set explicitly: Prefect's settings stand
        assert _heartbeat_seen_by_a_flow_run() == default

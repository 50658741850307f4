"""deployments/prefect.yaml, really deployed: a Prefect server, a process work pool, a worker.

``prefect server start`` on 127.0.0.1 (temp PREFECT_HOME), ``prefect work-pool create``,
``prefect --no-prompt deploy --all`` from the shipped prefect.yaml, then the ad hoc
``generate-dataset`` deployment run for a tiny spec by ``prefect worker start --run-once``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import yaml
from _servers import free_port, wait_http_ok

REPO = Path(__file__).resolve().parent.parent
PREFECT = str(Path(sys.executable).with_name("prefect"))

TINY = """\
id: deploy-tiny
seed: 11
reason: deployment test
coverage: 10
chunk_size: 20000
fragment: {mean: 300, sd: 30, max: 600}
reference: {name: grch37-chr20-demo, regions: ['chr20:1,000,001-1,030,000']}
variants:
  random:
    - {type: snv, count: 4}
"""


def _env(home: Path, api: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_API_URL": api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "SYNTH_PROJECT_DIR": str(REPO),
        "PYTHONPATH": str(REPO),
    })
    return env


def _cli(env: dict, *args: str, timeout: float = 60) -> str:
    res = subprocess.run([PREFECT, *args], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=timeout)
    assert res.returncode == 0, f"prefect {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}"
    return res.stdout


def _post(api: str, path: str, body: dict) -> list[dict]:
    req = urllib.request.Request(f"{api}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_prefect_yaml_has_the_three_deployments():
    doc = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in doc["deployments"]}
    assert set(by_name) == {"build-catalog", "generate-dataset", "spike-bam"}
    assert by_name["build-catalog"]["schedules"][0]["cron"] == "0 3 * * 1"
    assert by_name["generate-dataset"]["schedules"] == []
    for d in by_name.values():
        assert d["work_pool"]["name"] == "synth"
        path, func = d["entrypoint"].split(":")
        assert f"def {func}(" in (REPO / path).read_text()
    step = doc["pull"][0]["prefect.deployments.steps.set_working_directory"]
    assert step["directory"] == "{{ $SYNTH_PROJECT_DIR }}"


def test_deploy_and_run_generate_dataset_through_a_worker(tmp_path):
    home = tmp_path / "prefect-home"
    home.mkdir()
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _env(home, api)
    spec = tmp_path / "deploy-tiny.yaml"
    spec.write_text(TINY)
    bucket = tmp_path / "bucket"
    env["SYNTH_WORK_DIR"] = str(tmp_path / "work")
    server = subprocess.Popen(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http_ok(server, f"{api}/health", name="prefect server", timeout=45.0)
        _cli(env, "work-pool", "create", "synth", "--type", "process")
        _cli(env, "--no-prompt", "deploy", "--all", "--prefect-file",
             str(REPO / "deployments" / "prefect.yaml"), timeout=90)
        deployments = {d["name"]: d for d in _post(api, "/deployments/filter", {})}
        assert set(deployments) == {"build-catalog", "generate-dataset", "spike-bam"}
        crons = [s["schedule"].get("cron") for s in deployments["build-catalog"]["schedules"]]
        assert crons == ["0 3 * * 1"]
        assert deployments["generate-dataset"]["schedules"] == []
        assert deployments["build-catalog"]["work_pool_name"] == "synth"
        params = json.dumps({"spec": str(spec), "dest": str(bucket), "workers": 1})
        _cli(env, "deployment", "run", "generate-and-publish/generate-dataset",
             "--params", params)
        worker = subprocess.run(
            [PREFECT, "worker", "start", "--pool", "synth", "--run-once"], cwd=tmp_path,
            env=env, capture_output=True, text=True, timeout=120)
        adhoc = deployments["generate-dataset"]["id"]
        runs = _post(api, "/flow_runs/filter",
                     {"flow_runs": {"deployment_id": {"any_": [adhoc]}}})
        assert [r["state"]["type"] for r in runs] == ["COMPLETED"], (
            worker.stdout[-3000:] + worker.stderr[-3000:])
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    from synthlib.publish import open_published

    pub = open_published(str(bucket))
    assert [(d["id"], d["version"]) for d in pub.datasets] == [("deploy-tiny", "1.0.0")]
    assert pub.datasets[0]["qc"]["verdict"] == "pass"
    got = pub.get("deploy-tiny", to=tmp_path / "got")  # every file's size, md5, crc32c checked
    assert (got / "golden.bam").stat().st_size > 0

"""The build-catalog flow against a GCS emulator: build, skip, crash, resume.

Two tiny catalog entries (written in tmp_path) are generated as Dask tasks, QC'd and published
to ``gs://`` on fake-gcs-server (or gcp-storage-emulator), then read back through
``open_published(...).get`` with every checksum verified. A second build publishes nothing and
regenerates nothing. A build that crashes in the middle of uploading leaves ``catalog.json``
naming only complete datasets, and the re-run finishes from persisted unit results.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from pathlib import Path

import pytest
from _gcs import fake_gcs_available, fake_gcs_server, gcs_emulator

SPEC = """\
id: {id}
seed: {seed}
priority: {priority}
reason: build-catalog test
coverage: 10
chunk_size: 20000
fragment: {{mean: 300, sd: 30, max: 600}}
reference: {{name: grch37-chr20-demo, regions: ['chr20:{start},001-{end},000']}}
variants:
  random:
    - {{type: snv, count: 4}}
"""


def _catalog(folder: Path) -> Path:
    folder.mkdir()
    # alpha: 2 units of 20 kb; beta: 1 unit. Regions inside the bundled 1000G sites.
    (folder / "alpha-demo.yaml").write_text(
        SPEC.format(id="alpha-demo", seed=1, priority=1, start="1,100", end="1,140"))
    (folder / "beta-demo.yaml").write_text(
        SPEC.format(id="beta-demo", seed=2, priority=2, start="1,200", end="1,220"))
    (folder / "gamma-demo.yaml").write_text(  # priority 3: never selected below
        SPEC.format(id="gamma-demo", seed=3, priority=3, start="1,300", end="1,320"))
    return folder


@contextlib.contextmanager
def _bucket():
    server = fake_gcs_server if fake_gcs_available() else gcs_emulator
    with server() as (url, client):
        yield url, client


def _generations(client, url: str) -> dict[str, int]:
    bucket = url.removeprefix("gs://")
    return {b.name: b.generation for b in client.list_blobs(bucket)}


def _assert_catalog_consistent(url: str) -> None:
    """Every file the catalog lists exists in the bucket with the listed md5."""
    from synthlib.publish import open_published

    pub = open_published(url)
    for ds in pub.datasets:
        for f in ds["files"]:
            info = pub.storage.stat(f"{ds['id']}/{ds['version']}/{f['path']}")
            assert info is not None, f["path"]
            assert info.size == f["size"]
        assert pub.storage.exists(f"{ds['id']}/{ds['version']}/manifest.json")


def _crashing_opener(state: dict):
    """Open the real destination, but make the ``state["crash_at"]``-th upload under
    ``state["prefix"]`` raise, as if the process had died there (a RuntimeError: not an I/O
    error, so publish_task does not retry it)."""
    from synthlib.io.storage import open_storage

    def opener(dest: str):
        st = open_storage(dest)
        real_put = st.put_file

        def put_file(local_path, key, **kwargs):
            if state.get("crash_at") and key.startswith(state["prefix"]):
                state["seen"] = state.get("seen", 0) + 1
                if state["seen"] >= state["crash_at"]:
                    raise RuntimeError("simulated crash mid-upload")
            return real_put(local_path, key, **kwargs)

        st.put_file = put_file
        return st

    return opener


def test_build_crash_resume_skip_and_read_back(prefect_api, tmp_path, monkeypatch):
    import flows.publish as fp
    from flows.build_catalog import run_build_catalog
    from flows.publish import DatasetWork
    from synthlib.catalog import get_entry
    from synthlib.io.checksums import digest_file
    from synthlib.publish import open_published

    catalog = _catalog(tmp_path / "catalog")
    work = tmp_path / "work"
    crash = {"prefix": "beta-demo/", "crash_at": 4}
    monkeypatch.setattr(fp, "_open_dest", _crashing_opener(crash))
    build = dict(max_priority=2, catalog=str(catalog), work_dir=str(work))
    with _bucket() as (url, client):
        # 1. alpha is generated (2 units on 2 Dask workers), QC'd and published; beta is
        #    generated and QC'd, then the process "dies" on its 4th upload.
        with pytest.raises(RuntimeError, match="simulated crash"):
            run_build_catalog(dest=url, workers=2, **build)
        _assert_catalog_consistent(url)
        assert [d["id"] for d in open_published(url).datasets] == ["alpha-demo"]
        beta_objects = [k for k in _generations(client, url) if k.startswith("beta-demo/")]
        assert len(beta_objects) == 3 and "beta-demo/1.0.0/manifest.json" not in beta_objects
        index = client.bucket(url.removeprefix("gs://")).blob("index.html").download_as_text()
        assert "alpha-demo" in index and "beta-demo" not in index
        alpha_gens = {k: g for k, g in _generations(client, url).items()
                      if k.startswith("alpha-demo/")}

        # Lose beta's merged folder too, as if the crash had come before the merge: the
        # re-run must rebuild it from the persisted unit results, not by simulating again.
        beta = DatasetWork.for_spec(get_entry("beta-demo", folder=catalog).spec, work_dir=work)
        assert (beta.dataset / "manifest.json").is_file()
        assert not (DatasetWork.for_spec(get_entry("alpha-demo", folder=catalog).spec,
                                         work_dir=work).root / "units").exists()  # published
        shutil.rmtree(beta.root / "dataset")

        # 2. The re-run skips alpha, reuses beta's unit, uploads only what is missing.
        crash["crash_at"] = None
        rows = run_build_catalog(dest=url, workers=1, **build)
        assert [(r["id"], r["status"]) for r in rows] == [("alpha-demo", "skipped"),
                                                          ("beta-demo", "published")]
        assert (rows[0]["units_run"], rows[0]["uploaded"]) == (0, 0)
        assert (rows[1]["units_run"], rows[1]["units_cached"]) == (0, 1)
        assert rows[1]["qc"] == "pass"
        pub = open_published(url)
        n_objects = len(pub.entry("beta-demo")["files"]) + 1  # + manifest.json
        assert rows[1]["uploaded"] == n_objects - 3
        _assert_catalog_consistent(url)
        assert {k: g for k, g in _generations(client, url).items()
                if k.startswith("alpha-demo/")} == alpha_gens
        assert not any(p.is_file() for p in work.rglob("*"))  # published: work dropped

        # Read everything back through the catalog, every checksum verified.
        assert sorted(d["id"] for d in pub.datasets) == ["alpha-demo", "beta-demo"]
        for ds in pub.datasets:
            got = pub.get(ds["id"], to=tmp_path / "got")  # size, md5, crc32c verified
            manifest = json.loads((got / "manifest.json").read_text())
            assert manifest["qc"]["verdict"] == ds["qc"]["verdict"] == "pass"
            for f in manifest["files"]:
                assert digest_file(got / f["path"])["md5"] == f["md5"]
            assert ds["software"]["synthlib"] == manifest["software"]["synthlib"]

        # 3. A third build publishes nothing and rewrites not one object.
        before = _generations(client, url)
        again = run_build_catalog(dest=url, workers=1, **build)
        assert [(r["id"], r["status"], r["units_run"], r["uploaded"]) for r in again] == [
            ("alpha-demo", "skipped", 0, 0), ("beta-demo", "skipped", 0, 0)]
        assert _generations(client, url) == before


def test_selection_by_priority_scale_and_ids(tmp_path):
    from flows.build_catalog import select_entries
    from synthlib.errors import CatalogError

    catalog = _catalog(tmp_path / "catalog")
    (catalog / "alpha.yaml").write_text(
        SPEC.format(id="alpha", seed=1, priority=1, start="1,100", end="1,140"))
    ids = [e.id for e in select_entries(max_priority=2, catalog=catalog)]
    assert ids == ["alpha-demo", "beta-demo"]
    assert [e.id for e in select_entries(max_priority=5, catalog=catalog, demo_only=False)] == [
        "alpha"]
    assert [e.id for e in select_entries(only=["gamma-demo", "alpha"], catalog=catalog)] == [
        "alpha", "gamma-demo"]
    with pytest.raises(CatalogError, match="no catalog entry 'nope'"):
        select_entries(only=["nope"], catalog=catalog)
    with pytest.raises(CatalogError, match="max_priority"):
        select_entries(max_priority=0, catalog=catalog)

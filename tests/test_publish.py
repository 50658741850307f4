"""Publishing datasets: order, idempotency, QC gate, crash safety, concurrency, reading back."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import jsonschema
import pytest

import synthlib
from synthlib.errors import CatalogError, QCError, StorageError
from synthlib.io.checksums import digest_file
from synthlib.io.storage import LocalStorage, Storage, open_storage
from synthlib.publish import (
    CATALOG_KEY,
    INDEX_KEY,
    check_manifest,
    open_published,
    publish_dataset,
    read_catalog,
    render_index,
)

SCHEMAS = Path(synthlib.__file__).parent / "data" / "schemas"
CATALOG_SCHEMA = json.loads((SCHEMAS / "catalog.schema.json").read_text())
MANIFEST_SCHEMA = json.loads((SCHEMAS / "manifest.schema.json").read_text())


# --------------------------------------------------------------------------------------------
# fake dataset folders: real files, manifest computed from them


def make_dataset(root: Path, ds_id: str, version: str = "1.0.0", *, verdict: str = "pass",
                 seed: int = 1, title: str | None = None, big: int = 0) -> Path:
    """A finished dataset folder ``root/<id>/<version>/`` with a correct manifest.

    ``big``: bytes of extra payload in golden.bam (to make uploads take measurable time).
    """
    folder = root / ds_id / version
    (folder / "qc").mkdir(parents=True, exist_ok=True)
    rng = hashlib.sha256(f"{ds_id}{version}{seed}".encode()).digest()
    reads = "".join(f"@r{i}\nACGT{rng.hex()[:20]}\n+\nIIIIIIIIIIIIIIIIIIIIIIII\n"
                    for i in range(200))
    files = {
        "reads_R1.fastq.gz": gzip.compress(reads.encode(), mtime=0),
        "reads_R2.fastq.gz": gzip.compress(reads[::-1].encode(), mtime=0),
        "golden.bam": rng * 100 + os.urandom(big),
        "golden.bam.bai": rng[:16],
        "truth.vcf.gz": gzip.compress(b"##fileformat=VCFv4.2\n", mtime=0),
        "truth.vcf.gz.tbi": rng[:8],
        "qc/qc.json": json.dumps({"verdict": verdict}).encode(),
        "qc/report.html": b"<html>report</html>",
    }
    for rel, data in files.items():
        (folder / rel).write_bytes(data)
    spec = {"id": ds_id, "version": version, "seed": seed,
            "title": title if title is not None else f"Dataset {ds_id}",
            "reason": "tests", "coverage": 30}
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    entries = []
    for rel in files:
        d = digest_file(folder / rel)
        entries.append({"path": rel, "size": d["size"], "md5": d["md5"],
                        "md5_b64": d["md5_b64"], "crc32c_b64": d["crc32c_b64"]})
    manifest = {
        "format": "synthlib.manifest/1", "id": ds_id, "version": version,
        "spec_hash": hashlib.sha256(canonical.encode()).hexdigest(), "seed": seed,
        "spec": spec, "software": {"synthlib": "0.1.0", "pysam": "0.24.1"},
        "created": "2026-11-23T20:00:00Z",
        "qc": {"verdict": verdict, "metrics": {"snv_recall": 0.9931, "indel_f1": 0.97,
                                               "mean_depth": 30.2}},
        "files": entries,
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def assert_consistent(st: Storage) -> dict:
    """The crash-safety invariant: every file the catalog names exists with its md5."""
    got = st.read_versioned(CATALOG_KEY)
    if got is None:
        return {"datasets": []}
    catalog = json.loads(got[0])
    jsonschema.validate(catalog, CATALOG_SCHEMA)
    for ds in catalog["datasets"]:
        for f in ds["files"]:
            info = st.stat(f"{ds['id']}/{ds['version']}/{f['path']}")
            assert info is not None, f"catalog names missing {ds['id']}/{f['path']}"
            assert info.size == f["size"] and info.crc32c_b64 == f["crc32c"]
        assert st.exists(f"{ds['id']}/{ds['version']}/manifest.json")
    return catalog


# --------------------------------------------------------------------------------------------
# backends (the emulator and fake_gcs fixtures are in conftest.py)


def _dest(kind: str, request, tmp_path: Path) -> str:
    if kind == "local":
        return str(tmp_path / "published")
    url, client = request.getfixturevalue("emulator" if kind == "emulator" else "fake_gcs")
    # Both servers may be up at once: route URL-opened storages to this test's one.
    request.getfixturevalue("monkeypatch").setenv("STORAGE_EMULATOR_HOST", client.api_endpoint)
    return f"{url}/pub-{uuid.uuid4().hex[:10]}"


@pytest.fixture(params=["local", "emulator", "fake-gcs"])
def dest(request, tmp_path):
    return _dest(request.param, request, tmp_path)


@pytest.fixture(params=["local", "fake-gcs"])
def cas_dest(request, tmp_path):
    """Destinations whose backend honours generation preconditions."""
    return _dest(request.param, request, tmp_path)


# --------------------------------------------------------------------------------------------
# schemas


def test_manifest_schema_and_checker_agree(tmp_path):
    folder = make_dataset(tmp_path, "demo")
    manifest = json.loads((folder / "manifest.json").read_text())
    jsonschema.validate(manifest, MANIFEST_SCHEMA)
    check_manifest(manifest)
    bad_cases = [
        ("files", [{**manifest["files"][0], "path": "../escape"}]),
        ("files", [{**manifest["files"][0], "path": "/abs"}]),
        ("files", [{**manifest["files"][0], "path": "manifest.json"}]),
        ("files", [{**manifest["files"][0], "md5": "XYZ"}]),
        ("files", []),
        ("id", "Bad_Id"),
        ("version", "1.0"),
        ("spec_hash", "abc"),
        ("seed", -1),
        ("format", "synthlib.manifest/2"),
        ("qc", {"verdict": "maybe", "metrics": {}}),
    ]
    for field, value in bad_cases:
        broken = {**manifest, field: value}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, MANIFEST_SCHEMA)
        with pytest.raises(CatalogError):
            check_manifest(broken)


# --------------------------------------------------------------------------------------------
# publishing and reading back


def test_publish_two_and_read_back(dest, tmp_path):
    src = tmp_path / "src"
    a = make_dataset(src, "demo", title='Demo <script>alert("x")</script> & co')
    b = make_dataset(src, "exome-100x", "2.1.0", seed=7)

    ra = publish_dataset(dataset_dir=a, dest=dest)
    rb = publish_dataset(dataset_dir=b, dest=dest)
    assert (ra.status, rb.status) == ("published", "published")
    assert len(ra.uploaded) == 9 and ra.uploaded[-1] == "demo/1.0.0/manifest.json"
    assert ra.already_present == ()

    catalog = read_catalog(dest)
    jsonschema.validate(catalog, CATALOG_SCHEMA)
    assert [(d["id"], d["version"]) for d in catalog["datasets"]] == [
        ("demo", "1.0.0"), ("exome-100x", "2.1.0")]
    assert read_catalog(dest.rstrip("/") + "/catalog.json") == catalog

    assert open_published(dest, anonymous=True).ls() == open_published(dest).ls()
    pub = open_published(dest)
    assert [(r["id"], r["verdict"], r["files"]) for r in pub.ls()] == [
        ("demo", "pass", 8), ("exome-100x", "pass", 8)]
    out = pub.get("exome-100x", to=tmp_path / "down")
    assert out == tmp_path / "down" / "exome-100x" / "2.1.0"
    for folder, got in ((b, out), (a, pub.get("demo", "1.0.0", to=tmp_path / "down"))):
        manifest = json.loads((folder / "manifest.json").read_text())
        for f in manifest["files"]:
            assert (got / f["path"]).read_bytes() == (folder / f["path"]).read_bytes()
        assert (got / "manifest.json").read_bytes() == (folder / "manifest.json").read_bytes()
    # A downloaded folder is itself publishable, and publishing it again changes nothing.
    again = publish_dataset(dataset_dir=out, dest=dest)
    assert again.status == "skipped"

    page = open_storage(dest).read_text(INDEX_KEY)
    assert "exome-100x" in page and "0.9931" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert 'href="demo/1.0.0/reads_R1.fastq.gz"' in page

    with pytest.raises(CatalogError, match="no dataset"):
        pub.get("nope", to=tmp_path)
    with pytest.raises(CatalogError, match="no version"):
        pub.get("demo", "9.9.9", to=tmp_path)


def test_get_detects_tampered_published_file(tmp_path):
    dest = tmp_path / "pub"
    publish_dataset(dataset_dir=make_dataset(tmp_path / "src", "demo"), dest=str(dest))
    (dest / "demo" / "1.0.0" / "golden.bam").write_bytes(b"tampered")
    with pytest.raises(StorageError, match="checksum mismatch"):
        open_published(str(dest)).get("demo", to=tmp_path / "down")
    assert not (tmp_path / "down" / "demo" / "1.0.0" / "golden.bam").exists()


def test_republish_same_spec_hash_does_nothing(cas_dest, tmp_path):
    folder = make_dataset(tmp_path / "src", "demo")
    publish_dataset(dataset_dir=folder, dest=cas_dest)
    st = open_storage(cas_dest)
    before = {k: st.stat(k).generation for k in st.list()}
    again = publish_dataset(dataset_dir=folder, dest=cas_dest)
    assert again.status == "skipped" and again.uploaded == ()
    assert {k: st.stat(k).generation for k in st.list()} == before  # nothing rewritten


def test_same_version_different_spec_is_refused(tmp_path):
    dest = str(tmp_path / "pub")
    publish_dataset(dataset_dir=make_dataset(tmp_path / "a", "demo", seed=1), dest=dest)
    other = make_dataset(tmp_path / "b", "demo", seed=2)
    with pytest.raises(CatalogError, match="different spec"):
        publish_dataset(dataset_dir=other, dest=dest)
    assert len(read_catalog(dest)["datasets"]) == 1


def test_published_files_are_never_overwritten(cas_dest, tmp_path):
    """A stray object at a dataset's path (same id/version, other bytes) blocks publishing."""
    folder = make_dataset(tmp_path / "src", "demo")
    st = open_storage(cas_dest)
    st.write_bytes("demo/1.0.0/golden.bam", b"someone else's bytes")
    with pytest.raises(StorageError, match="different content"):
        publish_dataset(dataset_dir=folder, dest=cas_dest)
    assert st.read_bytes("demo/1.0.0/golden.bam") == b"someone else's bytes"
    assert read_catalog(cas_dest)["datasets"] == []


@pytest.mark.parametrize("verdict", ["fail", "not_run"])
def test_qc_gate(verdict, tmp_path):
    dest = tmp_path / "pub"
    folder = make_dataset(tmp_path / "src", "demo", verdict=verdict)
    with pytest.raises(QCError, match=verdict):
        publish_dataset(dataset_dir=folder, dest=str(dest))
    assert not dest.exists()  # nothing at all was written
    res = publish_dataset(dataset_dir=folder, dest=str(dest), require_qc_pass=False)
    assert res.status == "published"
    assert read_catalog(str(dest))["datasets"][0]["qc"]["verdict"] == verdict
    assert f'class="v-{verdict}"' in (dest / INDEX_KEY).read_text()


def test_local_file_not_matching_manifest_is_refused_before_upload(tmp_path):
    dest = tmp_path / "pub"
    folder = make_dataset(tmp_path / "src", "demo")
    (folder / "truth.vcf.gz").write_bytes(b"corrupted after the manifest was written")
    with pytest.raises(StorageError, match="truth.vcf.gz"):
        publish_dataset(dataset_dir=folder, dest=str(dest))
    assert not dest.exists()
    (folder / "golden.bam.bai").unlink()
    with pytest.raises(StorageError, match="missing|truth"):
        publish_dataset(dataset_dir=folder, dest=str(dest))


def test_render_index_empty_catalog():
    page = render_index(catalog={"format": "synthlib.catalog/1", "updated": "x",
                                 "datasets": []})
    assert "No datasets published yet" in page


# --------------------------------------------------------------------------------------------
# crash consistency


class Crash(RuntimeError):
    """Stands in for the process dying."""


class FaultyStorage(Storage):
    """Delegates to a real backend; the ``crash_at``-th write raises, before or after it lands."""

    def __init__(self, inner: Storage, crash_at: int, after: bool) -> None:
        self.inner, self.crash_at, self.after = inner, crash_at, after
        self.writes = 0
        self.root_url = inner.root_url

    def _write(self, fn, *args, **kwargs):
        self.writes += 1
        if self.writes == self.crash_at and not self.after:
            raise Crash(f"before write {self.writes}")
        out = fn(*args, **kwargs)
        if self.writes == self.crash_at:
            raise Crash(f"after write {self.writes}")
        return out

    def put_file(self, *args, **kwargs):
        return self._write(self.inner.put_file, *args, **kwargs)

    def write_bytes(self, *args, **kwargs):
        return self._write(self.inner.write_bytes, *args, **kwargs)

    def url_for(self, key):
        return self.inner.url_for(key)

    def stat(self, key):
        return self.inner.stat(key)

    def get_file(self, *args, **kwargs):
        return self.inner.get_file(*args, **kwargs)

    def read_versioned(self, key):
        return self.inner.read_versioned(key)

    def list(self, prefix=""):
        return self.inner.list(prefix)

    def delete(self, key):
        return self.inner.delete(key)


# 8 data files + manifest + catalog + index = 11 writes in a publish.
_WRITES = 11


@pytest.mark.parametrize("after", [False, True], ids=["crash-before", "crash-after"])
def test_crash_at_every_write_keeps_catalog_consistent(cas_dest, after, tmp_path):
    src = tmp_path / "src"
    first = make_dataset(src, "demo")
    second = make_dataset(src, "exome-100x", "2.0.0")
    publish_dataset(dataset_dir=first, dest=cas_dest)
    for crash_at in range(1, _WRITES + 1):
        dest_k = cas_dest.rstrip("/") + f"/k{crash_at}"
        publish_dataset(dataset_dir=first, dest=dest_k)
        inner = open_storage(dest_k)
        with pytest.raises(Crash):
            publish_dataset(dataset_dir=second, dest=FaultyStorage(inner, crash_at, after))
        catalog = assert_consistent(inner)
        listed = {d["id"] for d in catalog["datasets"]}
        # Only once the catalog write itself has landed may the new dataset be listed.
        assert listed == ({"demo", "exome-100x"} if crash_at > 10 or (crash_at == 10 and after)
                          else {"demo"}), crash_at
        rerun = publish_dataset(dataset_dir=second, dest=dest_k)
        catalog = assert_consistent(inner)
        assert {d["id"] for d in catalog["datasets"]} == {"demo", "exome-100x"}
        if rerun.status == "published":
            # The re-run re-uploaded nothing that the crashed run had already finished.
            assert len(rerun.uploaded) + len(rerun.already_present) == 9
            assert len(rerun.already_present) == min(crash_at - (not after), 9)
        else:
            assert crash_at >= 10 and (after or crash_at == 11)
        assert "exome-100x" in inner.read_text(INDEX_KEY)


_CHILD = textwrap.dedent("""
    import sys, time
    from synthlib.io.storage import LocalStorage
    from synthlib.publish import publish_dataset

    class Slow(LocalStorage):
        # Pauses after each upload so the parent can kill us mid-publish, deterministically.
        def put_file(self, *a, **k):
            out = super().put_file(*a, **k)
            print("uploaded", a[1], flush=True)
            time.sleep(float(sys.argv[3]))
            return out

    publish_dataset(dataset_dir=sys.argv[1], dest=Slow(sys.argv[2]))
    print("done", flush=True)
""")


def test_killed_publisher_leaves_catalog_consistent_and_rerun_completes(tmp_path):
    src = tmp_path / "src"
    dest = tmp_path / "pub"
    publish_dataset(dataset_dir=make_dataset(src, "demo"), dest=str(dest))
    big = make_dataset(src, "wgs-big", big=6 << 20)
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    proc = subprocess.Popen([sys.executable, str(script), str(big), str(dest), "0.3"],
                            stdout=subprocess.PIPE, text=True)
    try:
        seen = [proc.stdout.readline() for _ in range(3)]
        assert all(s.startswith("uploaded") for s in seen), seen
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup, no finally blocks: a real crash
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    st = LocalStorage(dest)
    catalog = assert_consistent(st)
    assert [d["id"] for d in catalog["datasets"]] == ["demo"]
    assert not st.exists("wgs-big/1.0.0/manifest.json")
    t0 = time.monotonic()
    rerun = publish_dataset(dataset_dir=big, dest=str(dest))
    assert rerun.status == "published" and len(rerun.already_present) >= 3
    catalog = assert_consistent(st)
    assert [d["id"] for d in catalog["datasets"]] == ["demo", "wgs-big"]
    out = open_published(str(dest)).get("wgs-big", to=tmp_path / "down")
    assert (out / "golden.bam").read_bytes() == (big / "golden.bam").read_bytes()
    assert time.monotonic() - t0 < 20


# --------------------------------------------------------------------------------------------
# concurrency


class RacingStorage(FaultyStorage):
    """Holds the first catalog write until the other publisher has read the same catalog."""

    def __init__(self, inner: Storage, barrier: threading.Barrier) -> None:
        super().__init__(inner, crash_at=-1, after=False)
        self.barrier = barrier
        self.waited = False

    def write_bytes(self, key, *args, **kwargs):
        if key == CATALOG_KEY and not self.waited:
            self.waited = True
            self.barrier.wait(timeout=20)
        return self.inner.write_bytes(key, *args, **kwargs)


def test_concurrent_publishers_lose_no_update(cas_dest, tmp_path):
    src = tmp_path / "src"
    folders = [make_dataset(src, f"ds{i}") for i in range(2)]
    barrier = threading.Barrier(2)
    results, errors = [], []

    def run(folder):
        try:
            results.append(publish_dataset(
                dataset_dir=folder, dest=RacingStorage(open_storage(cas_dest), barrier)))
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(f,)) for f in folders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    # Both read the same catalog generation; exactly one had to redo its update.
    assert sorted(r.catalog_attempts for r in results) == [1, 2]
    catalog = assert_consistent(open_storage(cas_dest))
    assert [d["id"] for d in catalog["datasets"]] == ["ds0", "ds1"]
    page = open_storage(cas_dest).read_text(INDEX_KEY)
    assert "ds0" in page and "ds1" in page

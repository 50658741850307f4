"""synthlib.fetch against real servers on loopback: http.server and the GCS emulator."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import re
import socket
import threading
import urllib.parse
from collections import Counter
from pathlib import Path

import pysam
import pytest
from _servers import free_port

from synthlib import resources
from synthlib.errors import ReferenceDataError
from synthlib.fetch import CACHE_ENV, cache_dir, fetch, prepare_bgzf_fasta, resolve_remote
from synthlib.resources import REMOTE_RESOURCES, RESOURCES, RemoteResource

FASTA = RESOURCES["grch37-chr20-demo.fasta"].local_path()
EXONS = RESOURCES["grch37-chr20-demo.exons"].local_path()
SITES = RESOURCES["grch37-chr20-demo.sites"].local_path()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


class _Server:
    """Serves ``files`` (URL path -> bytes) and counts GETs per path.

    ``/cut/<path>`` announces the full Content-Length, sends half the body and hangs up:
    an interrupted download as a client sees it.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.hits: Counter[str] = Counter()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                path = urllib.parse.urlsplit(self.path).path
                outer.hits[path] = outer.hits[path] + 1
                cut = path.startswith("/cut/")
                body = outer.files.get(path.removeprefix("/cut") if cut else path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if cut:
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def add(self, path: str, data: bytes) -> str:
        self.files[path] = data
        return self.base + path


@pytest.fixture
def server():
    srv = _Server()
    srv.thread.start()
    yield srv
    srv.httpd.shutdown()
    srv.httpd.server_close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_fetch_verifies_caches_and_brings_indexes(server: _Server, cache: Path) -> None:
    data = FASTA.read_bytes()
    url = server.add("/ref/chr20.fa.gz", data)
    for sfx in (".fai", ".gzi"):
        server.add("/ref/chr20.fa.gz" + sfx, Path(str(FASTA) + sfx).read_bytes())

    path = fetch(url, sha256=_sha256(data), cache=cache, indexes=(".fai", ".gzi"))
    assert path.read_bytes() == data
    assert path.parent == cache / "sha256" / _sha256(data)
    assert server.hits["/ref/chr20.fa.gz"] == 1
    # The cached file and its fetched indexes are usable as a reference right away.
    with pysam.FastaFile(str(path)) as got, pysam.FastaFile(str(FASTA)) as want:
        region = ("chr20", 10_620_000, 10_621_000)
        assert got.fetch(*region) == want.fetch(*region)

    again = fetch(url, sha256=_sha256(data), cache=cache, indexes=(".fai", ".gzi"))
    assert again == path
    assert server.hits == Counter(
        {"/ref/chr20.fa.gz": 1, "/ref/chr20.fa.gz.fai": 1, "/ref/chr20.fa.gz.gzi": 1}
    )
    assert not _files_under(cache / ".partial")


def test_fetch_without_checksum_is_keyed_by_url(server: _Server, cache: Path) -> None:
    data = EXONS.read_bytes()
    url_a = server.add("/a/exons.bed", data)
    url_b = server.add("/b/exons.bed", data)
    path_a = fetch(url_a, cache=cache)
    assert fetch(url_a, cache=cache) == path_a
    path_b = fetch(url_b, cache=cache)
    assert path_b != path_a and path_b.read_bytes() == path_a.read_bytes() == data
    assert server.hits["/a/exons.bed"] == 1 and server.hits["/b/exons.bed"] == 1


def test_same_checksum_from_two_mirrors_is_stored_once(server: _Server, cache: Path) -> None:
    data = EXONS.read_bytes()
    url_a = server.add("/mirror1/exons.bed", data)
    url_b = server.add("/mirror2/exons.bed", data)
    assert fetch(url_a, md5=hashlib.md5(data).hexdigest(), cache=cache) == fetch(
        url_b, md5=hashlib.md5(data).hexdigest(), cache=cache
    )
    assert server.hits["/mirror2/exons.bed"] == 0


@pytest.mark.parametrize("algo", ["sha256", "md5"])
def test_checksum_mismatch_raises_and_leaves_nothing(
    server: _Server, cache: Path, algo: str
) -> None:
    data = SITES.read_bytes()
    url = server.add("/sites.vcf.gz", data)
    wrong = "0" * (64 if algo == "sha256" else 32)
    actual = hashlib.new(algo, data).hexdigest()
    with pytest.raises(ReferenceDataError) as info:
        fetch(url, cache=cache, **{algo: wrong})
    message = str(info.value)
    assert url in message and wrong in message and actual in message
    assert _files_under(cache) == []
    # A later correct request downloads again and succeeds.
    assert fetch(url, cache=cache, **{algo: actual}).read_bytes() == data


@pytest.mark.parametrize("with_checksum", [True, False])
def test_interrupted_download_raises_and_leaves_nothing(
    server: _Server, cache: Path, with_checksum: bool
) -> None:
    data = SITES.read_bytes()
    server.add("/sites.vcf.gz", data)
    url = server.base + "/cut/sites.vcf.gz"
    with pytest.raises(ReferenceDataError, match=re.escape(url)):
        fetch(url, sha256=_sha256(data) if with_checksum else None, cache=cache)
    assert server.hits["/cut/sites.vcf.gz"] == 1
    assert _files_under(cache) == []


def test_http_error_names_the_url(server: _Server, cache: Path) -> None:
    url = server.base + "/missing.bed"
    with pytest.raises(ReferenceDataError, match="HTTP 404"):
        fetch(url, cache=cache)
    assert _files_under(cache) == []


def test_file_url_and_cache_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "envcache"))
    assert cache_dir() == tmp_path / "envcache"
    assert cache_dir(tmp_path / "x") == tmp_path / "x"
    path = fetch(EXONS.as_uri(), sha256=_sha256(EXONS.read_bytes()))
    assert path.is_relative_to(tmp_path / "envcache")
    assert path.read_bytes() == EXONS.read_bytes()


def test_cache_dir_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_dir() == Path.home() / ".cache" / "synthlib"


@pytest.mark.parametrize(
    ("url", "kwargs", "pattern"),
    [
        ("ftp://example.org/x.vcf.gz", {}, "scheme"),
        ("x.vcf.gz", {}, "scheme"),
        ("http://127.0.0.1:9/x", {"sha256": "abc"}, "64 hex digits"),
        ("http://127.0.0.1:9/x", {"md5": "z" * 32}, "32 hex digits"),
        ("http://127.0.0.1:9/", {}, "dest_name"),
        ("http://127.0.0.1:9/x", {"dest_name": "../evil"}, "dest_name"),
        ("http://127.0.0.1:9/x", {"indexes": (".idx",)}, "index suffix"),
    ],
)
def test_bad_requests_are_refused_before_any_io(
    cache: Path, url: str, kwargs: dict, pattern: str
) -> None:
    with pytest.raises(ReferenceDataError, match=pattern):
        fetch(url, cache=cache, **kwargs)
    assert not cache.exists()


def test_gs_url_through_the_storage_emulator(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emulator = pytest.importorskip("gcp_storage_emulator.server")
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    port = free_port()
    srv = emulator.create_server("127.0.0.1", port, in_memory=True, default_bucket="public")
    srv.start()
    try:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
        client = storage.Client(project="test", credentials=AnonymousCredentials())
        data = EXONS.read_bytes()
        client.bucket("public").blob("targets/exons.bed").upload_from_string(data)
        path = fetch("gs://public/targets/exons.bed", sha256=_sha256(data), cache=cache)
        assert path.read_bytes() == data
        with pytest.raises(ReferenceDataError, match="gs://public/targets/nope.bed"):
            fetch("gs://public/targets/nope.bed", cache=cache)
        assert _files_under(cache / ".partial") == []
    finally:
        srv.stop()


def test_resolve_remote_prepares_a_plain_gzip_fasta(
    server: _Server, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reference shipped as plain gzip (as NCBI ships GRCh38): resolve_remote must hand back
    # something htslib can seek in.
    with pysam.FastaFile(str(FASTA)) as fa:
        seq = fa.fetch("chr20", 1_000_000, 1_200_000)
    plain = f">chr20_slice\n{seq}\n".encode()
    packed = gzip.compress(plain, compresslevel=1)
    url = server.add("/ref/slice.fna.gz", packed)
    monkeypatch.setitem(
        REMOTE_RESOURCES,
        "test-slice.fasta",
        RemoteResource(
            name="test-slice.fasta", url=url, sha256=_sha256(packed), kind="fasta",
            description="test", prepare="bgzf-fasta",
        ),
    )
    path = resolve_remote("test-slice.fasta", cache=cache)
    assert path.name == "slice.fna.bgzf.fa.gz"
    with pysam.FastaFile(str(path)) as got:
        assert got.fetch("chr20_slice", 150_000, 150_500) == seq[150_000:150_500]
    mtime = os.stat(path).st_mtime_ns
    assert resolve_remote("test-slice.fasta", cache=cache) == path
    assert os.stat(path).st_mtime_ns == mtime and server.hits["/ref/slice.fna.gz"] == 1
    # An already-BGZF FASTA is indexed in place.
    assert prepare_bgzf_fasta(path=path) == path


def test_resolve_remote_unknown_name_lists_known() -> None:
    with pytest.raises(ReferenceDataError, match="grch38-no-alt.fasta"):
        resolve_remote("no-such-thing")


def test_remote_registry_is_well_formed() -> None:
    assert len(REMOTE_RESOURCES) >= 6
    for name, res in REMOTE_RESOURCES.items():
        assert res.name == name and name not in RESOURCES
        assert urllib.parse.urlsplit(res.url).scheme in ("https", "gs")
        assert res.kind in ("fasta", "vcf", "bed")
        assert res.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", res.sha256)
        assert res.md5 is None or re.fullmatch(r"[0-9a-f]{32}", res.md5)
        assert res.prepare in (None, "bgzf-fasta")
        assert res.description
    kinds = Counter(r.kind for r in REMOTE_RESOURCES.values())
    assert kinds["fasta"] >= 2 and kinds["vcf"] >= 3 and kinds["bed"] >= 2
    assert "RemoteResource" in resources.__all__


def test_remote_reference_bundles_point_at_remote_resources() -> None:
    from synthlib.resources import REFERENCES, REMOTE_REFERENCES

    assert {"grch38", "grch37"} <= set(REMOTE_REFERENCES)
    for name, bundle in REMOTE_REFERENCES.items():
        assert name not in REFERENCES
        assert REMOTE_RESOURCES[bundle.fasta].kind == "fasta"
        for role in bundle.roles.values():
            assert role in REMOTE_RESOURCES


def test_full_scale_catalog_specs_name_only_known_data() -> None:
    from synthlib.resources import REFERENCES, REMOTE_REFERENCES
    from synthlib.spec import load_spec

    catalog = Path(__file__).resolve().parents[1] / "catalog"
    known = set(RESOURCES) | set(REMOTE_RESOURCES)
    specs = sorted(catalog.glob("*.yaml"))
    assert len([p for p in specs if not p.stem.endswith("demo")]) >= 12
    for path in specs:
        spec = load_spec(path)
        assert spec.reference.name in set(REFERENCES) | set(REMOTE_REFERENCES), path
        for name in (spec.assay.targets, spec.germline.vcf):
            assert name is None or name in known, (path, name)
        if path.stem.endswith("-demo"):
            assert (catalog / f"{spec.id.removesuffix('-demo')}.yaml").exists()
            assert spec.reference.name == "grch37-chr20-demo"

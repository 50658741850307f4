"""Remote files by URL, fetched once, verified and cached.

A full-scale spec names data that is too large to bundle (a whole GRCh38, the 1000 Genomes
sites, the GIAB truth sets). :func:`fetch` downloads such a file once into a local cache and
hands back its path; later calls find it there and touch no network.

Guarantees
----------
- A file appears in the cache only complete and verified: it is streamed to a temporary file
  under ``<cache>/.partial/``, its checksum is compared, and only then is it moved into place
  with :func:`os.replace` (atomic on one file system). A failed, interrupted or mismatching
  download raises :class:`~synthlib.errors.ReferenceDataError` and leaves nothing behind.
- The cache is keyed by the declared checksum (``sha256/<hex>/`` or ``md5/<hex>/``), or by the
  URL when no checksum is declared (``url/<sha256 of url>/``), so the same content from two
  mirrors is stored once and a changed URL without a checksum is never mistaken for the old file.

Schemes: ``http(s)://`` (urllib; TLS trusts the system store, ``SSL_CERT_FILE`` or
``$SYNTH_CA_BUNDLE``), ``gs://bucket/key`` (google-cloud-storage, anonymous client;
it honours ``STORAGE_EMULATOR_HOST``), ``file://``.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from .errors import ReferenceDataError

__all__ = [
    "fetch",
    "cache_dir",
    "resolve_remote",
    "prepare_bgzf_fasta",
    "CACHE_ENV",
    "CA_BUNDLE_ENV",
    "INDEX_SUFFIXES",
]

#: Environment variable that moves the cache (default ``~/.cache/synthlib``).
CACHE_ENV = "SYNTH_CACHE"

#: Environment variable naming a PEM CA bundle to trust for https:// (a private mirror).
CA_BUNDLE_ENV = "SYNTH_CA_BUNDLE"

#: Index suffixes a resource may declare; they are fetched next to the main file.
INDEX_SUFFIXES = (".fai", ".gzi", ".tbi", ".csi", ".bai", ".crai")

_PIECE = 1 << 20
_TIMEOUT_S = 60.0
_SCHEMES = ("http", "https", "gs", "file")


def cache_dir(cache: str | Path | None = None) -> Path:
    """The cache folder: ``cache`` if given, else ``$SYNTH_CACHE``, else ``~/.cache/synthlib``.

    The folder is not created here; :func:`fetch` creates it when it first stores a file.
    """
    if cache is not None:
        return Path(cache).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "synthlib"


def _check_hex(value: str | None, *, length: int, name: str) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    if len(value) != length or any(c not in "0123456789abcdef" for c in value):
        raise ReferenceDataError(f"{name} must be {length} hex digits, got {value!r}")
    return value


def _dest_name(url: str, dest_name: str | None) -> str:
    name = dest_name or Path(urllib.parse.unquote(urllib.parse.urlsplit(url).path)).name
    # The name becomes a path component inside the cache: never let it climb out.
    if not name or name in (".", "..") or "/" in name or os.sep in name or "\0" in name:
        raise ReferenceDataError(f"cannot derive a file name from {url!r}; pass dest_name")
    return name


def _key_dir(root: Path, url: str, sha256: str | None, md5: str | None) -> Path:
    if sha256:
        return root / "sha256" / sha256
    if md5:
        return root / "md5" / md5
    return root / "url" / hashlib.sha256(url.encode()).hexdigest()[:32]


class _HashingWriter:
    """File-like sink that hashes what passes through (gs:// downloads write into it)."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _copy_stream(src: BinaryIO, sink: _HashingWriter) -> None:
    while piece := src.read(_PIECE):
        sink.write(piece)


def _tls_context() -> ssl.SSLContext | None:
    """Trust ``$SYNTH_CA_BUNDLE`` (PEM) when set; else None: the system store, which OpenSSL
    already lets ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` replace."""
    bundle = os.environ.get(CA_BUNDLE_ENV)
    if not bundle:
        return None
    try:
        return ssl.create_default_context(cafile=bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ReferenceDataError(f"cannot load CA bundle {bundle} (${CA_BUNDLE_ENV}): {exc}"
                                 ) from None


def _download_http(url: str, sink: _HashingWriter) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "synthlib-fetch"})
    with urllib.request.urlopen(request, timeout=_TIMEOUT_S, context=_tls_context()) as resp:
        expected = resp.headers.get("Content-Length")
        _copy_stream(resp, sink)
    # urllib does not always notice a connection closed early: count the bytes ourselves.
    if expected is not None and int(expected) != sink.size:
        raise ReferenceDataError(
            f"download of {url} was cut short: got {sink.size} of {int(expected)} bytes"
        )


def _download_gs(url: str, sink: _HashingWriter) -> None:
    from google.cloud import storage  # heavy import, only for gs:// URLs

    parts = urllib.parse.urlsplit(url)
    key = parts.path.lstrip("/")
    if not parts.netloc or not key:
        raise ReferenceDataError(f"{url!r} is not gs://BUCKET/KEY")
    client = storage.Client.create_anonymous_client()
    blob = client.bucket(parts.netloc).blob(key)
    blob.download_to_file(sink)


def _download_file(url: str, sink: _HashingWriter) -> None:
    path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
    with open(path, "rb") as src:
        _copy_stream(src, sink)


def _download(url: str, target: Path, *, partial_dir: Path, sha256: str | None,
              md5: str | None) -> None:
    """Stream ``url`` into ``target`` through a temp file; verify; move into place atomically."""
    scheme = urllib.parse.urlsplit(url).scheme
    downloader = {
        "http": _download_http,
        "https": _download_http,
        "gs": _download_gs,
        "file": _download_file,
    }[scheme]
    partial_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=partial_dir, prefix=target.name[:40] + ".", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            sink = _HashingWriter(fh)
            try:
                downloader(url, sink)
            except ReferenceDataError:
                raise
            except urllib.error.HTTPError as exc:
                raise ReferenceDataError(
                    f"cannot fetch {url}: HTTP {exc.code} {exc.reason}"
                ) from None
            except urllib.error.URLError as exc:
                if isinstance(exc.reason, ssl.SSLCertVerificationError):
                    raise ReferenceDataError(
                        f"cannot fetch {url}: TLS certificate not trusted "
                        f"({exc.reason.verify_message}); set SSL_CERT_FILE or "
                        f"${CA_BUNDLE_ENV} to a PEM bundle of the CA that signed it") from None
                raise ReferenceDataError(f"cannot fetch {url}: {exc!r}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise ReferenceDataError(f"cannot fetch {url}: {exc!r}") from None
            except Exception as exc:  # google-cloud errors have no common base we can import lazily
                raise ReferenceDataError(f"cannot fetch {url}: {exc!r}") from None
            fh.flush()
            os.fsync(fh.fileno())
        for algo, want, got in (("sha256", sha256, sink.sha256), ("md5", md5, sink.md5)):
            if want is not None and got.hexdigest() != want:
                raise ReferenceDataError(
                    f"checksum mismatch for {url}: expected {algo} {want}, got {got.hexdigest()}"
                )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
        if target.parent.exists() and not any(target.parent.iterdir()):
            target.parent.rmdir()


def fetch(
    url: str,
    *,
    sha256: str | None = None,
    md5: str | None = None,
    dest_name: str | None = None,
    cache: str | Path | None = None,
    indexes: Sequence[str] = (),
) -> Path:
    """Download ``url`` once into the cache, verify it, and return its local path.

    Parameters
    ----------
    url
        ``http://``, ``https://``, ``gs://BUCKET/KEY`` or ``file://`` URL.
    sha256, md5
        Expected checksum(s), hex. When given, the download is verified and the cache is keyed
        by it; when both are None the file is trusted as served and keyed by URL.
    dest_name
        File name in the cache (default: the URL's last path component). Keep the suffix
        (``.fa.gz``, ``.vcf.gz``) since readers rely on it.
    cache
        Cache folder (default :func:`cache_dir`).
    indexes
        Suffixes of index files (``".fai"``, ``".gzi"``, ``".tbi"``, ...) to fetch from
        ``url + suffix`` into ``path + suffix``. Indexes are not checksummed (none is
        published for them); they are re-fetched whenever their main file is.

    Returns
    -------
    Path
        The cached file; its indexes sit next to it.

    Raises
    ------
    ReferenceDataError
        Unsupported scheme, bad checksum syntax, network/HTTP failure, a download cut short,
        or a checksum mismatch (naming the URL and both checksums). Nothing is left in the
        cache on failure.
    """
    if not isinstance(url, str) or not url:
        raise ReferenceDataError(f"url must be a non-empty string, got {url!r}")
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ReferenceDataError(
            f"cannot fetch {url!r}: scheme {scheme or '(none)'!r} is not one of {_SCHEMES}"
        )
    sha256 = _check_hex(sha256, length=64, name="sha256")
    md5 = _check_hex(md5, length=32, name="md5")
    for suffix in indexes:
        if suffix not in INDEX_SUFFIXES:
            raise ReferenceDataError(f"index suffix {suffix!r} is not one of {INDEX_SUFFIXES}")
    root = cache_dir(cache)
    target = _key_dir(root, url, sha256, md5) / _dest_name(url, dest_name)
    partial_dir = root / ".partial"
    fresh = not target.exists()
    if fresh:
        _download(url, target, partial_dir=partial_dir, sha256=sha256, md5=md5)
    for suffix in indexes:
        index = target.with_name(target.name + suffix)
        if fresh or not index.exists():
            _download(url + suffix, index, partial_dir=partial_dir, sha256=None, md5=None)
    return target


def resolve_remote(name: str, *, cache: str | Path | None = None) -> Path:
    """Fetch the :data:`~synthlib.resources.REMOTE_RESOURCES` entry ``name``; return its path.

    Raises
    ------
    ReferenceDataError
        If ``name`` is not a remote resource (the message lists the known names), or the fetch
        fails (see :func:`fetch`).
    """
    from .resources import REMOTE_RESOURCES  # resources imports nothing from here

    if name not in REMOTE_RESOURCES:
        known = ", ".join(sorted(REMOTE_RESOURCES))
        raise ReferenceDataError(f"{name!r} is not a remote resource (known: {known})")
    res = REMOTE_RESOURCES[name]
    path = fetch(
        res.url,
        sha256=res.sha256,
        md5=res.md5,
        dest_name=res.dest_name,
        cache=cache,
        indexes=res.indexes,
    )
    if res.prepare is None:
        return path
    if res.prepare == "bgzf-fasta":
        return prepare_bgzf_fasta(path=path, partial_dir=cache_dir(cache) / ".partial")
    raise ReferenceDataError(f"remote resource {name!r}: unknown prepare step {res.prepare!r}")


_BGZF_MAGIC = bytes.fromhex("1f8b0804")


def _is_bgzf(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(16)
    # BGZF = gzip with FEXTRA whose first subfield is 'BC' (SAM spec section 4.1).
    return head[:4] == _BGZF_MAGIC and head[12:14] == b"BC"


def prepare_bgzf_fasta(*, path: Path, partial_dir: Path | None = None) -> Path:
    """Make a (gzip or BGZF) FASTA randomly accessible: BGZF + ``.fai`` + ``.gzi``.

    NCBI and 1000 Genomes ship references as plain gzip, which htslib cannot seek in. A
    plain-gzip file is streamed through the BGZF compressor into ``<name>.bgzf.fa.gz`` next
    to it (bounded memory; atomic via a temp file); a BGZF file is indexed in place.

    Returns
    -------
    Path
        The BGZF FASTA; its ``.fai`` and ``.gzi`` sit next to it.
    """
    import gzip
    import zlib

    import pysam

    from .io import bgzf

    path = Path(path)
    if _is_bgzf(path):
        out = path
    else:
        out = path.with_name(path.name.removesuffix(".gz") + ".bgzf.fa.gz")
        if not out.exists():
            partial_dir = partial_dir or path.parent
            partial_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=partial_dir, prefix=out.name, suffix=".part")
            tmp = Path(tmp_name)
            try:
                with gzip.open(path, "rb") as src, os.fdopen(fd, "wb") as dst:
                    while piece := src.read(bgzf.BLOCK_DATA_SIZE * 64):
                        dst.write(bgzf.compress(piece))
                    dst.write(bgzf.EOF)
                os.replace(tmp, out)
            except (OSError, EOFError, zlib.error) as exc:
                raise ReferenceDataError(f"cannot recompress FASTA {path}: {exc!r}") from None
            finally:
                tmp.unlink(missing_ok=True)
    indexed = all(out.with_name(out.name + sfx).exists() for sfx in (".fai", ".gzi"))
    if not indexed:
        try:
            pysam.faidx(str(out))
        except pysam.SamtoolsError as exc:
            raise ReferenceDataError(f"cannot index FASTA {out}: {exc}") from None
    return out

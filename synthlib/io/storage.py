"""Where datasets are published: a local folder or a Google Cloud Storage prefix, one interface.

``open_storage(url)`` takes ``/some/dir``, ``file:///some/dir`` or ``gs://bucket/prefix`` and
returns a :class:`Storage`. Keys are ``/``-separated paths relative to that root
(``demo/1.0.0/manifest.json``).

Guarantees both backends keep:

* A write is atomic: readers see the old object or the new one, never a partial one (local:
  temp file in the same folder, fsync, ``os.replace``; GCS: an object appears only when its
  upload finalises).
* ``put_file(..., if_absent=True)`` never overwrites: an existing object with the same md5 counts as
  already uploaded (so re-runs are idempotent), one with a different md5 is a :class:`StorageError`.
* Every upload and download is checked against the local file's md5 and crc32c.
* ``write_bytes(..., if_generation_match=g)`` is a compare-and-swap (``g=0``: only if absent), the
  building block of optimistic concurrency on ``catalog.json``.

Local "generations" are the file's ``st_mtime_ns``. Every write through this module takes an
exclusive ``flock`` on the folder, and stamps the new file with ``max(now_ns, old_generation + 1)``,
so a generation strictly increases on each write even within one clock tick. Files changed behind
the module's back (``cp``, an editor) get whatever mtime the OS gives them; flock is advisory and
works on local Linux/macOS file systems (not reliably on NFS).

GCS credentials come from the environment (Application Default Credentials) and are never logged
or stored; with ``anonymous=True``, or when none are found, a read-only anonymous client is used,
which can read public buckets. ``STORAGE_EMULATOR_HOST`` (an emulator URL) is honoured. Transient
failures (429, 5xx, connection errors) are retried with exponential backoff, at most
``max_tries`` attempts per call.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import logging
import os
import secrets
import time
import urllib.parse
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import google_crc32c

from ..errors import StorageError
from .checksums import digest_file

__all__ = [
    "ObjectInfo",
    "PreconditionFailed",
    "Storage",
    "LocalStorage",
    "GCSStorage",
    "open_storage",
    "TEMP_MARK",
    "RESUMABLE_THRESHOLD",
]

log = logging.getLogger(__name__)

#: Temp files of in-flight local writes carry this in their name; ``list`` hides them.
TEMP_MARK = ".synthlib-tmp-"
#: Files larger than this are uploaded in resumable chunks of this size (a GCS multiple of 256 KiB).
RESUMABLE_THRESHOLD = 8 << 20

_CONTENT_TYPES = {
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".gz": "application/gzip",
    ".bam": "application/octet-stream",
    ".bai": "application/octet-stream",
    ".tbi": "application/octet-stream",
}


class PreconditionFailed(StorageError):
    """A generation precondition did not hold (someone else wrote the object first)."""


@dataclass(frozen=True)
class ObjectInfo:
    """What a backend knows about one stored object.

    ``generation`` is GCS's object generation, or the local file's ``st_mtime_ns``;
    ``md5_b64`` is None for GCS composite objects (which only carry a crc32c).
    """

    key: str
    size: int
    md5_b64: str | None
    crc32c_b64: str | None
    generation: int | None
    url: str


def _guess_content_type(key: str) -> str:
    return _CONTENT_TYPES.get(PurePosixPath(key).suffix, "application/octet-stream")


def _check_key(key: str, *, allow_empty: bool = False) -> str:
    """Keys are relative posix paths without ``..``, empty parts or our temp marker."""
    if not isinstance(key, str):
        raise StorageError(f"object key must be a string, got {type(key).__name__}")
    if key == "" and allow_empty:
        return key
    parts = key.split("/")
    bad = (
        key == ""
        or key.startswith("/")
        or "\\" in key
        or any(p in ("", ".", "..") for p in parts)
        or any(TEMP_MARK in p for p in parts)
    )
    if bad:
        raise StorageError(f"invalid object key {key!r} (need a relative path like 'a/b.json')")
    return key


def _digest_bytes(data: bytes) -> tuple[str, str]:
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    crc = base64.b64encode(google_crc32c.Checksum(data).digest()).decode()
    return md5, crc


def _same_content(info: ObjectInfo, md5_b64: str, crc32c_b64: str) -> bool:
    """Compare by md5 when the object has one, else by crc32c (composite GCS objects)."""
    if info.md5_b64 is not None:
        return info.md5_b64 == md5_b64
    return info.crc32c_b64 is not None and info.crc32c_b64 == crc32c_b64


class Storage(ABC):
    """A place objects live under one root: a local folder or a ``gs://bucket/prefix``."""

    #: The URL this storage was opened with (``/dir`` or ``gs://bucket/prefix``).
    root_url: str

    @abstractmethod
    def url_for(self, key: str) -> str:
        """Public URL (GCS) or absolute local path of ``key``."""

    @abstractmethod
    def stat(self, key: str) -> ObjectInfo | None:
        """Size, checksums and generation of ``key``; None if it does not exist."""

    def exists(self, key: str) -> bool:
        """True if ``key`` exists."""
        return self.stat(key) is not None

    @abstractmethod
    def put_file(
        self,
        local_path: str | Path,
        key: str,
        *,
        md5_b64: str | None = None,
        crc32c_b64: str | None = None,
        if_absent: bool = True,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Upload ``local_path`` as ``key`` and verify the stored checksums.

        Parameters
        ----------
        local_path
            The file to upload.
        key
            Destination key.
        md5_b64, crc32c_b64
            Checksums the caller expects the file to have (e.g. from a manifest); a file that
            no longer matches them is refused before anything is uploaded.
        if_absent
            Never overwrite: an existing object with the same md5 is returned as is (idempotent
            re-runs), one with different content raises :class:`StorageError`.
        content_type
            MIME type; guessed from the suffix when None.
        """

    @abstractmethod
    def get_file(
        self, key: str, local_path: str | Path, *, expected_md5_b64: str | None = None
    ) -> ObjectInfo:
        """Download ``key`` to ``local_path`` atomically (temp file, verify, rename)."""

    @abstractmethod
    def read_versioned(self, key: str) -> tuple[bytes, ObjectInfo] | None:
        """Contents of ``key`` with the generation they were read at; None if missing."""

    def read_bytes(self, key: str) -> bytes:
        """Contents of ``key`` (verified against its stored checksums)."""
        got = self.read_versioned(key)
        if got is None:
            raise StorageError("object not found", where=self.url_for(key))
        return got[0]

    def read_text(self, key: str, *, encoding: str = "utf-8") -> str:
        """Contents of ``key`` decoded as text."""
        return self.read_bytes(key).decode(encoding)

    @abstractmethod
    def write_bytes(
        self,
        key: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        content_type: str | None = None,
        cache_control: str | None = None,
    ) -> ObjectInfo:
        """Write ``data`` as ``key`` atomically.

        ``if_generation_match``: write only if the object's current generation is this value
        (0: only if it does not exist); otherwise raise :class:`PreconditionFailed` (a
        :class:`StorageError`). ``cache_control`` (GCS only) e.g. ``"no-cache"`` for
        objects that change, such as ``catalog.json``.
        """

    @abstractmethod
    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys starting with ``prefix`` (a plain string prefix, not a glob)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""


def _precondition_error(url: str, expected: int, actual: int | None) -> PreconditionFailed:
    return PreconditionFailed(
        f"precondition failed: expected generation {expected}, object has "
        f"{'none (absent)' if actual is None else actual}",
        where=url,
    )


# --------------------------------------------------------------------------------------------
# Local folder


class LocalStorage(Storage):
    """A local folder as object storage (see the module docstring for "generation").

    A folder keeps no checksum metadata, so ``stat`` reads the file to compute md5 and crc32c
    (about a second per GB); ``exists`` is cheap.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.root_url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def url_for(self, key: str) -> str:
        return str(self._path(key))

    @contextlib.contextmanager
    def _locked(self, folder: Path) -> Iterator[None]:
        # flock on the folder itself: no lock files to clean up or to show in listings.
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _info(self, key: str, path: Path, st: os.stat_result | None = None) -> ObjectInfo:
        st = st or path.stat()
        dig = digest_file(path)
        return ObjectInfo(key, dig["size"], dig["md5_b64"], dig["crc32c_b64"], st.st_mtime_ns,
                          str(path))

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return self._info(key, path, st)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def _temp_in(self, folder: Path, name: str) -> Path:
        return folder / f".{name}{TEMP_MARK}{secrets.token_hex(6)}"

    @staticmethod
    def _fsync_dir(folder: Path) -> None:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _commit(self, tmp: Path, path: Path, *, if_generation_match: int | None,
                if_absent_same: tuple[str, str] | None = None) -> ObjectInfo | None:
        """Rename ``tmp`` over ``path`` under the folder lock, honouring a precondition.

        Returns the existing object's info instead (and drops ``tmp``) when ``if_absent_same``
        is given and the object already exists with that md5/crc32c.
        """
        with self._locked(path.parent):
            try:
                old = path.stat().st_mtime_ns
            except FileNotFoundError:
                old = None
            if if_absent_same is not None and old is not None:
                tmp.unlink()
                existing = self._info(self._key_of(path), path)
                if _same_content(existing, *if_absent_same):
                    return existing
                raise StorageError(
                    f"refusing to overwrite: object exists with md5 {existing.md5_b64}, "
                    f"new content has md5 {if_absent_same[0]}", where=str(path))
            if if_generation_match is not None and (old or 0) != if_generation_match:
                tmp.unlink()
                raise _precondition_error(str(path), if_generation_match, old)
            # Strictly increasing generations, even within one coarse clock tick.
            gen = max(time.time_ns(), (old or 0) + 1)
            os.utime(tmp, ns=(gen, gen))
            os.replace(tmp, path)
            self._fsync_dir(path.parent)
        return None

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def put_file(self, local_path, key, *, md5_b64=None, crc32c_b64=None, if_absent=True,
                 content_type=None) -> ObjectInfo:
        src = Path(local_path)
        if not src.is_file():
            raise StorageError("local file not found", where=str(src))
        path = self._path(key)
        want = digest_file(src)
        _check_expected(want, md5_b64, crc32c_b64, str(src))
        if if_absent and path.is_file():
            existing = self._info(key, path)
            if _same_content(existing, want["md5_b64"], want["crc32c_b64"]):
                return existing
            raise StorageError(
                f"refusing to overwrite: object exists with md5 {existing.md5_b64}, "
                f"local file has md5 {want['md5_b64']}", where=str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_in(path.parent, path.name)
        try:
            _copy_fsync(src, tmp)
            got = digest_file(tmp)
            if (got["md5_b64"], got["crc32c_b64"]) != (want["md5_b64"], want["crc32c_b64"]):
                raise StorageError(
                    f"checksum mismatch after copy: stored md5 {got['md5_b64']}, "
                    f"expected {want['md5_b64']} (file changed while being copied?)",
                    where=str(path))
            existing = self._commit(
                tmp, path, if_generation_match=None,
                if_absent_same=(want["md5_b64"], want["crc32c_b64"]) if if_absent else None)
        finally:
            tmp.unlink(missing_ok=True)
        return existing or self._info(key, path)

    def get_file(self, key, local_path, *, expected_md5_b64=None) -> ObjectInfo:
        src = self._path(key)
        if not src.is_file():
            raise StorageError("object not found", where=str(src))
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_in(dest.parent, dest.name)
        try:
            with self._locked(src.parent):
                # Under the lock so the source cannot be replaced between copy and stat.
                _copy_fsync(src, tmp)
                gen = src.stat().st_mtime_ns
            got = digest_file(tmp)
            if expected_md5_b64 is not None and got["md5_b64"] != expected_md5_b64:
                raise StorageError(
                    f"checksum mismatch: downloaded md5 {got['md5_b64']}, expected "
                    f"{expected_md5_b64}", where=str(src))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return ObjectInfo(key, got["size"], got["md5_b64"], got["crc32c_b64"], gen, str(src))

    def read_versioned(self, key) -> tuple[bytes, ObjectInfo] | None:
        path = self._path(key)
        try:
            with self._locked(path.parent):
                data = path.read_bytes()
                gen = path.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            return None
        except IsADirectoryError:
            return None
        md5, crc = _digest_bytes(data)
        return data, ObjectInfo(key, len(data), md5, crc, gen, str(path))

    def write_bytes(self, key, data, *, if_generation_match=None, content_type=None,
                    cache_control=None) -> ObjectInfo:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StorageError(f"write_bytes needs bytes, got {type(data).__name__}", where=key)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_in(path.parent, path.name)
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            self._commit(tmp, path, if_generation_match=if_generation_match)
        finally:
            tmp.unlink(missing_ok=True)
        return self._info(key, path)

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        keys = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if TEMP_MARK not in d]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if TEMP_MARK in name:
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        path = self._path(key)
        if not path.parent.is_dir():
            return
        with self._locked(path.parent):
            path.unlink(missing_ok=True)


def _copy_fsync(src: Path, dest: Path) -> None:
    with open(src, "rb") as fin, open(dest, "xb") as fout:
        while piece := fin.read(4 << 20):
            fout.write(piece)
        fout.flush()
        os.fsync(fout.fileno())


def _check_expected(dig: dict, md5_b64: str | None, crc32c_b64: str | None, where: str) -> None:
    if md5_b64 is not None and dig["md5_b64"] != md5_b64:
        raise StorageError(
            f"checksum mismatch: file has md5 {dig['md5_b64']}, expected {md5_b64} "
            "(changed since it was digested?)", where=where)
    if crc32c_b64 is not None and dig["crc32c_b64"] != crc32c_b64:
        raise StorageError(
            f"checksum mismatch: file has crc32c {dig['crc32c_b64']}, expected {crc32c_b64} "
            "(changed since it was digested?)", where=where)


# --------------------------------------------------------------------------------------------
# Google Cloud Storage


_TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)


def _is_transient(exc: BaseException) -> bool:
    """429, 408, 5xx, timeouts and dropped connections are worth retrying; nothing else is.

    Mirrors the storage library's own classification (``google.cloud.storage.retry``), which
    is private; the media layer raises ``InvalidResponse`` rather than api_core errors.
    """
    import http.client

    import requests
    import urllib3
    from google.api_core import exceptions as gex
    from google.auth import exceptions as auth_exc
    from google.cloud.storage.exceptions import InvalidResponse

    if isinstance(exc, gex.GoogleAPICallError):
        return exc.code in _TRANSIENT_STATUS
    if isinstance(exc, InvalidResponse):
        return getattr(exc.response, "status_code", None) in _TRANSIENT_STATUS
    if isinstance(exc, auth_exc.TransportError):
        return bool(exc.args) and isinstance(exc.args[0], BaseException) and _is_transient(
            exc.args[0])
    return isinstance(exc, ConnectionError | TimeoutError | requests.ConnectionError
                      | requests.Timeout | requests.exceptions.ChunkedEncodingError
                      | http.client.BadStatusLine | http.client.IncompleteRead
                      | http.client.ResponseNotReady | urllib3.exceptions.PoolError
                      | urllib3.exceptions.ProtocolError | urllib3.exceptions.TimeoutError)


class GCSStorage(Storage):
    """``gs://bucket/prefix`` through google-cloud-storage.

    Parameters
    ----------
    bucket
        Bucket name.
    prefix
        Key prefix inside the bucket ("" for the bucket root), without trailing slash.
    anonymous
        Use an anonymous client (public reads only), even if credentials exist.
    client
        A ready ``google.cloud.storage.Client`` (tests); built from the environment if None.
    max_tries
        Attempts per request, transient failures included (>= 1).
    initial_backoff_s
        First retry delay; doubles each retry up to 16 s.
    timeout_s
        Per-request timeout.
    """

    def __init__(self, bucket: str, prefix: str = "", *, anonymous: bool = False, client=None,
                 max_tries: int = 6, initial_backoff_s: float = 0.5,
                 timeout_s: float = 120.0) -> None:
        if not bucket:
            raise StorageError("empty bucket name", where="gs://")
        if max_tries < 1:
            raise StorageError(f"max_tries must be >= 1, got {max_tries}")
        self.bucket_name = bucket
        self.prefix = prefix.strip("/")
        self.root_url = f"gs://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.max_tries = max_tries
        self.initial_backoff_s = initial_backoff_s
        self.timeout_s = timeout_s
        self.client = client if client is not None else _make_client(anonymous=anonymous)
        self.bucket = self.client.bucket(bucket)

    # -- helpers ------------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _gs(self, key: str) -> str:
        return f"gs://{self.bucket_name}/{self._name(key)}"

    def _retry(self):
        """A fresh bounded retry policy: at most ``max_tries`` attempts, exponential backoff."""
        from google.api_core.retry import Retry

        tries = [1]

        def predicate(exc: BaseException) -> bool:
            if not _is_transient(exc) or tries[0] >= self.max_tries:
                return False
            tries[0] += 1
            log.info("retrying GCS request after transient error (%s), attempt %d of %d",
                     type(exc).__name__, tries[0], self.max_tries)
            return True

        return Retry(predicate=predicate, initial=self.initial_backoff_s, maximum=16.0,
                     multiplier=2.0, timeout=None)

    @contextlib.contextmanager
    def _errors(self, key: str, what: str) -> Iterator[None]:
        """Every library error becomes a StorageError naming the object."""
        from google.api_core import exceptions as gex
        from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

        try:
            yield
        except StorageError:
            raise
        except gex.PreconditionFailed as exc:
            raise PreconditionFailed(f"{what}: precondition failed ({exc.code})",
                                     where=self._gs(key)) from exc
        except gex.NotFound as exc:
            raise StorageError(f"{what}: not found", where=self._gs(key)) from exc
        except gex.Forbidden as exc:
            raise StorageError(f"{what}: permission denied (credentials?)",
                               where=self._gs(key)) from exc
        except DataCorruption as exc:
            raise StorageError(f"{what}: checksum mismatch in transfer",
                               where=self._gs(key)) from exc
        except Exception as exc:  # api_core, requests, auth: all named, none swallowed
            if _is_transient(exc) or isinstance(exc, gex.GoogleAPIError | OSError
                                                | InvalidResponse):
                raise StorageError(f"{what}: {type(exc).__name__}: {exc}",
                                   where=self._gs(key)) from exc
            raise

    def _info(self, key: str, blob) -> ObjectInfo:
        return ObjectInfo(key, int(blob.size or 0), blob.md5_hash, blob.crc32c,
                          int(blob.generation) if blob.generation is not None else None,
                          self.url_for(key))

    # -- interface ----------------------------------------------------------------------------

    def url_for(self, key: str) -> str:
        return self.bucket.blob(self._name(key)).public_url

    def stat(self, key: str) -> ObjectInfo | None:
        with self._errors(key, "stat"):
            blob = self.bucket.get_blob(self._name(key), retry=self._retry(),
                                        timeout=self.timeout_s)
        return None if blob is None else self._info(key, blob)

    def put_file(self, local_path, key, *, md5_b64=None, crc32c_b64=None, if_absent=True,
                 content_type=None) -> ObjectInfo:
        src = Path(local_path)
        if not src.is_file():
            raise StorageError("local file not found", where=str(src))
        want = digest_file(src)
        _check_expected(want, md5_b64, crc32c_b64, str(src))
        if if_absent:
            existing = self.stat(key)
            if existing is not None:
                return self._same_or_raise(existing, want, key)
        size = want["size"]
        blob = self.bucket.blob(self._name(key),
                                chunk_size=RESUMABLE_THRESHOLD if size > RESUMABLE_THRESHOLD
                                else None)
        # Sent as object metadata: GCS rejects the upload if the bytes it got do not match.
        blob.md5_hash = want["md5_b64"]
        blob.crc32c = want["crc32c_b64"]
        try:
            with self._errors(key, "upload"):
                blob.upload_from_filename(
                    str(src), content_type=content_type or _guess_content_type(key),
                    if_generation_match=0 if if_absent else None, checksum="auto",
                    retry=self._retry(), timeout=self.timeout_s)
        except StorageError as exc:
            if if_absent and isinstance(exc, PreconditionFailed):
                # Someone (or our own retried request) created it meanwhile.
                existing = self.stat(key)
                if existing is not None:
                    return self._same_or_raise(existing, want, key)
            raise
        info = self._info(key, blob)
        if not _same_content(info, want["md5_b64"], want["crc32c_b64"]) or info.size != size:
            # Do not leave a corrupt object that if_absent would later refuse to replace.
            with contextlib.suppress(Exception):
                self.bucket.blob(self._name(key)).delete(
                    if_generation_match=info.generation, retry=self._retry())
            raise StorageError(
                f"checksum mismatch after upload: stored md5 {info.md5_b64} crc32c "
                f"{info.crc32c_b64} size {info.size}, local md5 {want['md5_b64']} crc32c "
                f"{want['crc32c_b64']} size {size} (file changed during upload?)",
                where=self._gs(key))
        return info

    def _same_or_raise(self, existing: ObjectInfo, want: dict, key: str) -> ObjectInfo:
        if _same_content(existing, want["md5_b64"], want["crc32c_b64"]):
            return existing
        raise StorageError(
            f"refusing to overwrite: object exists with md5 {existing.md5_b64}, local file has "
            f"md5 {want['md5_b64']}", where=self._gs(key))

    def get_file(self, key, local_path, *, expected_md5_b64=None) -> ObjectInfo:
        dest = Path(local_path)
        with self._errors(key, "download"):
            blob = self.bucket.get_blob(self._name(key), retry=self._retry(),
                                        timeout=self.timeout_s)
        if blob is None:
            raise StorageError("download: not found", where=self._gs(key))
        info = self._info(key, blob)
        if expected_md5_b64 is not None and info.md5_b64 not in (None, expected_md5_b64):
            raise StorageError(f"checksum mismatch: stored md5 {info.md5_b64}, expected "
                               f"{expected_md5_b64}", where=self._gs(key))
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.parent / f".{dest.name}{TEMP_MARK}{secrets.token_hex(6)}"
        try:
            with self._errors(key, "download"), open(tmp, "xb") as fh:
                # Pinned to the generation we stat'ed, so metadata and bytes belong together.
                blob.download_to_file(fh, if_generation_match=info.generation,
                                      checksum="md5" if info.md5_b64 else "crc32c",
                                      retry=self._retry(), timeout=self.timeout_s)
                fh.flush()
                os.fsync(fh.fileno())
            got = digest_file(tmp)
            if not _same_content(info, got["md5_b64"], got["crc32c_b64"]) or (
                    info.crc32c_b64 is not None and got["crc32c_b64"] != info.crc32c_b64):
                raise StorageError(f"checksum mismatch: downloaded md5 {got['md5_b64']}, stored "
                                   f"{info.md5_b64}", where=self._gs(key))
            if expected_md5_b64 is not None and got["md5_b64"] != expected_md5_b64:
                raise StorageError(f"checksum mismatch: downloaded md5 {got['md5_b64']}, "
                                   f"expected {expected_md5_b64}", where=self._gs(key))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def read_versioned(self, key) -> tuple[bytes, ObjectInfo] | None:
        from google.api_core import exceptions as gex

        for _ in range(self.max_tries):
            with self._errors(key, "read"):
                blob = self.bucket.get_blob(self._name(key), retry=self._retry(),
                                            timeout=self.timeout_s)
                if blob is None:
                    return None
                info = self._info(key, blob)
                try:
                    data = blob.download_as_bytes(
                        if_generation_match=info.generation,
                        checksum="md5" if info.md5_b64 else "crc32c",
                        retry=self._retry(), timeout=self.timeout_s)
                except (gex.PreconditionFailed, gex.NotFound):
                    continue  # replaced between stat and read: read the new one
            md5, crc = _digest_bytes(data)
            if not _same_content(info, md5, crc):
                raise StorageError(f"checksum mismatch: read md5 {md5}, stored {info.md5_b64}",
                                   where=self._gs(key))
            return data, info
        raise StorageError(f"read: object kept changing over {self.max_tries} tries",
                           where=self._gs(key))

    def write_bytes(self, key, data, *, if_generation_match=None, content_type=None,
                    cache_control=None) -> ObjectInfo:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise StorageError(f"write_bytes needs bytes, got {type(data).__name__}",
                               where=self._gs(key))
        data = bytes(data)
        md5, crc = _digest_bytes(data)
        blob = self.bucket.blob(self._name(key))
        blob.md5_hash = md5
        blob.crc32c = crc
        if cache_control is not None:
            blob.cache_control = cache_control
        with self._errors(key, "write"):
            blob.upload_from_string(data, content_type=content_type or _guess_content_type(key),
                                    if_generation_match=if_generation_match,
                                    retry=self._retry(), timeout=self.timeout_s)
        info = self._info(key, blob)
        if not _same_content(info, md5, crc):
            raise StorageError(f"checksum mismatch after write: stored md5 {info.md5_b64}, "
                               f"sent {md5}", where=self._gs(key))
        return info

    def list(self, prefix: str = "") -> list[str]:
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._errors(prefix or ".", "list"):
            blobs = self.client.list_blobs(self.bucket_name, prefix=full, retry=self._retry(),
                                           timeout=self.timeout_s)
            names = [b.name for b in blobs]
        if self.prefix:
            names = [n for n in names if n.startswith(self.prefix + "/")]
        return sorted(n[strip:] for n in names)

    def delete(self, key: str) -> None:
        from google.api_core import exceptions as gex

        with self._errors(key, "delete"), contextlib.suppress(gex.NotFound):
            self.bucket.blob(self._name(key)).delete(retry=self._retry(),
                                                     timeout=self.timeout_s)


def _make_client(*, anonymous: bool):
    """A storage client: from the environment's credentials, or anonymous."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # The library talks to the emulator without auth when given no credentials.
        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT", "test"),
                              credentials=AnonymousCredentials())
    if anonymous:
        return storage.Client.create_anonymous_client()
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        credentials, project = google.auth.default(
            scopes=["https://www.googleapis.com/auth/devstorage.read_write"])
    except DefaultCredentialsError:
        log.info("no Google credentials found; using anonymous read-only access")
        return storage.Client.create_anonymous_client()
    return storage.Client(project=project, credentials=credentials)


def open_storage(url: str | Path, *, anonymous: bool = False, **gcs_options) -> Storage:
    """Open ``/dir``, ``file:///dir`` or ``gs://bucket/prefix`` as a :class:`Storage`.

    Parameters
    ----------
    url
        Where the objects live. A local folder is created on first write.
    anonymous
        GCS only: read public data without credentials.
    **gcs_options
        Passed to :class:`GCSStorage` (``client``, ``max_tries``, ``initial_backoff_s``,
        ``timeout_s``).
    """
    if isinstance(url, Path):
        return LocalStorage(url)
    if not isinstance(url, str) or not url:
        raise StorageError(f"storage URL must be a non-empty string or Path, got {url!r}")
    if url.startswith("gs://"):
        rest = url[len("gs://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StorageError("gs:// URL without a bucket name", where=url)
        return GCSStorage(bucket, prefix, anonymous=anonymous, **gcs_options)
    if url.startswith("https://storage.googleapis.com/"):
        # The public URL form of a bucket: read it as gs:// anonymously.
        rest = urllib.parse.unquote(url[len("https://storage.googleapis.com/"):])
        bucket, _, prefix = rest.partition("/")
        return GCSStorage(bucket, prefix, anonymous=True, **gcs_options)
    if url.startswith("file://"):
        parsed = urllib.parse.urlparse(url)
        if parsed.netloc not in ("", "localhost"):
            raise StorageError("file:// URL with a remote host is not supported", where=url)
        return LocalStorage(urllib.parse.unquote(parsed.path))
    if "://" in url:
        raise StorageError("unsupported storage URL (use a folder, file:// or gs://)", where=url)
    return LocalStorage(url)


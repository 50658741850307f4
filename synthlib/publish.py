"""Publish finished dataset folders atomically, and read what was published.

A destination (a folder or ``gs://bucket/prefix``) holds::

    catalog.json                       every published dataset version (catalog.schema.json)
    index.html                         the same, as a page a person can browse
    <id>/<version>/manifest.json       the dataset's manifest (manifest.schema.json)
    <id>/<version>/<files...>          its data files

Publishing order, so that a crash at any point leaves ``catalog.json`` either old or new and
never naming a missing file: (1) refuse datasets whose QC did not pass; (2) if the catalog
already lists this id, version and spec hash, stop (nothing to do); (3) verify every local file
against the manifest; (4) upload the data files, never overwriting (an object already there with
the same md5 counts as uploaded, so a re-run picks up where a crash left off); (5) upload
``manifest.json``; (6) add the entry to ``catalog.json`` with a generation precondition,
re-reading and retrying when another publisher got there first; (7) regenerate ``index.html``
(it records which catalog it shows, so a later run mends an index a crash left stale). A
published (id, version) is immutable: its files and manifest are never replaced by different
content.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import random
import re
import time
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from .errors import CatalogError, QCError, StorageError
from .io.checksums import digest_file
from .io.storage import PreconditionFailed, Storage, open_storage

__all__ = [
    "MANIFEST_FORMAT",
    "CATALOG_FORMAT",
    "CATALOG_KEY",
    "INDEX_KEY",
    "PublishResult",
    "PublishedCatalog",
    "publish_dataset",
    "read_catalog",
    "open_published",
    "check_manifest",
    "render_index",
]

MANIFEST_FORMAT = "synthlib.manifest/1"
CATALOG_FORMAT = "synthlib.catalog/1"
CATALOG_KEY = "catalog.json"
INDEX_KEY = "index.html"
_MANIFEST_NAME = "manifest.json"

_ID_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_VERDICTS = ("pass", "fail", "not_run")
# Catalog writes are JSON the whole world may cache; tell caches to revalidate every time.
_NO_CACHE = "no-cache, max-age=0"


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_dataset` did.

    ``status`` is ``"published"`` (the catalog now lists the dataset) or ``"skipped"`` (the
    catalog already listed this id, version and spec hash; nothing was written).
    """

    id: str
    version: str
    status: Literal["published", "skipped"]
    dest: str
    uploaded: tuple[str, ...] = ()
    """Keys written by this call (data files, then the manifest)."""
    already_present: tuple[str, ...] = ()
    """Keys found already uploaded with the right md5 (e.g. by a crashed earlier run)."""
    manifest_url: str = ""
    catalog_url: str = ""
    index_url: str = ""
    catalog_attempts: int = 0
    """Read-modify-write rounds on catalog.json (more than 1: lost a race and retried)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------
# manifest


def check_manifest(manifest: Any, *, where: str = _MANIFEST_NAME) -> dict:
    """Check the parts of a manifest that publishing relies on; return it.

    The full contract is ``synthlib/data/schemas/manifest.schema.json``; this check is the same
    for every field publishing reads (format, id, version, hash, seed, qc, files) and needs no
    JSON Schema library at run time.
    """
    def bad(field: str, msg: str) -> CatalogError:
        return CatalogError(msg, where=f"{where}/{field}")

    if not isinstance(manifest, dict):
        raise CatalogError("manifest must be a JSON object", where=where)
    missing = [k for k in ("format", "id", "version", "spec_hash", "seed", "spec", "software",
                           "created", "qc", "files") if k not in manifest]
    if missing:
        raise CatalogError(f"manifest lacks {', '.join(missing)}", where=where)
    if manifest["format"] != MANIFEST_FORMAT:
        raise bad("format", f"unsupported manifest format {manifest['format']!r} "
                  f"(this synthlib reads {MANIFEST_FORMAT})")
    if not isinstance(manifest["id"], str) or not _ID_RE.match(manifest["id"]):
        raise bad("id", f"invalid dataset id {manifest['id']!r}")
    if not isinstance(manifest["version"], str) or not _VERSION_RE.match(manifest["version"]):
        raise bad("version", f"invalid version {manifest['version']!r} (need X.Y.Z)")
    if not isinstance(manifest["spec_hash"], str) or not _HEX64.match(manifest["spec_hash"]):
        raise bad("spec_hash", "spec_hash must be 64 lowercase hex digits")
    if not isinstance(manifest["seed"], int) or isinstance(manifest["seed"], bool) or \
            manifest["seed"] < 0:
        raise bad("seed", f"seed must be a non-negative integer, got {manifest['seed']!r}")
    for name in ("spec", "software"):
        if not isinstance(manifest[name], dict):
            raise bad(name, f"{name} must be an object")
    qc = manifest["qc"]
    if not isinstance(qc, dict) or qc.get("verdict") not in _VERDICTS or \
            not isinstance(qc.get("metrics"), dict):
        raise bad("qc", f"qc must be {{verdict: one of {_VERDICTS}, metrics: object}}")
    files = manifest["files"]
    if not isinstance(files, list) or not files:
        raise bad("files", "files must be a non-empty list")
    seen = set()
    for i, entry in enumerate(files):
        fw = f"files[{i}]"
        if not isinstance(entry, dict):
            raise bad(fw, "file entry must be an object")
        for k in ("path", "size", "md5", "md5_b64", "crc32c_b64"):
            if k not in entry:
                raise bad(fw, f"file entry lacks {k}")
        path = entry["path"]
        parts = path.split("/") if isinstance(path, str) else [""]
        if (not isinstance(path, str) or path.startswith("/") or "\\" in path
                or any(p in ("", ".", "..") for p in parts) or path == _MANIFEST_NAME):
            raise bad(fw, f"invalid file path {path!r} (relative, no '..', not manifest.json)")
        if path in seen:
            raise bad(fw, f"file {path!r} listed twice")
        seen.add(path)
        if not isinstance(entry["size"], int) or entry["size"] < 0:
            raise bad(fw, "size must be a non-negative integer")
        if not isinstance(entry["md5"], str) or not _HEX32.match(entry["md5"]):
            raise bad(fw, "md5 must be 32 lowercase hex digits")
    return manifest


def _load_manifest(dataset_dir: Path) -> dict:
    path = dataset_dir / _MANIFEST_NAME
    if not path.is_file():
        raise CatalogError("no manifest.json: not a finished dataset folder", where=str(path))
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"manifest is not valid JSON: {exc}", where=str(path)) from exc
    return check_manifest(manifest, where=str(path))


def _verify_local(dataset_dir: Path, manifest: dict) -> None:
    """Every listed file exists with the listed size and checksums."""
    for entry in manifest["files"]:
        path = dataset_dir.joinpath(*entry["path"].split("/"))
        if not path.is_file():
            raise StorageError("file listed in manifest is missing", where=str(path))
        if path.stat().st_size != entry["size"]:
            raise StorageError(f"size {path.stat().st_size} differs from manifest "
                               f"({entry['size']})", where=str(path))
        dig = digest_file(path)
        for field in ("md5", "md5_b64", "crc32c_b64"):
            if dig[field] != entry[field]:
                raise StorageError(f"checksum mismatch: {field} is {dig[field]}, manifest says "
                                   f"{entry[field]}", where=str(path))


# --------------------------------------------------------------------------------------------
# catalog


def _empty_catalog() -> dict:
    return {"format": CATALOG_FORMAT, "updated": _now(), "datasets": []}


def _parse_catalog(data: bytes, where: str) -> dict:
    try:
        catalog = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CatalogError(f"catalog is not valid JSON: {exc}", where=where) from exc
    if not isinstance(catalog, dict) or not isinstance(catalog.get("datasets"), list):
        raise CatalogError("catalog must be an object with a 'datasets' list", where=where)
    fmt = catalog.get("format")
    if fmt != CATALOG_FORMAT:
        raise CatalogError(f"unsupported catalog format {fmt!r} (this synthlib reads "
                           f"{CATALOG_FORMAT})", where=where)
    return catalog


def _catalog_entry(manifest: dict, st: Storage, prefix: str) -> dict:
    spec = manifest["spec"]
    return {
        "id": manifest["id"],
        "version": manifest["version"],
        "title": str(spec.get("title", "")) if isinstance(spec, dict) else "",
        "spec": spec,
        "spec_hash": manifest["spec_hash"],
        "seed": manifest["seed"],
        "software": {str(k): str(v) for k, v in manifest["software"].items()},
        "qc": {"verdict": manifest["qc"]["verdict"], "metrics": manifest["qc"]["metrics"]},
        "files": [
            {"path": f["path"], "size": f["size"], "md5": f["md5"], "crc32c": f["crc32c_b64"],
             "url": st.url_for(f"{prefix}/{f['path']}")}
            for f in manifest["files"]
        ],
        "created": manifest["created"],
        "published": _now(),
        "manifest_url": st.url_for(f"{prefix}/{_MANIFEST_NAME}"),
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) for x in version.split("."))


def _find(catalog: dict, ds_id: str, version: str) -> dict | None:
    for entry in catalog["datasets"]:
        if entry.get("id") == ds_id and entry.get("version") == version:
            return entry
    return None


def _same_or_conflict(existing: dict, manifest: dict, where: str) -> None:
    if existing.get("spec_hash") != manifest["spec_hash"]:
        raise CatalogError(
            f"{manifest['id']} {manifest['version']} is already published from a different spec "
            f"(spec_hash {str(existing.get('spec_hash'))[:12]}..., this one "
            f"{manifest['spec_hash'][:12]}...); published versions never change: bump the "
            "version", where=where)


# --------------------------------------------------------------------------------------------
# publishing


def publish_dataset(
    *,
    dataset_dir: str | Path,
    dest: str | Path | Storage,
    require_qc_pass: bool = True,
    catalog_tries: int = 8,
) -> PublishResult:
    """Publish a finished dataset folder to a folder or ``gs://bucket/prefix``.

    Parameters
    ----------
    dataset_dir
        ``<root>/<id>/<version>/`` holding ``manifest.json`` and the files it lists.
    dest
        Destination URL or folder, or an open :class:`~synthlib.io.storage.Storage`.
    require_qc_pass
        Refuse datasets whose QC verdict is not ``"pass"`` (raises :class:`QCError`).
    catalog_tries
        Read-modify-write rounds on ``catalog.json`` before giving up when other publishers
        keep winning the race.

    Returns
    -------
    PublishResult
        ``status="skipped"`` when the catalog already lists this id, version and spec hash.

    Raises
    ------
    QCError
        QC did not pass and ``require_qc_pass``.
    CatalogError
        The manifest is malformed, or this (id, version) is published from a different spec.
    StorageError
        A local file does not match the manifest, an object exists with different content,
        or the backend failed.
    """
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.is_dir():
        raise StorageError("dataset folder not found", where=str(dataset_dir))
    if catalog_tries < 1:
        raise CatalogError(f"catalog_tries must be >= 1, got {catalog_tries}")
    manifest = _load_manifest(dataset_dir)
    ds_id, version = manifest["id"], manifest["version"]
    verdict = manifest["qc"]["verdict"]
    if require_qc_pass and verdict != "pass":
        raise QCError(f"refusing to publish {ds_id} {version}: QC verdict is {verdict!r}, not "
                      "'pass' (pass require_qc_pass=False to publish anyway)",
                      where=str(dataset_dir / _MANIFEST_NAME))
    st = dest if isinstance(dest, Storage) else open_storage(dest)
    catalog_url = st.url_for(CATALOG_KEY)
    prefix = f"{ds_id}/{version}"

    # Already listed: nothing to do. Checked before hashing local files, which can be large.
    current = st.read_versioned(CATALOG_KEY)
    if current is not None:
        existing = _find(_parse_catalog(current[0], catalog_url), ds_id, version)
        if existing is not None:
            _same_or_conflict(existing, manifest, catalog_url)
            # A crash between the catalog and the index leaves the index behind; mend it.
            _write_index(st, None, only_if_stale=True)
            return PublishResult(ds_id, version, "skipped", st.root_url,
                                 manifest_url=st.url_for(f"{prefix}/{_MANIFEST_NAME}"),
                                 catalog_url=catalog_url, index_url=st.url_for(INDEX_KEY))

    _verify_local(dataset_dir, manifest)

    uploaded: list[str] = []
    present: list[str] = []
    items = [(f["path"], f["md5_b64"], f["crc32c_b64"]) for f in manifest["files"]]
    mdig = digest_file(dataset_dir / _MANIFEST_NAME)
    # The manifest goes last: its presence means every file it lists is there.
    items.append((_MANIFEST_NAME, mdig["md5_b64"], mdig["crc32c_b64"]))
    for rel, md5_b64, crc_b64 in items:
        key = f"{prefix}/{rel}"
        info = st.stat(key)
        if info is not None and info.md5_b64 == md5_b64:
            present.append(key)
            continue
        if info is not None:
            raise StorageError(f"already published with different content (md5 "
                               f"{info.md5_b64}, local {md5_b64}); published versions never "
                               "change: bump the version", where=st.url_for(key))
        st.put_file(dataset_dir.joinpath(*rel.split("/")), key, md5_b64=md5_b64,
                    crc32c_b64=crc_b64, if_absent=True)
        uploaded.append(key)

    entry = _catalog_entry(manifest, st, prefix)
    catalog, attempts = _add_to_catalog(st, entry, manifest, catalog_tries)
    _write_index(st, catalog)
    return PublishResult(ds_id, version, "published", st.root_url, tuple(uploaded),
                         tuple(present), entry["manifest_url"], catalog_url,
                         st.url_for(INDEX_KEY), attempts)


def _add_to_catalog(st: Storage, entry: dict, manifest: dict, tries: int) -> tuple[dict, int]:
    """Optimistic concurrency: read with generation, modify, write if still that generation."""
    catalog_url = st.url_for(CATALOG_KEY)
    for attempt in range(1, tries + 1):
        current = st.read_versioned(CATALOG_KEY)
        if current is None:
            catalog, generation = _empty_catalog(), 0
        else:
            catalog = _parse_catalog(current[0], catalog_url)
            generation = current[1].generation or 0
        existing = _find(catalog, entry["id"], entry["version"])
        if existing is not None:
            # Another publisher of the same dataset finished first: same spec, same result.
            _same_or_conflict(existing, manifest, catalog_url)
            return catalog, attempt
        datasets = [*catalog["datasets"], entry]
        datasets.sort(key=lambda d: (d["id"], _version_key(d["version"])))
        new = {"format": CATALOG_FORMAT, "updated": _now(), "datasets": datasets}
        data = (json.dumps(new, indent=1, sort_keys=False) + "\n").encode()
        try:
            st.write_bytes(CATALOG_KEY, data, if_generation_match=generation,
                           content_type="application/json", cache_control=_NO_CACHE)
            return new, attempt
        except PreconditionFailed:
            # Lost the race; back off a little (with jitter so racers spread out) and redo.
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * random.uniform(0.5, 1.0))
    raise CatalogError(f"catalog kept changing under us; gave up after {tries} tries",
                       where=catalog_url)


def _write_index(st: Storage, catalog: dict | None, *, rounds: int = 3,
                 only_if_stale: bool = False) -> None:
    """Render index.html from the current catalog; redo if the catalog moved on meanwhile.

    The index is derived data: it records the digest of the catalog it shows, so a run that
    finds it stale (a crash between the catalog write and this) rewrites it.
    """
    for _ in range(rounds):
        before = st.read_versioned(CATALOG_KEY)
        if before is not None:
            catalog = _parse_catalog(before[0], st.url_for(CATALOG_KEY))
        if catalog is None:
            return
        page = render_index(catalog=catalog)
        if only_if_stale:
            current = st.read_versioned(INDEX_KEY)
            if current is not None and _index_marker(catalog) in current[0].decode(
                    errors="replace"):
                return
        st.write_bytes(INDEX_KEY, page.encode(), content_type="text/html; charset=utf-8",
                       cache_control=_NO_CACHE)
        after = st.stat(CATALOG_KEY)
        if before is None or after is None or after.generation == before[1].generation:
            return


def _index_marker(catalog: dict) -> str:
    digest = hashlib.sha256(json.dumps(catalog, sort_keys=True).encode()).hexdigest()
    return f'<meta name="synthlib-catalog-sha256" content="{digest}">'


# --------------------------------------------------------------------------------------------
# index.html


def _fmt_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _fmt_metric(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))[:120]
    return str(value)


def _href(ds: dict, path: str) -> str:
    # Relative links: the page works wherever the destination is served from.
    parts = [ds["id"], ds["version"], *path.split("/")]
    return "/".join(urllib.parse.quote(p, safe="") for p in parts)


def render_index(*, catalog: dict) -> str:
    """A static HTML page listing the catalog (every value html-escaped)."""
    esc = html.escape
    rows = []
    for ds in catalog.get("datasets", []):
        verdict = ds.get("qc", {}).get("verdict", "not_run")
        metrics = ds.get("qc", {}).get("metrics", {}) or {}
        metric_html = "".join(
            f"<li><code>{esc(str(k))}</code>: {esc(_fmt_metric(v))}</li>"
            for k, v in metrics.items()) or "<li>none</li>"
        files_html = "".join(
            f'<li><a href="{esc(_href(ds, f["path"]))}">{esc(f["path"])}</a> '
            f'<span class="dim" title="md5 {esc(str(f.get("md5", "")))}">'
            f'{esc(_fmt_size(int(f.get("size", 0))))}</span></li>'
            for f in ds.get("files", []))
        total = sum(int(f.get("size", 0)) for f in ds.get("files", []))
        rows.append(
            "<tr>"
            f'<td><b>{esc(ds["id"])}</b><br><span class="dim">{esc(ds.get("title", ""))}</span>'
            "</td>"
            f"<td>{esc(ds['version'])}</td>"
            f'<td class="v-{esc(verdict)}">{esc(verdict)}</td>'
            f"<td><ul>{metric_html}</ul></td>"
            f"<td><ul>{files_html}</ul>"
            f'<a href="{esc(_href(ds, _MANIFEST_NAME))}">manifest.json</a> '
            f'<span class="dim">(md5 of each file; {esc(_fmt_size(total))} in all)</span></td>'
            f'<td><code title="{esc(ds.get("spec_hash", ""))}">'
            f'{esc(ds.get("spec_hash", "")[:12])}</code><br>seed {esc(str(ds.get("seed", "")))}'
            f'<br><span class="dim">created {esc(str(ds.get("created", "")))}</span></td>'
            "</tr>")
    body = "\n".join(rows) or '<tr><td colspan="6">No datasets published yet.</td></tr>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{_index_marker(catalog)}
<title>Synthetic sequencing datasets</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ border: 1px solid #ccc; padding: .4em .6em; vertical-align: top; text-align: left; }}
th {{ background: #f3f3f3; }}
ul {{ margin: 0; padding-left: 1.2em; }}
.dim {{ color: #666; font-size: .9em; }}
.v-pass {{ color: #176f2c; font-weight: bold; }}
.v-fail {{ color: #b00020; font-weight: bold; }}
.v-not_run {{ color: #8a6d00; font-weight: bold; }}
</style>
</head>
<body>
<h1>Synthetic sequencing datasets</h1>
<p class="dim">Catalog updated {esc(str(catalog.get("updated", "")))} &middot;
machine-readable: <a href="{CATALOG_KEY}">{CATALOG_KEY}</a> ({esc(CATALOG_FORMAT)})</p>
<table>
<thead><tr><th>Dataset</th><th>Version</th><th>QC</th><th>Headline metrics</th><th>Files</th>
<th>Spec</th></tr></thead>
<tbody>
{body}
</tbody>
</table>
</body>
</html>
"""


# --------------------------------------------------------------------------------------------
# reading


def _open_root(url: str | Path | Storage, *, anonymous: bool) -> Storage:
    """A destination root from ``root``, ``root/catalog.json`` or an open Storage."""
    if isinstance(url, Storage):
        return url
    text = str(url).rstrip("/")
    if text == CATALOG_KEY:
        text = "."
    elif text.endswith("/" + CATALOG_KEY):
        text = text[: -len(CATALOG_KEY) - 1] or "/"
    return open_storage(Path(text) if isinstance(url, Path) else text, anonymous=anonymous)


def _read_catalog_from(st: Storage) -> dict:
    got = st.read_versioned(CATALOG_KEY)
    if got is None:
        return _empty_catalog()
    return _parse_catalog(got[0], st.url_for(CATALOG_KEY))


def read_catalog(url: str | Path | Storage, *, anonymous: bool = False) -> dict:
    """The ``catalog.json`` at ``url`` (a destination root, its catalog.json, or a Storage).

    An empty destination reads as an empty catalog. ``anonymous=True`` reads a public bucket
    without credentials (without it, anonymous access is still the fallback when no
    credentials are found).
    """
    return _read_catalog_from(_open_root(url, anonymous=anonymous))


class PublishedCatalog:
    """A published destination, read through its ``catalog.json``.

    Attributes
    ----------
    url
        The destination root.
    catalog
        The parsed catalog (``synthlib.catalog/1``).
    datasets
        ``catalog["datasets"]``: one dict per published (id, version).
    """

    def __init__(self, storage: Storage, catalog: dict) -> None:
        self.storage = storage
        self.url = storage.root_url
        self.catalog = catalog
        self.datasets: list[dict] = list(catalog["datasets"])

    def ls(self) -> list[dict]:
        """One summary row per dataset version: id, version, title, verdict, files, bytes."""
        return [
            {"id": d["id"], "version": d["version"], "title": d.get("title", ""),
             "verdict": d["qc"]["verdict"], "files": len(d["files"]),
             "bytes": sum(int(f["size"]) for f in d["files"])}
            for d in self.datasets
        ]

    def entry(self, id: str, version: str | None = None) -> dict:
        """The catalog entry of ``id`` at ``version`` (None: the highest version)."""
        matches = [d for d in self.datasets if d["id"] == id]
        if not matches:
            known = ", ".join(sorted({d["id"] for d in self.datasets})) or "none"
            raise CatalogError(f"no dataset {id!r} published (known: {known})", where=self.url)
        if version is None:
            return max(matches, key=lambda d: _version_key(d["version"]))
        for d in matches:
            if d["version"] == version:
                return d
        have = ", ".join(d["version"] for d in matches)
        raise CatalogError(f"{id} has no version {version} (published: {have})",
                           where=self.url)

    def get(self, id: str, version: str | None = None, *,
            to: str | Path | None = None) -> Path:
        """Download a dataset version, verifying every file's size, md5 and crc32c.

        Files land in ``<to>/<id>/<version>/`` (``to`` defaults to the current folder),
        alongside its ``manifest.json``; files already there with the right md5 are kept.
        Returns that folder.
        """
        ds = self.entry(id, version)
        out = Path(to if to is not None else ".") / ds["id"] / ds["version"]
        prefix = f"{ds['id']}/{ds['version']}"
        for f in ds["files"]:
            dest = out.joinpath(*f["path"].split("/"))
            md5_b64 = base64.b64encode(bytes.fromhex(f["md5"])).decode()
            if dest.is_file():
                dig = digest_file(dest)
                if dig["md5"] == f["md5"] and dig["crc32c_b64"] == f["crc32c"]:
                    continue
            self.storage.get_file(f"{prefix}/{f['path']}", dest, expected_md5_b64=md5_b64)
            dig = digest_file(dest)
            if (dig["size"], dig["md5"], dig["crc32c_b64"]) != (f["size"], f["md5"],
                                                                f["crc32c"]):
                dest.unlink(missing_ok=True)
                raise StorageError(
                    f"downloaded file does not match the catalog: size {dig['size']} md5 "
                    f"{dig['md5']} crc32c {dig['crc32c_b64']}, catalog says {f['size']} "
                    f"{f['md5']} {f['crc32c']}", where=self.storage.url_for(f"{prefix}/"
                                                                            f"{f['path']}"))
        self.storage.get_file(f"{prefix}/{_MANIFEST_NAME}", out / _MANIFEST_NAME)
        return out


def open_published(url: str | Path | Storage, *, anonymous: bool = False) -> PublishedCatalog:
    """Open a published destination (its root, its ``catalog.json``, or a Storage).

    Returns a :class:`PublishedCatalog` for listing (``.ls()``, ``.datasets``) and verified
    download (``.get(id, version, to=...)``).
    """
    st = _open_root(url, anonymous=anonymous)
    return PublishedCatalog(st, _read_catalog_from(st))

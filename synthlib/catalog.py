"""The catalog: dataset specs kept as YAML files, one per entry, with a registry over them.

Entries are data. The catalog folder is ``$SYNTH_CATALOG_DIR`` or the project's ``catalog/``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import CatalogError, SynthError
from .spec import DatasetSpec, load_spec

__all__ = [
    "CatalogEntry",
    "catalog_dir",
    "entries",
    "get_entry",
    "resolve_spec",
    "validate_all",
    "open_published",
    "read_catalog",
]


def catalog_dir() -> Path:
    """Where the catalog's YAML files are."""
    env = os.environ.get("SYNTH_CATALOG_DIR")
    return Path(env) if env else Path(__file__).resolve().parent.parent / "catalog"


@dataclass(frozen=True)
class CatalogEntry:
    """A validated catalog spec and the file it came from."""

    spec: DatasetSpec
    path: Path

    @property
    def id(self) -> str:
        return self.spec.id


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.yaml") if not p.name.startswith("_"))


def entries(*, folder: Path | None = None) -> list[CatalogEntry]:
    """Every entry, sorted by (priority, id). Raises on the first invalid file."""
    folder = folder or catalog_dir()
    out = []
    for path in _files(folder):
        spec = load_spec(path)
        if spec.id != path.stem:
            raise CatalogError(f"id {spec.id!r} differs from the file name", where=str(path))
        out.append(CatalogEntry(spec, path))
    return sorted(out, key=lambda e: (e.spec.priority, e.id))


def validate_all(*, folder: Path | None = None) -> tuple[list[CatalogEntry], list[SynthError]]:
    """Validate every file; return the good entries and one error per bad file."""
    folder = folder or catalog_dir()
    good, bad = [], []
    for path in _files(folder):
        try:
            spec = load_spec(path)
            if spec.id != path.stem:
                raise CatalogError(f"id {spec.id!r} differs from the file name", where=str(path))
            good.append(CatalogEntry(spec, path))
        except SynthError as exc:
            bad.append(exc)
    return good, bad


def get_entry(entry_id: str, *, folder: Path | None = None) -> CatalogEntry:
    """The entry with this id; an unknown id lists the ids that exist."""
    folder = folder or catalog_dir()
    path = folder / f"{entry_id}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in _files(folder)) or "(none)"
        raise CatalogError(f"no catalog entry {entry_id!r}; known ids: {known}")
    return CatalogEntry(load_spec(path), path)


def resolve_spec(ref: str) -> tuple[DatasetSpec, Path]:
    """A catalog id or a path to a YAML spec -> (spec, folder its relative paths start from)."""
    path = Path(ref)
    if ref.endswith((".yaml", ".yml")) or path.exists():
        return load_spec(path), path.resolve().parent
    entry = get_entry(ref)
    return entry.spec, entry.path.parent


def open_published(url: str, *, anonymous: bool = False):
    """The catalog published at ``url`` (local folder or ``gs://bucket/prefix``).

    Returns a :class:`synthlib.publish.PublishedCatalog`: ``.datasets``, ``.ls()`` and
    ``.get(id, version=None, to=DIR)`` (downloads and verifies every checksum).
    """
    from .publish import open_published as _open

    return _open(url, anonymous=anonymous)


def read_catalog(url: str, *, anonymous: bool = False) -> dict:
    """``catalog.json`` published at ``url``, as a dict."""
    from .publish import read_catalog as _read

    return _read(url, anonymous=anonymous)

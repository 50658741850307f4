"""``synth catalog build|ls|get|cost`` and the ``synth run --dest URL`` hook.

The lead mounts these on the existing ``catalog`` sub-app with :func:`register`::

    from .cli_publish import register as register_publish
    register_publish(catalog_app)

and, in ``synth run``, calls :func:`run_to_url` when ``--dest`` contains ``://``. Prefect and
Dask are imported only inside the commands (synthlib itself never imports them).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from .display import human_bytes

__all__ = ["app", "register", "catalog_build", "catalog_ls", "catalog_get", "catalog_cost",
           "run_to_url", "build_table"]

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)

app = typer.Typer(no_args_is_help=True, help="Build, list and fetch published catalogs.")




def build_table(rows: list[dict]) -> Table:
    """The rows returned by the build-catalog flow, as a table."""
    table = Table("id", "version", "status", "units run", "units cached", "uploaded", "note")
    for r in rows:
        colour = {"published": "green", "skipped": "dim", "qc_failed": "red",
                  "failed": "red", "stale": "yellow"}.get(r["status"], "")
        note = r.get("error") or r.get("message") or r.get("manifest_url") or ""
        table.add_row(r["id"], r["version"], f"[{colour}]{r['status']}[/]",
                      str(r.get("units_run", 0)), str(r.get("units_cached", 0)),
                      str(r.get("uploaded", 0)), note)
    return table


@app.command("build")
def catalog_build(
    dest: Annotated[str, typer.Option(help="gs://bucket/prefix or a local folder.")],
    max_priority: Annotated[int, typer.Option(min=1, max=5, help="Build priorities <= N.")] = 2,
    workers: Annotated[int, typer.Option(min=1, help="Local Dask worker processes.")] = 2,
    only: Annotated[list[str] | None, typer.Option(
        help="Build exactly these entry ids (repeatable).")] = None,
    full_scale: Annotated[bool, typer.Option(
        "--full-scale", help="Full-scale entries (cloud data) instead of the demo ones.")] = False,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of an existing Dask scheduler.")] = None,
    work_dir: Annotated[str | None, typer.Option(
        help="Persistent work folder (default $SYNTH_WORK_DIR or the cache).")] = None,
) -> None:
    """Generate, QC and publish catalog entries not yet at DEST (resumes interrupted builds)."""
    from flows.build_catalog import run_build_catalog

    rows = run_build_catalog(max_priority=max_priority, dest=dest, workers=workers,
                             only=only or None, demo_only=not full_scale, work_dir=work_dir,
                             address=scheduler)
    out.print(build_table(rows))
    if any(r["status"] in ("failed", "qc_failed", "stale") for r in rows):
        raise typer.Exit(2)


@app.command("ls")
def catalog_ls(
    url: Annotated[str, typer.Argument(help="A published destination (gs://... or folder).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """List the datasets published at URL."""
    from .publish import open_published

    rows = open_published(url).ls()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    table = Table("id", "version", "QC", "files", "size", "title")
    for r in rows:
        table.add_row(r["id"], r["version"], r["verdict"], str(r["files"]),
                      human_bytes(r["bytes"]), r["title"])
    out.print(table)


@app.command("get")
def catalog_get(
    url: Annotated[str, typer.Argument(help="A published destination (gs://... or folder).")],
    dataset: Annotated[str, typer.Argument(help="Dataset id.")],
    to: Annotated[Path, typer.Option(help="Download into TO/<id>/<version>/.")] = Path("."),
    version: Annotated[str | None, typer.Option(help="Version (default: the newest).")] = None,
) -> None:
    """Download a published dataset, verifying every file's size, md5 and crc32c."""
    from .publish import open_published

    folder = open_published(url).get(dataset, version, to=to)
    typer.echo(str(folder))


@app.command("cost")
def catalog_cost(
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """CPU-hours, output size and cloud cost of every entry (assumptions: synthlib.cost)."""
    from .cost import plan_rows, render_plan_table

    rows = plan_rows()
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        out.print(render_plan_table(rows))


def register(catalog_app: typer.Typer) -> None:
    """Add ``build``, ``ls``, ``get`` and ``cost`` to an existing ``catalog`` Typer app."""
    for name, fn in (("build", catalog_build), ("ls", catalog_ls), ("get", catalog_get),
                     ("cost", catalog_cost)):
        catalog_app.command(name)(fn)


def run_to_url(spec: str, dest: str, workers: int = 2, address: str | None = None) -> str:
    """``synth run SPEC --dest URL``: generate, QC and publish; returns the manifest URL.

    Raises QCError when QC fails (nothing is published) and CatalogError when the destination
    already holds this (id, version) from another spec or synthlib version.
    """
    from flows.publish import run_to_url as _run

    return _run(spec, dest, workers, address)

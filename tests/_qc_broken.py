"""Helpers that break a generated dataset in one known way, for QC gate tests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pysam
from isal import igzip

__all__ = ["copy_dataset", "drop_pairs", "golden_names"]


def copy_dataset(src: Path, dst: Path) -> Path:
    """Copy a dataset folder without its ``qc/`` (and drop qc files from the manifest)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("qc"))
    manifest = json.loads((dst / "manifest.json").read_text())
    manifest["files"] = [f for f in manifest["files"] if not f["path"].startswith("qc/")]
    manifest["qc"] = {"verdict": "not_run", "metrics": {}}
    (dst / "manifest.json").write_text(json.dumps(manifest))
    return dst


def golden_names(bam: Path, keep: Callable[[pysam.AlignedSegment], bool]) -> set[str]:
    """Names of pairs with a primary read of the golden BAM for which ``keep(read)``."""
    out = set()
    with pysam.AlignmentFile(str(bam)) as fh:
        for r in fh.fetch(until_eof=True):
            if not r.flag & 0x900 and keep(r):
                out.add(r.query_name)
    return out


def drop_pairs(dataset: Path, names: set[str]) -> int:
    """Remove the pairs named ``names`` from both FASTQs in place; returns pairs removed."""
    removed = 0
    for mate in ("R1", "R2"):
        path = dataset / f"reads_{mate}.fastq.gz"
        with igzip.open(path, "rb") as fh:
            lines = fh.read().split(b"\n")
        out = []
        for i in range(0, len(lines) - 3, 4):
            if lines[i][1:].split(b" ")[0].split(b"/")[0].decode() in names:
                removed += mate == "R1"
                continue
            out += lines[i:i + 4]
        with igzip.open(path, "wb", compresslevel=0) as fh:
            fh.write(b"\n".join(out) + b"\n")
    return removed

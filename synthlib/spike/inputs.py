"""Where the spike inputs come from and what the output format is.

Remote inputs (``https://``, ``http://``, ``gs://``, ``file://``) are downloaded into a
scratch folder first with :func:`synthlib.fetch.fetch` (an index next to them is used when
the server has one, else one is built). A CRAM input is decoded to a temporary BAM with its
reference: the block-splicing path works on BGZF-compressed BAM records, and CRAM slices are
not BGZF. A CRAM output is a full re-encode of the spliced BAM (``samtools view -C``), so
there "byte-identical records" holds for the decoded records, not for the file's bytes.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path

import pysam

from ..errors import ReferenceDataError
from ..fetch import fetch

__all__ = ["REMOTE_SCHEMES", "is_remote", "localize", "open_input", "alignment_format",
           "to_bam", "to_cram"]

REMOTE_SCHEMES = ("http", "https", "gs", "file")


def is_remote(path: str | os.PathLike) -> bool:
    """True for a URL with a scheme :func:`localize` downloads."""
    return urllib.parse.urlsplit(str(path)).scheme in REMOTE_SCHEMES


def alignment_format(path: str | os.PathLike) -> str:
    """``"cram"`` or ``"bam"`` from the file name (``.cram`` / anything else)."""
    name = urllib.parse.urlsplit(str(path)).path if is_remote(path) else str(path)
    return "cram" if name.lower().endswith(".cram") else "bam"


def localize(path: str | os.PathLike, *, scratch: Path, indexes: tuple[str, ...] = ()) -> Path:
    """A local path for ``path``: itself, or a download of the URL into ``scratch``.

    Each suffix of ``indexes`` is fetched too when the server has it (missing: skipped).
    """
    if not is_remote(path):
        return Path(path)
    url = str(path)
    cache = scratch / "download"
    local = fetch(url, cache=cache)
    for suffix in indexes:
        try:
            got = fetch(url + suffix, cache=cache, dest_name=local.name + suffix)
        except ReferenceDataError:
            continue
        target = local.with_name(local.name + suffix)
        if got != target:
            os.replace(got, target)
    return local


def to_bam(cram: Path, *, reference: Path, out: Path) -> Path:
    """Decode ``cram`` into an indexed BAM at ``out``."""
    try:
        pysam.samtools.view("-b", "-T", str(reference), "-o", str(out), str(cram),
                            catch_stdout=False)
    except pysam.SamtoolsError as exc:
        raise ReferenceDataError(f"cannot decode CRAM: {exc}", where=str(cram)) from exc
    pysam.samtools.index(str(out))
    return out


def to_cram(bam: Path, *, reference: Path, out: Path) -> Path:
    """Encode ``bam`` as CRAM at ``out`` (with ``out + '.crai'``)."""
    pysam.samtools.view("-C", "-T", str(reference), "-o", str(out), str(bam),
                        catch_stdout=False)
    pysam.samtools.index(str(out), f"{out}.crai")
    return out


def open_input(bam: str | os.PathLike, *, reference: Path, scratch: Path) -> Path:
    """A local, BGZF BAM holding the records of ``bam`` (local or remote, BAM or CRAM)."""
    fmt = alignment_format(bam)
    local = localize(bam, scratch=scratch, indexes=(".crai",) if fmt == "cram" else (".bai",))
    if not local.is_file():
        raise ReferenceDataError("input BAM/CRAM not found", where=str(bam))
    if fmt == "cram":
        return to_bam(local, reference=reference, out=scratch / "input.bam")
    return local

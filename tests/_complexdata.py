"""Helpers for the complex-SV and supplementary-record tests: reads from the golden BAM."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pysam


def alignments(bam: Path, contig: str, a: int, b: int) -> dict:
    """Every record overlapping [a, b), grouped by (name, read1)."""
    out: dict = defaultdict(list)
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f.fetch(contig, a, b):
            out[(r.query_name, r.is_read1)].append(r)
    return out


def parts(r: pysam.AlignedSegment) -> list[tuple[str, int, int]]:
    """(contig, 0-based start, end) of a record and of every part its SA tag names."""
    out = [(r.reference_name, r.reference_start, r.reference_end)]
    if r.has_tag("SA"):
        for e in r.get_tag("SA").rstrip(";").split(";"):
            c, p, _s, cig = e.split(",")[:4]
            span = pysam.AlignedSegment()
            span.cigarstring = cig
            ref_len = sum(n for op, n in span.cigartuples if op in (0, 2, 3, 7, 8))
            out.append((c, int(p) - 1, int(p) - 1 + ref_len))
    return out


def touches(part: tuple[str, int, int], x: int) -> bool:
    """Whether an aligned part starts or ends (last base) at 0-based position ``x``."""
    return part[1] == x or part[2] - 1 == x


def split_at(bam: Path, contig: str, x: int, y: int, *, window: int = 400) -> int:
    """Reads (by name and mate) with one aligned part ending at ``x`` and another at ``y``."""
    names = set()
    with pysam.AlignmentFile(str(bam)) as f:
        for c in (x, y):
            for r in f.fetch(contig, max(0, c - window), c + window):
                if r.is_secondary or not r.has_tag("SA"):
                    continue
                ps = parts(r)
                hit_x = [i for i, p in enumerate(ps) if touches(p, x)]
                hit_y = [i for i, p in enumerate(ps) if touches(p, y)]
                if any(i != j for i in hit_x for j in hit_y):
                    names.add((r.query_name, r.is_read1))
    return len(names)


def discordant_at(bam: Path, contig: str, x: int, y: int, *, window: int = 500) -> int:
    """Primary reads within ``window`` of ``x`` whose mate lies within ``window`` of ``y``
    (or the other way round) and that are not proper pairs."""
    n = 0
    with pysam.AlignmentFile(str(bam)) as f:
        for c, other in ((x, y), (y, x)):
            for r in f.fetch(contig, max(0, c - window), c + window):
                if r.is_supplementary or r.is_secondary or r.is_proper_pair or r.mate_is_unmapped:
                    continue
                if (abs(r.reference_start - c) < window
                        and abs(r.next_reference_start - other) < window):
                    n += 1
    return n


def primary_starts(bam: Path, contig: str, a: int, b: int) -> int:
    """Primary mapped records whose alignment starts in [a, b)."""
    with pysam.AlignmentFile(str(bam)) as f:
        return sum(1 for r in f.fetch(contig, a, b)
                   if not (r.is_unmapped or r.is_supplementary or r.is_secondary)
                   and a <= r.reference_start < b)

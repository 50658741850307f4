"""Capture (exome/panel) metrics from the re-aligned reads: on-target fraction, depth over the
targets, fold-80 and per-target depth.

A read is on target when its alignment overlaps a target padded by the spec's ``padding``
(Picard's "selected" bases count the same way); unmapped reads count as off target, since an
off-target fragment from outside the aligner's index may not map at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError
from ..intervals import intersect, merge
from . import metrics as M

__all__ = ["on_target_metrics"]


def _overlaps(starts: np.ndarray, ends: np.ndarray, iv: np.ndarray) -> np.ndarray:
    """Boolean (n,): ``[starts, ends)`` overlaps one of the merged intervals ``iv`` (k, 2)."""
    if not len(iv):
        return np.zeros(len(starts), bool)
    # The last interval starting before the read's end is the only candidate (merged, sorted).
    k = np.searchsorted(iv[:, 0], ends, side="left") - 1
    ok = k >= 0
    out = np.zeros(len(starts), bool)
    out[ok] = iv[k[ok], 1] > starts[ok]
    return out


def on_target_metrics(
    *, bam: Path, targets: dict[str, np.ndarray], padding: int,
    territory: dict[str, np.ndarray] | None = None, min_mapq: int = 0,
) -> dict:
    """On-target fraction, depth and uniformity over the targets of a capture assay.

    Parameters
    ----------
    bam
        Indexed BAM of every read (the QC BAM).
    targets
        ``{contig: (k, 2) int64}`` unpadded targets; only those inside ``territory`` (the
        spec's regions, padded) are measured.
    padding
        Bases either side of a target that still count as on target.
    min_mapq
        Reads below this count as mapped but not for depth.

    Returns
    -------
    dict
        ``reads`` (primary records, unmapped included), ``mapped``, ``on_target_reads``,
        ``on_target_fraction`` (of all reads), ``on_target_fraction_mapped``,
        ``target_bases``, ``targets``, ``mean_target_depth``, ``fold80``, ``pct_ge_20``,
        ``per_target`` (list of ``[contig, start, end, mean depth]``).
    """
    if not Path(bam).exists():
        raise QCError("BAM not found", where=str(bam))
    tg: dict[str, np.ndarray] = {}
    for c, iv in targets.items():
        iv = merge(np.asarray(iv, np.int64).reshape(-1, 2))
        if territory is not None:
            if c not in territory:
                continue
            iv = intersect(iv, territory[c])
        if len(iv):
            tg[c] = iv
    if not tg:
        raise QCError("no capture target inside the dataset's territory")
    reads = mapped = on = 0
    with pysam.AlignmentFile(str(bam)) as fh:
        for c in fh.references:
            starts, ends = [], []
            for r in fh.fetch(c):
                if r.flag & 0x900:
                    continue
                reads += 1
                if r.is_unmapped:
                    continue
                starts.append(r.reference_start)
                ends.append(r.reference_end)
            mapped += len(starts)
            if c in tg and starts:
                padded = merge(tg[c] + np.array([-padding, padding]))
                on += int(_overlaps(np.asarray(starts), np.asarray(ends), padded).sum())
        reads += sum(1 for r in fh.fetch("*") if not r.flag & 0x900)
    tracks = M.depth_tracks(bam=Path(bam), intervals=tg, min_mapq=min_mapq)
    cov = M.coverage_metrics(tracks, targets=tg)
    return {
        "reads": reads, "mapped": mapped, "on_target_reads": on,
        "on_target_fraction": on / reads if reads else None,
        "on_target_fraction_mapped": on / mapped if mapped else None,
        "padding": padding, "targets": sum(len(v) for v in tg.values()),
        "target_bases": cov["bases"], "mean_target_depth": cov["mean"],
        "median_target_depth": cov["median"], "fold80": cov["fold80"],
        "pct_ge_20": cov["pct_ge"]["20"], "per_target": cov["per_target"],
    }

"""Helpers for the translocation and somatic SV tests: reads around breaks, expected counts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pysam


def break_stats(bam: Path, contig: str, bp: int, *, window: int = 1500) -> dict:
    """Reads near a break, from the BAM alone.

    Returns split reads (with an ``SA`` tag), discordant reads (mate on another contig or
    > 5 kb away, not a proper pair), their mates' contigs, and mean depth at the break
    (``bp`` +- 300) and in flanks 2-3 kb away.
    """
    split = disc = 0
    sa_targets, mate_contigs = [], []
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f.fetch(contig, bp - window, bp + window):
            if r.is_supplementary:
                continue  # the other part of a split read counted at its primary
            if r.has_tag("SA"):
                split += 1
                sa_targets.append(r.get_tag("SA").split(",")[0])
            far = (r.next_reference_id != r.reference_id
                   or abs(r.next_reference_start - r.reference_start) > 5000)
            if r.is_paired and not r.is_proper_pair and far:
                disc += 1
                mate_contigs.append(r.next_reference_name)
        cov = np.array(f.count_coverage(contig, bp - 3000, bp + 3000,
                                        quality_threshold=0)).sum(0)
    return {"split": split, "disc": disc, "sa": sa_targets, "mates": mate_contigs,
            "depth_at": float(cov[2700:3300].mean()),
            "depth_flank": float(np.r_[cov[:1000], cov[5000:]].mean())}


def expected_counts(*, coverage: float, length: int, frag_mean: float, alleles: int = 1
                    ) -> tuple[float, float]:
    """Expected (split reads, discordant reads) whose primary lies at one break.

    Fragments start at ``d = coverage / (2 L) / 2`` per base per carrying haplotype. At one
    break sit the primaries of both junctions' reads (one each side): a read is split when
    the junction falls inside it (``L - 1`` start offsets, either mate), a pair discordant
    when each mate's larger part lies on another side (``l - L`` start offsets).
    """
    d = coverage / (2 * length) / 2 * alleles
    split = 2 * d * (length - 1)
    disc = 2 * d * (frag_mean - length)
    return split, disc

"""Shared helpers for the SV and somatic tests: small specs generated serially, BAM readers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pysam

from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec

FASTA = (Path(__file__).resolve().parents[1] / "synthlib/data/references/grch37-chr20-demo/"
         "GRCh37_chr20_2regions.fa.gz")


def base_spec(id_: str, **over) -> dict:
    spec = {
        "id": id_, "seed": 7, "reason": "test",
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,200,000"]},
        "coverage": 20, "germline": {"source": "none"}, "chunk_size": 100_000,
    }
    spec.update(over)
    return spec


def generate(spec: dict, dest: Path) -> Path:
    plan = plan_dataset(parse_spec(spec))
    return generate_local(plan, dest=dest, overwrite=True)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def starts_in(bam: Path, contig: str, a: int, b: int) -> int:
    """Primary mapped reads whose alignment starts in [a, b)."""
    with pysam.AlignmentFile(str(bam)) as f:
        return sum(1 for r in f.fetch(contig, a, b)
                   if not r.is_unmapped and a <= r.reference_start < b)


def mismatch_rate(bam: Path, contig: str, a: int, b: int) -> float:
    """Mismatches per aligned base of reads in [a, b), against the reference."""
    ref = pysam.FastaFile(str(FASTA))
    seq = ref.fetch(contig, a - 1000, b + 1000).upper()
    mism = total = 0
    with pysam.AlignmentFile(str(bam)) as f:
        for r in f.fetch(contig, a, b):
            q = r.query_sequence
            for qp, rp in r.get_aligned_pairs(matches_only=True):
                if a - 1000 <= rp < b + 1000:
                    total += 1
                    mism += q[qp] != seq[rp - a + 1000]
    return mism / max(total, 1)


def poisson_ok(observed: float, expected: float, k: float = 4.0) -> bool:
    return abs(observed - expected) <= k * np.sqrt(max(expected, 1.0))

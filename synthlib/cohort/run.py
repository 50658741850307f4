"""Whole-cohort simulation on one machine: plan work units, run them, write the outputs.

A workflow engine (flows/) can run :func:`work_units` itself: each unit is one
:func:`simulate_cohort_block` call; :func:`merge_blocks` per region and
:func:`write_joint_vcf` finish the job. This module does the same in-process.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from .genotypes import simulate_cohort_block
from .joint_vcf import merge_blocks, write_joint_vcf
from .samples import cohort_samples, write_samples_tsv
from .sources import Region, contig_lengths, parse_region, resolve_inputs
from .spec import CohortSpec

__all__ = ["CohortOutputs", "WorkUnit", "work_units", "plan_regions", "simulate_cohort"]


@dataclass(frozen=True)
class WorkUnit:
    """One independent piece of work: some samples over one region."""

    region: str
    sample_ids: tuple[str, ...]


@dataclass(frozen=True)
class CohortOutputs:
    """Files written by :func:`simulate_cohort`."""

    joint_vcf: Path
    samples_tsv: Path
    n_samples: int
    n_sites: int


def work_units(
    spec: CohortSpec, *, seed: int, regions: list[str], sample_block: int | None = None
) -> list[WorkUnit]:
    """Regions x sample blocks of ``sample_block`` (default ``spec.sample_block``) samples."""
    if not regions:
        raise SpecError("a cohort needs at least one region", where="reference.regions")
    size = sample_block or spec.sample_block
    ids = [s.sample for s in cohort_samples(spec, seed=seed)]
    blocks = [tuple(ids[i : i + size]) for i in range(0, len(ids), size)]
    return [WorkUnit(r, b) for r in regions for b in blocks]


def plan_regions(regions: list[str], *, fasta: Path) -> list[Region]:
    """Parse regions and put them in reference order (FASTA contig order, then start), the
    order the joint VCF is written in.

    Raises
    ------
    SpecError
        No region, a malformed one, or two that overlap.
    """
    if not regions:
        raise SpecError("a cohort needs at least one region", where="reference.regions")
    rank = {c: i for i, c in enumerate(contig_lengths(fasta))}
    parsed = sorted(
        (parse_region(r, fasta=fasta) for r in regions), key=lambda r: (rank[r.chrom], r.start)
    )
    for a, b in zip(parsed, parsed[1:], strict=False):
        if a.chrom == b.chrom and b.start < a.end:
            raise SpecError(f"regions {a.name} and {b.name} overlap", where="reference.regions")
    return parsed


def simulate_cohort(
    spec: CohortSpec,
    *,
    seed: int,
    regions: list[str],
    out_dir: str | Path,
    reference: str = "grch37-chr20-demo",
    sample_block: int | None = None,
    base_dir: Path | None = None,
) -> CohortOutputs:
    """Simulate the cohort and write ``cohort.vcf.gz`` (+ ``.tbi``) and ``samples.tsv``.

    Regions are written in reference order; the output bytes do not depend on
    ``sample_block``.
    """
    out_dir = Path(out_dir)
    inputs = resolve_inputs(spec, reference=reference, base_dir=base_dir)
    samples = cohort_samples(spec, seed=seed)
    order = [s.sample for s in samples]
    parsed = plan_regions(regions, fasta=inputs.fasta)
    merged = []
    for reg in parsed:
        blocks = [
            simulate_cohort_block(
                spec,
                region=reg.name,
                sample_ids=u.sample_ids,
                seed=seed,
                reference=reference,
                base_dir=base_dir,
            )
            for u in work_units(spec, seed=seed, regions=[reg.name], sample_block=sample_block)
        ]
        merged.append(merge_blocks(blocks, sample_order=order))
    vcf = write_joint_vcf(
        merged, samples=samples, fasta=inputs.fasta, path=out_dir / "cohort.vcf.gz"
    )
    tsv = write_samples_tsv(samples, out_dir / "samples.tsv")
    return CohortOutputs(vcf, tsv, len(samples), sum(m.pos.size for m in merged))

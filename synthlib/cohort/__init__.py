"""Cohorts: case/control and trio genotypes over regions, and the gene burden study.

Typical use::

    spec = CohortSpec(n_cases=200, n_controls=200, burden=[BurdenGene(gene="JAG1",
                      carrier_fraction_cases=0.1)])
    out = simulate_cohort(spec, seed=1, regions=["chr20:1000001-2000000"], out_dir="cohort")
    res = run_burden_study(joint_vcf=out.joint_vcf, samples_tsv=out.samples_tsv,
                           genes_bed=exon_bed, out_dir="cohort/study")

Parallel engines run :func:`work_units` through :func:`simulate_cohort_block`, then
:func:`merge_blocks` per region and :func:`write_joint_vcf`.
"""

from __future__ import annotations

from .burden import (
    BURDEN_COLUMNS,
    EXOME_WIDE_THRESHOLD,
    BurdenResult,
    JointGenotypes,
    read_joint_genotypes,
    run_burden_study,
)
from .fisher import benjamini_hochberg, bonferroni, fisher_exact
from .genotypes import GenotypeBlock, simulate_cohort_block
from .joint_vcf import assemble_joint_vcf, merge_blocks, write_joint_vcf, write_vcf_shard
from .run import CohortOutputs, WorkUnit, plan_regions, simulate_cohort, work_units
from .samples import Sample, cohort_samples, read_samples_tsv, write_samples_tsv
from .sources import resolve_inputs
from .spec import BurdenGene, CohortSpec
from .spikes import Spike, plan_spikes

__all__ = [
    "CohortSpec",
    "BurdenGene",
    "Sample",
    "cohort_samples",
    "write_samples_tsv",
    "read_samples_tsv",
    "GenotypeBlock",
    "simulate_cohort_block",
    "merge_blocks",
    "write_joint_vcf",
    "write_vcf_shard",
    "assemble_joint_vcf",
    "plan_regions",
    "WorkUnit",
    "work_units",
    "CohortOutputs",
    "simulate_cohort",
    "Spike",
    "plan_spikes",
    "resolve_inputs",
    "JointGenotypes",
    "read_joint_genotypes",
    "BurdenResult",
    "run_burden_study",
    "EXOME_WIDE_THRESHOLD",
    "BURDEN_COLUMNS",
    "fisher_exact",
    "bonferroni",
    "benjamini_hochberg",
]

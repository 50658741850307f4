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

import importlib

#: Where each public name lives: submodules load on first use, so importing
#: ``synthlib.cohort.spec`` (as every dataset spec does) does not pull in the burden study.
_SOURCES = {
    "BURDEN_COLUMNS": "burden",
    "EXOME_WIDE_THRESHOLD": "burden",
    "BurdenResult": "burden",
    "JointGenotypes": "burden",
    "read_joint_genotypes": "burden",
    "run_burden_study": "burden",
    "benjamini_hochberg": "fisher",
    "bonferroni": "fisher",
    "fisher_exact": "fisher",
    "GenotypeBlock": "genotypes",
    "simulate_cohort_block": "genotypes",
    "assemble_joint_vcf": "joint_vcf",
    "merge_blocks": "joint_vcf",
    "write_joint_vcf": "joint_vcf",
    "write_vcf_shard": "joint_vcf",
    "CohortOutputs": "run",
    "WorkUnit": "run",
    "plan_regions": "run",
    "simulate_cohort": "run",
    "work_units": "run",
    "Sample": "samples",
    "cohort_samples": "samples",
    "read_samples_tsv": "samples",
    "write_samples_tsv": "samples",
    "resolve_inputs": "sources",
    "BurdenGene": "spec",
    "CohortSpec": "spec",
    "Spike": "spikes",
    "plan_spikes": "spikes",
}

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


def __getattr__(name: str):
    if name in _SOURCES:
        value = getattr(importlib.import_module(f".{_SOURCES[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

"""CohortSpec: a case/control (and trio) cohort with a gene burden model, validated at entry.

Meant as the ``cohort:`` section of a :class:`synthlib.spec.DatasetSpec`; it can also be used on
its own (tests, notebooks). Every field is documented; unknown keys are rejected.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["CohortSpec", "BurdenGene", "POPULATIONS", "CONSEQUENCES"]

#: 1000 Genomes super-populations; ``<POP>_AF`` is read from the sites VCF for each.
POPULATIONS = ("AFR", "AMR", "EAS", "EUR", "SAS")
#: Labels of spiked damaging variants (INFO ``CSQ``).
CONSEQUENCES = ("truncating", "missense")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


def _check_fractions(value: dict[str, float], *, allowed: tuple[str, ...], what: str) -> None:
    if not value:
        raise ValueError(f"{what} needs at least one entry")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ValueError(f"{what}: unknown keys {unknown}; allowed {list(allowed)}")
    if any(v < 0 for v in value.values()):
        raise ValueError(f"{what}: fractions must be >= 0")
    if not math.isclose(sum(value.values()), 1.0, abs_tol=1e-6):
        raise ValueError(f"{what}: fractions must sum to 1, got {sum(value.values())}")


class BurdenGene(_Strict):
    """One gene that carries rare damaging variants in a fraction of the cases."""

    gene: str = Field(min_length=1)
    """Gene symbol as in the exon BED's name column (``GENE_exonN``), e.g. ``JAG1``."""
    carrier_fraction_cases: float = Field(gt=0, le=1)
    """Fraction of cases given one private damaging variant in this gene (rounded to a count).
    Controls never get one: their only variants in the gene are the population background."""
    consequences: dict[str, float] = Field(
        default_factory=lambda: {"truncating": 0.5, "missense": 0.5}
    )
    """Mix of consequence labels, fractions summing to 1. ``truncating`` = frameshift indel of
    1-2 bases (truncating whatever the reading frame); ``missense`` = SNV in an exon (labelled,
    not checked against a codon table)."""

    @field_validator("consequences")
    @classmethod
    def _mix(cls, value: dict[str, float]) -> dict[str, float]:
        _check_fractions(value, allowed=CONSEQUENCES, what="consequences")
        return value


class CohortSpec(_Strict):
    """A cohort of cases, controls and trios with germline genotypes over the simulated regions."""

    n_cases: int = Field(ge=0, le=1_000_000)
    """Number of affected individuals, trio children included."""
    n_controls: int = Field(ge=0, le=1_000_000)
    """Number of unaffected, unrelated individuals."""
    ancestry: dict[str, float] = Field(default_factory=lambda: {"EUR": 1.0})
    """Population mix (1000 Genomes super-populations), fractions summing to 1; each individual
    (each family for trios) draws one population from it."""
    female_fraction: float = Field(default=0.5, ge=0, le=1)
    """Probability that a case, control or trio child is female (fathers are male, mothers
    female). Recorded in ``samples.tsv``; autosomal genotypes do not depend on it."""
    trios: int = Field(default=0, ge=0)
    """Number of trios (father, mother, affected child). Children count among ``n_cases``;
    parents are extra samples with role ``parent`` and stay out of the case/control test."""
    recombination: Literal["none", "simple"] = "simple"
    """How a parent transmits to a child: ``none`` = one whole parental haplotype per region;
    ``simple`` = crossovers as a Poisson process at ``cm_per_mb`` (or the panel's cM map)."""
    cm_per_mb: float = Field(default=1.0, gt=0, le=100)
    """Genetic map density used when the genotype source carries no cM positions."""
    de_novo_rate: float = Field(default=1.2e-8, ge=0, le=1e-3)
    """De novo mutations per base per transmitted haplotype; a trio child gets
    Poisson(2 x rate x region length) new variants per region (SNVs, and indels at
    ``de_novo_indel_fraction``). The human rate is ~1.2e-8 (~70 per genome); demo-scale specs
    raise it so a few hundred kb carry a handful."""
    de_novo_indel_fraction: float = Field(default=0.0, ge=0, le=1)
    """Fraction of de novo mutations that are small indels (insertions and deletions equally,
    1..``de_novo_max_indel`` bases, left-normalized); ~0.1 in human trios. 0 keeps SNVs only."""
    de_novo_max_indel: int = Field(default=4, ge=1, le=50)
    """Longest de novo indel (bases inserted or deleted)."""
    genotype_source: Literal["population", "haplotypes"] = "population"
    """``population``: each site drawn from the individual's population AF under Hardy-Weinberg
    (sites VCF); ``haplotypes``: each haplotype is a mosaic of real phased haplotypes of the
    panel VCF (switching at the panel's cM map), per population when ``panel_populations`` is
    given, otherwise from the whole panel."""
    sites_vcf: str | None = None
    """Population sites VCF with ``AF`` and ``<POP>_AF`` (resource name or path); default: the
    reference bundle's ``sites``."""
    panel_vcf: str | None = None
    """Phased multi-sample VCF for ``haplotypes`` (resource name or path); default: the
    reference bundle's ``genotypes``."""
    panel_populations: str | None = None
    """Optional TSV ``sample<TAB>population`` for the panel; without it haplotypes are drawn
    from the whole panel whatever the individual's population."""
    genes_bed: str | None = None
    """Exon BED whose name column is ``GENE_exonN`` (resource name or path); default: the
    reference bundle's ``exons``."""
    gene_column: int = Field(default=4, ge=4, le=20)
    """1-based column of ``genes_bed`` naming the gene. 4 (default): the BED name column,
    ``GENE_exonN`` or ``GENE_N`` (suffix dropped); another column holds the bare gene symbol,
    e.g. 5 for the GENCODE MANE exon BED (``exon_id``, ``gene_name``, ``exon_number``, ...)."""
    targets: str | None = None
    """Optional BED (resource name or path, plain or gzipped): background sites and de novo
    SNVs only where POS lies in these intervals (+ ``target_padding``), e.g. exome targets.
    Bounds memory on whole chromosomes; without it the whole region is simulated."""
    target_padding: int = Field(default=0, ge=0, le=10_000)
    """Bases added on each side of every ``targets`` interval."""
    max_indel: int = Field(default=50, ge=0)
    """Background indels longer than this are left out (symbolic and multi-allelic sites are
    always left out)."""
    burden: list[BurdenGene] = Field(default_factory=list)
    """Genes carrying damaging variants in cases (none: a null cohort)."""
    max_af: float = Field(default=0.001, gt=0, lt=0.5)
    """Rare-variant threshold of the study: population AF and cohort AF below it (a cohort
    singleton always counts as rare). Spiked variants are private, so always rare."""
    sample_block: int = Field(default=250, ge=1, le=100_000)
    """Samples per work unit (the unit of parallelism with the region)."""
    reads_samples: int | None = Field(default=0, ge=0)
    """How many samples also get reads (FASTQ/BAM per ``outputs``, over the spec's assay, e.g.
    the exome or a panel): cases and controls alternately, in table order; ``null`` for all,
    0 for none (the joint truth VCF is always written)."""

    @field_validator("ancestry")
    @classmethod
    def _ancestry(cls, value: dict[str, float]) -> dict[str, float]:
        _check_fractions(value, allowed=POPULATIONS, what="ancestry")
        return value

    @model_validator(mode="after")
    def _counts(self) -> CohortSpec:
        if self.trios > self.n_cases:
            raise ValueError(f"trios ({self.trios}) cannot exceed n_cases ({self.n_cases})")
        if self.n_cases + self.n_controls == 0:
            raise ValueError("a cohort needs at least one case or control")
        genes = [g.gene for g in self.burden]
        if len(set(genes)) != len(genes):
            raise ValueError(f"burden genes repeated: {genes}")
        return self

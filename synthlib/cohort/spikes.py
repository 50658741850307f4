"""Damaging variants spiked into cases: which cases carry one, where, and what it is.

The plan depends only on (spec, seed, samples, input files): carriers are drawn per gene and
each carrier's variant from its own keyed stream, so every work unit computes the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError, VariantError
from .samples import Sample
from .seeds import rng_for
from .sources import CohortInputs, Region, fetch_reference, load_exons, load_panel, load_sites
from .spec import CohortSpec

__all__ = ["Spike", "plan_spikes", "background_positions"]

_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)
_MAX_TRIES = 1000


@dataclass(frozen=True)
class Spike:
    """One damaging variant in one carrier (VCF-style: 1-based ``pos``, anchored indels)."""

    sample: str
    gene: str
    chrom: str
    pos: int
    ref: str
    alt: str
    csq: str
    hap: int


def background_positions(spec: CohortSpec, inputs: CohortInputs, region: Region) -> np.ndarray:
    """(n,) int64 sorted 1-based positions of the genotype source's sites inside ``region``."""
    if spec.genotype_source == "population":
        assert inputs.sites_vcf is not None
        return load_sites(inputs.sites_vcf, region, spec.max_indel).pos
    assert inputs.panel_vcf is not None
    return load_panel(inputs.panel_vcf, region, spec.max_indel).pos


def _draw_one(
    rng: np.random.Generator,
    csq: str,
    exons: tuple[tuple[str, int, int], ...],
    seqs: list[np.ndarray],
    bgs: list[np.ndarray],
) -> tuple[str, int, str, str]:
    lengths = np.array([e[2] - e[1] for e in exons], dtype=np.float64)
    for _ in range(_MAX_TRIES):
        k = int(rng.choice(len(exons), p=lengths / lengths.sum()))
        chrom, start, end = exons[k]
        off = int(rng.integers(end - start))
        pos = start + off + 1
        if csq == "missense":
            span = 1
        else:
            kind = "del" if rng.random() < 0.5 else "ins"
            size = int(rng.integers(1, 3))  # 1 or 2 bases: never a multiple of 3
            span = 1 + size if kind == "del" else 1
        if off + span > end - start:
            continue
        bases = seqs[k][off : off + span]
        if not np.all(np.isin(bases, _BASES)):
            continue
        bg = bgs[k]
        lo = np.searchsorted(bg, pos)
        if lo < bg.size and bg[lo] < pos + span:
            continue  # keep clear of background sites so alleles never stack on one haplotype
        ref = bases.tobytes().decode()
        if csq == "missense":
            code = int(np.flatnonzero(_BASES == bases[0])[0])
            alt = chr(_BASES[(code + int(rng.integers(1, 4))) % 4])
        elif kind == "del":
            alt = ref[0]
        else:
            alt = ref + _BASES[rng.integers(4, size=size)].tobytes().decode()
        return chrom, pos, ref, alt
    raise VariantError(f"no room for a {csq} variant in the exons after {_MAX_TRIES} tries")


def plan_spikes(
    spec: CohortSpec, *, seed: int, inputs: CohortInputs, samples: list[Sample]
) -> list[Spike]:
    """Every spiked damaging variant of the cohort, sorted by (chrom, pos, sample).

    For each burden gene, ``round(carrier_fraction_cases * n_cases)`` cases are chosen without
    replacement; each gets one private variant placed uniformly over the gene's exon bases,
    with a consequence drawn from the gene's mix.

    Raises
    ------
    SpecError
        A burden gene is not in the exon BED.
    """
    exons_by_gene = load_exons(inputs.genes_bed, inputs.gene_column)
    cases = [s.sample for s in samples if s.role == "case"]
    out: list[Spike] = []
    for bg_index, g in enumerate(spec.burden):
        if g.gene not in exons_by_gene:
            known = ", ".join(sorted(exons_by_gene))
            raise SpecError(
                f"gene {g.gene!r} is not in {inputs.genes_bed.name} (known: {known})",
                where=f"cohort.burden.{bg_index}.gene",
            )
        exons = exons_by_gene[g.gene]
        seqs = [fetch_reference(inputs.fasta, c, s, e) for c, s, e in exons]
        bgs = [background_positions(spec, inputs, Region(c, s, e)) for c, s, e in exons]
        k = min(len(cases), int(round(g.carrier_fraction_cases * len(cases))))
        picks = np.sort(rng_for(seed, "carriers", g.gene).choice(len(cases), k, replace=False))
        labels = sorted(g.consequences)
        probs = np.array([g.consequences[c] for c in labels])
        for i in picks:
            sample = cases[int(i)]
            rng = rng_for(seed, "spike", g.gene, sample)
            csq = labels[int(rng.choice(len(labels), p=probs))]
            chrom, pos, ref, alt = _draw_one(rng, csq, exons, seqs, bgs)
            out.append(Spike(sample, g.gene, chrom, pos, ref, alt, csq, int(rng.integers(2))))
    out.sort(key=lambda s: (s.chrom, s.pos, s.sample))
    return out

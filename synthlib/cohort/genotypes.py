"""Genotypes of a block of samples over one region: background, trios, de novo, spikes.

One call simulates ``sample_ids`` over ``region`` as a (samples x sites x 2) int8 haplotype
array. Each sample's draws come from streams keyed by (seed, purpose, sample, region), so a
sample's genotypes are the same in any block: blocks can run in any order, on any worker.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ReferenceDataError, SpecError
from .samples import Sample, cohort_samples
from .seeds import rng_for
from .sources import (
    CohortInputs,
    Region,
    acgt_mask,
    fetch_reference,
    in_intervals,
    load_intervals,
    load_panel,
    load_panel_populations,
    load_sites,
    parse_region,
    resolve_inputs,
)
from .spec import CohortSpec
from .spikes import Spike, plan_spikes

__all__ = [
    "GenotypeBlock",
    "simulate_cohort_block",
    "SOURCE_BACKGROUND",
    "SOURCE_DENOVO",
    "SOURCE_SPIKE",
]

SOURCE_BACKGROUND = "background"
SOURCE_DENOVO = "denovo"
SOURCE_SPIKE = "spike"


@dataclass(frozen=True)
class GenotypeBlock:
    """Phased genotypes of some samples at the sites of one region.

    Attributes
    ----------
    region : the region simulated
    sample_ids : (n_samples,) sample ids, the rows of ``haps``
    pos : (n_sites,) int64, 1-based, sorted
    ref, alt : (n_sites,) object (str)
    pop_af : (n_sites,) float64, overall population AF of the site (0 for de novo and spikes)
    source : (n_sites,) object, ``background``, ``denovo`` or ``spike``
    gene, csq : (n_sites,) object, the spiked gene and consequence (``""`` elsewhere)
    haps : (n_samples, n_sites, 2) int8, allele (0 = REF, 1 = ALT) of each haplotype
    """

    region: Region
    sample_ids: tuple[str, ...]
    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    pop_af: np.ndarray
    source: np.ndarray
    gene: np.ndarray
    csq: np.ndarray
    haps: np.ndarray

    @property
    def dosage(self) -> np.ndarray:
        """(n_samples, n_sites) int8 ALT allele count."""
        return self.haps.sum(axis=2, dtype=np.int8)


@dataclass(frozen=True)
class _Context:
    """Everything about a region that is the same for every sample block."""

    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    pop_af: np.ndarray
    cm: np.ndarray  # (n_sites,) genetic map in cM, nondecreasing
    cm_span: tuple[float, float]  # map positions of the region's ends
    af_by_pop: dict[str, np.ndarray] | None  # population source
    panel_haps: np.ndarray | None  # (n_sites, n_panel_haps) haplotype source
    pools: dict[str, np.ndarray] | None  # population -> panel haplotype indices
    allowed: np.ndarray  # 1-based positions open to de novo SNVs
    seq: np.ndarray  # reference bases of the region
    open_: np.ndarray  # (len(region),) bool: base free for a de novo (ACGT, no background REF)


@functools.lru_cache(maxsize=8)
def _context(
    inputs: CohortInputs,
    region: Region,
    source: str,
    max_indel: int,
    cm_per_mb: float,
    target_padding: int = 0,
) -> _Context:
    seq = fetch_reference(inputs.fasta, region.chrom, region.start, region.end)
    targets = (
        load_intervals(inputs.targets, region.chrom, target_padding)
        if inputs.targets is not None
        else None
    )
    bp_cm = lambda p: (np.asarray(p, dtype=np.float64) - 1) / 1e6 * cm_per_mb  # noqa: E731
    span = (float(bp_cm(region.start + 1)), float(bp_cm(region.end)))
    if source == "population":
        assert inputs.sites_vcf is not None
        s = load_sites(inputs.sites_vcf, region, max_indel, targets)
        pos, ref, alt, pop_af = s.pos, s.ref, s.alt, s.af["ALL"]
        cm, af_by_pop, panel_haps, pools = bp_cm(pos), s.af, None, None
    else:
        assert inputs.panel_vcf is not None
        p = load_panel(inputs.panel_vcf, region, max_indel)
        pos, ref, alt, panel_haps = p.pos, p.ref, p.alt, p.haps
        pop_af = p.af.copy()
        if inputs.sites_vcf is not None:  # prefer the large reference's AF where it has the site
            s = load_sites(inputs.sites_vcf, region, max_indel)
            idx = np.searchsorted(s.pos, pos).clip(0, max(s.pos.size - 1, 0))
            if s.pos.size:
                same = (s.pos[idx] == pos) & (s.ref[idx] == ref) & (s.alt[idx] == alt)
                pop_af[same] = s.af["ALL"][idx[same]]
        cm = p.cm
        if cm.size and np.all(np.isfinite(cm)):
            cm = np.maximum.accumulate(cm)
            span = (float(cm[0]), float(cm[-1]))
        else:
            cm = bp_cm(pos)
        af_by_pop = None
        if targets is not None:  # the panel is small: load it all, keep the targeted sites
            keep = in_intervals(pos, targets)
            pos, ref, alt, pop_af, cm = pos[keep], ref[keep], alt[keep], pop_af[keep], cm[keep]
            panel_haps = panel_haps[keep]
        n_haps = panel_haps.shape[1]
        if n_haps == 0:
            raise ReferenceDataError("the phased panel has no samples", where=str(inputs.panel_vcf))
        pools = {"*": np.arange(n_haps)}
        if inputs.panel_populations is not None:
            pop_of = load_panel_populations(inputs.panel_populations)
            for pop in sorted(set(pop_of.values())):
                members = [i for i, smp in enumerate(p.samples) if pop_of.get(smp) == pop]
                pools[pop] = np.sort(np.concatenate([[2 * i, 2 * i + 1] for i in members]))
    open_ = acgt_mask(seq)
    if targets is not None:
        inside = np.zeros(open_.size, dtype=bool)
        for a, b in (targets - region.start).clip(0, open_.size):
            inside[a:b] = True
        open_ &= inside
    if pos.size:  # de novos never touch a background site's REF bases (no stacked alleles)
        reflen = np.fromiter((len(r) for r in ref), dtype=np.int64, count=pos.size)
        first = pos - 1 - region.start
        for k in range(int(reflen.max())):
            idx = first + k
            open_[idx[(k < reflen) & (idx < open_.size)]] = False
    allowed = np.flatnonzero(open_).astype(np.int64) + region.start + 1
    return _Context(pos, ref, alt, pop_af, cm, span, af_by_pop, panel_haps, pools, allowed, seq,
                    open_)


def _crossovers(rng: np.random.Generator, ctx: _Context) -> np.ndarray:
    """Sorted map positions (cM) of crossovers over the region (Poisson at the map rate)."""
    lo, hi = ctx.cm_span
    n = rng.poisson(max(hi - lo, 0.0) / 100.0)
    return np.sort(rng.uniform(lo, hi, size=n))


def _founder(spec: CohortSpec, seed: int, ctx: _Context, s: Sample, region: Region) -> np.ndarray:
    """(n_sites, 2) int8 haplotypes of a sample whose genotypes are drawn, not inherited."""
    rng = rng_for(seed, "background", s.sample, region.name)
    n = ctx.pos.size
    if ctx.af_by_pop is not None:
        af = ctx.af_by_pop[s.population]
        return (rng.random((n, 2)) < af[:, None]).astype(np.int8)
    assert ctx.pools is not None and ctx.panel_haps is not None
    pool = ctx.pools.get(s.population, ctx.pools["*"]) if len(ctx.pools) > 1 else ctx.pools["*"]
    if pool.size == 0:
        raise SpecError(f"no panel haplotypes of population {s.population}", where="cohort")
    out = np.empty((n, 2), dtype=np.int8)
    rows = np.arange(n)
    for j in range(2):
        # A mosaic of panel haplotypes, switching template at each crossover.
        breaks = np.searchsorted(ctx.cm, _crossovers(rng, ctx), side="right")
        templates = pool[rng.integers(pool.size, size=breaks.size + 1)]
        src = np.repeat(templates, np.diff(np.concatenate([[0], breaks, [n]])))
        out[:, j] = ctx.panel_haps[rows, src]
    return out


def _transmit(
    spec: CohortSpec, rng: np.random.Generator, ctx: _Context, parent: np.ndarray
) -> np.ndarray:
    """(n_sites,) int8: the haplotype a parent passes on (one crossover model per spec)."""
    start = int(rng.integers(2))
    if spec.recombination == "none":
        return parent[:, start].copy()
    switches = np.searchsorted(_crossovers(rng, ctx), ctx.cm, side="right")
    return parent[np.arange(ctx.pos.size), (start + switches) % 2]


def _de_novo(
    spec: CohortSpec, seed: int, ctx: _Context, child: str, region: Region
) -> list[tuple[int, str, str, int]]:
    """De novo variants of a child: (pos, ref, alt, haplotype), SNVs then indels.

    SNVs and indels come from separate streams, so adding indels never moves the SNVs."""
    snvs = _de_novo_snvs(spec, seed, ctx, child, region)
    if spec.de_novo_indel_fraction == 0 or ctx.allowed.size == 0:
        return snvs
    return snvs + _de_novo_indels(spec, seed, ctx, child, region, taken=[s[0] for s in snvs])


def _de_novo_snvs(
    spec: CohortSpec, seed: int, ctx: _Context, child: str, region: Region
) -> list[tuple[int, str, str, int]]:
    rng = rng_for(seed, "denovo", child, region.name)
    n = rng.poisson(2.0 * spec.de_novo_rate * ctx.allowed.size
                    * (1.0 - spec.de_novo_indel_fraction))
    if n == 0 or ctx.allowed.size == 0:
        return []
    pos = np.unique(ctx.allowed[rng.integers(ctx.allowed.size, size=n)])
    shift = rng.integers(1, 4, size=pos.size)
    haps = rng.integers(2, size=pos.size)
    bases = b"ACGT"
    out = []
    for p, k, h in zip(pos, shift, haps, strict=True):
        r = chr(ctx.seq[p - 1 - region.start])
        out.append((int(p), r, chr(bases[(bases.index(r.encode()) + int(k)) % 4]), int(h)))
    return out


def _de_novo_indels(
    spec: CohortSpec, seed: int, ctx: _Context, child: str, region: Region, *, taken: list[int]
) -> list[tuple[int, str, str, int]]:
    """De novo indels: anchored, left-normalized (so the truth has one spelling), clear of
    background sites and of the child's other de novos by at least one base."""
    rng = rng_for(seed, "denovo-indel", child, region.name)
    n = int(rng.poisson(2.0 * spec.de_novo_rate * ctx.allowed.size * spec.de_novo_indel_fraction))
    bases = b"ACGT"
    busy = np.zeros(ctx.open_.size, dtype=bool)
    for p in taken:
        busy[max(p - 2 - region.start, 0): p + 1 - region.start] = True
    out: list[tuple[int, str, str, int]] = []
    for _ in range(50 * n):
        if len(out) == n:
            break
        p = int(ctx.allowed[rng.integers(ctx.allowed.size)])
        size = int(rng.integers(1, spec.de_novo_max_indel + 1))
        insertion = bool(rng.random() < 0.5)
        ins = bytes(bases[i] for i in rng.integers(4, size=size))
        hap = int(rng.integers(2))
        o = p - 1 - region.start
        span = 2 if insertion else size + 1  # anchor + the base after it / the deleted bases
        if o + span > ctx.open_.size or not ctx.open_[o:o + span].all() or busy[o:o + span].any():
            continue
        anchor = int(ctx.seq[o])
        if insertion:
            if ins[-1] == anchor:
                continue  # would shift left: not normalized
            ref, alt = chr(anchor), chr(anchor) + ins.decode()
        else:
            if int(ctx.seq[o + size]) == anchor:
                continue
            ref = ctx.seq[o:o + size + 1].tobytes().decode()
            alt = ref[0]
        busy[max(o - 1, 0):o + span + 1] = True
        out.append((p, ref, alt, hap))
    return sorted(out)


def _plan(spec: CohortSpec, seed: int, inputs: CohortInputs) -> tuple[list[Sample], list[Spike]]:
    # Specs hold dicts (unhashable): cache on their canonical JSON.
    return _plan_cached(spec.model_dump_json(), seed, inputs)


@functools.lru_cache(maxsize=4)
def _plan_cached(
    spec_json: str, seed: int, inputs: CohortInputs
) -> tuple[list[Sample], list[Spike]]:
    spec = CohortSpec.model_validate_json(spec_json)
    samples = cohort_samples(spec, seed=seed)
    return samples, plan_spikes(spec, seed=seed, inputs=inputs, samples=samples)


def simulate_cohort_block(
    spec: CohortSpec,
    *,
    region: str,
    sample_ids: list[str] | tuple[str, ...],
    seed: int,
    reference: str = "grch37-chr20-demo",
    base_dir: Path | None = None,
) -> GenotypeBlock:
    """Simulate the genotypes of ``sample_ids`` over ``region``.

    Parameters
    ----------
    spec
        The cohort.
    region
        ``CHROM`` or ``CHROM:START-END`` (1-based inclusive) on the reference.
    sample_ids
        A subset of :func:`cohort_samples` ids, in any order (rows come out in this order).
        Trio children may come without their parents: parents are re-derived from their keys.
    seed
        Root seed of the dataset.
    reference
        Bundle name (its sites/genotypes/exons are the defaults) or FASTA path.
    base_dir
        Folder relative paths of the spec are resolved against.

    Returns
    -------
    GenotypeBlock
        Background sites of the region (all of them, including ones no sample carries) plus the
        de novo and spiked sites of these samples; ``haps`` is (n_samples, n_sites, 2) int8.

    Raises
    ------
    SpecError
        Unknown sample id, bad region, or a burden gene missing from the exon BED.
    """
    if not sample_ids:
        raise SpecError("sample_ids is empty", where="sample_ids")
    inputs = resolve_inputs(spec, reference=reference, base_dir=base_dir)
    reg = parse_region(region, fasta=inputs.fasta)
    samples, spikes = _plan(spec, seed, inputs)
    by_id = {s.sample: s for s in samples}
    unknown = [s for s in sample_ids if s not in by_id]
    if unknown:
        raise SpecError(
            f"{len(unknown)} unknown sample ids, e.g. {unknown[0]!r}", where="sample_ids"
        )
    if len(set(sample_ids)) != len(sample_ids):
        raise SpecError("sample ids repeated", where="sample_ids")
    ctx = _context(
        inputs, reg, spec.genotype_source, spec.max_indel, spec.cm_per_mb, spec.target_padding
    )

    n_bg = ctx.pos.size
    bg = np.empty((len(sample_ids), n_bg, 2), dtype=np.int8)
    extras: dict[tuple[int, str, str], tuple[str, str, str]] = {}
    carriers: list[tuple[tuple[int, str, str], int, int]] = []  # (site key, row, hap)
    for row, sid in enumerate(sample_ids):
        s = by_id[sid]
        if s.father:
            f_h = _founder(spec, seed, ctx, by_id[s.father], reg)
            m_h = _founder(spec, seed, ctx, by_id[s.mother], reg)
            bg[row, :, 0] = _transmit(spec, rng_for(seed, "transmit", sid, reg.name, "F"), ctx, f_h)
            bg[row, :, 1] = _transmit(spec, rng_for(seed, "transmit", sid, reg.name, "M"), ctx, m_h)
            for p, r, a, h in _de_novo(spec, seed, ctx, sid, reg):
                extras.setdefault((p, r, a), (SOURCE_DENOVO, "", ""))
                carriers.append(((p, r, a), row, h))
        else:
            bg[row] = _founder(spec, seed, ctx, s, reg)
    rows = {sid: i for i, sid in enumerate(sample_ids)}
    for sp in spikes:
        if sp.sample in rows and sp.chrom == reg.chrom and reg.start < sp.pos <= reg.end:
            key = (sp.pos, sp.ref, sp.alt)
            extras.setdefault(key, (SOURCE_SPIKE, sp.gene, sp.csq))
            carriers.append((key, rows[sp.sample], sp.hap))

    keys = sorted(extras)
    col = {k: n_bg + i for i, k in enumerate(keys)}
    haps = np.zeros((len(sample_ids), n_bg + len(keys), 2), dtype=np.int8)
    haps[:, :n_bg] = bg
    for key, row, h in carriers:
        haps[row, col[key], h] = 1
    pos = np.concatenate([ctx.pos, np.array([k[0] for k in keys], dtype=np.int64)])
    # Stable: extras never share a position with a background site, and are already in
    # (pos, ref, alt) order among themselves.
    order = np.argsort(pos, kind="stable")
    obj = lambda v: np.asarray(v, dtype=object)  # noqa: E731
    return GenotypeBlock(
        region=reg,
        sample_ids=tuple(sample_ids),
        pos=pos[order],
        ref=np.concatenate([ctx.ref, obj([k[1] for k in keys])])[order],
        alt=np.concatenate([ctx.alt, obj([k[2] for k in keys])])[order],
        pop_af=np.concatenate([ctx.pop_af, np.zeros(len(keys))])[order],
        source=np.concatenate([obj([SOURCE_BACKGROUND] * n_bg), obj([extras[k][0] for k in keys])])[
            order
        ],
        gene=np.concatenate([obj([""] * n_bg), obj([extras[k][1] for k in keys])])[order],
        csq=np.concatenate([obj([""] * n_bg), obj([extras[k][2] for k in keys])])[order],
        haps=haps[:, order],
    )

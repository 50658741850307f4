"""Planning: the spec becomes ordered work units, each with its own seed, and a cost.

A work unit is one fixed grid chunk of one contig (``chunk_size`` bases). Units are defined by
the spec, never by the number of workers, which is what makes output identical on any cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ReferenceDataError, SpecError
from .intervals import intersect, merge, parse_region, read_bed, total
from .reference import Reference
from .resources import get_reference_bundle, resolve_file
from .spec import DatasetSpec
from .variants.model import Variant, variant_key
from .variants.ploidy import apply_ploidy, ploidy_map, present_intervals
from .variants.spikes import explicit_spikes, random_spikes
from .variants.vcf_source import vcf_spikes

__all__ = ["WorkUnit", "Plan", "plan_dataset", "unit_seed", "Streams", "CostEstimate"]


class Streams:
    """First element of every seed's spawn key: which kind of draw a stream feeds."""

    READS = 1
    GERMLINE = 2
    SPIKES = 3
    #: Fragments across the junctions of a translocation (key: event index, side, slot,
    #: tumor flag); every unit the junction touches regenerates the same ones.
    JUNCTIONS = 9


def unit_seed(seed: int, stream: int, *key: int) -> np.random.SeedSequence:
    """The seed of one stream: derived from the spec seed and the unit's identity only."""
    return np.random.SeedSequence(seed, spawn_key=(stream, *key))


@dataclass(frozen=True)
class WorkUnit:
    """One grid chunk of one contig.

    Attributes
    ----------
    index
        Position in the plan (output order).
    contig_index, grid
        Identity used for seeds: contig number in the reference and chunk number on it.
    start, end
        The chunk ``[start, end)``; fragments *start* inside it.
    territory : np.ndarray, shape (k, 2)
        Where fragments may lie: accessible bases (within regions, and within padded
        targets for exome/panel).
    regions : np.ndarray, shape (j, 2)
        The spec's regions inside the chunk (where germline background is sampled).
    """

    index: int
    contig: str
    contig_index: int
    grid: int
    start: int
    end: int
    territory: np.ndarray = field(compare=False, repr=False)
    regions: np.ndarray = field(compare=False, repr=False)
    accessible_bases: int = field(default=0, compare=False)
    """Accessible (non-N) bases of the chunk's regions, targets or not (off-target reads)."""

    @property
    def name(self) -> str:
        return f"u{self.index:06d}"

    @property
    def territory_bases(self) -> int:
        return total(self.territory)


@dataclass(frozen=True)
class CostEstimate:
    """What a run will cost, known before it starts."""

    read_pairs: int
    territory_bases: int
    output_bytes: int
    cpu_seconds: float

    def to_dict(self) -> dict:
        return {
            "read_pairs": self.read_pairs,
            "territory_bases": self.territory_bases,
            "output_bytes": self.output_bytes,
            "cpu_seconds": round(self.cpu_seconds, 1),
        }


# Measured on the demo (2x150, NovaSeq-binned model, BGZF ISA-L level 1; level 0 writes about
# 10% more): compressed bytes per read pair for the FASTQ pair and for the golden BAM, and
# generation throughput per CPU core. Used only for estimates.
FASTQ_BYTES_PER_PAIR = 75
BAM_BYTES_PER_PAIR = 90
PAIRS_PER_CPU_SECOND = 60_000


@dataclass
class Plan:
    """Everything a worker needs, small enough to ship to it."""

    spec: DatasetSpec
    base_dir: Path
    reference: Reference
    units: list[WorkUnit]
    spikes: list[Variant]
    germline_vcf: Path | None
    targets: dict[str, np.ndarray] | None
    ploidy: dict[str, np.ndarray] = field(default_factory=dict)
    """Non-diploid stretches per contig, rows (start, end, n) (``sample.sex``/``ploidy``)."""

    def __dask_tokenize__(self) -> tuple:
        # A plan is a pure function of its spec and base folder: hashing those is enough, and
        # spares schedulers from walking tens of thousands of spikes at every task submission.
        from .spec import spec_hash

        return ("synthlib.Plan", spec_hash(self.spec), str(self.base_dir))

    def pairs_for(self, unit: WorkUnit) -> int:
        """Read pairs of a unit: coverage x territory / bases per pair.

        Exome/panel under the capture model: ``coverage`` is the mean depth over the target
        bases, and the count comes from :mod:`synthlib.reads.capture_plan`.
        """
        if self.targets is not None and self.spec.assay.capture.model == "capture":
            from .reads.capture_plan import capture_pairs  # reads.* load lazily from plan

            return capture_pairs(self, unit)
        return int(round(self.spec.coverage * unit.territory_bases / (2 * self.spec.reads.length)))

    def cost(self) -> CostEstimate:
        pairs = sum(self.pairs_for(u) for u in self.units)
        out = self.spec.outputs
        per_pair = (FASTQ_BYTES_PER_PAIR if out.fastq else 0) + (
            BAM_BYTES_PER_PAIR if out.bam else 0)
        return CostEstimate(
            read_pairs=pairs,
            territory_bases=sum(u.territory_bases for u in self.units),
            output_bytes=pairs * per_pair,
            cpu_seconds=pairs / PAIRS_PER_CPU_SECOND,
        )

    def spikes_in(self, contig: str, start: int, end: int) -> list[Variant]:
        return [v for v in self.spikes if v.chrom == contig and start <= v.pos < end]


def _regions(spec: DatasetSpec, ref: Reference) -> dict[str, np.ndarray]:
    if not spec.reference.regions:
        return {c: np.array([[0, n]], dtype=np.int64) for c, n in ref.lengths.items()}
    out: dict[str, list[tuple[int, int]]] = {}
    for i, region in enumerate(spec.reference.regions):
        chrom, s, e = parse_region(region)
        length = ref.check_contig(chrom, where=f"reference.regions[{i}]")
        s, e = (0, length) if s is None else (s, min(e, length))
        out.setdefault(chrom, []).append((s, e))
    ordered = [c for c in ref.lengths if c in out]
    return {c: merge(np.array(out[c], dtype=np.int64)) for c in ordered}


def plan_dataset(spec: DatasetSpec, *, base_dir: Path | None = None) -> Plan:
    """Resolve the spec's resources, cut the territory into units and place the spikes.

    Parameters
    ----------
    base_dir
        Folder relative paths in the spec are taken from (the spec file's folder).

    Raises
    ------
    ReferenceDataError, VariantError
        For missing resources or impossible variants.
    """
    if spec.cohort is not None:
        raise SpecError("a cohort spec is planned per sample block by "
                        "synthlib.cohort.study.plan_cohort_study, not as one individual",
                        where="cohort")
    base_dir = Path(base_dir or ".")
    bundle = get_reference_bundle(spec.reference.name)
    fasta = resolve_file(bundle.fasta if bundle else spec.reference.name, base_dir=base_dir,
                         what="reference")
    ref = Reference(fasta)
    regions = _regions(spec, ref)

    targets = None
    if spec.assay.type != "wgs":
        tpath = resolve_file(spec.assay.targets or "", base_dir=base_dir, what="targets")
        if spec.assay.genes:  # a panel cut from an exon BED by gene symbol
            from .genes import gene_column_for, gene_targets

            targets = gene_targets(
                bed=tpath, genes=spec.assay.genes, padding=spec.assay.padding,
                gene_column=gene_column_for(spec.assay.targets or "", spec.assay.gene_column))
        else:
            targets = read_bed(tpath, padding=spec.assay.padding)
        unknown = sorted(set(targets) - set(ref.lengths))
        if unknown:
            raise ReferenceDataError(
                f"targets name contigs not in the reference: {', '.join(unknown[:5])}",
                where=str(tpath),
            )

    germline_vcf = None
    if spec.germline.source == "population":
        name = spec.germline.vcf or (bundle.roles.get("sites") if bundle else None)
        if name is None:
            raise ReferenceDataError(
                "germline.source is 'population' but no germline.vcf is given and the reference "
                "has no bundled sites VCF", where="germline.vcf")
        germline_vcf = resolve_file(name, base_dir=base_dir, what="population VCF")
    elif spec.germline.source == "sample":
        from .variants.germline import vcf_samples

        germline_vcf = resolve_file(spec.germline.vcf or "", base_dir=base_dir,
                                    what="genotype VCF")
        names = vcf_samples(germline_vcf)
        if spec.germline.sample is not None and spec.germline.sample not in names:
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise ReferenceDataError(
                f"sample {spec.germline.sample!r} is not in the VCF (has: {shown})",
                where="germline.sample")

    ploidy = ploidy_map(sex=spec.sample.sex, overrides=spec.sample.ploidy, lengths=ref.lengths)
    cs = spec.chunk_size
    contig_index = {c: i for i, c in enumerate(ref.lengths)}
    units: list[WorkUnit] = []
    territory_all: list[tuple[str, np.ndarray]] = []
    target_all: list[tuple[str, np.ndarray]] = []
    for contig, reg in regions.items():
        for grid in range(int(reg[0, 0]) // cs, (int(reg[-1, 1]) - 1) // cs + 1):
            s, e = grid * cs, min((grid + 1) * cs, ref.lengths[contig])
            chunk_regions = intersect(reg, np.array([[s, e]], dtype=np.int64))
            if not len(chunk_regions):
                continue
            terr = np.concatenate([ref.accessible(contig, a, b) for a, b in chunk_regions])
            if contig in ploidy:  # an absent contig (female chrY) has no territory
                terr = intersect(merge(terr), present_intervals(ploidy, contig, 0, e))
            acc_bases = total(terr)  # runs of disjoint regions: disjoint too
            if targets is not None:
                terr = intersect(merge(terr), targets.get(contig, np.zeros((0, 2), np.int64)))
            units.append(WorkUnit(len(units), contig, contig_index[contig], grid, s, e,
                                  territory=terr, regions=chunk_regions,
                                  accessible_bases=acc_bases))
            if len(terr):
                territory_all.append((contig, terr))
    if targets is not None:
        target_all = [(c, u.territory) for u in units for c in [u.contig] if len(u.territory)]
    if not units or not any(len(u.territory) for u in units):
        raise ReferenceDataError("the spec's territory has no accessible (non-N) bases",
                                 where="reference.regions")

    explicit = explicit_spikes(spec, ref)
    explicit = sorted(explicit + vcf_spikes(spec, ref, base_dir=base_dir, ploidy=ploidy,
                                            taken=explicit), key=variant_key)
    rng = np.random.default_rng(unit_seed(spec.seed, Streams.SPIKES))
    strata = None
    if any(r.in_regions for r in spec.variants.random):
        from .strata import load_strata

        strata = load_strata([r.in_regions for r in spec.variants.random if r.in_regions],
                             base_dir=base_dir)
    randoms = random_spikes(spec, ref, territory=territory_all, targets=target_all or None,
                            taken=explicit, rng=rng, strata=strata)
    return Plan(spec=spec, base_dir=base_dir, reference=ref, units=units,
                spikes=apply_ploidy(sorted(explicit + randoms, key=variant_key), ploidy),
                germline_vcf=germline_vcf, targets=targets, ploidy=ploidy)

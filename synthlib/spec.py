"""DatasetSpec: what a dataset promises, validated at entry.

A spec is a YAML document; every field is documented here and exported as JSON Schema
(:func:`json_schema`). Unknown keys are rejected, so a typo never silently means "default".
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from .cohort.spec import CohortSpec
from .errors import SpecError
from .reads.library_spec import CaptureSpec, LibrarySpec

__all__ = [
    "DatasetSpec",
    "ReferenceSpec",
    "AssaySpec",
    "ReadsSpec",
    "FragmentSpec",
    "GermlineSpec",
    "ExplicitVariant",
    "RandomVariants",
    "VariantsSpec",
    "ExplicitSV",
    "RandomSV",
    "StructuralSpec",
    "SomaticSpec",
    "SampleSpec",
    "OutputsSpec",
    "QCSpec",
    "load_spec",
    "read_yaml",
    "validate_document",
    "parse_spec",
    "spec_hash",
    "json_schema",
    "ID_PATTERN",
]

#: Dataset ids: lowercase words joined by single hyphens, starting with a letter
#: (``demo``, ``exome-100x``, ``tof-cohort-demo``). They become path components and URLs.
ID_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
_VERSION_PATTERN = r"^\d+\.\d+\.\d+$"
_REGION_RE = re.compile(r"^(?P<chrom>[^:\s]+)(:(?P<start>[\d,]+)-(?P<end>[\d,]+))?$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ReferenceSpec(_Strict):
    """Which genome to simulate from."""

    name: str = Field(min_length=1)
    """A registered reference (see ``synthlib.resources``) or a path to an indexed FASTA
    (relative paths are resolved against the spec file's folder)."""
    regions: list[str] = Field(default_factory=list)
    """Restrict simulation to these regions (``chr20`` or ``chr20:1,000,001-2,000,000``, 1-based
    inclusive). Empty means every contig. N stretches are always skipped."""

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: list[str]) -> list[str]:
        for region in value:
            m = _REGION_RE.match(region)
            if not m:
                raise ValueError(f"region {region!r} is not CHROM or CHROM:START-END")
            if m["start"] is not None:
                start, end = (int(m[k].replace(",", "")) for k in ("start", "end"))
                if start < 1 or end < start:
                    raise ValueError(f"region {region!r} needs 1 <= START <= END")
        return value


class AssaySpec(_Strict):
    """What was sequenced: the whole genome, an exome, or a panel of targets."""

    type: Literal["wgs", "exome", "panel"] = "wgs"
    """``wgs`` draws fragments over the accessible genome; ``exome`` and ``panel`` draw them
    with the capture model of ``assay.capture`` (per-bait efficiency, GC, flank falloff and an
    off-target fraction), or uniformly over targets plus padding (``capture.model: uniform``)."""
    targets: str | None = None
    """BED of capture targets (registered resource name or path). Required for exome/panel."""
    padding: int = Field(default=100, ge=0, le=10_000)
    """Bases added on each side of every target before drawing fragments."""
    capture: CaptureSpec = CaptureSpec()
    """Hybrid-capture model (exome/panel only): bait efficiency, off-target fraction."""
    genes: list[str] = Field(default_factory=list)
    """Gene symbols: keep only the exons of these genes from ``targets`` (an exon BED), e.g.
    a cardiac panel cut from the MANE exon BED. Empty keeps every target."""
    gene_column: int | None = Field(default=None, ge=4, le=20)
    """1-based column of ``targets`` naming the gene (default: the resource's registered
    column, else 4: ``GENE`` or ``GENE_exonN``)."""

    @model_validator(mode="after")
    def _targets_needed(self) -> AssaySpec:
        if self.type != "wgs" and not self.targets:
            raise ValueError(f"assay type {self.type!r} needs 'targets' (a BED file)")
        if self.genes and self.type == "wgs":
            raise ValueError("'genes' selects exons of 'targets': use an exome or panel assay")
        return self


class ReadsSpec(_Strict):
    """Read layout and the sequencer error model."""

    length: int = Field(default=150, ge=30, le=500)
    """Read length in bases (both mates)."""
    model: str = "illumina-novaseq-binned-2x150"
    """Error/quality model: a shipped preset name or a path to a model file."""


class FragmentSpec(_Strict):
    """Insert-size (fragment length) distribution, truncated to [min, max]: a normal
    (``mean``, ``sd``) or an empirical histogram learned from real reads (``empirical``)."""

    model: Literal["normal", "empirical"] = "normal"
    """``normal``: a normal of ``mean``/``sd`` rounded to integers; ``empirical``: the
    histogram of ``empirical`` (``mean``/``sd`` are then not used)."""
    empirical: str | None = None
    """For ``model: empirical``: a shipped insert-size preset (``synth model insert-sizes``;
    see ``synthlib/data/models/README.md``) or a JSON path relative to the spec file."""
    mean: float = Field(default=350.0, gt=0)
    """Mean fragment length in bases."""
    sd: float = Field(default=50.0, ge=0)
    """Standard deviation of the fragment length."""
    min: int = Field(default=50, ge=1)
    """Shortest fragment drawn."""
    max: int = Field(default=1000, ge=1, le=5000)
    """Longest fragment drawn (also the margin a work unit reads beyond its chunk)."""

    @model_validator(mode="after")
    def _bounds(self) -> FragmentSpec:
        if self.model == "empirical":
            if not self.empirical:
                raise ValueError("model 'empirical' needs 'empirical' (a preset or JSON path)")
            if {"mean", "sd"} & self.model_fields_set:
                raise ValueError("'mean'/'sd' describe the normal model; drop them for "
                                 "model 'empirical'")
            if self.min > self.max:
                raise ValueError(f"need min <= max, got {self.min} > {self.max}")
            return self
        if self.empirical is not None:
            raise ValueError("'empirical' needs model: empirical")
        if not self.min <= self.mean <= self.max:
            raise ValueError(
                f"need min <= mean <= max, got {self.min} <= {self.mean} <= {self.max}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):  # noqa: ANN001, ANN202 - pydantic's wrap-serializer protocol
        # A normal-model spec dumps exactly as before the empirical option existed, so its
        # spec_hash and manifest bytes do not change.
        data = handler(self)
        if isinstance(data, dict) and self.model == "normal" and self.empirical is None:
            data.pop("model", None)
            data.pop("empirical", None)
        elif isinstance(data, dict) and self.model == "empirical":
            # Unused by this model, and refused on input: the dump must load again.
            data.pop("mean", None)
            data.pop("sd", None)
        return data


class GermlineSpec(_Strict):
    """Background germline variants of the simulated individual."""

    source: Literal["none", "population", "sample"] = "population"
    """``population``: genotypes drawn from the allele frequencies of a sites VCF under
    Hardy-Weinberg; ``sample``: a real participant's genotypes from ``vcf`` (e.g. a 1000
    Genomes or Genome-in-a-Bottle sample); ``none``: no background."""
    vcf: str | None = None
    """Population sites VCF, or for ``sample`` the genotype VCF (registered resource or path);
    default for ``population``: the reference's own sites."""
    sample: str | None = None
    """For ``source: sample``: which sample column of ``vcf`` (default: the first). Unphased
    heterozygous genotypes are placed on a haplotype by the chunk's own random stream."""
    population: Literal["ALL", "AFR", "AMR", "EAS", "EUR", "SAS"] = "ALL"
    """Which allele frequency to use: ``ALL`` reads ``AF``, others read ``<POP>_AF``."""
    max_indel: int = Field(default=50, ge=0)
    """Indels longer than this in the population VCF are left out of the background."""

    @model_validator(mode="after")
    def _sample_needs_vcf(self) -> GermlineSpec:
        if self.source == "sample" and not self.vcf:
            raise ValueError("source 'sample' needs 'vcf' (the participant's genotype VCF)")
        if self.sample is not None and self.source != "sample":
            raise ValueError("'sample' is only used with source 'sample'")
        return self


Genotype = Literal["0|1", "1|0", "1|1", "het", "hom"]


class ExplicitVariant(_Strict):
    """One variant to spike, written as in a VCF (1-based POS, REF as in the reference)."""

    chrom: str
    pos: int = Field(ge=1)
    ref: str = Field(pattern=r"^[ACGTN]+$")
    alt: str = Field(pattern=r"^[ACGTN]+$")
    genotype: Genotype = "het"
    """Phased genotype, or ``het`` (placed on haplotype 1, i.e. ``0|1``) / ``hom`` (``1|1``)."""
    id: str | None = None
    """Optional name carried into the truth VCF's ID column."""
    vaf: float | None = Field(default=None, gt=0, le=1)
    """Somatic variant: target allele fraction in the reads (needs ``somatic``); None means a
    germline-like spike present in every cell."""

    @model_validator(mode="after")
    def _differs(self) -> ExplicitVariant:
        if self.ref == self.alt:
            raise ValueError(f"ref and alt are both {self.ref!r}")
        return self


class RandomVariants(_Strict):
    """Random variants placed uniformly over the accessible (or targeted) genome."""

    type: Literal["snv", "insertion", "deletion", "mnv"]
    count: int = Field(ge=1, le=1_000_000)
    genotype: Literal["het", "hom", "mixed"] = "het"
    """``mixed`` draws het:hom as 2:1, the ratio typical of a human genome."""
    min_size: int = Field(default=1, ge=1)
    """Smallest size (indel length or MNV length) drawn."""
    max_size: int = Field(default=10, ge=1, le=50)
    """Largest size drawn (uniform between min and max)."""
    in_targets: bool = False
    """Place only inside targets (exome/panel specs)."""
    in_regions: str | None = None
    """Place only inside this stratification BED (registered resource, e.g.
    ``grch37-chr20-demo.strat-homopolymer`` or ``grch38-giab-strat-v3.6.segdups``, or a path;
    plain or gzipped): each variant's REF span lies inside one of its intervals."""
    vaf: float | None = Field(default=None, gt=0, le=1)
    """Somatic group: target allele fraction of every variant drawn (needs ``somatic``)."""

    @model_validator(mode="after")
    def _sizes(self) -> RandomVariants:
        if self.min_size > self.max_size:
            raise ValueError("min_size > max_size")
        if self.type == "mnv" and self.min_size < 2:
            raise ValueError("an MNV has at least 2 bases: set min_size >= 2")
        return self


SVType = Literal["deletion", "duplication", "inversion", "insertion", "cnv", "translocation",
                 "complex"]
#: Complex SV classes (synthlib.variants.complex): sizes of their pieces in order.
CpxSubtype = Literal["delINV", "INVdel", "delINVdel", "dupINV", "INVdup", "dDUP", "dDUP_INV",
                     "delINS"]


class ExplicitSV(_Strict):
    """One structural variant at a given place (1-based, inclusive coordinates).

    An SV must lie inside one chunk (``chunk_size``), at least ``2 * fragment.max + 64``
    bases past the chunk start.
    """

    type: SVType
    chrom: str
    pos: int = Field(ge=2)
    """First affected base (the base before it is the VCF anchor); for an insertion, the
    new sequence goes right before this base."""
    end: int | None = Field(default=None, ge=2)
    """Last affected base (deletion, duplication, inversion, cnv)."""
    sequence: str | None = Field(default=None, pattern=r"^[ACGT]+$")
    """Inserted sequence (insertion); random when omitted (then ``length`` is needed)."""
    length: int | None = Field(default=None, ge=1, le=100_000)
    """Length of a random inserted sequence."""
    genotype: Genotype = "het"
    cn: int | None = Field(default=None, ge=0, le=20)
    """Total copy number of a ``cnv`` (0..20; 2 is the reference state)."""
    id: str | None = None
    chrom2: str | None = None
    """Translocation partner contig (may equal ``chrom`` for two distant breakpoints)."""
    pos2: int | None = Field(default=None, ge=2)
    """Translocation: first base after the partner's break. The carrying haplotype gets
    der(A) = chrom[:pos-1] + chrom2[pos2-1:] and der(B) = chrom2[:pos2-1] + chrom[pos-1:]."""
    vaf: float | None = Field(default=None, gt=0, le=1)
    """Somatic SV/CNV: target allele fraction (needs ``somatic``); depth over a somatic
    deletion drops to ``1 - vaf`` of the normal's."""
    subtype: CpxSubtype | None = None
    """Complex SV class (type ``complex``), e.g. ``delINV`` or ``dDUP``."""
    sizes: list[int] | None = None
    """Complex SV: size of each piece from ``pos`` on (delINV: [del, inv]; dDUP: [dup, gap];
    delINS: [del, inserted length]; see synthlib.variants.complex)."""

    @model_validator(mode="after")
    def _shape(self) -> ExplicitSV:
        if (self.type == "complex") != (self.subtype is not None and self.sizes is not None):
            raise ValueError("'subtype' and 'sizes' are required for (and only for) type "
                             "complex")
        if self.type == "complex":
            if self.end is not None or self.cn is not None or self.length is not None:
                raise ValueError("a complex SV takes 'sizes' (no 'end', 'cn' or 'length')")
            if self.vaf is not None:
                raise ValueError("somatic complex SVs are not supported yet")
            if self.sequence is not None and self.subtype != "delINS":
                raise ValueError("'sequence' is only for delINS among complex SVs")
            return self
        if (self.type == "translocation") != (self.chrom2 is not None and self.pos2 is not None):
            raise ValueError("'chrom2' and 'pos2' are required for (and only for) type "
                             "translocation")
        if self.type == "translocation":
            if self.end is not None:
                raise ValueError("a translocation takes no 'end' (give chrom2/pos2)")
            if self.cn is not None:
                raise ValueError("'cn' is required for (and only for) type cnv")
            return self
        check_sv_shape(self)
        return self


def check_sv_shape(sv) -> None:
    """The fields a deletion/duplication/inversion/insertion/CNV request needs (explicit SVs
    of a dataset spec and of a spike spec): raises ValueError naming what is wrong."""
    if sv.type == "insertion":
        if (sv.sequence is None) == (sv.length is None):
            raise ValueError("an insertion needs exactly one of 'sequence' or 'length'")
    elif sv.end is None or sv.end < sv.pos:
        raise ValueError(f"a {sv.type} needs 'end' >= 'pos'")
    if (sv.type == "cnv") != (sv.cn is not None):
        raise ValueError("'cn' is required for (and only for) type cnv")


class RandomSV(_Strict):
    """Random structural variants placed uniformly over the accessible territory."""

    type: SVType
    count: int = Field(ge=1, le=100_000)
    min_size: int = Field(default=50, ge=1)
    """Smallest affected length (inserted length for insertions)."""
    max_size: int = Field(default=10_000, ge=1, le=100_000)
    """Largest size drawn (log-uniform between min and max, like SV catalogues' spectra)."""
    genotype: Literal["het", "hom", "mixed"] = "het"
    cn: list[int] = Field(default_factory=lambda: [0, 1, 3, 4])
    """For ``cnv``: copy numbers drawn from (uniformly)."""
    vaf: float | None = Field(default=None, gt=0, le=1)
    """Somatic group: target allele fraction of every SV drawn (needs ``somatic``)."""
    subtype: list[CpxSubtype] | None = None
    """For ``complex``: classes drawn from (uniformly); each piece size is drawn
    log-uniformly in [min_size, max_size]."""

    @model_validator(mode="after")
    def _sizes(self) -> RandomSV:
        if self.min_size > self.max_size:
            raise ValueError("min_size > max_size")
        if (self.type == "complex") != bool(self.subtype):
            raise ValueError("'subtype' (a list) is required for (and only for) type complex")
        if self.type == "complex" and self.vaf is not None:
            raise ValueError("somatic complex SVs are not supported yet")
        if any(c < 0 or c > 20 or c == 2 for c in self.cn):
            raise ValueError("cnv copy numbers must be in 0..20 and not 2")
        return self


class StructuralSpec(_Strict):
    """Structural variants (deletions, tandem duplications, inversions, insertions, CNVs)."""

    explicit: list[ExplicitSV] = Field(default_factory=list)
    random: list[RandomSV] = Field(default_factory=list)


class VariantsSpec(_Strict):
    """Variants to spike in on top of the germline background."""

    explicit: list[ExplicitVariant] = Field(default_factory=list)
    random: list[RandomVariants] = Field(default_factory=list)
    structural: StructuralSpec = StructuralSpec()
    """Structural variants and copy-number changes."""
    vcf: str | None = None
    """Spike every record of this VCF/BCF (plain or bgzipped; registered resource or path
    relative to the spec file): SNVs, MNVs, indels, symbolic ``<DEL>``, ``<DUP>``, ``<INV>``,
    ``<INS>``, ``<CNV>`` (see ``synthlib.variants.vcf_source`` for the rules). A truth VCF of
    another run given here (with ``germline.source: none``) yields the same truth again."""
    vcf_sample: str | None = None
    """Sample column whose GT is used (default: the first; no sample column means het)."""


class SampleSpec(_Strict):
    """The simulated individual: sex and per-contig ploidy.

    Rule: ``male`` makes chrX (``chrX``/``X``) haploid outside PAR1/PAR2 (GRCh37 or GRCh38
    coordinates, recognised by the contig's exact length; none on other builds) and
    chrY haploid (its PARs absent: their reads are the chrX PAR's); ``female`` makes chrY
    absent (ploidy 0, no reads). A haploid locus has one haplotype read at the
    per-haplotype depth (``coverage / 2``), its germline alleles are present with
    probability AF, spiked het/hom genotypes become ``1`` and the truth GT is haploid.
    """

    sex: Literal["female", "male"] | None = None
    """None: every contig diploid (unless ``ploidy`` says otherwise)."""
    ploidy: dict[str, Annotated[int, Field(ge=0, le=2)]] = Field(default_factory=dict)
    """Whole-contig ploidy overrides (0, 1 or 2), applied after ``sex``."""


class SomaticSpec(_Strict):
    """Tumor sample: variants with a ``vaf`` are somatic, present in a fraction of the cells.

    A het somatic variant with target ``vaf`` is carried by a fraction ``2 * vaf / purity`` of
    the tumor cells (nested clones: lower-VAF variants sit in a subset of the cells of
    higher-VAF ones), so ``vaf`` may not exceed ``purity / 2`` (``purity`` for hom).
    The matched normal is the same spec without the ``vaf`` variants and this section
    (:func:`synthlib.variants.somatic.normal_spec`): same seed, same germline.
    """

    purity: float = Field(default=1.0, gt=0, le=1)
    """Fraction of tumor cells in the sample."""
    normal_coverage: float | None = Field(default=None, gt=0, le=10_000)
    """Coverage of the matched normal (default: the tumor's)."""


class OutputsSpec(_Strict):
    """Which files to write."""

    fastq: bool = True
    """Paired FASTQ (``reads_R1.fastq.gz``, ``reads_R2.fastq.gz``), BGZF-compressed."""
    bam: bool = True
    """Golden BAM: reads at their true positions, coordinate-sorted and indexed."""
    vcf: bool = True
    """Truth VCF of every variant put in, bgzipped and tabix-indexed (always computed)."""


class QCSpec(_Strict):
    """The QC gate: a dataset whose checks fail is marked failed and never published."""

    thresholds: dict[str, float] = Field(default_factory=dict)
    """Overrides of the gate's defaults (keys of ``synthlib.qc.gate.DEFAULT_THRESHOLDS``, e.g.
    ``snv_recall_min: 0.98``); unknown keys are rejected."""
    max_pairs: int | None = Field(default=None, ge=1)
    """Datasets with more read pairs are QC'd on the reads around truth variants plus a random
    sample (default: the QC module's own limit)."""

    @field_validator("thresholds")
    @classmethod
    def _known_keys(cls, value: dict[str, float]) -> dict[str, float]:
        from .qc.gate import DEFAULT_THRESHOLDS  # the gate owns the list of checks

        unknown = sorted(set(value) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ValueError(f"unknown QC thresholds {unknown} (known: "
                             f"{', '.join(DEFAULT_THRESHOLDS)})")
        return value


class DatasetSpec(_Strict):
    """A dataset that can be ordered: reference, assay, depth, reads and variants."""

    id: Annotated[str, Field(pattern=ID_PATTERN, max_length=64)]
    """Catalog id (lowercase words joined by hyphens); used in paths and URLs."""
    version: Annotated[str, Field(pattern=_VERSION_PATTERN)] = "1.0.0"
    """Semantic version of the spec; bumped whenever the data it produces changes."""
    seed: int = Field(ge=0, lt=2**63)
    """Root of every random draw (with the work unit's identity)."""
    priority: int = Field(default=3, ge=1, le=5)
    """1 = most wanted; the catalog is built in priority order."""
    title: str = ""
    """One line a person reads in a listing."""
    reason: str = Field(min_length=1)
    """Why people want this dataset, and who does."""
    reference: ReferenceSpec
    assay: AssaySpec = AssaySpec()
    coverage: float = Field(gt=0, le=10_000)
    """WGS: mean depth over the accessible territory. Exome/panel with the capture model: mean
    depth over the unpadded target bases (both mates, duplicates counted); with
    ``assay.capture.model: uniform``: over targets plus padding."""
    reads: ReadsSpec = ReadsSpec()
    fragment: FragmentSpec = FragmentSpec()
    library: LibrarySpec = LibrarySpec()
    """Library prep: GC bias, duplicates, adapter read-through."""
    germline: GermlineSpec = GermlineSpec()
    variants: VariantsSpec = VariantsSpec()
    sample: SampleSpec = SampleSpec()
    """Sex and per-contig ploidy of the simulated individual."""
    somatic: SomaticSpec | None = None
    """Make this a tumor sample (somatic variants at target VAFs, tumor purity)."""
    outputs: OutputsSpec = OutputsSpec()
    qc: QCSpec = QCSpec()
    chunk_size: int = Field(default=1_000_000, ge=10_000, le=50_000_000)
    """Reference bases per work unit: bounds memory and sets the unit of parallelism."""
    cohort: CohortSpec | None = None
    """A case/control (and trio) cohort instead of one individual: joint truth VCF, samples
    table and gene burden study (``synth run`` routes it to the cohort flow). Rule: the
    cohort's background genotypes come from ``cohort.genotype_source``, so ``germline`` must be
    left out (it then means ``source: none``) or say ``source: none``; ``variants`` must be
    empty (damaging variants come from ``cohort.burden``); ``reference.regions`` must list the
    regions the cohort is simulated over. ``reads``/``fragment``/``coverage``/``outputs``
    describe per-sample reads, which are planned and costed only."""

    @model_validator(mode="before")
    @classmethod
    def _cohort_germline_default(cls, data: object) -> object:
        # A cohort draws its own background: an omitted germline section means none, not the
        # single-sample default (population), so the spec and its hash say what is simulated.
        if isinstance(data, dict) and data.get("cohort") is not None and "germline" not in data:
            return {**data, "germline": {"source": "none"}}
        return data

    @model_validator(mode="after")
    def _cohort_consistent(self) -> DatasetSpec:
        if self.cohort is None:
            return self
        if self.germline.source != "none":
            raise ValueError(
                "a cohort spec draws background genotypes from cohort.genotype_source: "
                "leave 'germline' out or set germline.source: none")
        if self.variants.explicit or self.variants.random:
            raise ValueError(
                "a cohort spec takes no 'variants': damaging variants come from cohort.burden")
        if not self.reference.regions:
            raise ValueError("a cohort spec needs reference.regions (the regions simulated)")
        if self.somatic is not None:
            raise ValueError("a cohort spec takes no 'somatic' section (germline cohorts only)")
        return self

    @model_validator(mode="after")
    def _vaf_needs_somatic(self) -> DatasetSpec:
        v = self.variants
        if self.somatic is None and any(x.vaf is not None for x in [
                *v.explicit, *v.random, *v.structural.explicit, *v.structural.random]):
            raise ValueError("variants with 'vaf' are somatic: add a 'somatic' section")
        return self

    @model_validator(mode="after")
    def _chunk_vs_fragment(self) -> DatasetSpec:
        if self.fragment.max >= self.chunk_size:
            raise ValueError("fragment.max must be smaller than chunk_size")
        return self


def _format_location(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_spec(data: object, *, source: str = "<spec>") -> DatasetSpec:
    """Validate a parsed YAML/JSON document as a :class:`DatasetSpec`.

    Raises
    ------
    SpecError
        Naming ``source`` and the first offending field, e.g. ``demo.yaml: coverage: ...``.
    """
    return validate_document(DatasetSpec, data, source=source, what="a spec")


def validate_document(model: type[BaseModel], data: object, *, source: str, what: str):
    """Validate a parsed YAML document against ``model``; one error naming the first field."""
    if not isinstance(data, dict):
        raise SpecError(f"{what} must be a mapping of fields", where=source)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _format_location(first["loc"])
        extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise SpecError(f"field '{field}': {first['msg']}{extra}", where=source) from None


def load_spec(path: str | Path) -> DatasetSpec:
    """Read and validate a spec YAML file (errors name the file, line for YAML syntax, field)."""
    path = Path(path)
    return parse_spec(read_yaml(path), source=str(path))


def read_yaml(path: Path) -> object:
    """A YAML file's document; errors name the file, and the line for YAML syntax."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec: {exc.strerror}", where=str(path)) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"invalid YAML: {getattr(exc, 'problem', exc)}", where=where) from None


def spec_hash(spec: DatasetSpec) -> str:
    """sha256 of the spec's canonical JSON: same content, same hash, whatever the YAML layout."""
    canonical = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_schema() -> dict:
    """JSON Schema of :class:`DatasetSpec` (field docs included as descriptions)."""
    return DatasetSpec.model_json_schema()

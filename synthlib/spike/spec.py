"""SpikeSpec: one "spike these variants into that BAM" job, as a YAML document.

The spec names the input reads (path, URL or bundled resource), the reference they are aligned
to, the variants (a VCF, or an inline list written like a DatasetSpec's ``variants.explicit``
and ``structural.explicit``), the output format and the QC thresholds of the re-call. Unknown
keys are rejected, as in :mod:`synthlib.spec`, so a typo never silently means "default".

Example (``deployments/examples/spike-na12878.yaml``)::

    id: na12878-spiked-demo
    version: 1.0.0
    reason: positive controls for the chr20 pipeline test
    bam: grch37-chr20-demo.na12878-reads
    reference: grch37-chr20-demo.fasta
    variants:
      explicit:
        - {chrom: chr20, pos: 10000200, ref: A, alt: G, vaf: 0.5}
      structural:
        - {type: deletion, chrom: chr20, pos: 10001301, end: 10001400}
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pysam
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ReferenceDataError
from ..resources import get_reference_bundle, resolve_file
from ..spec import ID_PATTERN, ExplicitVariant, check_sv_shape, read_yaml, validate_document
from .inputs import is_remote

__all__ = [
    "SpikeSpec",
    "SpikeVariants",
    "SpikeSV",
    "SpikeQC",
    "parse_spike_spec",
    "load_spike_spec",
    "resolve_input",
    "resolve_reference",
    "write_variants_vcf",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class SpikeSV(_Strict):
    """One structural variant to spike (1-based inclusive coordinates, as in ``ExplicitSV``)."""

    type: Literal["deletion", "duplication", "inversion", "insertion", "cnv"]
    chrom: str
    pos: int = Field(ge=2)
    """First affected base (the base before it is the VCF anchor); an insertion goes right
    before this base."""
    end: int | None = Field(default=None, ge=2)
    """Last affected base (deletion, duplication, inversion, cnv)."""
    sequence: str | None = Field(default=None, pattern=r"^[ACGT]+$")
    """Inserted sequence (insertion); random when omitted (then ``length`` is needed)."""
    length: int | None = Field(default=None, ge=1, le=100_000)
    """Length of a random inserted sequence."""
    genotype: Literal["het", "hom"] = "het"
    """``het``: VAF 0.5, ``hom``: VAF 1 (unless ``vaf`` is given)."""
    vaf: float | None = Field(default=None, gt=0, le=1)
    """Fraction of genome copies carrying it (cnv: fraction of cells at ``cn``)."""
    cn: int | None = Field(default=None, ge=0, le=20)
    """Total copy number of a ``cnv``."""
    id: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> SpikeSV:
        check_sv_shape(self)
        return self


class SpikeVariants(_Strict):
    """What to spike: a VCF, or variants listed inline (not both)."""

    vcf: str | None = None
    """VCF path (relative to the spec), ``https://``/``gs://`` URL or resource name. VAF from
    INFO/VAF, FORMAT/VAF or GT; SVs as symbolic ALTs (see ``synth spike --help``)."""
    explicit: list[ExplicitVariant] = Field(default_factory=list)
    """SNVs, MNVs, indels; ``vaf`` is the fraction of covering reads that get the ALT
    (default from ``genotype``: 0.5 het, 1 hom; a phased genotype picks the haplotype)."""
    structural: list[SpikeSV] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_source(self) -> SpikeVariants:
        inline = bool(self.explicit or self.structural)
        if self.vcf is not None and inline:
            raise ValueError("give either 'vcf' or inline 'explicit'/'structural', not both")
        if self.vcf is None and not inline:
            raise ValueError("nothing to spike: give 'vcf' or 'explicit'/'structural'")
        return self


class SpikeQC(_Strict):
    """The re-call check run on the output (bcftools on the spiked regions)."""

    enabled: bool = True
    level: float = Field(default=0.999, gt=0.5, lt=1)
    """Coverage of the binomial interval the called ALT depth must fall in, given the
    requested VAF and the called depth."""
    min_recall: float = Field(default=1.0, ge=0, le=1)
    """Fraction of callable small variants (requested VAF >= ``callable_vaf``) bcftools must
    call at the spiked allele."""
    callable_vaf: float = Field(default=0.2, gt=0, le=1)
    """Below this VAF a germline caller is not expected to call a site: such spikes are
    checked for VAF when called, never counted as missed."""
    sv_ratio_tolerance: float = Field(default=0.25, gt=0, le=1)
    """|depth after / depth before - expected ratio| allowed per SV (DEL/DUP/CNV)."""
    max_invalid_records: int = Field(default=0, ge=0)
    """Records ``validate_bam`` may flag (MD/NM, mate fields, sorting) in the spiked regions."""


class SpikeSpec(_Strict):
    """A spike job: which reads, which variants, where the result is checked and kept."""

    id: str = Field(pattern=ID_PATTERN)
    """Output folder name: ``<dest>/<id>/<version>``."""
    version: str = Field(pattern=r"^\d+\.\d+\.\d+$")
    title: str = ""
    reason: str = Field(min_length=1)
    """Why these variants are spiked (kept in the manifest)."""
    seed: int = Field(default=0, ge=0)
    bam: str = Field(min_length=1)
    """Coordinate-sorted BAM/CRAM: path, ``https://``/``http://``/``gs://``/``file://`` URL or
    bundled resource name (``grch37-chr20-demo.na12878-reads``)."""
    reference: str = Field(min_length=1)
    """FASTA the reads are aligned to: path, URL, resource name (``grch37-chr20-demo.fasta``)
    or reference bundle name (``grch37-chr20-demo``)."""
    variants: SpikeVariants
    output: Literal["bam", "cram"] = "bam"
    min_mapq: int = Field(default=0, ge=0)
    """Reads below this MAPQ are neither counted nor edited."""
    qc: SpikeQC = Field(default_factory=SpikeQC)


def parse_spike_spec(data: object, *, source: str = "<spike spec>") -> SpikeSpec:
    """Validate a parsed YAML/JSON document as a :class:`SpikeSpec`.

    Raises
    ------
    SpecError
        Naming ``source`` and the first offending field, e.g. ``s.yaml: field 'qc.level': ...``.
    """
    return validate_document(SpikeSpec, data, source=source, what="a spike spec")


def load_spike_spec(path: str | Path) -> SpikeSpec:
    """Read and validate a spike spec YAML (errors name the file, YAML line, or field)."""
    path = Path(path)
    return parse_spike_spec(read_yaml(path), source=str(path))


def resolve_input(value: str, *, base_dir: Path | None, what: str) -> str:
    """A URL unchanged, else the local path of a resource name or (spec-relative) path."""
    if is_remote(value):
        return value
    return str(resolve_file(value, base_dir=base_dir, what=what))


def resolve_reference(value: str, *, base_dir: Path | None) -> str:
    """Like :func:`resolve_input`, also accepting a reference bundle name."""
    bundle = get_reference_bundle(value)
    if bundle is not None:
        value = bundle.fasta
    return resolve_input(value, base_dir=base_dir, what="reference")


def _vaf(genotype: str, vaf: float | None) -> float:
    if vaf is not None:
        return vaf
    return 1.0 if genotype in ("hom", "1|1") else 0.5


_GT = {"het": "0/1", "hom": "1/1"}
_SV_ALT = {"deletion": "DEL", "duplication": "DUP", "inversion": "INV", "cnv": "CNV"}


def write_variants_vcf(spec: SpikeSpec, *, reference: Path, path: Path) -> Path:
    """Write the inline variants of ``spec`` as the VCF ``spike_bam`` reads.

    Small variants keep their REF (checked against the FASTA by the spike); SVs get the
    anchor base from ``reference``. Records are in spec order (the order seeds the draws).

    Raises
    ------
    ReferenceDataError
        A contig or position outside ``reference``.
    """
    v = spec.variants
    try:
        fasta = pysam.FastaFile(str(reference))
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot open reference FASTA: {exc}",
                                 where=str(reference)) from None
    with fasta:
        lengths = dict(zip(fasta.references, fasta.lengths, strict=True))
        lines = ["##fileformat=VCFv4.2"]
        lines += [f"##contig=<ID={c},length={n}>" for c, n in lengths.items()]
        lines += [
            '##INFO=<ID=VAF,Number=1,Type=Float,Description="Requested VAF">',
            '##INFO=<ID=END,Number=1,Type=Integer,Description="Last affected base">',
            '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="SV type">',
            '##INFO=<ID=SVLEN,Number=1,Type=Integer,Description="SV length">',
            '##INFO=<ID=CN,Number=1,Type=Integer,Description="Copy number">',
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
            f"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t{spec.id}",
        ]
        for i, e in enumerate(v.explicit):
            where = f"variants.explicit.{i}"
            if e.chrom not in lengths:
                raise ReferenceDataError(f"contig {e.chrom} is not in the reference", where=where)
            gt = _GT.get(e.genotype, e.genotype)
            lines.append(f"{e.chrom}\t{e.pos}\t{e.id or '.'}\t{e.ref}\t{e.alt}\t.\tPASS\t"
                         f"VAF={_vaf(e.genotype, e.vaf):g}\tGT\t{gt}")
        for i, s in enumerate(v.structural):
            where = f"variants.structural.{i}"
            if s.chrom not in lengths:
                raise ReferenceDataError(f"contig {s.chrom} is not in the reference", where=where)
            last = s.end if s.end is not None else s.pos
            if last > lengths[s.chrom]:
                raise ReferenceDataError("runs past the contig end", where=where)
            anchor = fasta.fetch(s.chrom, s.pos - 2, s.pos - 1).upper()
            info = [f"VAF={_vaf(s.genotype, s.vaf):g}"]
            if s.type == "insertion":
                alt = anchor + s.sequence if s.sequence else "<INS>"
                info += ["SVTYPE=INS", f"SVLEN={len(s.sequence) if s.sequence else s.length}"]
            else:
                alt = f"<{_SV_ALT[s.type]}>"
                size = s.end - s.pos + 1
                info += [f"END={s.end}", f"SVTYPE={_SV_ALT[s.type]}",
                         f"SVLEN={-size if s.type == 'deletion' else size}"]
                if s.cn is not None:
                    info.append(f"CN={s.cn}")
            gt = "1/1" if s.genotype == "hom" else "0/1"
            lines.append(f"{s.chrom}\t{s.pos - 1}\t{s.id or '.'}\t{anchor}\t{alt}\t.\tPASS\t"
                         f"{';'.join(info)}\tGT\t{gt}")
    path = Path(path)
    path.write_text("\n".join(lines) + "\n")
    return path

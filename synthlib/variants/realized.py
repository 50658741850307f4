"""Realized VAF of somatic variants: reads from carrying clones vs all reads, counted exactly.

The simulator knows which haplotype (clone level x slot) every read comes from, so each unit
counts, for every somatic variant of its window, the reads that span the variant's allele on
their haplotype (``DP``) and those among them whose haplotype carries it (alt reads). A read
spans an allele when it holds all of its bases on the haplotype (the alternate allele on a
carrier, the reference allele elsewhere), plus the next base for indels (so the junction is
in the read). Every read counts, duplicates included; each mate is one read.

Counts are per unit (a unit's reads reach into the next chunk), summed at merge time in unit
order: exact and the same on any number of workers. The truth VCF then carries, for somatic
records, ``FORMAT/DP`` (reads spanning), ``FORMAT/AD`` (non-carrier, carrier reads) and
``FORMAT/AF`` (realized VAF = alt / DP) beside the target ``INFO/VAF``. Somatic symbolic
SVs and breakends (no allele a read could span) keep GT only.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from ..io import bgzf
from .haplotype import Haplotype
from .model import Variant, carrier_fraction

__all__ = ["clone_levels", "hap_carriers", "support_counts", "variant_key",
           "annotate_records", "write_support", "annotated_shards", "FORMAT_HEADER",
           "add_support", "with_realized_header"]

#: Header lines of the realized-VAF FORMAT fields (written only for somatic specs).
FORMAT_HEADER = [
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Somatic variants: reads in the '
    'golden BAM spanning the variant (duplicates included)">',
    '##FORMAT=<ID=AD,Number=R,Type=Integer,Description="Somatic variants: reads spanning '
    'the variant from non-carrying and from carrying haplotypes/clones">',
    '##FORMAT=<ID=AF,Number=A,Type=Float,Description="Somatic variants: realized allele '
    'fraction in the reads (AD alt / DP); INFO/VAF is the target">',
]


def clone_levels(somatic: list[Variant]) -> list[tuple[float, float, list[Variant]]]:
    """Nested clone levels ``(lo, hi, carried)`` cutting the cell coordinate [0, 1).

    A variant with carrier fraction ``t`` (:func:`carrier_fraction`) is in the cells with
    coordinate below ``t``; each level of positive width carries the variants with
    ``t >= hi``.
    """
    thr = [carrier_fraction(v) for v in somatic]
    bounds = [0.0, *sorted(set(thr)), 1.0]
    out = []
    for lo, hi in zip(bounds, bounds[1:], strict=False):
        if hi - lo <= 0:
            continue
        out.append((lo, hi, [v for v, t in zip(somatic, thr, strict=True) if t >= hi]))
    return out


def hap_carriers(variants: list[Variant], n_haps: int) -> list[list[Variant]]:
    """Somatic variants present on each haplotype of the simulator's haplotype set.

    The set is two haplotypes (slots 0, 1) per clone level, in :func:`clone_levels` order;
    without somatic variants it is the two germline haplotypes.
    """
    somatic = [v for v in variants if v.vaf is not None]
    if not somatic:
        return [[] for _ in range(n_haps)]
    out = [[v for v in carried if v.gt[slot]] for _lo, _hi, carried in clone_levels(somatic)
           for slot in (0, 1)]
    if len(out) != n_haps:
        raise AssertionError(f"clone levels give {len(out)} haplotypes, simulator {n_haps}")
    return out


def variant_key(v: Variant) -> str:
    """CHROM, POS, REF, ALT of the truth record (tab-joined)."""
    return f"{v.chrom}\t{v.pos + 1}\t{v.ref}\t{v.alt}"


def support_counts(
    *, haps: list[Haplotype], carriers: list[list[Variant]], somatic: list[Variant],
    hap_of: np.ndarray, starts: np.ndarray, flen: np.ndarray, length: int,
) -> dict[str, list[int]]:
    """``{key: [alt reads, spanning reads]}`` of a batch of fragments.

    Parameters
    ----------
    hap_of, starts, flen : np.ndarray, shape (n,), int64
        Haplotype index, haplotype start index and length of each fragment.
    length
        Read length (a fragment shorter than it is read whole by both mates).
    """
    out: dict[str, list[int]] = {}
    span = np.minimum(length, flen)
    ends = starts + flen
    intervals = ((starts, starts + span), (ends - span, ends))
    for v in somatic:
        if v.svtype is not None and v.svtype != "INS":
            continue  # symbolic SVs and breakends: no allele to span (not counted)
        alt_n = dp = 0
        indel = len(v.ref) != len(v.alt)
        for h, hap in enumerate(haps):
            off = v.pos - hap.start
            if off < 0 or v.end - hap.start > len(hap.ref_index):
                continue  # not applied in this window: no read of this unit reaches it
            rows = hap_of == h
            if not rows.any():
                continue
            carried = v in carriers[h]
            idx = int(hap.ref_index[off])
            alen = (len(v.alt) if carried else len(v.ref)) + int(indel)
            n = 0
            for a, b in intervals:
                n += int(((a[rows] <= idx) & (idx + alen <= b[rows])).sum())
            dp += n
            alt_n += n if carried else 0
        out[variant_key(v)] = [alt_n, dp]
    return out


def write_support(path: Path, counts: dict[str, list[int]]) -> None:
    """One unit's counts as JSON (written atomically)."""
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(counts, sort_keys=True))
    tmp.replace(path)


def annotate_records(text: str, support: dict[str, list[int]]) -> str:
    """Add ``DP:AD:AF`` to the somatic records (INFO ``VAF``) of truth VCF text."""
    out = []
    for line in text.splitlines(keepends=True):
        f = line.rstrip("\n").split("\t")
        key = f"{f[0]}\t{f[1]}\t{f[3]}\t{f[4]}" if len(f) >= 10 else ""
        if "VAF=" in (f[7] if len(f) >= 10 else "") and key in support:
            alt, dp = support[key]
            af = f"{alt / dp:.6g}" if dp else "."
            f[8] = f[8] + ":DP:AD:AF"
            f[9] = f"{f[9]}:{dp}:{dp - alt},{alt}:{af}"
            line = "\t".join(f) + "\n"
        out.append(line)
    return "".join(out)


def annotated_shards(workdir: Path, names: list[str]) -> list[Path]:
    """VCF shards of the units with realized counts added (the sum over every unit)."""
    total: dict[str, list[int]] = {}
    for n in names:
        p = Path(workdir) / f"{n}.support.json"
        if p.exists():
            for k, (a, d) in json.loads(p.read_text()).items():
                t = total.setdefault(k, [0, 0])
                t[0] += a
                t[1] += d
    out = []
    for n in names:
        src = Path(workdir) / f"{n}.vcf.bgzf"
        text = gzip.decompress(src.read_bytes()).decode() if src.stat().st_size else ""
        dst = Path(workdir) / f"{n}.vcf.annotated.bgzf"
        dst.write_bytes(bgzf.compress(annotate_records(text, total).encode()))
        out.append(dst)
    return out


def add_support(total: dict[str, list[int]], batch: dict[str, list[int]] | None) -> None:
    """Add one batch's counts into ``total`` (in place)."""
    for k, (a, d) in (batch or {}).items():
        t = total.setdefault(k, [0, 0])
        t[0] += a
        t[1] += d


def with_realized_header(header: str) -> str:
    """The truth header with the FORMAT lines of the realized counts (after FORMAT/GT)."""
    lines = header.split("\n")
    at = next(i for i, x in enumerate(lines) if x.startswith("##FORMAT=<ID=GT")) + 1
    return "\n".join(lines[:at] + FORMAT_HEADER + lines[at:])

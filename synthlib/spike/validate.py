"""A ValidateSamFile-style check of a BAM: the consistency a spiked BAM must keep.

Checks per record: CIGAR query length equals the sequence and quality lengths; MD and NM
(when present) match the reference; the file is coordinate-sorted; and for pairs whose both
primary records are in the file: RNEXT/PNEXT point at the mate, the mate-strand flag and MC
tag match the mate, and the two TLENs are opposite.
"""

from __future__ import annotations

import os

import pysam

from .columns import ReadColumns, md_nm

__all__ = ["validate_bam"]


def validate_bam(
    *, bam: str | os.PathLike, reference: str | os.PathLike, region: str | None = None
) -> list[tuple[str, str]]:
    """Return the problems found, as ``(record id, problem kind)`` pairs.

    Parameters
    ----------
    bam
        BAM to check (indexed when ``region`` is given).
    reference
        FASTA the BAM is aligned to (for MD/NM).
    region
        Optional ``chrom:start-end`` to check only part of the file.

    Returns
    -------
    list of (str, str)
        Record id ``qname/flag-bits`` and a problem kind such as ``cigar-length``, ``md``,
        ``nm``, ``unsorted``, ``mate-pos``, ``mate-strand``, ``mate-cigar``, ``tlen``. Empty
        when the file is consistent.
    """
    issues: list[tuple[str, str]] = []
    primaries: dict[tuple[str, int], pysam.AlignedSegment] = {}
    with pysam.AlignmentFile(str(bam)) as af, pysam.FastaFile(str(reference)) as fa:
        it = af.fetch(region=region) if region else af.fetch(until_eof=True)
        last = (-1, -1)
        for r in it:
            rid = f"{r.query_name}/{r.flag & 0xFC0}"
            if r.is_unmapped:
                continue
            key = (r.reference_id, r.reference_start)
            if key < last:
                issues.append((rid, "unsorted"))
            last = key
            seq = r.query_sequence
            qlen = r.infer_query_length()
            if seq is not None and qlen != len(seq):
                issues.append((rid, "cigar-length"))
            if r.query_qualities is not None and seq is not None and len(
                r.query_qualities
            ) != len(seq):
                issues.append((rid, "qual-length"))
            if seq and (r.has_tag("MD") or r.has_tag("NM")):
                cols = ReadColumns.from_read(r)
                ref = fa.fetch(r.reference_name, r.reference_start, r.reference_end)
                md, nm = md_nm(cols.cols, ref, r.reference_start)
                if r.has_tag("MD") and r.get_tag("MD") != md:
                    issues.append((rid, "md"))
                if r.has_tag("NM") and r.get_tag("NM") != nm:
                    issues.append((rid, "nm"))
            if r.is_paired and not r.flag & 0x900:
                primaries[(r.query_name, r.flag & 0xC0)] = r
    for (name, bits), r in primaries.items():
        m = primaries.get((name, 0xC0 ^ bits))
        if m is None or r.mate_is_unmapped:
            continue
        rid = f"{name}/{bits}"
        if r.next_reference_id != m.reference_id or r.next_reference_start != m.reference_start:
            issues.append((rid, "mate-pos"))
        if r.mate_is_reverse != m.is_reverse:
            issues.append((rid, "mate-strand"))
        if r.has_tag("MC") and r.get_tag("MC") != m.cigarstring:
            issues.append((rid, "mate-cigar"))
        if r.template_length != -m.template_length:
            issues.append((rid, "tlen"))
    return issues

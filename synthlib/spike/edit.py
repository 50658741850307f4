"""Put one allele into one read: substitute, insert or delete bases, keep the read length.

The edit is made in the read's own alignment (see :mod:`synthlib.spike.columns`), so the
read keeps its own sequencing errors and germline alleles elsewhere; only the event's bases
change. An indel changes the read length by ``d``; the read is brought back to its length at
its 3' end (right end for forward reads, left end for reverse reads) because the 5' end is
where the fragment was cut and stays put. Extending takes reference bases beyond the old
alignment end; their qualities copy the read's own qualities at those cycles.
"""

from __future__ import annotations

from dataclasses import dataclass

from .columns import Column, ReadColumns

__all__ = ["Allele", "editable", "editable_read", "apply_allele"]


@dataclass(frozen=True)
class Allele:
    """A trimmed edit: reference bases ``[start, end)`` become ``alt`` (0-based).

    ``start == end`` is a pure insertion before ``start``; ``alt == ""`` a pure deletion.
    """

    start: int
    end: int
    alt: str

    @property
    def is_indel(self) -> bool:
        return len(self.alt) != self.end - self.start

    @classmethod
    def from_vcf(cls, pos0: int, ref: str, alt: str) -> Allele:
        """Trim the shared prefix and suffix so only the changed bases remain."""
        ref_u, alt_u = ref.upper(), alt.upper()
        p = 0
        while p < min(len(ref_u), len(alt_u)) and ref_u[p] == alt_u[p]:
            p += 1
        s = 0
        while (
            s < min(len(ref_u), len(alt_u)) - p
            and ref_u[len(ref_u) - 1 - s] == alt_u[len(alt_u) - 1 - s]
        ):
            s += 1
        return cls(pos0 + p, pos0 + len(ref_u) - s, alt_u[p : len(alt_u) - s])


def _anchor_index(rc: ReadColumns, allele: Allele) -> int | None:
    """Index of the first required column, or None when the read cannot carry the allele.

    Substitutions need every changed base aligned; indels also need one aligned base on each
    side, all contiguous (no indel of the read's own in between).
    """
    lo = allele.start - 1 if allele.is_indel else allele.start
    hi = allele.end if allele.is_indel else allele.end - 1
    cols = rc.cols
    idx = next((i for i, c in enumerate(cols) if c[0] == "M" and c[1] == lo), None)
    if idx is None or idx + (hi - lo) >= len(cols):
        return None
    for k in range(hi - lo + 1):
        c = cols[idx + k]
        if c[0] != "M" or c[1] != lo + k:
            return None
    return idx


def editable(rc: ReadColumns, allele: Allele, contig_len: int, is_reverse: bool) -> bool:
    """Whether :func:`apply_allele` can put ``allele`` into this read."""
    if _anchor_index(rc, allele) is None:
        return False
    d = len(allele.alt) - (allele.end - allele.start)
    if d < 0:  # extension needs reference beyond the 3' end
        if is_reverse:
            return rc.aligned_start() + d >= 0
        return rc.aligned_end() - d <= contig_len
    return True


def editable_read(read, allele: Allele, contig_len: int) -> bool:
    """:func:`editable` on an unedited pysam read, from its CIGAR alone (no columns).

    The event's bases (plus one each side for indels) must lie in one run of aligned
    operations with no insertion, deletion, skip or clip in between.
    """
    lo = allele.start - 1 if allele.is_indel else allele.start
    hi = allele.end if allele.is_indel else allele.end - 1
    pos = read.reference_start
    run_start = None
    ok = False
    for op, n in read.cigartuples or ():
        if op in (0, 7, 8):
            if run_start is None:
                run_start = pos
            pos += n
            if run_start <= lo and pos > hi:
                ok = True
                break
        else:
            run_start = None
            if op in (2, 3):
                pos += n
    if not ok:
        return False
    d = len(allele.alt) - (allele.end - allele.start)
    if d < 0:
        if read.is_reverse:
            return read.reference_start + d >= 0
        return read.reference_end - d <= contig_len
    return True


def apply_allele(
    rc: ReadColumns, allele: Allele, *, is_reverse: bool, reference: str, ref_offset: int
) -> ReadColumns:
    """Return new columns carrying ``allele``; ``rc`` is not modified.

    Parameters
    ----------
    rc
        The read's columns (call :func:`editable` first).
    allele
        The trimmed edit.
    is_reverse
        Strand; decides which end absorbs the length change.
    reference, ref_offset
        Reference bases with ``reference[i]`` at 0-based ``ref_offset + i``; must cover the
        read span plus the length change.
    """
    idx = _anchor_index(rc, allele)
    if idx is None:
        raise ValueError("read cannot carry this allele")
    m = allele.end - allele.start
    n = len(allele.alt)
    first = idx + 1 if allele.is_indel else idx
    core = rc.cols[first : first + m]
    left_q = rc.cols[first - 1][3] if first > 0 else -1
    right_q = rc.cols[first + m][3] if first + m < len(rc.cols) else left_q
    new_core: list[Column] = []
    for k in range(max(m, n)):
        if k < min(m, n):
            new_core.append(("M", allele.start + k, allele.alt[k], core[k][3]))
        elif k < n:
            # inserted bases: the neighbours' quality (the lower, to stay conservative)
            q = min(left_q, right_q) if rc.has_qual else -1
            new_core.append(("I", -1, allele.alt[k], q))
        else:
            new_core.append(("D", allele.start + k, "", -1))
    cols = rc.cols[:first] + new_core + rc.cols[first + m :]
    d = n - m
    if is_reverse:
        cols.reverse()
    if d > 0:
        _trim_outer(cols, d)
    elif d < 0:
        _extend_outer(cols, -d, rc, is_reverse, reference, ref_offset)
    if is_reverse:
        cols.reverse()
    out = ReadColumns(cols, rc.hard_left, rc.hard_right, rc.eqx, rc.has_qual)
    out.tidy_edges()
    return out


def _trim_outer(cols: list[Column], n: int) -> None:
    """Drop ``n`` query bases from the end of ``cols`` (the read's 3' end)."""
    dropped = 0
    while dropped < n:
        c = cols.pop()
        if c[0] in "MIS":
            dropped += 1


def _extend_outer(
    cols: list[Column],
    n: int,
    rc: ReadColumns,
    is_reverse: bool,
    reference: str,
    ref_offset: int,
) -> None:
    """Add ``n`` reference bases after the last aligned column at the end of ``cols``."""
    # cycle-profile qualities: the read's own qualities at its last n cycles
    q_cycle = [c[3] for c in (rc.cols[::-1] if is_reverse else rc.cols) if c[0] in "MIS"]
    quals = q_cycle[-n:] if rc.has_qual else [-1] * n
    clip: list[Column] = []
    while cols and cols[-1][0] == "S":
        clip.append(cols.pop())
    last_ref = next(c[1] for c in reversed(cols) if c[0] in "MDN")
    step = -1 if is_reverse else 1
    for k in range(n):
        rp = last_ref + step * (k + 1)
        cols.append(("M", rp, reference[rp - ref_offset].upper(), quals[k]))
    cols.extend(reversed(clip))

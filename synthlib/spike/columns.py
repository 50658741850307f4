"""A read's alignment as a list of columns, so edits and length fixes are list operations.

One column per query base or deleted reference base: ``(op, refpos, base, qual)`` with ``op``
one of ``M`` (aligned), ``I`` (inserted), ``D`` (deleted), ``N`` (skipped) or ``S`` (soft
clip). ``refpos`` is 0-based (``-1`` for ``I``/``S``); ``base`` is ``""`` for ``D``/``N``;
``qual`` is ``-1`` when the read has no qualities or for ``D``/``N``. Hard clips are kept aside
because they carry no bases. Rebuilding gives the CIGAR, sequence, qualities and, against a
reference, the MD/NM tags an aligner would write.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import repeat

import pysam

__all__ = ["Column", "ReadColumns", "md_nm", "merge_cigar"]

Column = tuple[str, int, str, int]

_OP_CODE = {"M": 0, "I": 1, "D": 2, "N": 3, "S": 4, "H": 5, "=": 7, "X": 8}
_CODE_OP = {0: "M", 1: "I", 2: "D", 3: "N", 4: "S", 5: "H", 7: "M", 8: "M"}


@dataclass
class ReadColumns:
    """Columns of one aligned read plus its hard clips.

    Attributes
    ----------
    cols
        The columns, left to right in reference orientation.
    hard_left, hard_right
        Hard-clip lengths (0 when absent).
    eqx
        True when the read's CIGAR used ``=``/``X``; rebuilt CIGARs then do too.
    has_qual
        False when the record stores no qualities (``*``).
    """

    cols: list[Column]
    hard_left: int = 0
    hard_right: int = 0
    eqx: bool = False
    has_qual: bool = True

    @classmethod
    def from_read(cls, read: pysam.AlignedSegment) -> ReadColumns:
        seq = read.query_sequence or ""
        quals = read.query_qualities
        has_qual = quals is not None
        qlist = quals.tolist() if has_qual else []
        cols: list[Column] = []
        qi = 0
        ri = read.reference_start
        hard_left = hard_right = 0
        eqx = False
        cigar = read.cigartuples or []
        for k, (code, n) in enumerate(cigar):
            if code == 5:
                if k == 0:
                    hard_left = n
                else:
                    hard_right = n
                continue
            if code == 6:  # padding carries nothing in an unpadded reference
                continue
            op = _CODE_OP[code]
            eqx = eqx or code in (7, 8)
            # one zip per operation rather than a Python step per base
            q = qlist[qi:qi + n] if has_qual else repeat(-1, n)
            if op == "M":
                cols.extend(zip(repeat("M", n), range(ri, ri + n), seq[qi:qi + n], q, strict=True))
                qi += n
                ri += n
            elif op in ("I", "S"):
                cols.extend(zip(repeat(op, n), repeat(-1, n), seq[qi:qi + n], q, strict=True))
                qi += n
            else:
                cols.extend(zip(repeat(op, n), range(ri, ri + n), repeat("", n),
                                repeat(-1, n), strict=True))
                ri += n
        return cls(cols, hard_left, hard_right, eqx, has_qual)

    # -- views ---------------------------------------------------------------------------
    def aligned_start(self) -> int:
        return next(c[1] for c in self.cols if c[0] == "M")

    def aligned_end(self) -> int:
        """One past the last reference base consumed (like ``reference_end``)."""
        return next(c[1] for c in reversed(self.cols) if c[0] in "MDN") + 1

    def sequence(self) -> str:
        return "".join(c[2] for c in self.cols if c[0] in "MIS")

    def qualities(self) -> list[int] | None:
        if not self.has_qual:
            return None
        return [c[3] for c in self.cols if c[0] in "MIS"]

    def cigar(self, reference: str | None = None, ref_offset: int = 0) -> list[tuple[int, int]]:
        """CIGAR tuples; with ``eqx`` set, ``reference`` (starting at ``ref_offset``) splits M."""
        ops: list[str] = []
        for op, rp, base, _ in self.cols:
            if op == "M" and self.eqx and reference is not None:
                ref_base = reference[rp - ref_offset].upper()
                ops.append("=" if base.upper() == ref_base else "X")
            else:
                ops.append(op)
        tuples = merge_cigar(ops)
        if self.hard_left:
            tuples.insert(0, (5, self.hard_left))
        if self.hard_right:
            tuples.append((5, self.hard_right))
        return tuples

    def tidy_edges(self) -> None:
        """Make the ends aligner-like: no D/N at an edge, edge insertions become soft clips."""
        for side in (0, 1):
            cols = self.cols if side == 0 else self.cols[::-1]
            out: list[Column] = []
            seen_m = False
            for c in cols:
                if not seen_m:
                    if c[0] in "DN":
                        continue
                    if c[0] == "I":
                        c = ("S", -1, c[2], c[3])
                    seen_m = c[0] == "M"
                out.append(c)
            self.cols = out if side == 0 else out[::-1]


def merge_cigar(ops: list[str]) -> list[tuple[int, int]]:
    """Run-length encode single-letter ops into pysam CIGAR tuples."""
    tuples: list[tuple[int, int]] = []
    for op in ops:
        code = _OP_CODE[op]
        if tuples and tuples[-1][0] == code:
            tuples[-1] = (code, tuples[-1][1] + 1)
        else:
            tuples.append((code, 1))
    return tuples


def md_nm(cols: list[Column], reference: str, ref_offset: int) -> tuple[str, int]:
    """MD string and edit distance of the columns against ``reference``.

    ``reference[i]`` is the base at 0-based position ``ref_offset + i``. Read ``N`` counts as
    a mismatch, as BWA writes it; case is ignored (soft-masked references).
    """
    md: list[str] = []
    run = 0
    nm = 0
    in_del = False
    for op, rp, base, _ in cols:
        if op == "M":
            ref_base = reference[rp - ref_offset].upper()
            in_del = False
            if base.upper() == ref_base and ref_base != "N":
                run += 1
            else:
                md.append(f"{run}{ref_base}")
                run = 0
                nm += 1
        elif op == "I":
            nm += 1
        elif op == "D":
            if not in_del:
                md.append(f"{run}^")
                run = 0
                in_del = True
            md.append(reference[rp - ref_offset].upper())
            nm += 1
    md.append(str(run))
    return "".join(md), nm

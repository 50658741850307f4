"""Haplotype sequences of a reference window with variants applied, plus coordinate maps.

Nothing here materializes a whole genome: a work unit builds its haplotypes over its own
window only. Structural variants cut a haplotype into *segments*: a new segment starts at
every SV junction (after a deletion, at each tandem copy, into and out of an inversion), so
a read whose bases span two segments is a split read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .breakend import TRA
from .complex import CPX
from .model import Variant
from .sv import hap_copies

__all__ = ["Haplotype", "build_haplotypes", "INSERTED"]

#: Marker in ``ref_pos`` for bases that have no reference position (inserted bases).
INSERTED = -1

_COMP = np.arange(256, dtype=np.uint8)
for _a, _b in zip(b"ACGTN", b"TGCAN", strict=True):
    _COMP[_a] = _b


@dataclass
class Haplotype:
    """One haplotype over a reference window.

    Attributes
    ----------
    seq : np.ndarray, shape (m,), uint8
        ASCII bases.
    ref_pos : np.ndarray, shape (m,), int64
        Reference position (0-based) of each base, or :data:`INSERTED`. Duplicated bases repeat
        a position; inverted ones run backwards.
    ref_index : np.ndarray, shape (w,), int64
        For each reference position of the window, the first haplotype index at or after it
        (deleted positions point at the next surviving base).
    start
        Reference position of the window start.
    seg : np.ndarray, shape (m,), int32
        Segment number (non-decreasing); changes at every SV junction.
    rev : np.ndarray, shape (m,), bool
        True for bases of an inverted segment (reverse-complement of the reference).
    anchor : np.ndarray, shape (m,), int64
        Reference position of the base, or of the nearest mapped base before it (inserted
        bases): decides which unit owns a fragment starting there.
    svs
        The structural variants (and translocation sides) this haplotype was built with,
        whether or not its slot carries them: what its fragment budget follows.
    """

    seq: np.ndarray
    ref_pos: np.ndarray
    ref_index: np.ndarray
    start: int
    seg: np.ndarray
    rev: np.ndarray
    anchor: np.ndarray
    svs: tuple = ()

    def hap_index(self, ref_positions: np.ndarray) -> np.ndarray:
        """Haplotype index of reference positions inside the window, shape like the input."""
        return self.ref_index[np.asarray(ref_positions) - self.start]


def _apply(ref: bytes, start: int, variants: list[Variant], hap: int) -> Haplotype:
    ref_arr = np.frombuffer(ref, dtype=np.uint8)
    end = start + len(ref)
    parts: list[tuple[np.ndarray, np.ndarray, int, bool]] = []
    seg = 0

    def ref_part(a: int, b: int, rev: bool = False, inner: tuple[Variant, ...] = (),
                 at: int | None = None) -> None:
        bases, pos = ref_arr[a - start : b - start], np.arange(a, b, dtype=np.int64)
        if inner:
            bases, pos = _edited(ref_arr, start, a, b, inner)
        if rev:
            bases, pos = _COMP[bases[::-1]], pos[::-1]
        parts.append((bases, pos, seg if at is None else at, rev))

    cursor = start
    for v in variants:
        if v.svtype == TRA:
            continue  # junction reads come from synthlib.reads.junctions
        symbolic = v.svend is not None
        if v.pos < cursor or v.end > end:
            continue  # overlaps an earlier variant, or clipped by the window
        if not symbolic and v.gt[hap] != 1:
            continue
        if v.svtype == CPX:
            if v.gt[hap]:
                ref_part(cursor, v.pos + 1)
                seg = _complex_parts(v, hap, variants, parts, ref_part, seg)
                cursor = v.svend
            continue
        if symbolic:
            copies = hap_copies(v, hap)
            if (v.svtype == "INV" and not v.gt[hap]) or (v.svtype != "INV" and copies == 1):
                continue  # this haplotype keeps the reference here
            ref_part(cursor, v.pos + 1)  # up to and with the anchor base
            # Small variants of this haplotype inside the span ride along in every copy, so
            # B-allele fractions follow copy number.
            inner = tuple(w for w in variants if w.svend is None and w.svtype != TRA
                          and w.pos > v.pos and w.end <= v.svend and w.gt[hap] == 1)
            # Segments change only where the reference really jumps: the first tandem copy
            # continues the anchor base and the last one runs on into the reference after
            # it, so reads across those seams are not split (only copy-to-copy joins are).
            tandem = v.svtype != "INV" and copies >= 2
            for k in range(1 if v.svtype == "INV" else copies):
                if not (tandem and k == 0):
                    seg += 1
                ref_part(v.pos + 1, v.svend, rev=v.svtype == "INV", inner=inner)
            if not tandem:
                seg += 1
            cursor = v.svend
            continue
        ref_part(cursor, v.pos)
        r, a = v.ref.encode(), v.alt.encode()
        common = min(len(r), len(a))
        # Shared length maps base to base; the rest is inserted (alt longer) or skipped.
        alt_pos = np.full(len(a), INSERTED, dtype=np.int64)
        alt_pos[:common] = np.arange(v.pos, v.pos + common)
        parts.append((np.frombuffer(a, dtype=np.uint8), alt_pos, seg, False))
        cursor = v.end
    ref_part(cursor, end)
    seq = np.concatenate([p[0] for p in parts])
    ref_pos = np.concatenate([p[1] for p in parts])
    segs = np.concatenate([np.full(len(p[0]), p[2], np.int32) for p in parts])
    revs = np.concatenate([np.full(len(p[0]), p[3], bool) for p in parts])
    mapped = ref_pos != INSERTED
    idx = np.flatnonzero(mapped)
    # Positions that survive point at their first copy; deleted ones at the next survivor.
    where = np.full(len(ref), len(seq), dtype=np.int64)
    where[ref_pos[idx[::-1]] - start] = idx[::-1]
    ref_index = np.minimum.accumulate(where[::-1])[::-1]
    last = np.maximum.accumulate(np.where(mapped, np.arange(len(seq)), -1))
    anchor = np.where(last >= 0, ref_pos[np.maximum(last, 0)], start)
    return Haplotype(seq=seq, ref_pos=ref_pos, ref_index=ref_index, start=start, seg=segs,
                     rev=revs, anchor=anchor,
                     svs=tuple(v for v in variants if v.svtype is not None))


def _complex_parts(v, hap: int, variants: list[Variant], parts: list, ref_part, seg: int
                   ) -> int:
    """Append the pieces of complex event ``v`` (carried on ``hap``); return the segment
    number the reference after it continues in.

    A new segment starts wherever a base does not continue the previous one on the
    reference (same strand, next position), and novel sequence gets a segment of its own,
    so every junction of the event splits reads and nothing else does.
    """
    prev: tuple[int, bool] | None = (v.pos, False)  # the anchor base, forward
    for p in v.pieces:
        if p[0] == "N":
            seg += 1
            bases = np.frombuffer(p[1].encode(), dtype=np.uint8)
            parts.append((bases, np.full(len(bases), INSERTED, np.int64), seg, False))
            prev = None
            continue
        _, a, b, rev = p
        first = b - 1 if rev else a
        if prev is None or prev[1] != rev or first != prev[0] + (-1 if rev else 1):
            seg += 1
        inner = tuple(w for w in variants if w.svend is None and w.svtype != TRA
                      and a <= w.pos and w.end <= b and w.gt[hap] == 1)
        ref_part(a, b, rev=rev, inner=inner, at=seg)
        prev = (a if rev else b - 1, rev)
    if prev != (v.svend - 1, False):
        seg += 1
    return seg


def _edited(ref_arr: np.ndarray, start: int, a: int, b: int, inner: tuple[Variant, ...]
            ) -> tuple[np.ndarray, np.ndarray]:
    """Bases and reference positions of ``[a, b)`` with small variants applied, in order
    (overlapping ones after the first are skipped, as in the main pass)."""
    bases, pos = [], []
    cursor = a
    for w in sorted(inner, key=lambda x: (x.pos, x.end)):
        if w.pos < cursor:
            continue
        bases.append(ref_arr[cursor - start : w.pos - start])
        pos.append(np.arange(cursor, w.pos, dtype=np.int64))
        r, alt = w.ref.encode(), w.alt.encode()
        common = min(len(r), len(alt))
        alt_pos = np.full(len(alt), INSERTED, dtype=np.int64)
        alt_pos[:common] = np.arange(w.pos, w.pos + common)
        bases.append(np.frombuffer(alt, dtype=np.uint8))
        pos.append(alt_pos)
        cursor = w.end
    bases.append(ref_arr[cursor - start : b - start])
    pos.append(np.arange(cursor, b, dtype=np.int64))
    return np.concatenate(bases), np.concatenate(pos)


def build_haplotypes(
    ref: bytes, *, start: int, variants: list[Variant], ploidy: int = 2
) -> list[Haplotype]:
    """Apply phased variants (small and structural) to a reference window.

    Parameters
    ----------
    ref
        Uppercase reference bases of the window ``[start, start + len(ref))``.
    variants
        Non-overlapping per haplotype; those not fully inside the window are skipped.

    Returns
    -------
    list of Haplotype, one per haplotype (``ploidy`` of them).
    """
    ordered = sorted(variants, key=lambda v: (v.pos, v.end))
    return [_apply(ref, start, ordered, h) for h in range(ploidy)]

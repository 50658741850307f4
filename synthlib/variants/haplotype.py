"""Haplotype sequences of a reference window with variants applied, plus coordinate maps.

Nothing here materializes a whole genome: a work unit builds its two haplotypes over its own
window only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .model import Variant

__all__ = ["Haplotype", "build_haplotypes", "INSERTED"]

#: Marker in ``ref_pos`` for bases that have no reference position (inserted bases).
INSERTED = -1


@dataclass
class Haplotype:
    """One haplotype over a reference window.

    Attributes
    ----------
    seq : np.ndarray, shape (m,), uint8
        ASCII bases.
    ref_pos : np.ndarray, shape (m,), int64
        Reference position (0-based) of each base, or :data:`INSERTED`.
    ref_index : np.ndarray, shape (w,), int64
        For each reference position of the window, the first haplotype index at or after it
        (deleted positions point at the next surviving base).
    start
        Reference position of the window start.
    """

    seq: np.ndarray
    ref_pos: np.ndarray
    ref_index: np.ndarray
    start: int

    def hap_index(self, ref_positions: np.ndarray) -> np.ndarray:
        """Haplotype index of reference positions inside the window, shape like the input."""
        return self.ref_index[np.asarray(ref_positions) - self.start]


def _apply(ref: bytes, start: int, variants: list[Variant], hap: int) -> Haplotype:
    ref_arr = np.frombuffer(ref, dtype=np.uint8)
    end = start + len(ref)
    seq_parts: list[np.ndarray] = []
    pos_parts: list[np.ndarray] = []
    cursor = start
    for v in variants:
        if v.gt[hap] != 1 or v.pos < cursor or v.end > end:
            continue  # not on this haplotype, or clipped by the window
        seq_parts.append(ref_arr[cursor - start : v.pos - start])
        pos_parts.append(np.arange(cursor, v.pos, dtype=np.int64))
        r, a = v.ref.encode(), v.alt.encode()
        common = min(len(r), len(a))
        # Shared length maps base to base; the rest is inserted (alt longer) or skipped.
        alt_pos = np.full(len(a), INSERTED, dtype=np.int64)
        alt_pos[:common] = np.arange(v.pos, v.pos + common)
        seq_parts.append(np.frombuffer(a, dtype=np.uint8))
        pos_parts.append(alt_pos)
        cursor = v.end
    seq_parts.append(ref_arr[cursor - start :])
    pos_parts.append(np.arange(cursor, end, dtype=np.int64))
    seq = np.concatenate(seq_parts)
    ref_pos = np.concatenate(pos_parts)
    mapped = ref_pos != INSERTED
    idx = np.flatnonzero(mapped)
    ref_index = np.empty(len(ref), dtype=np.int64)
    # Positions that survive point at themselves; deleted ones at the next surviving base.
    present = np.zeros(len(ref), dtype=bool)
    present[ref_pos[mapped] - start] = True
    where = np.full(len(ref), len(seq), dtype=np.int64)
    where[ref_pos[mapped] - start] = idx
    ref_index = np.minimum.accumulate(where[::-1])[::-1]
    return Haplotype(seq=seq, ref_pos=ref_pos, ref_index=ref_index, start=start)


def build_haplotypes(
    ref: bytes, *, start: int, variants: list[Variant], ploidy: int = 2
) -> list[Haplotype]:
    """Apply phased variants to a reference window.

    Parameters
    ----------
    ref
        Uppercase reference bases of the window ``[start, start + len(ref))``.
    variants
        Sorted, non-overlapping per haplotype; those not fully inside the window are skipped.

    Returns
    -------
    list of Haplotype, one per haplotype (``ploidy`` of them).
    """
    ordered = sorted(variants, key=lambda v: (v.pos, v.end))
    return [_apply(ref, start, ordered, h) for h in range(ploidy)]

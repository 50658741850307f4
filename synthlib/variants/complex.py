"""Complex structural variants: a local rearrangement given as an ordered list of pieces.

A complex event (VCF ``<CPX>``, gnomAD-SV convention, Collins et al. 2020) replaces the
reference span ``[pos + 1, svend)`` (its *envelope*) on each carrying haplotype by an ordered
list of pieces: reference intervals read forward or reverse-complemented, and novel sequence.
Every subtype is built from piece sizes, counted from the first affected base ``s``:

========== ================= ==================================================================
subtype    sizes             haplotype over the envelope (``'`` = reverse complement)
========== ================= ==================================================================
delINV     [del, inv]        DEL ``[s, s+d)``, then ``[s+d, e)'``
INVdel     [inv, del]        ``[s, s+i)'``, then DEL ``[s+i, e)``
delINVdel  [del, inv, del]   DEL, inverted middle, DEL
dupINV     [dup, inv]        ``[s, s+d)`` then ``[s, e)'``: the duplicated head comes back
                             inverted after the inverted rest (``e = s+d+i``)
INVdup     [inv, dup]        ``[s, e)'`` then ``[e-d, e)``
dDUP       [dup, gap]        ``[s, q)`` then a copy of ``[s, s+d)`` at the sink ``q = s+d+gap``
dDUP_INV   [dup, gap]        same with the copy inverted
delINS     [del, ins]        DEL ``[s, s+d)`` replaced by ``ins`` novel bases
========== ================= ==================================================================

The haplotype builder (:mod:`synthlib.variants.haplotype`) starts a new segment wherever
consecutive bases do not continue each other on the reference (so every junction yields
split reads) and gives novel sequence its own segment (soft-clipped in split reads).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import VariantError
from ..reference import Reference
from .model import Variant, gt_text

__all__ = ["CPX", "CPX_SUBTYPES", "PIECE_NAMES", "ComplexSV", "make_complex", "cpx_info",
           "cpx_bed", "cpx_header_lines", "cpx_territory_delta", "cpx_carrier_copies",
           "envelope_size", "random_layout"]

#: ``Variant.svtype`` of a complex event.
CPX = "CPX"

#: Subtype -> names of its sizes (in order).
PIECE_NAMES: dict[str, tuple[str, ...]] = {
    "delINV": ("del", "inv"), "INVdel": ("inv", "del"), "delINVdel": ("del", "inv", "del"),
    "dupINV": ("dup", "inv"), "INVdup": ("inv", "dup"), "dDUP": ("dup", "gap"),
    "dDUP_INV": ("dup", "gap"), "delINS": ("del", "ins"),
}
CPX_SUBTYPES = tuple(PIECE_NAMES)

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
_BASE_FIELDS = tuple(f.name for f in fields(Variant))


@dataclass(frozen=True, eq=True, order=False)
class ComplexSV(Variant):
    """A :class:`Variant` with ``svtype="CPX"``, ``alt="<CPX>"`` and its layout.

    Attributes
    ----------
    cpx_type
        One of :data:`CPX_SUBTYPES`.
    pieces
        Replacement of the envelope, in haplotype order: ``("R", a, b, rev)`` reference
        ``[a, b)`` (reverse-complemented when ``rev``) or ``("N", seq)`` novel bases.
    components
        For the truth: ``(kind, a, b)`` with ``kind`` ``DEL``/``INV``/``DUP`` and reference
        interval ``[a, b)``, or ``("INS", q, q, n)``: ``n`` bases inserted before ``q``.
    """

    cpx_type: str = ""
    pieces: tuple = ()
    components: tuple = ()

    # Variants are sorted together: compare on the base fields like Variant does.
    def _key(self) -> tuple:
        return tuple(getattr(self, n) for n in _BASE_FIELDS)

    def __lt__(self, other):
        return _base_key(self) < _base_key(other)

    def __gt__(self, other):
        return _base_key(self) > _base_key(other)

    def __le__(self, other):
        return _base_key(self) <= _base_key(other)

    def __ge__(self, other):
        return _base_key(self) >= _base_key(other)


def _base_key(v: Variant) -> tuple:
    return tuple(getattr(v, n) for n in _BASE_FIELDS)


def _layout(subtype: str, s: int, sizes: list[int], seq: str) -> tuple[int, tuple, tuple]:
    """(envelope end, pieces, components) of a subtype whose first affected base is ``s``."""
    if subtype == "delINV":
        d, i = sizes
        e = s + d + i
        return e, (("R", s + d, e, True),), (("DEL", s, s + d), ("INV", s + d, e))
    if subtype == "INVdel":
        i, d = sizes
        e = s + i + d
        return e, (("R", s, s + i, True),), (("INV", s, s + i), ("DEL", s + i, e))
    if subtype == "delINVdel":
        d1, i, d2 = sizes
        e = s + d1 + i + d2
        return e, (("R", s + d1, s + d1 + i, True),), (
            ("DEL", s, s + d1), ("INV", s + d1, s + d1 + i), ("DEL", s + d1 + i, e))
    if subtype == "dupINV":
        d, i = sizes
        e = s + d + i
        return e, (("R", s, s + d, False), ("R", s, e, True)), (
            ("DUP", s, s + d), ("INV", s, e))
    if subtype == "INVdup":
        i, d = sizes
        e = s + i + d
        return e, (("R", s, e, True), ("R", e - d, e, False)), (
            ("INV", s, e), ("DUP", e - d, e))
    if subtype in ("dDUP", "dDUP_INV"):
        d, gap = sizes
        q = s + d + gap
        inv = subtype == "dDUP_INV"
        comps = (("DUP", s, s + d), *((("INV", s, s + d),) if inv else ()), ("INS", q, q, d))
        return q, (("R", s, q, False), ("R", s, s + d, inv)), comps
    if subtype == "delINS":
        d, n = sizes
        return s + d, (("N", seq),), (("DEL", s, s + d), ("INS", s + d, s + d, n))
    raise VariantError(f"unknown complex subtype {subtype!r}")


def envelope_size(subtype: str, sizes: list[int]) -> int:
    """Reference bases an event of this subtype spans (its envelope)."""
    if subtype == "delINS":
        return sizes[0]
    return int(sum(sizes))


def random_layout(rng: np.random.Generator, subtypes: list[str], first: int, lo: int,
                  hi: int) -> tuple[str, list[int]]:
    """A subtype drawn uniformly from ``subtypes`` and its sizes: ``first`` for the first
    piece, the others log-uniform in ``[lo, hi]`` like random SV sizes."""
    sub = str(subtypes[int(rng.integers(0, len(subtypes)))])
    rest = np.exp(rng.uniform(np.log(lo), np.log(hi + 1), size=len(PIECE_NAMES[sub]) - 1))
    return sub, [int(first), *[int(min(max(int(x), lo), hi)) for x in rest]]


def make_complex(
    *, reference: Reference, chrom: str, pos: int, subtype: str, sizes: list[int],
    gt: tuple[int, int], vid: str, sequence: str | None = None,
    rng: np.random.Generator | None = None,
) -> ComplexSV:
    """A complex event whose first affected base is ``pos + 1`` (``pos`` = VCF anchor).

    Raises
    ------
    VariantError
        On an unknown subtype, wrong number of sizes, a size < 1, an envelope that covers an
        N or runs off the contig.
    """
    if subtype not in PIECE_NAMES:
        raise VariantError(f"unknown complex subtype {subtype!r} (one of "
                           f"{', '.join(CPX_SUBTYPES)})", where=vid)
    names = PIECE_NAMES[subtype]
    if len(sizes) != len(names) or any(int(x) < 1 for x in sizes):
        raise VariantError(f"{subtype} needs {len(names)} sizes >= 1 ({', '.join(names)})",
                           where=vid)
    sizes = [int(x) for x in sizes]
    seq = ""
    if subtype == "delINS":
        if sequence is None:
            if rng is None:
                raise VariantError("delINS needs a sequence or a generator", where=vid)
            sequence = _ACGT[rng.integers(0, 4, size=sizes[1])].tobytes().decode()
        if len(sequence) != sizes[1]:
            raise VariantError(f"inserted sequence has {len(sequence)} bases, sizes say "
                               f"{sizes[1]}", where=vid)
        seq = sequence
    s = pos + 1
    end, pieces, comps = _layout(subtype, s, sizes, seq)
    if pos < 0 or end > reference.lengths[chrom]:
        raise VariantError("runs off the contig", where=vid)
    span = reference.fetch(chrom, pos, end).decode()
    if "N" in span:
        raise VariantError("covers an N (unknown) stretch of the reference", where=vid)
    return ComplexSV(chrom, pos, span[0], "<CPX>", gt=gt, source="spike", vid=vid,
                     svtype=CPX, svend=end, cpx_type=subtype, pieces=pieces,
                     components=comps)


def _interval_text(chrom: str, c: tuple) -> str:
    if c[0] == "INS":
        return f"INS_{chrom}:{c[1]}-{c[1]}"  # between bases c[1] and c[1] + 1 (1-based)
    return f"{c[0]}_{chrom}:{c[1] + 1}-{c[2]}"


def cpx_info(v: ComplexSV) -> str:
    """INFO fields after SRC/VT: SVTYPE=CPX, CPX_TYPE, CPX_INTERVALS, END, SVLEN (the
    envelope length, as for other symbolic SVs)."""
    iv = ",".join(_interval_text(v.chrom, c) for c in v.components)
    return (f";SVTYPE=CPX;CPX_TYPE={v.cpx_type};CPX_INTERVALS={iv};END={v.end};"
            f"SVLEN={v.end - v.pos - 1}")


def cpx_bed(v: ComplexSV) -> str:
    """truth_sv.bed lines, one per component (insertions: the base before the sink, SVLEN =
    inserted bases); the ID column is ``<vid>:<CPX_TYPE>``."""
    out = []
    for c in v.components:
        kind, a, b = c[0], c[1], c[2]
        if kind == "INS":
            a, b, size = a - 1, a, c[3]
        else:
            size = -(b - a) if kind == "DEL" else b - a
        out.append(f"{v.chrom}\t{a}\t{b}\t{kind}\t{v.vid}:{v.cpx_type}\t{gt_text(v)}\t.\t"
                   f"{size}\n")
    return "".join(out)


def cpx_header_lines() -> list[str]:
    """VCF header lines a truth with complex events adds (ALT and INFO definitions)."""
    return [
        '##ALT=<ID=CPX,Description="Complex structural variant (several rearranged '
        'segments; see CPX_TYPE and CPX_INTERVALS)">',
        '##INFO=<ID=CPX_TYPE,Number=1,Type=String,Description="Class of complex SV: delINV, '
        'INVdel, delINVdel, dupINV, INVdup, dDUP, dDUP_INV or delINS">',
        '##INFO=<ID=CPX_INTERVALS,Number=.,Type=String,Description="Components of a complex '
        'SV as TYPE_chrom:start-end (1-based, inclusive; INS_chrom:p-p inserts after base p)">',
    ]


def cpx_carrier_copies(v: ComplexSV, hap: int) -> int:
    """Copies of the envelope germline variants may ride in on haplotype ``hap``: 0 on a
    carrying haplotype of an event that deletes bases (they are not placed), else 1."""
    if not v.gt[hap]:
        return 1
    return 0 if any(c[0] == "DEL" for c in v.components) else 1


def _overlap(iv: np.ndarray, a: int, b: int) -> int:
    if not len(iv) or b <= a:
        return 0
    lo = np.maximum(iv[:, 0], a)
    hi = np.minimum(iv[:, 1], b)
    return int(np.clip(hi - lo, 0, None).sum())


def cpx_territory_delta(v: ComplexSV, slot: int, starts_iv: np.ndarray) -> int:
    """Start-territory bases a carrying haplotype gains (or loses) over the reference.

    Parameters
    ----------
    starts_iv : np.ndarray, shape (k, 2)
        Merged reference intervals where the unit's fragments may start.
    """
    if not v.gt[slot]:
        return 0
    got = 0
    for p in v.pieces:
        if p[0] == "R":
            got += _overlap(starts_iv, p[1], p[2])
        elif _overlap(starts_iv, v.pos, v.pos + 1):
            got += len(p[1])  # novel bases anchor on the mapped base before them
    return got - _overlap(starts_iv, v.pos + 1, v.end)

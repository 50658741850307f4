"""Read a VCF into normalized bi-allelic variants ("atoms") ready for comparison.

Two callers can write the same variant in many ways: multi-allelic records, indels shifted
within a repeat, padding bases on both sides. Everything is brought to one canonical form
here: multi-allelic records are split, each allele is trimmed and left-aligned against the
reference (the vt/bcftools-norm algorithm), and the allele is classified (SNV, MNV, INS,
DEL, or a structural variant). Whatever is left over after that (MNV vs SNVs, complex
alleles) is the job of the haplotype matcher in ``compare.py``.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pysam

from ..errors import QCError, ReferenceDataError

__all__ = [
    "SV_MIN_SIZE",
    "Atom",
    "ReferenceCache",
    "RegionSet",
    "normalize_allele",
    "classify_allele",
    "decompose_mnv",
    "size_bin",
    "read_atoms",
]

#: An indel longer than this (in bp of length change) is compared as a structural variant
#: when its exact representation does not match.
SV_MIN_SIZE = 50

_SKIP_ALTS = {"*", "<*>", "<NON_REF>", ".", "<X>"}


@dataclass(slots=True)
class Atom:
    """One normalized bi-allelic variant of one sample.

    Attributes
    ----------
    uid
        Index of the atom in its file's atom list.
    vid
        The original record, as ``chrom:POS:REF>ALT`` (1-based POS, the one ALT of this atom).
    chrom
        Contig name as the reference FASTA spells it.
    pos
        0-based start of ``ref`` after normalization (for symbolic SVs: start of the event).
    ref, alt
        Normalized alleles (upper case). Symbolic SVs keep their ``<TYPE>`` ALT.
    vtype
        ``SNV``, ``MNV``, ``INS``, ``DEL`` or ``SV:<SVTYPE>`` (symbolic and breakend alleles).
    size
        Length change for INS/DEL, number of bases for SNV/MNV, ``abs(SVLEN)`` for SVs
        (0 when unknown).
    zyg
        ``het``, ``hom`` (every called allele is this ALT) or ``unknown`` (sites-only VCF).
    vaf
        Variant allele fraction from a FORMAT/INFO ``VAF`` (or FORMAT ``AF``) field, else None.
    is_sv
        True for symbolic alleles, breakends, and sequence-resolved indels > SV_MIN_SIZE.
    svtype
        ``DEL``, ``INS``, ``DUP``, ``INV``, ``CNV``, ``BND`` for SVs, else None.
    start, end
        0-based half-open span on the reference used for SV overlap and region tests.
    symbolic
        True for symbolic (``<DEL>``) and breakend ALTs, which have no sequence to compare.
    """

    uid: int
    vid: str
    chrom: str
    pos: int
    ref: str
    alt: str
    vtype: str
    size: int
    zyg: str
    vaf: float | None
    is_sv: bool
    svtype: str | None
    start: int
    end: int
    symbolic: bool = False


class ReferenceCache:
    """Random access to a reference FASTA, one whole contig held in memory at a time.

    Normalization fetches a few bases per variant; fetching the contig once turns that into
    string slicing. Contig names are matched with or without a ``chr`` prefix.

    Parameters
    ----------
    path
        FASTA with a ``.fai`` (bgzipped FASTA also needs its ``.gzi``).
    """

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        if not path.exists():
            raise ReferenceDataError("reference FASTA not found", where=str(path))
        try:
            self._fa = pysam.FastaFile(str(path))
        except (OSError, ValueError) as exc:
            raise ReferenceDataError(
                f"cannot open reference FASTA: {exc}", where=str(path)
            ) from exc
        self.path = path
        self._lengths = dict(zip(self._fa.references, self._fa.lengths, strict=True))
        self._name: str | None = None
        self._seq = ""

    def contig(self, name: str) -> str | None:
        """The FASTA's spelling of contig ``name`` (``chr`` prefix tolerated), or None."""
        if name in self._lengths:
            return name
        alt = name[3:] if name.startswith("chr") else "chr" + name
        return alt if alt in self._lengths else None

    def length(self, contig: str) -> int:
        return self._lengths[contig]

    def seq(self, contig: str) -> str:
        """Whole upper-case sequence of ``contig`` (a FASTA name, see ``contig``)."""
        if contig != self._name:
            self._seq = self._fa.fetch(contig).upper()
            self._name = contig
        return self._seq

    def fetch(self, contig: str, start: int, end: int) -> str:
        """Upper-case bases ``[start, end)`` (0-based) of ``contig``."""
        return self.seq(contig)[max(start, 0) : end]

    def close(self) -> None:
        self._fa.close()


class RegionSet:
    """Merged BED intervals with vectorised containment tests.

    Parameters
    ----------
    path
        BED file (plain or gzipped); only the first three columns are read.
    reference
        Used to translate contig names to the FASTA's spelling.
    """

    def __init__(self, path: str | Path, *, reference: ReferenceCache | None = None) -> None:
        path = Path(path)
        if not path.exists():
            raise ReferenceDataError("BED file not found", where=str(path))
        raw: dict[str, list[tuple[int, int]]] = {}
        opener = gzip.open if path.suffix in {".gz", ".bgz"} else open
        with opener(path, "rt") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                f = line.split("\t")
                try:
                    chrom, s, e = f[0], int(f[1]), int(f[2])
                except (IndexError, ValueError) as exc:
                    raise ReferenceDataError(
                        "malformed BED line", where=f"{path}:{lineno}"
                    ) from exc
                if reference is not None:
                    chrom = reference.contig(chrom) or chrom
                raw.setdefault(chrom, []).append((s, e))
        self._iv: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for chrom, ivs in raw.items():
            ivs.sort()
            starts: list[int] = []
            ends: list[int] = []
            for s, e in ivs:
                if starts and s <= ends[-1]:
                    ends[-1] = max(ends[-1], e)
                else:
                    starts.append(s)
                    ends.append(e)
            self._iv[chrom] = (np.asarray(starts, np.int64), np.asarray(ends, np.int64))
        self.path = path

    def contains(self, chrom: str, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Whether each span ``[starts[i], ends[i])`` lies inside one interval.

        Parameters
        ----------
        chrom
            Contig of all spans.
        starts, ends
            Shape (n,) 0-based half-open spans; a zero-length span (insertion point) is
            inside when its position is.

        Returns
        -------
        numpy.ndarray
            Shape (n,) bool.
        """
        starts = np.asarray(starts, np.int64)
        ends = np.maximum(np.asarray(ends, np.int64), starts + 1)
        if chrom not in self._iv:
            return np.zeros(starts.shape, bool)
        s, e = self._iv[chrom]
        idx = np.searchsorted(s, starts, side="right") - 1
        ok = idx >= 0
        idxc = np.clip(idx, 0, None)
        return ok & (ends <= e[idxc]) & (starts >= s[idxc])


def normalize_allele(*, seq: str, pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    """Trim and left-align one bi-allelic variant (Tan et al. 2015, as in vt/bcftools norm).

    Parameters
    ----------
    seq
        Upper-case sequence of the whole contig.
    pos
        0-based position of ``ref``.
    ref, alt
        Upper-case alleles, different from each other.

    Returns
    -------
    tuple
        ``(pos, ref, alt)`` with no common suffix, indels left-aligned and carrying one
        anchor base, and no common prefix beyond that anchor.
    """
    changed = True
    while changed:
        changed = False
        if ref and alt and ref[-1] == alt[-1] and (len(ref) > 1 or len(alt) > 1):
            ref, alt = ref[:-1], alt[:-1]
            changed = True
        if (not ref or not alt) and pos > 0:
            pos -= 1
            base = seq[pos]
            ref, alt = base + ref, base + alt
            changed = True
    if not ref or not alt:
        # Only at the contig start: VCF then anchors on the base after the event.
        nxt = seq[pos + len(ref)]
        ref, alt = ref + nxt, alt + nxt
    while len(ref) > 1 and len(alt) > 1 and ref[0] == alt[0]:
        ref, alt = ref[1:], alt[1:]
        pos += 1
    return pos, ref, alt


def classify_allele(ref: str, alt: str) -> tuple[str, int]:
    """Type and size of a normalized sequence allele: SNV, MNV, INS or DEL."""
    lr, la = len(ref), len(alt)
    if lr == la:
        return ("SNV", 1) if lr == 1 else ("MNV", lr)
    return ("INS", la - lr) if la > lr else ("DEL", lr - la)


def decompose_mnv(*, pos: int, ref: str, alt: str) -> list[tuple[int, str, str]]:
    """The SNVs of an equal-length allele, as ``(pos, ref_base, alt_base)`` tuples."""
    if len(ref) != len(alt):
        raise QCError(f"not an MNV: {ref}>{alt}")
    return [(pos + i, r, a) for i, (r, a) in enumerate(zip(ref, alt, strict=True)) if r != a]


def size_bin(vtype: str, size: int) -> str:
    """Stratum name for the by-type breakdown, e.g. ``INS:1-5``, ``DEL:>50``, ``SV:DUP``."""
    if vtype in ("INS", "DEL"):
        if size <= 5:
            return f"{vtype}:1-5"
        if size <= 15:
            return f"{vtype}:6-15"
        if size <= 50:
            return f"{vtype}:16-50"
        return f"{vtype}:>50"
    return vtype


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        # isal reads multi-member (bgzip) gzip several times faster than the stdlib.
        try:
            from isal import igzip

            return igzip.open(path, "rt")
        except ImportError:  # pragma: no cover - isal is a dependency
            return gzip.open(path, "rt")
    return open(path)


def _parse_info(info: str) -> dict[str, str]:
    out: dict[str, str] = {}
    if info in (".", ""):
        return out
    for item in info.split(";"):
        key, _, value = item.partition("=")
        out[key] = value
    return out


def _per_alt(value: str | None, ai: int) -> str | None:
    """The value for ALT number ``ai`` (1-based) of a Number=A (or =1) field."""
    if value is None or value in (".", ""):
        return None
    parts = value.split(",")
    v = parts[ai - 1] if len(parts) >= ai else parts[0]
    return None if v == "." else v


def _to_float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _zygosities(gt: str, where: str) -> dict[int, str]:
    """ALT index -> ``het``/``hom`` for the ALTs a GT string carries (empty: no ALT)."""
    try:
        called = [int(a) for a in gt.replace("|", "/").split("/") if a != "."]
    except ValueError as exc:
        raise QCError(f"bad GT {gt!r}", where=where) from exc
    return {a: ("hom" if all(c == a for c in called) else "het") for a in called if a > 0}


def _svtype_of(alt: str, info: dict[str, str]) -> str:
    if not alt.startswith("<"):
        return "BND"
    base = alt[1:-1].split(":")[0].upper()
    if base not in _KNOWN_SV:
        base = info.get("SVTYPE", base).split(":")[0].upper() or "BND"
    return base


_KNOWN_SV = {"DEL", "INS", "DUP", "INV", "CNV", "BND"}


def _header_ids(line: str) -> tuple[str, str] | None:
    # "##FORMAT=<ID=VAF,..." -> ("FORMAT", "VAF")
    kind, _, rest = line[2:].partition("=<")
    if kind not in ("INFO", "FORMAT") or not rest.startswith("ID="):
        return None
    return kind, rest[3:].split(",", 1)[0]


def read_atoms(
    path: str | Path,
    *,
    reference: ReferenceCache,
    sample: str | None = None,
    include_filtered: bool = False,
    vaf_field: str | None = None,
) -> list[Atom]:
    """Read a VCF into normalized atoms of one sample.

    The VCF text is parsed directly (not through htslib): only CHROM..INFO, GT and one VAF
    field are needed, and this is several times faster for large files.

    Parameters
    ----------
    path
        VCF or gzipped/bgzipped VCF.
    reference
        The FASTA the VCF was called against; every REF is checked against it.
    sample
        Sample to take genotypes from; None means the first (sites-only VCFs are allowed and
        give ``zyg='unknown'`` for every allele).
    include_filtered
        Keep records whose FILTER is neither PASS nor ``.``.
    vaf_field
        FORMAT/INFO field holding the variant allele fraction; None tries ``VAF`` then
        FORMAT ``AF``.

    Returns
    -------
    list of Atom
        One per ALT carried by the sample (alleles the sample's GT does not contain, and
        missing/``0/0`` genotypes, are dropped), in file order.
    """
    path = Path(path)
    if not path.exists():
        raise QCError("VCF not found", where=str(path))
    atoms: list[Atom] = []
    declared: dict[str, set[str]] = {"INFO": set(), "FORMAT": set()}
    si: int | None = None
    fmt_vaf = info_vaf = None
    seen_header = False
    contig_map: dict[str, str | None] = {}
    gt_cache: dict[str, dict[int, str]] = {}
    try:
        fh = _open_text(path)
        with fh:
            for lineno, line in enumerate(fh, 1):
                if line.startswith("##"):
                    ids = _header_ids(line)
                    if ids:
                        declared[ids[0]].add(ids[1])
                    continue
                if line.startswith("#"):
                    cols = line.rstrip("\r\n").split("\t")
                    si = _sample_index(cols[9:], sample, path)
                    fmt_vaf, info_vaf = _vaf_fields(declared, vaf_field)
                    seen_header = True
                    continue
                if not seen_header:
                    raise QCError("no #CHROM header line before records", where=str(path))
                if not line.strip():
                    continue
                f = line.rstrip("\r\n").split("\t")
                if len(f) < 8 or (si is not None and len(f) < 10 + si):
                    raise QCError("too few columns", where=f"{path}:{lineno}")
                if not include_filtered and f[6] not in ("PASS", ".", ""):
                    continue
                if f[4] in (".", ""):
                    continue
                where = f"{path}:{lineno}"
                chrom = contig_map.get(f[0], "?")
                if chrom == "?":
                    chrom = contig_map[f[0]] = reference.contig(f[0])
                if chrom is None:
                    raise QCError(
                        f"contig {f[0]!r} is not in the reference {reference.path.name}",
                        where=where,
                    )
                try:
                    vpos = int(f[1])
                except ValueError as exc:
                    raise QCError(f"bad POS {f[1]!r}", where=where) from exc
                zygs: dict[int, str] | None = None
                sfields: dict[str, str] | None = None
                if si is not None:
                    keys = f[8].split(":")
                    vals = f[9 + si].split(":")
                    if keys[0] != "GT":
                        continue
                    zygs = gt_cache.get(vals[0])
                    if zygs is None:
                        zygs = gt_cache[vals[0]] = _zygosities(vals[0], where)
                    if not zygs:
                        continue
                    if fmt_vaf is not None:
                        sfields = dict(zip(keys, vals, strict=False))
                seq = reference.seq(chrom)
                ref = f[3].upper()
                rstart = vpos - 1
                refseq = seq[rstart : rstart + len(ref)]
                if refseq != ref and not _ref_compatible(refseq, ref):
                    raise QCError(
                        f"REF {f[3]} does not match the reference ({refseq or 'past contig end'})",
                        where=f"{where} ({f[0]}:{vpos})",
                    )
                info: dict[str, str] | None = None
                for ai, alt in enumerate(f[4].split(","), 1):
                    if zygs is not None:
                        zyg = zygs.get(ai)
                        if zyg is None:
                            continue
                    else:
                        zyg = "unknown"
                    alt_u = alt.upper()
                    if alt_u in _SKIP_ALTS or alt_u == ref:
                        continue
                    symbolic = alt_u[0] == "<" or "[" in alt_u or "]" in alt_u
                    if info is None and (symbolic or info_vaf is not None):
                        info = _parse_info(f[7])
                    vaf = None
                    if sfields is not None:
                        vaf = _to_float(_per_alt(sfields.get(fmt_vaf), ai))
                    if vaf is None and info_vaf is not None:
                        vaf = _to_float(_per_alt(info.get(info_vaf), ai))
                    vid = f"{f[0]}:{vpos}:{f[3]}>{alt}"
                    if symbolic:
                        atom = _symbolic_atom(len(atoms), vid, chrom, rstart, ref, alt_u, ai,
                                              zyg, vaf, info, where)
                    else:
                        atom = _sequence_atom(len(atoms), vid, chrom, rstart, seq, ref, alt_u,
                                              zyg, vaf)
                    atoms.append(atom)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise QCError(f"cannot read VCF: {exc}", where=str(path)) from exc
    if not seen_header:
        raise QCError("not a VCF (no #CHROM header line)", where=str(path))
    return atoms


def _sample_index(names: list[str], sample: str | None, path: Path) -> int | None:
    if not names:
        return None
    if sample is None:
        return 0
    if sample not in names:
        raise QCError(f"sample {sample!r} not in VCF (has {', '.join(names)})", where=str(path))
    return names.index(sample)


def _vaf_fields(
    declared: dict[str, set[str]], vaf_field: str | None
) -> tuple[str | None, str | None]:
    fmt, inf = declared["FORMAT"], declared["INFO"]
    if vaf_field is not None:
        return (vaf_field if vaf_field in fmt else None, vaf_field if vaf_field in inf else None)
    return ("VAF" if "VAF" in fmt else ("AF" if "AF" in fmt else None),
            "VAF" if "VAF" in inf else None)


def _ref_compatible(refseq: str, ref: str) -> bool:
    # IUPAC/N bases in either the FASTA or the VCF REF are not a contradiction.
    if len(refseq) != len(ref):
        return False
    pairs = zip(refseq, ref, strict=True)
    return all(a == b or a not in "ACGT" or b not in "ACGT" for a, b in pairs)


def _symbolic_atom(uid, vid, chrom, rstart, ref, alt, ai, zyg, vaf, info, where) -> Atom:
    svtype = _svtype_of(alt, info)
    try:
        svlen_s = _per_alt(info.get("SVLEN"), ai)
        svlen = abs(int(svlen_s)) if svlen_s is not None else 0
        end_s = info.get("END")
        end_info = int(end_s) if end_s not in (None, "", ".") else None
    except ValueError as exc:
        raise QCError(f"bad SVLEN/END in {vid}", where=where) from exc
    # POS is the base before a symbolic event; breakends sit on POS itself.
    start = rstart + 1 if alt.startswith("<") else rstart
    if svtype in ("INS", "BND"):
        end = start
    elif end_info is not None:
        end = end_info  # 1-based inclusive END == 0-based exclusive end
    elif svlen:
        end = start + svlen
    else:
        end = start + 1
    if svtype not in ("INS", "BND") and not svlen:
        svlen = max(end - start, 0)
    return Atom(uid, vid, chrom, start, ref, alt, f"SV:{svtype}", svlen, zyg, vaf,
                True, svtype, start, end, True)


def _sequence_atom(uid, vid, chrom, rstart, seq, ref, alt, zyg, vaf) -> Atom:
    if len(ref) == 1 and len(alt) == 1:  # SNVs are most records and need no normalizing
        return Atom(uid, vid, chrom, rstart, ref, alt, "SNV", 1, zyg, vaf,
                    False, None, rstart, rstart + 1)
    pos, nref, nalt = normalize_allele(seq=seq, pos=rstart, ref=ref, alt=alt)
    vtype, size = classify_allele(nref, nalt)
    is_sv = vtype in ("INS", "DEL") and size > SV_MIN_SIZE
    anchored = nref[0] == nalt[0] and (len(nref) == 1 or len(nalt) == 1)
    start = pos + 1 if anchored else pos
    end = pos + len(nref)
    return Atom(uid, vid, chrom, pos, nref, nalt, vtype, size, zyg, vaf,
                is_sv, vtype if is_sv else None, start, end)

"""Spikes from a VCF/BCF (``variants.vcf``): every record becomes variants of the sample.

Rules (documented; every rejected record raises a :class:`VariantError` naming
``file:line/FIELD``; nothing is dropped silently except what is listed here as skipped):

- Records are read as text (plain or bgzipped VCF through ``pysam.BGZFile``; a BCF through
  ``pysam.VariantFile``, where "line" is the record number after the header).
- GT comes from ``variants.vcf_sample`` (default: the first sample column). Phased GTs keep
  their phase; an unphased het puts the ALT on haplotype 1 (``0|1``, like ``het`` in a spec);
  ``1/2`` puts ALT 1 on haplotype 0 and ALT 2 on haplotype 1. No sample column: ``0|1``
  (multi-allelic records then raise). A haploid GT (``1``) is only accepted on a haploid
  locus (``sample.sex``/``sample.ploidy``). Skipped: GT ``0/0`` or with a missing allele
  (``./.``; a ``<CNV>`` needs no GT: its copy number decides), ALT ``.``/``*``/equal to
  REF, ``<CNV>`` with CN 2 (not a variant of this sample).
- Sequence ALTs are SNVs, MNVs or indels of any length, left-normalized; with INFO
  ``SVTYPE=INS`` the record is an insertion SV (ALT = anchor + inserted sequence).
- Symbolic ALTs: ``<DEL>``, ``<DUP>``, ``<DUP:TANDEM>``, ``<INV>``, ``<CNV>`` need INFO
  ``END`` (or ``SVLEN``); ``<CNV>`` needs a ``CN`` (FORMAT, else INFO). ``<INS>`` takes its
  sequence from INFO ``SVINSSEQ``, else a random one of length ``SVLEN`` drawn from the spike
  stream (spec seed, record line). They follow the SV rules (inside one chunk, past a margin).
- Breakends (``N[chr:pos[`` etc.) are parsed into :class:`Breakend`; pairs of reciprocal
  junctions become balanced translocations (``synthlib.variants.breakend``), so the four BND
  records of a truth translocation come back as the same event. Any other breakend raises
  naming its record.
- Somatic specs (with ``somatic``): INFO ``VAF`` (else ``AF``) is the record's target VAF
  (small variants and SVs alike; at most ``purity x alleles / 2``).
  Specs without ``somatic`` skip records with INFO ``VAF`` (somatic variants of a tumor: its
  matched normal must not carry them).
- Two variants on one base of one haplotype raise, naming both records.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pysam

from ..errors import ReferenceDataError, VariantError
from ..reference import Reference
from .model import Variant, normalize, variant_key
from .sv import check_sv_fits, make_sv

__all__ = ["VcfRecord", "Breakend", "read_vcf_records", "parse_breakend", "vcf_variants",
           "vcf_spikes", "VCF_INS_KEY"]

#: Spawn key prefix of random ``<INS>`` sequences (beside the spike streams ``(3, ...)``).
VCF_INS_KEY = (3, 3)

_SEQ = re.compile(r"^[ACGTN]+$")
_BND = re.compile(r"^(?P<pre>[ACGTN]*)(?P<b1>[\[\]])(?P<chrom>[^:\[\]]+):(?P<pos>\d+)"
                  r"(?P<b2>[\[\]])(?P<post>[ACGTN]*)$")
_SYMBOLIC = {"DEL": "DEL", "DUP": "DUP", "DUP:TANDEM": "DUP", "INV": "INV", "CNV": "CNV",
             "INS": "INS"}


@dataclass(frozen=True)
class VcfRecord:
    """One data line, as text fields.

    Attributes
    ----------
    where
        ``file:line`` of the record (``file:record N`` in a BCF).
    pos
        1-based POS.
    info
        INFO keys to values (``True`` for flags).
    call
        The chosen sample's FORMAT keys to values (empty without a sample column).
    """

    where: str
    line: int
    chrom: str
    pos: int
    vid: str
    ref: str
    alts: list[str]
    info: dict[str, str | bool]
    call: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Breakend:
    """A BND allele in an intermediate form (VCF 4.3 section 5.4).

    Attributes
    ----------
    pos
        0-based position of the breakend base on ``chrom``.
    mate_chrom, mate_pos
        The joined partner (0-based position of its breakend base).
    keeps_left
        True when the piece of ``chrom`` up to ``pos`` is kept (``t[p[`` / ``t]p]``), False when
        the piece from ``pos`` on is (``]p]t`` / ``[p[t``).
    mate_keeps_left
        Likewise for the partner: ``]`` brackets join the partner's left piece.
    inserted
        Bases inserted at the junction (besides the anchor base).
    """

    where: str
    chrom: str
    pos: int
    vid: str
    mate_id: str | None
    mate_chrom: str
    mate_pos: int
    keeps_left: bool
    mate_keeps_left: bool
    inserted: str
    gt: tuple[int, ...]
    event: str | None = None


def _lines(path: Path) -> Iterator[tuple[str, int, str]]:
    """``(where, number, text)`` of every line, header included."""
    with open(path, "rb") as fh:
        magic = fh.read(4)
    bcf = False
    if magic[:2] == b"\x1f\x8b":
        with pysam.BGZFile(str(path), "rb") as bz:
            bcf = bz.read(3) == b"BCF"
    if bcf:
        with pysam.VariantFile(str(path)) as vf:
            head = str(vf.header).rstrip("\n").split("\n")
            for i, h in enumerate(head):
                yield f"{path}:header {i + 1}", i + 1, h
            for i, rec in enumerate(vf):
                yield f"{path}:record {i + 1}", i + 1, str(rec).rstrip("\n")
        return
    with pysam.BGZFile(str(path), "rb") as bz:
        data = bz.read()
    for i, line in enumerate(data.decode().split("\n")):
        if line:
            yield f"{path}:{i + 1}", i + 1, line.rstrip("\r")


def _info(text: str) -> dict[str, str | bool]:
    if text in (".", ""):
        return {}
    out: dict[str, str | bool] = {}
    for item in text.split(";"):
        k, eq, v = item.partition("=")
        out[k] = v if eq else True
    return out


def _alts(text: str) -> list[str]:
    # Breakend ALTs name contigs, which keep their case; bases and symbols are upper-cased.
    return [a if "[" in a or "]" in a else a.upper() for a in text.split(",")]


def read_vcf_records(path: Path, *, sample: str | None = None) -> Iterator[VcfRecord]:
    """Data records of a VCF/BCF with the chosen sample's call.

    Raises
    ------
    ReferenceDataError
        If the file cannot be read, has no ``#CHROM`` line, or lacks ``sample``.
    VariantError
        For a line with fewer than 8 columns.
    """
    path = Path(path)
    col: int | None = None
    try:
        for where, number, line in _lines(path):
            if line.startswith("##"):
                continue
            if line.startswith("#"):
                names = line.split("\t")[9:]
                if sample is not None and sample not in names:
                    shown = ", ".join(names[:10]) or "no sample columns"
                    raise ReferenceDataError(f"sample {sample!r} is not in the VCF (has: {shown})",
                                             where=str(path))
                col = (9 + names.index(sample)) if sample is not None else (9 if names else None)
                continue
            f = line.split("\t")
            if len(f) < 8:
                raise VariantError(f"a record needs at least 8 tab-separated columns, got "
                                   f"{len(f)}", where=where)
            call = {}
            if col is not None and len(f) > col:
                call = dict(zip(f[8].split(":"), f[col].split(":"), strict=False))
            try:
                pos = int(f[1])
            except ValueError:
                raise VariantError(f"POS {f[1]!r} is not a number", where=f"{where}/POS") from None
            yield VcfRecord(where=where, line=number, chrom=f[0], pos=pos, vid=f[2],
                            ref=f[3].upper(), alts=_alts(f[4]), info=_info(f[7]),
                            call=call)
    except (OSError, ValueError) as exc:
        if isinstance(exc, ReferenceDataError):
            raise
        raise ReferenceDataError(f"cannot read VCF: {exc}", where=str(path)) from None


def parse_breakend(rec: VcfRecord, alt: str, gt: tuple[int, ...]) -> Breakend:
    """The :class:`Breakend` of one BND ALT (``t[p[``, ``t]p]``, ``]p]t``, ``[p[t``).

    Raises
    ------
    VariantError
        If the ALT is not a well-formed breakend.
    """
    m = _BND.match(alt)
    if m is None or m["b1"] != m["b2"] or bool(m["pre"]) == bool(m["post"]):
        raise VariantError(f"malformed breakend ALT {alt!r}", where=f"{rec.where}/ALT")
    seq = m["pre"] or m["post"]
    mate = rec.info.get("MATEID")
    event = rec.info.get("EVENT")
    return Breakend(where=rec.where, chrom=rec.chrom, pos=rec.pos - 1, vid=rec.vid,
                    mate_id=mate if isinstance(mate, str) else None, mate_chrom=m["chrom"],
                    mate_pos=int(m["pos"]) - 1, keeps_left=bool(m["pre"]),
                    mate_keeps_left=m["b1"] == "]", inserted=seq[1:] if m["pre"] else seq[:-1],
                    gt=gt, event=event if isinstance(event, str) else None)


def _genotype(rec: VcfRecord, n_alts: int) -> tuple[tuple[int, ...], bool] | None:
    """Allele indices and phasing of the call; None for a missing call."""
    if not rec.call:
        if n_alts > 1:
            raise VariantError("a multi-allelic record needs a sample column with GT",
                               where=f"{rec.where}/GT")
        return (0, 1), True
    text = rec.call.get("GT")
    if text is None:
        raise VariantError("the sample column has no GT", where=f"{rec.where}/GT")
    parts = re.split(r"[/|]", text)
    if any(p in (".", "") for p in parts):
        return None
    try:
        alleles = tuple(int(p) for p in parts)
    except ValueError:
        raise VariantError(f"malformed GT {text!r}", where=f"{rec.where}/GT") from None
    if len(alleles) > 2 or any(a > n_alts or a < 0 for a in alleles):
        raise VariantError(f"GT {text!r} does not fit {n_alts} ALT allele(s) (ploidy <= 2)",
                           where=f"{rec.where}/GT")
    return alleles, "/" not in text


def _int_field(rec: VcfRecord, key: str, *, in_call: bool = False) -> int | None:
    src = rec.call if in_call else rec.info
    raw = src.get(key)
    if raw is None or raw == ".":
        return None
    try:
        return int(str(raw).split(",")[0])
    except ValueError:
        raise VariantError(f"malformed {key}={raw!r} (not an integer)",
                           where=f"{rec.where}/{key}") from None


def _vaf(rec: VcfRecord, allele: int) -> float | None:
    for key in ("VAF", "AF"):
        raw = rec.info.get(key)
        if isinstance(raw, str) and raw != ".":
            vals = raw.split(",")
            try:
                v = float(vals[min(allele - 1, len(vals) - 1)])
            except ValueError:
                raise VariantError(f"malformed {key}={raw!r}", where=f"{rec.where}/{key}") from None
            if not 0 < v <= 1:
                raise VariantError(f"{key}={v} is not in (0, 1]", where=f"{rec.where}/{key}")
            return v
    return None


def _check_purity(spec, vaf: float | None, gt: tuple[int, ...], *, where: str) -> None:
    if vaf is not None and 2 * vaf / max(1, sum(gt)) > spec.somatic.purity + 1e-12:
        raise VariantError(f"VAF {vaf} needs more tumor cells than purity "
                           f"{spec.somatic.purity} gives", where=f"{where}/INFO")


def _check_ref(rec: VcfRecord, reference: Reference) -> None:
    if rec.chrom not in reference.lengths:
        raise VariantError(f"contig {rec.chrom!r} is not in the reference",
                           where=f"{rec.where}/CHROM")
    if not _SEQ.match(rec.ref):
        raise VariantError(f"REF {rec.ref!r} is not A/C/G/T/N bases", where=f"{rec.where}/REF")
    p0 = rec.pos - 1
    if rec.pos < 1 or p0 + len(rec.ref) > reference.lengths[rec.chrom]:
        raise VariantError(f"POS {rec.pos} (+{len(rec.ref)} REF bases) runs past the end of "
                           f"{rec.chrom} ({reference.lengths[rec.chrom]} bp)",
                           where=f"{rec.where}/POS")
    actual = reference.fetch(rec.chrom, p0, p0 + len(rec.ref)).decode()
    if "N" in actual:
        raise VariantError("the variant lies in an N (unknown) stretch of the reference",
                           where=f"{rec.where}/REF")
    if actual != rec.ref:
        raise VariantError(f"REF {rec.ref!r} does not match the reference ({actual!r})",
                           where=f"{rec.where}/REF")


def _sv(rec: VcfRecord, alt: str, gt: tuple[int, int], *, spec, reference: Reference,
        vaf: float | None = None) -> Variant:
    """The symbolic (or sequence-resolved insertion) SV of one ALT."""
    name = alt[1:-1] if alt.startswith("<") else "INS"
    svtype = _SYMBOLIC.get(name)
    if svtype is None:
        raise VariantError(f"symbolic ALT {alt} is not supported (DEL, DUP, DUP:TANDEM, INV, "
                           "INS, CNV are)", where=f"{rec.where}/ALT")
    p0 = rec.pos - 1
    svlen = _int_field(rec, "SVLEN")
    cn = None
    seq = None
    if svtype == "INS":
        if not alt.startswith("<"):
            if alt[0] != rec.ref[0] or len(rec.ref) != 1:
                raise VariantError("an SVTYPE=INS record with a sequence ALT needs a one-base "
                                   "REF that starts the ALT", where=f"{rec.where}/ALT")
            seq = alt[1:]
        elif isinstance(rec.info.get("SVINSSEQ"), str):
            seq = str(rec.info["SVINSSEQ"]).upper()
        elif svlen is None or svlen == 0:
            raise VariantError("<INS> needs INFO/SVINSSEQ or INFO/SVLEN",
                               where=f"{rec.where}/SVLEN")
        if seq is not None and not re.match(r"^[ACGT]+$", seq):
            raise VariantError("inserted sequence must be A/C/G/T bases",
                               where=f"{rec.where}/SVINSSEQ")
        size = len(seq) if seq is not None else abs(int(svlen or 0))
    else:
        raw_end = rec.info.get("END")
        if raw_end is not None:
            try:
                end = int(str(raw_end))
            except ValueError:
                raise VariantError(f"malformed END={raw_end!r} (not an integer)",
                                   where=f"{rec.where}/END") from None
        elif svlen is not None:
            end = rec.pos + abs(svlen)
        else:
            raise VariantError(f"{alt} needs INFO/END (or SVLEN)", where=f"{rec.where}/END")
        if end <= rec.pos:
            raise VariantError(f"END={end} must be greater than POS={rec.pos}",
                               where=f"{rec.where}/END")
        if end > reference.lengths[rec.chrom]:
            raise VariantError(f"END={end} runs past the end of {rec.chrom} "
                               f"({reference.lengths[rec.chrom]} bp)", where=f"{rec.where}/END")
        size = end - rec.pos
        if svtype == "CNV":
            cn = _int_field(rec, "CN", in_call=True)
            cn = cn if cn is not None else _int_field(rec, "CN")
            if cn is None:
                raise VariantError("<CNV> needs a copy number (FORMAT/CN or INFO/CN)",
                                   where=f"{rec.where}/CN")
            if not 0 <= cn <= 20:
                raise VariantError(f"CN={cn} is not in 0..20", where=f"{rec.where}/CN")
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed,
                                                       spawn_key=(*VCF_INS_KEY, rec.line)))
    try:
        v = make_sv(reference=reference, chrom=rec.chrom, pos=p0, svtype=svtype, size=size,
                    gt=gt, vid=rec.vid, cn=cn, sequence=seq, rng=rng, vaf=vaf)
    except VariantError as exc:
        raise VariantError(exc.message, where=f"{rec.where}/POS") from None
    check_sv_fits(spec, rec.chrom, v.pos, max(v.end, v.pos + 2), where=rec.where)
    return v


def _record_variants(rec: VcfRecord, *, spec, reference: Reference, breakends: list[Breakend]
                     ) -> list[Variant]:
    alts = rec.alts
    call = _genotype(rec, len(alts))
    if call is None and alts == ["<CNV>"]:
        call = (0, 1), True  # a CNV's genotype follows from its copy number
    if call is None:
        return []
    alleles, _phased = call
    haploid = len(alleles) == 1
    if not haploid and not _phased and alleles[0] > 0 and alleles[1] == 0:
        alleles = (0, alleles[0])  # unphased het: the ALT goes on haplotype 1, like "het"
    carried = sorted({a for a in alleles if a > 0})
    if not carried:
        return []
    bnd = [a for a in carried if _is_breakend(alts[a - 1])]
    if bnd:
        breakends += [parse_breakend(rec, alts[a - 1], alleles) for a in bnd]
        return []
    _check_ref(rec, reference)
    somatic = spec.somatic is not None
    if not somatic and "VAF" in rec.info:
        return []  # a tumor's somatic record: absent from a normal
    out = []
    for a in carried:
        alt = alts[a - 1]
        if alt in (".", "*") or alt == rec.ref:
            continue
        gt = (int(alleles[0] == a), 0) if haploid else (int(alleles[0] == a),
                                                         int(alleles[1] == a))
        vaf = _vaf(rec, a) if somatic else None
        if alt.startswith("<") or rec.info.get("SVTYPE") == "INS":
            v = _sv(rec, alt, gt, spec=spec, reference=reference, vaf=vaf)
            _check_purity(spec, vaf, v.gt, where=rec.where)
            if v.svtype == "CNV" and v.cn == 2:
                continue  # the reference state: nothing to simulate
        else:
            if not _SEQ.match(alt) or "N" in alt:
                raise VariantError(f"ALT {alt!r} is not A/C/G/T bases", where=f"{rec.where}/ALT")
            p0 = rec.pos - 1

            def fetch(x: int, y: int, chrom: str = rec.chrom) -> str:
                return reference.fetch(chrom, x, y).decode()

            npos, nref, nalt = normalize(p0, rec.ref, alt, fetch)
            _check_purity(spec, vaf, gt, where=rec.where)
            v = Variant(rec.chrom, npos, nref, nalt, gt=gt,
                        source="somatic" if vaf is not None else "spike", vid=rec.vid,
                        vaf=vaf)
        if haploid:
            v = replace(v, ploidy=1)
        out.append(v)
    return out


def _translocations(breakends: list[Breakend], *, spec, reference: Reference
                    ) -> list[tuple[Variant, str]]:
    """Balanced reciprocal translocations from breakends (the simulator's only BND event).

    A junction ``X[:bx] + Y[by:]`` is the ``t[Y:by+1[`` breakend at X (POS = bx); the record
    at its other end (``]X:bx]t`` at Y, POS = by + 1) is optional. Two junctions joining the
    same two breaks both ways make one translocation (ID: INFO ``EVENT``, else the first
    record's ID). Any other breakend (inversion-type ``t]p]``/``[p[t`` joins, single or
    unpaired breakends) raises naming its record.
    """
    if not breakends:
        return []
    from .breakend import junction_pad, make_translocation

    joins = {(b.chrom, b.pos + 1, b.mate_chrom, b.mate_pos): b for b in breakends
             if b.keeps_left and not b.mate_keeps_left}
    for b in breakends:
        if b.keeps_left and not b.mate_keeps_left:
            continue
        if not b.keeps_left and b.mate_keeps_left and (
                b.mate_chrom, b.mate_pos + 1, b.chrom, b.pos) in joins:
            continue  # the far end of a junction already given
        raise VariantError(
            f"breakend {b.vid} ({b.chrom}:{b.pos + 1} joined to {b.mate_chrom}:"
            f"{b.mate_pos + 1}) is not part of a balanced reciprocal translocation (the only "
            "breakend event the simulator supports)", where=f"{b.where}/ALT")
    out: list[tuple[Variant, str]] = []
    done: set = set()
    for key, b in joins.items():
        if key in done:
            continue
        back = (key[2], key[3], key[0], key[1])
        if back not in joins:
            raise VariantError(
                f"breakend {b.vid}: the reciprocal junction {key[2]}:{key[3]} -> {key[0]}:"
                f"{key[1]} is missing (only balanced translocations are supported)",
                where=f"{b.where}/ALT")
        done |= {key, back}
        if b.inserted or joins[back].inserted:
            raise VariantError(f"breakend {b.vid}: bases inserted at a translocation junction "
                               "are not supported", where=f"{b.where}/ALT")
        (c1, b1), (c2, b2) = sorted([(key[0], key[1]), (key[2], key[3])])
        gt = b.gt if len(b.gt) == 2 else (b.gt[0], 0)
        gt = (int(gt[0] > 0), int(gt[1] > 0))
        rec_event = b.event or b.vid
        for v in make_translocation(reference=reference, chrom=c1, bp=b1, chrom2=c2, bp2=b2,
                                    gt=gt, vid=rec_event, pad=junction_pad(spec),
                                    where=f"{b.where}/ALT"):
            out.append((v, b.where))
    return out


def _is_breakend(alt: str) -> bool:
    return bool(_BND.match(alt)) or (len(alt) > 1 and (alt[0] == "." or alt[-1] == "."))


def _rides_in(v: Variant, sv: Variant) -> bool:
    """A small variant strictly inside an SV (clear of its anchor and far junction base), on
    haplotypes that keep a copy of the span: it rides along in every copy (the rule the
    germline background follows, ``synthlib.variants.assemble``)."""
    from .sv import hap_copies

    if sv.svend is None or not (sv.pos + 1 < v.pos and v.end < sv.svend):
        return False
    return all(hap_copies(sv, h) > 0 for h in range(2) if v.gt[h])


def _check_haplotype_overlap(items: list[tuple[Variant, str]]) -> None:
    """Small variants may share no base of a haplotype they both carry; SVs share no base
    with each other; a small variant within an SV must ride in it (:func:`_rides_in`)."""
    import bisect

    ordered = sorted(items, key=lambda t: (t[0].chrom, t[0].pos, t[0].end))
    small = [(v, w) for v, w in ordered if v.svtype is None]
    svs = [(v, w) for v, w in ordered
           if v.svtype is not None and (v.svend is not None or v.svtype == "INS")]
    last: dict[int, tuple[str, int, str]] = {}
    for v, where in small:
        for h in (h for h in (0, 1) if v.gt[h]):
            prev = last.get(h)
            if prev and prev[0] == v.chrom and v.pos < prev[1]:
                raise VariantError(f"two variants on one base of haplotype {h}: {prev[2]} and "
                                   f"this record ({v.label})", where=where)
            if not prev or prev[0] != v.chrom or v.end > prev[1]:
                last[h] = (v.chrom, v.end, where)
    for (a, wa), (b, wb) in zip(svs, svs[1:], strict=False):
        if a.chrom == b.chrom and b.pos < a.end:
            raise VariantError(f"two structural variants share a base: {wa} and this record "
                               f"({b.label})", where=wb)
    keys = [(v.chrom, v.pos) for v, _ in small]
    longest = max((len(v.ref) for v, _ in small), default=1)
    for sv, sv_where in svs:
        lo = bisect.bisect_left(keys, (sv.chrom, sv.pos - longest))
        hi = bisect.bisect_left(keys, (sv.chrom, sv.end))
        for v, where in small[lo:hi]:
            if v.pos < sv.end and sv.pos < v.end and not _rides_in(v, sv):
                raise VariantError(f"{v.label} overlaps the structural variant of {sv_where} "
                                   "without lying inside it on a haplotype that keeps a copy",
                                   where=where)


def vcf_variants(
    *, path: Path, spec, reference: Reference, sample: str | None = None,
    ploidy: dict[str, np.ndarray] | None = None,
) -> list[Variant]:
    """Every record of ``path`` as validated, normalized variants (sorted).

    Parameters
    ----------
    spec
        The :class:`~synthlib.spec.DatasetSpec` (seed, chunk layout, somatic section).
    ploidy
        Non-diploid stretches (:func:`synthlib.variants.ploidy.ploidy_map`); variants there
        become haploid, and haploid GTs elsewhere raise.

    Raises
    ------
    VariantError
        Naming ``file:line/FIELD`` for any record that cannot be simulated.
    """
    from .ploidy import apply_ploidy

    items: list[tuple[Variant, str]] = []
    breakends: list[Breakend] = []
    for rec in read_vcf_records(path, sample=sample):
        for v in _record_variants(rec, spec=spec, reference=reference, breakends=breakends):
            items.append((v, rec.where))
    items += _translocations(breakends, spec=spec, reference=reference)
    if breakends:
        from .breakend import check_breaks_clear, junction_pad

        # Junction reads carry small variants near a break (germline ones of a truth VCF
        # sit there); other SVs may not.
        check_breaks_clear([v for v, _ in items if v.svtype], pad=junction_pad(spec),
                           what=str(path))
    items = [(apply_ploidy([v], ploidy or {}, where_of=lambda _v, w=w: w)[0], w)
             for v, w in items]
    _check_haplotype_overlap(items)
    return sorted((v for v, _ in items), key=variant_key)


def vcf_spikes(spec, reference: Reference, *, base_dir: Path | None,
               ploidy: dict[str, np.ndarray] | None = None,
               taken: list[Variant] = ()) -> list[Variant]:
    """The spec's ``variants.vcf`` records as spikes (empty without one).

    Raises
    ------
    VariantError
        For a bad record, or one touching a base of a spec ``taken`` (explicit) variant.
    """
    if not spec.variants.vcf:
        return []
    from ..resources import resolve_file

    path = resolve_file(spec.variants.vcf, base_dir=base_dir, what="variants VCF")
    out = vcf_variants(path=path, spec=spec, reference=reference,
                       sample=spec.variants.vcf_sample, ploidy=ploidy)
    for t in taken:
        for v in out:
            if v.chrom == t.chrom and v.pos < t.end and t.pos < v.end:
                raise VariantError(f"{v.label} (from {path.name}) overlaps explicit variant "
                                   f"{t.label}", where="variants.vcf")
    return out

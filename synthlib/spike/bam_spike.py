"""Spike small variants into an existing coordinate-sorted BAM by editing the covering reads.

Rules (also in :func:`spike_bam`'s docstring):

* **Depth** of a variant = primary, mapped, non-duplicate, non-QC-fail reads with MAPQ >=
  ``min_mapq`` whose alignment spans the event (for indels: one aligned base each side too).
* **ALT reads** = ``floor(vaf * depth + 0.5)``; when that is 0 the VAF is impossible at that
  depth and the variant is refused. Fewer reads are edited only when too few can carry the
  allele (a read with its own indel or clip inside the event); the truth VCF says so.
* Whole fragments are chosen (both mates covering the site get the ALT), preferring the
  haplotype the ALT is on: ``HP`` tags when present, else a per-read-name coin shared by all
  spikes, so nearby spikes on one haplotype land on the same fragments (cis).
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from array import array
from bisect import bisect_left, bisect_right
from dataclasses import asdict, dataclass, field
from hashlib import blake2b, md5
from pathlib import Path

import numpy as np
import pysam

from ..errors import ReferenceDataError, VariantError
from .columns import ReadColumns, md_nm
from .edit import apply_allele, editable, editable_read
from .inputs import alignment_format, localize, open_input, to_cram
from .replace import SVOutcome, SVPlan, plan_sv
from .requests import SpikeRequest, read_spike_vcf
from .splice import (
    BaiLinearIndex,
    Replacement,
    read_uncompressed,
    skip_header,
    splice_bam,
    split_records,
)

__all__ = ["SpikeOutcome", "SpikeResult", "spike_bam"]

_SKIP_FLAGS = 0x4 | 0x100 | 0x200 | 0x400 | 0x800
_ID_FLAGS = 0x40 | 0x80 | 0x100 | 0x800

Ident = tuple[int, int, str, int]
#: Changes closer than this (bp) are rebuilt as one interval.
_MERGE_GAP = 512
#: How far (bp) to look for a mate by name when PNEXT does not lead to it.
_MATE_WINDOW = 2000


@dataclass
class SpikeOutcome:
    """What one variant became."""

    chrom: str
    pos: int
    ref: str
    alt: str
    requested_vaf: float
    realized_vaf: float
    depth: int
    alt_reads: int
    target_reads: int
    eligible_reads: int
    haplotype: int


@dataclass
class SpikeResult:
    """Outcome of :func:`spike_bam`."""

    out: str
    index: str
    truth: str | None
    variants: list[SpikeOutcome]
    records_changed: int
    bytes_recompressed: int
    input_bytes: int
    timings: dict[str, float] = field(default_factory=dict)
    svs: list[SVOutcome] = field(default_factory=list)
    records_removed: int = 0
    records_added: int = 0

    def to_dict(self) -> dict:
        n = len(self.variants) + len(self.svs)
        return {
            "out": self.out,
            "index": self.index,
            "truth": self.truth,
            "variants": [asdict(v) for v in self.variants],
            "svs": [asdict(v) for v in self.svs],
            "totals": {
                "variants": n,
                "small_variants": len(self.variants),
                "structural_variants": len(self.svs),
                "alt_reads": sum(v.alt_reads for v in self.variants),
                "records_changed": self.records_changed,
                "records_removed": self.records_removed,
                "records_added": self.records_added,
                "bytes_recompressed": self.bytes_recompressed,
                "input_bytes": self.input_bytes,
            },
            "timings": dict(self.timings),
            "seconds_per_spike": self.timings.get("total", 0.0) / n if n else 0.0,
        }


def _ident(read: pysam.AlignedSegment) -> Ident:
    return (read.reference_id, read.reference_start, read.query_name, read.flag & _ID_FLAGS)


def _find_index(bam: Path) -> Path | None:
    for cand in (Path(f"{bam}.bai"), bam.with_suffix(".bai")):
        if cand.exists():
            return cand
    return None


def _check_reference(af: pysam.AlignmentFile, fasta: pysam.FastaFile, bam: Path, ref: str,
                     contigs_used: set[str]) -> None:
    fa_len = dict(zip(fasta.references, fasta.lengths, strict=True))
    shared = [n for n in af.references if n in fa_len]
    if not shared:
        raise ReferenceDataError(
            f"BAM is aligned to another reference: its contig {af.references[0]} (and every "
            f"other: {', '.join(list(af.references)[:5])}) is not in the FASTA, which has "
            f"{', '.join(list(fa_len)[:5])}", where=str(bam))
    bad = [f"{n} (BAM {af.get_reference_length(n)}, FASTA {fa_len[n]})" for n in shared
           if af.get_reference_length(n) != fa_len[n]]
    if bad:
        raise ReferenceDataError(
            "BAM is aligned to another reference: contig lengths differ: " + ", ".join(bad[:5]),
            where=str(bam))
    sq = {d["SN"]: d for d in af.header.to_dict().get("SQ", [])}
    for name in contigs_used:
        if name not in sq:
            raise ReferenceDataError(f"contig {name} is not in the BAM header", where=str(bam))
        m5 = sq[name].get("M5")
        if m5:  # same length but other sequence (e.g. another patch level)
            digest = md5(fasta.fetch(name).upper().encode()).hexdigest()
            if digest != m5.lower():
                raise ReferenceDataError(
                    f"contig {name}: BAM header M5 {m5} != FASTA sequence MD5 {digest}",
                    where=ref)


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))


def _coin_hap(seed: int, name: str) -> int:
    # A fixed haplotype per fragment, shared by all spikes: cis spikes share fragments.
    # (a cryptographic digest: CRC bits are linear in the input, so similar read names
    # would land on the same side far more often than half the time)
    return (blake2b(f"{seed}\t{name}".encode(), digest_size=1).digest()[0] & 1) + 1


class _Spiker:
    def __init__(self, af: pysam.AlignmentFile, fasta: pysam.FastaFile, seed: int,
                 min_mapq: int) -> None:
        self.af = af
        self.fasta = fasta
        self.seed = seed
        self.min_mapq = min_mapq
        # identity -> (original record, current columns)
        self.edited: dict[Ident, tuple[pysam.AlignedSegment, ReadColumns]] = {}
        self._buckets: dict[tuple[int, int], dict] = {}

    def spike(self, req: SpikeRequest) -> SpikeOutcome:
        al = req.allele
        lo = al.start - 1 if al.is_indel else al.start
        hi = al.end if al.is_indel else al.end - 1  # inclusive
        contig_len = self.af.get_reference_length(req.chrom)
        lo, hi = max(lo, 0), min(hi, contig_len - 1)
        spanning: list[tuple[Ident, pysam.AlignedSegment, ReadColumns]] = []
        for read in self.af.fetch(req.chrom, lo, hi + 1):
            if read.flag & _SKIP_FLAGS or read.mapping_quality < self.min_mapq:
                continue
            key = _ident(read)
            orig, cols = self.edited.get(key, (read, None))
            if cols is None:
                # columns are built only for reads that get edited: at thousands-x depth
                # building them for every covering read was most of the time
                if not any(op in (0, 7, 8) for op, _ in read.cigartuples or ()):
                    continue
                if read.reference_start <= lo and read.reference_end > hi:
                    spanning.append((key, orig, None))
                continue
            if not any(c[0] == "M" for c in cols.cols):
                continue
            if cols.aligned_start() <= lo and cols.aligned_end() > hi:
                spanning.append((key, orig, cols))
        depth = len(spanning)
        if depth == 0:
            raise VariantError("no read covers the site", where=req.label)
        target = int(np.floor(req.vaf * depth + 0.5))
        if target < 1:
            raise VariantError(
                f"VAF {req.vaf} is impossible at depth {depth}: VAF x depth rounds to 0 reads "
                f"(need VAF >= {0.5 / depth:.3g})", where=req.label)
        rng = _rng(self.seed, req.index)
        hap = req.haplotype or int(rng.integers(1, 3))
        frags: dict[str, list[tuple[Ident, pysam.AlignedSegment, ReadColumns]]] = {}
        for item in spanning:
            frags.setdefault(item[1].query_name, []).append(item)
        names = sorted(frags)
        usable, prio = [], []
        for name in names:
            items = frags[name]
            ok = all(editable(c, al, contig_len, o.is_reverse) if c is not None
                     else editable_read(o, al, contig_len) for _, o, c in items)
            if not ok:
                continue
            tagged = [o.get_tag("HP") for _, o, _ in items if o.has_tag("HP")]
            frag_hap = int(tagged[0]) if tagged else _coin_hap(self.seed, name)
            usable.append(name)
            prio.append(0 if frag_hap == hap else 1)
        order = np.lexsort((rng.random(len(usable)), np.asarray(prio, dtype=np.int64)))
        eligible = sum(len(frags[n]) for n in usable)
        remaining = target
        for k in order:
            items = frags[usable[int(k)]]
            if len(items) > remaining:
                continue
            for key, orig, cols in items:
                self.edited[key] = (orig, self._apply(req, orig, cols))
            remaining -= len(items)
            if remaining == 0:
                break
        alt_reads = target - remaining
        if alt_reads == 0:
            raise VariantError(
                f"none of the {depth} covering reads can carry the allele (own indels or clips "
                "at the site)", where=req.label)
        return SpikeOutcome(req.chrom, req.pos, req.ref, req.alt, req.vaf,
                            round(alt_reads / depth, 6), depth, alt_reads, target, eligible, hap)

    def _apply(self, req: SpikeRequest, orig: pysam.AlignedSegment,
               cols: ReadColumns | None) -> ReadColumns:
        if cols is None:
            cols = ReadColumns.from_read(orig)
        d = abs(len(req.allele.alt) - (req.allele.end - req.allele.start))
        beg = max(cols.aligned_start() - d - 1, 0)
        end = cols.aligned_end() + d + 1
        ref = self.fasta.fetch(req.chrom, beg, end)
        return apply_allele(cols, req.allele, is_reverse=orig.is_reverse, reference=ref,
                            ref_offset=beg)

    # -- building the changed records ------------------------------------------------------
    def build_records(self) -> dict[Ident, pysam.AlignedSegment]:
        """New records for every edited read and every mate whose mate fields change."""
        new: dict[Ident, pysam.AlignedSegment] = {}
        for key, (orig, cols) in self.edited.items():
            rec = copy.copy(orig)
            ref_beg = cols.aligned_start()
            ref_end = cols.aligned_end()
            ref = self.fasta.fetch(orig.reference_name, ref_beg, ref_end)
            quals = cols.qualities()
            rec.query_sequence = cols.sequence()
            if quals is not None:
                rec.query_qualities = array("B", quals)
            rec.cigartuples = cols.cigar(ref, ref_beg)
            rec.reference_start = ref_beg
            if orig.has_tag("MD") or orig.has_tag("NM"):
                md, nm = md_nm(cols.cols, ref, ref_beg)
                if orig.has_tag("MD"):
                    rec.set_tag("MD", md, value_type="Z")
                if orig.has_tag("NM"):
                    rec.set_tag("NM", nm, value_type="i")
            new[key] = rec
        self._fix_mates(new)
        return new

    def _find_mates(self, reads: list[pysam.AlignedSegment]
                    ) -> dict[str, pysam.AlignedSegment | None]:
        """Each read's primary mate, by read name (None when not in this file).

        One sweep per cluster of mate positions instead of a fetch per read: at high depth
        every fetch at a position returns thousands of overlapping reads, so per-read
        lookups cost depth squared.
        """
        found: dict[str, pysam.AlignedSegment | None] = {}
        wanted: dict[int, dict[tuple[int, str, int], pysam.AlignedSegment]] = {}
        for read in reads:
            found[read.query_name] = None
            if not read.is_paired or read.mate_is_unmapped or read.next_reference_id < 0:
                continue
            tid, pnext = read.next_reference_id, read.next_reference_start
            if pnext < self.af.get_reference_length(self.af.get_reference_name(tid)):
                want = 0x80 if read.is_read1 else 0x40
                wanted.setdefault(tid, {})[(pnext, read.query_name, want)] = read
        for tid, keys in wanted.items():
            name = self.af.get_reference_name(tid)
            for a, b in _clusters(sorted({k[0] for k in keys}), gap=_MATE_WINDOW):
                for m in self.af.fetch(name, a, b + 1):
                    if m.reference_start < a or m.flag & 0x900:
                        continue
                    key = (m.reference_start, m.query_name, m.flag & 0xC0)
                    if key in keys:
                        found[m.query_name] = m
        for read in reads:
            if found[read.query_name] is None:
                found[read.query_name] = self._mate_by_name(read)
        return found

    def _mate_by_name(self, read: pysam.AlignedSegment) -> pysam.AlignedSegment | None:
        if not read.is_paired or read.mate_is_unmapped or read.next_reference_id < 0:
            return None
        if read.next_reference_id != read.reference_id:
            return None
        want = 0x80 if read.is_read1 else 0x40
        # PNEXT does not point at the mate (e.g. a sliced BAM keeping source coordinates):
        # look for it by name near the read, within a bounded window
        tid = read.reference_id
        b0 = max(read.reference_start - _MATE_WINDOW, 0) // _MATE_WINDOW
        b1 = (read.reference_end + _MATE_WINDOW) // _MATE_WINDOW
        for b in range(b0, b1 + 1):
            found = self._bucket(tid, b).get((read.query_name, want))
            if found is not None:
                return found
        return None

    def _bucket(self, tid: int, b: int) -> dict[tuple[str, int], pysam.AlignedSegment]:
        """Primary records starting in bucket ``b`` of ``tid``, by (name, read1/2 bit)."""
        key = (tid, b)
        if key not in self._buckets:
            found = {}
            name = self.af.get_reference_name(tid)
            beg, end = b * _MATE_WINDOW, (b + 1) * _MATE_WINDOW
            for m in self.af.fetch(name, beg, end):
                if beg <= m.reference_start < end and not m.flag & 0x900:
                    found[(m.query_name, m.flag & 0xC0)] = m
            self._buckets[key] = found
        return self._buckets[key]

    def _fix_mates(self, new: dict[Ident, pysam.AlignedSegment]) -> None:
        done: set[str] = set()
        firsts = {}
        for orig, _ in self.edited.values():
            if not orig.flag & 0x900 and orig.is_paired:
                firsts.setdefault(orig.query_name, orig)
        mates = self._find_mates(list(firsts.values()))
        for key, (orig, _) in list(self.edited.items()):
            if orig.query_name in done or orig.flag & 0x900 or not orig.is_paired:
                continue
            done.add(orig.query_name)
            mate = mates[orig.query_name]
            mkey = _ident(mate) if mate is not None else None
            r_new = new[key]
            m_new = new.get(mkey) if mkey else None
            if mate is not None and m_new is None:
                m_new = copy.copy(mate)
            r0 = (orig.reference_start, orig.reference_end)
            r1 = (r_new.reference_start, r_new.reference_end)
            if mate is not None:
                m0 = (mate.reference_start, mate.reference_end)
                m1 = (m_new.reference_start, m_new.reference_end)
            else:  # mate not in this file (or elsewhere): its own span from MC if present
                p = orig.next_reference_start
                mlen = _ref_len(orig.get_tag("MC")) if orig.has_tag("MC") else 1
                m0 = m1 = (p, p + mlen)
            same_contig = orig.next_reference_id == orig.reference_id
            delta = 0
            if same_contig:
                delta = (max(r1[1], m1[1]) - min(r1[0], m1[0])) - (
                    max(r0[1], m0[1]) - min(r0[0], m0[0]))
            _update_pair_fields(r_new, orig, mate, m0, m1, delta, m_new)
            if mate is not None:
                changed = _update_pair_fields(m_new, mate, orig, r0, r1, delta, r_new)
                if mkey in new or changed:
                    new[mkey] = m_new


def _clusters(points: list[int], *, gap: int) -> list[tuple[int, int]]:
    """Sorted points grouped into ``(first, last)`` runs with gaps of at most ``gap``."""
    out: list[list[int]] = []
    for p in points:
        if out and p - out[-1][1] <= gap:
            out[-1][1] = p
        else:
            out.append([p, p])
    return [(a, b) for a, b in out]


def _ref_len(cigar: str) -> int:
    n, total = "", 0
    for ch in cigar:
        if ch.isdigit():
            n += ch
        else:
            if ch in "MDN=X":
                total += int(n)
            n = ""
    return total


def _update_pair_fields(rec, orig, mate_orig, m0, m1, delta, mate_new) -> bool:
    """Set PNEXT, TLEN and MC of ``rec`` from its mate's new state; True if anything changed."""
    changed = False
    if orig.next_reference_start == m0[0] and m1[0] != m0[0]:
        rec.next_reference_start = m1[0]
        changed = True
    if delta and orig.template_length:
        sign = 1 if orig.template_length > 0 else -1
        rec.template_length = orig.template_length + sign * delta
        changed = True
    if mate_orig is not None and orig.has_tag("MC") and mate_new is not None:
        mc = mate_new.cigarstring
        if mc != orig.get_tag("MC"):
            rec.set_tag("MC", mc, value_type="Z")
            changed = True
    return changed


def _serialize(records: list[pysam.AlignedSegment], header: pysam.AlignmentHeader,
               tmpdir: Path) -> list[bytes]:
    """Raw BAM bytes of each record, as htslib writes them."""
    if not records:
        return []
    path = tmpdir / "records.bam"
    with pysam.AlignmentFile(str(path), "wbu", header=header) as out:
        for r in records:
            out.write(r)
    data = read_uncompressed(path)
    raws = split_records(data[skip_header(data):])
    if len(raws) != len(records):  # pragma: no cover - htslib contract
        raise RuntimeError("record serialization count mismatch")
    return raws


def _read_range(fh_path: Path, vo_a: int, vo_b: int) -> bytes:
    from .splice import _read_block

    buf = bytearray()
    with open(fh_path, "rb") as fh:
        c = vo_a >> 16
        c_last = vo_b >> 16
        starts = {}
        while True:
            starts[c] = len(buf)
            data, size = _read_block(fh, c)
            buf += data
            if c >= c_last or size == 0:
                break
            c += size
    return bytes(buf[starts[vo_a >> 16] + (vo_a & 0xFFFF): starts[vo_b >> 16] + (vo_b & 0xFFFF)])


def _region_replacements(bam: Path, af: pysam.AlignmentFile, index: BaiLinearIndex,
                         new: dict[Ident, pysam.AlignedSegment],
                         raw_new: dict[Ident, bytes], removed: frozenset[Ident] = frozenset(),
                         inserts: list[tuple[int, int, bool, bytes]] = ()) -> list[Replacement]:
    """Replacements for changed records (``new``), deleted ones and inserted raw records.

    ``inserts`` holds ``(tid, pos, is_reverse, raw)``. Each contig's affected positions are
    merged into intervals; each interval's records are rebuilt in sorted order.
    """
    spans: dict[int, list[list[int]]] = {}
    for key, rec in new.items():
        tid, pos0 = key[0], key[1]
        spans.setdefault(tid, []).append([min(pos0, rec.reference_start),
                                          max(pos0, rec.reference_start)])
    for key in removed:
        spans.setdefault(key[0], []).append([key[1], key[1]])
    for tid, pos, _, _ in inserts:
        spans.setdefault(tid, []).append([pos, pos])
    reps: list[Replacement] = []
    for tid in sorted(spans):
        ivs = sorted(spans[tid])
        merged = [ivs[0]]
        for a, b in ivs[1:]:
            # nearby changes share BGZF blocks: one interval rather than a re-read and
            # re-compression of the same blocks per change
            if a <= merged[-1][1] + _MERGE_GAP:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
        ins = sorted((i for i in inserts if i[0] == tid), key=lambda t: t[1])
        reps.extend(_scan_regions(bam, af, index, tid, merged, new, raw_new, removed, ins))
    return reps


def _scan_regions(bam, af, index, tid, intervals, new, raw_new, removed=frozenset(),
                  inserts=()) -> list[Replacement]:
    """One replacement per interval, scanning forward and seeking only to skip ahead."""
    reps = []
    pending: tuple[int, pysam.AlignedSegment] | None = None  # record read past an interval
    last_pos = -1
    starts = [i[1] for i in inserts]
    for lo, hi in intervals:
        start = index.start_offset(tid, lo)
        if start is None:
            raise ReferenceDataError(f"index has no records for contig {tid}", where=str(bam))
        if pending is None or start > pending[0]:
            af.seek(start)
            pending = None
            last_pos = -1
        vo_a = vo_b = None
        recs: list[pysam.AlignedSegment] = []
        while True:
            if pending is not None:
                vo, r = pending
                pending = None
            else:
                vo = af.tell()
                try:
                    r = next(af)
                except StopIteration:
                    vo_b = vo
                    break
            if r.reference_id != tid or r.reference_start > hi:
                vo_b = vo
                pending = (vo, r)
                break
            if r.reference_start < last_pos:
                raise ReferenceDataError("BAM is not coordinate-sorted", where=str(bam))
            last_pos = r.reference_start
            if r.reference_start < lo:
                continue
            if vo_a is None:
                vo_a = vo
            recs.append(r)
        if vo_a is None:  # only insertions here: put them where the scan stopped
            vo_a = vo_b
        mine = inserts[bisect_left(starts, lo):bisect_right(starts, hi)]
        reps.append(_rebuild_region(bam, recs, vo_a, vo_b, new, raw_new, removed, mine))
    return reps


def _rebuild_region(bam, recs, vo_a, vo_b, new, raw_new, removed=frozenset(),
                    inserts=()) -> Replacement:
    raws = split_records(_read_range(bam, vo_a, vo_b)) if vo_b > vo_a else []
    if len(raws) != len(recs):  # pragma: no cover
        raise RuntimeError("region record count mismatch")
    stay: list[tuple[int, bytes]] = []
    moved: list[tuple[int, bool, bytes]] = [(p, rev, raw) for _, p, rev, raw in inserts]
    for r, raw in zip(recs, raws, strict=True):
        key = _ident(r)
        if key in removed:
            continue
        if key not in new:
            stay.append((r.reference_start, raw))
            continue
        nr = new[key]
        if nr.reference_start == r.reference_start:
            stay.append((r.reference_start, raw_new[key]))
        else:
            moved.append((nr.reference_start, nr.is_reverse, raw_new[key]))
    # moved records go after every unchanged record at or before their new position
    moved.sort(key=lambda t: (t[0], t[1]))
    out: list[bytes] = []
    positions = [p for p, _ in stay]
    k = 0
    for p, _, raw in moved:
        cut = bisect_right(positions, p)
        out.extend(b for _, b in stay[k:cut])
        k = max(k, cut)
        out.append(raw)
    out.extend(b for _, b in stay[k:])
    return Replacement(vo_a, vo_b, b"".join(out))


def _header_replacement(bam: Path, hdr_end_vo: int, cmdline: str) -> Replacement:
    raw = _read_range(bam, 0, hdr_end_vo)
    import struct

    (l_text,) = struct.unpack_from("<i", raw, 4)
    text = raw[8:8 + l_text].rstrip(b"\x00").decode()
    pg_ids = [f.split(":", 1)[1] for line in text.splitlines() if line.startswith("@PG")
              for f in line.split("\t")[1:] if f.startswith("ID:")]
    pid, k = "synth-spike", 1
    while pid in pg_ids:
        pid = f"synth-spike.{k}"
        k += 1
    line = f"@PG\tID:{pid}\tPN:synth"
    if pg_ids:
        line += f"\tPP:{pg_ids[-1]}"
    line += f"\tCL:{cmdline}\n"
    if text and not text.endswith("\n"):
        text += "\n"
    new_text = (text + line).encode()
    data = b"BAM\x01" + struct.pack("<i", len(new_text)) + new_text + raw[8 + l_text:]
    return Replacement(0, hdr_end_vo, data)


def _write_truth(path: Path, outcomes: list[SpikeOutcome], af: pysam.AlignmentFile,
                 source: str, svs: list[SVOutcome] = ()) -> None:
    hdr = pysam.VariantHeader()
    hdr.add_meta("source", source)
    for name, length in zip(af.references, af.lengths, strict=True):
        hdr.contigs.add(name, length=length)
    hdr.info.add("REQ_VAF", 1, "Float", "Requested variant allele fraction")
    hdr.info.add("VAF", 1, "Float", "Realized VAF: edited reads / covering reads (SV: ALT "
                 "junction fragments / all fragments spanning a breakpoint)")
    hdr.info.add("DP", 1, "Integer", "Covering reads (primary, non-dup, spanning the event)")
    hdr.info.add("ALT_READS", 1, "Integer", "Reads edited to carry ALT")
    hdr.info.add("TARGET_READS", 1, "Integer", "floor(REQ_VAF * DP + 0.5)")
    hdr.info.add("HAP", 1, "Integer", "Haplotype preferred for ALT reads (1 or 2)")
    hdr.info.add("END", 1, "Integer", "End of the SV (last affected base)")
    hdr.info.add("SVTYPE", 1, "String", "Structural variant type")
    hdr.info.add("SVLEN", 1, "Integer", "SV length (negative for deletions)")
    hdr.info.add("CN", 1, "Integer", "Copy number of a CNV")
    hdr.info.add("DP_BEFORE", 1, "Float", "Mean depth over the event before spiking")
    hdr.info.add("DP_AFTER", 1, "Float", "Mean depth over the event after spiking")
    hdr.info.add("EXP_RATIO", 1, "Float", "Expected depth ratio over the event")
    hdr.info.add("SPLIT_READS", 1, "Integer", "Simulated reads with an SA tag")
    hdr.info.add("DISCORDANT", 1, "Integer", "Simulated pairs not flagged proper")
    hdr.info.add("WINDOW", 2, "Integer", "Replaced window (1-based start, end)")
    hdr.formats.add("GT", 1, "String", "Genotype")
    hdr.formats.add("AD", "R", "Integer", "Reads with REF, ALT (after spiking)")
    hdr.formats.add("AF", "A", "Float", "Realized VAF")
    for sv in ("DEL", "DUP", "INV", "CNV"):
        hdr.add_line(f"##ALT=<ID={sv},Description=\"{sv}\">")
    hdr.add_sample("SPIKE")
    mode = "wz" if str(path).endswith(".gz") else "w"
    tmp = path.with_name(path.name + ".tmp")
    order = list(af.references)
    rows = [(order.index(o.chrom), o.pos, 0, o) for o in outcomes]
    rows += [(order.index(o.chrom), o.pos, 1, o) for o in svs]
    with pysam.VariantFile(str(tmp), mode, header=hdr) as vf:
        for _, _, kind, o in sorted(rows, key=lambda t: t[:3]):
            if kind == 0:
                rec = vf.new_record(contig=o.chrom, start=o.pos - 1, alleles=(o.ref, o.alt),
                                    filter="PASS")
                rec.info.update(REQ_VAF=o.requested_vaf, VAF=o.realized_vaf, DP=o.depth,
                                ALT_READS=o.alt_reads, TARGET_READS=o.target_reads,
                                HAP=o.haplotype)
                s = rec.samples["SPIKE"]
                s["GT"] = (1, 1) if o.alt_reads == o.depth else (0, 1)
                s["AD"] = (o.depth - o.alt_reads, o.alt_reads)
                s["AF"] = o.realized_vaf
            else:
                alt = o.alt if o.svtype == "INS" else f"<{o.svtype}>"
                stop = o.end if o.svtype != "INS" else o.pos
                rec = vf.new_record(contig=o.chrom, start=o.pos - 1, stop=stop,
                                    alleles=(o.ref, alt), filter="PASS")
                svlen = len(alt) - 1 if o.svtype == "INS" else o.end - o.pos
                rec.info.update(SVTYPE=o.svtype, SVLEN=-svlen if o.svtype == "DEL" else svlen,
                                REQ_VAF=o.requested_vaf, VAF=o.realized_vaf,
                                DP_BEFORE=o.depth_before, DP_AFTER=o.depth_after,
                                EXP_RATIO=o.expected_ratio, SPLIT_READS=o.split_reads,
                                DISCORDANT=o.discordant_pairs,
                                WINDOW=(o.window[0] + 1, o.window[1]))
                if o.cn is not None:
                    rec.info["CN"] = o.cn
                s = rec.samples["SPIKE"]
                s["GT"] = (1, 1) if o.requested_vaf >= 1.0 else (0, 1)
                s["AF"] = o.realized_vaf
            vf.write(rec)
    if mode == "wz":
        pysam.tabix_index(str(tmp), preset="vcf", force=True)
        os.replace(f"{tmp}.tbi", f"{path}.tbi")
    os.replace(tmp, path)


def _check_separation(small: list[SpikeRequest], plans: list[SVPlan]) -> None:
    """SV windows must not overlap each other or a small variant: refuse, naming both."""
    wins = sorted((p.request.chrom, *p.outcome.window, p.request.label) for p in plans)
    for a, b in zip(wins, wins[1:], strict=False):
        if a[0] == b[0] and b[1] < a[2]:
            raise VariantError(f"its replaced window overlaps the one of {a[3]} "
                               f"({a[0]}:{a[1] + 1}-{a[2]}); spike them in separate runs",
                               where=b[3])
    for r in small:
        for c, w0, w1, label in wins:
            if r.chrom == c and r.span[0] < w1 and r.span[1] > w0:
                raise VariantError(f"lies in the replaced window of SV {label} "
                                   f"({c}:{w0 + 1}-{w1})", where=r.label)


def spike_bam(*, bam: str | os.PathLike, reference: str | os.PathLike,
              variants: str | os.PathLike, out: str | os.PathLike, seed: int = 0,
              truth_out: str | os.PathLike | None = None, min_mapq: int = 0) -> SpikeResult:
    """Spike SNVs, MNVs, indels and SVs into the reads of a sorted BAM or CRAM.

    Small variants edit the covering reads (see the module docstring). SVs (symbolic ALTs
    ``<DEL>``, ``<DUP>``, ``<INV>``, ``<INS>``, ``<CNV>`` or ``INFO/SVTYPE``) replace the pairs
    of a window around the event with pairs simulated from the altered haplotypes at the
    observed depth and with the sample's fragment sizes and qualities
    (:mod:`synthlib.spike.replace`). For BAM output only the records that change (edited,
    removed, added, and mates whose PNEXT/TLEN/MC follow) and the BGZF blocks holding them
    are rewritten; every other block is copied byte for byte.

    Parameters
    ----------
    bam
        Coordinate-sorted BAM (``.bai`` used when present, else built) or CRAM; a local path
        or an ``https://``, ``http://``, ``gs://`` or ``file://`` URL (downloaded first).
    reference
        FASTA (plain or bgzipped, with ``.fai``) the reads are aligned to; local or URL.
    variants
        VCF, one ALT per record. VAF from INFO/VAF, FORMAT/VAF or GT; CNVs take INFO/CN
        (or FORMAT/CN) and INFO/VAF as the fraction of cells (default 1).
    out
        Output ``.bam`` (index ``out + '.bai'``) or ``.cram`` (a full re-encode of the spliced
        BAM; index ``out + '.crai'``). Both appear atomically.
    seed
        Seeds each variant's draws with ``SeedSequence(seed, spawn_key=(vcf_index, ...))``.
    truth_out
        Optional truth VCF (``.vcf`` or ``.vcf.gz`` + ``.tbi``): requested and realized VAF,
        depth and edited reads per variant; for SVs depth before/after, expected ratio, split
        reads and discordant pairs.
    min_mapq
        Reads below this MAPQ neither count in depth nor get edited (small variants).

    Returns
    -------
    SpikeResult

    Raises
    ------
    VariantError
        A variant with no coverage, a VAF that rounds to 0 reads at the site's depth
        (``floor(vaf * depth + 0.5) < 1``; SVs: under half an ALT fragment expected), REF not
        matching the reference, overlapping spikes or SV windows, or no read able to carry it.
    ReferenceDataError
        Missing/unreadable inputs, or a BAM aligned to another reference (contig names,
        lengths or M5 differ from the FASTA; the message names the contig).
    """
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    out_p = Path(out)
    if not _is_url(bam) and not Path(bam).is_file():
        raise ReferenceDataError("input BAM not found", where=str(bam))
    if not _is_url(bam) and out_p.resolve() == Path(bam).resolve():
        raise ReferenceDataError("output must differ from the input BAM", where=str(out_p))
    out_fmt = alignment_format(out_p)
    out_p.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_p.parent, prefix=".spike-") as td:
        tmpdir = Path(td)
        ref_p = localize(reference, scratch=tmpdir, indexes=(".fai", ".gzi"))
        try:
            fasta = pysam.FastaFile(str(ref_p))
        except (OSError, ValueError) as exc:
            raise ReferenceDataError(f"cannot open reference FASTA: {exc}",
                                     where=str(reference)) from exc
        bam_p = open_input(bam, reference=ref_p, scratch=tmpdir)
        timings["fetch"] = time.perf_counter() - t0
        bai = _find_index(bam_p)
        if bai is None:
            bai = tmpdir / "input.bai"
            pysam.samtools.index(str(bam_p), str(bai))
        try:
            af = pysam.AlignmentFile(str(bam_p), "rb", index_filename=str(bai))
        except (OSError, ValueError) as exc:
            raise ReferenceDataError(f"cannot open BAM: {exc}", where=str(bam)) from exc
        with af, fasta:
            hdr_end_vo = af.tell()
            so = af.header.to_dict().get("HD", {}).get("SO")
            if so not in (None, "coordinate"):
                raise ReferenceDataError(f"BAM must be coordinate-sorted (SO:{so})",
                                         where=str(bam))
            # names and lengths first: a BAM on another reference is the clearer message
            _check_reference(af, fasta, Path(str(bam)), str(reference), set())
            reqs, sv_reqs = read_spike_vcf(str(variants), fasta)
            _check_reference(af, fasta, Path(str(bam)), str(reference),
                             {r.chrom for r in [*reqs, *sv_reqs]})
            timings["parse"] = time.perf_counter() - t0 - timings["fetch"]

            t = time.perf_counter()
            plans = [plan_sv(af=af, fasta=fasta, req=r, seed=seed)
                     for r in sorted(sv_reqs, key=lambda r: (af.get_tid(r.chrom), r.pos))]
            _check_separation(reqs, plans)
            removed: dict[Ident, pysam.AlignedSegment] = {}
            added: list[pysam.AlignedSegment] = []
            for pl in plans:
                removed.update(pl.removed)
                added.extend(pl.added)
            timings["sv"] = time.perf_counter() - t

            t = time.perf_counter()
            spiker = _Spiker(af, fasta, seed, min_mapq)
            order = sorted(reqs, key=lambda r: (af.get_tid(r.chrom), r.pos))
            outcomes = {r.index: spiker.spike(r) for r in order}
            new = spiker.build_records()
            clash = [k for k in new if k in removed]
            if clash:
                raise VariantError("a small variant's reads or their mates lie in an SV's "
                                   f"replaced window (read {clash[0][2]}); move them apart",
                                   where=str(variants))
            timings["edit"] = time.perf_counter() - t

            t = time.perf_counter()
            keys = list(new)
            raws = _serialize([new[k] for k in keys] + added, af.header, tmpdir)
            raw_new = dict(zip(keys, raws[:len(keys)], strict=True))
            inserts = [(r.reference_id, r.reference_start, r.is_reverse, raw)
                       for r, raw in zip(added, raws[len(keys):], strict=True)]
            index = BaiLinearIndex(bai)
            reps = _region_replacements(bam_p, af, index, new, raw_new,
                                        frozenset(removed), inserts)
            cmd = f"synth spike --variants {Path(str(variants)).name} --seed {seed}"
            reps.append(_header_replacement(bam_p, hdr_end_vo, cmd))
            tmp_bam = tmpdir / "out.bam"
            recompressed = splice_bam(bam_p, tmp_bam, reps)
            timings["splice"] = time.perf_counter() - t

            t = time.perf_counter()
            if out_fmt == "cram":
                tmp_out = tmpdir / "out.cram"
                to_cram(tmp_bam, reference=ref_p, out=tmp_out)
                tmp_idx, idx_path = Path(f"{tmp_out}.crai"), Path(f"{out_p}.crai")
            else:
                tmp_out = tmp_bam
                tmp_idx, idx_path = tmpdir / "out.bam.bai", Path(f"{out_p}.bai")
                pysam.samtools.index(str(tmp_bam), str(tmp_idx))
            timings["index"] = time.perf_counter() - t

            results = [outcomes[r.index] for r in reqs]
            sv_results = [pl.outcome for pl in sorted(plans, key=lambda p: p.request.index)]
            truth_p = Path(truth_out) if truth_out else None
            if truth_p is not None:
                t = time.perf_counter()
                _write_truth(truth_p, results, af, f"synth spike {Path(str(bam)).name}",
                             sv_results)
                timings["truth"] = time.perf_counter() - t
            os.replace(tmp_out, out_p)
            os.replace(tmp_idx, idx_path)
        input_bytes = bam_p.stat().st_size
    timings["total"] = time.perf_counter() - t0
    return SpikeResult(
        out=str(out_p), index=str(idx_path), truth=str(truth_p) if truth_p else None,
        variants=results, records_changed=len(new), bytes_recompressed=recompressed,
        input_bytes=input_bytes, timings=timings, svs=sv_results,
        records_removed=len(removed), records_added=len(added))


def _is_url(path) -> bool:
    from .inputs import is_remote

    return is_remote(path)

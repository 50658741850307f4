"""Build error/quality models: learned from real reads (BAM/CRAM/SAM or FASTQ), or parametric.

Learning from alignments (``learn_model``):

* qualities: every primary read with qualities (mapped or not, no hard clips) contributes its
  quality string in sequencing order (reverse-strand reads are reversed back). Quality values are
  binned (the distinct values when there are at most ``max_bins`` of them, as in binned
  HiSeq X / NovaSeq data, otherwise Illumina's 8-level scheme); transitions are counted per
  cycle (``cycle_window`` > 0 pools cycles either side, which blurs the sharp per-cycle steps
  real runs have, so it is off by default); bases called N give each bin's no-call rate;
* substitutions: aligned bases of reads with MAPQ >= ``min_mapq`` are compared with the
  reference (from the MD tag, or from ``reference`` when given), per quality bin and true base, in
  sequencing-strand orientation. Reference positions where >= 20% of the covering reads disagree
  with the reference are taken to be real variants and left out (a two-pass pileup-free check);
  the counts get a weak Phred-definition prior so sparse bins stay sensible;
* indels: CIGAR I/D events per aligned base, with the same variant mask, and their lengths.

From FASTQ (no alignment) only qualities are learned; substitutions follow the Phred definition
and indel rates are the typical Illumina figures below (``source`` in the model says so).

``rebuild_presets`` rewrites every shipped preset in ``synthlib/data/models``.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pysam

from ..errors import ModelError
from ..resources import DATA_DIR
from .errormodel import BASES, MODELS_DIR, ErrorModel, ReadProfile
from .fragments import INSERT_SIZE_DIR, InsertSizeModel

__all__ = [
    "ILLUMINA_BIN_LOWER_BOUNDS",
    "TYPICAL_INSERTION_RATE",
    "TYPICAL_DELETION_RATE",
    "QualityCurve",
    "learn_model",
    "build_parametric_model",
    "build_novaseq_binned_2x150",
    "build_perfect_model",
    "build_learned_2x150",
    "rebuild_presets",
    "main_learn",
    "INSERT_TRIM_QUANTILES",
    "learn_insert_sizes",
    "build_insert_size_preset",
    "main_insert_sizes",
]

ILLUMINA_BIN_LOWER_BOUNDS = (0, 3, 10, 20, 25, 30, 35, 40)
"""Lower bounds of Illumina's 8-level quality binning (HiSeq X/4000 emit 2/6/15/22/27/33/37/40)."""

# Illumina indel errors are rare, of order 1e-5 per base (Schirmer et al. 2016, BMC
# Bioinformatics 17:125, MiSeq/HiSeq); used where no alignment is available to learn them from.
TYPICAL_INSERTION_RATE = 1e-5
TYPICAL_DELETION_RATE = 2e-5

_VARIANT_FRACTION = 0.2
_PRIOR_STRENGTH = 20.0  # pseudo-bases per (bin, true base) drawn from the Phred definition
_MAX_INDEL_LEN = 10
_ALIGNMENT_SUFFIXES = (".bam", ".cram", ".sam")

_CODE = np.full(256, 4, dtype=np.uint8)
for _i, _b in enumerate(BASES):
    _CODE[ord(_b)] = _i
    _CODE[ord(_b.lower())] = _i
_COMPLEMENT = np.array([3, 2, 1, 0, 4], dtype=np.uint8)

_MINIGIAB_BAM = DATA_DIR / "references" / "grch37-chr22-minigiab" / "NA12878.chr22.tiny.bam"


# --------------------------------------------------------------------------- helpers
def _phred_error(q: np.ndarray) -> np.ndarray:
    return np.minimum(10.0 ** (-np.asarray(q, np.float64) / 10.0), 0.75)


def _phred_substitution(quality_values: np.ndarray) -> np.ndarray:
    """float64 (K, 4, 4): the Phred definition, wrong bases equally likely."""
    p = _phred_error(quality_values)[:, None, None]
    eye = np.eye(4)[None]
    return eye * (1.0 - p) + (1.0 - eye) * (p / 3.0)


def _length_distribution(lengths: Sequence[int]) -> np.ndarray:
    if not lengths:
        return np.array([1.0])
    counts = np.bincount(np.minimum(np.asarray(lengths), _MAX_INDEL_LEN))[1:].astype(float)
    return counts / counts.sum()


def _transition_model(
    bins: np.ndarray, k: int, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """Initial distribution (K,) and transitions (L-1, K, K) from bin strings.

    ``bins`` is uint8 (n, L) with ``k`` (or more) marking a missing cycle (short reads).
    """
    n, length = bins.shape
    first = bins[:, 0]
    init = np.bincount(first[first < k], minlength=k).astype(float)
    if init.sum() == 0:
        raise ModelError("no quality values at cycle 0")
    init /= init.sum()
    if length == 1:
        return init, np.zeros((0, k, k))
    a, b = bins[:, :-1].astype(np.int64), bins[:, 1:].astype(np.int64)
    ok = (a < k) & (b < k)
    cyc = np.broadcast_to(np.arange(length - 1), a.shape)
    key = (cyc * k + a) * k + b
    counts = np.bincount(key[ok], minlength=(length - 1) * k * k).reshape(length - 1, k, k)
    counts = counts.astype(float)
    if window > 0:
        csum = np.concatenate([np.zeros((1, k, k)), np.cumsum(counts, axis=0)])
        lo = np.maximum(np.arange(length - 1) - window, 0)
        hi = np.minimum(np.arange(length - 1) + window + 1, length - 1)
        counts = csum[hi] - csum[lo]
    # Unseen rows fall back to the next cycle's marginal (one pseudo-observation).
    nxt = counts.sum(axis=1)
    nxt_tot = nxt.sum(axis=1, keepdims=True)
    marginal = np.divide(nxt, nxt_tot, out=np.full_like(nxt, 1.0 / k), where=nxt_tot > 0)
    trans = counts + marginal[:, None, :]
    trans /= trans.sum(axis=2, keepdims=True)
    return init, trans


@dataclass
class _ReadStats:
    """Accumulated observations of one read number."""

    quals: list[np.ndarray]
    hist: np.ndarray  # int64 (94,) bases per phred value
    n_hist: np.ndarray  # int64 (94,) bases called N per phred value
    sub_keys: list[np.ndarray]  # bin*16 + true*4 + called, at non-candidate positions
    cand_keys: list[np.ndarray]  # candidate_index * K*16 + bin*16 + true*4 + called
    aligned_bases: int = 0
    insertions: list[tuple[int, int]] | None = None  # (candidate index or -1, length)
    deletions: list[tuple[int, int]] | None = None

    @classmethod
    def empty(cls) -> _ReadStats:
        return cls(quals=[], hist=np.zeros(94, np.int64), n_hist=np.zeros(94, np.int64),
                   sub_keys=[], cand_keys=[], insertions=[], deletions=[])

    def add(self, quals: np.ndarray, seq: str, *, reverse: bool) -> None:
        """Record one read: phred values and bases as in the file, ``reverse`` if aligned to
        the reverse strand (the sequencing order is then the reverse of the file order)."""
        if quals.size and int(quals.max()) > 93:
            raise ModelError(f"quality value {int(quals.max())} is above 93")
        self.quals.append(quals[::-1] if reverse else quals)
        self.hist += np.bincount(quals, minlength=94)
        is_n = _CODE[np.frombuffer(seq.encode(), dtype=np.uint8)] == 4
        if is_n.size == quals.size and is_n.any():
            self.n_hist += np.bincount(quals[is_n], minlength=94)

    def no_call(self, lookup: np.ndarray, k: int) -> np.ndarray:
        """float64 (K,): fraction of each bin's bases called N."""
        total, n = np.zeros(k), np.zeros(k)
        np.add.at(total, lookup[:94], self.hist)
        np.add.at(n, lookup[:94], self.n_hist)
        return np.divide(n, total, out=np.zeros(k), where=total > 0)


def _iter_primary(path: str, reference: str | None, max_reads: int) -> Iterator[Any]:
    try:
        bam = pysam.AlignmentFile(path, reference_filename=reference, check_sq=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot open alignments: {exc}", where=path) from None
    with bam:
        used = 0
        for read in bam.fetch(until_eof=True):
            if read.is_secondary or read.is_supplementary or read.is_qcfail:
                continue
            if read.query_sequence is None or read.query_qualities is None:
                continue
            if read.cigartuples and any(op == 5 for op, _ in read.cigartuples):
                continue  # hard clips lose cycles: the cycle of each base is unknown
            yield read
            used += 1
            if used >= max_reads:
                return


def _aligned(read: Any, fasta: pysam.FastaFile | None) -> dict[str, Any] | None:
    """Aligned-base arrays and indel events of one read, or None if it can't be compared."""
    if read.is_unmapped or not read.cigartuples:
        return None
    if fasta is None and not read.has_tag("MD"):
        return None
    qparts, rparts, ins, dels = [], [], [], []
    qp, rp = 0, read.reference_start
    for op, ln in read.cigartuples:
        if op in (0, 7, 8):
            qparts.append(np.arange(qp, qp + ln))
            rparts.append(np.arange(rp, rp + ln))
            qp += ln
            rp += ln
        elif op == 1:
            ins.append((rp, ln))
            qp += ln
        elif op == 2:
            dels.append((rp, ln))
            rp += ln
        elif op == 3:
            rp += ln
        elif op == 4:
            qp += ln
    if not qparts:
        return None
    qpos, rpos = np.concatenate(qparts), np.concatenate(rparts)
    start, end = read.reference_start, read.reference_end
    if fasta is not None:
        ref = fasta.fetch(read.reference_name, start, end)
    else:
        try:
            ref = read.get_reference_sequence()
        except (ValueError, AssertionError):
            return None
    ref_arr = np.frombuffer(ref.encode(), dtype=np.uint8)
    if ref_arr.size != end - start:
        return None
    seq = np.frombuffer(read.query_sequence.encode(), dtype=np.uint8)
    true = _CODE[ref_arr[rpos - start]]
    called = _CODE[seq[qpos]]
    return {"qpos": qpos, "rpos": rpos, "true": true, "called": called, "ins": ins,
            "dels": dels, "start": start, "end": end}


def _quality_binning(hist: np.ndarray, max_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(quality_values (K,), lookup (256,) phred -> bin) from a histogram of phred values."""
    present = np.flatnonzero(hist)
    if present.size == 0:
        raise ModelError("the reads have no quality values")
    if present.size <= max_bins:
        # Values never seen map to the nearest bin below (or the lowest bin).
        idx = np.searchsorted(present, np.arange(256), side="right") - 1
        lookup = np.maximum(idx, 0).astype(np.uint8)
        return present.astype(np.int64), lookup
    bounds = np.array(ILLUMINA_BIN_LOWER_BOUNDS)
    raw_bin = np.searchsorted(bounds, np.arange(256), side="right") - 1
    values, lookup = [], np.zeros(256, dtype=np.uint8)
    for b in range(bounds.size):
        members = np.flatnonzero((raw_bin == b) & (hist > 0))
        if members.size == 0:
            continue
        # The Phred value that keeps the bin's expected error: -10 log10(mean 10^(-q/10)).
        w = hist[members].astype(float)
        mean_err = float((w * 10.0 ** (-members / 10.0)).sum() / w.sum())
        values.append(int(round(-10.0 * np.log10(mean_err))))
        lookup[raw_bin == b] = len(values) - 1
    # Bins below the first seen one map to it.
    first_seen = next(b for b in range(bounds.size) if np.any((raw_bin == b) & (hist > 0)))
    lookup[raw_bin < first_seen] = 0
    values_arr = np.array(values, dtype=np.int64)
    if np.any(np.diff(values_arr) <= 0):
        values_arr = np.maximum.accumulate(values_arr + np.arange(values_arr.size)) - np.arange(
            values_arr.size)
    return values_arr, lookup


def _substitution_from_counts(counts: np.ndarray, quality_values: np.ndarray) -> np.ndarray:
    prior = _phred_substitution(quality_values) * _PRIOR_STRENGTH
    sub = counts + prior
    return sub / sub.sum(axis=2, keepdims=True)


# ---------------------------------------------------------------------------- learning
def learn_model(
    *,
    path: str | Path,
    reference: str | Path | None = None,
    max_reads: int = 200_000,
    path2: str | Path | None = None,
    name: str | None = None,
    min_mapq: int = 20,
    cycle_window: int = 0,
    max_bins: int = 8,
) -> ErrorModel:
    """Learn an error/quality model from real reads.

    Parameters
    ----------
    path
        BAM/CRAM/SAM (paired or not; read 2 = reads flagged READ2) or FASTQ (optionally gzipped;
        read 1 unless ``path2`` gives read 2).
    reference
        FASTA of the reference the reads are aligned to; without it the MD tags are used. Needed
        for CRAM.
    max_reads
        Stop after this many usable reads (R1 and R2 together; per file for FASTQ).
    path2
        FASTQ of read 2 (FASTQ input only). Without read 2 data, read 2 copies read 1.
    name
        Model name (default: the input file's stem).
    min_mapq
        Minimum mapping quality of reads used for substitution and indel statistics.
    cycle_window
        Cycles pooled either side when counting quality transitions (0 = none).
    max_bins
        Keep quality values as they are when there are at most this many distinct ones.

    Raises
    ------
    ModelError
        The input can't be read or holds no usable reads.
    """
    path = str(path)
    if max_reads < 1:
        raise ValueError("max_reads must be >= 1")
    if not Path(path).is_file():
        raise ModelError("no such file", where=path)
    if reference is not None and not Path(reference).is_file():
        raise ModelError("no such reference FASTA", where=str(reference))
    is_alignment = path.lower().endswith(_ALIGNMENT_SUFFIXES)
    if path2 is not None and is_alignment:
        raise ValueError("path2 is for FASTQ input only")
    if is_alignment:
        stats, hist, aligned = _collect_alignments(path, reference, max_reads, min_mapq)
    else:
        stats, hist = _collect_fastq(path, path2, max_reads)
        aligned = None
    if not stats[1].quals:
        raise ModelError("no usable reads (primary, with qualities, no hard clips)", where=path)
    quality_values, lookup = _quality_binning(hist, max_bins)
    k = quality_values.size
    lengths = collections.Counter(q.size for st in stats.values() for q in st.quals)
    read_length = lengths.most_common(1)[0][0]

    profiles: dict[int, ReadProfile] = {}
    source: dict[str, Any] = {
        "method": "learned",
        "input": Path(path).name,
        "reference": Path(reference).name if reference else None,
        "substitutions": "alignment" if aligned is not None else "phred-definition",
        "max_reads": max_reads,
        "min_mapq": min_mapq,
        "cycle_window": cycle_window,
        "reads_used": {},
    }
    for r in (1, 2):
        st = stats[r]
        if not st.quals:
            continue
        mat = np.full((len(st.quals), read_length), 255, dtype=np.uint8)
        for i, q in enumerate(st.quals):
            m = min(q.size, read_length)
            mat[i, :m] = lookup[q[:m]]
        init, trans = _transition_model(mat, k, cycle_window)
        if aligned is not None:
            sub_counts, ins_rate, del_rate, ins_len, del_len, n_bases = aligned(st, k, lookup)
            substitution = _substitution_from_counts(sub_counts, quality_values)
            source["reads_used"][str(r)] = {"reads": len(st.quals), "aligned_bases": n_bases,
                                            "mismatches": int(sub_counts.sum() - np.einsum(
                                                "ktt->", sub_counts))}
        else:
            substitution = _phred_substitution(quality_values)
            ins_rate, del_rate = TYPICAL_INSERTION_RATE, TYPICAL_DELETION_RATE
            ins_len, del_len = np.array([1.0]), np.array([1.0])
            source["reads_used"][str(r)] = {"reads": len(st.quals)}
        no_call = st.no_call(lookup, k)
        source["reads_used"][str(r)]["no_calls"] = int(st.n_hist.sum())
        profiles[r] = ReadProfile(
            initial=init, transitions=trans, substitution=substitution,
            insertion_rate=ins_rate, deletion_rate=del_rate,
            insertion_lengths=ins_len, deletion_lengths=del_len, no_call=no_call,
        )
    if 2 not in profiles:
        profiles[2] = profiles[1]
        source["read2"] = "copy of read 1 (no read 2 data)"
    description = (
        f"Learned from {sum(len(s.quals) for s in stats.values())} reads of {Path(path).name} "
        f"({read_length} cycles, {k} quality bins)."
    )
    return ErrorModel(name=name or Path(path).name.split(".")[0], quality_values=quality_values,
                      reads=profiles, description=description, source=source)


def _collect_fastq(
    path: str, path2: str | Path | None, max_reads: int
) -> tuple[dict[int, _ReadStats], np.ndarray]:
    stats = {1: _ReadStats.empty(), 2: _ReadStats.empty()}
    hist = np.zeros(256, dtype=np.int64)
    for r, p in ((1, path), (2, path2)):
        if p is None:
            continue
        try:
            with pysam.FastxFile(str(p)) as fh:
                for i, entry in enumerate(fh):
                    if i >= max_reads:
                        break
                    if entry.quality is None:
                        raise ModelError("FASTA has no qualities; give FASTQ or BAM", where=str(p))
                    q = np.frombuffer(entry.quality.encode(), dtype=np.uint8) - 33
                    stats[r].add(q, entry.sequence, reverse=False)
                    hist += np.bincount(q, minlength=256)
        except OSError as exc:
            raise ModelError(f"cannot read FASTQ: {exc}", where=str(p)) from None
    return stats, hist


def _collect_alignments(
    path: str, reference: str | Path | None, max_reads: int, min_mapq: int
) -> tuple[dict[int, _ReadStats], np.ndarray, Any]:
    """Two passes: (1) qualities and per-position event counts, (2) the masked counts."""
    ref = str(reference) if reference is not None else None
    fasta = pysam.FastaFile(ref) if ref is not None else None
    stats = {1: _ReadStats.empty(), 2: _ReadStats.empty()}
    hist = np.zeros(256, dtype=np.int64)
    events: collections.Counter[tuple[int, int]] = collections.Counter()
    any_aligned = False
    for read in _iter_primary(path, ref, max_reads):
        r = 2 if read.is_read2 else 1
        q = np.asarray(read.query_qualities, dtype=np.uint8)
        stats[r].add(q, read.query_sequence, reverse=read.is_reverse)
        hist += np.bincount(q, minlength=256)
        if read.mapping_quality < min_mapq:
            continue
        al = _aligned(read, fasta)
        if al is None:
            continue
        any_aligned = True
        tid = read.reference_id
        mism = al["rpos"][(al["true"] != al["called"]) & (al["true"] < 4) & (al["called"] < 4)]
        events.update((tid, int(p)) for p in mism)
        events.update((tid, p) for p, _ in al["ins"])
        events.update((tid, p) for p, _ in al["dels"])
    if not any_aligned:
        return stats, hist, None

    # Candidate variant sites: >= 2 events. Their bases are counted apart until coverage is known.
    cand_keys = sorted(key for key, n in events.items() if n >= 2)
    cand_index = {key: i for i, key in enumerate(cand_keys)}
    # Per contig: the sorted candidate positions and the global index of the first one.
    cand_by_tid: dict[int, tuple[np.ndarray, int]] = {}
    for i, (tid, _) in enumerate(cand_keys):
        if tid not in cand_by_tid:
            pos = np.array([p for t, p in cand_keys if t == tid], dtype=np.int64)
            cand_by_tid[tid] = (pos, i)
    coverage = np.zeros(len(cand_keys), dtype=np.int64)

    for read in _iter_primary(path, ref, max_reads):
        if read.mapping_quality < min_mapq:
            continue
        al = _aligned(read, fasta)
        if al is None:
            continue
        r = 2 if read.is_read2 else 1
        st = stats[r]
        q = np.asarray(read.query_qualities, dtype=np.uint8)
        true, called = al["true"], al["called"]
        if read.is_reverse:  # the sequencer read the other strand
            true, called = _COMPLEMENT[true], _COMPLEMENT[called]
        ok = (true < 4) & (called < 4)
        st.aligned_bases += int(ok.sum())
        # Raw phred is kept (not the bin): binning is decided after all reads are seen.
        key = q[al["qpos"]].astype(np.int64) * 16 + true.astype(np.int64) * 4 + called
        cand = cand_by_tid.get(read.reference_id)
        if cand is not None:
            pos_arr, first = cand
            lo, hi = np.searchsorted(pos_arr, [al["start"], al["end"]])
            coverage[first + lo:first + hi] += 1
            j = np.searchsorted(pos_arr, al["rpos"])
            hit = (j < pos_arr.size) & (pos_arr[np.minimum(j, pos_arr.size - 1)] == al["rpos"])
            st.cand_keys.append((first + j[hit & ok]) * 94 * 16 + key[hit & ok])
            st.sub_keys.append(key[~hit & ok])
        else:
            st.sub_keys.append(key[ok])
        tid = read.reference_id
        st.insertions.extend((cand_index.get((tid, p), -1), ln) for p, ln in al["ins"])
        st.deletions.extend((cand_index.get((tid, p), -1), ln) for p, ln in al["dels"])

    n_events = np.array([events[key] for key in cand_keys], dtype=np.int64)
    variant = (n_events >= np.maximum(coverage, 1) * _VARIANT_FRACTION) & (n_events >= 2)
    keep_cand = np.flatnonzero(~variant)

    def finish(st: _ReadStats, k: int, lookup: np.ndarray):
        """Counts (K,4,4), indel rates and lengths of one read number, variants masked."""
        raw = np.bincount(np.concatenate(st.sub_keys) if st.sub_keys else np.zeros(0, int),
                          minlength=94 * 16)
        if st.cand_keys:
            ck = np.concatenate(st.cand_keys)
            site = ck // (94 * 16)
            raw = raw + np.bincount(ck[np.isin(site, keep_cand)] % (94 * 16), minlength=94 * 16)
        by_phred = raw[: 94 * 16].reshape(94, 4, 4).astype(float)
        counts = np.zeros((k, 4, 4))
        np.add.at(counts, lookup[:94], by_phred)
        ins = [ln for c, ln in st.insertions if c < 0 or not variant[c]]
        dels = [ln for c, ln in st.deletions if c < 0 or not variant[c]]
        n_bases = max(st.aligned_bases, 1)
        return (counts, len(ins) / n_bases, len(dels) / n_bases, _length_distribution(ins),
                _length_distribution(dels), st.aligned_bases)

    return stats, hist, finish


# -------------------------------------------------------------------------- parametric
@dataclass(frozen=True)
class QualityCurve:
    """How the quality-bin mix of one read moves along the read.

    Attributes
    ----------
    start, end
        Fraction of bases in each bin (same order as the model's quality values) at the first and
        the last cycle; normalised.
    power
        The mix at cycle c is ``start + (end - start) * t**power``, ``t = c / (L - 1)``
        (2 = quality holds up early and drops toward the 3' end, as on Illumina instruments).
    """

    start: tuple[float, ...]
    end: tuple[float, ...]
    power: float = 2.0

    def mix(self, read_length: int) -> np.ndarray:
        """float64 (L, K): the bin distribution at each cycle."""
        s, e = np.asarray(self.start, float), np.asarray(self.end, float)
        if s.shape != e.shape or np.any(s < 0) or np.any(e < 0) or s.sum() <= 0 or e.sum() <= 0:
            raise ValueError("start and end must be non-negative fractions of the same length")
        t = np.linspace(0.0, 1.0, read_length)[:, None] ** self.power
        mix = s / s.sum() + (e / e.sum() - s / s.sum()) * t
        return mix / mix.sum(axis=1, keepdims=True)


def _sticky_transitions(mix: np.ndarray, stickiness: float) -> np.ndarray:
    """(L-1, K, K) transitions that stay in the same bin with extra probability ``stickiness``
    and reproduce the per-cycle mix exactly: T = s I + (1 - s) 1 rho^T with rho chosen so that
    mix[c] @ T = mix[c+1] (s is lowered where a bin empties faster than s allows)."""
    length, k = mix.shape
    out = np.empty((max(length - 1, 0), k, k))
    for c in range(length - 1):
        a, b = mix[c], mix[c + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(a > 0, b / a, np.inf)
        s = min(stickiness, float(ratio.min()))
        rho = (b - s * a) / (1.0 - s) if s < 1.0 else b
        rho = np.clip(rho, 0.0, None)
        rho /= rho.sum()
        out[c] = s * np.eye(k) + (1.0 - s) * rho[None, :]
    return out


def build_parametric_model(
    *,
    name: str,
    description: str,
    read_length: int,
    quality_values: Sequence[int],
    read1: QualityCurve,
    read2: QualityCurve,
    stickiness: float = 0.7,
    insertion_rate: float = TYPICAL_INSERTION_RATE,
    deletion_rate: float = TYPICAL_DELETION_RATE,
    no_call: Sequence[float] | None = None,
    source: dict[str, Any] | None = None,
) -> ErrorModel:
    """A model from a per-cycle quality-bin mix per read; errors follow the Phred definition.

    Parameters
    ----------
    quality_values
        The emitted Phred value of each bin, strictly increasing.
    read1, read2
        The bin mix along read 1 and read 2.
    stickiness
        Extra probability of keeping the previous cycle's bin (runs of equal qualities).
    no_call
        P(base called N) per bin (default: none).
    """
    if read_length < 1 or not 0.0 <= stickiness < 1.0:
        raise ValueError("need read_length >= 1 and 0 <= stickiness < 1")
    qv = np.asarray(quality_values, dtype=np.int64)
    nc = np.zeros(qv.size) if no_call is None else np.asarray(no_call, dtype=np.float64)
    profiles = {}
    for r, curve in ((1, read1), (2, read2)):
        mix = curve.mix(read_length)
        if mix.shape[1] != qv.size:
            raise ValueError(f"read {r} curve has {mix.shape[1]} bins, quality_values {qv.size}")
        profiles[r] = ReadProfile(
            initial=mix[0], transitions=_sticky_transitions(mix, stickiness),
            substitution=_phred_substitution(qv), insertion_rate=insertion_rate,
            deletion_rate=deletion_rate, insertion_lengths=np.array([0.9, 0.1]),
            deletion_lengths=np.array([0.9, 0.1]), no_call=nc,
        )
    src = {"method": "parametric", "stickiness": stickiness,
           "read1": {"start": list(read1.start), "end": list(read1.end), "power": read1.power},
           "read2": {"start": list(read2.start), "end": list(read2.end), "power": read2.power}}
    src.update(source or {})
    return ErrorModel(name=name, quality_values=qv, reads=profiles, description=description,
                      source=src)


def build_novaseq_binned_2x150() -> ErrorModel:
    """The ``illumina-novaseq-binned-2x150`` preset: NovaSeq-style 4-level binned qualities.

    Public figures it follows: NovaSeq RTA3 emits only Q2/Q12/Q23/Q37 and writes no-calls (N)
    at Q2; Illumina's 2x150 spec is >= 85% of bases >= Q30 (this model: 93.6% R1, 90.1% R2);
    substitution error ~0.1-0.5% per base, rising toward the 3' end, read 2 worse than read 1
    (here 0.15% R1, 0.22% R2 on average; 0.1-0.4% per cycle; N rate 0.1% / 0.2%). Errors follow
    the Phred definition of the emitted value.
    """
    return build_parametric_model(
        name="illumina-novaseq-binned-2x150",
        description=(
            "Parametric NovaSeq-style 2x150: binned qualities Q2/Q12/Q23/Q37, most bases Q37, "
            "quality dropping toward the 3' end, read 2 worse than read 1; Q2 bases are no-calls "
            "(N); substitution probabilities from the Phred definition, typical Illumina indel "
            "rates."
        ),
        read_length=150,
        quality_values=(2, 12, 23, 37),
        read1=QualityCurve(start=(0.0005, 0.010, 0.030, 0.9595),
                           end=(0.002, 0.030, 0.080, 0.888)),
        read2=QualityCurve(start=(0.001, 0.015, 0.045, 0.939), end=(0.004, 0.050, 0.120, 0.826)),
        no_call=(1.0, 0.0, 0.0, 0.0),
        source={"figures": "Illumina NovaSeq 6000 specification (>=85% >=Q30 at 2x150), "
                           "RTA3 4-level quality binning"},
    )


def build_perfect_model(*, read_length: int = 150) -> ErrorModel:
    """The ``perfect`` preset: every base Q40, no substitutions, no indels (for tests)."""
    prof = ReadProfile(
        initial=np.array([1.0]), transitions=np.ones((read_length - 1, 1, 1)),
        substitution=np.eye(4)[None], insertion_rate=0.0, deletion_rate=0.0,
        insertion_lengths=np.array([1.0]), deletion_lengths=np.array([1.0]),
        no_call=np.zeros(1),
    )
    return ErrorModel(
        name="perfect", quality_values=np.array([40]), reads={1: prof, 2: prof},
        description="Error-free reads, every base Q40 (for tests).",
        source={"method": "parametric"},
    )


def build_learned_2x150() -> ErrorModel:
    """The ``illumina-2x150`` preset: learned from the bundled real NA12878 HiSeq X reads
    (grch37-chr22-minigiab, 2x151, 7-level binned qualities), cut to 150 cycles."""
    model = learn_model(path=_MINIGIAB_BAM, name="illumina-2x150")
    cut = model.for_read_length(150)
    cut.description = (
        "Learned from 3,3xx real NA12878 Illumina HiSeq X 2x151 reads (bundled "
        "grch37-chr22-minigiab/NA12878.chr22.tiny.bam, bwa mem alignments with MD tags; "
        "real variant sites masked), truncated to 150 cycles. Qualities are HiSeq X 7-level "
        "binned (6/15/22/27/33/37/40)."
    ).replace("3,3xx", f"{sum(v['reads'] for v in model.source['reads_used'].values()):,}")
    return cut


def rebuild_presets(*, out_dir: str | Path = MODELS_DIR) -> dict[str, Path]:
    """Rebuild every shipped preset (``illumina-2x150``, ``illumina-novaseq-binned-2x150``,
    ``perfect``) into ``out_dir``; returns name -> written path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for model in (build_learned_2x150(), build_novaseq_binned_2x150(), build_perfect_model()):
        written[model.name] = model.save(out_dir / f"{model.name}.json")
    return written


def main_learn(*, input: str, out: str, reference: str | None, max_reads: int) -> dict:
    """``synth model learn BAM_OR_FASTQ --out FILE``: learn, save, return ``describe()``."""
    model = learn_model(path=input, reference=reference, max_reads=max_reads)
    model.save(out)
    summary = model.describe()
    summary["out"] = str(out)
    summary["source"] = model.source
    return summary


# ------------------------------------------------------------------------- insert sizes
#: Quantiles the learned template lengths are trimmed at: the extreme 0.5% on either side are
#: chimeras, mis-paired or structurally odd molecules a library-prep model should not copy.
INSERT_TRIM_QUANTILES = (0.005, 0.995)
_NA12878_SMALL_BAM = DATA_DIR / "references" / "grch37-chr20-demo" / "NA12878_small.bam"
INSERT_SIZE_PRESET = "na12878-illumina-2x101"


def _md5(path: Path) -> str:
    import hashlib

    h = hashlib.md5()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def learn_insert_sizes(
    *,
    path: str | Path,
    name: str | None = None,
    bin_width: int = 10,
    trim: tuple[float, float] = INSERT_TRIM_QUANTILES,
    min_mapq: int = 20,
    max_records: int = 5_000_000,
    description: str = "",
) -> InsertSizeModel:
    """An insert-size histogram from real paired alignments.

    A record counts when it is read 1 of a proper pair, primary (not secondary or
    supplementary), not a duplicate, not QC-failed, mapped with MAPQ >= ``min_mapq`` and has a
    non-zero TLEN; its ``|TLEN|`` is the template length (one value per pair). Values outside
    the ``trim`` quantiles (``inverted_cdf``, i.e. observed values) are dropped, the rest
    binned in ``bin_width`` bins starting at the lower trim bound.

    Parameters
    ----------
    path
        BAM/CRAM/SAM of real paired reads.
    max_records
        Stop after reading this many records (a bound on time for whole-genome files).

    Raises
    ------
    ModelError
        Unreadable file, bad parameters, or no qualifying pair.
    """
    path = Path(path)
    lo_q, hi_q = trim
    if not 0.0 <= lo_q < hi_q <= 1.0:
        raise ModelError(f"trim quantiles must satisfy 0 <= lo < hi <= 1, got {trim}")
    if bin_width < 1 or max_records < 1:
        raise ModelError("bin_width and max_records must be >= 1")
    try:
        bam = pysam.AlignmentFile(str(path), check_sq=False)
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot open alignments: {exc}", where=str(path)) from None
    tlens: list[int] = []
    read = 0
    with bam:
        for rec in bam.fetch(until_eof=True):
            read += 1
            if read > max_records:
                read -= 1
                break
            if (rec.is_read1 and rec.is_proper_pair and not rec.is_unmapped
                    and not rec.is_secondary and not rec.is_supplementary
                    and not rec.is_duplicate and not rec.is_qcfail
                    and rec.mapping_quality >= min_mapq and rec.template_length != 0):
                tlens.append(abs(rec.template_length))
    if not tlens:
        raise ModelError("no proper, primary, non-duplicate read-1 record with MAPQ >= "
                         f"{min_mapq} and a TLEN", where=str(path))
    t = np.asarray(tlens, dtype=np.int64)
    a = int(np.quantile(t, lo_q, method="inverted_cdf")) if lo_q > 0 else int(t.min())
    b = int(np.quantile(t, hi_q, method="inverted_cdf"))
    kept = t[(t >= a) & (t <= b)]
    counts = np.bincount((kept - a) // bin_width)
    source = {
        "method": "learned",
        "file": path.name,
        "md5": _md5(path),
        "records_read": read,
        "pairs_qualifying": int(t.size),
        "pairs_used": int(kept.size),
        "pairs_trimmed": int(t.size - kept.size),
        "filters": {"read1": True, "proper_pair": True, "primary": True,
                    "duplicates": False, "qcfail": False, "min_mapq": min_mapq,
                    "tlen": "abs, non-zero"},
        "trim_quantiles": [lo_q, hi_q],
        "trim_bounds": [a, b],
        "raw": {"min": int(t.min()), "max": int(t.max()), "mean": round(float(t.mean()), 3),
                "sd": round(float(t.std(ddof=1)) if t.size > 1 else 0.0, 3)},
    }
    return InsertSizeModel(name=name or path.stem, start=a, bin_width=bin_width, counts=counts,
                           description=description, source=source)


def build_insert_size_preset(*, out_dir: str | Path = INSERT_SIZE_DIR) -> Path:
    """Rebuild the ``na12878-illumina-2x101`` insert-size preset from the bundled
    ``grch37-chr20-demo/NA12878_small.bam`` (973 records; see the models README)."""
    model = learn_insert_sizes(path=_NA12878_SMALL_BAM, name=INSERT_SIZE_PRESET, bin_width=10)
    model.description = (
        f"Insert sizes of {model.source['pairs_used']} real NA12878 Illumina 2x101 pairs "
        "(bundled grch37-chr20-demo/NA12878_small.bam, bwa 0.6.1, chr20:9,999,912-10,001,897), "
        "trimmed at the 0.5%/99.5% quantiles, 10 bp bins. Few pairs: a shape, not a precise "
        "library estimate."
    )
    return model.save(Path(out_dir) / f"{INSERT_SIZE_PRESET}.json")


def main_insert_sizes(
    *, input: str, out: str, name: str | None, bin_width: int, min_mapq: int,
    trim_low: float, trim_high: float, max_records: int,
) -> dict:
    """``synth model insert-sizes BAM --out FILE.json``: learn, save, return the summary."""
    model = learn_insert_sizes(path=input, name=name, bin_width=bin_width, min_mapq=min_mapq,
                               trim=(trim_low, trim_high), max_records=max_records)
    model.save(out)
    return {"out": str(out), "name": model.name, "summary": model.summary(),
            "source": model.source}

"""Re-align a dataset's FASTQ pairs with minimap2 (``mappy``) into a sorted, indexed QC BAM.

The index is built over the territory the reads can come from (padded and merged, written as
pieces of a temporary FASTA) rather than the whole genome: the reads were drawn there, and a
30 Mbp index builds in seconds where a 3 Gbp one takes minutes and gigabytes. Alignments are
mapped back to the reference's own contig coordinates before they are written.

Records are written as SAM text (primary alignments, supplementary pieces of chimeric reads
with ``SA`` tags, unmapped reads kept), then sorted and
indexed with ``pysam.sort`` / ``pysam.index``. Only reads whose alignment is a single ``M``
block (plus soft clips) are kept for the mismatch statistics (``AlignResult.mismatch``); they
are the large majority and need no CIGAR walk.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import mappy
import numpy as np
import pysam

from ..errors import QCError
from ..intervals import merge
from ..reference import Reference
from .duplicates import mark_duplicate_pairs

__all__ = ["AlignResult", "align_pairs", "SAMPLE_READS"]

#: Largest number of single-block reads whose bases are kept for mismatch counting.
SAMPLE_READS = 60_000

_COMP = bytes.maketrans(b"ACGTN", b"TGCAN")


@dataclass
class AlignResult:
    """What ``align_pairs`` did.

    Attributes
    ----------
    bam
        The coordinate-sorted, indexed QC BAM.
    pairs_seen, pairs_aligned
        Pairs read from the FASTQ, and pairs sent to the aligner (the sample).
    reads_mapped
        Reads with a primary alignment.
    proper_pairs
        Pairs whose mates map to one contig on opposite strands within ``max_fragment``.
    seconds
        Wall time of indexing + alignment + sorting.
    insert_sizes : np.ndarray, int64 (n,)
        Template lengths of proper pairs.
    single_block : list of (contig, start, bytes)
        Reference-orientation bases of reads aligned as one M block (at most ``SAMPLE_READS``).
    dup_keys : np.ndarray, int64 (k, 5)
        Pairs with both mates on one contig: contig index, unclipped 5' position and strand of
        read 1, of read 2 (``synthlib.qc.duplicates.mark_duplicate_pairs``).
    dup_names : list of str, (k,)
        Read names of the rows of ``dup_keys``.
    dup_marked : np.ndarray, bool (k,)
        Rows of ``dup_keys`` marked duplicate.
    duplicate_pairs
        Pairs flagged 0x400 (both mates) in the BAM.
    """

    bam: Path
    pairs_seen: int = 0
    pairs_aligned: int = 0
    reads_mapped: int = 0
    proper_pairs: int = 0
    seconds: float = 0.0
    insert_sizes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    single_block: list[tuple[str, int, bytes]] = field(default_factory=list)
    dup_keys: np.ndarray = field(default_factory=lambda: np.zeros((0, 5), np.int64))
    dup_names: list[str] = field(default_factory=list, repr=False)
    dup_marked: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    duplicate_pairs: int = 0
    _keys: list = field(default_factory=list, repr=False)
    _contig_ids: dict = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict:
        return {
            "bam": self.bam.name, "pairs_seen": self.pairs_seen,
            "pairs_aligned": self.pairs_aligned, "reads_mapped": self.reads_mapped,
            "proper_pairs": self.proper_pairs, "seconds": round(self.seconds, 2),
            "duplicate_pairs": self.duplicate_pairs, "duplicate_candidates": len(self.dup_keys),
        }


def _pieces(reference: Reference, territory: dict[str, np.ndarray], pad: int
            ) -> list[tuple[str, int, int]]:
    out = []
    for contig, iv in territory.items():
        if not len(iv):
            continue
        length = reference.lengths[contig]
        padded = merge(np.clip(np.asarray(iv, np.int64) + [-pad, pad], 0, length))
        out += [(contig, int(s), int(e)) for s, e in padded]
    return out


def _write_index_fasta(reference: Reference, pieces: list[tuple[str, int, int]], path: Path
                       ) -> None:
    with open(path, "w") as fh:
        for i, (contig, s, e) in enumerate(pieces):
            seq = reference.fetch(contig, s, e).decode()
            fh.write(f">p{i}\n")
            for k in range(0, len(seq), 100_000):
                fh.write(seq[k:k + 100_000])
            fh.write("\n")


def _sam_header(reference: Reference, sample: str) -> str:
    lines = ["@HD\tVN:1.6\tSO:unsorted"]
    lines += [f"@SQ\tSN:{c}\tLN:{n}" for c, n in reference.lengths.items()]
    lines.append(f"@RG\tID:qc\tSM:{sample}\tPL:ILLUMINA\tDS:synthlib QC re-alignment")
    lines.append(f"@PG\tID:minimap2\tPN:minimap2\tVN:{mappy.__version__}\tCL:mappy preset sr")
    return "\n".join(lines) + "\n"


def _revcomp(s: str) -> str:
    return s.translate(_COMP)[::-1]


def align_pairs(
    *,
    r1: Path,
    r2: Path,
    reference: Reference,
    territory: dict[str, np.ndarray],
    out_bam: Path,
    sample: str,
    max_fragment: int = 1000,
    keep: Callable[[int, str], bool] | None = None,
    threads: int = 1,
    expected_pairs: int | None = None,
    mark_duplicates: bool = True,
) -> AlignResult:
    """Align read pairs to the territory and write a sorted, indexed BAM.

    Parameters
    ----------
    r1, r2
        Paired FASTQ files (gzip/BGZF), mates in the same order.
    reference
        The reference the dataset was simulated from.
    territory
        ``{contig: (k, 2) int64}`` half-open intervals the reads come from; the index covers
        them padded by ``max_fragment`` + 300 bp.
    out_bam
        Destination (``.bai`` written beside it).
    sample
        ``SM`` of the read group.
    max_fragment
        Longest template counted as a proper pair.
    keep
        ``keep(pair_index, name) -> bool`` selects the pairs to align (None: all).
    threads
        Threads for ``samtools sort``.
    expected_pairs
        Pairs that will be aligned (when known): the mismatch sample takes every k-th read
        so it spreads over the whole territory instead of its first units.
    mark_duplicates
        Flag duplicate pairs 0x400 by their re-aligned coordinates (``synthlib.qc.duplicates``);
        the keys are kept in ``AlignResult.dup_keys`` either way.

    Raises
    ------
    QCError
        If the FASTQ files are missing or their mates disagree.
    """
    for p in (r1, r2):
        if not Path(p).exists():
            raise QCError("FASTQ file not found", where=str(p))
    t0 = time.perf_counter()
    out_bam = Path(out_bam)
    out_bam.parent.mkdir(parents=True, exist_ok=True)
    pieces = _pieces(reference, territory, max_fragment + 300)
    if not pieces:
        raise QCError("empty territory: nothing to align to")
    res = AlignResult(bam=out_bam)
    every = max(1, (2 * expected_pairs) // SAMPLE_READS) if expected_pairs else 1
    sizes: list[int] = []
    with tempfile.TemporaryDirectory(prefix=".qc-align-", dir=out_bam.parent) as tmp:
        fa = Path(tmp) / "index.fa"
        _write_index_fasta(reference, pieces, fa)
        aligner = mappy.Aligner(str(fa), preset="sr")
        if not aligner:
            raise QCError("minimap2 could not build an index", where=str(fa))
        sam = Path(tmp) / "qc.sam"
        with open(sam, "w") as out, pysam.FastxFile(str(r1)) as f1, \
                pysam.FastxFile(str(r2)) as f2:
            out.write(_sam_header(reference, sample))
            for i, (a, b) in enumerate(zip(f1, f2, strict=False)):
                res.pairs_seen += 1
                name = a.name
                if name != b.name:
                    raise QCError(f"mates out of order at pair {i}: {name} vs {b.name}",
                                  where=str(r2))
                if keep is not None and not keep(i, name):
                    continue
                res.pairs_aligned += 1
                _align_one(aligner, pieces, name, a.sequence, a.quality, b.sequence,
                           b.quality, out, res, sizes, max_fragment,
                           sample=res.pairs_aligned % every == 0)
        res.dup_keys = np.asarray(res._keys, np.int64).reshape(-1, 5)
        res.dup_marked = mark_duplicate_pairs(res.dup_keys)
        res.duplicate_pairs = int(res.dup_marked.sum())
        if mark_duplicates and res.duplicate_pairs:
            names = {res.dup_names[i] for i in np.flatnonzero(res.dup_marked)}
            sam = _flag_duplicates(sam, names)
        res._keys = []
        pysam.sort("-@", str(max(1, threads)), "-m", "256M", "-T", str(Path(tmp) / "sort"),
                   "-o", str(out_bam), str(sam), catch_stdout=False)
    pysam.index(str(out_bam))
    res.insert_sizes = np.asarray(sizes, np.int64)
    res.seconds = time.perf_counter() - t0
    return res


def _flag_duplicates(sam: Path, names: set[str]) -> Path:
    """Copy of a SAM file with 0x400 set on every record whose name is in ``names``."""
    out = sam.with_name("marked.sam")
    with open(sam) as src, open(out, "w") as dst:
        for line in src:
            if line[0] != "@":
                name, flag, rest = line.split("\t", 2)
                if name in names:
                    line = f"{name}\t{int(flag) | 0x400}\t{rest}"
            dst.write(line)
    sam.unlink()
    return out


def _clips(h, n: int, rn: int) -> tuple[int, int]:
    # mappy reports read 2's query coordinates on its reverse complement (minimap2 flips
    # mate 2 to pair it), read 1's on the read itself.
    if (h.strand < 0) == (rn == 1):
        return n - h.q_en, h.q_st
    return h.q_st, n - h.q_en


def _full_cigar(h, n: int, rn: int) -> str:
    clip_l, clip_r = _clips(h, n, rn)
    return (f"{clip_l}S" if clip_l else "") + h.cigar_str + (f"{clip_r}S" if clip_r else "")


def _align_one(aligner, pieces, name, s1, q1, s2, q2, out, res, sizes, max_fragment, *,
               sample: bool) -> None:
    hits: dict[int, mappy.Alignment] = {}
    # minimap2 marks supplementary (chimeric) pieces as primary too: the first primary hit of
    # a read is its primary alignment, the later ones its supplementary alignments.
    supps: dict[int, list[mappy.Alignment]] = {1: [], 2: []}
    for h in aligner.map(s1, s2):
        if h.is_primary:
            if h.read_num not in hits:
                hits[h.read_num] = h
            else:
                supps[h.read_num].append(h)
    seqs, quals = {1: s1, 2: s2}, {1: q1, 2: q2}
    info = {}
    for rn in (1, 2):
        h = hits.get(rn)
        if h is None:
            continue
        contig, off, _ = pieces[int(h.ctg[1:])]
        info[rn] = (contig, off + h.r_st, off + h.r_en, h.strand)
    proper = False
    tlen = 0
    if 1 in info and 2 in info:
        c1, st1, en1, d1 = info[1]
        c2, st2, en2, d2 = info[2]
        if c1 == c2:
            span = max(en1, en2) - min(st1, st2)
            left = 1 if (st1, d1) <= (st2, d2) else 2
            tlen = span if left == 1 else -span
            proper = d1 != d2 and span <= max_fragment
            five = []
            for rn in (1, 2):
                h = hits[rn]
                clip_l, clip_r = _clips(h, len(seqs[rn]), rn)
                five += ([info[rn][2] + clip_r, 1] if h.strand < 0
                         else [info[rn][1] - clip_l, 0])
            cid = res._contig_ids.setdefault(c1, len(res._contig_ids))
            res._keys.append((cid, *five))
            res.dup_names.append(name)
            if proper:
                res.proper_pairs += 1
                sizes.append(span)
    for rn in (1, 2):
        mate = 3 - rn
        flag = 0x1 | (0x40 if rn == 1 else 0x80)
        seq, qual = seqs[rn], quals[rn]
        if mate not in info:
            flag |= 0x8
        elif info[mate][3] < 0:
            flag |= 0x20
        if proper:
            flag |= 0x2
        h = hits.get(rn)
        if h is None:
            flag |= 0x4
            if mate in info:
                mc, mpos = info[mate][0], info[mate][1] + 1
                out.write(f"{name}\t{flag}\t{mc}\t{mpos}\t0\t*\t{mc}\t{mpos}\t0\t{seq}\t{qual}"
                          "\tRG:Z:qc\n")
            else:
                out.write(f"{name}\t{flag}\t*\t0\t0\t*\t*\t0\t0\t{seq}\t{qual}\tRG:Z:qc\n")
            continue
        res.reads_mapped += 1
        n = len(seq)
        if mate in info:
            mc, mpos = info[mate][0], info[mate][1] + 1
            t = tlen if rn == 1 else -tlen
        else:
            mc, mpos, t = None, None, 0
        # Every piece of a chimeric read: SA lists the others (SAM spec), so split-read
        # evidence of SVs survives re-alignment.
        parts = [h] + supps[rn]
        placed = []
        for x in parts:
            contig, off, _ = pieces[int(x.ctg[1:])]
            placed.append((contig, off + x.r_st, "-" if x.strand < 0 else "+",
                           _full_cigar(x, n, rn), x.mapq, x.NM))
        for k, x in enumerate(parts):
            contig, start, strand, cigar, mapq, nm = placed[k]
            f = flag | (0x10 if x.strand < 0 else 0) | (0x800 if k else 0)
            s_out, q_out = (_revcomp(seq), qual[::-1]) if x.strand < 0 else (seq, qual)
            if mc is None:
                mcs, mps = "=", placed[0][1] + 1
            else:
                mcs, mps = ("=" if mc == contig else mc), mpos
            tag = ""
            if len(parts) > 1:
                tag = "\tSA:Z:" + "".join(f"{c},{p + 1},{sd},{cg},{mq},{nmx};"
                                          for j, (c, p, sd, cg, mq, nmx) in enumerate(placed)
                                          if j != k)
            out.write(f"{name}\t{f}\t{contig}\t{start + 1}\t{mapq}\t{cigar}\t{mcs}\t{mps}\t"
                      f"{t}\t{s_out}\t{q_out}\tNM:i:{nm}\tRG:Z:qc{tag}\n")
        contig, start = placed[0][0], placed[0][1]
        clip_l, clip_r = _clips(h, n, rn)
        if (sample and len(res.single_block) < SAMPLE_READS and len(h.cigar) == 1
                and h.r_en - h.r_st == h.q_en - h.q_st):
            s_ref = _revcomp(seq) if h.strand < 0 else seq
            res.single_block.append((contig, start, s_ref[clip_l:n - clip_r].encode()))

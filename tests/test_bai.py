"""The BAM index written during the merge answers every query like htslib's own index."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pysam
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _svdata import base_spec, generate  # noqa: E402

from synthlib.io.bai import record_table  # noqa: E402


def _all_reads(bam: Path):
    with pysam.AlignmentFile(str(bam), check_sq=False) as f:
        return [(r.reference_name, r.reference_start, r.reference_end or r.reference_start + 1)
                for r in f.fetch(until_eof=True)]


def _check_index(bam: Path, tmp_path: Path, *, n_queries: int = 300) -> None:
    ours = Path(str(bam) + ".bai")
    theirs = tmp_path / "htslib.bai"
    pysam.index(str(bam), str(theirs))
    reads = _all_reads(bam)
    by_contig: dict[str, np.ndarray] = {}
    for c in {r[0] for r in reads}:
        by_contig[c] = np.array([(s, e) for cc, s, e in reads if cc == c])
    rng = np.random.default_rng(5)
    with pysam.AlignmentFile(str(bam), index_filename=str(ours)) as a, \
            pysam.AlignmentFile(str(bam), index_filename=str(theirs)) as b:
        assert [(s.contig, s.mapped, s.unmapped) for s in a.get_index_statistics()] == \
               [(s.contig, s.mapped, s.unmapped) for s in b.get_index_statistics()]
        for _ in range(n_queries):
            contig = rng.choice(sorted(by_contig))
            se = by_contig[contig]
            lo, hi = int(se[:, 0].min()), int(se[:, 1].max())
            start = int(rng.integers(max(0, lo - 20_000), hi))
            end = start + int(rng.choice([1, 150, 2_000, 40_000, 300_000]))
            truth = int(((se[:, 0] < end) & (se[:, 1] > start)).sum())
            assert a.count(contig, start, end) == truth, (contig, start, end)
            assert b.count(contig, start, end) == truth
    subprocess.run(["samtools", "quickcheck", str(bam)], check=True)


def test_demo_index_answers_like_htslib(demo_dataset, tmp_path):
    _check_index(demo_dataset / "golden.bam", tmp_path)


def test_index_of_split_reads_across_units(tmp_path):
    """SVs give long-spanning and supplementary records; small chunks put spills at every
    unit boundary, so the index crosses pieces written by the merge and by the units."""
    spec = base_spec("bai-sv", chunk_size=20_000, reference={
        "name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,120,000"]},
        variants={"structural": {"random": [
            {"type": "deletion", "count": 2, "min_size": 800, "max_size": 5_000},
            {"type": "inversion", "count": 1, "min_size": 800, "max_size": 3_000},
            {"type": "duplication", "count": 1, "min_size": 800, "max_size": 3_000}]}})
    out = generate(spec, tmp_path / "out")
    _check_index(out / "golden.bam", tmp_path)


def test_record_table_parses_cigars():
    rec = pysam.AlignedSegment(pysam.AlignmentHeader.from_dict(
        {"SQ": [{"SN": "c", "LN": 10_000}]}))
    rec.query_name, rec.reference_id, rec.reference_start = "r", 0, 100
    rec.cigarstring, rec.query_sequence = "5S10M300D20M2I3M", "A" * 40
    rec.query_qualities = pysam.qualitystring_to_array("I" * 40)
    raw = _raw(rec)
    t = record_table(np.frombuffer(raw, np.uint8), np.array([0, len(raw)]))
    assert (int(t.beg[0]), int(t.end[0])) == (100, 100 + 10 + 300 + 20 + 3)
    assert int(t.ref_id[0]) == 0 and not bool(t.unmapped[0])


def _raw(rec: pysam.AlignedSegment) -> bytes:
    """One record's raw BAM bytes, via a BAM written by htslib."""
    import gzip
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "one.bam"
        with pysam.AlignmentFile(str(path), "wb", header=rec.header) as f:
            f.write(rec)
        data = gzip.decompress(path.read_bytes())
    # Skip the BAM header: magic, l_text, text, n_ref, then each reference entry.
    at = 4
    l_text = int.from_bytes(data[at:at + 4], "little")
    at += 4 + l_text
    n_ref = int.from_bytes(data[at:at + 4], "little")
    at += 4
    for _ in range(n_ref):
        l_name = int.from_bytes(data[at:at + 4], "little")
        at += 4 + l_name + 4
    size = int.from_bytes(data[at:at + 4], "little")
    return data[at:at + 4 + size]


@pytest.mark.parametrize("n", [0])
def test_empty_table(n):
    t = record_table(np.zeros(0, np.uint8), np.zeros(1, np.int64))
    assert len(t.beg) == n

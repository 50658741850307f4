"""Bounded-memory sorting of a unit's BAM records: runs on disk, merged back in pieces."""

from __future__ import annotations

import numpy as np
import pysam
from hypothesis import given, settings
from hypothesis import strategies as st

import synthlib.io.record_sort as record_sort
import synthlib.reads.simulate as simulate
from synthlib.generate import FILES, generate_local
from synthlib.io.bam import RecordBatch
from synthlib.io.record_sort import RecordSorter
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec


def _batch(rng: np.random.Generator, n: int, first_key: int) -> RecordBatch:
    lens = rng.integers(1, 30, size=n)
    offsets = np.concatenate(([0], np.cumsum(lens))).astype(np.int64)
    data = rng.integers(0, 256, size=int(offsets[-1])).astype(np.uint8)
    pos = rng.integers(0, 50, size=n).astype(np.int64)  # many ties: the key breaks them
    return RecordBatch(data, offsets, pos, np.arange(first_key, first_key + n, dtype=np.int64))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(1, 400),
       st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_pieces_are_the_sorted_records_whatever_the_budget(tmp_path_factory, sizes, run_bytes,
                                                          piece_bytes, seed):
    rng = np.random.default_rng(seed)
    batches, key = [], 0
    for n in sizes:
        batches.append(_batch(rng, n, key))
        key += n
    work = tmp_path_factory.mktemp("runs")
    with RecordSorter(workdir=work, stem="u", run_bytes=run_bytes,
                      piece_bytes=piece_bytes) as sorter:
        for b in batches:
            sorter.add([b])
            # Never more than the budget plus the batch that crossed it stays in memory.
            assert sorter._pending_bytes < run_bytes + max(1, len(b.data))
        pieces = list(sorter.pieces())
        spilled = sorter.runs
        assert bool(spilled) == any(work.iterdir())
    assert not any(work.iterdir()), "run files outlive close()"
    whole = RecordBatch.merge_sorted(batches)
    got = RecordBatch.concat(pieces)
    assert got.data.tobytes() == whole.data.tobytes()
    assert np.array_equal(got.pos, whole.pos) and np.array_equal(got.key, whole.key)
    assert np.array_equal(got.offsets, whole.offsets)
    for p in pieces[:-1]:  # pieces follow each other in order
        assert len(p) > 0
    if not spilled:  # sorted in memory: pieces are cut at piece_bytes
        longest = max((int(np.diff(b.offsets).max()) for b in batches if len(b)), default=0)
        assert all(len(p.data) <= piece_bytes + longest for p in pieces)


def test_a_unit_sorted_through_disk_runs_gives_the_same_reads(tmp_path, monkeypatch):
    """Tiny budgets force every unit through runs and many pieces: the BAM holds the same
    records in the same order, and its index answers region queries like samtools' own."""
    spec = parse_spec({
        "id": "runs", "seed": 11, "reason": "t", "coverage": 12,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,080,000"]},
        "variants": {"random": [{"type": "deletion", "count": 5}, {"type": "snv", "count": 20}]},
    })
    monkeypatch.setattr(simulate, "BATCH_PAIRS", 500)  # many batches, so many runs
    plain = generate_local(plan_dataset(spec), dest=tmp_path / "plain")
    monkeypatch.setattr(record_sort, "PIECE_BYTES", 50_000)
    pieces = generate_local(plan_dataset(spec), dest=tmp_path / "pieces")  # sorted in memory
    assert pysam.view(str(pieces / FILES["bam"])) == pysam.view(str(plain / FILES["bam"]))
    monkeypatch.setattr(record_sort, "RUN_BYTES", 200_000)
    spills = []
    real_spill = RecordSorter._spill
    monkeypatch.setattr(RecordSorter, "_spill", lambda self: (spills.append(1),
                                                              real_spill(self)))
    runs = generate_local(plan_dataset(spec), dest=tmp_path / "runs")
    assert len(spills) >= 6
    a, b = str(plain / FILES["bam"]), str(runs / FILES["bam"])
    assert pysam.samtools.quickcheck(b) == ""
    assert pysam.view(a) == pysam.view(b)
    ref = tmp_path / "ref.bam"
    ref.write_bytes((runs / FILES["bam"]).read_bytes())
    pysam.index(str(ref))  # samtools' own index of the same file
    with pysam.AlignmentFile(b) as ours, pysam.AlignmentFile(str(ref)) as theirs:
        contig = ours.references[0]
        for start in range(1_000_000, 1_080_000, 7_919):
            names = [r.query_name for r in ours.fetch(contig, start, start + 500)]
            assert names == [r.query_name for r in theirs.fetch(contig, start, start + 500)]
            assert names, "a region of a 12x dataset without reads"
    for name in ("reads_R1.fastq.gz", "truth.vcf.gz"):  # only the BAM goes through runs
        assert (plain / name).read_bytes() == (runs / name).read_bytes()

"""Raw BAM records: bulk encoding reads back through htslib; sorting moves whole records."""

from __future__ import annotations

import numpy as np
import pysam
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlib.io import bgzf
from synthlib.io.bam import RecordBatch, bam_header, encode_records, pack_seq, reg2bin


def _byte_gather(batch: RecordBatch, order: np.ndarray) -> bytes:
    return b"".join(batch.data[batch.offsets[i]:batch.offsets[i + 1]].tobytes() for i in order)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=60), st.randoms(use_true_random=False))
def test_take_and_split_move_whole_records(lengths, rnd):
    data = np.concatenate([np.full(n, i % 251, np.uint8) for i, n in enumerate(lengths)])
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    n = len(lengths)
    pos = np.array([rnd.randrange(100) for _ in range(n)], dtype=np.int64)
    batch = RecordBatch(data, offsets, pos, np.arange(n, dtype=np.int64))
    order = np.array(rnd.sample(range(n), n))
    assert batch.take(order).data.tobytes() == _byte_gather(batch, order)
    srt = batch.sorted()
    assert list(srt.pos) == sorted(pos)
    left, right = srt.split(50)
    assert (left.pos < 50).all() and (right.pos >= 50).all()
    assert left.data.tobytes() + right.data.tobytes() == srt.data.tobytes()


def test_reg2bin_matches_htslib_examples():
    # Values from the SAM spec's reg2bin: a 1 bp read at 0, a read crossing a 16 kb boundary.
    assert reg2bin(np.array([0]), np.array([1]))[0] == 4681
    assert reg2bin(np.array([16380]), np.array([16390]))[0] == 585
    assert reg2bin(np.array([0]), np.array([1 << 29]))[0] == 0


def test_encoded_records_read_back(tmp_path):
    n, length = 5, 12
    rng = np.random.default_rng(0)
    bases = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, (n, length))]
    quals = rng.integers(2, 41, (n, length)).astype(np.uint8)
    names = np.frombuffer(b"".join(b"read%02d" % i for i in range(n)), np.uint8).reshape(n, -1)
    pos = np.array([10, 20, 30, 40, 50])
    cigars = [None, [(4, 2), (0, 10)], None, [(0, 5), (2, 3), (0, 7)], [(0, 6), (1, 2), (0, 4)]]
    spans = np.array([12, 10, 12, 15, 10])
    # Rows come from the arrays through name_rows / seq_rows (here: reversed order).
    rows = np.arange(n)[::-1]
    rec = encode_records(
        names=names[rows], name_rows=rows, ref_id=0, pos=pos,
        flag=np.full(n, 0x1 | 0x2 | 0x40 | 0x20), mapq=60,
        cigars={i: c for i, c in enumerate(cigars) if c is not None}, ref_span=spans,
        seq=pack_seq(bases[rows])[0], quals=quals[rows], seq_rows=rows, mate_pos=pos + 100,
        tlen=np.full(n, 112), key=np.arange(n), tags=b"RGZs1\0").sorted()
    path = tmp_path / "t.bam"
    header = bam_header(contigs={"c": 1000}, sample="s1", program_version="t")
    path.write_bytes(bgzf.compress(header) + bgzf.compress(rec.data.tobytes()) + bgzf.EOF)
    assert pysam.samtools.quickcheck(str(path)) == ""
    with pysam.AlignmentFile(str(path)) as bam:
        reads = list(bam)
    assert [r.reference_start for r in reads] == list(pos)
    assert [r.cigarstring for r in reads] == ["12M", "2S10M", "12M", "5M3D7M", "6M2I4M"]
    for r, b, q in zip(reads, bases, quals, strict=True):
        assert r.query_sequence == b.tobytes().decode()
        assert list(r.query_qualities) == list(q)
        assert r.get_tag("RG") == "s1" and r.next_reference_start == r.reference_start + 100


@pytest.mark.parametrize("length", [1, 2, 7, 150, 151])
def test_packed_reverse_complement_is_that_of_the_bases(length):
    rng = np.random.default_rng(length)
    bases = np.frombuffer(b"ACGTN", np.uint8)[rng.integers(0, 5, (9, length))]
    comp = np.arange(256, dtype=np.uint8)
    comp[list(b"ACGTN")] = list(b"TGCAN")
    packed, rc = pack_seq(bases, revcomp=True)
    assert (packed == pack_seq(bases)[0]).all() and pack_seq(bases)[1] is None
    assert (rc == pack_seq(comp[bases[:, ::-1]])[0]).all()


def _cigar_per_base(rp: np.ndarray) -> list[tuple[int, int]]:
    """The obvious per-base walk the fast CIGAR builder must agree with."""
    mapped = np.flatnonzero(rp != -1)
    first, last = mapped[0], mapped[-1]
    ops: list[tuple[int, int]] = []

    def add(op, n):
        if ops and ops[-1][0] == op:
            ops[-1] = (op, ops[-1][1] + n)
        else:
            ops.append((op, n))

    if first:
        add(4, int(first))
    prev = None
    for i in range(first, last + 1):
        if rp[i] == -1:
            add(1, 1)
            continue
        if prev is not None and rp[i] - prev > 1:
            add(2, int(rp[i] - prev - 1))
        add(0, 1)
        prev = rp[i]
    if last < len(rp) - 1:
        add(4, int(len(rp) - 1 - last))
    return ops


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["M", "I", "D"]), min_size=1, max_size=60),
       st.lists(st.integers(1, 6), min_size=60, max_size=60))
def test_cigar_from_reference_positions(kinds, jumps):
    from synthlib.reads.simulate import _cigar

    rp = np.array(_positions(kinds, jumps))
    if (rp != -1).any():
        assert _cigar(rp) == _cigar_per_base(rp)


def _positions(kinds, jumps):
    """Reference positions of a read made of M, I and D steps (-1 = inserted base)."""
    rp, p = [], 1000
    for kind, jump in zip(kinds, jumps, strict=False):
        if kind == "I":
            rp.append(-1)
        else:
            p += jump if kind == "D" else 0
            rp.append(p)
            p += 1
    return rp


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40).flatmap(lambda n: st.lists(
    st.tuples(st.lists(st.sampled_from(["M", "I", "D"]), min_size=n, max_size=n),
              st.lists(st.integers(1, 6), min_size=n, max_size=n)), min_size=1, max_size=8)))
def test_batch_cigars_equal_the_per_base_walk(reads):
    from synthlib.reads.simulate import _cigars

    rows = [r for r in (np.array(_positions(k, j)) for k, j in reads) if (r != -1).any()]
    if rows:
        rp = np.stack(rows)
        assert _cigars(rp) == [_cigar_per_base(r) for r in rows]

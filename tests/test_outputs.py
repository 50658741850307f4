"""Final files streamed by a serial run, merged from shards, and shards consumed by the merge;
random SNVs placed in bulk by the rules of the one-by-one loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from synthlib.errors import SynthError
from synthlib.generate import FILES, merge_parts, merge_units, run_unit
from synthlib.io.checksums import digest_file
from synthlib.outputs import SerialOutputs
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec
from synthlib.variants.occupancy import Occupancy
from synthlib.variants.spikes import _first_come


@pytest.fixture(scope="module")
def plan():
    spec = parse_spec({
        "id": "streamed", "seed": 8, "reason": "t", "coverage": 4, "chunk_size": 30_000,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,120,000"]},
        "variants": {"random": [{"type": "snv", "count": 20},
                                {"type": "deletion", "count": 4, "max_size": 6}]},
    })
    return plan_dataset(spec)


def _md5s(folder, names):
    return {n: digest_file(folder / n)["md5"] for n in names}


def test_streamed_files_equal_merged_shards_and_consumed_shards_go(plan, tmp_path):
    assert len(plan.units) >= 4
    work = tmp_path / "work"
    work.mkdir()
    for u in plan.units:
        run_unit(plan, u, workdir=work)
    merged = merge_units(plan, workdir=work, out_dir=tmp_path / "merged")
    consumed = merge_units(plan, workdir=work, out_dir=tmp_path / "consumed", consume=True)
    # Only what no part merges is left: the claims' and support files' kind, none here.
    assert sorted(p.name for p in work.iterdir()) == []
    stream_work = tmp_path / "stream-work"
    stream_work.mkdir()
    digests: dict = {}
    with SerialOutputs(plan, out_dir=tmp_path / "streamed") as outputs:
        for u in plan.units:
            run_unit(plan, u, workdir=stream_work, outputs=outputs)
        streamed = outputs.finish(digests=digests)
    assert outputs.parts == ["r1", "r2", "bam"]
    streamed += merge_units(plan, workdir=stream_work, out_dir=tmp_path / "streamed",
                            parts=[p for p in merge_parts(plan) if p not in outputs.parts])
    # Streamed units leave no FASTQ or BAM shards, only the truth VCF's.
    assert {p.suffixes[-1] for p in stream_work.iterdir()} <= {".bgzf"}
    assert all(p.name.endswith(".vcf.bgzf") for p in stream_work.iterdir())
    assert sorted(merged) == sorted(consumed) == sorted(streamed) == sorted(FILES.values())
    ref = _md5s(tmp_path / "merged", merged)
    assert _md5s(tmp_path / "consumed", merged) == ref
    assert _md5s(tmp_path / "streamed", merged) == ref
    for name in (FILES["r1"], FILES["r2"], FILES["bam"]):  # taken on the way out
        assert digests[name] == digest_file(tmp_path / "streamed" / name)


def test_serial_outputs_take_units_in_order_and_leave_nothing_on_failure(plan, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SynthError, match="expected unit 0, got unit 1"), \
            SerialOutputs(plan, out_dir=out) as outputs:
        run_unit(plan, plan.units[1], workdir=tmp_path, outputs=outputs)
    assert list(out.iterdir()) == []
    with SerialOutputs(plan, out_dir=out) as outputs:
        run_unit(plan, plan.units[0], workdir=tmp_path, outputs=outputs)
        with pytest.raises(SynthError, match="units were not streamed"):
            outputs.finish()
        outputs.discard()
    assert list(out.iterdir()) == []


def _first_come_one_by_one(chrom, lo, hi, ok):
    kept, keep = Occupancy(), np.zeros(len(lo), dtype=bool)
    for k in range(len(lo)):
        if ok[k] and not kept.overlaps(str(chrom[k]), int(lo[k]), int(hi[k])):
            kept.add(str(chrom[k]), int(lo[k]), int(hi[k]))
            keep[k] = True
    return keep


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 400), st.booleans()), max_size=80),
       st.integers(1, 25))
def test_bulk_placement_keeps_what_the_loop_keeps(cands, width):
    chrom = np.array([c for c, _, _ in cands], dtype=np.int64)
    lo = np.array([p for _, p, _ in cands], dtype=np.int64)
    ok = np.array([o for _, _, o in cands], dtype=bool)
    hi = lo + width  # every candidate's interval has one length, as random SNVs' do
    assert (_first_come(chrom, lo, hi, ok) == _first_come_one_by_one(chrom, lo, hi, ok)).all()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(1, 120)), max_size=40),
       st.lists(st.tuples(st.integers(0, 600), st.integers(1, 60)), min_size=1, max_size=40))
def test_occupancy_batch_queries_agree_with_single_ones(placed, queries):
    one, bulk = Occupancy(), Occupancy()
    for a, n in placed:
        one.add("c", a, a + n)
    bulk.add_many("c", np.array([a for a, _ in placed], dtype=np.int64),
                  np.array([a + n for a, n in placed], dtype=np.int64))
    lo = np.array([a for a, _ in queries], dtype=np.int64)
    hi = lo + np.array([n for _, n in queries], dtype=np.int64)
    expected = [one.overlaps("c", int(a), int(b)) for a, b in zip(lo, hi, strict=True)]
    assert one.overlaps_many("c", lo, hi).tolist() == expected
    assert bulk.overlaps_many("c", lo, hi).tolist() == expected
    assert [bulk.overlaps("c", int(a), int(b)) for a, b in zip(lo, hi, strict=True)] == expected

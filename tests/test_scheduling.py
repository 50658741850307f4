"""How work is cut for the cluster: unit batches, plans shipped once, merge parts."""

from __future__ import annotations

import pickle

import pytest

from flows.runtime import Shipped
from synthlib.errors import SynthError
from synthlib.generate import FILES, MERGE_PARTS, merge_parts, merge_units, run_unit
from synthlib.plan import plan_dataset
from synthlib.spec import parse_spec


@pytest.fixture(scope="module")
def small_plan():
    spec = parse_spec({
        "id": "batches", "seed": 5, "reason": "t", "coverage": 3, "chunk_size": 20_000,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,150,000"]},
        "variants": {"random": [{"type": "snv", "count": 12}]},
    })
    return plan_dataset(spec)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_unit_batches_are_consecutive_shrinking_and_complete(small_plan, workers):
    units = small_plan.units
    assert len(units) >= 8
    batches = small_plan.unit_batches(workers=workers)
    assert [u.index for b in batches for u in b] == [u.index for u in units]
    assert all(batches)
    pairs = [sum(small_plan.pairs_for(u) + 1 for u in b) for b in batches]
    largest_unit = max(small_plan.pairs_for(u) + 1 for u in units)
    left = sum(pairs)
    for got in pairs:  # each takes about 1 / (2 workers) of what is left, at least one unit
        assert got <= max(left / (2 * workers) + largest_unit / 2, largest_unit)
        left -= got
    # Runs shrink: the last ones are single units, so the end of a run is fine-grained.
    assert len(batches[-1]) == 1
    assert pairs[0] >= pairs[-1]
    if workers == 1:  # a lone worker needs few tasks: half the work goes in the first
        assert len(batches) <= len(units) // 2


def test_unit_batches_refuse_fewer_than_one_worker(small_plan):
    with pytest.raises(SynthError, match="at least 1"):
        small_plan.unit_batches(workers=0)


def test_shipped_value_is_pickled_once_and_decoded_once_per_process(small_plan):
    shipped = Shipped(small_plan)
    first = pickle.dumps(shipped)
    assert pickle.dumps(shipped) == first  # the cached payload, not a second walk
    a, b = pickle.loads(first), pickle.loads(first)
    # Unpickling (what the scheduler does) leaves the payload undecoded ...
    assert a._blob is not None and a._value is not small_plan
    # ... and a worker decodes it once however many tasks carry it.
    assert a.value is b.value
    assert a.value.units == small_plan.units and a.value.spikes == small_plan.spikes
    assert pickle.loads(pickle.dumps(a)).value is a.value  # re-shipped as the same bytes


def test_merge_parts_write_only_their_files(small_plan, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    for u in small_plan.units:
        run_unit(small_plan, u, workdir=work)
    assert merge_parts(small_plan) == list(MERGE_PARTS)
    out = tmp_path / "out"
    names = merge_units(small_plan, workdir=work, out_dir=out, parts=["vcf"])
    assert sorted(names) == sorted([FILES["vcf"], FILES["tbi"]])
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    names += merge_units(small_plan, workdir=work, out_dir=out, parts=["bam", "r1", "r2"])
    assert sorted(p.name for p in out.iterdir()) == sorted(names) == sorted(FILES.values())
    with pytest.raises(SynthError, match="unknown merge part"):
        merge_units(small_plan, workdir=work, out_dir=out, parts=["cram"])

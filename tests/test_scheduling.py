"""How work is cut for the cluster: units claimed by workers, plans shipped once, merge parts."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading

import pytest

from flows.runtime import Shipped
from synthlib.claims import (
    await_unit,
    done_results,
    run_claimed_merges,
    run_claimed_units,
    units_done,
)
from synthlib.errors import SynthError
from synthlib.generate import (
    FILES,
    MERGE_PARTS,
    merge_groups,
    merge_order,
    merge_parts,
    merge_units,
    run_unit,
)
from synthlib.io.checksums import digest_file
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


_CLAIMER = """
import json, pickle, sys
from synthlib.claims import run_claimed_units
plan = pickle.loads(open(sys.argv[1], "rb").read())
print(json.dumps([r.index for r in run_claimed_units(plan, workdir=sys.argv[2])]))
"""


def test_claimed_units_are_shared_out_once_each(small_plan, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    assert len(small_plan.units) >= 8
    # Two claiming processes side by side on one work folder, as two workers' tasks.
    blob = tmp_path / "plan.pickle"
    blob.write_bytes(pickle.dumps(small_plan))
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIMER, str(blob), str(work)],
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    runs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    ran = sorted(i for run in runs for i in run)
    assert ran == [u.index for u in small_plan.units]  # every unit, none twice
    assert units_done(work) == len(small_plan.units)
    assert run_claimed_units(small_plan, workdir=work) == []  # nothing left to claim


def test_claimed_units_give_the_bytes_of_plain_units(small_plan, tmp_path):
    plain, claimed = tmp_path / "plain", tmp_path / "claimed"
    plain.mkdir()
    claimed.mkdir()
    for u in small_plan.units:
        run_unit(small_plan, u, workdir=plain)
    (claimed / f"{small_plan.units[1].name}.claim").touch()  # held by a claimer that died
    ran = run_claimed_units(small_plan, workdir=claimed)
    assert [r.index for r in ran] == [u.index for u in small_plan.units if u.index != 1]
    run_unit(small_plan, small_plan.units[1], workdir=claimed)
    out = {}
    for name, work in (("plain", plain), ("claimed", claimed)):
        merge_units(small_plan, workdir=work, out_dir=tmp_path / f"out-{name}")
        out[name] = {f: digest_file(tmp_path / f"out-{name}" / f)["md5"]
                     for f in sorted(FILES.values())}
    assert out["plain"] == out["claimed"]


def _assert_bytes_of_a_plain_merge(plan, out, tmp_path):
    """Every merged file in ``out`` equals the file of plain units merged plainly."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for u in plan.units:
        run_unit(plan, u, workdir=plain)
    merge_units(plan, workdir=plain, out_dir=tmp_path / "plain-out")
    for name in FILES.values():
        assert digest_file(out / name)["md5"] == digest_file(tmp_path / "plain-out" / name)["md5"]


def test_a_merge_waits_for_units_and_runs_one_left_abandoned(small_plan, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    dead = small_plan.units[2]
    (work / f"{dead.name}.claim").touch()  # claimed by a worker that died with it
    ran = run_claimed_units(small_plan, workdir=work, claimer=0)
    assert dead.index not in [r.index for r in ran]
    assert (work / "claimer-0.finished").read_text() == "ok"
    with pytest.raises(SynthError, match="not done"):
        done_results(small_plan, work)
    # The merge, told there was one claimer (now finished), runs the abandoned unit itself.
    waited = []

    def ready(unit):
        waited.append(unit.index)
        await_unit(small_plan, unit, workdir=work, claimers=1)

    names = merge_units(small_plan, workdir=work, out_dir=tmp_path / "out", ready=ready)
    assert sorted(names) == sorted(FILES.values())
    assert set(waited) == {u.index for u in small_plan.units}
    results = done_results(small_plan, work)
    assert [r.index for r in results] == [u.index for u in small_plan.units]
    assert (work / f"{dead.name}.rerun").exists()
    _assert_bytes_of_a_plain_merge(small_plan, tmp_path / "out", tmp_path)


_CLAIM_AND_MERGE = """
import json, pickle, sys
from synthlib.claims import run_claimed_merges, run_claimed_units
plan = pickle.loads(open(sys.argv[1], "rb").read())
units = run_claimed_units(plan, workdir=sys.argv[2], claimer=int(sys.argv[4]))
merged = run_claimed_merges(plan, workdir=sys.argv[2], out_dir=sys.argv[3], claimers=2,
                            consume=True)
print(json.dumps({"units": [r.index for r in units], "files": sorted(merged)}))
"""


def test_claimers_share_out_units_then_merges_once_each(small_plan, tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    work.mkdir()
    blob = tmp_path / "plan.pickle"
    blob.write_bytes(pickle.dumps(small_plan))
    procs = [subprocess.Popen([sys.executable, "-c", _CLAIM_AND_MERGE, str(blob), str(work),
                               str(out), str(i)], stdout=subprocess.PIPE, text=True)
             for i in range(2)]
    runs = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    assert sorted(i for r in runs for i in r["units"]) == [u.index for u in small_plan.units]
    files = [f for r in runs for f in r["files"]]
    assert sorted(files) == sorted(FILES.values())  # each file merged once, by one process
    assert sorted(p.name for p in work.glob("merge-*.claim")) == sorted(
        f"merge-{part}.claim" for part in MERGE_PARTS)
    assert not list(work.glob("*.bgzf"))  # consumed as merged
    _assert_bytes_of_a_plain_merge(small_plan, out, tmp_path)


def test_a_claimed_merge_part_is_left_to_its_claimer(small_plan, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    run_claimed_units(small_plan, workdir=work, claimer=0)
    assert merge_order(small_plan)[0] == "bam"  # the costliest is claimed first
    (work / "merge-bam.claim").touch()  # taken by a process that died with it
    merged = run_claimed_merges(small_plan, workdir=work, out_dir=tmp_path / "out", claimers=1)
    assert FILES["bam"] not in merged and FILES["bai"] not in merged
    assert {FILES[p] for p in ("r1", "r2", "vcf")} <= set(merged)
    assert run_claimed_merges(small_plan, workdir=work, out_dir=tmp_path / "out",
                              claimers=1) == {}  # nothing left to claim


def _await_in_thread(plan, unit, work, claimers):
    errors = []

    def run():
        try:
            await_unit(plan, unit, workdir=work, claimers=claimers)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, errors


def test_a_merge_runs_the_unit_of_a_claimer_that_died_before_its_rerun(small_plan, tmp_path):
    # Claimer 1 claimed a unit and died: no "finished" mark, and its lock went with it. Its
    # task's rerun is queued behind the merging claimer on the one worker left, so waiting
    # for its mark would wait forever.
    work = tmp_path / "work"
    work.mkdir()
    dead = small_plan.units[3]
    (work / f"{dead.name}.claim").touch()
    (work / "claimer-1.alive").touch()
    run_claimed_units(small_plan, workdir=work, claimer=0)
    t, errors = _await_in_thread(small_plan, dead, work, claimers=2)
    t.join(120)
    assert not t.is_alive() and not errors
    assert (work / f"{dead.name}.rerun").exists() and (work / f"{dead.name}.done").exists()


_LIVE_CLAIMER = """
import fcntl, os, sys, time, pickle
from pathlib import Path
from synthlib.claims import _mark_done
from synthlib.generate import run_unit
plan = pickle.loads(open(sys.argv[1], "rb").read())
work, unit = Path(sys.argv[2]), plan.units[int(sys.argv[3])]
fd = os.open(work / "claimer-1.alive", os.O_CREAT | os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
time.sleep(1.0)
_mark_done(work, run_unit(plan, unit, workdir=work), unit)
(work / "claimer-1.finished").write_text("ok")
"""


def test_a_merge_waits_for_a_claimer_still_running(small_plan, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    slow = small_plan.units[3]
    (work / f"{slow.name}.claim").touch()  # claimed by claimer 1, which is still at it
    run_claimed_units(small_plan, workdir=work, claimer=0)
    blob = tmp_path / "plan.pickle"
    blob.write_bytes(pickle.dumps(small_plan))
    proc = subprocess.Popen([sys.executable, "-c", _LIVE_CLAIMER, str(blob), str(work),
                             str(slow.index)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    t, errors = _await_in_thread(small_plan, slow, work, claimers=2)
    t.join(120)
    assert proc.wait(60) == 0
    assert not t.is_alive() and not errors
    assert not (work / f"{slow.name}.rerun").exists()  # waited: the unit ran once


def test_a_merge_stops_waiting_when_a_claimer_failed(small_plan, tmp_path):
    (tmp_path / "claimer-0.finished").write_text("failed")
    with pytest.raises(SynthError, match="claiming task failed"):
        await_unit(small_plan, small_plan.units[0], workdir=tmp_path, claimers=2)


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_merge_groups_cover_every_part_once_within_the_workers(small_plan, workers):
    groups = merge_groups(small_plan, workers=workers)
    assert sorted(p for g in groups for p in g) == sorted(merge_parts(small_plan))
    assert all(groups) and len(groups) <= workers
    if workers >= 3:
        assert ["bam"] in groups  # the heaviest part gets a worker of its own
    if workers == 2:  # the BAM weighs about as much as both FASTQs
        assert sorted(map(sorted, groups)) == [["bam", "vcf"], ["r1", "r2"]]


def test_merge_groups_refuse_fewer_than_one_worker(small_plan):
    with pytest.raises(SynthError, match="at least 1"):
        merge_groups(small_plan, workers=0)


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

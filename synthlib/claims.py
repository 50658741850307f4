"""Units shared out by claiming, and merges that start before the last unit ends.

Processes started side by side on one work folder (one task per worker) split a plan's
units as they go: each takes the next unit nobody has claimed, by creating
``<unit>.claim`` exclusively (``O_EXCL``), and ``<unit>.done`` (its :class:`UnitResult` as
JSON) marks it finished once its shards are written. The workers finish within about one unit
of each other, whatever their speeds, for the cost of one task each; which process runs a unit
never changes a byte of it.

A merge may start as soon as a worker has nothing left to claim: before it uses a unit's
shards it waits for that unit (:func:`await_unit`). The merge parts are claimed the same
way, the costliest first, by each process as it runs out of units
(``merge-<part>.claim``, :func:`run_claimed_merges`). Each claimer leaves
``claimer-<i>.finished`` (``ok`` or ``failed``) when it stops. A unit that is still not done
when every claimer has finished was abandoned (its worker died and the rerun of that task
found it claimed), so the waiting merge runs it itself (claimed once more through
``<unit>.rerun``); if a claimer failed, the wait raises instead of waiting forever. A claimer
holds a lock on ``claimer-<i>.alive`` (``flock``) from before its first claim until its
``finished`` mark is written, so a claimer that died is told from one still running even
before its task is run again: a merging claimer does not wait for a rerun that cannot start
while it occupies the worker.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

from .errors import SynthError
from .generate import UnitResult, _atomic_write, load_model, merge_order, merge_units, run_unit
from .io.checksums import FileDigest
from .plan import Plan, WorkUnit
from .reads.errormodel import ErrorModel

__all__ = ["run_claimed_units", "run_claimed_merges", "units_done", "await_unit",
           "done_results"]

_POLL_S = 0.05


def _create(path: Path) -> bool:
    """Create ``path`` exclusively; False if it exists."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _hold_alive(workdir: Path, claimer: int) -> int:
    """Lock ``claimer-<claimer>.alive`` for this process (released when the returned
    descriptor is closed, or when the process dies); waits while an earlier run of the same
    claimer still holds it."""
    fd = os.open(workdir / f"claimer-{claimer}.alive", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _running(workdir: Path, claimer: int) -> bool:
    """Whether a process holds claimer number ``claimer``'s lock."""
    try:
        fd = os.open(workdir / f"claimer-{claimer}.alive", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # and with it the lock, if it was taken here
    return False


def _mark_done(workdir: Path, result: UnitResult, unit: WorkUnit) -> None:
    _atomic_write(workdir / f"{unit.name}.done", json.dumps(asdict(result)).encode())


def run_claimed_units(plan: Plan, *, workdir: Path, model: ErrorModel | None = None,
                      claimer: int | None = None) -> list[UnitResult]:
    """Run, in order, every unit of ``plan`` that no other process sharing ``workdir`` has
    claimed; returns the results of the units run here. With ``claimer`` (this claimer's
    number), leave ``claimer-<n>.finished`` when stopping, ``failed`` if a unit raised."""
    workdir = Path(workdir)
    model = model or load_model(plan)
    out = []
    status = "failed"
    alive = None if claimer is None else _hold_alive(workdir, claimer)
    try:
        for unit in plan.units:
            # The claim stays after the unit is done: a claim that went away could be
            # taken again.
            if _create(workdir / f"{unit.name}.claim"):
                out.append(run_unit(plan, unit, workdir=workdir, model=model))
                _mark_done(workdir, out[-1], unit)
        status = "ok"
    finally:
        if claimer is not None:
            try:
                _atomic_write(workdir / f"claimer-{claimer}.finished", status.encode())
            finally:
                os.close(alive)  # only once the mark is there: never "gone" while alive
    return out


def run_claimed_merges(plan: Plan, *, workdir: Path, out_dir: Path, claimers: int,
                       consume: bool = False, model: ErrorModel | None = None
                       ) -> dict[str, FileDigest]:
    """Merge, one after another, every part of ``plan`` (:func:`synthlib.generate.merge_order`)
    that no other process sharing ``workdir`` has claimed, into ``out_dir``; each waits for
    the units it needs (:func:`await_unit`, with ``claimers`` claiming processes).

    Called by each claimer as it runs out of units, this starts each merge on the first
    process free for it, with no scheduler in between: a merge task submitted by the flow
    started 0.15-0.3 s after its worker became free.

    Returns
    -------
    dict
        File name -> checksums, for the files this call wrote.
    """
    workdir = Path(workdir)
    digests: dict[str, FileDigest] = {}

    def ready(unit: WorkUnit) -> None:
        await_unit(plan, unit, workdir=workdir, claimers=claimers, model=model)

    for part in merge_order(plan):
        if _create(workdir / f"merge-{part}.claim"):
            merge_units(plan, workdir=workdir, out_dir=Path(out_dir), parts=[part],
                        digests=digests, consume=consume, ready=ready)
    return digests


def units_done(workdir: Path) -> int:
    """How many claimed units of a work folder are finished."""
    return sum(1 for _ in Path(workdir).glob("u*.done"))


def await_unit(plan: Plan, unit: WorkUnit, *, workdir: Path, claimers: int,
               model: ErrorModel | None = None) -> None:
    """Return once ``unit`` is done, running it here if every one of the ``claimers`` has
    finished or died (no ``finished`` mark, lock not held) without doing it.

    Raises
    ------
    SynthError
        If a claimer failed (the unit's error is that claimer's task's to report).
    """
    workdir = Path(workdir)
    done = workdir / f"{unit.name}.done"
    sentinels = [workdir / f"claimer-{i}.finished" for i in range(claimers)]
    while not done.exists():
        states = [f.read_text() if f.exists() else None for f in sentinels]
        if "failed" in states:
            raise SynthError(f"unit {unit.name} was not generated: a claiming task failed",
                             where=str(workdir))
        stopped = all(state is not None or not _running(workdir, i)
                      for i, state in enumerate(states))
        if stopped and not done.exists():
            if _create(workdir / f"{unit.name}.rerun"):
                _mark_done(workdir, run_unit(plan, unit, workdir=workdir,
                                             model=model or load_model(plan)), unit)
                break
        time.sleep(_POLL_S)


def done_results(plan: Plan, workdir: Path) -> list[UnitResult]:
    """The results of every unit, in unit order, from their ``.done`` files.

    Raises
    ------
    SynthError
        If a unit is not done.
    """
    out = []
    for unit in plan.units:
        path = Path(workdir) / f"{unit.name}.done"
        if not path.exists():
            raise SynthError(f"unit {unit.name} is not done", where=str(workdir))
        out.append(UnitResult(**json.loads(path.read_text())))
    return out

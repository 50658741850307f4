"""Run one command as a child process and measure it the same way for every tool.

CPU time and peak RSS come from ``os.wait4`` on the child: the kernel's own accounting of the
child and every descendant it waited for (user+sys summed; ``ru_maxrss`` is the largest single
process of that tree, not a sum). Wall time is measured around the whole child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Measurement", "run_measured"]


@dataclass
class Measurement:
    """What one child process cost."""

    command: list[str]
    returncode: int
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    stdout_tail: str = ""
    stderr_tail: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def to_dict(self) -> dict:
        return asdict(self)


def _maxrss_mb(ru_maxrss: int) -> float:
    # Linux reports KiB, macOS bytes.
    return ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)


def _tail(path: Path, n: int = 4000) -> str:
    data = path.read_bytes()
    return data[-n:].decode(errors="replace")


def run_measured(
    command: list[str], *, cwd: Path | None = None, env: dict | None = None,
    timeout: float | None = None, stdout_path: Path | None = None,
) -> Measurement:
    """Run ``command`` to completion and return its CPU, wall time and peak RSS.

    Parameters
    ----------
    command
        Program and arguments (no shell).
    stdout_path
        Where the child's stdout goes (some tools print their reads there); default: a
        temporary file of which the last 4 KB are kept.
    timeout
        Seconds before the child is killed (the measurement then has a negative returncode).
    """
    if not command:
        raise ValueError("empty command")
    # Dirty pages of earlier runs (a gigabyte of reads) would otherwise be written back
    # while this one runs, and its writes throttled: every run starts from a clean cache.
    os.sync()
    with tempfile.TemporaryDirectory(prefix="bench-io-") as tmp:
        out_path = Path(stdout_path) if stdout_path else Path(tmp) / "stdout"
        err_path = Path(tmp) / "stderr"
        with open(out_path, "wb") as out_fh, open(err_path, "wb") as err_fh:
            t0 = time.perf_counter()
            proc = subprocess.Popen([str(c) for c in command], cwd=cwd, env=env,
                                    stdout=out_fh, stderr=err_fh, stdin=subprocess.DEVNULL)
            timer = None
            if timeout is not None:
                timer = threading.Timer(timeout, proc.kill)
                timer.start()
            # wait4 on this very child: its own rusage, independent of any other child
            # this process has (the Prefect server, earlier tools).
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            if timer is not None:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
        return Measurement(
            command=[str(c) for c in command], returncode=proc.returncode,
            wall_s=round(wall, 3), cpu_s=round(ru.ru_utime + ru.ru_stime, 3),
            user_s=round(ru.ru_utime, 3), sys_s=round(ru.ru_stime, 3),
            peak_rss_mb=round(_maxrss_mb(ru.ru_maxrss), 1),
            stdout_tail="" if stdout_path else _tail(out_path),
            stderr_tail=_tail(err_path),
        )

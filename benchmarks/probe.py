"""How much this machine slows a core when the other core is busy too.

The scaling target compares one worker (one busy core) with two (both busy). On a shared
virtual machine the second busy core can cost the first one speed the code has no part in
(another tenant on the host, memory bandwidth): the flow's ratio cannot be better than the
machine allows. So each flow round first runs a fixed CPU kernel (random draws, a gather,
zlib level 1 and md5 over the same bytes: the kinds of work a unit does) alone, then two
copies at once, and reports how much more CPU each copy needed:
``slowdown = mean(CPU of the two copies) / CPU alone`` (1.0 on a machine with two free cores).

``python -m benchmarks.probe [--rounds N]`` runs the kernel once and prints its CPU seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .measure import run_measured

__all__ = ["kernel", "concurrency_probe"]


def kernel(*, rounds: int = 12) -> float:
    """Run the fixed workload; returns its CPU seconds (this process, after imports)."""
    import numpy as np

    rng = np.random.default_rng(7)
    table = rng.integers(0, 256, size=1 << 22, dtype=np.uint8)
    c0 = time.process_time()
    for _ in range(rounds):
        idx = rng.integers(0, len(table), size=1 << 22)
        data = np.take(table, idx).tobytes()
        zlib.compress(data, 1)
        hashlib.md5(data).digest()
    return time.process_time() - c0


def _child(rounds: int, tmp: Path, tag: str) -> dict:
    out = tmp / f"{tag}.json"
    cmd = [sys.executable, "-m", "benchmarks.probe", "--rounds", str(rounds)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    m = run_measured(cmd, env=env, stdout_path=out, timeout=600)
    if not m.ok:
        raise RuntimeError(f"probe kernel failed (exit {m.returncode}): {m.stderr_tail[-400:]}")
    return json.loads(out.read_text())


def concurrency_probe(*, rounds: int = 12) -> dict:
    """The kernel alone, then two copies at once (child processes).

    Returns
    -------
    dict
        ``alone_cpu_s``, ``together_cpu_s`` (two values) and ``slowdown``.
    """
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as tmp:
        alone = _child(rounds, Path(tmp), "alone")["cpu_s"]
        with ThreadPoolExecutor(2) as pool:  # a child's error is raised here
            together = [r["cpu_s"] for r in pool.map(
                lambda i: _child(rounds, Path(tmp), f"pair{i}"), range(2))]
    return {"alone_cpu_s": round(alone, 3), "together_cpu_s": [round(c, 3) for c in together],
            "slowdown": round(sum(together) / 2 / alone, 3)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.probe")
    p.add_argument("--rounds", type=int, default=12)
    args = p.parse_args(argv)
    sys.stdout.write(json.dumps({"cpu_s": kernel(rounds=args.rounds)}) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

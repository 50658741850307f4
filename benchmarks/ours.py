"""Our generator as the benchmark runs it: each mode is a child process printing one JSON line.

Modes (``python -m benchmarks.ours MODE ...``):

- ``serial``: ``plan_dataset`` + ``run_unit`` per unit + the merge in one process, one core,
  as ``synthlib.generate.generate_local`` runs them (units stream their FASTQ and BAM into
  the final files), with the phases timed (wall and this process's CPU).
- ``ceiling``: the cost of BGZF-compressing the same FASTQ bytes alone (``synthlib.io.bgzf``):
  generation can never be cheaper than this, so ``pairs/CPU-s`` of generation over this
  ceiling says how much of the cost is the simulation itself.
- ``flow``: the Prefect+Dask flow (``flows.generate_dataset.run_generate``) on a LocalCluster
  of N single-threaded worker processes started here (same settings as
  ``flows.runtime.dask_task_runner``), so that after the run every worker can report its own
  peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``), exact rather than polled.
- ``profile``: cProfile of ``run_unit`` on the plan's largest unit; top functions by cumulative
  time.

Running each mode as a child keeps the accounting identical to the peers' (``os.wait4``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import shutil
import sys
import time
from pathlib import Path

import yaml

# As the CLI (synthlib.cli) and every Dask worker (distributed's nanny.pre-spawn-environ) run:
# no BLAS thread pool spinning beside the generator. Set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__all__ = ["build_spec", "write_spec", "LEARNED_MODEL"]

#: The learned preset (from real NA12878 HiSeq X reads; see synthlib/data/models/README.md).
LEARNED_MODEL = "illumina-2x150"


def build_spec(*, reference: Path, coverage: float, bam: bool, seed: int = 42,
               read_length: int = 150, fragment_mean: float = 350, fragment_sd: float = 50,
               model: str = LEARNED_MODEL, chunk_size: int = 1_000_000,
               spec_id: str = "bench") -> dict:
    """The benchmark spec as a plain document (validated by ``synthlib.spec.parse_spec``).

    No population background (a custom reference has no sites VCF); random SNVs and short
    indels at about the density wgsim/DWGSIM mutate (1e-3 per base, 10% indels) so that every
    tool carries variants through its reads.
    """
    from synthlib.reference import Reference

    bases = sum(Reference(Path(reference)).lengths.values())
    n_var = max(10, int(bases * 1e-3))
    return {
        "id": spec_id,
        "version": "1.0.0",
        "seed": seed,
        "reason": "benchmark workload (benchmarks/run.py)",
        "reference": {"name": str(Path(reference).resolve())},
        "coverage": coverage,
        "reads": {"length": read_length, "model": model},
        "fragment": {"mean": fragment_mean, "sd": fragment_sd},
        "germline": {"source": "none"},
        "variants": {"random": [
            {"type": "snv", "count": min(1_000_000, int(n_var * 0.9)), "genotype": "mixed"},
            {"type": "insertion", "count": max(1, n_var // 20), "max_size": 10},
            {"type": "deletion", "count": max(1, n_var // 20), "max_size": 10},
        ]},
        "outputs": {"fastq": True, "bam": bam, "vcf": True},
        "chunk_size": chunk_size,
    }


def write_spec(doc: dict, *, path: Path) -> Path:
    """Validate ``doc`` and write it as a spec YAML (what the flow reads)."""
    from synthlib.spec import parse_spec

    parse_spec(doc, source=str(path))
    Path(path).write_text(yaml.safe_dump(doc, sort_keys=False))
    return Path(path)


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _plan(spec_path: Path):
    from synthlib.plan import plan_dataset
    from synthlib.spec import load_spec

    spec = load_spec(spec_path)
    return plan_dataset(spec, base_dir=Path(spec_path).parent)


def _serial(args) -> dict:
    from synthlib.allocator import keep_freed_memory
    from synthlib.generate import load_model, run_serial

    keep_freed_memory()  # as the CLI and the flows' unit tasks do

    cpu0, t0 = _cpu(), time.perf_counter()
    plan = _plan(args.spec)
    load_model(plan)  # read here, in the plan phase; run_serial gets the cached one
    cpu1, t1 = _cpu(), time.perf_counter()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    work = out / ".work"
    work.mkdir(parents=True)
    # As generate_local: units stream their FASTQ and BAM into the final files.
    results, files = run_serial(plan, workdir=work, out_dir=out)
    cpu2, t2 = _cpu(), time.perf_counter()
    shutil.rmtree(work)
    return {
        "pairs": sum(r.pairs for r in results),
        "units": len(plan.units),
        "files": {f: (out / f).stat().st_size for f in files},
        "phases": {
            "plan": {"wall_s": round(t1 - t0, 3), "cpu_s": round(cpu1 - cpu0, 3)},
            # Units stream into the final files, so their merge is not a phase of its own.
            "units": {"wall_s": round(t2 - t1, 3), "cpu_s": round(cpu2 - cpu1, 3)},
        },
        "generation_cpu_s": round(cpu2 - cpu0, 3),
        "peak_rss_mb": round(_maxrss_mb(), 1),
    }


def _ceiling(args) -> dict:
    from synthlib.io import bgzf

    data = b"".join(gzip.open(p, "rb").read() for p in args.fastq)
    cpu0, t0 = _cpu(), time.perf_counter()
    compressed = sum(len(bgzf.compress(data[i : i + (16 << 20)]))
                     for i in range(0, len(data), 16 << 20))
    cpu1, t1 = _cpu(), time.perf_counter()
    return {"fastq_bytes": len(data), "compressed_bytes": compressed,
            "cpu_s": round(cpu1 - cpu0, 3), "wall_s": round(t1 - t0, 3),
            "mb_per_cpu_s": round(len(data) / 1e6 / max(cpu1 - cpu0, 1e-9), 1)}


def _worker_usage() -> dict:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return {"maxrss_mb": ru.ru_maxrss / 1024, "cpu_s": ru.ru_utime + ru.ru_stime}


def _flow(args) -> dict:
    from distributed import Client, LocalCluster

    from flows.generate_dataset import run_generate
    from flows.runtime import dask_task_runner, ensure_api

    t0 = time.perf_counter()
    ensure_api()
    t_api = time.perf_counter() - t0
    kwargs = dict(dask_task_runner(workers=args.workers).cluster_kwargs)
    t1 = time.perf_counter()
    with LocalCluster(**kwargs) as cluster, Client(cluster) as client:
        t_cluster = time.perf_counter() - t1
        dest = Path(args.out)
        shutil.rmtree(dest, ignore_errors=True)
        load0 = os.getloadavg()[0]
        t2 = time.perf_counter()
        final = run_generate(str(args.spec), dest=str(dest), workers=args.workers,
                             address=cluster.scheduler_address, overwrite=True,
                             qc=False)
        wall = time.perf_counter() - t2
        usage = list(client.run(_worker_usage).values())
    manifest = json.loads((Path(final) / "manifest.json").read_text())
    return {
        "workers": args.workers,
        "wall_s": round(wall, 3),
        "api_start_s": round(t_api, 3),
        "cluster_start_s": round(t_cluster, 3),
        "pairs": manifest["run"]["pairs"],
        "units": manifest["plan"]["units"],
        "unit_seconds": manifest["run"].get("unit_seconds"),
        "worker_peak_rss_mb": sorted(round(u["maxrss_mb"], 1) for u in usage),
        "worker_cpu_s": sorted(round(u["cpu_s"], 2) for u in usage),
        # Other work on the machine stretches wall times: keep the load next to them.
        "loadavg_1min": [round(load0, 2), round(os.getloadavg()[0], 2)],
        "flow_process_peak_rss_mb": round(_maxrss_mb(), 1),
    }


def _profile(args) -> dict:
    from synthlib.allocator import keep_freed_memory
    from synthlib.generate import load_model, run_unit

    keep_freed_memory()

    plan = _plan(args.spec)
    model = load_model(plan)
    unit = max(plan.units, key=lambda u: u.territory_bases)
    work = Path(args.out)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    import cProfile  # here: the other modes' start-up is part of what they measure
    import io
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    result = run_unit(plan, unit, workdir=work, model=model)
    prof.disable()
    shutil.rmtree(work)
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream)
    stats.sort_stats("cumulative").print_stats(args.top + 15)
    stats.sort_stats("tottime").print_stats(args.top + 15)
    rows = [{"function": f"{Path(file).name}:{line}({func})", "calls": nc,
             "tottime_s": round(tt, 3), "cumtime_s": round(ct, 3)}
            for (file, line, func), (_cc, nc, tt, ct, _callers) in stats.stats.items()]
    return {"unit": unit.name, "pairs": result.pairs, "seconds": round(result.seconds, 3),
            "top_cumulative": sorted(rows, key=lambda r: -r["cumtime_s"])[: args.top],
            "top_own": sorted(rows, key=lambda r: -r["tottime_s"])[: args.top],
            "text": stream.getvalue()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ours")
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("serial")
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p = sub.add_parser("ceiling")
    p.add_argument("fastq", type=Path, nargs="+")
    p = sub.add_parser("flow")
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--workers", type=int, default=2)
    p = sub.add_parser("profile")
    p.add_argument("--spec", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    result = {"serial": _serial, "ceiling": _ceiling, "flow": _flow, "profile": _profile}[
        args.mode](args)
    sys.stdout.write("BENCH-RESULT " + json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

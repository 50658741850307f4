"""The ``cohort_study`` flow: a cohort spec to a joint truth VCF, samples table and burden study.

Plan on a worker; simulate every (region x sample block) unit as a Dask task; merge each region
into a VCF shard as soon as its blocks are done; assemble ``cohort.vcf.gz``, write
``samples.tsv`` and run the burden study; write ``manifest.json`` last; promote the staging
folder to ``<dest>/<id>/<version>/`` in one rename.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from synthlib.catalog import resolve_spec
from synthlib.cohort.study import (
    COHORT_FILES,
    CohortStudyPlan,
    RegionResult,
    finish_cohort,
    merge_region,
    plan_cohort_study,
    run_block,
    write_cohort_manifest,
)
from synthlib.generate import dataset_dir, staged, write_manifest

from .generate_dataset import (
    _tick,
    merged,
    promote_task,
    submit_merges,
    submit_units,
    unit_results,
)
from .runtime import Shipped, dask_task_runner, run_on_dask

__all__ = ["cohort_study", "run_cohort_study"]


@task(cache_policy=NO_CACHE)
def cohort_plan_task(spec_ref: str) -> CohortStudyPlan:
    spec, base_dir = resolve_spec(spec_ref)
    return plan_cohort_study(spec, base_dir=base_dir)


@task(cache_policy=NO_CACHE)
def block_task(plan: Shipped[CohortStudyPlan], index: int, workdir: str) -> float:
    t0 = time.perf_counter()
    run_block(plan.value, index, workdir=Path(workdir))
    return time.perf_counter() - t0


@task(cache_policy=NO_CACHE)
def region_task(plan: Shipped[CohortStudyPlan], region_index: int, workdir: str
                ) -> RegionResult:
    return merge_region(plan.value, region_index, workdir=Path(workdir))


@task(cache_policy=NO_CACHE)
def finish_task(
    plan: CohortStudyPlan, regions: list[RegionResult], staging: str
) -> tuple[list[str], dict]:
    return finish_cohort(plan, regions=regions, out_dir=Path(staging))


def _sample_reads(plan: CohortStudyPlan, *, staging: Path, work: Path, futures: list,
                  workers: int) -> list[str]:
    """Reads for the chosen samples: each is an ordinary dataset (units as Dask tasks, then a
    merge) whose background is its own column of the joint VCF, under ``samples/<id>/``."""
    from synthlib.cohort.reads import extract_sample_vcf, read_sample_ids, sample_spec
    from synthlib.plan import plan_dataset

    ids = read_sample_ids(plan.spec, list(plan.samples))
    plans = []
    for index, sample in enumerate(ids):
        gvcf = extract_sample_vcf(joint_vcf=staging / COHORT_FILES["vcf"], sample=sample,
                                  out=work / f"{sample}.genotypes.vcf.gz")
        sspec = sample_spec(plan.spec, sample=sample, index=index, genotypes_vcf=gvcf)
        (work / sample).mkdir()
        plans.append((sample, plan_dataset(sspec, base_dir=plan.base_dir)))
    ships = {s: Shipped(sp) for s, sp in plans}
    units = {s: submit_units(ships[s], str(work / s), workers=workers) for s, _ in plans}
    futures += [fut for futs in units.values() for fut in futs]
    for i, (s, futs) in enumerate(units.items()):
        unit_results(ships[s], str(work / s), futs)
        _tick("sample reads", i + 1, len(units))
    written = []
    merges = {}
    for sample, _ in plans:
        out = staging / "samples" / sample
        out.mkdir(parents=True)
        merges[sample] = submit_merges(ships[sample], str(work / sample), str(out),
                                       workers=workers)
    futures += [f for fs in merges.values() for f in fs]
    for sample, sp in plans:
        out = staging / "samples" / sample
        digests = merged(merges[sample])
        write_manifest(sp, out_dir=out, files=list(digests), run={"executor": "prefect+dask"},
                       digests=digests)
        written += [f"samples/{sample}/{name}" for name in [*digests, "manifest.json"]]
    return written


def _cohort_qc(plan: CohortStudyPlan, *, staging: Path, base: dict, futures: list
               ) -> tuple[dict, list[str]]:
    """Every per-sample dataset QC'd as a Dask task (``flows.qc_dataset.qc_task``), then the
    cohort checks and the aggregate verdict (``synthlib.qc.cohort``)."""
    from synthlib.qc.cohort import finish_cohort_qc, sample_dirs

    from .qc_dataset import qc_task

    dirs = sample_dirs(staging)
    subs = [qc_task.submit(str(d), None, None, str(plan.base_dir)) for d in dirs]
    futures += subs
    per_sample = {}
    for i, (d, fut) in enumerate(zip(dirs, subs, strict=True)):
        r = fut.result()
        per_sample[d.name] = {**r, "qc_json": str(Path(r["qc_json"]).relative_to(staging))}
        _tick("sample qc", i + 1, len(subs))
    return finish_cohort_qc(cohort_dir=staging, base=base, samples=per_sample)


@flow(name="cohort-study", task_runner=dask_task_runner())
def cohort_study(
    spec: str = "tof-cohort-demo", dest: str = "out", workers: int = 2, overwrite: bool = False,
    qc_samples: bool = True,
) -> str:
    """Generate a cohort dataset into ``<dest>/<id>/<version>/`` and return that folder.

    Parameters
    ----------
    spec
        Catalog id or path to a spec YAML with a ``cohort:`` section.
    dest
        Local folder standing in for the bucket.
    workers
        Recorded in the manifest (the cluster itself is the task runner's).
    overwrite
        Replace an existing dataset folder of the same id and version.
    qc_samples
        QC every per-sample dataset (a Dask task each) and aggregate the verdicts with the
        cohort checks into the manifest's ``qc`` (``synthlib.qc.cohort``).
    """
    t0 = time.perf_counter()
    plan = cohort_plan_task(spec)
    final = dataset_dir(Path(dest), plan.spec)
    futures: list = []
    with staged(final) as (staging, work):
        try:
            shipped = Shipped(plan)
            blocks = [block_task.submit(shipped, i, str(work)) for i in range(len(plan.units))]
            futures += blocks
            # Each region merges once its own blocks are done, while other regions still run.
            merges = [
                region_task.submit(shipped, k, str(work),
                                   wait_for=[blocks[i] for i in plan.units_of(k)])
                for k in range(len(plan.regions))
            ]
            futures += merges
            unit_seconds = 0.0
            for i, fut in enumerate(blocks):
                unit_seconds += fut.result()
                _tick("units", i + 1, len(blocks))
            regions = [m.result() for m in merges]
            _tick("merge", 1, 1)
            files, qc = finish_task(plan, regions, str(staging))
            files += _sample_reads(plan, staging=staging, work=work, futures=futures,
                                   workers=workers)
            if qc_samples:
                qc, qc_files = _cohort_qc(plan, staging=staging, base=qc, futures=futures)
                files += qc_files
        except BaseException:
            wait(futures)  # let running tasks finish before their folder is removed
            raise
        run = {
            "executor": "prefect+dask",
            "workers": workers,
            "seconds": round(time.perf_counter() - t0, 2),
            "unit_seconds": round(unit_seconds, 2),
        }
        write_cohort_manifest(plan, out_dir=staging, files=files, run=run, qc=qc)
    return promote_task(str(staging), str(final), overwrite)


def run_cohort_study(
    spec: str,
    *,
    dest: str,
    workers: int = 2,
    address: str | None = None,
    overwrite: bool = False,
    qc_samples: bool = True,
) -> Path:
    """Run the flow on a LocalCluster of ``workers`` processes, or on the scheduler at
    ``address`` (see :func:`flows.runtime.run_on_dask`)."""
    return Path(run_on_dask(cohort_study, workers=workers, address=address, spec=spec,
                            dest=dest, overwrite=overwrite, qc_samples=qc_samples))

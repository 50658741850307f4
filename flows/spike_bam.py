"""The ``spike-bam`` flow: spike a SpikeSpec's variants into real reads, re-call them, keep it.

Tasks: ``fetch_task`` (I/O: downloads URLs into the work folder; retried on network errors,
never on a 4xx or a certificate refusal), ``spike_task`` (one task: :func:`spike_bam` splices
all changes into one pass over the BGZF blocks, so per-region tasks would each rewrite the
whole file and their outputs could not be merged without a second splice), ``qc_task``
(bcftools re-call of the spiked regions, binomial VAF bounds, SV depth ratios, record
consistency). The manifest (``kind: spike``) is written last and the folder
``<dest>/<id>/<version>/`` appears atomically. A failed QC verdict still promotes the folder
(marked ``fail`` in the manifest, for inspection); callers decide what a failure means.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.tasks import exponential_backoff

from synthlib.errors import ReferenceDataError
from synthlib.generate import promote, staged, write_manifest_for
from synthlib.spike import spike_bam
from synthlib.spike.inputs import alignment_format, is_remote, localize
from synthlib.spike.qc import check_spike
from synthlib.spike.spec import (
    SpikeSpec,
    load_spike_spec,
    resolve_input,
    resolve_reference,
    write_variants_vcf,
)

from .runtime import dask_task_runner, run_on_dask, state_exception

__all__ = ["spike_bam_flow", "run_spike", "FILES"]

#: Output file names inside ``<dest>/<id>/<version>/`` (``bam`` becomes ``.cram`` for CRAM).
FILES = {"bam": "spiked.bam", "truth": "truth.vcf.gz", "calls": "qc/calls.vcf.gz",
         "qc": "qc/spike_qc.json"}

# Messages of failures that a retry cannot heal (fetch wraps everything in ReferenceDataError).
_FINAL = ("HTTP 4", "certificate not trusted", "CERTIFICATE_VERIFY_FAILED", "CA bundle",
          "checksum mismatch", "not found", "scheme")


def _is_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry network trouble (refused, reset, 5xx, cut short); not a 404 or an untrusted cert."""
    exc = state_exception(state)
    if isinstance(exc, ReferenceDataError):
        return not any(s in str(exc) for s in _FINAL)
    return isinstance(exc, OSError | ConnectionError | TimeoutError)


@task(cache_policy=NO_CACHE, retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=1),
      retry_jitter_factor=0.5, retry_condition_fn=_is_transient)
def fetch_task(spec: SpikeSpec, base_dir: str, work: str) -> dict[str, str]:
    """Local paths of the BAM (+index), reference (+indexes) and variants VCF."""
    base, scratch = Path(base_dir), Path(work)
    ref = resolve_reference(spec.reference, base_dir=base)
    ref_local = localize(ref, scratch=scratch, indexes=(".fai", ".gzi"))
    bam = resolve_input(spec.bam, base_dir=base, what="BAM")
    idx = (".crai",) if alignment_format(bam) == "cram" else (".bai",)
    bam_local = localize(bam, scratch=scratch, indexes=idx)
    if spec.variants.vcf is not None:
        vcf = localize(resolve_input(spec.variants.vcf, base_dir=base, what="variants VCF"),
                       scratch=scratch)
    else:
        vcf = write_variants_vcf(spec, reference=ref_local, path=scratch / "variants.vcf")
    return {"bam": str(bam_local), "reference": str(ref_local), "variants": str(vcf),
            "bam_source": bam if is_remote(bam) else str(Path(bam).name)}


@task(cache_policy=NO_CACHE)
def spike_task(spec: SpikeSpec, inputs: dict[str, str], staging: str) -> dict:
    """Spike into ``staging/spiked.bam`` (or ``.cram``) with its truth VCF."""
    name = FILES["bam"].replace(".bam", f".{spec.output}")
    res = spike_bam(bam=inputs["bam"], reference=inputs["reference"],
                    variants=inputs["variants"], out=Path(staging) / name, seed=spec.seed,
                    truth_out=Path(staging) / FILES["truth"], min_mapq=spec.min_mapq)
    return res.to_dict()


@task(cache_policy=NO_CACHE)
def qc_task(spec: SpikeSpec, inputs: dict[str, str], spiked: dict, staging: str) -> dict:
    """Re-call and check (see :func:`synthlib.spike.qc.check_spike`); writes ``qc/``."""
    import json

    qc_dir = Path(staging) / "qc"
    out = check_spike(bam=Path(spiked["out"]), reference=Path(inputs["reference"]),
                      truth=Path(spiked["truth"]), workdir=qc_dir, thresholds=spec.qc,
                      min_mapq=spec.min_mapq)
    (qc_dir / "regions.bed").unlink(missing_ok=True)
    (qc_dir / "spike_qc.json").write_text(json.dumps(out, indent=2) + "\n")
    return out


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=2)
def promote_task(staging: str, final: str, overwrite: bool) -> str:
    promote(Path(staging), Path(final), overwrite=overwrite)
    return final


def _files(staging: Path) -> list[str]:
    return sorted(str(p.relative_to(staging)) for p in staging.rglob("*")
                  if p.is_file() and ".work" not in p.relative_to(staging).parts)


@flow(name="spike-bam", task_runner=dask_task_runner())
def spike_bam_flow(spec: str, dest: str = "out", overwrite: bool = False,
                   workers: int = 2) -> dict:
    """Spike the variants of the SpikeSpec YAML ``spec`` into ``<dest>/<id>/<version>/``.

    Parameters
    ----------
    spec
        Path of a SpikeSpec YAML (relative paths inside it are taken from its folder).
    dest
        Local folder the result goes under.
    overwrite
        Replace an existing folder of the same id and version.
    workers
        Recorded in the manifest (the cluster itself is the task runner's).

    Returns
    -------
    dict
        ``folder``, ``verdict`` (QC: ``pass``/``fail``/``not_run``), ``seconds`` (flow wall
        time), ``spike_seconds`` and ``seconds_per_spike``.
    """
    t0 = time.perf_counter()
    spike_spec = load_spike_spec(spec)
    base_dir = Path(spec).resolve().parent
    final = Path(dest) / spike_spec.id / spike_spec.version
    with staged(final) as (staging, work):
        inputs = fetch_task.submit(spike_spec, str(base_dir), str(work)).result()
        t_fetch = time.perf_counter() - t0
        spiked = spike_task.submit(spike_spec, inputs, str(staging)).result()
        qc = None
        if spike_spec.qc.enabled:
            qc = qc_task.submit(spike_spec, inputs, spiked, str(staging)).result()
        run = {"executor": "prefect+dask", "workers": workers,
               "seconds": round(time.perf_counter() - t0, 2),
               "fetch_seconds": round(t_fetch, 2),
               "spike_seconds": round(spiked["timings"].get("total", 0.0), 3),
               "seconds_per_spike": round(spiked["seconds_per_spike"], 4),
               "bam_source": inputs["bam_source"], "reason": spike_spec.reason}
        summary = {**spiked["totals"], "timings": spiked["timings"]}
        qc_block = ({"verdict": qc["verdict"], "metrics": qc["metrics"], "checks": qc["checks"]}
                    if qc else None)
        write_manifest_for(spike_spec, out_dir=staging, files=_files(staging), run=run,
                           plan_summary=summary, qc=qc_block, kind="spike")
    folder = promote_task(str(staging), str(final), overwrite)
    return {"folder": folder, "verdict": qc["verdict"] if qc else "not_run",
            "seconds": round(time.perf_counter() - t0, 2),
            "spike_seconds": run["spike_seconds"], "seconds_per_spike": run["seconds_per_spike"],
            "checks": qc["checks"] if qc else []}


def run_spike(spec: str, *, dest: str, workers: int = 1, address: str | None = None,
              overwrite: bool = False) -> dict:
    """Run :func:`spike_bam_flow` on a LocalCluster of ``workers`` processes, or on the
    scheduler at ``address`` (see :func:`flows.runtime.run_on_dask`). The spec is validated
    here first, so a bad field fails before any cluster starts."""
    load_spike_spec(spec)
    return run_on_dask(spike_bam_flow, workers=workers, address=address, spec=str(spec),
                       dest=str(dest), overwrite=overwrite)

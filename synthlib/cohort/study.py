"""A cohort dataset (a :class:`~synthlib.spec.DatasetSpec` with ``cohort:``) as steps a workflow
engine can run: plan, simulate blocks, merge regions, finish (joint VCF, samples, burden study,
QC), manifest.

``flows/cohort_study.py`` runs the blocks and regions as Dask tasks;
:func:`generate_cohort_local` runs the same steps serially. Work is defined by the spec (regions
x sample blocks), never by the workers, so the files are byte-identical on any cluster.

Files of a cohort dataset, in ``<dest>/<id>/<version>/``: ``cohort.vcf.gz`` (+ ``.tbi``),
``samples.tsv``, ``cohort.ped`` (pedigree), ``denovo.vcf.gz`` (+ ``.tbi``: the trio children's
de novo variants, ``SRC=denovo``), ``study/burden.tsv``, ``study/report.md``,
``study/report.html`` (only when the cohort has both cases and controls: a trio-only cohort has
nothing to test), per-sample reads under ``samples/<id>/`` (``cohort.reads_samples``) and
``manifest.json`` (written last).

Not imported by ``synthlib.cohort`` itself: :mod:`synthlib.spec` imports ``synthlib.cohort.spec``,
so this module (which needs ``DatasetSpec``) is imported explicitly.
"""

from __future__ import annotations

import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SpecError
from ..spec import DatasetSpec
from .burden import run_burden_study
from .genotypes import SOURCE_SPIKE, simulate_cohort_block
from .joint_vcf import assemble_joint_vcf, merge_blocks, write_denovo_vcf, write_vcf_shard
from .run import WorkUnit, plan_regions, work_units
from .samples import Sample, cohort_samples, write_ped, write_samples_tsv
from .sources import CohortInputs, Region, resolve_inputs
from .spikes import plan_spikes

__all__ = [
    "COHORT_FILES",
    "CohortStudyPlan",
    "RegionResult",
    "plan_cohort_study",
    "run_block",
    "merge_region",
    "finish_cohort",
    "write_cohort_manifest",
    "generate_cohort_local",
    "sample_reads_local",
]

#: Output file names inside ``<dest>/<id>/<version>/`` (the study's under ``study/``).
COHORT_FILES = {
    "vcf": "cohort.vcf.gz",
    "tbi": "cohort.vcf.gz.tbi",
    "samples": "samples.tsv",
    "ped": "cohort.ped",
    "denovo": "denovo.vcf.gz",
    "denovo_tbi": "denovo.vcf.gz.tbi",
    "burden": "study/burden.tsv",
    "report_md": "study/report.md",
    "report_html": "study/report.html",
}


@dataclass(frozen=True)
class CohortStudyPlan:
    """Everything a worker needs, small enough to ship to it.

    Attributes
    ----------
    spec, base_dir : the dataset spec and the folder its relative paths start from
    inputs : resolved local files (FASTA, sites/panel VCF, exon BED)
    samples : (n_samples,) every sample, in joint VCF column order
    regions : regions in reference order (the joint VCF's order)
    units : regions x sample blocks, region-major; unit ``i`` writes ``u{i:06d}.pkl``
    n_spikes : damaging variants planned over all burden genes (all regions)
    reads : the per-sample read plan and its cost (reads for ``cohort.reads_samples`` samples)
    """

    spec: DatasetSpec
    base_dir: Path
    inputs: CohortInputs
    samples: tuple[Sample, ...]
    regions: tuple[Region, ...]
    units: tuple[WorkUnit, ...]
    n_spikes: int
    reads: dict = field(default_factory=dict)

    def units_of(self, region_index: int) -> list[int]:
        """Indices of the units of one region, in sample order."""
        name = self.regions[region_index].name
        return [i for i, u in enumerate(self.units) if u.region == name]

    def to_dict(self) -> dict:
        """The manifest's ``plan`` section."""
        return {
            "units": len(self.units),
            "regions": [r.name for r in self.regions],
            "samples": len(self.samples),
            "sample_block": self.spec.cohort.sample_block if self.spec.cohort else None,
            "spikes": self.n_spikes,
            "reads": self.reads,
        }


@dataclass(frozen=True)
class RegionResult:
    """One merged region: its VCF shard (BGZF body, no EOF), sites and spike carriers."""

    region: str
    shard: Path
    n_sites: int
    spike_carriers: int


def _read_plan(spec: DatasetSpec, base_dir: Path, n_samples: int) -> dict:
    out = spec.outputs
    limit = spec.cohort.reads_samples if spec.cohort else 0
    with_reads = 0 if not (out.fastq or out.bam) else (
        n_samples if limit is None else min(limit, n_samples))
    info: dict = {"requested": out.fastq or out.bam, "samples_with_reads": with_reads}
    if not info["requested"]:
        return info
    # One sample's read plan is what every sample costs: same territory, depth and reads.
    from ..plan import plan_dataset

    single = spec.model_copy(update={"cohort": None})
    cost = plan_dataset(single, base_dir=base_dir).cost().to_dict()
    info.update(
        per_sample=cost,
        total={k: v * with_reads for k, v in cost.items()},
        all_samples={k: v * n_samples for k, v in cost.items()},
        note="reads are generated for `samples_with_reads` samples (cohort.reads_samples) "
        "under samples/<id>/; all_samples is the cost of reads for every sample",
    )
    return info


def plan_cohort_study(spec: DatasetSpec, *, base_dir: Path | None = None) -> CohortStudyPlan:
    """Resolve inputs, order regions, cut regions x sample blocks, count the planned spikes.

    Raises
    ------
    SpecError
        The spec has no ``cohort`` section or its regions are bad; ``ReferenceDataError`` and
        ``SpecError`` from the inputs (missing files, a burden gene not in the exon BED).
    """
    if spec.cohort is None:
        raise SpecError("the spec has no 'cohort' section", where="cohort")
    base_dir = Path(base_dir or ".")
    cohort = spec.cohort
    inputs = resolve_inputs(cohort, reference=spec.reference.name, base_dir=base_dir)
    regions = plan_regions(list(spec.reference.regions), fasta=inputs.fasta)
    samples = cohort_samples(cohort, seed=spec.seed)
    units = work_units(cohort, seed=spec.seed, regions=[r.name for r in regions])
    spikes = plan_spikes(cohort, seed=spec.seed, inputs=inputs, samples=samples)
    return CohortStudyPlan(
        spec=spec,
        base_dir=base_dir,
        inputs=inputs,
        samples=tuple(samples),
        regions=tuple(regions),
        units=tuple(units),
        n_spikes=len(spikes),
        reads=_read_plan(spec, base_dir, len(samples)),
    )


def _block_path(workdir: Path, index: int) -> Path:
    return Path(workdir) / f"u{index:06d}.pkl"


def run_block(plan: CohortStudyPlan, index: int, *, workdir: Path) -> Path:
    """Simulate unit ``index`` and save its genotype block in ``workdir``; return the file."""
    unit = plan.units[index]
    block = simulate_cohort_block(
        plan.spec.cohort,
        region=unit.region,
        sample_ids=unit.sample_ids,
        seed=plan.spec.seed,
        reference=plan.spec.reference.name,
        base_dir=plan.base_dir,
    )
    path = _block_path(workdir, index)
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as fh:  # our own work files, read back by merge_region only
        pickle.dump(block, fh, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(tmp, path)
    return path


def merge_region(plan: CohortStudyPlan, region_index: int, *, workdir: Path) -> RegionResult:
    """Merge the saved blocks of one region and write its VCF shard in ``workdir``."""
    blocks = []
    for i in plan.units_of(region_index):
        with _block_path(workdir, i).open("rb") as fh:
            blocks.append(pickle.load(fh))
    order = [s.sample for s in plan.samples]
    merged = merge_blocks(blocks, sample_order=order)
    shard = write_vcf_shard(
        merged, sample_order=order, path=Path(workdir) / f"r{region_index:06d}.vcf.bgzf"
    )
    spiked = merged.source == SOURCE_SPIKE
    carriers = int(merged.haps[:, spiked].sum()) if spiked.any() else 0
    return RegionResult(plan.regions[region_index].name, shard, int(merged.pos.size), carriers)


def finish_cohort(
    plan: CohortStudyPlan, *, regions: list[RegionResult], out_dir: Path
) -> tuple[list[str], dict]:
    """Write the joint VCF, ``samples.tsv`` and the burden study into ``out_dir``.

    Returns
    -------
    files, qc
        Paths written (relative to ``out_dir``) and the cohort-level QC: ``pass`` when every
        planned damaging variant is in the joint VCF with its carrier and the VCF has sites.
    """
    if [r.region for r in regions] != [r.name for r in plan.regions]:
        raise SpecError("region results are missing or out of reference order")
    out_dir = Path(out_dir)
    contigs = list(dict.fromkeys(r.chrom for r in plan.regions))
    assemble_joint_vcf(
        [r.shard for r in regions],
        samples=plan.samples,
        fasta=plan.inputs.fasta,
        contigs=contigs,
        path=out_dir / COHORT_FILES["vcf"],
    )
    write_samples_tsv(list(plan.samples), out_dir / COHORT_FILES["samples"])
    write_ped(list(plan.samples), out_dir / COHORT_FILES["ped"])
    n_denovo = write_denovo_vcf(joint_vcf=out_dir / COHORT_FILES["vcf"],
                                path=out_dir / COHORT_FILES["denovo"])
    cohort = plan.spec.cohort
    n_sites = sum(r.n_sites for r in regions)
    carriers = sum(r.spike_carriers for r in regions)
    metrics = {
        "samples": len(plan.samples),
        "sites": n_sites,
        "de_novo": n_denovo,
        "spikes_planned": plan.n_spikes,
        "spike_carriers_in_vcf": carriers,
    }
    files = [k for k in COHORT_FILES.values() if not k.startswith("study/")]
    if cohort.n_cases > 0 and cohort.n_controls > 0:  # else nothing to test
        res = run_burden_study(
            joint_vcf=out_dir / COHORT_FILES["vcf"],
            samples_tsv=out_dir / COHORT_FILES["samples"],
            genes_bed=plan.inputs.genes_bed,
            out_dir=out_dir / "study",
            max_af=cohort.max_af,
            gene_column=cohort.gene_column,
        )
        spiked_genes = [g.gene for g in cohort.burden]
        metrics.update({
            "genes_tested": res.n_tested,
            "bonferroni_threshold": res.threshold,
            "significant_genes": list(res.significant),
            "spiked_genes_significant": [g for g in spiked_genes if g in res.significant],
            "unspiked_genes_significant": [g for g in res.significant if g not in spiked_genes],
        })
        files = list(COHORT_FILES.values())
    # The verdict checks the data, not the study's power: a small cohort may miss a gene.
    ok = carriers == plan.n_spikes and n_sites > 0
    qc = {"verdict": "pass" if ok else "fail", "metrics": metrics}
    return sorted(files), qc


def write_cohort_manifest(
    plan: CohortStudyPlan, *, out_dir: Path, files: list[str], run: dict, qc: dict
) -> Path:
    """Write ``manifest.json`` last (format ``synthlib.manifest/1``, as for single samples)."""
    from ..generate import write_manifest_for

    return write_manifest_for(plan.spec, out_dir=out_dir, files=files, run=run, qc=qc,
                              plan_summary=plan.to_dict(), kind="cohort")


def sample_reads_local(plan: CohortStudyPlan, *, staging: Path, work: Path) -> list[str]:
    """Reads of the chosen samples (``cohort.reads_samples``), serially: each sample is an
    ordinary dataset whose background is its column of ``staging/cohort.vcf.gz``, written
    under ``staging/samples/<id>/``. Returns the paths written, relative to ``staging``."""
    from ..generate import merge_units, run_unit, write_manifest
    from .reads import plan_sample_reads

    written: list[str] = []
    plans = plan_sample_reads(plan.spec, samples=list(plan.samples), base_dir=plan.base_dir,
                              joint_vcf=Path(staging) / COHORT_FILES["vcf"], work=Path(work))
    for sample, sp in plans:
        for unit in sp.units:
            run_unit(sp, unit, workdir=Path(work) / sample)
        out = Path(staging) / "samples" / sample
        out.mkdir(parents=True)
        names = merge_units(sp, workdir=Path(work) / sample, out_dir=out)
        write_manifest(sp, out_dir=out, files=names, run={"executor": "local", "workers": 1})
        written += [f"samples/{sample}/{name}" for name in [*names, "manifest.json"]]
    return written


def generate_cohort_local(
    plan: CohortStudyPlan, *, dest: Path, overwrite: bool = False, qc: bool = True
) -> Path:
    """Generate a cohort dataset serially in this process (no Prefect, no Dask).

    With ``qc`` every per-sample dataset is QC'd (``synthlib.qc.run.run_qc``) and the cohort
    manifest's ``qc`` aggregates them with the cohort checks (``synthlib.qc.cohort``).
    """
    from ..generate import dataset_dir, promote, staged

    final = dataset_dir(dest, plan.spec)
    t0 = time.perf_counter()
    with staged(final) as (staging, work):
        for i in range(len(plan.units)):
            run_block(plan, i, workdir=work)
        regions = [merge_region(plan, k, workdir=work) for k in range(len(plan.regions))]
        files, verdict = finish_cohort(plan, regions=regions, out_dir=staging)
        files += sample_reads_local(plan, staging=staging, work=work)
        if qc:
            from ..qc.cohort import finish_cohort_qc, qc_cohort_samples

            per_sample = qc_cohort_samples(cohort_dir=staging, base_dir=plan.base_dir)
            verdict, qc_files = finish_cohort_qc(cohort_dir=staging, base=verdict,
                                                 samples=per_sample)
            files += qc_files
        run = {"executor": "local", "workers": 1,
               "seconds": round(time.perf_counter() - t0, 2)}
        write_cohort_manifest(plan, out_dir=staging, files=files, run=run, qc=verdict)
    promote(staging, final, overwrite=overwrite)
    return final

"""Per-sample reads of a cohort: each chosen sample becomes an ordinary dataset spec whose
germline background is that sample's column of the joint truth VCF."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools

from ..spec import DatasetSpec, parse_spec

__all__ = ["read_sample_ids", "sample_spec", "extract_sample_vcf", "plan_sample_reads",
           "READS_STREAM"]

#: Spawn-key stream of per-sample seeds (distinct from every stream of synthlib.plan.Streams).
READS_STREAM = 5


def read_sample_ids(spec: DatasetSpec, samples: list) -> list[str]:
    """Samples that get reads: cases and controls alternately, up to ``cohort.reads_samples``.

    Parameters
    ----------
    samples
        ``Sample`` records in joint-VCF column order (parents of trios count as controls).
    """
    cohort = spec.cohort
    if cohort is None or not (spec.outputs.fastq or spec.outputs.bam):
        return []
    cases = [s.sample for s in samples if s.role == "case"]
    others = [s.sample for s in samples if s.role != "case"]
    order = [x for pair in zip(cases, others, strict=False) for x in pair]
    longer = cases if len(cases) > len(others) else others
    order += longer[min(len(cases), len(others)):]
    limit = cohort.reads_samples
    return order if limit is None else order[:limit]


def _slug(sample: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", sample.lower()).strip("-")


def sample_spec(spec: DatasetSpec, *, sample: str, index: int, genotypes_vcf: Path
                ) -> DatasetSpec:
    """The single-sample spec of one cohort member: same reference, assay, depth and reads;
    background = the sample's own genotypes; its own seed (from the cohort seed and index)."""
    seed = int(np.random.SeedSequence(spec.seed, spawn_key=(READS_STREAM, index))
               .generate_state(1, np.uint64)[0] >> 1)
    data = spec.model_dump(mode="json", exclude={"cohort", "somatic"})
    data.update(
        id=f"{spec.id}-{_slug(sample)}"[:64].rstrip("-"),
        seed=seed,
        germline={"source": "sample", "vcf": str(genotypes_vcf), "sample": sample,
                  "max_indel": spec.cohort.max_indel},
        variants={},
        outputs={**data["outputs"], "vcf": True},
    )
    return parse_spec(data, source=f"cohort sample {sample}")


def extract_sample_vcf(*, joint_vcf: Path, sample: str, out: Path) -> Path:
    """One sample's column of the joint VCF (bgzipped, indexed), so each sample's read units
    parse one genotype column instead of the whole cohort's."""
    pysam.bcftools.view("-s", sample, "-Oz", "-o", str(out), str(joint_vcf), catch_stdout=False)
    pysam.tabix_index(str(out), preset="vcf", force=True)
    return out


def plan_sample_reads(spec: DatasetSpec, *, samples: list, base_dir: Path, joint_vcf: Path,
                      work: Path) -> list[tuple[str, object]]:
    """Single-sample plans of the samples that get reads (:func:`read_sample_ids`), in order.

    Each sample's genotype column is extracted to ``work/<sample>.genotypes.vcf.gz`` and an
    empty ``work/<sample>/`` is made for its read units. Any assay works (WGS, exome, panel):
    the sample spec keeps the cohort spec's reference regions, assay, depth and reads.

    Returns
    -------
    list of (sample id, :class:`synthlib.plan.Plan`)
    """
    from ..plan import plan_dataset

    out = []
    for index, sample in enumerate(read_sample_ids(spec, samples)):
        gvcf = extract_sample_vcf(joint_vcf=joint_vcf, sample=sample,
                                  out=Path(work) / f"{sample}.genotypes.vcf.gz")
        sspec = sample_spec(spec, sample=sample, index=index, genotypes_vcf=gvcf)
        (Path(work) / sample).mkdir(parents=True, exist_ok=True)
        out.append((sample, plan_dataset(sspec, base_dir=base_dir)))
    return out

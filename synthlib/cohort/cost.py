"""What a cohort entry costs: reads for the samples that get them (``cohort.reads_samples``).

``synth catalog list`` shows read pairs and output size per entry; a cohort (a trio too) costs
one single-sample dataset per sample with reads. Bundled references are planned exactly
(:func:`synthlib.cohort.study.plan_cohort_study`); remote ones are sized from the spec (regions,
whole autosomes by their GRCh38/GRCh37 lengths scaled to non-N bases).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SynthError
from ..spec import DatasetSpec

__all__ = ["cohort_estimate", "CONTIG_BP"]

#: Primary chromosome lengths (bp) of the remote references, for specs listing whole contigs.
_GRCH38 = [248_956_422, 242_193_529, 198_295_559, 190_214_555, 181_538_259, 170_805_979,
           159_345_973, 145_138_636, 138_394_717, 133_797_422, 135_086_622, 133_275_309,
           114_364_328, 107_043_718, 101_991_189, 90_338_345, 83_257_441, 80_373_285,
           58_617_616, 64_444_167, 46_709_983, 50_818_468, 156_040_895, 57_227_415]
_GRCH37 = [249_250_621, 243_199_373, 198_022_430, 191_154_276, 180_915_260, 171_115_067,
           159_138_663, 146_364_022, 141_213_431, 135_534_747, 135_006_516, 133_851_895,
           115_169_878, 107_349_540, 102_531_392, 90_354_753, 81_195_210, 78_077_248,
           59_128_983, 63_025_520, 48_129_895, 51_304_566, 155_270_560, 59_373_566]
_NAMES = [*(str(i) for i in range(1, 23)), "X", "Y"]
CONTIG_BP: dict[str, dict[str, int]] = {
    "grch38": {f"chr{n}": bp for n, bp in zip(_NAMES, _GRCH38, strict=True)},
    "grch37": {n: bp for n, bp in zip(_NAMES, _GRCH37, strict=True)},
}


def _samples_with_reads(spec: DatasetSpec) -> tuple[int, int]:
    from .samples import cohort_samples

    n = len(cohort_samples(spec.cohort, seed=spec.seed))
    if not (spec.outputs.fastq or spec.outputs.bam):
        return n, 0
    limit = spec.cohort.reads_samples
    return n, n if limit is None else min(limit, n)


def cohort_estimate(spec: DatasetSpec, *, base_dir: Path | None = None) -> dict:
    """Samples, samples with reads, and their total read pairs, output bytes and CPU-seconds.

    Raises
    ------
    SynthError
        Not a cohort spec, or a remote spec whose territory is not known offline.
    """
    if spec.cohort is None:
        raise SynthError("not a cohort spec", where="cohort")
    from ..resources import is_remote_reference

    n, with_reads = _samples_with_reads(spec)
    if not is_remote_reference(spec.reference.name):
        from .study import plan_cohort_study

        reads = plan_cohort_study(spec, base_dir=base_dir).reads
        total = reads.get("total", {"read_pairs": 0, "output_bytes": 0, "cpu_seconds": 0.0})
        return {"samples": n, "samples_with_reads": with_reads, "source": "plan", **total}
    from ..cost import GENOME_BP
    from ..intervals import parse_region
    from ..plan import BAM_BYTES_PER_PAIR, FASTQ_BYTES_PER_PAIR, PAIRS_PER_CPU_SECOND

    name = spec.reference.name
    lengths = CONTIG_BP.get(name, {})
    scale = GENOME_BP.get(name, 0) / max(sum(lengths.values()), 1)  # non-N share
    territory = 0
    for region in spec.reference.regions:
        chrom, s, e = parse_region(region)
        if s is None:
            if chrom not in lengths:
                raise SynthError(f"length of {chrom!r} in {name!r} not known offline",
                                 where="reference.regions")
            territory += int(lengths[chrom] * scale)
        else:
            territory += e - s
    if spec.assay.type != "wgs":
        # One member's exome/panel, sized like a single dataset from the target set's known
        # size (synthlib.cost; off-target reads over the whole genome), times the members.
        from ..cost import estimate

        single = spec.model_copy(update={
            "cohort": None, "reference": spec.reference.model_copy(update={"regions": []})})
        one = estimate(single, base_dir=base_dir)
        pairs = one["read_pairs"] * with_reads
        return {"samples": n, "samples_with_reads": with_reads, "source": "spec",
                "read_pairs": pairs, "territory_bases": one["territory_bp"] * with_reads,
                "output_bytes": one["output_bytes"] * with_reads,
                "cpu_seconds": round(pairs / PAIRS_PER_CPU_SECOND, 1)}
    pairs = int(round(spec.coverage * territory / (2 * spec.reads.length))) * with_reads
    per_pair = (FASTQ_BYTES_PER_PAIR if spec.outputs.fastq else 0) + (
        BAM_BYTES_PER_PAIR if spec.outputs.bam else 0)
    return {"samples": n, "samples_with_reads": with_reads, "source": "spec",
            "read_pairs": pairs, "territory_bases": territory * with_reads,
            "output_bytes": pairs * per_pair, "cpu_seconds": round(pairs / PAIRS_PER_CPU_SECOND, 1)}

"""Per-sample reads of a cohort: each sample's reads carry its own genotypes, spikes included."""

from __future__ import annotations

import json

import pysam
import yaml

from synthlib.cohort.study import COHORT_FILES

SPEC = {
    "id": "mini-cohort", "seed": 77, "reason": "test", "coverage": 30, "chunk_size": 250_000,
    "reference": {"name": "grch37-chr20-demo",
                  "regions": ["chr20:1,000,001-2,000,000", "chr20:9,995,001-11,095,000"]},
    "assay": {"type": "exome", "targets": "grch37-chr20-demo.exons", "padding": 100},
    "fragment": {"mean": 250, "sd": 50, "min": 100, "max": 800},
    "cohort": {"n_cases": 3, "n_controls": 3, "trios": 0, "ancestry": {"EUR": 1.0},
               "burden": [{"gene": "JAG1", "carrier_fraction_cases": 1.0,
                           "consequences": {"missense": 1.0}}],
               "reads_samples": 2, "sample_block": 3},
}


def test_chosen_samples_get_reads_with_their_genotypes(prefect_api, tmp_path):
    from flows.cohort_study import run_cohort_study

    spec = tmp_path / "mini-cohort.yaml"
    spec.write_text(yaml.safe_dump(SPEC))
    folder = run_cohort_study(str(spec), dest=str(tmp_path / "out"), workers=2)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["plan"]["reads"]["samples_with_reads"] == 2
    samples = sorted(p.name for p in (folder / "samples").iterdir())
    assert len(samples) == 2
    listed = {f["path"] for f in manifest["files"]}
    roles = {}
    with open(folder / COHORT_FILES["samples"]) as fh:
        for line in fh.read().splitlines()[1:]:
            cols = line.split("\t")
            roles[cols[0]] = cols[3]
    assert sorted(roles[s] for s in samples) == ["case", "control"]
    with pysam.VariantFile(str(folder / COHORT_FILES["vcf"])) as joint:
        spikes = [(r.pos, r.ref, r.alts[0], {s: r.samples[s]["GT"] for s in samples})
                  for r in joint if r.info.get("GENE") == "JAG1"]
    assert spikes
    for s in samples:
        for name in ("reads_R1.fastq.gz", "golden.bam", "truth.vcf.gz"):
            assert f"samples/{s}/{name}" in listed
        bam = folder / "samples" / s / "golden.bam"
        assert pysam.samtools.quickcheck(str(bam)) == ""
        with pysam.AlignmentFile(str(bam)) as fh:
            for pos, ref, alt, gts in spikes:
                if len(ref) != 1 or len(alt) != 1:
                    continue
                counts = fh.count_coverage("chr20", pos - 1, pos, quality_threshold=0)
                depth = sum(c[0] for c in counts)
                k = counts["ACGT".index(alt)][0]
                if any(gts[s]) and depth >= 10:
                    assert k >= 0.2 * depth, (s, pos, depth, k)  # the case carries it
                if not any(gts[s]):
                    assert k <= 0.05 * depth + 1, (s, pos, depth, k)  # the control does not

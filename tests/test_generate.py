"""The demo dataset: valid files, variants really in the reads, depth and inserts as asked.

Tolerances come from the model: binomial bounds for allele counts, standard errors for means.
"""

from __future__ import annotations

import gzip
import json
import math

import numpy as np
import pysam
import pysam.bcftools
import pytest

from synthlib.generate import FILES, generate_local
from synthlib.io.checksums import digest_file
from synthlib.plan import plan_dataset
from synthlib.reads.errormodel import ErrorModel
from synthlib.spec import parse_spec

Z = 4.5  # per-check bound; with ~1,000 checks the chance of a false alarm stays below 1%


def _truth(ds):
    with pysam.VariantFile(str(ds / FILES["vcf"])) as vcf:
        return [(r.chrom, r.pos - 1, r.ref, r.alts[0], r.samples[0]["GT"], r.info["SRC"])
                for r in vcf]


def test_files_are_valid_for_htslib(demo_dataset):
    assert pysam.samtools.quickcheck(str(demo_dataset / FILES["bam"])) == ""
    assert pysam.bcftools.view("-H", str(demo_dataset / FILES["vcf"])).count("\n") > 100
    for mate in ("r1", "r2"):  # bgzip-compatible gzip, readable by htslib
        with pysam.FastxFile(str(demo_dataset / FILES[mate])) as fq:
            first = next(iter(fq))
        assert len(first.sequence) == 150 and len(first.quality) == 150


def test_manifest_lists_every_file_with_checksums(demo_dataset, demo_plan):
    manifest = json.loads((demo_dataset / "manifest.json").read_text())
    assert manifest["id"] == "demo" and manifest["seed"] == demo_plan.spec.seed
    listed = {f["path"]: f for f in manifest["files"]}
    assert set(listed) == set(FILES.values())
    for name, entry in listed.items():
        assert digest_file(demo_dataset / name)["md5"] == entry["md5"]


def test_pairs_match_between_fastqs_and_bam(demo_dataset, demo_plan):
    names1 = [r.name for r in pysam.FastxFile(str(demo_dataset / FILES["r1"]))]
    names2 = [r.name for r in pysam.FastxFile(str(demo_dataset / FILES["r2"]))]
    assert names1 == names2
    assert len(names1) == demo_plan.cost().read_pairs
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        n, last = 0, (-1, -1)
        for read in bam:
            key = (read.reference_id, read.reference_start)
            assert key >= last, "BAM is not coordinate-sorted"
            last = key
            n += 1
    assert n == 2 * len(names1)


def test_truth_variants_are_in_the_reads(demo_dataset):
    truth = _truth(demo_dataset)
    spikes = [t for t in truth if t[5] == "spike"]
    assert len(spikes) == 61 and any(t[5] == "germline" for t in truth)
    checked = 0
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        for chrom, pos, ref, alt, gt, _src in truth:
            if len(ref) != 1 or len(alt) != 1:
                continue
            counts = bam.count_coverage(chrom, pos, pos + 1, quality_threshold=0)
            by_base = {b: int(c[0]) for b, c in zip("ACGT", counts, strict=True)}
            depth = sum(by_base.values())
            if depth < 10:
                continue
            k = by_base[alt]
            if sum(gt) == 2:
                assert k >= depth * 0.9, (chrom, pos, ref, alt, by_base)
            else:
                sd = math.sqrt(depth * 0.25)
                assert abs(k - depth / 2) <= Z * sd + 1, (chrom, pos, ref, alt, gt, by_base)
            checked += 1
    assert checked > 500


def test_indels_appear_as_cigar_operations(demo_dataset):
    truth = [t for t in _truth(demo_dataset) if len(t[2]) != len(t[3])]
    assert len(truth) >= 20
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        for chrom, pos, ref, alt, gt, _src in truth:
            op = 1 if len(alt) > len(ref) else 2  # I or D
            size = abs(len(alt) - len(ref))
            spanning = with_event = 0
            for read in bam.fetch(chrom, pos, pos + 1):
                if read.reference_start > pos - 5 or read.reference_end < pos + len(ref) + 5:
                    continue  # only reads spanning the event with flanks can show it
                spanning += 1
                rpos = read.reference_start
                for kind, length in read.cigartuples:
                    if kind == op and length == size and rpos == pos + 1:
                        with_event += 1
                        break
                    if kind in (0, 2, 3, 7, 8):
                        rpos += length
            assert spanning >= 5
            frac = with_event / spanning
            expected = sum(gt) / 2
            sd = math.sqrt(expected * (1 - expected) / spanning) if 0 < expected < 1 else 0
            assert abs(frac - expected) <= Z * sd + 0.02, (chrom, pos, ref, alt, gt, frac)


def test_depth_and_uniformity(demo_dataset, demo_plan):
    unit = demo_plan.units[1]
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        depth = np.sum(bam.count_coverage(unit.contig, unit.start, unit.end,
                                          quality_threshold=0), axis=0)
    mean = depth.mean()
    # Every pair contributes 300 aligned bases; only N bases (not counted) and indels shift it.
    assert abs(mean - 30) < 1.5, mean
    # Poisson-like: few bases far below the mean away from edges.
    assert (depth < 10).mean() < 0.01


def test_insert_sizes_follow_spec(demo_dataset):
    tlen = []
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        for read in bam:
            if read.is_read1 and read.template_length > 0:
                tlen.append(read.template_length)
    tlen = np.array(tlen)
    n = len(tlen)
    assert abs(tlen.mean() - 350) < Z * 50 / math.sqrt(n) + 1
    assert abs(tlen.std() - 50) < 2.5


def test_qualities_and_errors_follow_the_model(demo_dataset, demo_plan):
    model = ErrorModel.load(demo_plan.spec.reads.model).for_read_length(150)
    quals = []
    with gzip.open(demo_dataset / FILES["r1"], "rt") as fh:
        for i, line in enumerate(fh):
            if i % 4 == 3:
                quals.append(np.frombuffer(line.strip().encode(), np.uint8) - 33)
            if len(quals) >= 20000:
                break
    quals = np.array(quals, dtype=float)
    expected = model.expected_mean_quality(1)
    se = quals.std(axis=0) / math.sqrt(len(quals)) + 1e-9
    # The simulator draws from a finite bank of quality strings: allow the bank's own error.
    assert np.all(np.abs(quals.mean(axis=0) - expected) <= Z * se * 2 + 0.1)

    truth_pos = {t[1] + k for t in _truth(demo_dataset) for k in range(-60, 60)}
    mism = total = 0
    ref = demo_plan.reference.fetch("chr20", 1_300_000, 1_400_000)
    with pysam.AlignmentFile(str(demo_dataset / FILES["bam"])) as bam:
        counts = np.array(bam.count_coverage("chr20", 1_300_000, 1_400_000, quality_threshold=0))
    for i, base in enumerate(ref):
        if 1_300_000 + i in truth_pos:
            continue
        col = counts[:, i]
        idx = "ACGT".index(chr(base))
        total += col.sum()
        mism += col.sum() - col[idx]
    rate = mism / total
    exp = (model.expected_error_rate(1).mean() + model.expected_error_rate(2).mean()) / 2
    assert abs(rate - exp) < Z * math.sqrt(exp / total) + 0.15 * exp, (rate, exp)


def test_bad_variant_is_refused_and_nothing_written(tmp_path):
    spec = parse_spec({
        "id": "bad-ref", "seed": 1, "reason": "t", "coverage": 1,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,050,000"]},
        "variants": {"explicit": [{"chrom": "chr20", "pos": 1_000_010, "ref": "C", "alt": "T"}]},
    })
    from synthlib.errors import VariantError

    with pytest.raises(VariantError, match=r"variants.explicit\[0\] chr20:1000010 C>T"):
        plan_dataset(spec)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("chunk", [20_000, 35_000])
def test_many_small_units_stay_sorted_and_complete(tmp_path, chunk):
    spec = parse_spec({
        "id": "small-units", "seed": 7, "reason": "t", "coverage": 8, "chunk_size": chunk,
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,150,000"]},
        "variants": {"random": [{"type": "deletion", "count": 10, "min_size": 5,
                                 "max_size": 40}, {"type": "insertion", "count": 10}]},
    })
    plan = plan_dataset(spec)
    assert len(plan.units) > 4
    out = generate_local(plan, dest=tmp_path)
    # samtools index refuses unsorted input; quickcheck checks the EOF block.
    assert pysam.samtools.quickcheck(str(out / FILES["bam"])) == ""
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        names = {}
        for read in bam:
            names[read.query_name] = names.get(read.query_name, 0) + 1
    assert set(names.values()) == {2}
    assert len(names) == plan.cost().read_pairs


def test_staged_leaves_nothing_on_failure_and_no_work_on_success(tmp_path, monkeypatch):
    from synthlib.generate import staged

    monkeypatch.delenv("SYNTH_KEEP_WORK", raising=False)
    final = tmp_path / "ds" / "1.0.0"
    with pytest.raises(RuntimeError), staged(final) as (staging, work):
        (work / "shard").write_bytes(b"x")
        (staging / "half.bam").write_bytes(b"y")
        raise RuntimeError("unit failed")
    assert list((tmp_path / "ds").iterdir()) == []
    with staged(final) as (staging, work):
        (work / "shard").write_bytes(b"x")
        (staging / "done.bam").write_bytes(b"y")
    assert staging.exists() and not work.exists() and not final.exists()

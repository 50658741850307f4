"""Library-prep models wired into the simulator, checked on the generated files."""

from __future__ import annotations

import gzip
import hashlib
import math

import numpy as np
import pysam

from synthlib.generate import FILES, generate_local, run_unit
from synthlib.plan import plan_dataset
from synthlib.reads.adapters import ADAPTER_R1, ADAPTER_R2
from synthlib.reads.gcbias import gc_content
from synthlib.spec import parse_spec

REF = "grch37-chr20-demo"


def _spec(**over) -> dict:
    base = {"id": "libwire", "seed": 31, "reason": "t", "coverage": 6,
            "reference": {"name": REF, "regions": ["chr20:1,000,001-1,150,000"]},
            "chunk_size": 50_000}
    base.update(over)
    return base


def _generate(tmp_path, **over):
    plan = plan_dataset(parse_spec(_spec(**over)))
    return plan, generate_local(plan, dest=tmp_path)


def test_duplicate_fraction_matches_rate(tmp_path):
    rate = 0.15
    _, out = _generate(tmp_path, library={"duplicates": {"rate": rate}})
    n = dups = 0
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        for r in bam:
            n += 1
            dups += r.is_duplicate
    pairs = n // 2
    # Duplicates are flagged on both mates: realized pair rate ~ Binomial(pairs, rate) / pairs.
    tol = 4 * math.sqrt(rate * (1 - rate) / pairs)
    assert abs(dups / n - rate) < tol, (dups, n)
    # Duplicates are reads: FASTQ holds every pair, flagged or not.
    with gzip.open(out / FILES["r1"], "rb") as fh:
        assert sum(1 for _ in fh) // 4 == pairs


def test_no_duplicates_by_default(tmp_path):
    _, out = _generate(tmp_path)
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        assert not any(r.is_duplicate for r in bam)


def test_adapter_readthrough_in_fastq_and_bam(tmp_path):
    length = 150
    _, out = _generate(tmp_path, coverage=4,
                       fragment={"mean": 120, "sd": 20, "min": 60, "max": 400})
    frag_len: dict[str, int] = {}
    clipped = 0
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        for r in bam:
            cig = r.cigartuples
            ins = sum(n for op, n in cig if op in (0, 1))
            # The adapter part is soft-clipped on the read's 3' end: after a forward read,
            # before a reverse one (an insert may add its own clip of edge-inserted bases).
            if ins < length:
                clip = cig[0] if r.is_reverse else cig[-1]
                assert clip[0] == 4 and clip[1] >= 1, (r.query_name, r.cigarstring)
                if len(cig) == 2 and ins == abs(r.template_length):
                    assert clip[1] == length - ins, (r.query_name, r.cigarstring)
            if abs(r.template_length) < length:
                clipped += 1
                # Both mates start at the fragment start.
                assert r.reference_start == r.next_reference_start
                frag_len[r.query_name] = abs(r.template_length)
    assert clipped > 1000
    # In FASTQ, a read of a plain short fragment (no indel: tlen == insert) carries the
    # adapter right after the insert; sequencing errors are rare, so demand 90% exact.
    hits = total = 0
    for key, adapter in (("r1", ADAPTER_R1), ("r2", ADAPTER_R2)):
        with gzip.open(out / FILES[key], "rt") as fh:
            lines = fh.read().split("\n")
        for i in range(0, len(lines) - 3, 4):
            name = lines[i][1:].split()[0]
            fl = frag_len.get(name)
            if fl is None or fl > length - 20:
                continue
            total += 1
            hits += lines[i + 1][fl : fl + 20] == adapter[:20].decode()
    assert total > 500 and hits / total > 0.9, (hits, total)


def _window_depth(out, contig, start, end, win):
    with pysam.AlignmentFile(str(out / FILES["bam"])) as bam:
        cov = np.sum(bam.count_coverage(contig, start, end, quality_threshold=0), axis=0)
    k = (end - start) // win
    return cov[: k * win].reshape(k, win).mean(axis=1)


def test_pcr_gc_bias_lowers_extreme_gc_depth(tmp_path):
    region = (1_000_000, 1_300_000)
    depth = {}
    for bias in ("none", "pcr"):
        _, out = _generate(tmp_path / bias, coverage=5, library={"gc_bias": bias},
                           reference={"name": REF, "regions": ["chr20:1,000,001-1,300,000"]})
        depth[bias] = _window_depth(out, "chr20", *region, 1000)
    plan = plan_dataset(parse_spec(_spec()))
    gc = np.array([gc_content(plan.reference.fetch("chr20", a, a + 1000))
                   for a in range(region[0], region[1], 1000)])
    mid = (gc > 0.42) & (gc < 0.52)
    extreme = (gc < 0.36) | (gc > 0.60)
    assert mid.sum() > 20 and extreme.sum() > 10
    ratio = {b: d[extreme].mean() / d[mid].mean() for b, d in depth.items()}
    # pcr curve: p(0.33) ~ 0.67, p(0.63) ~ 0.59 vs ~1 at mid GC; unbiased stays near 1.
    assert ratio["pcr"] < 0.85 * ratio["none"], ratio
    # Requested pairs are kept: total depth changes little.
    assert abs(depth["pcr"].mean() / depth["none"].mean() - 1) < 0.05


def test_unit_order_does_not_change_shards(tmp_path):
    spec = parse_spec(_spec(library={"duplicates": {"rate": 0.1}, "gc_bias": "pcr"},
                            fragment={"mean": 200, "sd": 60, "min": 60, "max": 600}))
    plan = plan_dataset(spec)
    sums = []
    for name, units in (("fwd", plan.units), ("rev", plan.units[::-1])):
        work = tmp_path / name
        work.mkdir()
        for u in units:
            run_unit(plan, u, workdir=work)
        sums.append({p.name: hashlib.md5(p.read_bytes()).hexdigest()
                     for p in sorted(work.rglob("*")) if p.is_file()})
    assert sums[0] == sums[1] and len(sums[0]) >= len(plan.units)

"""Time ``synth spike``: seconds per SNV, indel and SV spike at ~50x and ~4,000x depth.

``python -m benchmarks.spike [--copies 80] [--out benchmarks/results]``

Input: the bundled real NA12878 reads over chr20:9,999,912-10,001,897 (~50x, 2x101), and a
deep copy of them (each pair repeated ``--copies`` times under new names, so ~4,000x at 80):
the depth of a targeted panel, where editing reads one by one is the cost. Each case runs
``spike_bam`` once in this process (imports excluded) and records wall seconds per spike,
the phases (``edit`` = small variants, ``sv`` = plan SV replacement, ``splice`` = serialize
and rewrite blocks), records changed/added and, for SVs, depth before/after and junction
evidence. Results: ``spike.json`` in the output folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import pysam

from synthlib.resources import RESOURCES
from synthlib.spike import spike_bam

CHROM, CLEN = "chr20", 63025520
_COMP = {"A": "C", "C": "G", "G": "T", "T": "A"}
_INFO = ["END,1,Integer", "SVTYPE,1,String", "VAF,1,Float"]


def deep_copy(src: Path, dst: Path, copies: int) -> Path:
    """``src`` with every record repeated ``copies`` times under new read names, indexed."""
    tmp = dst.with_suffix(".unsorted.bam")
    with pysam.AlignmentFile(str(src)) as af, pysam.AlignmentFile(
            str(tmp), "wb", template=af) as out:
        recs = list(af.fetch(until_eof=True))
        for k in range(copies):
            for r in recs:
                r2 = pysam.AlignedSegment.fromstring(r.to_string(), af.header)
                r2.query_name = f"{r.query_name}:c{k}"
                out.write(r2)
    pysam.samtools.sort("-o", str(dst), str(tmp))
    pysam.samtools.index(str(dst))
    tmp.unlink()
    return dst


def _vcf(path: Path, fasta: pysam.FastaFile, kind: str) -> tuple[Path, int]:
    rows = []
    if kind in ("snv", "indel"):
        sites = ((10_000_300, 10_000_700, 10_001_100, 10_001_500) if kind == "snv"
                 else (10_000_300, 10_001_100))
        for i, pos in enumerate(sites):
            b = fasta.fetch(CHROM, pos - 1, pos + 3).upper()
            if kind == "snv":
                ref, alt = b[0], _COMP[b[0]]
            else:
                ref, alt = (b[:4], b[0]) if i % 2 == 0 else (b[0], b[0] + "GT")
            rows.append(f"{CHROM}\t{pos}\t.\t{ref}\t{alt}\t.\tPASS\tVAF=0.3")
    else:
        a = fasta.fetch(CHROM, 10_000_799, 10_000_800).upper()
        sv = kind.upper()
        rows.append(f"{CHROM}\t10000800\t.\t{a}\t<{sv}>\t.\tPASS\t"
                    f"END=10001100;SVTYPE={sv};VAF=0.5")
    head = ["##fileformat=VCFv4.2", f"##contig=<ID={CHROM},length={CLEN}>"]
    head += [f'##INFO=<ID={i.split(",")[0]},Number={i.split(",")[1]},Type={i.split(",")[2]},'
             'Description=".">' for i in _INFO]
    head.append("#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO")
    path.write_text("\n".join(head + rows) + "\n")
    return path, len(rows)


def run(*, copies: int, out_dir: Path) -> dict:
    fa_p = RESOURCES["grch37-chr20-demo.fasta"].local_path()
    src = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
    results = []
    with tempfile.TemporaryDirectory() as td, pysam.FastaFile(str(fa_p)) as fasta:
        work = Path(td)
        inputs = {"real ~50x": src, f"real x{copies} ~{50 * copies}x": deep_copy(
            src, work / "deep.bam", copies)}
        for label, bam in inputs.items():
            for kind in ("snv", "indel", "del", "dup", "inv"):
                vcf, n = _vcf(work / f"{kind}.vcf", fasta, kind)
                t = time.perf_counter()
                res = spike_bam(bam=bam, reference=fa_p, variants=vcf,
                                out=work / "out.bam", seed=1)
                wall = time.perf_counter() - t
                d = res.to_dict()
                row = {"input": label, "kind": kind, "spikes": n, "wall_s": round(wall, 3),
                       "s_per_spike": round(wall / n, 3),
                       "phases": {k: round(v, 3) for k, v in d["timings"].items()},
                       "records_changed": d["totals"]["records_changed"],
                       "records_added": d["totals"]["records_added"],
                       "records_removed": d["totals"]["records_removed"],
                       "input_bytes": d["totals"]["input_bytes"]}
                if d["svs"]:
                    sv = d["svs"][0]
                    row |= {k: sv[k] for k in ("depth_before", "depth_after", "expected_ratio",
                                               "split_reads", "discordant_pairs")}
                else:
                    row["depth"] = [v["depth"] for v in d["variants"]]
                results.append(row)
                print(f"{label:18s} {kind:6s} {row['s_per_spike']:8.3f} s/spike", flush=True)
    report = {"machine": {"python": sys.version.split()[0], "platform": platform.platform()},
              "copies": copies, "results": results}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "spike.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=80)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = ap.parse_args(argv)
    run(copies=args.copies, out_dir=args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

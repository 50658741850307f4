"""Helpers shared by the variant-engine tests (VCF source, ploidy, realized VAF)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pysam

FASTA = (Path(__file__).resolve().parents[1] / "synthlib/data/references/grch37-chr20-demo/"
         "GRCh37_chr20_2regions.fa.gz")


def bcftools_stderr(*args: str) -> str:
    """Run ``bcftools <args>`` (pysam's) in a child process; its stderr (htslib warnings go
    to file descriptor 2, which pysam does not capture). Raises if bcftools fails."""
    code = ("import sys, pysam.bcftools as b; "
            "b.__getattribute__(sys.argv[1])(*sys.argv[2:], catch_stdout=False)")
    cmd = [sys.executable, "-c", code, args[0], *args[1:]]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode:
        raise AssertionError(f"bcftools {' '.join(args)} failed: {res.stderr}")
    return res.stderr


def truth_rows(vcf: Path) -> list[tuple]:
    """CHROM, POS, REF, ALT, GT, SVTYPE, END, SVLEN, CN of every truth record."""
    out = []
    with pysam.VariantFile(str(vcf)) as f:
        for r in f:
            s = r.samples[0]
            gt = ("|" if s.phased else "/").join("." if a is None else str(a) for a in s["GT"])
            info = r.info
            out.append((r.chrom, r.pos, r.ref, r.alts, gt, info.get("SVTYPE"),
                        r.stop if "SVTYPE" in info and r.alts[0].startswith("<") else None,
                        info.get("SVLEN"), info.get("CN")))
    return out

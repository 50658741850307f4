"""Small-variant calls from the QC BAM with bcftools (``pysam.bcftools``): mpileup + call -mv."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pysam
import pysam.bcftools

from ..errors import QCError

__all__ = ["call_variants", "write_bed"]


def write_bed(intervals: dict[str, np.ndarray], path: Path) -> Path:
    """Write ``{contig: (k, 2) int64}`` half-open intervals as a 3-column BED, in given order."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for contig, iv in intervals.items():
            for s, e in np.asarray(iv, np.int64).reshape(-1, 2):
                fh.write(f"{contig}\t{int(s)}\t{int(e)}\n")
    tmp.replace(path)
    return path


def call_variants(
    *, bam: Path, reference: Path, regions_bed: Path, out_vcf: Path, max_depth: int = 250,
    min_mapq: int = 20, sample: str | None = None,
) -> tuple[Path, float]:
    """Call SNVs and indels with ``bcftools mpileup -a AD,DP | bcftools call -mv``.

    Parameters
    ----------
    bam
        Coordinate-sorted, indexed BAM.
    reference
        Indexed FASTA (bgzipped needs ``.gzi``).
    regions_bed
        Where to call (the territory); positions outside are not piled up.
    out_vcf
        ``.vcf.gz`` output; a ``.csi`` index is written beside it.
    max_depth
        ``mpileup -d``: reads per position per file beyond which the pileup is capped; also
        ``mpileup -L`` (bcftools skips indel calling where the mean depth exceeds it, 250 by
        default: a 500x panel would get no indel calls at all).
    min_mapq
        ``mpileup -q``: alignments below this mapping quality are ignored.
    sample
        Rename the called sample (e.g. to the truth's sample name); None keeps the BAM's SM.

    Returns
    -------
    (Path, float)
        The bgzipped VCF and the seconds the calling took.
    """
    t0 = time.perf_counter()
    out_vcf = Path(out_vcf)
    for p in (bam, reference, regions_bed):
        if not Path(p).exists():
            raise QCError("input for variant calling not found", where=str(p))
    pile = out_vcf.with_name(out_vcf.name + ".pileup.bcf")
    tmp = out_vcf.with_name(out_vcf.name + ".tmp.vcf.gz")
    try:
        pysam.bcftools.mpileup(
            "-f", str(reference), "-a", "AD,DP", "-d", str(max_depth), "-L", str(max_depth),
            "-q", str(min_mapq),
            "-R", str(regions_bed), "-Ou", "-o", str(pile), str(bam), catch_stdout=False)
        pysam.bcftools.call("-mv", "-Oz", "-o", str(tmp), str(pile), catch_stdout=False)
        if sample is not None:
            names = out_vcf.with_name(out_vcf.name + ".samples.txt")
            names.write_text(sample + "\n")
            renamed = out_vcf.with_name(out_vcf.name + ".tmp2.vcf.gz")
            pysam.bcftools.reheader("-s", str(names), "-o", str(renamed), str(tmp),
                                    catch_stdout=False)
            names.unlink()
            renamed.replace(tmp)
        pysam.bcftools.index("-f", str(tmp), catch_stdout=False)
    except pysam.utils.SamtoolsError as exc:
        raise QCError(f"bcftools failed: {exc}", where=str(bam)) from None
    finally:
        pile.unlink(missing_ok=True)
    tmp.replace(out_vcf)
    Path(str(tmp) + ".csi").replace(Path(str(out_vcf) + ".csi"))
    return out_vcf, time.perf_counter() - t0

"""Spike variants into an existing BAM/CRAM of real reads.

Small variants (SNV, MNV, indel) edit the covering reads; structural variants (DEL, tandem
DUP, INV, INS, CNV) replace a window's read pairs with pairs simulated from the altered
haplotypes (:mod:`synthlib.spike.replace`). ``spike_bam`` rewrites only the BGZF blocks
around the changes (BAM output; CRAM output is a re-encode); ``validate_bam`` is a
ValidateSamFile-style consistency check used on its output.
"""

from .bam_spike import SpikeOutcome, SpikeResult, spike_bam
from .replace import SVOutcome
from .validate import validate_bam

__all__ = ["SVOutcome", "SpikeOutcome", "SpikeResult", "spike_bam", "validate_bam"]

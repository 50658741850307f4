"""Spike small variants (SNV, MNV, indel) into an existing BAM by editing covering reads.

``spike_bam`` rewrites only the BGZF blocks around the spikes; ``validate_bam`` is a
ValidateSamFile-style consistency check used on its output.
"""

from .bam_spike import SpikeOutcome, SpikeResult, spike_bam
from .validate import validate_bam

__all__ = ["SpikeOutcome", "SpikeResult", "spike_bam", "validate_bam"]

"""Spec sections for library-prep realism (to be added to ``DatasetSpec``).

Intended wiring: ``DatasetSpec.library: LibrarySpec = LibrarySpec()`` and
``AssaySpec.capture: CaptureSpec = CaptureSpec()`` (used only for exome/panel).
Defaults that change output (GC bias, off-target reads) should come with a version bump of
the catalog entries that adopt them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DuplicateSpec", "LibrarySpec", "CaptureSpec"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DuplicateSpec(_Strict):
    """PCR and optical duplicates."""

    rate: float = Field(default=0.0, ge=0, lt=1)
    """Fraction of read pairs that are duplicates of another pair (0 = none; WGS PCR-free
    ~0.02-0.05, exome ~0.05-0.15)."""
    optical_fraction: float = Field(default=0.1, ge=0, le=1)
    """Fraction of the duplicates that are optical."""
    mark: bool = True
    """Set the duplicate flag (0x400) on every copy but the first in the golden BAM."""


class LibrarySpec(_Strict):
    """Library preparation: GC bias, duplicates and adapter read-through."""

    gc_bias: Literal["none", "pcr-free", "pcr"] = "none"
    """Fragment GC acceptance curve (``synthlib.reads.gcbias``): ``pcr-free`` loses only
    extreme-GC fragments, ``pcr`` is a stronger bell around 47% GC."""
    duplicates: DuplicateSpec = DuplicateSpec()
    adapters: bool = True
    """Fragments shorter than the read length are read into the TruSeq adapter (then poly-G),
    soft-clipped in the golden BAM. False keeps fragments at least one read long."""


class CaptureSpec(_Strict):
    """Hybrid capture (exome/panel): uneven baits, flanks and off-target reads."""

    efficiency_sd: float = Field(default=0.3, ge=0, le=2)
    """Log-scale sd of the per-target capture efficiency (lognormal, mean 1); 0.3 gives a
    fold-80 base penalty of ~2.0 at 100x on an exon BED (typical exome 1.5-2.5)."""
    gc_curve: Literal["none", "capture"] = "capture"
    """Per-target GC efficiency factor (``none``: GC-neutral capture)."""
    off_target: float = Field(default=0.25, ge=0, lt=1)
    """Fraction of fragments placed uniformly over the accessible genome (exome 0.2-0.3)."""

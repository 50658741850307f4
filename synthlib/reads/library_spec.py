"""Spec sections for library-prep realism: ``DatasetSpec.library`` and ``AssaySpec.capture``.

``AssaySpec.capture`` is used for exome/panel only.
Defaults that change output (GC bias, off-target reads) should come with a version bump of
the catalog entries that adopt them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DuplicateSpec", "LibrarySpec", "CaptureSpec", "LIBRARY_PRESETS"]

#: ``library.preset`` name -> the fields it stands for (fields given next to it win).
LIBRARY_PRESETS: dict[str, dict] = {
    # PCR-free WGS (e.g. TruSeq DNA PCR-Free): no amplification, so no PCR duplicates and only
    # the mild loss of extreme-GC fragments of the ``pcr-free`` curve (flat over 25-65% GC).
    "pcr-free": {"gc_bias": "pcr-free", "duplicates": {"rate": 0.0}},
    # Amplified libraries: a GC bell around 47% and ~8% duplicates.
    "pcr": {"gc_bias": "pcr", "duplicates": {"rate": 0.08}},
}


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

    preset: Literal["pcr-free", "pcr"] | None = None
    """Named library type filling the fields not given (``LIBRARY_PRESETS``): ``pcr-free``
    = ``gc_bias: pcr-free`` and no duplicates (fold-80 stays Poisson-like, ~1.2 at 30x);
    ``pcr`` = ``gc_bias: pcr`` and duplicate rate 0.08. A ``pcr-free`` library may not take
    the ``pcr`` GC curve."""
    gc_bias: Literal["none", "pcr-free", "pcr"] = "none"
    """Fragment GC acceptance curve (``synthlib.reads.gcbias``): ``pcr-free`` loses only
    extreme-GC fragments, ``pcr`` is a stronger bell around 47% GC."""
    duplicates: DuplicateSpec = DuplicateSpec()
    adapters: bool = True
    """Fragments shorter than the read length are read into the TruSeq adapter (then poly-G),
    soft-clipped in the golden BAM. False keeps fragments at least one read long."""

    @model_validator(mode="before")
    @classmethod
    def _fill_preset(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("preset") not in LIBRARY_PRESETS:
            return data
        out = {**LIBRARY_PRESETS[data["preset"]], **data}
        dup = data.get("duplicates")
        if isinstance(dup, dict):  # a partial duplicates section completes the preset's
            out["duplicates"] = {**LIBRARY_PRESETS[data["preset"]]["duplicates"], **dup}
        if data["preset"] == "pcr-free" and out["gc_bias"] == "pcr":
            raise ValueError("preset 'pcr-free' cannot take gc_bias 'pcr'")
        return out


class CaptureSpec(_Strict):
    """Hybrid capture (exome/panel): uneven baits, flanks and off-target reads.

    With ``model: capture`` the dataset's ``coverage`` is the mean depth over the target
    bases (see ``synthlib.reads.capture_plan``).
    """

    model: Literal["capture", "uniform"] = "capture"
    """``capture``: the hybrid-capture model (``synthlib.reads.capture``); ``uniform``: the
    older layout, fragments uniform over targets+padding (``coverage`` = mean depth over
    targets+padding; the other fields are then unused)."""

    efficiency_sd: float = Field(default=0.3, ge=0, le=2)
    """Log-scale sd of the per-target capture efficiency (lognormal, mean 1); 0.3 gives a
    fold-80 base penalty of ~2.0 at 100x on an exon BED (typical exome 1.5-2.5)."""
    gc_curve: Literal["none", "capture"] = "capture"
    """Per-target GC efficiency factor (``none``: GC-neutral capture)."""
    min_bait_length: int = Field(default=120, ge=1, le=10_000)
    """Baits span at least this many bases, centred on their target (kits tile 120-mer
    probes; a 6 bp exon is captured by a whole probe). Clipped to targets+padding."""
    off_target: float = Field(default=0.25, ge=0, lt=1)
    """Fraction of fragments placed uniformly over the accessible genome (exome 0.2-0.3)."""

"""synthlib: synthetic human sequencing data with a truth set, and proof that it is right."""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CatalogError,
    ModelError,
    QCError,
    ReferenceDataError,
    SpecError,
    StorageError,
    SynthError,
    VariantError,
)

__all__ = [
    "__version__",
    "SynthError",
    "SpecError",
    "CatalogError",
    "ReferenceDataError",
    "VariantError",
    "ModelError",
    "StorageError",
    "QCError",
]

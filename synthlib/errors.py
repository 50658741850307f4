"""The exceptions synthlib raises.

Library code raises; only the CLI maps these to exit codes (every ``SynthError`` is a
user-facing input or environment problem and exits with status 2).
"""

from __future__ import annotations

__all__ = [
    "SynthError",
    "SpecError",
    "CatalogError",
    "ReferenceDataError",
    "VariantError",
    "ModelError",
    "StorageError",
    "QCError",
]


class SynthError(Exception):
    """Base class of every error synthlib raises on purpose.

    Parameters
    ----------
    message
        One line saying what is wrong.
    where
        The file, line, field or variant the problem is in, when known; it is prefixed to
        the message so the user can find it.
    """

    def __init__(self, message: str, *, where: str | None = None) -> None:
        self.where = where
        self.message = message
        super().__init__(f"{where}: {message}" if where else message)


class SpecError(SynthError):
    """A dataset spec is invalid (names the file and field)."""


class CatalogError(SynthError):
    """A catalog id is unknown, or the catalog itself is inconsistent."""


class ReferenceDataError(SynthError):
    """A reference, targets or resource file is missing or malformed."""


class VariantError(SynthError):
    """A requested variant is impossible (names the variant)."""


class ModelError(SynthError):
    """An error/quality model file is missing, malformed or of an unknown version."""


class StorageError(SynthError):
    """A storage backend failed (missing object, checksum mismatch, precondition)."""


class QCError(SynthError):
    """QC could not run (not: QC ran and the dataset failed, which is a verdict)."""

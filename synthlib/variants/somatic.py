"""Tumor/normal pairs: the matched normal of a tumor spec shares its germline.

The tumor spec marks somatic variants with ``vaf`` (explicit or per random group) and has a
``somatic`` section (purity). Its matched normal is the same spec with neither: same seed, so
the same germline background and the same non-somatic spikes and SVs (those streams never see
the somatic ones), with its own sample name and read stream.
"""

from __future__ import annotations

from ..errors import SpecError
from ..spec import DatasetSpec

__all__ = ["normal_spec", "somatic_threshold"]


def normal_spec(tumor: DatasetSpec, *, id: str | None = None) -> DatasetSpec:
    """The matched normal of a tumor spec (sample name = its id, default ``<tumor id>-normal``).

    Raises
    ------
    SpecError
        If ``tumor`` has no ``somatic`` section.
    """
    if tumor.somatic is None:
        raise SpecError("not a tumor spec: it has no 'somatic' section", where=tumor.id)
    data = tumor.model_dump(mode="python")
    data["id"] = id or f"{tumor.id}-normal"
    data["title"] = f"Matched normal of {tumor.id}"
    data["coverage"] = tumor.somatic.normal_coverage or tumor.coverage
    data["somatic"] = None
    v = data["variants"]
    v["explicit"] = [x for x in v["explicit"] if x["vaf"] is None]
    v["random"] = [x for x in v["random"] if x["vaf"] is None]
    sv = v["structural"]
    sv["explicit"] = [x for x in sv["explicit"] if x["vaf"] is None]
    sv["random"] = [x for x in sv["random"] if x["vaf"] is None]
    return DatasetSpec.model_validate(data)


def somatic_threshold(vaf: float, gt: tuple[int, int]) -> float:
    """Fraction of a carrying haplotype's fragments that show the variant: 2 x VAF / alleles."""
    return 2 * vaf / max(1, sum(gt))

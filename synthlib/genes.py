"""Gene panels: restrict an exon BED to the exons of named genes (``assay.genes``)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import SpecError
from .intervals import merge

__all__ = ["gene_targets", "gene_column_for", "DEFAULT_GENE_COLUMN"]

#: Column of a BED naming the gene when nothing else is known: the name column, ``GENE`` or
#: ``GENE_exonN`` / ``GENE_N`` (the suffix is dropped).
DEFAULT_GENE_COLUMN = 4


def gene_column_for(targets: str, column: int | None) -> int:
    """The 1-based gene column of a targets BED: ``column`` if given, else the one registered
    for the resource (:data:`synthlib.resources.BED_GENE_COLUMNS`), else 4."""
    if column is not None:
        return column
    from .resources import BED_GENE_COLUMNS

    return BED_GENE_COLUMNS.get(targets, DEFAULT_GENE_COLUMN)


def gene_targets(
    *, bed: Path, genes: Sequence[str], gene_column: int = DEFAULT_GENE_COLUMN,
    padding: int = 0, where: str = "assay.genes",
) -> dict[str, np.ndarray]:
    """Exons of ``genes`` in ``bed`` as merged, padded per-contig intervals.

    Parameters
    ----------
    bed
        Exon BED, plain or (b)gzipped, with the gene symbol in ``gene_column``.
    genes
        Gene symbols (exact, case-sensitive, as in the BED).
    gene_column
        1-based column holding the gene; 4 also accepts ``GENE_exonN`` / ``GENE_N``.
    padding
        Bases added on each side of every exon before merging.
    where
        Spec field named in errors (``assay.genes``; ``[i]`` is appended).

    Returns
    -------
    dict
        contig -> (k, 2) int64 half-open intervals, sorted and merged.

    Raises
    ------
    SpecError
        A gene is not in the BED: names ``where[i]`` and the closest symbols it does have.
    """
    from .cohort.sources import load_exons  # reads plain or gzipped BEDs, splits GENE_N

    if not genes:
        raise SpecError("no genes given", where=where)
    exons = load_exons(Path(bed), gene_column)
    by_upper: dict[str, list[str]] = {}
    for g in exons:
        by_upper.setdefault(g.upper(), []).append(g)
    per_contig: dict[str, list[tuple[int, int]]] = {}
    for i, gene in enumerate(genes):
        if gene not in exons:
            close = by_upper.get(gene.upper(), []) + [
                g for g in difflib.get_close_matches(gene, list(exons), n=5, cutoff=0.6)
                if g.upper() != gene.upper()]
            hint = f"; close matches: {', '.join(close)}" if close else (
                f"; the BED has {len(exons)} genes, e.g. {', '.join(sorted(exons)[:8])}")
            raise SpecError(f"gene {gene!r} is not in {Path(bed).name} (column {gene_column})"
                            f"{hint}", where=f"{where}[{i}]")
        for chrom, start, end in exons[gene]:
            per_contig.setdefault(chrom, []).append((max(0, start - padding), end + padding))
    return {c: merge(np.array(v, dtype=np.int64)) for c, v in per_contig.items()}

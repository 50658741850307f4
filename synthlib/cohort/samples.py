"""Who is in the cohort: ids, roles, families, sex and population, and ``samples.tsv``."""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import SpecError
from .seeds import rng_for
from .spec import CohortSpec

__all__ = [
    "Sample",
    "cohort_samples",
    "write_samples_tsv",
    "read_samples_tsv",
    "write_ped",
    "SAMPLE_COLUMNS",
]

SAMPLE_COLUMNS = ("sample", "sex", "population", "role", "family", "father", "mother")


@dataclass(frozen=True)
class Sample:
    """One individual. ``role`` is ``case``, ``control`` or ``parent``; ``father``/``mother``
    are sample ids for trio children, ``""`` otherwise."""

    sample: str
    sex: str
    population: str
    role: str
    family: str
    father: str = ""
    mother: str = ""


def _draw_population(spec: CohortSpec, seed: int, key: str) -> str:
    pops = sorted(spec.ancestry)
    probs = [spec.ancestry[p] for p in pops]
    return str(rng_for(seed, "population", key).choice(pops, p=probs))


def _draw_sex(spec: CohortSpec, seed: int, key: str) -> str:
    return "F" if rng_for(seed, "sex", key).random() < spec.female_fraction else "M"


def cohort_samples(spec: CohortSpec, *, seed: int) -> list[Sample]:
    """Every sample of the cohort, in the order of the joint VCF's columns.

    Order: trio families (``TRIO0001_F``, ``_M``, ``_C``), then the other cases
    (``CASE00001``...), then controls (``CTRL00001``...). Each attribute is drawn from its own
    keyed stream, so the list depends only on ``spec`` and ``seed``.
    """
    out: list[Sample] = []
    for i in range(1, spec.trios + 1):
        fam = f"TRIO{i:04d}"
        pop = _draw_population(spec, seed, fam)
        father, mother, child = f"{fam}_F", f"{fam}_M", f"{fam}_C"
        out.append(Sample(father, "M", pop, "parent", fam))
        out.append(Sample(mother, "F", pop, "parent", fam))
        out.append(Sample(child, _draw_sex(spec, seed, child), pop, "case", fam, father, mother))
    for role, prefix, count in (
        ("case", "CASE", spec.n_cases - spec.trios),
        ("control", "CTRL", spec.n_controls),
    ):
        for i in range(1, count + 1):
            sid = f"{prefix}{i:05d}"
            out.append(
                Sample(
                    sid, _draw_sex(spec, seed, sid), _draw_population(spec, seed, sid), role, sid
                )
            )
    return out


def write_samples_tsv(samples: list[Sample], path: str | Path) -> Path:
    """Write ``samples.tsv`` (header + one row per sample) atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(SAMPLE_COLUMNS)
            for s in samples:
                w.writerow([getattr(s, c) for c in SAMPLE_COLUMNS])
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_ped(samples: list[Sample], path: str | Path) -> Path:
    """Write a PLINK/GATK pedigree file (family, id, father, mother, sex 1=M 2=F, phenotype
    2=affected 1=unaffected; ``0`` for an unknown parent), atomically.

    Cases (trio children included) are affected; controls and trio parents are not.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        "\t".join([s.family, s.sample, s.father or "0", s.mother or "0",
                   {"M": "1", "F": "2"}.get(s.sex, "0"), "2" if s.role == "case" else "1"])
        for s in samples
    ]
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_samples_tsv(path: str | Path) -> list[Sample]:
    """Read a ``samples.tsv`` written by :func:`write_samples_tsv`.

    Raises
    ------
    SpecError
        If the file is missing or its header is not :data:`SAMPLE_COLUMNS`.
    """
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            rows = list(csv.reader(fh, delimiter="\t"))
    except OSError as exc:
        raise SpecError(f"cannot read samples table: {exc.strerror}", where=str(path)) from None
    if not rows or tuple(rows[0]) != SAMPLE_COLUMNS:
        header = "\t".join(SAMPLE_COLUMNS)
        raise SpecError(f"header must be {header!r}", where=f"{path}:1")
    out = []
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(SAMPLE_COLUMNS):
            raise SpecError(f"expected {len(SAMPLE_COLUMNS)} columns", where=f"{path}:{n}")
        out.append(Sample(*row))
    return out

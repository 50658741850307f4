"""Fragment-length (insert-size) distributions: the spec's truncated normal or an empirical one.

An empirical distribution is an :class:`InsertSizeModel`: a histogram of template lengths
learned from real alignments (:func:`synthlib.reads.learn.learn_insert_sizes`), stored as a
versioned JSON document (format ``synthlib.insertsize/1``, JSON Schema in
``synthlib/data/models/schemas/insertsize-1.schema.json``; presets in
``synthlib/data/models/insert-sizes/``). Within a bin every integer length is equally likely.

:func:`fragment_distribution` turns a spec's ``fragment`` section into a
:class:`FragmentDistribution` (an exact pmf over integer lengths, truncated as the simulator
truncates): its moments and quantiles are what QC expects and what capture planning uses,
and :meth:`FragmentDistribution.sample` draws lengths by inverse CDF with the caller's RNG.

The simulator keeps its own rejection sampler for ``model: normal`` (so existing datasets
keep their bytes); for ``model: empirical`` it calls :func:`draw_fragment_lengths`.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError

__all__ = [
    "INSERT_SIZE_FORMAT",
    "INSERT_SIZE_DIR",
    "INSERT_SIZE_SCHEMA",
    "InsertSizeModel",
    "FragmentDistribution",
    "insert_size_presets",
    "truncation_bounds",
    "fragment_distribution",
    "fragment_moments",
    "nominal_fragment_mean",
    "draw_fragment_lengths",
]

INSERT_SIZE_FORMAT = "synthlib.insertsize/1"
_MODELS = Path(__file__).resolve().parent.parent / "data" / "models"
#: Shipped insert-size presets (a subfolder: ``models/*.json`` are error-model presets).
INSERT_SIZE_DIR = _MODELS / "insert-sizes"
#: JSON Schema (draft 2020-12) of the file format.
INSERT_SIZE_SCHEMA = _MODELS / "schemas" / "insertsize-1.schema.json"
_MAX_LENGTH = 5000  # FragmentSpec.max's upper bound


@dataclass
class InsertSizeModel:
    """A learned insert-size histogram.

    Attributes
    ----------
    name, description
        What it is.
    start
        Lower edge of the first bin (a length in bases, >= 1).
    bin_width
        Bases per bin; bin ``i`` holds lengths ``start + i*w .. start + (i+1)*w - 1``.
    counts : np.ndarray, int64 (B,)
        Template lengths seen per bin (after trimming); at least one is positive.
    source
        Provenance: input file name and md5, records read / used / trimmed, filters, trim
        quantiles and bounds.
    """

    name: str
    start: int
    bin_width: int
    counts: np.ndarray
    description: str = ""
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.counts = np.asarray(self.counts, dtype=np.int64)
        if self.counts.ndim != 1 or not self.counts.size:
            raise ModelError("counts must be a non-empty list", where=f"{self.name}:counts")
        if (self.counts < 0).any() or self.counts.sum() <= 0:
            raise ModelError("counts must be >= 0 with a positive total",
                             where=f"{self.name}:counts")
        if self.start < 1 or self.bin_width < 1:
            raise ModelError("need start >= 1 and bin_width >= 1", where=self.name)
        if self.stop - 1 > _MAX_LENGTH:
            raise ModelError(f"lengths above {_MAX_LENGTH} are not supported", where=self.name)

    @property
    def stop(self) -> int:
        """One past the longest length the histogram can produce."""
        return self.start + self.bin_width * int(self.counts.size)

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        """Integer lengths int64 (N,) and their probabilities float64 (N,), N = B * w."""
        lengths = np.arange(self.start, self.stop, dtype=np.int64)
        p = np.repeat(self.counts.astype(np.float64) / self.bin_width, self.bin_width)
        return lengths, p / p.sum()

    def summary(self) -> dict[str, float]:
        """Mean, sd, median of the (untruncated) histogram distribution."""
        d = FragmentDistribution.from_pmf(*self.pmf())
        return {"n": int(self.counts.sum()), "mean": round(d.mean, 3), "sd": round(d.sd, 3),
                "median": float(d.quantile(0.5))}

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (format ``synthlib.insertsize/1``)."""
        return {"format": INSERT_SIZE_FORMAT, "name": self.name, "description": self.description,
                "start": int(self.start), "bin_width": int(self.bin_width),
                "counts": [int(c) for c in self.counts], "summary": self.summary(),
                "source": self.source}

    def save(self, path: str | Path) -> Path:
        """Write the JSON document (stable key order, one trailing newline)."""
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise ModelError(f"cannot write insert-size model: {exc.strerror}",
                             where=str(path)) from None
        return path

    @classmethod
    def from_dict(cls, data: Any, *, where: str = "<insert-size model>") -> InsertSizeModel:
        """Validate a JSON document (errors name ``where`` and the field)."""
        if not isinstance(data, dict):
            raise ModelError("not a JSON object", where=where)
        if data.get("format") != INSERT_SIZE_FORMAT:
            raise ModelError(f"format must be {INSERT_SIZE_FORMAT!r}, got {data.get('format')!r}",
                             where=f"{where}:format")
        for key, kind in (("name", str), ("start", int), ("bin_width", int), ("counts", list)):
            if key not in data:
                raise ModelError("missing field", where=f"{where}:{key}")
            if not isinstance(data[key], kind) or isinstance(data[key], bool):
                raise ModelError(f"must be a {kind.__name__}", where=f"{where}:{key}")
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in data["counts"]):
            raise ModelError("must be a list of integers", where=f"{where}:counts")
        src = data.get("source", {})
        if not isinstance(src, dict):
            raise ModelError("must be an object", where=f"{where}:source")
        try:
            return cls(name=data["name"], start=data["start"], bin_width=data["bin_width"],
                       counts=np.array(data["counts"], dtype=np.int64),
                       description=str(data.get("description", "")), source=src)
        except ModelError as exc:
            raise ModelError(exc.message, where=f"{where}:{exc.where}") from None

    @classmethod
    def load(cls, name_or_path: str | Path, *, base_dir: Path | None = None) -> InsertSizeModel:
        """A shipped preset by name, or a JSON file (relative paths from ``base_dir``)."""
        return _load_cached(str(name_or_path), str(base_dir) if base_dir else None)


def insert_size_presets() -> list[str]:
    """Names of the shipped insert-size presets."""
    return sorted(p.stem for p in INSERT_SIZE_DIR.glob("*.json"))


def _resolve(name_or_path: str, base_dir: str | None) -> Path:
    preset = INSERT_SIZE_DIR / f"{name_or_path}.json"
    if "/" not in name_or_path and not name_or_path.endswith(".json") and preset.is_file():
        return preset
    path = Path(name_or_path).expanduser()
    if not path.is_absolute() and base_dir is not None:
        path = Path(base_dir) / path
    if path.is_file():
        return path
    raise ModelError("no such insert-size file or preset (presets: "
                     + ", ".join(insert_size_presets()) + ")", where=name_or_path)


@functools.lru_cache(maxsize=32)
def _load_cached(name_or_path: str, base_dir: str | None) -> InsertSizeModel:
    path = _resolve(name_or_path, base_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"cannot read insert-size model: {exc}", where=str(path)) from None
    except ValueError as exc:
        raise ModelError(f"not JSON: {exc}", where=str(path)) from None
    return InsertSizeModel.from_dict(data, where=str(path))


@dataclass(frozen=True)
class FragmentDistribution:
    """An exact distribution over integer fragment lengths.

    Attributes
    ----------
    lengths : np.ndarray, int64 (N,)
        Consecutive lengths with positive or zero probability.
    cdf : np.ndarray, float64 (N,)
        Cumulative probabilities, last = 1.
    """

    lengths: np.ndarray
    cdf: np.ndarray

    @classmethod
    def from_pmf(cls, lengths: np.ndarray, p: np.ndarray) -> FragmentDistribution:
        p = np.asarray(p, dtype=np.float64)
        if p.sum() <= 0:
            raise ModelError("the fragment distribution has no mass inside [min, max]",
                             where="fragment")
        cdf = np.cumsum(p / p.sum())
        cdf[-1] = 1.0
        return cls(lengths=np.asarray(lengths, dtype=np.int64), cdf=cdf)

    @property
    def probabilities(self) -> np.ndarray:
        """float64 (N,) P(length = lengths[i])."""
        return np.diff(self.cdf, prepend=0.0)

    @property
    def mean(self) -> float:
        return float(self.probabilities @ self.lengths)

    @property
    def sd(self) -> float:
        p, x = self.probabilities, self.lengths.astype(np.float64)
        m = float(p @ x)
        return math.sqrt(max(float(p @ (x - m) ** 2), 0.0))

    def quantile(self, q: float) -> int:
        """Smallest length whose CDF reaches ``q`` (0 < q <= 1)."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"q must be in (0, 1], got {q}")
        i = int(np.searchsorted(self.cdf, q - 1e-12, side="left"))
        return int(self.lengths[min(i, self.lengths.size - 1)])

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """int64 (n,) lengths by inverse CDF: one uniform of ``rng`` per length."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        i = np.searchsorted(self.cdf, rng.random(n), side="right")
        return self.lengths[np.minimum(i, self.lengths.size - 1)]


def truncation_bounds(spec: Any) -> tuple[int, int]:
    """``[lo, hi]`` the simulator truncates lengths to: ``[min, max]``, and without adapter
    read-through (``library.adapters: false``) never below the read length."""
    fr = spec.fragment
    lo = fr.min if spec.library.adapters else max(fr.min, spec.reads.length)
    return int(lo), int(fr.max)


def _normal_pmf(mean: float, sd: float, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(lo, hi + 1, dtype=np.int64)
    if sd == 0:
        return x, (x == round(mean)).astype(np.float64)
    z = (np.concatenate([x - 0.5, [hi + 0.5]]) - mean) / (sd * math.sqrt(2.0))
    cdf = 0.5 * (1.0 + np.array([math.erf(v) for v in z]))
    return x, np.diff(cdf)


@functools.lru_cache(maxsize=64)
def _distribution(fragment: Any, lo: int, hi: int, base_dir: str | None) -> FragmentDistribution:
    if getattr(fragment, "model", "normal") == "empirical":
        x, p = InsertSizeModel.load(fragment.empirical, base_dir=base_dir).pmf()
        keep = (x >= lo) & (x <= hi)
        return FragmentDistribution.from_pmf(x[keep], p[keep])
    return FragmentDistribution.from_pmf(*_normal_pmf(fragment.mean, fragment.sd, lo, hi))


def fragment_distribution(spec: Any, *, base_dir: Path | None = None) -> FragmentDistribution:
    """The distribution of simulated fragment lengths of ``spec`` (a DatasetSpec).

    ``normal``: the normal rounded to integers, truncated to :func:`truncation_bounds`;
    ``empirical``: the histogram's pmf over the same bounds, renormalised.

    Raises
    ------
    ModelError
        The empirical file is missing or malformed, or has no mass inside the bounds.
    """
    lo, hi = truncation_bounds(spec)
    return _distribution(spec.fragment, lo, hi, str(base_dir) if base_dir else None)


def fragment_moments(spec: Any, *, base_dir: Path | None = None) -> tuple[float, float]:
    """Mean and sd of the simulated fragment lengths (see :func:`fragment_distribution`)."""
    d = fragment_distribution(spec, base_dir=base_dir)
    return d.mean, d.sd


def nominal_fragment_mean(spec: Any, *, base_dir: Path | None = None) -> float:
    """The fragment length layout code centres on: ``fragment.mean`` for the normal model (as
    it always was, so existing datasets keep their bytes), the truncated mean of the
    histogram for the empirical one."""
    if getattr(spec.fragment, "model", "normal") != "empirical":
        return float(spec.fragment.mean)
    return fragment_distribution(spec, base_dir=base_dir).mean


def draw_fragment_lengths(
    *, rng: np.random.Generator, n: int, spec: Any, base_dir: Path | None = None,
    min_length: int | None = None,
) -> np.ndarray:
    """int64 (n,) fragment lengths of an empirical ``spec`` by inverse CDF with ``rng``.

    ``min_length`` raises the lower truncation bound (junction fragments must hold both
    reads whatever the adapter setting).
    """
    d = fragment_distribution(spec, base_dir=base_dir)
    if min_length is not None and min_length > int(d.lengths[0]):
        keep = d.lengths >= min_length
        d = FragmentDistribution.from_pmf(d.lengths[keep], d.probabilities[keep])
    return d.sample(rng, n)

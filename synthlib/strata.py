"""Stratification BEDs: where difficult sequence is, for placing truth there (``in_regions``).

Two parts:

- :func:`load_strata`, :func:`restrict`, :func:`contains`: read a stratification BED (a
  registered resource such as GIAB's, or a path; plain or gzipped) and keep random variants
  inside it (:mod:`synthlib.variants.spikes` calls these).
- :func:`homopolymers`, :func:`tandem_repeats`, :func:`build_demo_strata`: a small
  deterministic scanner that derives low-complexity strata from a reference sequence, used to
  make the bundled demo BEDs (``python -m synthlib.strata``; provenance in
  ``synthlib/data/references/PROVENANCE.md``). It mirrors the GIAB definitions in spirit
  (perfect homopolymers >= 7 bp; perfect tandem repeats of 2-6 bp units, >= 3 copies and
  >= 12 bp; both padded by 5 bp, GIAB's ``slop5``), not their exact tool chain.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from .errors import ReferenceDataError, VariantError
from .intervals import intersect, merge

__all__ = [
    "load_strata",
    "read_strata_bed",
    "restrict",
    "contains",
    "homopolymers",
    "tandem_repeats",
    "build_demo_strata",
    "SLOP",
    "MIN_HOMOPOLYMER",
]

#: Bases added on each side of every repeat (GIAB strata are ``_slop5``): an indel in a repeat
#: is left-aligned onto the base before it, which must still count as inside.
SLOP = 5
#: Shortest homopolymer of the demo stratum (GIAB ``homopolymer_7to11`` and longer).
MIN_HOMOPOLYMER = 7
#: Tandem repeats: unit lengths scanned, fewest copies and shortest span kept.
TR_PERIODS = (2, 3, 4, 5, 6)
TR_MIN_COPIES = 3
TR_MIN_LENGTH = 12


# ------------------------------------------------------------------------------------------
# Reading strata and keeping variants inside them
# ------------------------------------------------------------------------------------------


def read_strata_bed(path: Path) -> dict[str, np.ndarray]:
    """Read a BED (plain or gzipped; ``#``/track/browser lines skipped) into merged per-contig
    (k, 2) int64 half-open intervals, without padding.

    Raises
    ------
    ReferenceDataError
        Naming ``file:line`` for a malformed line.
    """
    path = Path(path)
    with path.open("rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    by_chrom: dict[str, list[tuple[int, int]]] = {}
    with opener(path, "rt") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip() or line.startswith(("#", "track", "browser")):
                continue
            f = line.rstrip("\n").split("\t")
            try:
                chrom, s, e = f[0], int(f[1]), int(f[2])
            except (IndexError, ValueError):
                raise ReferenceDataError("BED line needs CHROM<tab>START<tab>END",
                                         where=f"{path}:{n}") from None
            if s < 0 or e <= s:
                raise ReferenceDataError(f"bad interval {s}-{e}", where=f"{path}:{n}")
            by_chrom.setdefault(chrom, []).append((s, e))
    return {c: merge(np.array(v, dtype=np.int64)) for c, v in by_chrom.items()}


def load_strata(names: Iterable[str], *, base_dir: Path | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
    """Each ``in_regions`` value (resource name or path) -> its merged intervals per contig.

    Raises
    ------
    ReferenceDataError
        A name that is neither a resource nor a file, or a malformed BED.
    """
    from .resources import resolve_file

    out: dict[str, dict[str, np.ndarray]] = {}
    for name in names:
        if name not in out:
            out[name] = read_strata_bed(resolve_file(name, base_dir=base_dir,
                                                     what="stratification BED (in_regions)"))
    return out


def restrict(space: list[tuple[str, np.ndarray]], strata: dict[str, np.ndarray], *,
             where: str) -> list[tuple[str, np.ndarray]]:
    """``space`` (per-contig (k, 2) intervals, as given to random placement) inside ``strata``.

    Raises
    ------
    VariantError
        The two do not overlap at all (wrong contig names, or a stratum outside the regions).
    """
    out = []
    for chrom, iv in space:
        got = intersect(merge(iv), strata.get(chrom, np.zeros((0, 2), np.int64)))
        if len(got):
            out.append((chrom, got))
    if not out:
        raise VariantError("in_regions BED does not overlap the territory (check contig names "
                           "and reference.regions)", where=where)
    return out


def contains(strata: dict[str, np.ndarray], chrom: str, start: int, end: int) -> bool:
    """True when ``[start, end)`` lies inside one interval of ``strata`` (merged, sorted)."""
    iv = strata.get(chrom)
    if iv is None or not len(iv):
        return False
    k = int(np.searchsorted(iv[:, 0], start, side="right")) - 1
    return k >= 0 and end <= iv[k, 1]


# ------------------------------------------------------------------------------------------
# Deriving low-complexity strata from sequence
# ------------------------------------------------------------------------------------------


def _runs(flag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (half-open) of the True runs of a (n,) bool array."""
    d = np.diff(np.concatenate([[0], flag.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def homopolymers(seq: np.ndarray, *, min_length: int = MIN_HOMOPOLYMER) -> np.ndarray:
    """(k, 2) half-open runs of one base (A, C, G or T; never N) at least ``min_length`` long.

    Parameters
    ----------
    seq
        (n,) uint8 uppercase bases.
    """
    n = seq.size
    if n < min_length:
        return np.zeros((0, 2), np.int64)
    same = seq[1:] == seq[:-1]  # same[i]: base i+1 repeats base i
    s, e = _runs(same)
    starts, ends = s, e + 1  # a run of k equal pairs is k+1 bases
    keep = (ends - starts >= min_length) & np.isin(seq[starts], np.frombuffer(b"ACGT", np.uint8))
    return np.stack([starts[keep], ends[keep]], axis=1).astype(np.int64)


def tandem_repeats(seq: np.ndarray, *, periods: Iterable[int] = TR_PERIODS,
                   min_copies: int = TR_MIN_COPIES, min_length: int = TR_MIN_LENGTH
                   ) -> np.ndarray:
    """(k, 2) half-open perfect tandem repeats of 2-6 bp units, merged over periods.

    A stretch is periodic with period ``p`` where ``seq[i] == seq[i + p]`` holds for a run of
    ``L`` positions; it spans ``L + p`` bases (``(L + p) / p`` copies). Stretches made of one
    base (homopolymers) are left to :func:`homopolymers`. Ns never count.
    """
    found = []
    acgt = np.isin(seq, np.frombuffer(b"ACGT", np.uint8))
    for p in periods:
        if seq.size <= p:
            continue
        eq = (seq[p:] == seq[:-p]) & acgt[p:]
        s, e = _runs(eq)
        span = e - s + p
        keep = (span >= max(min_length, min_copies * p))
        for a, b in zip(s[keep], (e + p)[keep], strict=True):
            unit = seq[a:a + p]
            if np.all(unit == unit[0]):
                continue  # a homopolymer seen at period p
            found.append((int(a), int(b)))
    return merge(np.array(found, dtype=np.int64).reshape(-1, 2))


def _pad(iv: np.ndarray, slop: int, length: int) -> np.ndarray:
    if not len(iv):
        return iv
    return merge(np.stack([np.maximum(iv[:, 0] - slop, 0), np.minimum(iv[:, 1] + slop, length)],
                          axis=1))


def build_demo_strata(*, fasta: Path, regions: list[tuple[str, int, int]], out_dir: Path,
                      prefix: str, slop: int = SLOP) -> dict[str, Path]:
    """Scan ``regions`` (0-based half-open) of ``fasta`` and write two sorted BEDs:
    ``<prefix>_homopolymer_ge7_slop5.bed`` and ``<prefix>_tandemrepeat_2to6bp_slop5.bed``
    (name column: what the interval is). Returns role -> path."""
    import pysam

    rows: dict[str, list[str]] = {"homopolymer": [], "tandem-repeat": []}
    with pysam.FastaFile(str(fasta)) as fa:
        for chrom, start, end in regions:
            seq = np.frombuffer(fa.fetch(chrom, start, end).upper().encode("ascii"), np.uint8)
            for role, iv, label in (
                ("homopolymer", homopolymers(seq), f"homopolymer_ge{MIN_HOMOPOLYMER}"),
                ("tandem-repeat", tandem_repeats(seq), "tandem_repeat_2to6bp"),
            ):
                for a, b in _pad(iv, slop, seq.size):
                    rows[role].append(f"{chrom}\t{start + a}\t{start + b}\t{label}")
    out_dir = Path(out_dir)
    paths = {
        "homopolymer": out_dir / f"{prefix}_homopolymer_ge{MIN_HOMOPOLYMER}_slop{slop}.bed",
        "tandem-repeat": out_dir / f"{prefix}_tandemrepeat_2to6bp_slop{slop}.bed",
    }
    for role, path in paths.items():
        path.write_text("".join(r + "\n" for r in rows[role]))
    return paths


def main(argv: list[str] | None = None) -> int:
    """Rebuild the bundled demo strata (``python -m synthlib.strata``)."""
    from .resources import _REF_DIR, resolve_file

    fasta = resolve_file("grch37-chr20-demo.fasta")
    regions = [("chr20", 1_000_000, 2_000_000), ("chr20", 9_995_000, 11_095_000)]
    paths = build_demo_strata(fasta=fasta, regions=regions,
                              out_dir=_REF_DIR / "grch37-chr20-demo", prefix="GRCh37_chr20")
    for role, path in paths.items():
        lines = path.read_text().splitlines()
        bases = sum(int(x.split("\t")[2]) - int(x.split("\t")[1]) for x in lines)
        print(f"{role}: {path.name}: {len(lines)} intervals, {bases} bases", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The one reference every tool reads, cut from the bundled real GRCh37 chr20 slices.

Two files are written into the results folder:

- ``bench_ref.fa``: the two real, N-free chr20 slices (1,000,001-2,000,000 and
  9,995,001-11,095,000, 2.1 Mbp in all) as two contigs of a plain FASTA, with ``.fai``.
- ``long_ref.fa``: one synthetic chromosome-sized contig built by tiling those slices, for the
  memory run (a long contig is what stresses per-worker memory; the bundled data holds no
  real sequence that long).
"""

from __future__ import annotations

from pathlib import Path

import pysam

from synthlib.resources import get_reference_bundle, resolve_file

__all__ = ["REAL_SLICES", "extract_slices", "tile_contig", "sequence_bases"]

#: (contig name written, source contig, 0-based start, end) of the real sequence used.
REAL_SLICES = (
    ("chr20_1000001_2000000", "chr20", 1_000_000, 2_000_000),
    ("chr20_9995001_11095000", "chr20", 9_995_000, 11_095_000),
)

_LINE = 60


def _source_fasta() -> Path:
    bundle = get_reference_bundle("grch37-chr20-demo")
    return resolve_file(bundle.fasta, base_dir=Path("."), what="reference")


def _write_fasta(path: Path, records: list[tuple[str, str]]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        for name, seq in records:
            fh.write(f">{name}\n")
            for i in range(0, len(seq), _LINE):
                fh.write(seq[i : i + _LINE] + "\n")
    tmp.replace(path)
    pysam.faidx(str(path))


def _slices(*, limit: int | None = None) -> list[tuple[str, str]]:
    fa = pysam.FastaFile(str(_source_fasta()))
    try:
        out = []
        for name, contig, start, end in REAL_SLICES:
            seq = fa.fetch(contig, start, end).upper()
            if "N" in seq:
                raise ValueError(f"slice {name} holds N bases; the benchmark needs N-free input")
            out.append((name, seq[:limit] if limit else seq))
        return out
    finally:
        fa.close()


def extract_slices(*, out: Path, limit: int | None = None) -> Path:
    """Write the real slices (each cut to ``limit`` bases if given) as a plain indexed FASTA."""
    out = Path(out)
    if not (out.exists() and Path(str(out) + ".fai").exists()):
        out.parent.mkdir(parents=True, exist_ok=True)
        _write_fasta(out, _slices(limit=limit))
    return out


def tile_contig(*, out: Path, length: int, name: str = "chrL") -> Path:
    """Write one contig of ``length`` bases by repeating the real slices end to end."""
    if length < 1:
        raise ValueError("length must be positive")
    out = Path(out)
    if out.exists() and Path(str(out) + ".fai").exists():
        fai = Path(str(out) + ".fai").read_text().split("\t")
        if fai[0] == name and int(fai[1]) == length:
            return out
    unit = "".join(seq for _, seq in _slices())
    reps = -(-length // len(unit))
    _write_fasta(out, [(name, (unit * reps)[:length])])
    return out


def sequence_bases(fasta: Path) -> int:
    """Total bases of a FASTA, from its ``.fai``."""
    return sum(int(line.split("\t")[1])
               for line in Path(str(fasta) + ".fai").read_text().splitlines() if line)

"""Spiked variants: the spec's explicit list and random ones, placed before any read exists.

Spikes are global (not per chunk): they are drawn once from the spec's seed over the whole
territory, so the truth set depends on the spec alone.
"""

from __future__ import annotations

import numpy as np

from ..errors import VariantError
from ..reference import Reference
from ..spec import DatasetSpec, RandomVariants
from .model import Variant, normalize

__all__ = ["explicit_spikes", "random_spikes", "check_no_overlap", "GENOTYPES", "SPIKE_GAP"]

GENOTYPES = {"0|1": (0, 1), "1|0": (1, 0), "1|1": (1, 1), "het": (0, 1), "hom": (1, 1)}

#: Minimum bases between two random spikes, so each stays a separate, callable event.
SPIKE_GAP = 10

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)


def explicit_spikes(spec: DatasetSpec, reference: Reference) -> list[Variant]:
    """Validate the spec's explicit variants against the reference and normalize them.

    Raises
    ------
    VariantError
        Naming the variant (``variants.explicit[i] chr:pos REF>ALT``) when its contig is
        unknown, it runs past the contig end, covers an N, or REF does not match.
    """
    out = []
    for i, ev in enumerate(spec.variants.explicit):
        where = f"variants.explicit[{i}] {ev.chrom}:{ev.pos} {ev.ref}>{ev.alt}"
        if ev.chrom not in reference.lengths:
            raise VariantError(f"contig {ev.chrom!r} is not in the reference", where=where)
        pos = ev.pos - 1
        if pos + len(ev.ref) > reference.lengths[ev.chrom]:
            raise VariantError("runs past the end of the contig", where=where)
        actual = reference.fetch(ev.chrom, pos, pos + len(ev.ref)).decode()
        if "N" in actual:
            raise VariantError("lies in an N (unknown) stretch of the reference", where=where)
        if actual != ev.ref:
            raise VariantError(f"REF does not match the reference ({actual!r})", where=where)

        def fetch(a: int, b: int, chrom: str = ev.chrom) -> str:
            return reference.fetch(chrom, a, b).decode()

        npos, nref, nalt = normalize(pos, ev.ref, ev.alt, fetch)
        out.append(
            Variant(ev.chrom, npos, nref, nalt, gt=GENOTYPES[ev.genotype], source="spike",
                    vid=ev.id or ".")
        )
    check_no_overlap(sorted(out), what="variants.explicit")
    return sorted(out)


def check_no_overlap(variants: list[Variant], *, what: str) -> None:
    """Raise when two variants of a sorted list touch the same reference base."""
    for a, b in zip(variants, variants[1:], strict=False):
        if a.chrom == b.chrom and b.pos < a.end:
            raise VariantError(f"{a.label} and {b.label} overlap", where=what)


def _draw_positions(
    rng: np.random.Generator, territory: list[tuple[str, np.ndarray]], n: int
) -> list[tuple[str, int]]:
    lengths = np.concatenate([iv[:, 1] - iv[:, 0] for _, iv in territory])
    total = int(lengths.sum())
    if total == 0:
        return []
    offsets = rng.integers(0, total, size=n)
    cum = np.cumsum(lengths)
    idx = np.searchsorted(cum, offsets, side="right")
    starts = np.concatenate([iv[:, 0] for _, iv in territory])
    chroms = np.concatenate([[c] * len(iv) for c, iv in territory])
    prev = cum - lengths
    pos = starts[idx] + offsets - prev[idx]
    return [(str(chroms[k]), int(p)) for k, p in zip(idx, pos, strict=True)]


def _make_allele(
    rng: np.random.Generator, req: RandomVariants, ref_bases: bytes
) -> tuple[str, str]:
    size = int(rng.integers(req.min_size, req.max_size + 1))
    if req.type == "snv":
        r = ref_bases[:1]
        alt = _ACGT[_ACGT != r[0]][rng.integers(0, 3)]
        return r.decode(), chr(alt)
    if req.type == "mnv":
        r = ref_bases[:size]
        shift = rng.integers(1, 4, size=len(r))
        codes = np.searchsorted(_ACGT, np.frombuffer(r, dtype=np.uint8))
        alt = _ACGT[(codes + shift) % 4].tobytes()
        return r.decode(), alt.decode()
    if req.type == "insertion":
        ins = _ACGT[rng.integers(0, 4, size=size)].tobytes()
        return ref_bases[:1].decode(), (ref_bases[:1] + ins).decode()
    # deletion
    return ref_bases[: size + 1].decode(), ref_bases[:1].decode()


def random_spikes(
    spec: DatasetSpec,
    reference: Reference,
    *,
    territory: list[tuple[str, np.ndarray]],
    targets: list[tuple[str, np.ndarray]] | None,
    taken: list[Variant],
    rng: np.random.Generator,
) -> list[Variant]:
    """Place the spec's random variants uniformly, avoiding Ns, each other and ``taken``.

    Parameters
    ----------
    territory
        Per contig, accessible intervals (k, 2) where variants may go.
    targets
        Per contig, target intervals (for ``in_targets`` requests).
    taken
        Variants already placed (the explicit ones).

    Raises
    ------
    VariantError
        If a request cannot be placed (territory too small or too crowded).
    """
    placed: list[Variant] = list(taken)
    occupied: dict[str, list[tuple[int, int]]] = {}
    for v in placed:
        occupied.setdefault(v.chrom, []).append((v.pos - SPIKE_GAP, v.end + SPIKE_GAP))
    out: list[Variant] = []
    for i, req in enumerate(spec.variants.random):
        where = f"variants.random[{i}] ({req.type} x{req.count})"
        space = targets if req.in_targets else territory
        if req.in_targets and not targets:
            raise VariantError("in_targets needs an exome or panel assay with targets", where=where)
        got = 0
        for _attempt in range(50):
            need = req.count - got
            for chrom, p in _draw_positions(rng, space, need * 2):
                if got == req.count:
                    break
                span = req.max_size + 2
                ref_bases = reference.fetch(chrom, p, p + span)
                if len(ref_bases) < span or b"N" in ref_bases:
                    continue
                ref, alt = _make_allele(rng, req, ref_bases)

                def fetch(a: int, b: int, chrom: str = chrom) -> str:
                    return reference.fetch(chrom, a, b).decode()

                npos, nref, nalt = normalize(p, ref, alt, fetch)
                lo, hi = npos - SPIKE_GAP, npos + len(nref) + SPIKE_GAP
                if any(a < hi and lo < b for a, b in occupied.get(chrom, [])):
                    continue
                gt = GENOTYPES[req.genotype] if req.genotype != "mixed" else (
                    (1, 1) if rng.random() < 1 / 3 else (0, 1))
                out.append(Variant(chrom, npos, nref, nalt, gt=gt, source="spike",
                                   vid=f"rand_{req.type}_{i}_{got}"))
                occupied.setdefault(chrom, []).append((lo, hi))
                got += 1
            if got == req.count:
                break
        if got < req.count:
            raise VariantError(
                f"placed only {got} of {req.count}: the territory is too small or crowded",
                where=where,
            )
    return sorted(out)

"""Spiked variants: the spec's explicit list and random ones, placed before any read exists.

Spikes are global (not per chunk): they are drawn once from the spec's seed over the whole
territory, so the truth set depends on the spec alone.
"""

from __future__ import annotations

import numpy as np

from ..errors import VariantError
from ..intervals import merge
from ..reference import Reference
from ..spec import DatasetSpec, RandomSV, RandomVariants
from .breakend import (
    TRA,
    check_breaks_clear,
    junction_pad,
    make_translocation,
    random_translocations,
)
from .complex import envelope_size, make_complex, random_layout
from .model import Variant, normalize, variant_key
from .occupancy import Occupancy
from .sv import SV_TYPES, check_sv_fits, cnv_genotype, make_sv

__all__ = ["explicit_spikes", "random_spikes", "check_no_overlap", "GENOTYPES", "SPIKE_GAP",
           "SV_GAP"]

#: Spawn keys of the somatic and SV spike streams (beside ``Streams.SPIKES`` = 3), so adding
#: or dropping somatic variants or SVs never moves the other spikes (tumor/normal share them).
_SOMATIC_KEY = (3, 1)
_SV_KEY = (3, 2)
_SOMATIC_SV_KEY = (3, 5)

#: Minimum bases between an SV and any other spike.
SV_GAP = 500

GENOTYPES = {"0|1": (0, 1), "1|0": (1, 0), "1|1": (1, 1), "het": (0, 1), "hom": (1, 1)}

#: Minimum bases between two random spikes, so each stays a separate, callable event.
SPIKE_GAP = 10

_ACGT = np.frombuffer(b"ACGT", dtype=np.uint8)
#: For each base of ``_ACGT``, the other three (SNV alternate alleles).
_OTHERS = np.array([[b for b in _ACGT if b != a] for a in _ACGT], dtype=np.uint8)
_ACGT_CODE = np.zeros(256, dtype=np.intp)
_ACGT_CODE[_ACGT] = np.arange(4)


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
        gt = GENOTYPES[ev.genotype]
        _check_vaf(spec, ev.vaf, gt, where=where)
        out.append(
            Variant(ev.chrom, npos, nref, nalt, gt=gt, source="somatic" if ev.vaf else "spike",
                    vid=ev.id or ".", vaf=ev.vaf)
        )
    n_plain = n_som = 0
    for i, sv in enumerate(spec.variants.structural.explicit):
        where = f"variants.structural.explicit[{i}] {sv.type} {sv.chrom}:{sv.pos}"
        if sv.chrom not in reference.lengths:
            raise VariantError(f"contig {sv.chrom!r} is not in the reference", where=where)
        svtype = SV_TYPES[sv.type]
        gt = GENOTYPES[sv.genotype]
        _check_vaf(spec, sv.vaf, gt if svtype != "CNV" else cnv_genotype(sv.cn or 0),
                   where=where)
        # Somatic SVs count in their own key space: the matched normal (without them) gets
        # the same random insert sequences for the others.
        key = (*_SV_KEY, n_plain) if sv.vaf is None else (*_SOMATIC_SV_KEY, n_som)
        n_plain, n_som = n_plain + (sv.vaf is None), n_som + (sv.vaf is not None)
        if svtype == TRA:
            out += make_translocation(
                reference=reference, chrom=sv.chrom, bp=sv.pos - 1, chrom2=sv.chrom2 or "",
                bp2=(sv.pos2 or 0) - 1, gt=gt, vid=sv.id or f"tra_{i}",
                pad=junction_pad(spec), vaf=sv.vaf, where=where)
            continue
        if svtype == "CPX":
            v = make_complex(
                reference=reference, chrom=sv.chrom, pos=sv.pos - 2, subtype=sv.subtype or "",
                sizes=list(sv.sizes or []), gt=gt, vid=sv.id or ".", sequence=sv.sequence,
                rng=np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=key)))
            check_sv_fits(spec, sv.chrom, v.pos, v.end, where=where)
            out.append(v)
            continue
        size = (len(sv.sequence) if sv.sequence else sv.length) if svtype == "INS" else (
            sv.end - sv.pos + 1)
        v = make_sv(reference=reference, chrom=sv.chrom, pos=sv.pos - 2, svtype=svtype,
                    size=size, gt=gt, vid=sv.id or where, cn=sv.cn,
                    sequence=sv.sequence, vaf=sv.vaf,
                    rng=np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=key)))
        if sv.id is None:
            v = _with_vid(v, ".")
        check_sv_fits(spec, sv.chrom, v.pos, max(v.end, v.pos + 2), where=where)
        out.append(v)
    out.sort(key=variant_key)
    check_no_overlap(out, what="variants.explicit")
    check_breaks_clear(out, pad=junction_pad(spec), what="variants.structural.explicit")
    return out


def _with_vid(v: Variant, vid: str) -> Variant:
    from dataclasses import replace

    return replace(v, vid=vid)


def _check_vaf(spec: DatasetSpec, vaf: float | None, gt: tuple[int, int], *, where: str) -> None:
    if vaf is None:
        return
    purity = spec.somatic.purity if spec.somatic else 1.0
    if 2 * vaf / max(1, sum(gt)) > purity + 1e-12:
        raise VariantError(
            f"vaf {vaf} needs more tumor cells than purity {purity} gives "
            f"(at most {purity * sum(gt) / 2:g} for this genotype)", where=where)


def check_no_overlap(variants: list[Variant], *, what: str) -> None:
    """Raise when two variants of a sorted list touch the same reference base."""
    for a, b in zip(variants, variants[1:], strict=False):
        if a.chrom == b.chrom and b.pos < a.end:
            raise VariantError(f"{a.label} and {b.label} overlap", where=what)


def _draw_arrays(
    rng: np.random.Generator, territory: list[tuple[str, np.ndarray]], n: int
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``n`` positions uniform over ``territory``: (contig names, contig index into them (n,),
    0-based position (n,)); empty arrays when the territory is empty."""
    names = [c for c, _ in territory]
    lengths = np.concatenate([iv[:, 1] - iv[:, 0] for _, iv in territory])
    total = int(lengths.sum())
    if total == 0:
        return names, np.zeros(0, np.int64), np.zeros(0, np.int64)
    offsets = rng.integers(0, total, size=n)
    cum = np.cumsum(lengths)
    idx = np.searchsorted(cum, offsets, side="right")
    starts = np.concatenate([iv[:, 0] for _, iv in territory])
    chroms = np.concatenate([np.full(len(iv), k, np.int64) for k, (_, iv) in enumerate(territory)])
    prev = cum - lengths
    return names, chroms[idx], starts[idx] + offsets - prev[idx]


def _pairs(names: list[str], chrom: np.ndarray, pos: np.ndarray) -> list[tuple[str, int]]:
    """:func:`_draw_arrays` output as ``(contig, position)`` pairs."""
    return [(names[c], p) for c, p in zip(chrom.tolist(), pos.tolist(), strict=True)]


def _draw_positions(
    rng: np.random.Generator, territory: list[tuple[str, np.ndarray]], n: int
) -> list[tuple[str, int]]:
    return _pairs(*_draw_arrays(rng, territory, n))


#: Candidates closer than this share one reference read (one ``fetch`` per cluster).
_FETCH_GAP = 8192


def _windows(reference: Reference, names: list[str], chrom: np.ndarray, pos: np.ndarray,
             span: int) -> list[bytes]:
    """``reference.fetch(names[chrom[k]], pos[k], pos[k] + span)`` for every candidate k,
    read in clusters: thousands of candidates per Mbp each cost a reference read (~13 us)
    otherwise."""
    out: list[bytes] = [b""] * len(pos)
    for c, name in enumerate(names):
        ks = np.flatnonzero(chrom == c)
        order = np.argsort(pos[ks], kind="stable")
        sp = pos[ks][order].tolist()
        cuts = np.flatnonzero(np.diff(pos[ks][order]) > _FETCH_GAP) + 1
        for run in np.split(np.arange(len(sp)), cuts):
            if not len(run):
                continue
            lo, hi = sp[run[0]], sp[run[-1]] + span
            block = reference.fetch(name, lo, hi)
            for i in run.tolist():
                a = sp[i] - lo
                out[ks[order[i]]] = block[a:a + span]
    return out


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
    strata: dict[str, dict[str, np.ndarray]] | None = None,
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
    strata
        ``in_regions`` name -> its intervals per contig (:func:`synthlib.strata.load_strata`).

    Raises
    ------
    VariantError
        If a request cannot be placed (territory too small or too crowded).
    """
    placed: list[Variant] = list(taken)
    occupied = Occupancy()
    for v in placed:
        gap = max(SV_GAP, junction_pad(spec)) if v.svtype == TRA else (
            SV_GAP if v.svtype else SPIKE_GAP)
        occupied.add(v.chrom, v.pos - gap, v.end + gap)
    out: list[Variant] = []
    # SVs first (they need the most room), each family from its own stream: germline-like
    # spikes keep their places whether or not SVs or somatic groups are asked for.
    sv_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=_SV_KEY))
    for i, sreq in enumerate(spec.variants.structural.random):
        if sreq.vaf is None:
            out += _random_svs(spec, reference, sreq, i, territory=territory,
                               occupied=occupied, rng=sv_rng)
    somatic_rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=_SOMATIC_KEY))
    groups = [r for r in spec.variants.random if r.vaf is None]
    groups += [r for r in spec.variants.random if r.vaf is not None]
    n_plain = sum(r.vaf is None for r in spec.variants.random)
    for k, req in enumerate(groups):
        if k == n_plain:
            out += _somatic_svs(spec, reference, territory=territory, occupied=occupied)
            rng = somatic_rng
        tag = "rand" if req.vaf is None else "som"
        i = k if req.vaf is None else k - n_plain
        where = f"variants.random ({tag} {req.type} #{i} x{req.count})"
        space = targets if req.in_targets else territory
        if req.in_targets and not targets:
            raise VariantError("in_targets needs an exome or panel assay with targets", where=where)
        stratum = None
        if req.in_regions:  # a stratification BED: draw inside it, keep what stays inside
            from ..strata import contains, restrict

            stratum = (strata or {}).get(req.in_regions)
            if stratum is None:
                raise VariantError(f"in_regions {req.in_regions!r} was not loaded", where=where)
            space = restrict(space, stratum, where=where)
        if req.type == "snv" and stratum is None:
            out += _random_snvs(spec, reference, req, space, occupied=occupied, rng=rng,
                                tag=tag, i=i, where=where)
            continue
        got = 0
        for _attempt in range(50):
            need = req.count - got
            span = req.max_size + 2
            names, codes, at = _draw_arrays(rng, space, need * 2)
            drawn = _pairs(names, codes, at)
            for (chrom, p), ref_bases in zip(drawn, _windows(reference, names, codes, at,
                                                             span), strict=True):
                if got == req.count:
                    break
                if len(ref_bases) < span or b"N" in ref_bases:
                    continue
                ref, alt = _make_allele(rng, req, ref_bases)

                def fetch(a: int, b: int, chrom: str = chrom) -> str:
                    return reference.fetch(chrom, a, b).decode()

                npos, nref, nalt = normalize(p, ref, alt, fetch)
                if stratum is not None and not contains(stratum, chrom, npos, npos + len(nref)):
                    continue
                lo, hi = npos - SPIKE_GAP, npos + len(nref) + SPIKE_GAP
                if occupied.overlaps(chrom, lo, hi):
                    continue
                gt = GENOTYPES[req.genotype] if req.genotype != "mixed" else (
                    (1, 1) if rng.random() < 1 / 3 else (0, 1))
                _check_vaf(spec, req.vaf, gt, where=where)
                out.append(Variant(chrom, npos, nref, nalt, gt=gt,
                                   source="somatic" if req.vaf else "spike",
                                   vid=f"{tag}_{req.type}_{i}_{got}", vaf=req.vaf))
                occupied.add(chrom, lo, hi)
                got += 1
            if got == req.count:
                break
        if got < req.count:
            raise VariantError(
                f"placed only {got} of {req.count}: the territory is too small or crowded",
                where=where,
            )
    if n_plain == len(groups):
        out += _somatic_svs(spec, reference, territory=territory, occupied=occupied)
    return sorted(out, key=variant_key)


def _random_snvs(spec: DatasetSpec, reference: Reference, req: RandomVariants,
                 space: list[tuple[str, np.ndarray]], *, occupied: Occupancy,
                 rng: np.random.Generator, tag: str, i: int, where: str) -> list[Variant]:
    """Random SNVs, placed a batch of candidates at a time.

    The rules are those of the per-candidate loop that places the other types: candidates
    are taken in draw order, and each is kept if its ``max_size + 2`` bases hold no N and
    it stays ``SPIKE_GAP`` bases from everything placed before it. That loop cost about
    35 us a spike, so 30,000 spikes took 1.1 s of a flow's serial start.
    """
    span = req.max_size + 2
    out: list[Variant] = []
    for _attempt in range(50):
        need = req.count - len(out)
        if need == 0:
            break
        names, chrom, pos = _draw_arrays(rng, space, need * 2)
        if not len(pos):
            break
        windows = _windows(reference, names, chrom, pos, span)
        ok = np.fromiter((len(w) == span and b"N" not in w for w in windows), bool,
                         count=len(pos))
        lo, hi = pos - SPIKE_GAP, pos + 1 + SPIKE_GAP
        for c, name in enumerate(names):
            sel = np.flatnonzero(ok & (chrom == c))
            ok[sel] = ~occupied.overlaps_many(name, lo[sel], hi[sel])
        idx = np.flatnonzero(_first_come(chrom, lo, hi, ok))[:need]
        ref = np.frombuffer(b"".join(windows[k][:1] for k in idx), dtype=np.uint8)
        alt = _OTHERS[_ACGT_CODE[ref], rng.integers(0, 3, size=len(idx))]
        if req.genotype == "mixed":
            hom = rng.random(len(idx)) < 1 / 3
            gts = [(1, 1) if h else (0, 1) for h in hom.tolist()]
        else:
            gts = [GENOTYPES[req.genotype]] * len(idx)
        for gt in set(gts):
            _check_vaf(spec, req.vaf, gt, where=where)
        source = "somatic" if req.vaf else "spike"
        for k, r, a, gt in zip(idx.tolist(), ref.tobytes().decode(), alt.tobytes().decode(),
                               gts, strict=True):
            out.append(Variant(names[chrom[k]], int(pos[k]), r, a, gt=gt, source=source,
                               vid=f"{tag}_snv_{i}_{len(out)}", vaf=req.vaf))
        for c, name in enumerate(names):
            sel = idx[chrom[idx] == c]
            occupied.add_many(name, lo[sel], hi[sel])
    if len(out) < req.count:
        raise VariantError(
            f"placed only {len(out)} of {req.count}: the territory is too small or crowded",
            where=where,
        )
    return out


def _first_come(chrom: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray
                ) -> np.ndarray:
    """Which of the ``ok`` candidates survive when each, in order, is dropped if it overlaps
    one kept before it. Intervals all have one length, so a candidate that overlaps another
    overlaps its neighbour in position order: only those clusters are resolved one by one.
    """
    keep = ok.copy()
    cand = np.flatnonzero(ok)
    if len(cand) < 2:
        return keep
    srt = cand[np.lexsort((lo[cand], chrom[cand]))]
    clash = (chrom[srt[1:]] == chrom[srt[:-1]]) & (lo[srt[1:]] < hi[srt[:-1]])
    involved = np.zeros(len(srt), dtype=bool)
    involved[1:] |= clash
    involved[:-1] |= clash
    kept = Occupancy()
    for k in np.sort(srt[involved]).tolist():
        name = str(chrom[k])
        if kept.overlaps(name, int(lo[k]), int(hi[k])):
            keep[k] = False
        else:
            kept.add(name, int(lo[k]), int(hi[k]))
    return keep


def _somatic_svs(spec: DatasetSpec, reference: Reference, *, territory, occupied) -> list:
    """Random somatic SV groups, from their own stream and after every germline-like spike,
    so the matched normal (which has none) places all its other spikes identically."""
    rng = np.random.default_rng(np.random.SeedSequence(spec.seed, spawn_key=_SOMATIC_SV_KEY))
    out: list[Variant] = []
    for i, sreq in enumerate(spec.variants.structural.random):
        if sreq.vaf is not None:
            out += _random_svs(spec, reference, sreq, i, territory=territory,
                               occupied=occupied, rng=rng)
    return out


def _random_svs(
    spec: DatasetSpec, reference: Reference, req: RandomSV, i: int, *,
    territory: list[tuple[str, np.ndarray]], occupied: Occupancy,
    rng: np.random.Generator,
) -> list[Variant]:
    """Place one random SV group: whole span accessible, inside one chunk, apart from others."""
    where = f"variants.structural.random[{i}] ({req.type} x{req.count})"
    svtype = SV_TYPES[req.type]
    if svtype == TRA:
        gts = [GENOTYPES[req.genotype] if req.genotype != "mixed" else (
            (1, 1) if rng.random() < 1 / 3 else (0, 1)) for _ in range(req.count)]
        for g in gts:
            _check_vaf(spec, req.vaf, g, where=where)
        return random_translocations(
            reference=reference, territory=territory, occupied=occupied, rng=rng, gts=gts,
            pad=junction_pad(spec), vaf=req.vaf, prefix=f"sv_translocation_{i}", where=where)
    cs, margin = spec.chunk_size, 2 * spec.fragment.max + 64
    runs: dict[str, np.ndarray] = {}
    for c, iv in territory:
        runs[c] = merge(np.concatenate([runs.get(c, np.zeros((0, 2), np.int64)), iv]))
    out: list[Variant] = []
    for _attempt in range(200):
        if len(out) == req.count:
            break
        for chrom, p in _draw_positions(rng, territory, 4 * (req.count - len(out))):
            if len(out) == req.count:
                break
            size = int(np.exp(rng.uniform(np.log(req.min_size), np.log(req.max_size + 1))))
            size = min(max(size, req.min_size), req.max_size)
            if svtype == "CPX":  # subtype and piece sizes (the first piece's is `size`)
                sub, sizes = random_layout(rng, req.subtype or [], size, req.min_size,
                                           req.max_size)
                size = envelope_size(sub, sizes)
            end = p + 1 + (0 if svtype == "INS" else size)
            iv = runs[chrom]
            k = int(np.searchsorted(iv[:, 0], p, side="right")) - 1
            if k < 0 or end + 1 > iv[k, 1]:
                continue  # the span leaves the accessible territory
            chunk_lo = (p // cs) * cs + margin
            if p < chunk_lo or end + 1 > (p // cs + 1) * cs:
                continue
            lo, hi = p - SV_GAP, end + SV_GAP
            if occupied.overlaps(chrom, lo, hi):
                continue
            gt = GENOTYPES[req.genotype] if req.genotype != "mixed" else (
                (1, 1) if rng.random() < 1 / 3 else (0, 1))
            cn = int(rng.choice(req.cn)) if svtype == "CNV" else None
            _check_vaf(spec, req.vaf, cnv_genotype(cn) if cn is not None else gt, where=where)
            try:
                if svtype == "CPX":
                    v = make_complex(reference=reference, chrom=chrom, pos=p, subtype=sub,
                                     sizes=sizes, gt=gt, vid=f"sv_{req.type}_{i}_{len(out)}",
                                     rng=rng)
                else:
                    v = make_sv(reference=reference, chrom=chrom, pos=p, svtype=svtype,
                                size=size, gt=gt, vid=f"sv_{req.type}_{i}_{len(out)}", cn=cn,
                                rng=rng, vaf=req.vaf)
            except VariantError:
                continue
            if v.pos < chunk_lo or occupied.overlaps(chrom, v.pos - SV_GAP, v.end + SV_GAP):
                continue  # left-alignment moved it out of bounds
            occupied.add(chrom, lo, hi)
            out.append(v)
    if len(out) < req.count:
        raise VariantError(
            f"placed only {len(out)} of {req.count}: SVs must fit inside one chunk with "
            "margins, in accessible territory, apart from other spikes", where=where)
    return out

"""The variants of a grid chunk: spikes plus the germline background, conflicts resolved.

Rules (documented, deterministic):
- a germline variant within one base of a spike is not placed (the spike wins);
- a germline variant overlapping an earlier placed germline variant on a shared haplotype is
  not placed (the earlier one, by position, wins);
- germline variants strictly inside a duplication, CNV or inversion stay (every copy of their
  haplotype carries them, so B-allele fractions follow copy number), unless their haplotype
  has no copy left there (a deletion, CN 0/1), where they are not placed;
- germline variants whose REF span crosses the chunk end are not placed (chunks stay independent);
- somatic spikes (with a VAF) never displace germline variants: one within a base of a placed
  germline variant is dropped (so a tumor and its matched normal share the germline);
- on a haploid locus (``sample.sex``/``sample.ploidy``) only haplotype 0's germline draw is
  kept (the allele is present with probability AF; GT ``1``); an absent locus has none.
"""

from __future__ import annotations

import bisect

import numpy as np

from ..plan import Plan, Streams, WorkUnit, unit_seed
from .breakend import TRA
from .germline import participant_genotypes, sample_germline
from .model import Variant, variant_key
from .ploidy import haploid_germline
from .sv import hap_copies

__all__ = ["chunk_variants", "window_variants"]


def _rides_in(v: Variant, sv: Variant) -> bool:
    """Whether germline ``v`` stays inside structural variant ``sv``: strictly inside its span
    (clear of the anchor and the far junction base) and on haplotypes that keep at least one
    copy of it (a duplicated or inverted copy carries it; a deleted one cannot)."""
    if sv.svend is None or sv.svtype in (None, TRA):
        return False
    if not (sv.pos + 1 < v.pos and v.end < sv.svend):
        return False
    return all(hap_copies(sv, h) > 0 for h in range(2) if v.gt[h])


def _resolve(germline: list[Variant], spikes: list[Variant]) -> list[Variant]:
    starts = [s.pos - 1 for s in spikes]
    accepted: list[Variant] = []
    last_end = [-1, -1]
    for v in sorted(germline, key=lambda x: (x.pos, x.end, x.alt)):
        # Spikes never overlap each other, so the last one starting before v.end has the
        # largest end of all candidates: checking it alone suffices.
        k = bisect.bisect_left(starts, v.end) - 1
        if k >= 0 and spikes[k].end + 1 > v.pos and not _rides_in(v, spikes[k]):
            continue
        if any(v.gt[h] and v.pos < last_end[h] for h in range(2)):
            continue
        for h in range(2):
            if v.gt[h]:
                last_end[h] = v.end
        accepted.append(v)
    return accepted


def chunk_variants(plan: Plan, unit: WorkUnit) -> list[Variant]:
    """All variants whose POS lies in ``unit``'s chunk, sorted; recomputable anywhere.

    The germline draws come from the chunk's own stream (spec seed, contig, grid number).
    """
    cache = plan.__dict__.setdefault("_chunk_cache", {})
    key = (unit.contig, unit.grid)
    if key in cache:
        return cache[key]
    spikes = plan.spikes_in(unit.contig, unit.start, unit.end)
    germline: list[Variant] = []
    if plan.germline_vcf is not None:
        rng = np.random.default_rng(
            unit_seed(plan.spec.seed, Streams.GERMLINE, unit.contig_index, unit.grid))
        def fetch(a: int, b: int) -> str:
            return plan.reference.fetch(unit.contig, a, b).decode()

        gs = plan.spec.germline
        for a, b in unit.regions:
            if gs.source == "sample":
                germline += participant_genotypes(
                    vcf=plan.germline_vcf, sample=gs.sample, chrom=unit.contig, start=int(a),
                    end=int(b), rng=rng, max_indel=gs.max_indel, fetch=fetch)
            else:
                germline += sample_germline(
                    vcf=plan.germline_vcf, chrom=unit.contig, start=int(a), end=int(b), rng=rng,
                    population=gs.population, max_indel=gs.max_indel, fetch=fetch)
    # Somatic spikes do not displace germline variants (a matched normal, which has no
    # somatic spikes, must get the same germline); a somatic spike within one base of a
    # placed germline variant is dropped instead.
    # Haploid loci keep haplotype 0's draws; absent ones (female chrY) none.
    germline = haploid_germline(germline, getattr(plan, "ploidy", {}))
    plain = [v for v in spikes if v.vaf is None]
    accepted = _resolve(germline, plain)
    somatic = [v for v in spikes if v.vaf is not None]
    if somatic:
        # A somatic symbolic SV only needs its anchor and first base clear: germline variants
        # inside it stay (cells without it keep them; on its haplotype the SV hides them).
        somatic = [v for v in somatic
                   if not any(g.pos <= (v.pos + 1 if v.svend is not None else v.end)
                              and v.pos <= g.end for g in accepted)]
    result = sorted(plain + somatic + accepted, key=variant_key)
    if len(cache) > 4:
        cache.clear()
    cache[key] = result
    return result


def window_variants(plan: Plan, unit: WorkUnit, end: int) -> list[Variant]:
    """Variants with POS in ``[unit.start, end)``: this chunk's and the following chunks'."""
    out = list(chunk_variants(plan, unit))
    for other in plan.units[unit.index + 1 :]:
        if other.contig != unit.contig or other.start >= end:
            break
        out += [v for v in chunk_variants(plan, other) if v.pos < end]
    return out

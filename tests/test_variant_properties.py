"""Property-based checks of the variant engine (hypothesis) on a real reference window."""

from __future__ import annotations

from pathlib import Path

import pytest
from _variant_checks import FASTA
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from synthlib.errors import VariantError
from synthlib.reference import Reference
from synthlib.spec import parse_spec
from synthlib.variants.haplotype import INSERTED, build_haplotypes
from synthlib.variants.model import Variant, normalize
from synthlib.variants.spikes import explicit_spikes
from synthlib.variants.vcf_source import vcf_variants

REF = Reference(FASTA)
START, WIDTH = 1_000_000, 600  # real GRCh37 chr20 sequence, no N
WINDOW = REF.fetch("chr20", START, START + WIDTH).decode()
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _fetch(a: int, b: int) -> str:
    return REF.fetch("chr20", a, b).decode()


@st.composite
def small_variant(draw, lo: int = 20, hi: int = WIDTH - 60):
    """One SNV/MNV/insertion/deletion at a random place of the window (REF from it)."""
    off = draw(st.integers(lo, hi))
    kind = draw(st.sampled_from(["snv", "mnv", "ins", "del"]))
    size = draw(st.integers(1, 12))
    ref_base = WINDOW[off]
    if kind == "snv":
        ref, alt = ref_base, draw(st.sampled_from([b for b in "ACGT" if b != ref_base]))
    elif kind == "mnv":
        ref = WINDOW[off:off + size + 1]
        alt = "".join(draw(st.sampled_from([b for b in "ACGT" if b != c])) for c in ref)
    elif kind == "ins":
        ref, alt = ref_base, ref_base + draw(st.text("ACGT", min_size=size, max_size=size))
    else:
        ref, alt = WINDOW[off:off + size + 1], ref_base
    gt = draw(st.sampled_from([(0, 1), (1, 0), (1, 1)]))
    return START + off, ref, alt, gt


def _apply_strings(variants: list[Variant], hap: int) -> str:
    """Independent edit: splice each carried ALT into the reference string, right to left."""
    s = WINDOW
    for v in sorted((v for v in variants if v.gt[hap]), key=lambda v: -v.pos):
        a = v.pos - START
        assert s[a:a + len(v.ref)] == v.ref
        s = s[:a] + v.alt + s[a + len(v.ref):]
    return s


def _per_haplotype_disjoint(variants: list[Variant]) -> list[Variant]:
    """Keep variants greedily so that no two share a base on a haplotype they both carry."""
    kept: list[Variant] = []
    for v in sorted(variants):
        if all(not (v.pos < k.end and k.pos < v.end and (v.gt[0] and k.gt[0] or
                                                          v.gt[1] and k.gt[1])) for k in kept):
            kept.append(v)
    return kept


@SETTINGS
@given(st.lists(small_variant(), min_size=1, max_size=25))
def test_haplotypes_equal_string_edits(raw):
    variants = _per_haplotype_disjoint(
        [Variant("chr20", p, r, a, gt=gt) for p, r, a, gt in raw if r != a])
    haps = build_haplotypes(WINDOW.encode(), start=START, variants=variants)
    assert len(haps) == 2
    for h, hap in enumerate(haps):
        seq = hap.seq.tobytes().decode()
        assert seq == _apply_strings(variants, h)
        mapped = hap.ref_pos != INSERTED
        rp = hap.ref_pos[mapped]
        # Mapped positions strictly increase (no SVs here); unchanged bases match the reference.
        assert (rp[1:] > rp[:-1]).all()
        carried = [v for v in variants if v.gt[h]]
        in_alt = {v.pos + k for v in carried for k in range(min(len(v.ref), len(v.alt)))}
        for i in mapped.nonzero()[0]:
            p = int(hap.ref_pos[i])
            if p not in in_alt:
                assert seq[i] == WINDOW[p - START]
        # ref_index: the first haplotype base at or after each reference position.
        for p in range(START, START + WIDTH, 7):
            later = [i for i in mapped.nonzero()[0] if hap.ref_pos[i] >= p]
            assert hap.ref_index[p - START] == (later[0] if later else len(seq))
        inserted = sum(max(0, len(v.alt) - len(v.ref)) for v in carried)
        assert int((~mapped).sum()) == inserted


@SETTINGS
@given(small_variant())
def test_normalize_is_idempotent_and_keeps_the_edit(one):
    pos, ref, alt, gt = one
    if ref == alt:
        return
    n1 = normalize(pos, ref, alt, _fetch)
    assert normalize(*n1, _fetch) == n1
    npos, nref, nalt = n1
    assert _fetch(npos, npos + len(nref)) == nref
    before = Variant("chr20", pos, ref, alt, gt=(1, 1))
    after = Variant("chr20", npos, nref, nalt, gt=(1, 1))
    # Left-aligned or not, the edited haplotype is the same sequence.
    assert _apply_strings([before], 0) == _apply_strings([after], 0)


def _spans_overlap(spans: list[tuple[int, int]]) -> bool:
    spans = sorted(spans)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))


@SETTINGS
@given(st.lists(small_variant(), min_size=2, max_size=8))
def test_explicit_spike_overlap_rule(raw):
    # Rule: explicit spikes may not share a reference base (after normalization); a clash
    # raises naming both variants, anything else is accepted unchanged in number.
    raw = [x for x in raw if x[1] != x[2]]
    spec = parse_spec({
        "id": "prop", "seed": 1, "reason": "t", "coverage": 1, "germline": {"source": "none"},
        "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,001,000"]},
        "variants": {"explicit": [{"chrom": "chr20", "pos": p + 1, "ref": r, "alt": a,
                                   "genotype": f"{gt[0]}|{gt[1]}"} for p, r, a, gt in raw]}})
    spans = []
    for p, r, a, _ in raw:
        npos, nref, _ = normalize(p, r, a, _fetch)
        spans.append((npos, npos + len(nref)))
    event("overlap" if _spans_overlap(spans) else "disjoint")
    if _spans_overlap(spans):
        with pytest.raises(VariantError, match="overlap") as exc:
            explicit_spikes(spec, REF)
        assert "chr20:" in str(exc.value)
    else:
        assert len(explicit_spikes(spec, REF)) == len(raw)


@SETTINGS
@given(st.lists(small_variant(), min_size=2, max_size=8))
def test_vcf_records_haplotype_overlap_rule(tmp_path_factory, raw):
    # VCF records may overlap on different haplotypes (a truth VCF's germline does); two on
    # one base of a haplotype raise naming the file and line.
    raw = sorted(x for x in raw if x[1] != x[2])
    path = Path(tmp_path_factory.mktemp("prop")) / "v.vcf"
    rows = [f"chr20\t{p + 1}\tv{i}\t{r}\t{a}\t.\tPASS\t.\tGT\t{gt[0]}|{gt[1]}"
            for i, (p, r, a, gt) in enumerate(raw)]
    path.write_text("##fileformat=VCFv4.3\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\t"
                    "FORMAT\tS\n" + "\n".join(rows) + "\n")
    spec = parse_spec({"id": "prop", "seed": 1, "reason": "t", "coverage": 1,
                       "reference": {"name": "grch37-chr20-demo"}})
    norm = []
    for p, r, a, gt in raw:
        npos, nref, _ = normalize(p, r, a, _fetch)
        norm.append((npos, npos + len(nref), gt))
    clash = any(a[0] < b[1] and b[0] < a[1] and (a[2][0] and b[2][0] or a[2][1] and b[2][1])
                for i, a in enumerate(norm) for b in norm[i + 1:])
    event("clash" if clash else "accepted")
    if clash:
        with pytest.raises(VariantError, match="two variants on one base") as exc:
            vcf_variants(path=path, spec=spec, reference=REF)
        assert str(path) in str(exc.value)
    else:
        out = vcf_variants(path=path, spec=spec, reference=REF)
        assert len(out) == len(raw)
        for h in (0, 1):  # and what is accepted builds the string-edit haplotypes
            hap = build_haplotypes(WINDOW.encode(), start=START, variants=out)[h]
            assert hap.seq.tobytes().decode() == _apply_strings(out, h)

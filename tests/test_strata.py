"""Stratification BEDs: the demo strata scanner, and random variants placed inside a stratum."""

from __future__ import annotations

import numpy as np
import pytest

from synthlib.catalog import get_entry
from synthlib.errors import ReferenceDataError, VariantError
from synthlib.plan import plan_dataset
from synthlib.resources import RESOURCES, resolve_file
from synthlib.spec import parse_spec
from synthlib.strata import (
    build_demo_strata,
    contains,
    homopolymers,
    read_strata_bed,
    tandem_repeats,
)

HP = "grch37-chr20-demo.strat-homopolymer"
TR = "grch37-chr20-demo.strat-tandem-repeat"


def _seq(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), np.uint8)


def test_homopolymer_scanner():
    s = "ACGT" + "A" * 7 + "CG" + "T" * 6 + "G" + "N" * 9 + "C" * 12
    assert homopolymers(_seq(s)).tolist() == [[4, 11], [29, 41]]  # 6 T too short, N never


def test_tandem_repeat_scanner():
    s = "GATTACA" + "CA" * 6 + "GGT" + "ATG" * 3 + "T" + "AAAAAAAAAAAAAA" + "ACGTC" * 2 + "G"
    got = tandem_repeats(_seq(s)).tolist()
    # (CA)x6 = 12 bp, extended by the "AC" before it (period 2 from index 4); (ATG)x3 is 9 bp
    # < 12; the homopolymer is not a tandem repeat; (ACGTC)x2 has < 3 copies.
    assert got == [[4, 19]]
    assert tandem_repeats(_seq("TTAGGG" * 3)).tolist() == [[0, 18]]


def test_bundled_strata_are_what_the_scanner_makes(tmp_path):
    regions = [("chr20", 1_000_000, 2_000_000), ("chr20", 9_995_000, 11_095_000)]
    paths = build_demo_strata(fasta=resolve_file("grch37-chr20-demo.fasta"), regions=regions,
                              out_dir=tmp_path, prefix="GRCh37_chr20")
    assert paths["homopolymer"].read_bytes() == resolve_file(HP).read_bytes()
    assert paths["tandem-repeat"].read_bytes() == resolve_file(TR).read_bytes()
    assert RESOURCES[HP].kind == RESOURCES[TR].kind == "bed"
    hp = read_strata_bed(resolve_file(HP))["chr20"]
    assert len(hp) > 1000 and (hp[:, 1] - hp[:, 0]).min() >= 7 + 2 * 5


def test_difficult_regions_demo_places_every_variant_in_its_stratum():
    entry = get_entry("difficult-regions-demo")
    plan = plan_dataset(entry.spec, base_dir=entry.path.parent)
    beds = {name: read_strata_bed(resolve_file(name)) for name in (HP, TR)}
    groups = entry.spec.variants.random
    assert {g.in_regions for g in groups} == {HP, TR}
    for i, g in enumerate(groups):
        placed = [v for v in plan.spikes if v.vid.startswith(f"rand_{g.type}_{i}_")]
        assert len(placed) == g.count
        for v in placed:
            assert contains(beds[g.in_regions], v.chrom, v.pos, v.pos + len(v.ref)), (i, v)
    # Without in_regions the same groups land mostly outside: the strata cover a few % of bases.
    data = entry.spec.model_dump(mode="json")
    data["variants"]["random"] = [{**g, "in_regions": None} for g in data["variants"]["random"]]
    free = plan_dataset(parse_spec(data), base_dir=entry.path.parent)
    inside = [any(contains(b, v.chrom, v.pos, v.pos + len(v.ref)) for b in beds.values())
              for v in free.spikes]
    assert np.mean(inside) < 0.3


def _spec(in_regions: str, regions: str = "chr20:1,000,001-1,200,000") -> dict:
    return {"id": "strata", "seed": 3, "reason": "test", "coverage": 5, "chunk_size": 100_000,
            "reference": {"name": "grch37-chr20-demo", "regions": [regions]},
            "germline": {"source": "none"},
            "variants": {"random": [{"type": "deletion", "count": 5, "max_size": 3,
                                     "in_regions": in_regions}]}}


def test_in_regions_path_gzip_and_errors(tmp_path):
    import gzip

    bed = tmp_path / "mine.bed.gz"
    with gzip.open(bed, "wt") as fh:
        fh.write("track name=x\nchr20\t1050000\t1060000\tbox\n")
    plan = plan_dataset(parse_spec(_spec("mine.bed.gz")), base_dir=tmp_path)
    assert len(plan.spikes) == 5
    assert all(1_050_000 <= v.pos and v.pos + len(v.ref) <= 1_060_000 for v in plan.spikes)
    with pytest.raises(ReferenceDataError, match="in_regions"):
        plan_dataset(parse_spec(_spec("no-such.bed")), base_dir=tmp_path)
    with pytest.raises(VariantError, match="does not overlap"):
        plan_dataset(parse_spec(_spec("mine.bed.gz", "chr20:10,000,001-10,100,000")),
                     base_dir=tmp_path)

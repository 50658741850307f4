"""The catalog: entries are data; tests are generated from it."""

from __future__ import annotations

import pysam
import pytest

from synthlib.catalog import catalog_dir, entries, get_entry, resolve_spec, validate_all
from synthlib.errors import CatalogError
from synthlib.generate import FILES, generate_local
from synthlib.plan import plan_dataset

ALL = sorted(p.stem for p in catalog_dir().glob("*.yaml"))
DEMOS = [i for i in ALL if i == "demo" or i.endswith("-demo")]


def test_catalog_is_not_empty_and_has_demo():
    assert len(ALL) >= 1 and "demo" in ALL


@pytest.mark.parametrize("entry_id", ALL)
def test_every_entry_validates(entry_id):
    entry = get_entry(entry_id)
    assert entry.spec.id == entry_id and entry.spec.reason.strip()


def test_validate_all_and_priority_order():
    good, bad = validate_all()
    assert not bad and len(good) == len(ALL)
    prios = [e.spec.priority for e in entries()]
    assert prios == sorted(prios)


def test_unknown_id_lists_known_ids():
    with pytest.raises(CatalogError) as info:
        get_entry("no-such-entry")
    assert "demo" in str(info.value)


def test_resolve_by_path(tmp_path):
    spec, base = resolve_spec(str(catalog_dir() / "demo.yaml"))
    assert spec.id == "demo" and base == catalog_dir()


@pytest.mark.parametrize("entry_id", [d for d in DEMOS if d != "demo"])
def test_demo_entry_runs_end_to_end(entry_id, tmp_path):
    entry = get_entry(entry_id)
    if entry.spec.cohort is not None:
        from synthlib.cohort.study import COHORT_FILES, generate_cohort_local, plan_cohort_study

        out = generate_cohort_local(plan_cohort_study(entry.spec, base_dir=entry.path.parent),
                                    dest=tmp_path)
        with pysam.VariantFile(str(out / COHORT_FILES["vcf"])) as vcf:
            assert len(vcf.header.samples) > 0 and sum(1 for _ in vcf) > 0
        return
    plan = plan_dataset(entry.spec, base_dir=entry.path.parent)
    out = generate_local(plan, dest=tmp_path)
    if entry.spec.outputs.bam:
        assert pysam.samtools.quickcheck(str(out / FILES["bam"])) == ""
    with pysam.VariantFile(str(out / FILES["vcf"])) as vcf:
        assert sum(1 for _ in vcf) >= len(plan.spikes)

"""Every catalog entry gets a size and cost estimate, planned or from its spec alone."""

from __future__ import annotations

import pytest

from synthlib.catalog import entries, get_entry
from synthlib.cli import _estimate
from synthlib.cohort.cost import cohort_estimate
from synthlib.cost import estimate

IDS = [e.id for e in entries()]


def test_catalog_is_not_empty():
    assert len(IDS) >= 24


@pytest.mark.parametrize("entry_id", IDS)
def test_every_entry_has_an_estimate(entry_id):
    pairs, size, cost = _estimate(get_entry(entry_id))
    assert "remote" not in pairs and size != "-" and "CPU-h" in cost, (pairs, size, cost)


def test_remote_exome_cohort_scales_with_members_with_reads():
    e = get_entry("tof-cohort")
    spec = e.spec.model_copy(update={"cohort": e.spec.cohort.model_copy(
        update={"reads_samples": 10})})
    c = cohort_estimate(spec, base_dir=e.path.parent)
    single = spec.model_copy(update={"cohort": None, "reference": spec.reference.model_copy(
        update={"regions": []})})
    one = estimate(single, base_dir=e.path.parent)
    assert c["samples_with_reads"] == 10 and c["read_pairs"] == 10 * one["read_pairs"] > 0


def test_tumor_estimate_counts_its_matched_normal():
    e = get_entry("tumor-normal-wgs-demo")
    from synthlib.variants.somatic import normal_spec

    tumor_only = e.spec.model_copy(update={"somatic": e.spec.somatic.model_copy(
        update={"normal_coverage": None})})
    both = estimate(e.spec, base_dir=e.path.parent)["read_pairs"]
    alone = estimate(tumor_only, base_dir=e.path.parent)["read_pairs"]
    normal = estimate(normal_spec(e.spec), base_dir=e.path.parent)["read_pairs"]
    assert both == alone + normal and normal > 0

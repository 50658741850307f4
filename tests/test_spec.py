"""Spec validation: good specs load, bad ones name the file and the field."""

from __future__ import annotations

import pytest
import yaml

from synthlib.errors import SpecError
from synthlib.spec import DatasetSpec, json_schema, load_spec, parse_spec, spec_hash

GOOD = {
    "id": "tiny-test",
    "seed": 1,
    "reason": "tests",
    "reference": {"name": "grch37-chr20-demo", "regions": ["chr20:1,000,001-1,100,000"]},
    "coverage": 5,
}


def _write(tmp_path, data, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_good_spec_loads_with_defaults(tmp_path):
    spec = load_spec(_write(tmp_path, GOOD))
    assert isinstance(spec, DatasetSpec)
    assert spec.reads.length == 150 and spec.assay.type == "wgs"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"covrage": 5}, "covrage"),  # unknown key
        ({"id": "Bad_ID"}, "id"),
        ({"id": "-x"}, "id"),
        ({"coverage": -1}, "coverage"),
        ({"version": "1.0"}, "version"),
        ({"assay": {"type": "exome"}}, "assay"),
        ({"fragment": {"mean": 2000, "max": 1000}}, "fragment"),
        ({"reference": {"name": "x", "regions": ["chr20:5-1"]}}, "reference.regions"),
        ({"variants": {"explicit": [{"chrom": "chr20", "pos": 5, "ref": "A", "alt": "A"}]}},
         "variants.explicit.0"),
        ({"variants": {"random": [{"type": "snv", "count": 1, "extra": 1}]}},
         "variants.random.0.extra"),
    ],
)
def test_bad_spec_names_file_and_field(tmp_path, change, field):
    path = _write(tmp_path, {**GOOD, **change})
    with pytest.raises(SpecError) as info:
        load_spec(path)
    msg = str(info.value)
    assert str(path) in msg and field in msg


def test_yaml_syntax_error_names_line(tmp_path):
    path = _write(tmp_path, "id: x\nseed: [1,\n")
    with pytest.raises(SpecError, match=r"spec\.yaml:\d+"):
        load_spec(path)


def test_missing_file_and_non_mapping(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(tmp_path / "absent.yaml")
    with pytest.raises(SpecError, match="mapping"):
        parse_spec([1, 2], source="x.yaml")


def test_spec_hash_ignores_layout_not_content(tmp_path):
    a = load_spec(_write(tmp_path, GOOD, "a.yaml"))
    b = load_spec(_write(tmp_path, dict(reversed(list(GOOD.items()))), "b.yaml"))
    c = load_spec(_write(tmp_path, {**GOOD, "seed": 2}, "c.yaml"))
    assert spec_hash(a) == spec_hash(b) != spec_hash(c)


def test_json_schema_documents_every_field():
    schema = json_schema()
    props = schema["properties"]
    assert "coverage" in props and props["coverage"].get("description")
    undocumented = [k for k, v in props.items() if "description" not in v and "$ref" not in v
                    and "allOf" not in v]
    assert not undocumented

"""`assay.genes`: a panel's targets are the exons of named genes, cut from an exon BED."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from synthlib.catalog import get_entry
from synthlib.errors import SpecError
from synthlib.genes import gene_column_for, gene_targets
from synthlib.intervals import read_bed
from synthlib.plan import plan_dataset
from synthlib.resources import resolve_file
from synthlib.spec import parse_spec

EXONS = "grch37-chr20-demo.exons"


def _bed_rows(gene: str) -> list[tuple[int, int]]:
    rows = []
    for line in resolve_file(EXONS).read_text().splitlines():
        f = line.split("\t")
        if f[3].rsplit("_", 1)[0] == gene:
            rows.append((int(f[1]), int(f[2])))
    return rows


def _spec(**assay) -> dict:
    return {
        "id": "panel-genes", "seed": 5, "reason": "test", "coverage": 50, "chunk_size": 100_000,
        "reference": {"name": "grch37-chr20-demo",
                      "regions": ["chr20:1,000,001-2,000,000", "chr20:9,995,001-11,095,000"]},
        "assay": {"type": "panel", "targets": EXONS, "padding": 20, **assay},
        "germline": {"source": "none"},
        "variants": {"random": [{"type": "snv", "count": 15, "in_targets": True}]},
    }


def test_targets_are_exactly_the_genes_exons():
    spec = parse_spec(_spec(genes=["JAG1", "PSMF1"]))
    plan = plan_dataset(spec)
    want = sorted((s - 20, e + 20) for g in ("JAG1", "PSMF1") for s, e in _bed_rows(g))
    got = [tuple(iv) for iv in plan.targets["chr20"]]
    # Padded exons merged: every exon lies in one target, every target holds an exon.
    assert all(any(a <= s and e <= b for a, b in got) for s, e in want)
    assert all(any(a <= s and e <= b for s, e in want) for a, b in got)
    assert len(_bed_rows("JAG1")) >= 20 and len(_bed_rows("PSMF1")) >= 5
    # The whole BED has many more genes: the panel is a strict subset.
    everything = read_bed(resolve_file(EXONS), padding=20)["chr20"]
    assert (got[-1][1] - got[0][0]) < everything[-1, 1] - everything[0, 0]
    assert len(got) < len(everything)
    # Reads and in_targets spikes stay inside the panel's exons.
    terr = np.concatenate([u.territory for u in plan.units if len(u.territory)])
    assert all(any(a <= s and e <= b for a, b in got) for s, e in terr)
    assert all(any(a <= v.pos < b for a, b in got) for v in plan.spikes)


def test_unknown_gene_names_field_and_close_matches():
    with pytest.raises(SpecError) as info:
        plan_dataset(parse_spec(_spec(genes=["JAG1", "Jag1x"])))
    msg = str(info.value)
    assert "assay.genes[1]" in msg and "'Jag1x'" in msg and "JAG1" in msg
    with pytest.raises(SpecError) as info:
        plan_dataset(parse_spec(_spec(genes=["TTN"])))
    assert "assay.genes[0]" in str(info.value) and "e.g." in str(info.value)


def test_genes_need_an_exon_bed_assay():
    with pytest.raises(SpecError, match="genes"):
        parse_spec({**_spec(), "assay": {"type": "wgs", "genes": ["JAG1"]}})


def test_gene_column_registered_and_explicit(tmp_path):
    assert gene_column_for("grch38-gencode-v44-mane.exons", None) == 5
    assert gene_column_for(EXONS, None) == 4 and gene_column_for(EXONS, 6) == 6
    # A MANE-style bgzipped BED: symbol in column 5, exon id in column 4.
    bed = tmp_path / "mane.bed.gz"
    with gzip.open(bed, "wt") as fh:
        fh.write("#contig\tstart\tend\texon_id\tgene_name\texon_number\n")
        fh.write("chr20\t100\t200\tENSE1\tJAG1\t1\nchr20\t300\t400\tENSE2\tJAG1\t2\n")
        fh.write("chr20\t900\t950\tENSE3\tSNAP25\t1\n")
    got = gene_targets(bed=bed, genes=["JAG1"], gene_column=5, padding=60)
    assert got["chr20"].tolist() == [[40, 460]]  # padded exons 40-260 and 240-460 merge


def test_cardiac_panel_demo_uses_genes():
    entry = get_entry("cardiac-panel-demo")
    assert entry.spec.assay.genes == ["JAG1"]
    full = get_entry("cardiac-panel")
    assert {"MYH7", "MYBPC3", "NOTCH1", "FLT4", "JAG1", "GATA4"} <= set(full.spec.assay.genes)
    plan = plan_dataset(entry.spec, base_dir=entry.path.parent)
    jag1 = _bed_rows("JAG1")
    assert all(any(s - 50 <= v.pos < e + 50 for s, e in jag1) for v in plan.spikes)

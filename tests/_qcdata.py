"""Small datasets for the QC read-evidence tests (somatic VAFs, SVs, capture), generated
serially from catalog specs shrunk with ``model_copy``."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pysam

from synthlib.catalog import resolve_spec
from synthlib.generate import generate_local
from synthlib.plan import plan_dataset
from synthlib.spec import RandomVariants, StructuralSpec


def somatic_dataset(dest: Path, *, germline: bool = False) -> Path:
    """Tumor WGS, 300x over 30 kb: SNVs at VAF 0.05 / 0.15 / 0.3 plus indels at 0.2."""
    spec, base = resolve_spec("tumor-normal-wgs-demo")
    v = spec.variants.model_copy(update={"random": [
        RandomVariants(type="snv", count=8, genotype="het", vaf=0.05),
        RandomVariants(type="snv", count=8, genotype="het", vaf=0.15),
        RandomVariants(type="snv", count=8, genotype="het", vaf=0.3),
        RandomVariants(type="deletion", count=3, max_size=8, genotype="het", vaf=0.2),
        RandomVariants(type="insertion", count=3, max_size=8, genotype="het", vaf=0.2)],
        "structural": StructuralSpec()})
    ref = spec.reference.model_copy(update={"regions": ["chr20:1,200,001-1,230,000"]})
    upd = {"coverage": 300, "variants": v, "reference": ref, "chunk_size": 30_000}
    if not germline:
        upd["germline"] = spec.germline.model_copy(update={"source": "none"})
    spec = spec.model_copy(update=upd)
    return generate_local(plan_dataset(spec, base_dir=base), dest=dest, overwrite=True)


def copy_dataset(src: Path, dst: Path) -> Path:
    """A copy without its ``qc/`` folder (and without qc entries in the manifest)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("qc"))
    m = json.loads((dst / "manifest.json").read_text())
    m["files"] = [f for f in m["files"] if not f["path"].startswith("qc/")]
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def rewrite_truth(ds: Path, edit) -> None:
    """Apply ``edit(lines) -> lines`` to the body of ``truth.vcf.gz`` and re-index it."""
    path = ds / "truth.vcf.gz"
    with gzip.open(path, "rt") as fh:
        lines = fh.read().splitlines(keepends=True)
    head = [x for x in lines if x.startswith("#")]
    body = edit([x for x in lines if not x.startswith("#")])
    plain = ds / "truth.vcf"
    plain.write_text("".join(head + body))
    path.unlink()
    Path(str(path) + ".tbi").unlink(missing_ok=True)
    pysam.tabix_compress(str(plain), str(path), force=True)
    pysam.tabix_index(str(path), preset="vcf", force=True)
    plain.unlink()


#: Complex SVs for the QC tests: (subtype, 1-based first affected base, sizes, genotype).
CPX_EVENTS = [
    ("delINV", 1010001, [300, 1500], "hom"),
    ("INVdel", 1020001, [1500, 400], "hom"),
    ("delINVdel", 1030001, [300, 1200, 300], "het"),
    ("dupINV", 1040001, [800, 1200], "hom"),
    ("INVdup", 1050001, [1200, 800], "hom"),
    ("dDUP", 1060001, [1000, 2500], "hom"),
    ("dDUP_INV", 1075001, [1000, 2500], "het"),
    ("delINS", 1090001, [800, 40], "hom"),
]


def cpx_spec(id_: str = "cpx-qc", coverage: int = 30) -> dict:
    """A 200 kb chr20 dataset with one explicit event of every complex subtype."""
    from _svdata import base_spec

    explicit = [{"type": "complex", "subtype": sub, "chrom": "chr20", "pos": p, "sizes": z,
                 "genotype": gt, "id": sub} for sub, p, z, gt in CPX_EVENTS]
    return base_spec(id_, coverage=coverage, variants={"structural": {"explicit": explicit}})

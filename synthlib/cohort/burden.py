"""The case/control gene burden study, done the way the ToF exome paper did it.

From a joint genotype table: keep rare variants (population AF and cohort AF below a
threshold; a cohort singleton always counts as rare), assign them to genes by exon overlap,
count carriers per gene in cases and controls, test with Fisher's exact test, adjust
(Bonferroni over the genes tested, and Benjamini-Hochberg), and write ``burden.tsv`` plus a
short report.
"""

from __future__ import annotations

import gzip
import html
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import SpecError, VariantError
from .fisher import benjamini_hochberg, bonferroni, fisher_exact
from .samples import read_samples_tsv
from .sources import load_exons

if TYPE_CHECKING:  # pandas is imported where a table is built: it costs 0.2 s at start-up
    import pandas as pd

__all__ = [
    "JointGenotypes",
    "BurdenResult",
    "read_joint_genotypes",
    "run_burden_study",
    "EXOME_WIDE_THRESHOLD",
    "BURDEN_COLUMNS",
]

#: The exome-wide significance convention: 0.05 / ~20,000 genes.
EXOME_WIDE_THRESHOLD = 2.5e-6
BURDEN_COLUMNS = (
    "gene",
    "carriers_cases",
    "carriers_controls",
    "n_cases",
    "n_controls",
    "odds_ratio",
    "p_value",
    "p_adjusted",
    "q_value",
    "n_variants",
)


@dataclass(frozen=True)
class JointGenotypes:
    """A joint VCF as arrays.

    Attributes
    ----------
    samples : (n_samples,) sample ids, VCF column order
    chrom : (n_sites,) object; pos : (n_sites,) int64; ref_len : (n_sites,) int64
    pop_af : (n_sites,) float64 (INFO ``POP_AF``, 0 when absent)
    csq : (n_sites,) object (INFO ``CSQ``, ``""`` when absent)
    dosage : (n_sites, n_samples) int8 ALT allele count (missing calls count 0)
    """

    samples: tuple[str, ...]
    chrom: np.ndarray
    pos: np.ndarray
    ref_len: np.ndarray
    pop_af: np.ndarray
    csq: np.ndarray
    dosage: np.ndarray


@dataclass(frozen=True)
class BurdenResult:
    """Outcome of :func:`run_burden_study`.

    Attributes
    ----------
    table : one row per gene of the BED, columns :data:`BURDEN_COLUMNS`, sorted by p-value
    n_tested : genes with at least one qualifying carrier (the Bonferroni denominator)
    alpha : family-wise error rate used
    threshold : per-gene p-value threshold, ``alpha / n_tested``
    significant : genes with ``p_value < threshold``, best first
    exome_wide_significant : genes with ``p_value < 2.5e-6`` (the ~20k-gene convention)
    burden_tsv, report_md, report_html : files written
    """

    table: pd.DataFrame
    n_tested: int
    alpha: float
    threshold: float
    significant: tuple[str, ...]
    exome_wide_significant: tuple[str, ...]
    burden_tsv: Path
    report_md: Path
    report_html: Path


def _info_get(info: str, key: str) -> str | None:
    for item in info.split(";"):
        if item.startswith(key + "="):
            return item[len(key) + 1 :]
    return None


def _dosage_slow(fields: list[str]) -> np.ndarray:
    out = np.zeros(len(fields), dtype=np.int8)
    for i, f in enumerate(fields):
        gt = f.split(":", 1)[0].replace("/", "|")
        out[i] = sum(1 for a in gt.split("|") if a not in ("0", "."))
    return out


def read_joint_genotypes(path: str | Path) -> JointGenotypes:
    """Read a (bgzipped) VCF's genotypes as a dosage matrix.

    Multi-allelic records count any non-REF allele. Our own joint VCFs (all ``a|b``) take a
    vectorized fast path; other VCFs are parsed field by field.

    Raises
    ------
    VariantError
        Missing file or no ``#CHROM`` header line.
    """
    path = Path(path)
    if not path.exists():
        raise VariantError("joint VCF not found", where=str(path))
    samples: tuple[str, ...] | None = None
    chrom, pos, ref_len, pop_af, csq, rows = [], [], [], [], [], []
    opener = gzip.open if path.suffix in (".gz", ".bgz") else open
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("##"):
                continue
            if line.startswith("#CHROM"):
                samples = tuple(line.rstrip("\n").split("\t")[9:])
                n = len(samples)
                continue
            if samples is None:
                raise VariantError("no #CHROM header line before records", where=str(path))
            f = line.rstrip("\n").split("\t", 9)
            raw = np.frombuffer((f[9] + "\t").encode("ascii"), dtype=np.uint8) if n else None
            if n and raw.size == 4 * n and f[8] == "GT":
                g = raw.reshape(n, 4)
                d = ((g[:, 0] > ord("0")) & (g[:, 0] <= ord("9"))).astype(np.int8) + (
                    (g[:, 2] > ord("0")) & (g[:, 2] <= ord("9"))
                ).astype(np.int8)
            else:
                d = _dosage_slow(f[9].split("\t")) if n else np.zeros(0, dtype=np.int8)
            af = _info_get(f[7], "POP_AF")
            chrom.append(f[0])
            pos.append(int(f[1]))
            ref_len.append(len(f[3]))
            pop_af.append(float(af.split(",")[0]) if af not in (None, ".") else 0.0)
            csq.append(_info_get(f[7], "CSQ") or "")
            rows.append(d)
    if samples is None:
        raise VariantError("no #CHROM header line", where=str(path))
    dosage = np.vstack(rows) if rows else np.zeros((0, len(samples)), dtype=np.int8)
    return JointGenotypes(
        samples=samples,
        chrom=np.asarray(chrom, dtype=object),
        pos=np.asarray(pos, dtype=np.int64),
        ref_len=np.asarray(ref_len, dtype=np.int64),
        pop_af=np.asarray(pop_af, dtype=np.float64),
        csq=np.asarray(csq, dtype=object),
        dosage=dosage,
    )


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else ("NA" if math.isnan(x) else f"{x:.3g}")


def _report(
    res_table: pd.DataFrame,
    *,
    n_tested: int,
    alpha: float,
    threshold: float,
    max_af: float,
    damaging_only: bool,
    top: int,
) -> tuple[str, str]:
    head = res_table.head(top)
    sig = res_table["p_value"] < threshold
    lines = [
        "# Gene burden study (case/control, rare variants)",
        "",
        f"- Qualifying variants: exonic, population AF < {max_af:g}, cohort AF < {max_af:g} "
        "or cohort singleton" + (", spiked damaging only" if damaging_only else "") + ".",
        f"- Carriers per gene, two-sided Fisher's exact test; {n_tested} genes tested.",
        f"- Significance: Bonferroni over the genes tested, p < {alpha:g}/{n_tested} = "
        f"{threshold:.3g}. The paper's exome-wide convention (0.05 / ~20,000 genes = "
        f"{EXOME_WIDE_THRESHOLD:g}) is shown for reference.",
        f"- Significant genes: {', '.join(res_table.loc[sig, 'gene']) or 'none'}.",
        "",
        "| gene | carriers (cases) | carriers (controls) | odds ratio | p | p (Bonferroni) "
        "| q (BH) | exome-wide |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows_html = []
    for r in head.itertuples(index=False):
        ew = "yes" if r.p_value < EXOME_WIDE_THRESHOLD else "no"
        cells = [
            r.gene,
            f"{r.carriers_cases}/{r.n_cases}",
            f"{r.carriers_controls}/{r.n_controls}",
            _fmt(r.odds_ratio),
            f"{r.p_value:.3g}",
            f"{r.p_adjusted:.3g}",
            f"{r.q_value:.3g}",
            ew,
        ]
        lines.append("| " + " | ".join(cells) + " |")
        rows_html.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    md = "\n".join(lines) + "\n"
    bullets = "".join(f"<li>{html.escape(x[2:])}</li>" for x in lines if x.startswith("- "))
    header = "".join(
        f"<th>{h}</th>"
        for h in (
            "gene",
            "carriers (cases)",
            "carriers (controls)",
            "odds ratio",
            "p",
            "p (Bonferroni)",
            "q (BH)",
            "exome-wide",
        )
    )
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Gene burden study</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px 8px;text-align:right}</style></head><body>"
        f"<h1>Gene burden study</h1><ul>{bullets}</ul>"
        f"<table><tr>{header}</tr>{''.join(rows_html)}</table></body></html>\n"
    )
    return md, page


def run_burden_study(
    *,
    joint_vcf: str | Path,
    samples_tsv: str | Path,
    genes_bed: str | Path,
    out_dir: str | Path,
    max_af: float = 0.001,
    alpha: float = 0.05,
    damaging_only: bool = False,
    top: int = 10,
    gene_column: int = 4,
) -> BurdenResult:
    """Per-gene rare-variant carrier burden in cases vs controls.

    Parameters
    ----------
    joint_vcf
        Joint multi-sample VCF (truth fast path: the cohort's own ``cohort.vcf.gz``).
    samples_tsv
        ``samples.tsv`` with roles; only ``case`` and ``control`` samples are tested.
    genes_bed
        Exon BED, name column ``GENE_exonN``; a variant counts for a gene if it overlaps an exon.
    out_dir
        Where ``burden.tsv``, ``report.md`` and ``report.html`` go (created).
    max_af
        Rare threshold on population AF (INFO ``POP_AF``) and on cohort AF over the tested
        samples; a cohort singleton is rare whatever the cohort size.
    alpha
        Family-wise error rate for the Bonferroni threshold over the genes tested.
    damaging_only
        Count only variants annotated ``CSQ`` (the spiked damaging ones) instead of every rare
        exonic variant.
    top
        Genes listed in the report.
    gene_column
        1-based column of ``genes_bed`` naming the gene (see ``CohortSpec.gene_column``).

    Raises
    ------
    SpecError
        Bad thresholds, or samples of the table missing from the VCF, or no cases/controls.
    """
    if not 0 < max_af < 0.5 or not 0 < alpha < 1:
        raise SpecError(f"need 0 < max_af < 0.5 and 0 < alpha < 1, got {max_af}, {alpha}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = read_samples_tsv(samples_tsv)
    jg = read_joint_genotypes(joint_vcf)
    col = {s: i for i, s in enumerate(jg.samples)}
    missing = [s.sample for s in table if s.role in ("case", "control") and s.sample not in col]
    if missing:
        raise SpecError(
            f"{len(missing)} samples not in the VCF, e.g. {missing[0]}", where=str(samples_tsv)
        )
    cases = np.array([col[s.sample] for s in table if s.role == "case"], dtype=np.int64)
    controls = np.array([col[s.sample] for s in table if s.role == "control"], dtype=np.int64)
    if cases.size == 0 or controls.size == 0:
        raise SpecError("the study needs cases and controls", where=str(samples_tsv))

    study = np.concatenate([cases, controls])
    carried = jg.dosage[:, study] > 0
    ac = jg.dosage[:, study].sum(axis=1, dtype=np.int64)
    cohort_af = ac / (2.0 * study.size)
    qualifying = (ac > 0) & (jg.pop_af < max_af) & ((ac == 1) | (cohort_af < max_af))
    if damaging_only:
        qualifying &= jg.csq != ""

    exons = load_exons(Path(genes_bed), gene_column)
    rows = []
    for gene in sorted(exons):
        in_gene = np.zeros(jg.pos.size, dtype=bool)
        for chrom, start, end in exons[gene]:
            in_gene |= (jg.chrom == chrom) & (jg.pos <= end) & (jg.pos + jg.ref_len - 1 > start)
        sel = qualifying & in_gene
        carrier = carried[sel].any(axis=0)  # (n_study,) any qualifying variant
        a = int(carrier[: cases.size].sum())
        b = int(carrier[cases.size :].sum())
        odds, p = fisher_exact(a=a, b=b, c=cases.size - a, d=controls.size - b)
        rows.append((gene, a, b, int(cases.size), int(controls.size), odds, p, int(sel.sum())))
    import pandas as pd

    df = pd.DataFrame(
        rows,
        columns=[c for c in BURDEN_COLUMNS if c not in ("p_adjusted", "q_value")],
    )
    tested = (df["carriers_cases"] + df["carriers_controls"]) > 0
    n_tested = int(tested.sum())
    df["p_adjusted"] = 1.0
    df["q_value"] = 1.0
    if n_tested:
        df.loc[tested, "p_adjusted"] = bonferroni(df.loc[tested, "p_value"].to_numpy())
        df.loc[tested, "q_value"] = benjamini_hochberg(df.loc[tested, "p_value"].to_numpy())
    df = df.sort_values(["p_value", "gene"], kind="stable").reset_index(drop=True)
    df = df[list(BURDEN_COLUMNS)]
    threshold = alpha / max(n_tested, 1)
    significant = tuple(df.loc[df["p_value"] < threshold, "gene"])
    exome_wide = tuple(df.loc[df["p_value"] < EXOME_WIDE_THRESHOLD, "gene"])

    tsv = out_dir / "burden.tsv"
    _atomic_write(tsv, df.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n"))
    md, page = _report(
        df,
        n_tested=n_tested,
        alpha=alpha,
        threshold=threshold,
        max_af=max_af,
        damaging_only=damaging_only,
        top=top,
    )
    md_path, html_path = out_dir / "report.md", out_dir / "report.html"
    _atomic_write(md_path, md)
    _atomic_write(html_path, page)
    return BurdenResult(
        df, n_tested, alpha, threshold, significant, exome_wide, tsv, md_path, html_path
    )

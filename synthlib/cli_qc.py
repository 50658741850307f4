"""``synth qc``: QC a dataset folder, or compare any truth/query VCF pair.

Mounted by the lead with ``app.add_typer(cli_qc.app, name="qc")``. One command (the callback):

- ``synth qc DATASET_DIR [--thresholds JSON] [--max-pairs N] [--base-dir DIR]``
- ``synth qc --truth T.vcf.gz --query Q.vcf.gz --reference REF.fa [--bam B] [--regions R.bed]
  --out DIR``

Exit status: 0 when the verdict is pass, 1 when QC ran and the verdict is fail, 2 for a
``SynthError`` (raised here, mapped by ``synthlib.cli.main``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from .errors import QCError

__all__ = ["app", "qc"]

app = typer.Typer(add_completion=False, invoke_without_command=True,
                  help="QC: prove a dataset is what its spec promised.")


@app.callback(invoke_without_command=True)
def qc(
    dataset_dir: Annotated[Path | None, typer.Argument(
        help="Dataset folder <dest>/<id>/<version> (with manifest.json).")] = None,
    truth: Annotated[Path | None, typer.Option(help="Truth VCF (pair mode).")] = None,
    query: Annotated[Path | None, typer.Option(help="Query VCF (pair mode).")] = None,
    reference: Annotated[Path | None, typer.Option(
        help="Indexed FASTA (pair mode; default: the reference named in the dataset).")] = None,
    bam: Annotated[Path | None, typer.Option(help="BAM whose depth to summarize.")] = None,
    regions: Annotated[Path | None, typer.Option(help="Confident-regions BED.")] = None,
    out: Annotated[Path | None, typer.Option(help="Output folder (pair mode).")] = None,
    thresholds: Annotated[str | None, typer.Option(
        help='JSON object overriding gate thresholds, e.g. \'{"snv_recall_min": 0.98}\'.')
    ] = None,
    max_pairs: Annotated[int | None, typer.Option(
        min=1, help="Sample datasets with more read pairs than this.")] = None,
    base_dir: Annotated[Path | None, typer.Option(
        help="Folder the spec's relative resource paths are resolved from.")] = None,
) -> None:
    """QC a dataset (re-align, call, compare, measure, gate) or compare two VCFs."""
    if dataset_dir is not None:
        if truth or query:
            raise QCError("give a DATASET_DIR or --truth/--query, not both")
        from .qc.run import run_qc

        th = None
        if thresholds:
            try:
                th = json.loads(thresholds)
            except json.JSONDecodeError as exc:
                raise QCError(f"not JSON: {exc}", where="--thresholds") from None
            if not isinstance(th, dict):
                raise QCError("must be a JSON object", where="--thresholds")
        result = run_qc(dataset_dir=dataset_dir, base_dir=base_dir, thresholds=th,
                        max_pairs=max_pairs)
        failed = [c.name for c in result.checks if c.status == "fail"]
        typer.echo(f"{dataset_dir}: QC {result.verdict}"
                   + (f" (failed: {', '.join(failed)})" if failed else "")
                   + f"; report {result.out_dir / 'report.html'}")
        raise typer.Exit(0 if result.verdict == "pass" else 1)
    if truth is None or query is None or out is None or reference is None:
        raise QCError("give a DATASET_DIR, or --truth, --query, --reference and --out")
    from .qc.run import qc_pair

    data = qc_pair(truth=truth, query=query, reference=reference, bam=bam, regions=regions,
                   out_dir=out)
    typer.echo(f"QC {data['verdict']}; {out / 'qc.json'}")
    raise typer.Exit(0 if data["verdict"] == "pass" else 1)

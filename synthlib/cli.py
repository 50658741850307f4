"""The ``synth`` command. The only place that turns errors into exit codes.

Every :class:`~synthlib.errors.SynthError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

# Parallel work runs in Dask worker processes, whose nanny sets the same (distributed's
# nanny.pre-spawn-environ); here too a BLAS thread pool would only spin beside the generator.
# It must be set before numpy is first imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .allocator import keep_freed_memory  # noqa: E402
from .display import human_bytes  # noqa: E402
from .errors import SynthError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Synthetic human sequencing data with a truth set.")
catalog_app = typer.Typer(no_args_is_help=True, help="The catalog of dataset specs.")
model_app = typer.Typer(no_args_is_help=True, help="Sequencer error/quality models.")
app.add_typer(catalog_app, name="catalog")
app.add_typer(model_app, name="model")


def _mount_subcommands() -> None:
    from .cli_publish import register
    from .cli_qc import app as qc_app

    app.add_typer(qc_app, name="qc")
    register(catalog_app)  # catalog build | ls | get | cost


_mount_subcommands()

# Wide enough for the catalog table when stdout is a pipe or a file.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)




@app.command()
def run(
    spec: Annotated[str, typer.Argument(help="Catalog id or path to a spec YAML.")],
    dest: Annotated[str, typer.Option(help="Folder standing in for the bucket.")] = "out",
    workers: Annotated[int, typer.Option(min=1, help="Local Dask worker processes.")] = 2,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of an existing Dask scheduler (instead of a local cluster).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing dataset folder.")] = False,
    qc: Annotated[bool, typer.Option(help="QC the dataset against its spec (align, call, "
                                     "compare, conformance); exit 1 if it fails.")] = True,
) -> None:
    """Generate a dataset: plan, simulate on Dask under Prefect, merge, QC, write the manifest."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from .catalog import resolve_spec
    from .plan import plan_dataset

    spec_obj, base_dir = resolve_spec(spec)
    if "://" in dest:  # a bucket: generate, QC and publish (only if QC passes)
        from .cli_publish import run_to_url

        typer.echo(run_to_url(spec, dest, workers, scheduler))
        return
    if spec_obj.cohort is not None:
        _run_cohort(spec, spec_obj, base_dir, dest=dest, workers=workers, scheduler=scheduler,
                    overwrite=overwrite)
        return
    from .generate import companions

    plan = plan_dataset(spec_obj, base_dir=base_dir)  # fail fast, before any cluster
    costs = [plan.cost()] + [sub.cost() for sub in companions(plan).values()]
    pairs, size = sum(c.read_pairs for c in costs), sum(c.output_bytes for c in costs)
    extra = " (with its matched normal)" if len(costs) > 1 else ""
    err.print(f"[bold]{spec_obj.id}[/] {spec_obj.version}: {pairs:,} read pairs{extra}, "
              f"~{human_bytes(size)}, ~{sum(c.cpu_seconds for c in costs):.0f} CPU-s")

    from flows.generate_dataset import run_generate, set_progress_hook

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=False) as progress:
        bars: dict[str, int] = {}

        def hook(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total)
            progress.update(bars[stage], completed=done)

        set_progress_hook(hook)
        try:
            folder = run_generate(spec, dest=dest, workers=workers, address=scheduler,
                                  overwrite=overwrite, qc=qc)
        finally:
            set_progress_hook(None)
    verdict = json.loads((folder / "manifest.json").read_text())["qc"]["verdict"]
    if qc:
        colour = "green" if verdict == "pass" else "red"
        err.print(f"QC: [{colour}]{verdict}[/] (report: {folder / 'qc' / 'report.html'})")
    typer.echo(str(folder))
    if qc and verdict != "pass":
        raise typer.Exit(1)


def _run_cohort(spec: str, spec_obj, base_dir: Path, *, dest: str, workers: int,
                scheduler: str | None, overwrite: bool) -> None:
    """Cohort specs: joint genotypes on Dask, then the burden study (truth fast path)."""
    from .cohort.study import plan_cohort_study

    summary = plan_cohort_study(spec_obj, base_dir=base_dir).to_dict()  # fail fast
    err.print(f"[bold]{spec_obj.id}[/] {spec_obj.version}: cohort of "
              f"{summary.get('samples', '?')} samples, {summary.get('units', '?')} work units")
    from flows.cohort_study import run_cohort_study

    folder = run_cohort_study(spec, dest=dest, workers=workers, address=scheduler,
                              overwrite=overwrite)
    verdict = json.loads((folder / "manifest.json").read_text())["qc"]["verdict"]
    study = folder / "study" / "burden.tsv"
    err.print(f"QC: {verdict}" + (f"; study: {study}" if study.exists() else ""))
    typer.echo(str(folder))
    if verdict != "pass":
        raise typer.Exit(1)


@app.command()
def spike(
    bam: Annotated[str | None, typer.Option(
        help="Coordinate-sorted BAM or CRAM of real reads: a path or an https://, http://, "
             "gs:// or file:// URL.")] = None,
    reference: Annotated[str | None, typer.Option(
        help="FASTA the reads are aligned to (path or URL).")] = None,
    variants: Annotated[Path | None, typer.Option(
        help="VCF: SNVs/MNVs/indels (VAF or GT) and SVs (<DEL>, <DUP>, <INV>, <INS>, <CNV> "
             "with END/SVLEN, CN for CNVs).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output .bam (spliced, indexed) or .cram (re-encoded, indexed); atomic.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the per-variant read choices.")] = 0,
    truth_out: Annotated[Path | None, typer.Option(
        help="Truth VCF of what was achieved (default: OUT with .truth.vcf.gz).")] = None,
    min_mapq: Annotated[int, typer.Option(min=0, help="Reads below this MAPQ are left alone.")] = 0,
    spec: Annotated[Path | None, typer.Option(
        help="SpikeSpec YAML (deployments/examples/spike-na12878.yaml): run the spike-bam "
             "flow (fetch, spike, bcftools re-call QC, manifest) into DEST/<id>/<version>; "
             "replaces --bam/--reference/--variants/--out.")] = None,
    dest: Annotated[Path, typer.Option(help="With --spec: output root folder.")] = Path("out"),
    workers: Annotated[int, typer.Option(min=1, help="With --spec: Dask workers.")] = 1,
    scheduler: Annotated[str | None, typer.Option(
        help="With --spec: existing Dask scheduler address.")] = None,
    overwrite: Annotated[bool, typer.Option(
        help="With --spec: replace an existing folder.")] = False,
) -> None:
    """Spike variants into an existing BAM/CRAM at the requested allele fractions."""
    if spec is not None:
        _spike_spec(spec, dest=dest, workers=workers, scheduler=scheduler, overwrite=overwrite)
        return
    missing = [n for n, v in (("--bam", bam), ("--reference", reference),
                              ("--variants", variants), ("--out", out)) if v is None]
    if missing:
        raise SynthError(f"missing {', '.join(missing)} (or give --spec)", where="synth spike")
    from .spike import spike_bam

    if truth_out is None:
        name = out.name.removesuffix(".bam").removesuffix(".cram")
        truth_out = out.with_name(name + ".truth.vcf.gz")
    res = spike_bam(bam=bam, reference=reference, variants=variants, out=out, seed=seed,
                    truth_out=truth_out, min_mapq=min_mapq)
    summary = res.to_dict()
    table = Table("variant", "requested VAF", "realized VAF", "depth", "alt reads")
    for v in summary["variants"]:
        table.add_row(f"{v['chrom']}:{v['pos']} {v['ref']}>{v['alt']}",
                      f"{v['requested_vaf']:.3f}", f"{v['realized_vaf']:.3f}", str(v["depth"]),
                      str(v["alt_reads"]))
    if summary["variants"]:
        err.print(table)
    if summary["svs"]:
        sv_table = Table("SV", "VAF/CN", "depth before", "depth after", "expected ratio",
                         "split reads", "discordant pairs")
        for v in summary["svs"]:
            sv_table.add_row(
                f"{v['chrom']}:{v['pos']}-{v['end']} {v['svtype']}",
                f"{v['requested_vaf']:.2f}" + (f" CN={v['cn']}" if v["cn"] is not None else ""),
                f"{v['depth_before']:.1f}", f"{v['depth_after']:.1f}",
                f"{v['expected_ratio']:.2f}", str(v["split_reads"]), str(v["discordant_pairs"]))
        err.print(sv_table)
    typer.echo(str(summary["out"]))


def _spike_spec(spec: Path, *, dest: Path, workers: int, scheduler: str | None,
                overwrite: bool) -> None:
    """``synth spike --spec``: the spike-bam flow on Dask; exit 1 when its QC fails."""
    from .spike.spec import load_spike_spec

    load_spike_spec(spec)  # a bad field exits 2 before any cluster starts
    from flows.spike_bam import run_spike

    res = run_spike(str(spec), dest=str(dest), workers=workers, address=scheduler,
                    overwrite=overwrite)
    colour = "green" if res["verdict"] == "pass" else "red"
    failed = [c["name"] for c in res["checks"] if c["status"] == "fail"]
    err.print(f"QC: [{colour}]{res['verdict']}[/]" + (f" ({', '.join(failed)})" if failed else "")
              + f"; {res['seconds']:.1f} s, {res['seconds_per_spike'] * 1000:.1f} ms per spike")
    typer.echo(res["folder"])
    if res["verdict"] == "fail":
        raise typer.Exit(1)


@catalog_app.command("list")
def catalog_list() -> None:
    """Entries sorted by priority, with assay, coverage, estimated size and compute cost
    (``~``: estimated from the spec alone, as full-scale references are not on this machine;
    ``synth catalog cost`` breaks the cost down)."""
    from .catalog import entries

    table = Table()
    for col in ("id", "priority", "assay", "coverage", "reads", "est. pairs", "est. size",
                "est. cost"):
        table.add_column(col, no_wrap=True)
    table.add_column("title", overflow="ellipsis", no_wrap=True, max_width=60)
    for e in entries():
        s = e.spec
        est = _estimate(e)
        table.add_row(s.id, str(s.priority), s.assay.type, f"{s.coverage:g}x",
                      f"2x{s.reads.length}", *est, s.title)
    out.print(table)


def _estimate(entry) -> tuple[str, str, str]:
    """(read pairs, output size, compute cost) of an entry, planned or estimated offline."""
    from .cost import OVERHEAD_FRACTION, PRICES, QC_CPU_FRACTION, estimate

    if entry.spec.cohort is not None:
        from .cohort.cost import cohort_estimate

        try:
            c = cohort_estimate(entry.spec, base_dir=entry.path.parent)
        except SynthError:
            return ("remote", "-", "-")
        hours = c["cpu_seconds"] * (1 + QC_CPU_FRACTION + OVERHEAD_FRACTION) / 3600
        return (f"{c['read_pairs']:,} ({c['samples_with_reads']}/{c['samples']} smp)",
                human_bytes(c["output_bytes"]), _usd(hours, hours * PRICES.vcpu_hour))
    try:
        c = estimate(entry.spec, base_dir=entry.path.parent)
    except SynthError:
        return ("remote", "-", "-")  # needs resources whose size is not known offline
    approx = "~" if c["source"] == "spec" else ""
    return (f"{approx}{c['read_pairs']:,}", approx + human_bytes(c["output_bytes"]),
            _usd(c["cpu_hours"], c["usd_compute"]))


def _usd(cpu_hours: float, usd: float) -> str:
    return f"{cpu_hours:,.2f} CPU-h ${usd:,.2f}" if cpu_hours >= 0.01 else f"<0.01 CPU-h ${usd:.2f}"


@catalog_app.command("show")
def catalog_show(entry_id: str) -> None:
    """Print one entry's spec (as validated, defaults filled in) as JSON."""
    from .catalog import get_entry

    entry = get_entry(entry_id)
    out.print_json(json.dumps(entry.spec.model_dump(mode="json")))


@catalog_app.command("validate")
def catalog_validate() -> None:
    """Validate every catalog entry; exit 2 if any is invalid."""
    from .catalog import validate_all

    good, bad = validate_all()
    for e in good:
        out.print(f"[green]ok[/]   {e.id}")
    for exc in bad:
        err.print(f"[red]FAIL[/] {exc}")
    if bad:
        raise typer.Exit(2)
    if not good:
        err.print("the catalog is empty")
        raise typer.Exit(2)


@catalog_app.command("plan")
def catalog_plan() -> None:
    """Estimate CPU-hours, output bytes and cloud cost of every entry before running."""
    from .cost import plan_rows, render_plan_table

    out.print(render_plan_table(plan_rows()))


@model_app.command("learn")
def model_learn(
    input: Annotated[Path, typer.Argument(help="BAM or FASTQ(.gz) of real reads.")],
    out_path: Annotated[Path, typer.Option("--out", help="Model file to write (JSON).")],
    reference: Annotated[Path | None, typer.Option(help="FASTA for mismatch counting.")] = None,
    max_reads: Annotated[int, typer.Option(min=100)] = 200_000,
) -> None:
    """Learn an error/quality model from real reads and save it as a versioned file."""
    from .reads.learn import main_learn

    summary = main_learn(input=str(input), out=str(out_path),
                         reference=str(reference) if reference else None, max_reads=max_reads)
    out.print_json(json.dumps(summary, default=float))


@model_app.command("insert-sizes")
def model_insert_sizes(
    input: Annotated[Path, typer.Argument(help="BAM/CRAM/SAM of real paired reads.")],
    out_path: Annotated[Path, typer.Option("--out", help="Histogram file to write (JSON).")],
    name: Annotated[str | None, typer.Option(help="Model name (default: file stem).")] = None,
    bin_width: Annotated[int, typer.Option(min=1, max=500)] = 10,
    min_mapq: Annotated[int, typer.Option(min=0, max=255)] = 20,
    trim_low: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.005,
    trim_high: Annotated[float, typer.Option(min=0.5, max=1.0)] = 0.995,
    max_records: Annotated[int, typer.Option(min=1)] = 5_000_000,
) -> None:
    """Learn an empirical insert-size histogram (for fragment.model: empirical)."""
    from .reads.learn import main_insert_sizes

    summary = main_insert_sizes(input=str(input), out=str(out_path), name=name,
                                bin_width=bin_width, min_mapq=min_mapq, trim_low=trim_low,
                                trim_high=trim_high, max_records=max_records)
    out.print_json(json.dumps(summary, default=float))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app; map library errors to one line and exit status 2."""
    keep_freed_memory()
    try:
        app(args=argv, standalone_mode=False)
    except SynthError as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        return 2
    except typer.Exit as exc:
        return exc.exit_code
    except typer.Abort:
        err.print("aborted")
        return 130
    except Exception as exc:
        # Usage errors (bad option values) arrive here in non-standalone mode. Typer ships its
        # own copy of click, so recognise them by behaviour rather than by class.
        if callable(getattr(exc, "show", None)) and hasattr(exc, "exit_code"):
            exc.show()
            return 2
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())

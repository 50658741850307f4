"""What building a catalog entry costs on a cloud: CPU-hours, output bytes, dollars.

Two sources of sizes, in this order:

* ``"plan"``: the entry is planned (:func:`synthlib.plan.plan_dataset`) when its reference and
  resources are on this machine, and :meth:`Plan.cost` gives read pairs, bytes and CPU-seconds.
* ``"spec"``: full-scale entries name remote data that planning would download, so their
  territory is taken from the spec alone: the listed regions, or the accessible (non-N) length
  of the named genome, or for exome/panel the approximate size of the named target set plus
  padding (:data:`TERRITORY_BP`). The same per-pair constants as :meth:`Plan.cost` apply.

Prices (USD, list prices of Google Cloud us-central1 as assumed on 2026-01; change them by
passing ``prices=``):

* compute: an ``e2-standard`` vCPU-hour (``e2-standard-8`` at $0.268/h -> $0.0335 per
  vCPU-hour); add ~$0.0045 per GB-hour of memory if machines are sized above 4 GB per vCPU;
* storage: GCS Standard, $0.020 per GB-month (regional);
* egress: internet egress to the world, $0.12 per GB for the first TB (a researcher downloading
  one copy of the dataset); same-region reads (a VM in the bucket's region) are free.

CPU time also counts QC (:data:`QC_CPU_FRACTION` of generation: re-alignment of a sample of
reads and small-variant calling) and merge/publish overhead (:data:`OVERHEAD_FRACTION`).
These are estimates for budgeting, not quotes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import SynthError
from .plan import BAM_BYTES_PER_PAIR, FASTQ_BYTES_PER_PAIR, PAIRS_PER_CPU_SECOND
from .spec import DatasetSpec

__all__ = [
    "Prices",
    "PRICES",
    "GENOME_BP",
    "TERRITORY_BP",
    "QC_CPU_FRACTION",
    "OVERHEAD_FRACTION",
    "estimate",
    "plan_rows",
    "render_plan_table",
]


@dataclass(frozen=True)
class Prices:
    """Unit prices in USD (see the module docstring for their source)."""

    vcpu_hour: float = 0.0335
    storage_gb_month: float = 0.020
    egress_gb: float = 0.12


PRICES = Prices()

#: Accessible (non-N) bases of whole references named by full-scale specs.
GENOME_BP: dict[str, int] = {
    "grch38": 2_937_639_113,   # GRCh38 no-alt primary assembly, non-N bases
    "grch37": 2_861_343_702,   # hs37d5 primary chromosomes, non-N bases
}
#: Approximate target bases of named capture/target sets (before padding) and target count.
TERRITORY_BP: dict[str, tuple[int, int]] = {
    "grch38-gencode-v44-mane.exons": (35_000_000, 190_000),  # MANE Select coding+UTR exons
}
_DEFAULT_PANEL = (500_000, 2_000)  # a panel whose BED is not known offline: ~2,000 targets
#: Genes in a named target set (MANE Select v1.x: about 19,300), to size ``assay.genes`` panels
#: from the set's average gene (about 1.8 kbp of exons in ~10 exons).
GENES_IN_SET: dict[str, int] = {"grch38-gencode-v44-mane.exons": 19_300}


def _target_size(spec: DatasetSpec) -> tuple[int, int]:
    """(target bases, target count) of an exome/panel spec, from sizes known offline."""
    bp, n = TERRITORY_BP.get(spec.assay.targets or "", _DEFAULT_PANEL)
    genes = getattr(spec.assay, "genes", None)
    n_set = GENES_IN_SET.get(spec.assay.targets or "")
    if genes and n_set:
        share = len(genes) / n_set
        bp, n = max(1, int(bp * share)), max(1, int(round(n * share)))
    return bp, n

#: QC CPU as a fraction of generation CPU (align a sample, call small variants).
QC_CPU_FRACTION = 0.5
#: Merge, checksums and upload as a fraction of generation CPU.
OVERHEAD_FRACTION = 0.15

# Throughput and sizes: the planner's measured constants (one source of truth), also used for
# specs that cannot be planned offline.


def _territory_from_spec(spec: DatasetSpec) -> int:
    from .intervals import parse_region

    if spec.reference.regions:
        total = 0
        for region in spec.reference.regions:
            chrom, s, e = parse_region(region)
            if s is None:
                raise SynthError(f"region {region!r} is a whole contig: its length is not known "
                                 "without the reference", where="reference.regions")
            total += e - s
        territory = total
    else:
        genome = GENOME_BP.get(spec.reference.name)
        if genome is None:
            raise SynthError(f"size of reference {spec.reference.name!r} not known offline",
                             where="reference.name")
        territory = genome
    if spec.assay.type != "wgs":
        bp, n = _target_size(spec)
        territory = min(territory, bp + 2 * spec.assay.padding * n)
    return territory


def _sizes(spec: DatasetSpec, base_dir: Path | None) -> tuple[str, int, int, float, int]:
    """(source, read pairs, output bytes, generation CPU-seconds, territory bases)."""
    from .plan import plan_dataset
    from .resources import is_remote_reference

    if not is_remote_reference(spec.reference.name):
        try:
            c = plan_dataset(spec, base_dir=base_dir).cost()
            return "plan", c.read_pairs, c.output_bytes, c.cpu_seconds, c.territory_bases
        except SynthError:
            pass  # resources missing here: fall back to the spec's own numbers
    territory = _territory_from_spec(spec)
    pairs = int(round(spec.coverage * territory / (2 * spec.reads.length)))
    if spec.assay.type != "wgs" and spec.assay.capture.model == "capture":
        # coverage = mean depth over targets: the capture model's count (Plan.pairs_for's).
        from .reads.capture_plan import pairs_from_sizes

        bp, n = _target_size(spec)
        whole = spec.model_copy(update={"assay": spec.assay.model_copy(update={"type": "wgs"})})
        pairs = pairs_from_sizes(spec=spec, target_bp=bp, n_targets=n,
                                 territory_bp=_territory_from_spec(whole))
    per_pair = (FASTQ_BYTES_PER_PAIR if spec.outputs.fastq else 0) + (
        BAM_BYTES_PER_PAIR if spec.outputs.bam else 0)
    return "spec", pairs, pairs * per_pair, pairs / PAIRS_PER_CPU_SECOND, territory


def estimate(spec: DatasetSpec, *, base_dir: Path | None = None,
             prices: Prices = PRICES) -> dict:
    """Cost of generating, QC'ing and storing one dataset.

    Parameters
    ----------
    spec
        The dataset spec (a :class:`synthlib.plan.Plan` works too: its spec and base folder).
    base_dir
        Folder the spec's relative paths start from.
    prices
        Unit prices.

    Returns
    -------
    dict
        ``id``, ``version``, ``priority``, ``source`` (``plan`` or ``spec``), ``read_pairs``,
        ``territory_bp``, ``output_bytes``, ``output_gb``, ``cpu_hours``, ``usd_compute``,
        ``usd_storage_month``, ``usd_egress_per_download``.
    """
    if hasattr(spec, "spec") and hasattr(spec, "units"):  # a Plan
        base_dir = base_dir or spec.base_dir
        spec = spec.spec
    if not isinstance(spec, DatasetSpec):
        raise SynthError(f"estimate() needs a DatasetSpec or Plan, got {type(spec).__name__}")
    source, pairs, out_bytes, cpu_s, territory = _sizes(spec, base_dir)
    if spec.somatic is not None and spec.somatic.normal_coverage is not None:
        # The matched normal is generated with the tumor (synthlib.generate.companions).
        from .variants.somatic import normal_spec

        _, n_pairs, n_bytes, n_cpu, _ = _sizes(normal_spec(spec), base_dir)
        pairs, out_bytes, cpu_s = pairs + n_pairs, out_bytes + n_bytes, cpu_s + n_cpu
    cpu_hours = cpu_s * (1 + QC_CPU_FRACTION + OVERHEAD_FRACTION) / 3600
    gb = out_bytes / 1e9
    return {
        "id": spec.id,
        "version": spec.version,
        "priority": spec.priority,
        "source": source,
        "read_pairs": pairs,
        "territory_bp": territory,
        "output_bytes": out_bytes,
        "output_gb": round(gb, 3),
        "cpu_hours": round(cpu_hours, 4),
        "usd_compute": round(cpu_hours * prices.vcpu_hour, 4),
        "usd_storage_month": round(gb * prices.storage_gb_month, 4),
        "usd_egress_per_download": round(gb * prices.egress_gb, 4),
    }


def plan_rows(*, folder: Path | None = None, prices: Prices = PRICES) -> list[dict]:
    """:func:`estimate` of every catalog entry, in build order (an entry that cannot be sized
    offline gets ``source="unknown"`` and an ``error``)."""
    from .catalog import entries

    rows = []
    for e in entries(folder=folder):
        try:
            rows.append(estimate(e.spec, base_dir=e.path.parent, prices=prices))
        except SynthError as exc:
            rows.append({"id": e.id, "version": e.spec.version, "priority": e.spec.priority,
                         "source": "unknown", "error": str(exc)})
    return rows


def render_plan_table(rows: list[dict]):
    """A :class:`rich.table.Table` of :func:`plan_rows` with a total line."""
    from rich.table import Table

    table = Table("id", "priority", "read pairs", "output GB", "CPU-h", "$ compute",
                  "$ storage/month", "from")
    tot = {"output_gb": 0.0, "cpu_hours": 0.0, "usd_compute": 0.0, "usd_storage_month": 0.0}
    for r in rows:
        if r["source"] == "unknown":
            table.add_row(r["id"], str(r["priority"]), "-", "-", "-", "-", "-", "unknown")
            continue
        for k in tot:
            tot[k] += r[k]
        table.add_row(r["id"], str(r["priority"]), f"{r['read_pairs']:,}",
                      f"{r['output_gb']:.2f}", f"{r['cpu_hours']:.2f}",
                      f"{r['usd_compute']:.2f}", f"{r['usd_storage_month']:.2f}", r["source"])
    table.add_section()
    table.add_row("total", "", "", f"{tot['output_gb']:.2f}", f"{tot['cpu_hours']:.2f}",
                  f"{tot['usd_compute']:.2f}", f"{tot['usd_storage_month']:.2f}", "")
    return table

"""Truth VCF text: header (from the reference alone) and per-chunk record bodies."""

from __future__ import annotations

from .model import Variant, variant_type

__all__ = ["vcf_header", "vcf_records"]


def vcf_header(*, contigs: dict[str, int], sample: str, reference_name: str) -> str:
    """VCF 4.3 header; carries nothing that depends on the run's time, place or workers."""
    lines = [
        "##fileformat=VCFv4.3",
        "##source=synthlib",
        f"##reference={reference_name}",
        *[f"##contig=<ID={c},length={n}>" for c, n in contigs.items()],
        '##INFO=<ID=SRC,Number=1,Type=String,Description="Origin: germline (population '
        'background) or spike (requested by the spec)">',
        '##INFO=<ID=VT,Number=1,Type=String,Description="Variant type: SNV, MNV, INS, DEL, '
        'COMPLEX">',
        '##INFO=<ID=PAF,Number=1,Type=Float,Description="Population allele frequency the '
        'germline genotype was drawn with">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                   sample]),
    ]
    return "\n".join(lines) + "\n"


def vcf_records(variants: list[Variant]) -> str:
    """One line per variant, in the given (sorted) order."""
    out = []
    for v in variants:
        info = f"SRC={v.source};VT={variant_type(v.ref, v.alt)}"
        if v.af is not None:
            info += f";PAF={v.af:.6g}"
        out.append(
            f"{v.chrom}\t{v.pos + 1}\t{v.vid}\t{v.ref}\t{v.alt}\t.\tPASS\t{info}\tGT\t"
            f"{v.gt[0]}|{v.gt[1]}\n"
        )
    return "".join(out)

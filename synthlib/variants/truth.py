"""Truth VCF text: header (from the reference alone) and per-chunk record bodies; SV BED."""

from __future__ import annotations

from .breakend import TRA, bnd_bed, bnd_records
from .complex import CPX, cpx_bed, cpx_header_lines, cpx_info
from .model import Variant, gt_text, variant_type
from .sv import SYMBOLIC

__all__ = ["vcf_header", "vcf_records", "sv_bed"]

_ALT_DESC = {
    "DEL": "Deletion relative to the reference",
    "DUP": "Tandem duplication (one extra copy on each carrying haplotype)",
    "INV": "Inversion of reference sequence",
    "INS": "Insertion of novel sequence",
    "CNV": "Copy number variable region (total copy number in INFO/CN)",
}


def vcf_header(*, contigs: dict[str, int], sample: str, reference_name: str,
               complex_svs: bool = False) -> str:
    """VCF 4.3 header; carries nothing that depends on the run's time, place or workers.

    ``complex_svs`` adds the ``<CPX>`` ALT and CPX_TYPE/CPX_INTERVALS INFO definitions
    (only then, so truths without complex events keep their bytes)."""
    lines = [
        "##fileformat=VCFv4.3",
        "##source=synthlib",
        f"##reference={reference_name}",
        *[f"##contig=<ID={c},length={n}>" for c, n in contigs.items()],
        *[f'##ALT=<ID={k},Description="{d}">' for k, d in _ALT_DESC.items()],
        '##INFO=<ID=SRC,Number=1,Type=String,Description="Origin: germline (population '
        'background), spike (requested by the spec) or somatic (spike at a target VAF)">',
        '##INFO=<ID=VT,Number=1,Type=String,Description="Variant type: SNV, MNV, INS, DEL, '
        'COMPLEX, SV">',
        '##INFO=<ID=PAF,Number=1,Type=Float,Description="Population allele frequency the '
        'germline genotype was drawn with">',
        '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type of structural variant">',
        '##INFO=<ID=END,Number=1,Type=Integer,Description="End position of the variant '
        'described in this record">',
        '##INFO=<ID=SVLEN,Number=1,Type=Integer,Description="Difference in length between REF '
        'and ALT alleles (negative for deletions; affected length for DUP, INV, CNV)">',
        '##INFO=<ID=CN,Number=1,Type=Integer,Description="Total copy number of a CNV region">',
        '##INFO=<ID=MATEID,Number=.,Type=String,Description="ID of the mate breakend">',
        '##INFO=<ID=EVENT,Number=1,Type=String,Description="ID of the event (translocation) '
        'the breakend belongs to">',
        '##INFO=<ID=VAF,Number=1,Type=Float,Description="Target variant allele fraction of a '
        'somatic variant in the reads">',
        *(cpx_header_lines() if complex_svs else []),
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Phased genotype">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                   sample]),
    ]
    return "\n".join(lines) + "\n"


def _sv_info(v: Variant) -> str:
    if v.svtype == CPX:
        return cpx_info(v)
    if v.svtype == "INS":
        return f";SVTYPE=INS;SVLEN={len(v.alt) - len(v.ref)}"
    size = v.end - v.pos - 1
    info = f";SVTYPE={v.svtype};END={v.end};SVLEN={-size if v.svtype == 'DEL' else size}"
    return info + (f";CN={v.cn}" if v.svtype == "CNV" else "")


def vcf_records(variants: list[Variant]) -> str:
    """One line per variant, in the given (sorted) order."""
    out = []
    for v in variants:
        vt = "SV" if v.svtype else variant_type(v.ref, v.alt)
        info = f"SRC={v.source};VT={vt}"
        if v.af is not None:
            info += f";PAF={v.af:.6g}"
        if v.vaf is not None and v.svtype == TRA:
            info += f";VAF={v.vaf:.6g}"
        if v.svtype == TRA:
            out.append(bnd_records(v, info=info))
            continue
        if v.svtype:
            info += _sv_info(v)
        if v.vaf is not None:
            info += f";VAF={v.vaf:.6g}"
        out.append(
            f"{v.chrom}\t{v.pos + 1}\t{v.vid}\t{v.ref}\t{v.alt}\t.\tPASS\t{info}\tGT\t"
            f"{gt_text(v)}\n"
        )
    return "".join(out)


def sv_bed(variants: list[Variant]) -> str:
    """BED of SV/CNV intervals (0-based, half-open affected bases; insertions: the anchor).

    Columns: chrom, start, end, SVTYPE, ID, GT, copy number (CNV; else ``.``), SVLEN.
    """
    out = []
    for v in variants:
        if not v.svtype:
            continue
        if v.svtype == TRA:
            out.append(bnd_bed(v))
            continue
        if v.svtype == CPX:
            out.append(cpx_bed(v))
            continue
        if v.svtype in SYMBOLIC:
            a, b, size = v.pos + 1, v.end, v.end - v.pos - 1
        else:
            a, b, size = v.pos, v.pos + 1, len(v.alt) - len(v.ref)
        cn = str(v.cn) if v.cn is not None else "."
        out.append(f"{v.chrom}\t{a}\t{b}\t{v.svtype}\t{v.vid}\t{gt_text(v)}\t{cn}\t"
                   f"{-size if v.svtype == 'DEL' else size}\n")
    return "".join(out)

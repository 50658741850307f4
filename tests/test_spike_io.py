"""Spike inputs and outputs (issue 8): CRAM in/out, http:// and gs:// inputs, wrong reference."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pysam
import pytest
from _spike import make_variant, write_sv_vcf

from synthlib.errors import ReferenceDataError
from synthlib.resources import RESOURCES
from synthlib.spike import spike_bam

CHR20_BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
CHR20_FA = RESOURCES["grch37-chr20-demo.fasta"].local_path()
TINY_BAM = RESOURCES["grch37-chr22-minigiab.reads"].local_path()
TINY_FA = RESOURCES["grch37-chr22-minigiab.fasta"].local_path()
CHR20_LEN = 63025520


@pytest.fixture(scope="module")
def vcf(tmp_path_factory) -> Path:
    """One SNV and one deletion SV on the chr20 reads."""
    work = tmp_path_factory.mktemp("spike_io")
    fa = pysam.FastaFile(str(CHR20_FA))
    ref, alt = make_variant(fa, "chr20", 10_000_000, "snv")
    anchor = fa.fetch("chr20", 10_001_299, 10_001_300).upper()
    return write_sv_vcf(work / "v.vcf", {"chr20": CHR20_LEN}, [
        ("chr20", 10_000_000, ref, alt, "VAF=0.5"),
        ("chr20", 10_001_300, anchor, "<DEL>", "END=10001400;SVTYPE=DEL;VAF=0.5"),
    ])


@pytest.fixture(scope="module")
def direct(vcf, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spike_io_direct") / "o.bam"
    spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=out, seed=4)
    return out


def _fields(path: Path, reference: Path) -> list[tuple]:
    with pysam.AlignmentFile(str(path), reference_filename=str(reference)) as af:
        # (CRAM drops the CIGAR of unmapped reads; some in this BAM have one)
        return [(r.query_name, r.flag, r.reference_start,
                 None if r.is_unmapped else r.cigarstring, r.query_sequence,
                 r.next_reference_start, r.template_length,
                 tuple(r.query_qualities) if r.query_qualities is not None else None)
                for r in af.fetch(until_eof=True)]


def test_cram_out_then_cram_in(vcf, direct, tmp_path):
    cram = tmp_path / "o.cram"
    res = spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=cram, seed=4)
    assert res.index == f"{cram}.crai" and Path(res.index).exists()
    assert cram.read_bytes()[:4] == b"CRAM"
    assert pysam.samtools.quickcheck(str(cram)) == ""
    assert _fields(cram, CHR20_FA) == _fields(direct, CHR20_FA)
    # a CRAM input: decoded with the reference, spiked, written as BAM
    src = tmp_path / "in.cram"
    pysam.samtools.view("-C", "-T", str(CHR20_FA), "-o", str(src), str(CHR20_BAM),
                        catch_stdout=False)
    back = tmp_path / "back.bam"
    spike_bam(bam=src, reference=CHR20_FA, variants=vcf, out=back, seed=4)
    assert _fields(back, CHR20_FA) == _fields(direct, CHR20_FA)


@pytest.fixture(scope="module")
def http_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    shutil.copy(CHR20_BAM, root / "reads.bam")  # no .bai: the spike indexes it itself
    handler = functools.partial(_QuietHandler, directory=str(root))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep pytest output clean
        pass


def test_http_input(vcf, direct, http_root, tmp_path):
    # https:// takes the same path (urllib); the loopback server speaks plain http
    out = tmp_path / "o.bam"
    spike_bam(bam=f"{http_root}/reads.bam", reference=CHR20_FA, variants=vcf, out=out, seed=4)
    assert out.read_bytes() == direct.read_bytes()
    with pytest.raises(ReferenceDataError, match="404"):
        spike_bam(bam=f"{http_root}/missing.bam", reference=CHR20_FA, variants=vcf,
                  out=tmp_path / "x.bam")


def test_gs_input(vcf, direct, emulator, tmp_path):
    url, client = emulator
    bucket = client.bucket(url.removeprefix("gs://"))
    bucket.blob("in/reads.bam").upload_from_filename(str(CHR20_BAM))
    bucket.blob("in/reads.bam.bai").upload_from_filename(f"{CHR20_BAM}.bai")
    out = tmp_path / "o.bam"
    spike_bam(bam=f"{url}/in/reads.bam", reference=CHR20_FA, variants=vcf, out=out, seed=4)
    assert out.read_bytes() == direct.read_bytes()


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "synthlib.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_wrong_reference_exits_2_naming_the_contig(tmp_path):
    fa = pysam.FastaFile(str(TINY_FA))
    seq = fa.fetch("q")
    ref, alt = make_variant(fa, "q", 600, "snv")
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"q": 12356}, [("q", 600, ref, alt, "VAF=0.5")])
    short = tmp_path / "short.fa"
    short.write_text(f">q\n{seq[:12000]}\n")
    res = _cli(["spike", "--bam", str(TINY_BAM), "--reference", str(short), "--variants",
                str(vcf), "--out", str(tmp_path / "o.bam")], tmp_path)
    assert res.returncode == 2, res.stderr
    msg = " ".join(res.stderr.split())  # rich wraps long lines
    assert "q (BAM 12356, FASTA 12000)" in msg and "Traceback" not in msg
    other = tmp_path / "other.fa"
    other.write_text(f">chr1\n{seq}\n")
    res = _cli(["spike", "--bam", str(TINY_BAM), "--reference", str(other), "--variants",
                str(vcf), "--out", str(tmp_path / "o.bam")], tmp_path)
    msg = " ".join(res.stderr.split())
    assert res.returncode == 2 and "contig q " in msg and "chr1" in msg
    assert not (tmp_path / "o.bam").exists()


def test_cli_spikes_an_sv_and_writes_truth(tmp_path):
    fa = pysam.FastaFile(str(CHR20_FA))
    anchor = fa.fetch("chr20", 10_000_799, 10_000_800).upper()
    vcf = write_sv_vcf(tmp_path / "v.vcf", {"chr20": CHR20_LEN}, [
        ("chr20", 10_000_800, anchor, "<DUP>", "END=10001100;SVTYPE=DUP;VAF=0.5")])
    out = tmp_path / "o.cram"
    res = _cli(["spike", "--bam", str(CHR20_BAM), "--reference", str(CHR20_FA), "--variants",
                str(vcf), "--out", str(out)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "DUP" in res.stderr and out.exists() and Path(f"{out}.crai").exists()
    with pysam.VariantFile(str(tmp_path / "o.truth.vcf.gz")) as vf:
        (rec,) = list(vf)
    assert rec.info["SVTYPE"] == "DUP" and rec.info["EXP_RATIO"] == 1.5

"""Spike inputs over real TLS (issue 8): an https:// BAM on 127.0.0.1 with a self-signed CA.

The CA is trusted through ``SSL_CERT_FILE`` (OpenSSL's own variable) or ``SYNTH_CA_BUNDLE``;
without either the download is refused with a one-line error and exit status 2.
"""

from __future__ import annotations

import datetime
import functools
import http.server
import ipaddress
import os
import shutil
import ssl
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

cryptography = pytest.importorskip("cryptography")
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

CHR20_BAM = RESOURCES["grch37-chr20-demo.na12878-reads"].local_path()
CHR20_FA = RESOURCES["grch37-chr20-demo.fasta"].local_path()
CHR20_LEN = 63025520


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A CA-flagged self-signed certificate for 127.0.0.1 (PEM cert, PEM key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "synth test 127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_p, key_p = folder / "ca.pem", folder / "key.pem"
    cert_p.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_p.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()))
    return cert_p, key_p


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def https_root(tmp_path_factory):
    """``(base URL, CA pem)`` of an HTTPS server on 127.0.0.1 serving the chr20 reads."""
    root = tmp_path_factory.mktemp("www_tls")
    shutil.copy(CHR20_BAM, root / "reads.bam")
    shutil.copy(f"{CHR20_BAM}.bai", root / "reads.bam.bai")
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{srv.server_address[1]}", cert
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="module")
def vcf(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("spike_tls")
    fa = pysam.FastaFile(str(CHR20_FA))
    ref, alt = make_variant(fa, "chr20", 10_000_050, "snv")
    anchor = fa.fetch("chr20", 10_001_299, 10_001_300).upper()
    return write_sv_vcf(work / "v.vcf", {"chr20": CHR20_LEN}, [
        ("chr20", 10_000_050, ref, alt, "VAF=0.5"),
        ("chr20", 10_001_300, anchor, "<DEL>", "END=10001400;SVTYPE=DEL;VAF=0.5"),
    ])


@pytest.fixture(scope="module")
def direct(vcf, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("spike_tls_direct") / "o.bam"
    spike_bam(bam=CHR20_BAM, reference=CHR20_FA, variants=vcf, out=out, seed=3)
    return out


@pytest.mark.parametrize("trust", ["SSL_CERT_FILE", "SYNTH_CA_BUNDLE"])
def test_spike_from_https_bam(trust, https_root, vcf, direct, tmp_path, monkeypatch):
    url, ca = https_root
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SYNTH_CA_BUNDLE", raising=False)
    monkeypatch.setenv(trust, str(ca))
    out = tmp_path / "o.bam"
    res = spike_bam(bam=f"{url}/reads.bam", reference=CHR20_FA, variants=vcf, out=out, seed=3)
    # same records, same bytes as spiking the local file: TLS changed only the transport
    assert out.read_bytes() == direct.read_bytes()
    assert len(res.variants) == 1 and len(res.svs) == 1
    with pytest.raises(ReferenceDataError, match="HTTP 404"):
        spike_bam(bam=f"{url}/missing.bam", reference=CHR20_FA, variants=vcf,
                  out=tmp_path / "x.bam")


def test_untrusted_certificate_is_refused(https_root, vcf, tmp_path, monkeypatch):
    url, _ = https_root
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SYNTH_CA_BUNDLE", raising=False)
    with pytest.raises(ReferenceDataError, match="certificate not trusted"):
        spike_bam(bam=f"{url}/reads.bam", reference=CHR20_FA, variants=vcf,
                  out=tmp_path / "x.bam")
    assert not (tmp_path / "x.bam").exists()


def test_cli_untrusted_certificate_exits_2(https_root, vcf, tmp_path):
    url, _ = https_root
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SYNTH_CA_BUNDLE")}
    out = tmp_path / "o.bam"
    res = subprocess.run(
        [sys.executable, "-m", "synthlib.cli", "spike", "--bam", f"{url}/reads.bam",
         "--reference", str(CHR20_FA), "--variants", str(vcf), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    msg = " ".join(res.stderr.split())  # rich wraps long lines
    assert res.returncode == 2, res.stderr
    assert "certificate not trusted" in msg and "SSL_CERT_FILE" in msg
    assert "Traceback" not in msg and not out.exists()
    # a bundle that is not PEM is reported as such, also exit 2
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate\n")
    res = subprocess.run(
        [sys.executable, "-m", "synthlib.cli", "spike", "--bam", f"{url}/reads.bam",
         "--reference", str(CHR20_FA), "--variants", str(vcf), "--out", str(out)],
        cwd=tmp_path, env={**env, "SYNTH_CA_BUNDLE": str(bad)}, capture_output=True,
        text=True, timeout=120)
    assert res.returncode == 2 and "cannot load CA bundle" in " ".join(res.stderr.split())


def test_flow_fetch_task_over_https_and_no_retry_on_untrusted(https_root, tmp_path,
                                                               monkeypatch):
    """The flow's I/O task localizes an https:// BAM (+ .bai); a TLS refusal is final."""
    from prefect.states import Failed

    from flows.spike_bam import _is_transient, fetch_task
    from synthlib.spike.spec import parse_spike_spec

    url, ca = https_root
    spec = parse_spike_spec({
        "id": "tls", "version": "1.0.0", "reason": "https input", "bam": f"{url}/reads.bam",
        "reference": "grch37-chr20-demo",
        "variants": {"explicit": [{"chrom": "chr20", "pos": 10000050, "ref": "C", "alt": "G"}]},
    })
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))
    got = fetch_task.fn(spec, str(tmp_path), str(tmp_path / "work"))
    assert Path(got["bam"]).read_bytes() == CHR20_BAM.read_bytes()
    assert Path(got["bam"] + ".bai").exists() and got["bam_source"] == f"{url}/reads.bam"
    assert "VAF=0.5" in Path(got["variants"]).read_text()
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(ReferenceDataError) as exc:
        fetch_task.fn(spec, str(tmp_path), str(tmp_path / "work2"))
    assert not _is_transient(None, None, Failed(data=exc.value))
    refused = ReferenceDataError(f"cannot fetch {url}: ConnectionRefusedError(111)")
    assert _is_transient(None, None, Failed(data=refused))

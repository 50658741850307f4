"""The synth command: exit codes, one-line errors, nothing half written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pysam

from synthlib.generate import FILES

SYNTH = [sys.executable, "-m", "synthlib.cli"]


def _run(args, cwd, env=None):
    return subprocess.run(SYNTH + args, cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_catalog_list_and_validate(tmp_path):
    res = _run(["catalog", "list"], tmp_path)
    assert res.returncode == 0 and "demo" in res.stdout and "wgs" in res.stdout
    res = _run(["catalog", "validate"], tmp_path)
    assert res.returncode == 0 and "ok" in res.stdout


def test_unknown_id_exit_2_lists_known(tmp_path):
    res = _run(["run", "no-such-thing", "--dest", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2
    assert "no catalog entry" in res.stderr and "demo" in res.stderr
    assert not (tmp_path / "o").exists()


def test_invalid_spec_exit_2_names_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nseed: 1\nreason: r\ncoverage: 5\nreference: {name: x}\nwhat: 1\n")
    res = _run(["run", str(bad), "--dest", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2
    assert "bad.yaml" in res.stderr and "what" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "o").exists()


def test_bad_targets_bed_names_line(tmp_path):
    bed = tmp_path / "t.bed"
    bed.write_text("chr20\t1000100\t1000200\nchr20\tabc\t5\n")
    spec = tmp_path / "ex.yaml"
    spec.write_text(
        "id: ex\nseed: 1\nreason: r\ncoverage: 5\n"
        "reference: {name: grch37-chr20-demo}\nassay: {type: panel, targets: t.bed}\n")
    res = _run(["run", str(spec), "--dest", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2 and "t.bed:2" in res.stderr


def test_run_demo_writes_dataset(prefect_api, tmp_path):
    res = _run(["run", "demo", "--dest", str(tmp_path / "bucket"), "--workers", "2"], tmp_path,
               env={"PREFECT_API_URL": prefect_api})
    assert res.returncode == 0, res.stderr
    folder = Path(res.stdout.strip().splitlines()[-1])
    assert folder == tmp_path / "bucket" / "demo" / "1.0.0"
    for name in FILES.values():
        assert (folder / name).exists()
    assert pysam.samtools.quickcheck(str(folder / FILES["bam"])) == ""
    assert "QC: pass" in res.stderr and (folder / "qc" / "qc.json").exists()


def test_spike_command(tmp_path):
    from _spike import write_vcf

    from synthlib.resources import resolve_file

    fasta = resolve_file("grch37-chr22-minigiab.fasta")
    bam = resolve_file("grch37-chr22-minigiab.reads")
    ref = pysam.FastaFile(str(fasta))
    pos = 6000
    base = ref.fetch("q", pos - 1, pos)
    alt = {"A": "C", "C": "G", "G": "T", "T": "A"}[base]
    vcf = write_vcf(tmp_path / "v.vcf", {"q": ref.get_reference_length("q")},
                    [("q", pos, base, alt, None, "0/1")])
    out = tmp_path / "spiked.bam"
    res = _run(["spike", "--bam", str(bam), "--reference", str(fasta), "--variants", str(vcf),
                "--out", str(out), "--seed", "3"], tmp_path)
    assert res.returncode == 0, res.stderr
    assert out.exists() and pysam.samtools.quickcheck(str(out)) == ""
    assert f"q:{pos} {base}>{alt}" in res.stderr

    bad = write_vcf(tmp_path / "bad.vcf", {"q": ref.get_reference_length("q")},
                    [("q", pos, alt, base, None, "0/1")])  # REF does not match the reference
    res = _run(["spike", "--bam", str(bam), "--reference", str(fasta), "--variants", str(bad),
                "--out", str(tmp_path / "bad.bam")], tmp_path)
    assert res.returncode == 2 and "REF" in res.stderr
    assert not (tmp_path / "bad.bam").exists()


def test_bad_option_value_is_a_usage_error(tmp_path):
    res = _run(["run", "demo", "--workers", "0", "--dest", str(tmp_path / "o")], tmp_path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "workers" in res.stderr and not (tmp_path / "o").exists()


def test_run_to_a_bucket_publishes_after_qc(prefect_api, fake_gcs, tmp_path, monkeypatch):
    """`synth run SPEC --dest gs://...` generates, QCs and publishes; then ls/get read it back."""
    from synthlib.catalog import open_published

    url, client = fake_gcs
    spec = tmp_path / "tiny-bucket.yaml"
    spec.write_text(
        "id: tiny-bucket\nseed: 11\nreason: t\ncoverage: 12\nchunk_size: 50000\n"
        "reference: {name: grch37-chr20-demo, regions: ['chr20:1,300,001-1,400,000']}\n"
        "variants: {random: [{type: snv, count: 5}]}\n")
    env = {"PREFECT_API_URL": prefect_api, "STORAGE_EMULATOR_HOST": client.api_endpoint,
           "SYNTH_WORK_DIR": str(tmp_path / "work")}
    dest = f"{url}/cli-test"
    res = _run(["run", str(spec), "--dest", dest, "--workers", "1"], tmp_path, env=env)
    assert res.returncode == 0, res.stderr
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", client.api_endpoint)
    published = open_published(dest)
    [entry] = [d for d in published.datasets if d["id"] == "tiny-bucket"]
    assert entry["qc"]["verdict"] == "pass"
    res = _run(["catalog", "ls", dest], tmp_path, env=env)
    assert res.returncode == 0 and "tiny-bucket" in res.stdout
    res = _run(["catalog", "get", dest, "tiny-bucket", "--to", str(tmp_path / "got")], tmp_path,
               env=env)
    assert res.returncode == 0, res.stderr
    got = tmp_path / "got" / "tiny-bucket" / "1.0.0"
    assert pysam.samtools.quickcheck(str(got / FILES["bam"])) == ""

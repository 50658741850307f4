"""Peer simulators: how to install each one on demand and how to run it on the shared input.

Every peer gets the same reference, read length, fragment mean/sd and number of read pairs
(coverage x reference bases / 2 x read length). Debian tools are installed with ``apt-get``;
NEAT v4 lives in its own virtualenv under ``benchmarks/.peers/`` (git-ignored), never in the
project's environment. A peer that cannot be installed is reported as unavailable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Workload", "Peer", "PEERS", "peer_names", "ensure_installed"]

PEERS_DIR = Path(__file__).resolve().parent / ".peers"
NEAT_VENV = PEERS_DIR / "neat-venv"
NEAT_VERSION = "4.7.1"


@dataclass(frozen=True)
class Workload:
    """What every tool is asked to produce."""

    reference: Path
    reference_bases: int
    coverage: float
    read_length: int = 150
    fragment_mean: int = 350
    fragment_sd: int = 50
    seed: int = 42

    @property
    def pairs(self) -> int:
        return int(round(self.coverage * self.reference_bases / (2 * self.read_length)))


@dataclass(frozen=True)
class Peer:
    """One peer tool."""

    name: str
    label: str
    outputs: str
    executable: Callable[[], Path | None]
    install: Callable[[], None]
    command: Callable[[Workload, Path], list[str]]
    count_pairs: Callable[[Path], int]
    stdout_file: str | None = None


def _which(name: str, extra: tuple[str, ...] = ()) -> Callable[[], Path | None]:
    def find() -> Path | None:
        hit = shutil.which(name) or next(
            (str(Path(d) / name) for d in extra if (Path(d) / name).is_file()), None)
        return Path(hit) if hit else None
    return find


def _apt(package: str) -> Callable[[], None]:
    def install() -> None:
        if not shutil.which("apt-get"):
            raise RuntimeError("apt-get not found (install the package by hand)")
        if os.geteuid() != 0:
            raise RuntimeError(f"need root to apt-get install {package}")
        print(f"[bench] installing Debian package {package} (apt-get install -y)", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env,
                             capture_output=True, text=True)
        if run.returncode != 0:
            # A stale package list is the usual cause: refresh once and retry.
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            run = subprocess.run(["apt-get", "install", "-y", "-q", package], env=env,
                                 capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"apt-get install {package} failed: {run.stderr.strip()[-300:]}")
    return install


def _neat_exe() -> Path | None:
    # NEAT shells out to ``bcftools sort`` for its golden VCF: usable only with both.
    exe = NEAT_VENV / "bin" / "neat"
    return exe if exe.is_file() and shutil.which("bcftools") else None


def _neat_install() -> None:
    if not shutil.which("bcftools"):
        _apt("bcftools")()
    if (NEAT_VENV / "bin" / "neat").is_file():
        return
    print(f"[bench] installing neat-genreads {NEAT_VERSION} into {NEAT_VENV} (own virtualenv)",
          flush=True)
    NEAT_VENV.parent.mkdir(parents=True, exist_ok=True)
    base = shutil.which("python3.11") or shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", str(NEAT_VENV)], check=True, capture_output=True)
    run = subprocess.run([str(NEAT_VENV / "bin" / "pip"), "install", "-q",
                          f"neat-genreads=={NEAT_VERSION}"], capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"pip install neat-genreads failed: {run.stderr.strip()[-300:]}")


def _count_fastq_lines(path: Path) -> int:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
    return n // 4


def _count_first(pattern: str) -> Callable[[Path], int]:
    def count(out_dir: Path) -> int:
        hits = sorted(out_dir.glob(pattern))
        if not hits:
            raise FileNotFoundError(f"no {pattern} in {out_dir}")
        return _count_fastq_lines(hits[0])
    return count


def _wgsim(w: Workload, out: Path) -> list[str]:
    return ["wgsim", "-S", str(w.seed), "-N", str(w.pairs), "-1", str(w.read_length),
            "-2", str(w.read_length), "-d", str(w.fragment_mean), "-s", str(w.fragment_sd),
            str(w.reference), str(out / "r1.fq"), str(out / "r2.fq")]


def _art(w: Workload, out: Path) -> list[str]:
    # HSXt: the HiSeq X TruSeq 2x150 profile, the instrument our learned model comes from.
    return ["art_illumina", "-ss", "HSXt", "-i", str(w.reference), "-p",
            "-l", str(w.read_length), "-f", str(w.coverage), "-m", str(w.fragment_mean),
            "-s", str(w.fragment_sd), "-rs", str(w.seed), "-na", "-q", "-o", str(out / "art_")]


def _dwgsim(w: Workload, out: Path) -> list[str]:
    # -d is the outer distance (the fragment length); -y 0: no random junk reads; -o 1: only
    # the per-mate FASTQs (no extra interleaved copy).
    return ["dwgsim", "-z", str(w.seed), "-N", str(w.pairs), "-1", str(w.read_length),
            "-2", str(w.read_length), "-d", str(w.fragment_mean), "-s", str(w.fragment_sd),
            "-y", "0", "-o", "1", str(w.reference), str(out / "dwgsim")]


def _neat(w: Workload, out: Path) -> list[str]:
    config = {
        "reference": str(w.reference),
        "read_len": w.read_length,
        "coverage": w.coverage,
        "paired_ended": True,
        "fragment_mean": w.fragment_mean,
        "fragment_st_dev": w.fragment_sd,
        "produce_fastq": True,
        "produce_vcf": True,
        "produce_bam": False,
        "threads": 1,
        "rng_seed": w.seed,
        "overwrite_output": True,
    }
    out.mkdir(parents=True, exist_ok=True)
    cfg = out / "neat_config.yml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    exe = _neat_exe() or Path("neat")
    return [str(exe), "read-simulator", "-c", str(cfg), "-o", str(out), "-p", "neat"]


PEERS: dict[str, Peer] = {
    "wgsim": Peer("wgsim", "wgsim", "FASTQ (plain)", _which("wgsim"),
                  _apt("samtools"), _wgsim, _count_first("r1.fq")),
    "art": Peer("art", "ART (HSXt)", "FASTQ (plain)", _which("art_illumina"),
                _apt("art-nextgen-simulation-tools"), _art, _count_first("art_1.fq")),
    "dwgsim": Peer("dwgsim", "DWGSIM", "FASTQ.gz+VCF", _which("dwgsim"),
                   _apt("dwgsim"), _dwgsim, _count_first("dwgsim.bwa.read1.fastq*")),
    "neat": Peer("neat", f"NEAT {NEAT_VERSION}", "FASTQ.gz+VCF", _neat_exe, _neat_install,
                 _neat, _count_first("neat*_r1.fastq*")),
}


def peer_names() -> list[str]:
    return list(PEERS)


def ensure_installed(peer: Peer) -> str | None:
    """Install ``peer`` if missing; return None when usable, else why it is unavailable."""
    if peer.executable() is not None:
        return None
    try:
        peer.install()
    except (RuntimeError, OSError, subprocess.CalledProcessError) as exc:
        return str(exc)
    return None if peer.executable() is not None else "installed, but executable not found"

"""The BGZF writer: valid for htslib, block-bounded, and byte-identical whatever ran before."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import sys
import zlib

import numpy as np
import pysam
import pytest

from synthlib.io import bgzf


def _fastq_like(n_reads: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n_reads, 150))]
    quals = np.frombuffer(b"F:,", dtype=np.uint8)[rng.choice(3, p=[0.9, 0.08, 0.02],
                                                             size=(n_reads, 150))]
    lines = []
    for i in range(n_reads):
        lines.append(b"@r%d/1\n%s\n+\n%s\n" % (i, bases[i].tobytes(), quals[i].tobytes()))
    return b"".join(lines)


def _blocks(body: bytes) -> list[tuple[int, int]]:
    """(compressed size, uncompressed size) of each block, walking BSIZE fields."""
    out, pos = [], 0
    while pos < len(body):
        assert body[pos : pos + 4] == b"\x1f\x8b\x08\x04"
        bsize = int.from_bytes(body[pos + 16 : pos + 18], "little") + 1
        isize = int.from_bytes(body[pos + bsize - 4 : pos + bsize], "little")
        out.append((bsize, isize))
        pos += bsize
    assert pos == len(body)
    return out


def test_round_trip_and_block_bounds(tmp_path):
    data = _fastq_like(3000, seed=1)
    body = bgzf.compress(data)
    blocks = _blocks(body)
    assert len(blocks) == -(-len(data) // bgzf.BLOCK_DATA_SIZE)
    assert all(c <= 0x10000 and u <= bgzf.BLOCK_DATA_SIZE for c, u in blocks)
    assert sum(u for _, u in blocks) == len(data)
    path = tmp_path / "x.fastq.gz"
    path.write_bytes(body + bgzf.EOF)
    assert gzip.decompress(path.read_bytes()) == data
    with pysam.BGZFile(str(path), "rb") as fh:
        assert fh.read() == data
    if shutil.which("bgzip"):
        subprocess.run(["bgzip", "-t", str(path)], check=True)


def test_incompressible_data_is_stored():
    data = np.random.default_rng(2).integers(0, 256, 3 * bgzf.BLOCK_DATA_SIZE,
                                             dtype=np.uint8).tobytes()
    body = bgzf.compress(data)
    assert all(c <= 0x10000 for c, _ in _blocks(body))
    assert gzip.decompress(body + bgzf.EOF) == data


def test_empty_input_gives_no_blocks():
    assert bgzf.compress(b"") == b""


_POLLUTED = r"""
import hashlib, os, random, sys
import numpy as np
from isal import isal_zlib
from synthlib.io import bgzf
rng = random.Random(int(sys.argv[1]))
# Leave freed heap full of other data and of other compressors' tables, then compress.
data = open(sys.argv[2], "rb").read()
junk = [os.urandom(rng.randrange(1_000, 2_000_000)) for _ in range(rng.randrange(1, 12))]
for _ in range(rng.randrange(1, 4)):
    c = isal_zlib.compressobj(rng.choice([0, 1, 2, 3]), isal_zlib.DEFLATED, -15)
    c.compress(os.urandom(100_000)); c.flush(isal_zlib.Z_SYNC_FLUSH)
    bgzf.compress(data[rng.randrange(len(data)):][:rng.randrange(1, 200_000)])
del junk, c
print(hashlib.md5(bgzf.compress(data)).hexdigest())
"""


@pytest.mark.parametrize("seeds", [(11, 12, 13, 14, 15, 16)])
def test_bytes_do_not_depend_on_process_history_or_layout(tmp_path, seeds):
    """Other processes, with other heap histories, address layouts (ASLR) and stack depths (the
    environment's size moves the stack), write the same bytes. ISA-L's level 1 failed this
    kind of check on a 420 MB BAM stream in about one process in eight."""
    src = tmp_path / "data.fastq"
    data = _fastq_like(4000, seed=3) + _fastq_like(4000, seed=6).replace(b"A", b"C")
    src.write_bytes(data)
    here = hashlib.md5(bgzf.compress(data)).hexdigest()
    digests = {
        subprocess.run([sys.executable, "-c", _POLLUTED, str(s), str(src)], check=True,
                       capture_output=True, text=True,
                       env={**os.environ, "SYNTH_TEST_PAD": "x" * (s * 211)}).stdout.strip()
        for s in seeds
    }
    assert digests == {here}


def test_isal_stateless_is_the_codec_here():
    from synthlib.io import igzip

    # python-isal is a dependency: its ISA-L must be callable, or files lose their speed.
    assert igzip.available()
    assert bgzf.codec_version().startswith("ISA-L stateless via isal ")
    assert bgzf.codec_version().endswith(", level 0")
    data = _fastq_like(500, seed=4)[: bgzf.BLOCK_DATA_SIZE]
    assert zlib.decompress(igzip.deflate(data), -15) == data
    assert igzip.deflate(data) == igzip.deflate(memoryview(bytearray(data)))


def test_libdeflate_fallback_writes_valid_bgzf(monkeypatch):
    from synthlib.io import igzip

    monkeypatch.setattr(igzip, "available", lambda: False)
    assert bgzf.codec_version().startswith("libdeflate via deflate ")
    assert bgzf.codec_version().endswith(", level 1")
    data = _fastq_like(2000, seed=5)
    body = bgzf.compress(data)
    assert gzip.decompress(body + bgzf.EOF) == data
    assert body == bgzf.compress(data)

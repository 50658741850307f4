"""Random streams keyed by what they are for, so results never depend on how work is split.

Every draw comes from ``np.random.SeedSequence(seed, spawn_key=(purpose, sample, region))``
with stable 63-bit keys of the names: the same sample in the same region gets the same stream
whether it is simulated alone, in a block of 50 or in a block of 1,000.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["stable_key", "rng_for"]


def stable_key(name: str) -> int:
    """A 63-bit integer from a name (blake2b; the same on every platform and Python run)."""
    digest = hashlib.blake2b(name.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator for ``(seed, *names)``, e.g. ``rng_for(seed, "background", sample, region)``."""
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    ss = np.random.SeedSequence(seed, spawn_key=tuple(stable_key(n) for n in names))
    return np.random.Generator(np.random.PCG64(ss))

"""glibc malloc settings for generating processes: freed memory is kept and reused.

Generation allocates and frees arrays of tens to hundreds of MB for every batch and unit.
glibc serves blocks above its mmap threshold (at most 32 MiB) with fresh ``mmap`` pages and
unmaps them on free, so every batch faults in and zeroes its pages again: on the benchmark
machine a first touch costs about 2 s per GB, and page zeroing was 11% of a golden-BAM run's
CPU. With ``mmap`` off for ``malloc`` and trimming raised, the next batch reuses the pages.
Peak memory is unchanged (bounded by the unit; the benchmark reports it per worker).

Entry points call :func:`keep_freed_memory` (the CLI, the flows' unit tasks, the benchmark);
the library itself never changes process-wide settings.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4


@functools.cache
def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve large blocks from the heap and keep freed memory.

    Returns
    -------
    bool
        Whether the settings took effect (False where the C library is not glibc).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 1 << 30)
                and mallopt(_M_TOP_PAD, 64 << 20))

"""Start-up of every Dask worker process we launch (distributed's ``preload``).

The generator's modules (numpy, pysam, pydantic specs: about 0.5 s) are imported and glibc's
malloc is told to keep freed memory before the worker takes its first task, so that cost is
paid once per worker process at cluster start, not inside the first unit of every run.
"""

from __future__ import annotations

__all__ = ["dask_setup"]


def dask_setup(worker: object) -> None:
    """Called by distributed in each worker process, before it accepts tasks."""
    from synthlib.allocator import keep_freed_memory

    keep_freed_memory()
    import synthlib.generate  # noqa: F401  (the import is the point)

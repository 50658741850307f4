"""Prefect flows wrapping synthlib: generate, QC and publish datasets on Dask."""

from .runtime import prepare_environment

# Before prefect is imported anywhere: quiet, offline-friendly defaults.
prepare_environment()

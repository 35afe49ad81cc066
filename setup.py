"""Builds the optional C fast paths (`metric()` and `metrics()`, the store sink's split of a batch
into columns, and the store's scans of a chunk's columns); the project's metadata is in pyproject.toml.

`optional=True`: where it cannot be compiled, the package installs without it and runs in pure Python.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "contexta.capture._scopes._metric_call",
            ["src/contexta/capture/_scopes/_metric_call.c"],
            optional=True,
        ),
        Extension(
            "contexta.capture._metric_columns",
            ["src/contexta/capture/_metric_columns.c"],
            optional=True,
        ),
        Extension(
            "contexta.store._chunk_scan",
            ["src/contexta/store/_chunk_scan.c"],
            optional=True,
        ),
    ]
)

"""The environment a run executes in: Python, platform, installed packages and the git revision.

Collected in a background thread when a run opens (listing packages and asking git take tens of
milliseconds, far too long for the caller), cached per process, and enqueued like any record.
Environment variables hold credentials (cloud keys, API tokens), so only the ones on an allow-list
of settings that change how a job runs are recorded, never the others.
"""

from __future__ import annotations

import email.parser  # noqa: F401 (why: see below)
import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from typing import Any

from contexta._courtesy import make_way
from contexta.capture._log._unencodable import salvaged

__all__ = ["ENVIRONMENT_VARIABLES", "environment_fields"]

# `email.parser` above: importlib.metadata loads it on the first `.metadata`, which would be in the
# collecting thread in the middle of a run; an import holds the GIL while it runs and stalls a busy
# event loop, so it is loaded with this module instead.

# The only environment variables whose values are recorded: devices, threads, seeds, ranks, job ids.
ENVIRONMENT_VARIABLES = (
    "CUDA_VISIBLE_DEVICES",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHONHASHSEED",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "SLURM_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
)


@functools.lru_cache(maxsize=1)
def _process_fields() -> tuple[tuple[str, Any], ...]:
    packages: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name:
            packages[name.lower()] = distribution.version
        make_way()  # reading hundreds of packages' metadata takes the first run's collector ~100 ms
    return (
        ("python_version", platform.python_version()),
        ("platform", platform.platform()),
        ("packages", dict(sorted(packages.items()))),
        (
            "attributes",
            {
                "executable": sys.executable,
                "hostname": socket.gethostname(),
                "implementation": platform.python_implementation(),
            },
        ),
    )


@functools.lru_cache(maxsize=64)
def _git_revision(directory: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and revision else None


def environment_fields() -> dict[str, Any]:
    """The EnvironmentSnapshot fields (without run_ref and captured_at) for this process."""
    fields = dict(_process_fields())
    fields["attributes"] = dict(fields["attributes"])
    variables = {name: os.environ[name] for name in ENVIRONMENT_VARIABLES if name in os.environ}
    if variables:
        fields["attributes"]["environment_variables"] = variables
    fields["git_revision"] = _git_revision(os.getcwd())
    # A path or variable of bytes that are not UTF-8 (held as surrogate escapes) is kept as
    # `plain_text` gives it, so the snapshot can always be written.
    return salvaged(fields)  # type: ignore[no-any-return]

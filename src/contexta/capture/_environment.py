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
    packages: dict[str, str | None] = {}  # None: metadata without a Version (as importlib gave it)
    for distribution in importlib.metadata.distributions():
        name, version = _name_and_version(distribution)
        if name:
            packages[name.lower()] = version
        make_way()  # between packages: hundreds of files are read
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


def _name_and_version(distribution: importlib.metadata.Distribution) -> tuple[str | None, str | None]:
    """A distribution's Name and Version headers, read from the head of its metadata file.

    Why not `distribution.metadata`: it runs the whole file, long description included, through the
    email parser, which made listing 150 packages take the first run's collector 60-85 ms of GIL
    (about 6 ms this way) while the caller's first steps waited, and left thousands of parsed objects
    to the garbage collector, whose deferred full collection then fell inside the caller's loop.
    Metadata with neither file (an egg-info file of its own) still goes through the parser."""
    text = distribution.read_text("METADATA") or distribution.read_text("PKG-INFO")
    if text is None:
        return distribution.metadata["Name"], distribution.version
    return _headers(text)


def _headers(text: str) -> tuple[str | None, str | None]:
    """The first Name and Version of metadata text (RFC 822 headers, which end at the first empty
    line), as the email parser reads them: the key's case ignored, a folded line (one that begins
    with whitespace) continuing the header before it, never starting one."""
    found: dict[str, str] = {}
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not line:  # (a line of spaces only continues the header before it, as in a folded license)
            break
        if line[0] in " \t":
            continue
        key, colon, value = line.partition(":")
        key = key.strip().lower()
        if colon and key in ("name", "version") and key not in found:
            found[key] = value.strip()
            if len(found) == 2:
                break
    return found.get("name"), found.get("version")


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

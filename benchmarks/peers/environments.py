"""One virtualenv per tracker, outside the repository, so no tracker's dependencies touch another's.

An environment is reused when it already has the tracker's distributions. Before installing, pip
resolves the requirements without installing anything (`--dry-run --report`); a tracker whose
resolution pulls torch or CUDA is skipped, because that is gigabytes this benchmark does not need.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

INSTALL_TIMEOUT_S = 1_200
# Distributions that mean torch, TensorFlow, JAX or CUDA is coming along. nvidia-ml-py is the pure-Python
# NVML binding (DVCLive's GPU monitor), not CUDA, so it is allowed.
HEAVY_PREFIXES = ("torch", "triton", "tensorflow", "jax", "nvidia-")
ALLOWED_HEAVY_LOOKALIKES = frozenset({"nvidia-ml-py", "jaxtyping"})

_VERSIONS_SCRIPT = """
import importlib.metadata as metadata, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        found[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        found[name] = None
print(json.dumps(found))
"""


@dataclass(frozen=True, slots=True)
class Environment:
    """A Python interpreter that can run one tracker's workload, and the versions it holds."""

    python: Path
    versions: dict[str, str]
    reused: bool


@dataclass(frozen=True, slots=True)
class EnvironmentFailure:
    """Why a tracker could not be installed; the table prints `reason`."""

    reason: str


def installed_versions(python: Path, distributions: Sequence[str]) -> dict[str, str | None]:
    """The version of each distribution in `python`'s environment (None where it is missing)."""
    done = subprocess.run(
        [str(python), "-c", _VERSIONS_SCRIPT, *distributions],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return dict.fromkeys(distributions)
    versions: dict[str, str | None] = json.loads(done.stdout)
    return versions


def existing_environment(python: Path, distributions: Sequence[str]) -> Environment | EnvironmentFailure:
    """An interpreter set up by someone else (Contexta's own venv), checked to hold `distributions`."""
    if not python.exists():
        return EnvironmentFailure(f"no interpreter at {python}")
    versions = installed_versions(python, distributions)
    missing = [name for name, version in versions.items() if version is None]
    if missing:
        return EnvironmentFailure(f"{python} lacks {', '.join(missing)}")
    return Environment(python, {k: v for k, v in versions.items() if v is not None}, reused=True)


def prepare_environment(
    root: Path,
    name: str,
    packages: Sequence[str],
    distributions: Sequence[str],
    log: Callable[[str], None],
) -> Environment | EnvironmentFailure:
    """The virtualenv `root/name` with `packages` installed: reused if it has them, else created."""
    venv = root / name
    python = venv / "bin" / "python"
    if python.exists():
        reused = existing_environment(python, distributions)
        if isinstance(reused, Environment):
            log(f"reusing {venv}")
            return reused
    log(f"creating {venv} and installing {' '.join(packages)}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    created = _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    if created is not None:
        return EnvironmentFailure(f"venv creation failed: {created}")
    heavy = _heavy_dependencies(python, packages)
    if isinstance(heavy, EnvironmentFailure):
        return heavy
    if heavy:
        return EnvironmentFailure(f"depends on {', '.join(heavy)} (torch/CUDA are not installed here)")
    failed = _run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *packages],
        timeout=INSTALL_TIMEOUT_S,
    )
    if failed is not None:
        return EnvironmentFailure(failed)
    installed = existing_environment(python, distributions)
    return replace(installed, reused=False) if isinstance(installed, Environment) else installed


def _heavy_dependencies(python: Path, packages: Sequence[str]) -> list[str] | EnvironmentFailure:
    """What of torch/CUDA pip would install with `packages` (resolved, nothing installed)."""
    command = [str(python), "-m", "pip", "install", "--dry-run", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run(
        [*command, "--report", "-", *packages],
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        return EnvironmentFailure(_last_line(done.stderr) or f"pip resolution exited {done.returncode}")
    report = json.loads(done.stdout)
    names = [item["metadata"]["name"].lower() for item in report.get("install", [])]
    return sorted(
        name for name in names if name.startswith(HEAVY_PREFIXES) and name not in ALLOWED_HEAVY_LOOKALIKES
    )


def _run(command: Sequence[str], *, timeout: float) -> str | None:
    """Run a setup command; None when it succeeded, else the reason in one line."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s: {' '.join(command[:4])}"
    if done.returncode != 0:
        return _last_line(done.stderr) or f"exit status {done.returncode}"
    return None


def _last_line(text: str) -> str:
    """The last non-empty line of a tool's error output, which is where pip says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""

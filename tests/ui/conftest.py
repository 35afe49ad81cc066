"""Fixtures for the dashboard: a captured demo workspace (once per module), the app under Starlette's
TestClient, and a real `contexta ui` process on a free port."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ui_workspaces import capture_demo

pytest.importorskip("starlette", reason="the dashboard needs starlette (a dependency of contexta)")

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return capture_demo(tmp_path_factory.mktemp("demo") / ".contexta")


@dataclass
class UiProcess:
    process: subprocess.Popen[str]
    url: str  # as printed: with ?token= when one is set
    base: str  # scheme, host and port, ending in /

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def start_ui(workspace: Path, *extra: str, env: dict[str, str] | None = None) -> UiProcess:
    """`contexta ui --workspace W --port 0` in a subprocess; returns once it printed its URL."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    environment.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "contexta", "ui", "--workspace", str(workspace), "--port", "0", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        raise AssertionError(
            f"contexta ui printed no URL: {line!r} {process.stderr.read() if process.stderr else ''}"
        )
    url = found.group(0)
    return UiProcess(process, url, url.split("?")[0])


@pytest.fixture
def ui_process(demo_workspace: Path) -> Iterator[UiProcess]:
    server = start_ui(demo_workspace)
    try:
        yield server
    finally:
        server.stop()

"""`contexta ui` as a user runs it: a real process on a free port, its refusals, Ctrl-C, and the event
stream delivering what another process captures while a page watches."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from ui_workspaces import SRC, UiProcess, start_ui

from contexta import Contexta
from contexta.cli import main


def test_it_prints_the_real_url_of_a_free_port_and_serves(ui_process: UiProcess) -> None:
    assert ui_process.url.startswith("http://127.0.0.1:")
    assert not ui_process.url.endswith(":0/")
    response = httpx.get(ui_process.base + "api/runs")
    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


def test_ctrl_c_stops_it_cleanly_even_with_a_stream_open(ui_process: UiProcess) -> None:
    opened = threading.Event()

    def listen() -> None:
        try:
            with httpx.stream("GET", ui_process.base + "api/stream?runs=1", timeout=30) as response:
                for _ in response.iter_lines():
                    opened.set()
        except httpx.HTTPError:
            pass

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert opened.wait(10)

    code = ui_process.stop()

    assert code in (0, 130)
    listener.join(10)
    assert not listener.is_alive()
    assert ui_process.process.stderr is not None
    assert "Traceback" not in ui_process.process.stderr.read()


def test_a_host_other_machines_reach_is_refused_without_a_token(demo_workspace: Path, capsys: Any) -> None:
    code = main(["ui", "--workspace", str(demo_workspace), "--host", "0.0.0.0", "--port", "0"])

    assert code == 1
    assert "without an access token" in capsys.readouterr().err


def test_with_a_token_the_printed_url_carries_it_and_requests_need_it(demo_workspace: Path) -> None:
    server = start_ui(demo_workspace, env={"CONTEXTA_UI_TOKEN": "t0ken"})
    try:
        assert server.url.endswith("/?token=t0ken")
        assert httpx.get(server.base + "api/runs").status_code == 401
        with httpx.Client(follow_redirects=True) as client:
            assert client.get(server.url).status_code == 200  # the cookie is set once
            assert client.get(server.base + "api/runs").status_code == 200
    finally:
        assert server.stop() in (0, 130)


def test_a_missing_workspace_is_a_one_line_error(tmp_path: Path, capsys: Any) -> None:
    code = main(["ui", "--workspace", str(tmp_path / "none"), "--port", "0"])

    assert code == 1
    assert "contexta:" in capsys.readouterr().err


# -- live ------------------------------------------------------------------------------------------


class EventReader:
    """Reads a Server-Sent Events stream in a thread and keeps each event as (name, data)."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[str, Any]] = []
        self.arrived = threading.Condition()
        self._url = url
        self._client = httpx.Client(timeout=60)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        name = "message"
        try:
            with self._client.stream("GET", self._url) as response:
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("data: "):
                        with self.arrived:
                            self.events.append((name, orjson.loads(line[6:])))
                            self.arrived.notify_all()
        except httpx.HTTPError:
            pass

    def wait_for(self, condition: Any, timeout: float = 30) -> list[tuple[str, Any]]:
        deadline = time.monotonic() + timeout
        with self.arrived:
            while not condition(self.events):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no such event within {timeout}s; got {self.events}")
                self.arrived.wait(left)
            return list(self.events)

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def live_workspace(tmp_path: Path) -> Path:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx, ctx.run("first") as run:
        run.metric("loss", 1.0, step=0)
    return workspace


_CAPTURE = """
import sys, time
from contexta import Contexta
workspace, = sys.argv[1:]
with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx:
    with ctx.run("second") as run:
        print("open", flush=True)
        for steps in ((1,), (2, 3)):
            sys.stdin.readline()
            for step in steps:
                run.metric("loss", 1.0 / (step + 1), step=step)
            ctx.flush()
            print("flushed", flush=True)
        sys.stdin.readline()
    print("closed", flush=True)
"""


@pytest.fixture
def live_server(live_workspace: Path) -> Iterator[UiProcess]:
    server = start_ui(live_workspace)
    try:
        yield server
    finally:
        server.stop()


def test_the_stream_sends_a_new_run_its_new_points_and_its_end(
    live_workspace: Path, live_server: UiProcess
) -> None:
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    capture = subprocess.Popen(
        [sys.executable, "-c", _CAPTURE, str(live_workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert capture.stdin is not None and capture.stdout is not None
    runs = EventReader(live_server.base + "api/stream?runs=1")
    try:
        runs.wait_for(lambda events: any(name == "hello" for name, _ in events))
        assert capture.stdout.readline().strip() == "open"
        events = runs.wait_for(
            lambda events: any(
                change["run_id"] == "run:live.second" and change["new"]
                for name, data in events
                if name == "runs"
                for change in data["changes"]
            )
        )
        assert all(
            change["status"] == "open"
            for name, data in events
            if name == "runs"
            for change in data["changes"]
        )
        series = EventReader(live_server.base + "api/stream?series=run:live.second||loss|0")
        try:
            for expected in (1, 3):  # two flushes: step 1, then steps 2 and 3
                capture.stdin.write("\n")
                capture.stdin.flush()
                assert capture.stdout.readline().strip() == "flushed"
                series.wait_for(
                    lambda events, expected=expected: (
                        sum(len(data["series"][0]["values"]) for name, data in events if name == "series")
                        >= expected
                    )
                )
            sent = [data["series"][0] for name, data in series.events if name == "series"]
            assert [step for update in sent for step in update["steps"]] == [1, 2, 3]  # each point once
            cursor = sent[-1]["last_seq"]
        finally:
            series.close()
        capture.stdin.write("\n")
        capture.stdin.flush()
        assert capture.stdout.readline().strip() == "closed"
        runs.wait_for(
            lambda events: any(
                change["run_id"] == "run:live.second" and change["status"] == "completed"
                for name, data in events
                if name == "runs"
                for change in data["changes"]
            )
        )
        # A page that comes back with its cursor gets nothing it already has.
        again = EventReader(live_server.base + f"api/stream?series=run:live.second||loss|{cursor}")
        try:
            again.wait_for(lambda events: any(name == "hello" for name, _ in events))
            time.sleep(0.6)  # several polls: nothing new may be sent
            assert [name for name, _ in again.events] == ["hello"]
        finally:
            again.close()
    finally:
        runs.close()
        capture.kill()
        capture.wait()


def test_a_bad_watch_is_400(ui_process: UiProcess) -> None:
    response = httpx.get(ui_process.base + "api/stream?series=nonsense")

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "watch_invalid"

"""Fixtures for the dashboard: a captured demo workspace (once per module), the app under Starlette's
TestClient, and a real `contexta ui` process on a free port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ui_workspaces import UiProcess, capture_demo, start_ui

pytest.importorskip("starlette", reason="the dashboard needs starlette (a dependency of contexta)")


@pytest.fixture(scope="module")
def demo_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return capture_demo(tmp_path_factory.mktemp("demo") / ".contexta")


@pytest.fixture
def ui_process(demo_workspace: Path) -> Iterator[UiProcess]:
    server = start_ui(demo_workspace)
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test (`item.report_call`), so a browser fixture can save a
    screenshot of the page when the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"report_{report.when}", report)
    return report

"""The dashboard in a real browser: Playwright (sync API) driving Debian's Chromium against a real
`contexta ui` process on a free port. A failing test leaves `page.png` in its temporary directory.

Skipped, saying why, where /usr/bin/chromium or the playwright package is missing (no browser is
ever downloaded).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_workspaces import CHROMIUM_ARGS, HOSTILE_NAME, HOSTILE_SCRIPT, SAMPLES, SRC, UiProcess, start_ui

from contexta import Contexta

CHROMIUM = Path("/usr/bin/chromium")

if not CHROMIUM.exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (the dev extra) is not installed")

Page = Any  # playwright.sync_api.Page


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(demo_workspace: Path) -> Iterator[UiProcess]:
    process = start_ui(demo_workspace)
    try:
        yield process
    finally:
        process.stop()


def _is_error(message: Any) -> bool:
    """A console error other than the 400 a malformed filter is meant to get (shown in place)."""
    return message.type == "error" and "status of 400" not in message.text  # type: ignore[no-any-return]


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if _is_error(message) else None)
    try:
        yield page
        assert errors == [], errors  # no script error, no refused resource (CSP), no failed request
    finally:
        report = getattr(request.node, "report_call", None)
        if report is None or report.failed:
            try:
                page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            except sync_api.Error:
                pass
        context.close()


def _names(page: Page) -> list[str]:
    return page.locator("#runs tbody td[data-column=name]").all_inner_texts()  # type: ignore[no-any-return]


def _rows_become(page: Page, count: int) -> None:
    page.wait_for_function(f"() => document.querySelectorAll('#runs tbody tr').length === {count}")


def test_the_run_table_filters_sorts_and_shows_filter_errors_in_place(page: Page, server: UiProcess) -> None:
    page.goto(server.url)
    _rows_become(page, 4)

    page.fill("#filter", "params.lr < 0.2")
    page.press("#filter", "Enter")
    _rows_become(page, 2)
    assert sorted(_names(page)) == ["baseline", "tuned"]

    page.click("#runs th[data-column=name]")
    page.wait_for_selector("#runs th[data-column=name].sorted-asc")
    assert _names(page) == ["baseline", "tuned"]
    page.click("#runs th[data-column=name]")
    page.wait_for_selector("#runs th[data-column=name].sorted-desc")
    assert _names(page) == ["tuned", "baseline"]

    page.fill("#filter", "params.lr >> 3")
    page.press("#filter", "Enter")
    error = page.wait_for_selector("#filter-error:not(.hidden)")
    assert "column" in error.inner_text()
    assert error.inner_text().rstrip().endswith("^")


def test_the_column_chooser_adds_a_params_column(page: Page, server: UiProcess) -> None:
    page.goto(server.url)
    _rows_become(page, 4)
    page.click("#columns-toggle")
    page.check("#columns-panel input[data-field='params.lr']")
    page.wait_for_selector("#runs th[data-column='params.lr']")

    values = page.locator("#runs tbody td[data-column='params.lr']").all_inner_texts()
    assert sorted(values) == ["0.01", "0.1", "0.5", "1"]


def _canvas_ink(page: Page, selector: str) -> int:
    """How many pixels of the chart's canvas are not transparent."""
    return page.evaluate(  # type: ignore[no-any-return]
        """(selector) => {
            const canvas = document.querySelector(selector);
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
            let ink = 0;
            for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) ink++;
            return ink;
        }""",
        selector,
    )


_LOSS_CHART = ".chart[data-stage='train'][data-key='loss']"


def test_a_run_chart_draws_and_a_drag_zoom_refetches_the_range(page: Page, server: UiProcess) -> None:
    page.goto(server.base + "#/run/" + "run%3Ademo.baseline")
    page.wait_for_selector(f"{_LOSS_CHART} canvas")
    page.wait_for_function(
        "(s) => document.querySelector(s + ' .meta').textContent.startsWith('300 points')", arg=_LOSS_CHART
    )
    assert _canvas_ink(page, f"{_LOSS_CHART} canvas") > 500

    over = page.locator(f"{_LOSS_CHART} .u-over").bounding_box()
    assert over is not None
    with page.expect_request(lambda request: "/series?" in request.url and "x0=" in request.url) as zoom:
        page.mouse.move(over["x"] + over["width"] * 0.3, over["y"] + over["height"] / 2)
        page.mouse.down()
        page.mouse.move(over["x"] + over["width"] * 0.5, over["y"] + over["height"] / 2, steps=5)
        page.mouse.up()
    assert "x1=" in zoom.value.url
    page.wait_for_function(
        "(s) => document.querySelector(s + ' .meta').textContent.includes('zoomed')", arg=_LOSS_CHART
    )


def test_the_run_view_shows_params_events_artifacts_and_verifies(page: Page, server: UiProcess) -> None:
    page.goto(server.base + "#/run/run%3Ademo.baseline")
    page.wait_for_selector("#artifacts button")

    assert "optimizer.name" in page.inner_text("#params")
    assert "loaded 1797 rows" in page.inner_text("#events")
    assert "blake3:" in page.inner_text("#artifacts") or "sha256:" in page.inner_text("#artifacts")
    page.click("#artifacts button")
    page.wait_for_function(
        "() => document.querySelector('#artifacts .verify-result').textContent === 'verified'"
    )
    assert "failed_sample" in page.inner_text("#diagnostics")


def test_a_failed_run_shows_its_failure_reason(page: Page, server: UiProcess) -> None:
    page.goto(server.base + "#/run/run%3Ademo.broken")
    page.wait_for_selector("#diagnostics")

    assert "loss diverged at step 1" in page.inner_text("#diagnostics")
    assert page.inner_text("#run-status") == "failed"


def test_the_samples_view_shows_failed_only_and_sorts_by_a_metric(page: Page, server: UiProcess) -> None:
    page.goto(server.base + "#/run/run%3Ademo.baseline/samples")
    page.wait_for_function(f"() => document.querySelectorAll('#samples tbody tr').length === {SAMPLES}")

    page.click("#samples th:text-is('metrics.latency.ms')")
    page.click("#samples th:text-is('metrics.latency.ms')")
    page.wait_for_selector("#samples th.sorted-desc")
    first = page.locator("#samples tbody tr").first.inner_text()
    assert f"case-{SAMPLES - 1:02d}" in first

    page.check("#failed-only")
    page.wait_for_function("() => document.querySelectorAll('#samples tbody tr').length === 2")
    assert "no answer for case" in page.inner_text("#samples tbody")


def test_selected_runs_compare_with_overlays_params_and_deltas(page: Page, server: UiProcess) -> None:
    page.goto(server.url)
    _rows_become(page, 4)
    for name in ("baseline", "tuned"):
        page.locator("#runs tbody tr", has_text=name).locator("input[type=checkbox]").check()
    page.click("#compare")
    page.wait_for_selector("#compare-charts canvas")

    assert "config_snapshot.lr" in page.inner_text("#compare-params")
    assert "+0.1" in page.inner_text("#compare-metrics")
    assert _canvas_ink(page, "#compare-charts canvas") > 500


def test_hostile_names_messages_and_attributes_render_as_text(page: Page, server: UiProcess) -> None:
    page.goto(server.url)
    _rows_become(page, 4)
    assert HOSTILE_NAME in _names(page)
    page.click("#runs tbody a:has-text('img-src')")
    page.wait_for_selector("#events tbody tr")
    page.wait_for_selector("#timeline .bar")

    assert page.inner_text("#run-name") == HOSTILE_NAME
    assert HOSTILE_SCRIPT in page.inner_text("#events")
    assert HOSTILE_NAME in page.inner_text("#params")
    assert HOSTILE_SCRIPT in page.inner_text("#timeline")
    page.click("a:has-text('Samples')")
    page.wait_for_selector("#samples tbody tr")
    assert HOSTILE_NAME in page.inner_text("#samples")

    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.evaluate("document.querySelectorAll('img, script:not([src])').length") == 0
    assert (
        page.evaluate("[...document.querySelectorAll('*')].some(e => e.hasAttribute('onmouseover'))") is False
    )


# -- live ------------------------------------------------------------------------------------------

_CAPTURE = """
import sys
from contexta import Contexta
workspace, = sys.argv[1:]
with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx:
    sys.stdin.readline()  # "start": the test says when, so a page it opened first has not seen this run
    with ctx.run("second") as run:
        run.metric("loss", 1.0, step=0)
        ctx.flush()
        print("open", flush=True)
        for line in sys.stdin:
            if line.strip() == "close":
                break
            if line.strip() == "accuracy":  # a key first captured after the page loaded
                run.metric("accuracy", 0.5, step=3)
                ctx.flush()
                print("flushed", flush=True)
                continue
            step = int(line)
            run.metric("loss", 1.0 / (step + 1), step=step)
            ctx.flush()
            print("flushed", flush=True)
print("closed", flush=True)
"""


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[UiProcess, subprocess.Popen[str]]]:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "live"}) as ctx, ctx.run("first") as run:
        run.metric("loss", 1.0, step=0)
    server = start_ui(workspace)
    capture = subprocess.Popen(
        [sys.executable, "-c", _CAPTURE, str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        yield server, capture
    finally:
        capture.kill()
        capture.wait()
        server.stop()


def _say(capture: subprocess.Popen[str], line: str, answer: str) -> None:
    assert capture.stdin is not None and capture.stdout is not None
    capture.stdin.write(line + "\n")
    capture.stdin.flush()
    assert capture.stdout.readline().strip() == answer


def test_a_new_run_its_points_and_its_end_arrive_without_reload(
    page: Page, live: tuple[UiProcess, subprocess.Popen[str]]
) -> None:
    server, capture = live
    page.goto(server.url)
    _rows_become(page, 1)
    page.wait_for_selector("#live.on")

    _say(capture, "start", "open")
    _rows_become(page, 2)  # the new run, without reload
    assert "open" in page.locator("#runs tbody tr", has_text="second").inner_text()

    page.click("#runs tbody a:has-text('run:live.second')")
    chart = ".chart[data-key='loss']"
    page.wait_for_function(
        "(s) => document.querySelector(s + ' .meta')?.textContent.startsWith('1 point')", arg=chart
    )
    page.wait_for_selector("#live.on")
    for step in (1, 2, 3):
        _say(capture, str(step), "flushed")
    page.wait_for_function(
        "(s) => document.querySelector(s + ' .meta').textContent.startsWith('4 points')", arg=chart
    )
    _say(capture, "accuracy", "flushed")
    accuracy = ".chart[data-key='accuracy'] .meta"
    page.wait_for_function(
        "(s) => document.querySelector(s)?.textContent.startsWith('1 point')", arg=accuracy
    )
    _say(capture, "4", "flushed")  # the stream, opened again with the new chart, still brings loss
    page.wait_for_function(
        "(s) => document.querySelector(s + ' .meta').textContent.startsWith('5 points')", arg=chart
    )

    _say(capture, "close", "closed")
    page.wait_for_function("() => document.querySelector('#run-status').textContent === 'completed'")


def test_a_reconnected_stream_does_not_draw_points_the_chart_has_twice(
    browser: Any, live: tuple[UiProcess, subprocess.Popen[str]], tmp_path: Path
) -> None:
    # The browser reconnects an event stream with the URL it opened it with, so with the cursors the
    # page had then: the points the chart got since come again and must not be drawn a second time.
    server, capture = live
    _say(capture, "start", "open")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()  # its own page: the restart below logs a refused connection
    page.set_default_timeout(15_000)
    chart = ".chart[data-key='loss'] .meta"
    try:
        page.goto(server.base + "#/run/" + "run%3Alive.second")
        page.wait_for_function(
            "(s) => document.querySelector(s)?.textContent.startsWith('1 point')", arg=chart
        )
        page.wait_for_selector("#live.on")
        _say(capture, "1", "flushed")
        page.wait_for_function(
            "(s) => document.querySelector(s).textContent.startsWith('2 points')", arg=chart
        )

        port = server.base.rstrip("/").rpartition(":")[2]
        server.stop()
        page.wait_for_selector("#live:not(.on)")
        restarted = start_ui(tmp_path / ".contexta", "--port", port)
        try:
            page.wait_for_selector("#live.on", timeout=20_000)
            _say(capture, "2", "flushed")
            page.wait_for_function(
                "(s) => /^[34] points/.test(document.querySelector(s).textContent)", arg=chart
            )
            page.wait_for_timeout(1500)  # a late duplicate would arrive within this
            assert page.locator(chart).inner_text().startswith("3 points")
        finally:
            restarted.stop()
    finally:
        context.close()


def test_a_mangled_link_shows_the_runs_table_instead_of_a_stuck_page(page: Page, server: UiProcess) -> None:
    page.goto(server.base + "#/run/%E0%A4%A")  # a percent sign cut short: not decodable

    _rows_become(page, 4)

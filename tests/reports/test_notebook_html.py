"""What Jupyter shows (issue 17, item 9): reports, runs, metric series and samples as HTML that
escapes whatever was captured, draws a series as an SVG chart, and shows a long table's first rows
with its row count."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.query import runs_table, samples_table
from contexta.reports import NOTEBOOK_ROWS

SCRIPT = "<script>alert(1)</script>"
SHOWN_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    """A run and a stage named with markup, a 50-step loss, and a sample named with markup."""
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        with ctx.run(SCRIPT, tags={"note": SCRIPT}) as run, run.stage(f"train {SCRIPT}") as stage:
            for step in range(50):
                stage.metric("loss", 1.0 / (step + 1), step=step)
            with stage.sample(SCRIPT):
                pass
        yield ctx


def _no_raw_markup(html: str) -> None:
    assert "<script" not in html and "</script" not in html
    assert SHOWN_SCRIPT in html


def _body_rows(html: str) -> int:
    return len(re.findall(r"<tr><td", html))


def test_a_series_renders_as_an_svg_chart_with_its_first_points(ctx: Contexta) -> None:
    run_id = ctx.list_runs()[0].run_id

    html = ctx.get_metric_series(run_id, "loss")._repr_html_()

    assert "<svg" in html and "<polyline" in html
    _no_raw_markup(html)  # the stage's name, shown in the table, is escaped
    assert _body_rows(html) == NOTEBOOK_ROWS
    assert f"the first {NOTEBOOK_ROWS} of 50 rows" in html


def test_a_metric_history_draws_a_line_per_key(ctx: Contexta) -> None:
    run_id = ctx.list_runs()[0].run_id

    html = ctx.metric_history(run_id)._repr_html_()

    assert html.count("<svg") == 1 and "<polyline" in html
    _no_raw_markup(html)


def test_runs_and_samples_tables_escape_what_was_captured(ctx: Contexta) -> None:
    runs = ctx.list_runs()

    runs_html = runs_table(runs)._repr_html_()
    samples_html = samples_table(runs[0].run_id, ctx.list_samples(runs[0].run_id))._repr_html_()

    _no_raw_markup(runs_html)
    assert "RunRecordTable: 1 row" in runs_html
    _no_raw_markup(samples_html)
    assert _body_rows(samples_html) == 1


def test_a_report_renders_inside_a_notebook_without_a_page_around_it(ctx: Contexta) -> None:
    run_id = ctx.list_runs()[0].run_id

    html = ctx.build_snapshot_report(run_id)._repr_html_()

    assert html.startswith('<div class="contexta-report">') and "<!DOCTYPE" not in html
    assert "<svg" in html  # the loss chart
    _no_raw_markup(html)
    assert "body {" not in html  # its style applies to the report only

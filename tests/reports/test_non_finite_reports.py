"""Reports of runs with NaN and infinite metric values: tables show nan / inf / -inf in every
rendering (JSON stays valid JSON), charts draw such points as gaps in valid SVG, and summaries of
extremes leave them out."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from xml.etree import ElementTree

import orjson
import pytest
from csv_tables import csv_tables

from contexta import Contexta
from contexta.reports import ChartSeries, ReportChart, ReportDocument, ReportSection, ReportTable
from contexta.reports._charts import chart_points

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    contexta = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    with contexta.run("diverged") as run:
        with run.stage("train") as stage:
            for step in range(30):
                loss = math.nan if 12 <= step < 15 else math.inf if step == 20 else 1.0 / (step + 1)
                stage.metric("loss", loss, step=step)
        with run.stage("evaluate") as stage:
            stage.metric("accuracy", math.nan)
            stage.metric("perplexity", math.inf)
            stage.metric("margin", -math.inf)
    with contexta.run("steady") as run, run.stage("evaluate") as stage:
        stage.metric("accuracy", 0.75)
        stage.metric("perplexity", 12.5)
        stage.metric("margin", 0.5)
    yield contexta
    contexta.close()


def _svgs(page: str) -> list[tuple[str, ElementTree.Element]]:
    """Every inline <svg> of a page: its markup, and the markup parsed as XML (malformed raises)."""
    found = []
    start = page.find("<svg")
    while start != -1:
        end = page.index("</svg>", start) + len("</svg>")
        markup = page[start:end]
        found.append(
            (markup, ElementTree.fromstring(markup.replace("<svg ", f'<svg xmlns="{SVG[1:-1]}" ', 1)))
        )
        start = page.find("<svg", end)
    return found


def test_a_chart_of_a_series_with_nan_has_a_gap_and_is_valid_svg(ctx: Contexta) -> None:
    page = ctx.build_snapshot_report("diverged").to_html()
    ((markup, chart),) = [
        (markup, svg)
        for markup, svg in _svgs(page)
        if "loss in stage train" in (svg.findtext(f"{SVG}title") or "")
    ]
    lines = chart.findall(f"{SVG}polyline")
    # Steps 0-11, then 15-19, then 21-29: the NaNs at 12-14 and the infinity at 20 are gaps.
    assert [len(line.get("points", "").split()) for line in lines] == [12, 5, 9]
    coordinates = [
        float(part) for line in lines for pair in line.get("points", "").split() for part in pair.split(",")
    ]
    assert all(math.isfinite(number) for number in coordinates)
    assert "nan" not in markup.lower() and "inf" not in markup.lower()


def test_tables_show_nan_and_infinities_in_every_rendering(ctx: Contexta) -> None:
    document = ctx.build_snapshot_report("diverged")
    markdown = document.to_markdown()
    assert "accuracy=nan" in markdown and "perplexity=inf" in markdown and "margin=-inf" in markdown

    comparison = ctx.build_run_report("steady", "diverged")
    deltas = {row[1]: row for row in comparison.section("Metric Deltas").table.rows}  # type: ignore[union-attr]
    assert math.isnan(deltas["accuracy"][3]) and math.isnan(deltas["accuracy"][4])  # type: ignore[arg-type]
    assert "| evaluate | accuracy | 0.75 | nan | nan |" in comparison.to_markdown()
    assert "| evaluate | perplexity | 12.5 | inf | inf |" in comparison.to_markdown()

    rows = csv_tables(comparison.to_csv())["Metric Deltas"]
    assert ["evaluate", "margin", "0.5", "-inf", "-inf"] in rows

    as_json = orjson.loads(comparison.to_json())  # orjson refuses the NaN literal: this is valid JSON
    (table,) = [section["table"] for section in as_json["sections"] if section["title"] == "Metric Deltas"]
    assert ["evaluate", "accuracy", 0.75, "nan", "nan"] in table["rows"]
    assert ["evaluate", "perplexity", 12.5, "inf", "inf"] in table["rows"]

    html = comparison.to_html()
    assert ">nan</td>" in html and ">-inf</td>" in html


def test_a_table_cell_that_is_not_finite_is_a_string_in_json_and_a_chart_gap_is_null() -> None:
    document = ReportDocument(
        "Doc",
        [
            ReportSection(
                "S",
                table=ReportTable(("a", "b", "c"), [(math.nan, math.inf, -math.inf), (1.5, None, 2)]),
                charts=[ReportChart("c", "x", "y", [ChartSeries("l", [(0, 1.0), (1, math.nan)])])],
            )
        ],
    )
    parsed = orjson.loads(document.to_json())
    assert parsed["sections"][0]["table"]["rows"] == [["nan", "inf", "-inf"], [1.5, None, 2]]
    assert parsed["sections"][0]["charts"][0]["series"][0]["points"] == [[0.0, 1.0], [1.0, None]]


def test_the_project_summary_leaves_non_finite_values_out_of_the_extremes(ctx: Contexta) -> None:
    results = ctx.build_project_summary_report("p").section("Results").table
    assert results is not None
    by_metric = {row[1]: row for row in results.rows}
    # (stage, metric, runs, highest_run, highest, lowest_run, lowest)
    assert by_metric["accuracy"][2:] == (2, "steady", 0.75, "steady", 0.75)
    assert by_metric["perplexity"][2:] == (2, "steady", 12.5, "steady", 12.5)


def test_chart_points_of_a_long_series_keep_every_gap_and_finite_extremes() -> None:
    values = [float(index % 100) for index in range(100_000)]
    values[50_001:50_004] = [math.nan] * 3
    values[70_001] = math.inf
    values[123] = 1e6  # a spike the thinning must keep
    points = chart_points([None] * len(values), values, limit=500)
    assert len(points) <= 510
    ys = [y for _, y in points]
    assert sum(math.isnan(y) for y in ys) >= 1 and math.inf in ys  # both gaps survive
    assert 1e6 in ys and 0.0 in ys

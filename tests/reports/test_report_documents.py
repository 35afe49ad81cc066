"""Report documents: the snapshot and multi-run builders over a real store, and the renderings."""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING

import pytest
from csv_tables import csv_tables

from contexta.errors import NotFoundError, ValidationError
from contexta.reports import (
    ReportDocument,
    ReportSection,
    ReportTable,
    build_multi_run_report,
    build_snapshot_report,
)
from contexta.store._database import StoreDatabase

if TYPE_CHECKING:
    from conftest import StoreBuilder

BASELINE = "run:vision.baseline"
SNAPSHOT_SECTIONS = [
    "Run Summary",
    "Stages",
    "Artifacts",
    "Batches",
    "Deployments",
    "Samples",
    "Diagnostics",
    "Completeness Notes",
]


def _rows(document: ReportDocument, title: str) -> list[tuple[object, ...]]:
    table = document.section(title).table
    assert table is not None
    return [tuple(row) for row in table.rows]


# -- snapshot report ---------------------------------------------------------------------------------


def test_snapshot_report_has_its_sections_in_order(vision_store: StoreDatabase) -> None:
    report = build_snapshot_report(vision_store, BASELINE)
    assert report.title == "Run Snapshot: run:vision.baseline"
    assert [section.title for section in report.sections] == SNAPSHOT_SECTIONS


def test_snapshot_report_of_a_bare_run_name(vision_store: StoreDatabase) -> None:
    assert build_snapshot_report(vision_store, "tuned").title == "Run Snapshot: run:vision.tuned"
    with pytest.raises(NotFoundError):
        build_snapshot_report(vision_store, "nope")


def test_run_summary_shows_run_arguments_and_environment(vision_store: StoreDatabase) -> None:
    summary = dict(_rows(build_snapshot_report(vision_store, BASELINE), "Run Summary"))
    assert summary["run"] == BASELINE
    assert summary["status"] == "completed"
    assert summary["duration_s"] == 3600.0
    assert summary["dataset_ref"] == "dataset:vision.cifar"
    assert summary["code_revision"] == "abc123"
    assert summary["tags"] == "team=cv"
    assert summary["config_snapshot"] == "lr=0.01"
    assert summary["records"] == "7 metrics, 1 events"
    assert summary["run metrics"] == "wall.seconds=3600"
    assert summary["python"] == "3.11.9"
    assert summary["git_revision"] == "0f3c2a1"
    assert summary["packages"] == "3 installed: contexta 0.1.0, numpy 1.26.4"


def test_snapshot_tables_list_the_run_contents(vision_store: StoreDatabase) -> None:
    report = build_snapshot_report(vision_store, BASELINE)
    stages = _rows(report, "Stages")
    assert [(row[0], row[1], row[6]) for row in stages] == [
        ("train", "completed", "loss=0.3"),
        ("evaluate", "completed", "accuracy=0.83, macro.f1=0.79"),  # the holdout batch's metric too
    ]
    assert [row[:3] for row in _rows(report, "Batches")] == [
        ("epoch-0", "train", "completed"),
        ("epoch-1", "train", "failed"),
        ("epoch-2", "train", "open"),
        ("holdout", "evaluate", "completed"),
    ]
    assert [row[:3] for row in _rows(report, "Samples")] == [
        ("s-1", "evaluate", None),
        ("s-2", "evaluate", None),
        ("s-3", "evaluate", "holdout"),
    ]
    assert [row[:2] for row in _rows(report, "Deployments")] == [("canary", "failed")]
    assert [(row[1], row[3]) for row in _rows(report, "Artifacts")] == [
        ("model", "BOUND"),
        ("report", "PENDING"),
    ]
    diagnostics = report.section("Diagnostics")
    assert diagnostics.paragraphs == ("Issues: 2 errors, 2 warnings.",)
    assert [row[1] for row in _rows(report, "Diagnostics")] == [
        "failed_batch",
        "failed_deployment",
        "incomplete_batch",
        "pending_artifact",
    ]
    notes = report.section("Completeness Notes")
    assert notes.table is None
    assert any("epoch-2" in paragraph for paragraph in notes.paragraphs)


def test_empty_sections_say_so(vision_store: StoreDatabase, store_builder: StoreBuilder) -> None:
    store_builder.run("vision", "bare", started_at="2025-02-01T00:00:00Z", ended_at="2025-02-01T00:01:00Z")
    report = build_snapshot_report(vision_store, "bare")
    assert [section.title for section in report.sections] == SNAPSHOT_SECTIONS
    assert report.section("Batches").paragraphs == ("No batches were recorded for this run.",)
    assert _rows(report, "Batches") == []
    assert "| batch |" not in report.to_markdown()  # Markdown leaves empty tables out
    assert "Batches" not in csv_tables(report.to_csv())  # CSV has a record per cell: none
    assert report.section("Diagnostics").paragraphs == ("Issues: none.",)


# -- multi-run report --------------------------------------------------------------------------------


def test_multi_run_report_title_and_runs_table(vision_store: StoreDatabase) -> None:
    report = build_multi_run_report(vision_store, [BASELINE, "tuned", "broken"])
    assert report.title == "Multi Run Report: 3 runs"
    assert [section.title for section in report.sections] == ["Runs", "Metrics"]
    runs = _rows(report, "Runs")
    assert [(row[0], row[1], row[6]) for row in runs] == [
        ("baseline", BASELINE, "2 errors, 2 warnings"),
        ("tuned", "run:vision.tuned", "1 error"),
        ("broken", "run:vision.broken", "2 warnings"),
    ]


def test_multi_run_metrics_table_puts_evaluation_first(vision_store: StoreDatabase) -> None:
    report = build_multi_run_report(vision_store, [BASELINE, "tuned", BASELINE])  # duplicates count once
    assert report.title == "Multi Run Report: 2 runs"
    table = report.section("Metrics").table
    assert table is not None
    assert table.columns == ("stage", "metric", "baseline", "tuned")
    assert [tuple(row) for row in table.rows] == [
        ("evaluate", "accuracy", 0.83, 0.83),
        ("evaluate", "macro.f1", 0.79, None),
        ("train", "loss", 0.3, None),
        (None, "wall.seconds", 3600, None),
    ]


def test_multi_run_columns_use_full_refs_when_names_clash(vision_store: StoreDatabase) -> None:
    report = build_multi_run_report(vision_store, [BASELINE, "run:audio.baseline"])
    table = report.section("Metrics").table
    assert table is not None
    assert table.columns == ("stage", "metric", BASELINE, "run:audio.baseline")
    assert (None, "f1", None, 0.5) in [tuple(row) for row in table.rows]


def test_multi_run_report_needs_runs(vision_store: StoreDatabase) -> None:
    with pytest.raises(ValidationError) as caught:
        build_multi_run_report(vision_store, [])
    assert caught.value.code == "run_ids_empty"
    with pytest.raises(ValidationError):
        build_multi_run_report(vision_store, BASELINE)


# -- documents and renderings ------------------------------------------------------------------------


def _document() -> ReportDocument:
    return ReportDocument(
        "Tiny",
        [
            ReportSection("Intro", ["First paragraph.", "Second | with a pipe."]),
            ReportSection(
                "Numbers",
                table=ReportTable(
                    ["name", "value", "ok"], [["a|b", 0.9777777777777777, True], ["c", None, False]]
                ),
            ),
            ReportSection("More", table=ReportTable(["x"], [[1], [2]])),
        ],
    )


def test_markdown_rendering() -> None:
    assert _document().to_markdown() == (
        "# Tiny\n"
        "\n"
        "## Intro\n"
        "\n"
        "First paragraph.\n"
        "\n"
        "Second | with a pipe.\n"
        "\n"
        "## Numbers\n"
        "\n"
        "| name | value | ok |\n"
        "| --- | --- | --- |\n"
        "| a\\|b | 0.977778 | yes |\n"
        "| c | - | no |\n"
        "\n"
        "## More\n"
        "\n"
        "| x |\n"
        "| --- |\n"
        "| 1 |\n"
        "| 2 |\n"
    )


def test_json_rendering_round_trips_to_the_dict() -> None:
    document = _document()
    data = json.loads(document.to_json())
    assert data == document.to_dict()
    assert data["title"] == "Tiny"
    assert data["sections"][0] == {
        "title": "Intro",
        "paragraphs": ["First paragraph.", "Second | with a pipe."],
        "table": None,
        "charts": [],
    }
    assert data["sections"][1]["table"]["rows"][0] == ["a|b", 0.9777777777777777, True]


def test_csv_rendering_is_one_tidy_table_of_a_record_per_cell() -> None:
    text = _document().to_csv()
    assert list(csv.reader(io.StringIO(text))) == [
        ["section", "row", "column", "value"],
        ["Numbers", "1", "name", "a|b"],
        ["Numbers", "1", "value", "0.9777777777777777"],
        ["Numbers", "1", "ok", "true"],
        ["Numbers", "2", "name", "c"],
        ["Numbers", "2", "value", ""],
        ["Numbers", "2", "ok", "false"],
        ["More", "1", "x", "1"],
        ["More", "2", "x", "2"],
    ]


def test_csv_rendering_reads_as_one_table_with_pandas() -> None:
    pd = pytest.importorskip("pandas")

    frame = pd.read_csv(io.StringIO(_document().to_csv()))

    assert list(frame.columns) == ["section", "row", "column", "value"]
    numbers = frame[frame["section"] == "Numbers"].pivot(index="row", columns="column", values="value")
    assert list(numbers.loc[1, ["name", "value", "ok"]]) == ["a|b", "0.9777777777777777", "true"]


def test_snapshot_report_renders_in_every_format(vision_store: StoreDatabase) -> None:
    report = build_snapshot_report(vision_store, BASELINE)
    markdown = report.to_markdown()
    assert markdown.startswith("# Run Snapshot: run:vision.baseline\n")
    positions = [markdown.index(f"\n## {title}\n") for title in SNAPSHOT_SECTIONS]
    assert positions == sorted(positions)
    assert [section["title"] for section in json.loads(report.to_json())["sections"]] == SNAPSHOT_SECTIONS
    csv_titles = list(csv_tables(report.to_csv()))
    with_cells = [
        title for title in SNAPSHOT_SECTIONS if (report.section(title).table or ReportTable(())).rows
    ]
    assert csv_titles == with_cells  # Completeness Notes has no table, and an empty table has no cells
    assert len(with_cells) >= 5


def test_tables_refuse_ragged_rows_and_unrenderable_cells() -> None:
    with pytest.raises(ValidationError) as caught:
        ReportTable(["a", "b"], [[1]])
    assert caught.value.code == "report_table_invalid"
    with pytest.raises(ValidationError) as caught:
        ReportTable(["a"], [[{"nested": 1}]])  # type: ignore[list-item]
    assert caught.value.code == "report_cell_invalid"


def test_section_lookup_and_table_columns() -> None:
    document = _document()
    numbers = document.section("Numbers").table
    assert numbers is not None and numbers.column("name") == ("a|b", "c")
    with pytest.raises(NotFoundError):
        document.section("Missing")
    assert ReportSection("Lone", "one paragraph").paragraphs == ("one paragraph",)

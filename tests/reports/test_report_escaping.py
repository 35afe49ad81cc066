"""Every report format escapes captured text for its medium: Markdown carries no raw tag, link or line
break of it, a CSV cell never runs as a spreadsheet formula (and the CSV still parses), HTML has no
raw tag or captured line break, and no format carries a terminal escape sequence."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from csv_tables import csv_tables

from contexta import Contexta
from contexta.reports import ReportDocument, ReportSection, ReportTable

SCRIPT = "<script>alert(1)</script>"
IMAGE = "![pixel](http://tracker.example/p.png)"
FORGED = "line1\n## FAKE HEADING\n| forged | row |"
FORMULA = '=HYPERLINK("http://x","y")'
FORMULAS = (FORMULA, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(1+1)", "\t=1+1", "\r=1+1")
RED = "\x1b[31mRED\x1b[0m"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace whose run, stage, tags, event and exception carry hostile text, and a plain run
    with a negative metric."""
    workspace = tmp_path_factory.mktemp("hostile") / ".contexta"
    text = f"{SCRIPT} {IMAGE} {RED} {FORGED}"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        try:
            with ctx.run(FORMULA, tags={"note": text}, config_snapshot={"formula": FORMULA}) as run:
                for name in (*FORMULAS[1:], text):
                    with run.stage(name) as stage:
                        stage.metric("delta", -0.5)
                        stage.event("judge", message=text, level="error")
                raise ValueError(text)
        except ValueError:
            pass
        with ctx.run("plain") as run, run.stage("evaluate") as stage:
            stage.metric("delta", -0.5)
    return workspace


def _reports(workspace: Path) -> list[ReportDocument]:
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        return [
            ctx.build_snapshot_report(FORMULA),
            ctx.build_run_report("plain", FORMULA),
            ctx.build_multi_run_report(["plain", FORMULA]),
            ctx.build_project_summary_report("p"),
        ]


def test_markdown_carries_no_raw_tag_link_or_line_of_captured_text(hostile: Path) -> None:
    for report in _reports(hostile):
        markdown = report.to_markdown()

        assert "<script" not in markdown and "</script" not in markdown
        if report.title.startswith(("Run Snapshot", "Run Report")):
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown  # shown, as text
        assert "![pixel](" not in markdown  # no image to fetch
        assert "\x1b" not in markdown
        lines = markdown.split("\n")
        assert not [line for line in lines if line.startswith(("## FAKE", "| forged"))]


def test_a_markdown_table_keeps_its_columns_whatever_a_cell_holds() -> None:
    document = ReportDocument(
        "R", [ReportSection("S", table=ReportTable(["a", "b"], [[f"x|y\n{SCRIPT}", "[z](javascript:x)"]]))]
    )

    table = document.to_markdown().split("\n")[-2]

    assert table == "| x\\|y<br>&lt;script&gt;alert(1)&lt;/script&gt; | \\[z\\](javascript:x) |"


def test_csv_cells_never_run_as_formulas_and_the_csv_still_parses(hostile: Path) -> None:
    for report in _reports(hostile):
        text = report.to_csv()
        cells = [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]

        runnable = [
            cell for cell in cells if cell.startswith(("=", "+", "-", "@", "\t", "\r")) and cell != "-0.5"
        ]
        assert runnable == []
        if not report.title.startswith("Project"):
            assert f"'{FORMULA}" in cells  # the text itself, behind one quote
    snapshot, _, multi, _ = _reports(hostile)
    rows = [row for table in csv_tables(multi.to_csv()).values() for row in table]
    assert ["evaluate", "delta", "-0.5", ""] in rows  # a negative number stays a number
    summary = json.loads(snapshot.to_json())["sections"][0]["table"]["rows"]
    assert ["name", FORMULA] in summary  # JSON is for programs: the text as captured


def test_csv_keeps_numbers_and_neutralises_only_text() -> None:
    document = ReportDocument(
        "R",
        [
            ReportSection(
                "S",
                table=ReportTable(
                    ["=x", "value"],
                    [[FORMULA, -0.5], ["-0.5", -3], ["+1e-9", 0.0], ["-inf", None], ["@me", True]],
                ),
            )
        ],
    )

    rows = list(csv.reader(io.StringIO(document.to_csv())))

    assert rows[1:3] == [["S", "1", "'=x", f"'{FORMULA}"], ["S", "1", "value", "-0.5"]]
    assert csv_tables(document.to_csv())["S"] == [
        [f"'{FORMULA}", "-0.5"],
        ["-0.5", "-3"],
        ["+1e-9", "0.0"],
        ["'-inf", ""],
        ["'@me", "true"],
    ]


def test_html_has_no_raw_tag_control_character_or_captured_line_break(hostile: Path) -> None:
    for report in _reports(hostile):
        page = report.to_html()

        assert "<script" not in page and "<img" not in page
        assert "\x1b" not in page
        assert not [line for line in page.split("\n") if line.startswith(("## FAKE", "| forged"))]

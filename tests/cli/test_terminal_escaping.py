"""Captured text reaches the terminal escaped, in every command: an escape sequence never acts on the
terminal, and a newline in a message never forges a line of the command's own."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta
from contexta.cli._terminal import terminal_document, terminal_json, terminal_safe

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

RED = "\x1b[31mRED\x1b[0m"
CLEAR = "\x9b2J"  # the one-character (C1) form of ESC [: clears the screen
FORGED = "line1\nFAKE LINE"
HOSTILE = f"evil {RED} {CLEAR} {FORGED}"
# What a reader sees instead: the same text, every control character spelled out.
SHOWN_RED = "\\x1b[31mRED\\x1b[0m"
SHOWN_HOSTILE = f"evil {SHOWN_RED} \\x9b2J line1\\nFAKE LINE"


def _capture(root: Path) -> Path:
    workspace = root / ".contexta"
    model = root / f"model {RED} {FORGED}.bin"
    model.write_bytes(b"weights")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run("clean", tags={"note": "fine"}) as run, run.stage("evaluate") as stage:
            stage.metric("accuracy", 0.7)
        try:
            with ctx.run(HOSTILE, tags={"note": HOSTILE}) as run:
                with run.stage(HOSTILE) as stage:
                    stage.metric("accuracy", 0.5)
                    stage.event("judge", message=HOSTILE, level="error")
                run.register_artifact("model", model)
                raise ValueError(HOSTILE)
        except ValueError:
            pass
    return workspace


@pytest.fixture(scope="module")
def hostile_workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _capture(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """Wide enough that no cell is cut before the text under test."""
    monkeypatch.setenv("COLUMNS", "400")


def _assert_terminal_safe(text: str) -> None:
    for char in ("\x1b", "\r", "\x08", "\x9b"):
        assert char not in text, f"{char!r} reached the terminal"
    forged = [line for line in text.split("\n") if line.startswith("FAKE LINE")]
    assert forged == [], "a captured newline started a line of its own"


TEXT_COMMANDS = {
    "runs": ("runs",),
    "runs --all": ("runs", "--all"),
    "run show": ("run", "show", HOSTILE),
    "compare": ("compare", "clean", HOSTILE),
    "diagnose": ("diagnose", HOSTILE),
    "report md": ("report", HOSTILE),
    "report csv": ("report", HOSTILE, "--format", "csv"),
    "report html": ("report", HOSTILE, "--format", "html"),
    "verify": ("verify",),
    "tail": ("tail", "--lines", "100"),
}


@pytest.mark.usefixtures("wide")
@pytest.mark.parametrize("command", TEXT_COMMANDS.values(), ids=TEXT_COMMANDS.keys())
def test_every_text_command_shows_captured_control_characters_escaped(
    cli: CliRunner, hostile_workspace: Path, command: tuple[str, ...]
) -> None:
    result = cli(*command, "--workspace", hostile_workspace)

    _assert_terminal_safe(result.out + result.err)
    shown = result.out.replace("\\\\", "\\").replace("\\[", "[")  # Markdown escapes `\` and `[` too
    assert SHOWN_RED in shown  # shown, not dropped
    assert "FAKE LINE" in result.out


@pytest.mark.usefixtures("wide")
@pytest.mark.parametrize(
    "command",
    [("run", "show", HOSTILE), ("diagnose", HOSTILE), ("tail", "--lines", "100")],
    ids=["run show", "diagnose", "tail"],
)
def test_a_newline_in_a_message_shows_as_backslash_n(
    cli: CliRunner, hostile_workspace: Path, command: tuple[str, ...]
) -> None:
    result = cli(*command, "--workspace", hostile_workspace)

    assert SHOWN_HOSTILE in result.out


def test_a_csv_report_on_the_terminal_stays_one_record_per_line_and_parseable(
    cli: CliRunner, hostile_workspace: Path
) -> None:
    result = cli("report", HOSTILE, "--format", "csv", "--workspace", hostile_workspace)

    rows = list(csv.reader(result.out.splitlines()))
    values = [row[3] for row in rows if row[0] == "Run Summary"]
    assert values[values.index("name") + 1] == SHOWN_HOSTILE


@pytest.mark.parametrize(
    "command",
    [
        ("runs", "--format", "json"),
        ("run", "show", HOSTILE, "--format", "json"),
        ("report", HOSTILE, "--format", "json"),
        ("diagnose", HOSTILE, "--format", "json"),
    ],
    ids=["runs", "run show", "report", "diagnose"],
)
def test_json_output_stays_the_same_json(
    cli: CliRunner, hostile_workspace: Path, command: tuple[str, ...]
) -> None:
    result = cli(*command, "--workspace", hostile_workspace)

    _assert_terminal_safe(result.out)
    assert any(HOSTILE in text for text in _strings(json.loads(result.out)))  # the text itself, whole


def _strings(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_the_installed_command_in_a_real_process(hostile_workspace: Path) -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "contexta", "run", "show", HOSTILE, "--workspace", str(hostile_workspace)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env={"COLUMNS": "400", "PATH": "/usr/bin:/bin"},
    )

    _assert_terminal_safe(shown.stdout + shown.stderr)
    assert f"Failure of run {SHOWN_HOSTILE}: ValueError: {SHOWN_HOSTILE}" in shown.stdout


def test_the_escapes_each_medium_uses() -> None:
    assert (
        terminal_safe("a\x1b[2Jb\rc\x08d\x7f\x9b\u202ee\tf\ng")
        == "a\\x1b[2Jb\\rc\\x08d\\x7f\\x9b\\u202ee\\tf\\ng"
    )
    assert terminal_safe("학습 é C:\\path") == "학습 é C:\\path"
    assert terminal_document("# T\n\x1b[31m\n", "md") == "# T\n\\x1b[31m\n"
    assert json.loads(terminal_json('{"a": "\x9b\x7f\u2028"}')) == {"a": "\x9b\x7f\u2028"}
    assert "\x9b" not in terminal_json('{"a": "\x9b"}')

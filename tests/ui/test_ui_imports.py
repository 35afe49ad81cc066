"""Starlette and uvicorn are the dashboard's alone: `import contexta` and every other command run
without importing them (the style of tests/test_import_cost.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from contexta import Contexta

_WEB = ("starlette", "uvicorn", "contexta._ui")


def _loaded(program: str) -> list[str]:
    check = f"{program}\nimport sys\nprint(' '.join(n for n in {_WEB!r} if n in sys.modules))"
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    return result.stdout.splitlines()[-1].split()


def test_import_contexta_loads_no_web_server() -> None:
    assert _loaded("import contexta, contexta.query, contexta.reports") == []


def test_the_other_commands_load_no_web_server(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, ctx.run("r") as run:
        run.metric("loss", 0.5)
    for command in (["runs"], ["run", "show", "r"], ["metrics", "r"], ["ui", "--help"]):
        program = (
            "import contextlib, io\nfrom contexta.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    try: main({[*command, '--workspace', str(workspace)]!r})\n"
            "    except SystemExit: pass"
        )
        assert _loaded(program) == [], command


def test_contexta_ui_loads_them() -> None:
    assert _loaded("from contexta._ui._app import build_app") == ["starlette", "contexta._ui"]

"""What `import contexta` costs: the parts are imported when first used. A training script pays for
capture at its first `Contexta`, never for queries, reports or the async facade it does not call;
a read command (`contexta runs`) never pays for capture."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

_LOADED = """
import sys
import contexta
parts = ("contexta.capture", "contexta.query", "contexta.reports", "contexta._async", "anyio")
print(" ".join(sorted(name for name in parts if name in sys.modules)))
"""


def test_import_contexta_leaves_capture_the_read_side_and_the_async_facade_unloaded() -> None:
    loaded = subprocess.run([sys.executable, "-c", _LOADED], capture_output=True, text=True, check=True)

    assert loaded.stdout.split() == []


def test_completion_offers_contexta_before_its_first_use() -> None:
    program = "import contexta, sys; print('Contexta' in dir(contexta), 'contexta.capture' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)

    assert result.stdout.split() == ["True", "False"]


def test_the_first_question_and_the_first_async_run_load_what_they_need(tmp_path: Path) -> None:
    program = f"""
import asyncio, sys
from contexta import Contexta
with Contexta(workspace={str(tmp_path / "ws")!r}, config={{"project_name": "p"}}) as ctx:
    with ctx.run("r") as run:
        run.metric("loss", 0.5)
    print([run.run_id for run in ctx.list_runs()])
    async def main():
        async with ctx.arun("async") as run:
            await run.metric("loss", 0.25)
    asyncio.run(main())
    print(sorted(run.run_id for run in ctx.list_runs()))
print("contexta.query" in sys.modules, "anyio" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)

    assert result.stdout.splitlines() == [
        "['run:p.r']",
        "['run:p.async', 'run:p.r']",
        "True True",
    ]


def test_a_read_command_never_imports_capture(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    capture = f"""
from contexta import Contexta
with Contexta(workspace={str(workspace)!r}, config={{"project_name": "p"}}) as ctx, ctx.run("r") as run:
    run.metric("loss", 0.5)
"""
    subprocess.run([sys.executable, "-c", capture], check=True)
    read = f"""
import sys
from contexta.cli import main
code = main(["runs", "--workspace", {str(workspace)!r}])
print(code, "contexta.capture" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, check=True)

    assert "completed" in result.stdout.splitlines()[2]  # the run, listed
    assert result.stdout.splitlines()[-1] == "0 False"


_TABLE_PACKAGES = """
import sys
import contexta, contexta.query, contexta.reports
from contexta.query import runs_table
runs_table([])  # a table, not yet converted
print(" ".join(sorted(name for name in ("pyarrow", "pandas", "polars") if name in sys.modules)))
"""


def test_the_read_side_never_imports_pyarrow_pandas_or_polars_until_a_table_is_converted() -> None:
    loaded = subprocess.run(
        [sys.executable, "-c", _TABLE_PACKAGES], capture_output=True, text=True, check=True
    )

    assert loaded.stdout.split() == []


def test_exporting_csv_needs_no_optional_package(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    capture = f"""
from contexta import Contexta
with Contexta(workspace={str(workspace)!r}, config={{"project_name": "p"}}) as ctx, ctx.run("r") as run:
    run.metric("loss", 0.5)
"""
    subprocess.run([sys.executable, "-c", capture], check=True)
    export = f"""
import sys
from contexta.cli import main
target = {str(tmp_path / "points.csv")!r}
code = main(["export", "--table", "points", "-o", target, "--workspace", {str(workspace)!r}])
print(code, sorted(name for name in ("pyarrow", "pandas", "polars") if name in sys.modules))
"""
    result = subprocess.run([sys.executable, "-c", export], capture_output=True, text=True, check=True)

    assert result.stdout.splitlines()[-1] == "0 []"
    assert (tmp_path / "points.csv").read_text(encoding="utf-8").count("\n") == 2

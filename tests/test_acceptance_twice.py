"""The seed programs run twice in one workspace: the second run prints what the first printed, and
every execution of the first is still in the store beside the second's (issue 13).

The programs live beside the repository (`../shared/acceptance`, as CI has them); where they are not,
these tests skip. Programs that capture live keep two executions of each run; programs that write
history by hand (002, 004) write the same history again, which changes nothing.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

from contexta import Contexta

ACCEPTANCE = Path(__file__).resolve().parents[2] / "shared" / "acceptance"
HEX_SUFFIX = re.compile(r"-[0-9a-f]{12}\b")

# program -> (the modules it needs, whether it captures live)
PROGRAMS = {
    "000_ml_artifacts.py": (("sklearn",), True),
    "000_dl_artifacts.py": (("sklearn", "torch"), True),
    "001_ml_style.py": (("sklearn",), True),
    "001_dl_style.py": (("sklearn", "torch"), True),
    "001_llm_style.py": ((), True),
    "002_store_batch_sample_deployment.py": ((), False),
    "003_ml_compare.py": (("sklearn",), True),
    "003_dl_compare.py": (("sklearn", "torch"), True),
    "003_llm_compare.py": ((), True),
}


def _run(program: str, directory: Path) -> str:
    done = subprocess.run(
        [sys.executable, str(ACCEPTANCE / program)],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return HEX_SUFFIX.sub("-…", done.stdout)


def _executions(directory: Path) -> list[tuple[str, str, str]]:
    with Contexta(workspace=directory / ".contexta") as ctx:
        return [
            (run.run_ref, run.execution_id or "", run.status) for run in ctx.list_runs(all_executions=True)
        ]


def _latest(directory: Path) -> list[str]:
    with Contexta(workspace=directory / ".contexta") as ctx:
        return [run.run_id for run in ctx.list_runs()]


def _skip_without(modules: tuple[str, ...]) -> None:
    if not ACCEPTANCE.is_dir():
        pytest.skip(f"the acceptance programs are not at {ACCEPTANCE}")
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize("program", list(PROGRAMS))
def test_a_seed_program_run_twice_keeps_both_executions(program: str, tmp_path: Path) -> None:
    modules, captures = PROGRAMS[program]
    _skip_without(modules)
    first_output = _run(program, tmp_path)
    first = _executions(tmp_path)
    latest_after_first = _latest(tmp_path)
    second_output = _run(program, tmp_path)
    both = _executions(tmp_path)

    assert second_output == first_output  # the same refs and figures, the second time too
    assert _latest(tmp_path) == latest_after_first  # default listings count each run once
    if captures:
        assert len(both) == 2 * len(first)
        assert set(first) <= set(both)  # the first executions, unchanged (ids and statuses)
        assert sorted(ref for ref, _, _ in both) == sorted(2 * [ref for ref, _, _ in first])
        assert {status for _, _, status in both} == {"completed"}
    else:
        assert both == first  # the same history written again changes nothing


def test_the_onboarding_pair_run_twice_prints_the_same_summary(tmp_path: Path) -> None:
    _skip_without(())
    _run("004_seed_onboarding_data.py", tmp_path)
    first = _run("004_onboarding_summary.py", tmp_path)
    executions = _executions(tmp_path)
    _run("004_seed_onboarding_data.py", tmp_path)
    assert _run("004_onboarding_summary.py", tmp_path) == first
    assert _executions(tmp_path) == executions

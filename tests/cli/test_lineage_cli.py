"""`contexta lineage`, `contexta audit` and `contexta env-diff` against a captured workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest

from contexta import Contexta

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def test_lineage_lists_what_a_run_led_to(workspace: Path, cli: CliRunner) -> None:
    result = cli("lineage", "baseline", "--workspace", workspace, "--project", "p")

    assert result.code == 0, result.err
    assert result.out.startswith("Lineage of run:p.baseline (both, any depth)")
    assert "deployment:p.canary" in result.out
    assert "dataset:p.digits" in result.out
    assert "input_of" in result.out and "deployed" in result.out


def test_lineage_json_is_the_graph_and_depth_limits_it(workspace: Path, cli: CliRunner) -> None:
    whole = cli(
        "lineage",
        "dataset:p.digits",
        "--workspace",
        workspace,
        "--direction",
        "downstream",
        "--format",
        "json",
    )
    near = cli(
        "lineage",
        "dataset:p.digits",
        "--workspace",
        workspace,
        "--direction",
        "downstream",
        "--depth",
        "1",
        "--format",
        "json",
    )

    assert whole.code == near.code == 0
    graph, shallow = orjson.loads(whole.out), orjson.loads(near.out)
    kinds = {node["ref"]: node["kind"] for node in graph["nodes"]}
    assert kinds["deployment:p.canary"] == "deployment"
    assert {kinds[ref] for ref in kinds if ref.startswith("artifact:")} == {"artifact"}
    assert {node["kind"] for node in shallow["nodes"]} == {"dataset", "run"}
    assert shallow["max_depth"] == 1


def test_lineage_of_an_unknown_ref_fails_with_one_line(workspace: Path, cli: CliRunner) -> None:
    missing = cli("lineage", "dataset:p.never", "--workspace", workspace)
    negative = cli("lineage", "baseline", "--workspace", workspace, "--depth", "-1")

    assert missing.code == 1
    assert missing.err.startswith("contexta: nothing in this store is named 'dataset:p.never'")
    assert missing.err.count("\n") == 1
    assert negative.code == 2


def test_audit_exits_1_naming_what_is_missing(workspace: Path, cli: CliRunner) -> None:
    result = cli("audit", "broken", "--workspace", workspace)

    assert result.code == 1
    assert "Reproducibility of run:p.broken" in result.out
    assert "dataset_ref" in result.err and "missing" in result.err


@pytest.fixture
def reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # outside any git checkout: the revision is the one given
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    with (
        Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx,
        ctx.run(
            "complete", dataset_ref="dataset:p.digits", code_revision="abc", config_snapshot={"lr": 1}
        ) as run,
    ):
        run.register_artifact("model", model)
    return tmp_path / "ws"


def test_audit_of_a_complete_run_exits_0_and_json_lists_every_check(
    reproducible: Path, cli: CliRunner
) -> None:
    text = cli("audit", "complete", "--workspace", reproducible)
    as_json = cli("audit", "complete", "--workspace", reproducible, "--format", "json")

    assert text.code == as_json.code == 0, text.err
    assert "unknown" in text.out  # the git tree's state is not recorded, and that does not fail it
    audit = orjson.loads(as_json.out)
    assert audit["run_id"] == "run:p.complete" and audit["complete"] is True
    assert [check["status"] for check in audit["checks"]] == ["ok", "unknown", "ok", "ok", "ok", "ok"]


def test_audit_fails_once_a_registered_artifact_is_changed(reproducible: Path, cli: CliRunner) -> None:
    (reproducible.parent / "model.bin").write_bytes(b"retrained")

    result = cli("audit", "complete", "--workspace", reproducible)

    assert result.code == 1
    assert "artifact" in result.err


def test_env_diff_of_runs_from_one_process_is_identical(workspace: Path, cli: CliRunner) -> None:
    text = cli("env-diff", "baseline", "tuned", "--workspace", workspace, "--project", "p")
    as_json = cli(
        "env-diff", "baseline", "tuned", "--workspace", workspace, "--project", "p", "--format", "json"
    )

    assert text.code == as_json.code == 0, text.err
    assert "Identical" in text.out
    comparison = orjson.loads(as_json.out)
    assert comparison["identical"] is True
    assert comparison["packages_changed"] == comparison["packages_added"] == []
    assert comparison["left"]["python_version"]

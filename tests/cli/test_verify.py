"""`contexta verify [ARTIFACT]`: re-hash what was registered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from contexta import Contexta
from contexta.cli._tables import display_width

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner


def _artifact_of(workspace: Path, run: str) -> str:
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        (artifact,) = ctx.list_artifacts(run)
    return artifact.artifact_ref


def test_verify_rehashes_every_artifact(cli: CliRunner, fresh_workspace: Path) -> None:
    result = cli("verify", "--workspace", fresh_workspace)

    assert result.code == 0, result.err
    header, _, *rows = result.out.splitlines()
    assert header.split() == ["artifact", "status", "path"]
    assert [row.split()[1] for row in rows] == ["verified", "verified"]
    assert max(display_width(line) for line in result.out.splitlines()) <= 80


def test_a_changed_file_fails_verification(cli: CliRunner, fresh_workspace: Path) -> None:
    model = fresh_workspace.parent / "models" / "tuned.pkl"
    model.write_bytes(b"tuned weights, BETTER")  # same size, different bytes

    everything = cli("verify", "--workspace", fresh_workspace, "--format", "json")
    one = cli("verify", _artifact_of(fresh_workspace, "run:p.tuned"), "--workspace", fresh_workspace)

    assert everything.code == 1
    assert [entry["status"] for entry in json.loads(everything.out)] == ["verified", "hash_mismatch"]
    assert everything.err == "contexta: 1 of 2 artifacts did not verify (hash_mismatch)\n"
    assert one.code == 1
    assert "hash_mismatch" in one.out


def test_a_removed_file_is_missing(cli: CliRunner, fresh_workspace: Path) -> None:
    (fresh_workspace.parent / "models" / "baseline.pkl").unlink()

    result = cli("verify", _artifact_of(fresh_workspace, "run:p.baseline"), "--workspace", fresh_workspace)

    assert result.code == 1
    assert "missing" in result.out


def test_one_artifact_verifies(cli: CliRunner, fresh_workspace: Path) -> None:
    ref = _artifact_of(fresh_workspace, "run:p.baseline")

    result = cli("verify", ref, "--workspace", fresh_workspace, "--format", "json")

    assert result.code == 0
    (entry,) = json.loads(result.out)
    assert (entry["artifact_ref"], entry["status"]) == (ref, "verified")


def test_an_unknown_artifact_is_a_handled_error(cli: CliRunner, fresh_workspace: Path) -> None:
    result = cli("verify", "artifact:p.baseline.model-000000000000", "--workspace", fresh_workspace)

    assert result.code == 1
    assert result.err.startswith("contexta: no artifact artifact:p.baseline.model-000000000000 ")
    assert result.err.count("\n") == 1

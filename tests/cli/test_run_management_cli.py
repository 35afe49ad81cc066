"""`contexta tag / untag / note / archive / unarchive / delete`: what a user types and sees, and that
`delete` then `contexta gc` gives back the run's log lines and artifact copies, and only its."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gc_workspace import (
    CONFIG,
    capture_workspace,
    executions_in_log,
    integrity,
    log_lines,
    store_rows,
)

from conftest import CliRunner
from contexta import Contexta, Workspace
from contexta.capture import execution_of_line


def test_tags_and_notes_show_in_runs_and_run_show(cli: CliRunner, fresh_workspace: Path) -> None:
    where = ("--workspace", fresh_workspace)

    tagged = cli("tag", "tuned", "owner=ana", "stage=prod=blue", *where)
    untagged = cli("untag", "tuned", "team", *where)
    noted = cli("note", "tuned", "best so far; ship after review", *where)

    assert (
        tagged.code == 0 and tagged.out == "run:p.tuned is tagged team=vision, owner=ana, stage=prod=blue.\n"
    )
    assert untagged.out == "run:p.tuned is tagged owner=ana, stage=prod=blue.\n"
    assert noted.out == "Added note 1 to run:p.tuned.\n"
    listed = json.loads(cli("runs", "--format", "json", *where).out)
    assert {run["name"]: run["tags"] for run in listed}["tuned"] == {"owner": "ana", "stage": "prod=blue"}
    shown = cli("run", "show", "tuned", *where).out
    assert "tags           owner=ana, stage=prod=blue" in shown
    assert "archived       no" in shown
    assert "Notes (1)" in shown and "best so far; ship after review" in shown


def test_archived_runs_are_listed_only_with_archived_and_shown_by_name(
    cli: CliRunner, fresh_workspace: Path
) -> None:
    where = ("--workspace", fresh_workspace, "--project", "p")

    archived = cli("archive", "broken", *where)

    assert archived.code == 0 and archived.out.startswith("Archived run:p.broken")
    assert "broken" not in cli("runs", *where).out
    with_archived = cli("runs", "--archived", *where).out
    assert "archived" in with_archived.splitlines()[0]
    assert any(
        line.startswith("broken") and line.rstrip().endswith("archived")
        for line in with_archived.splitlines()
    )
    assert "archived       yes" in cli("run", "show", "broken", *where).out
    assert cli("compare", "tuned", "broken", *where).code == 0
    assert cli("report", "broken", *where).code == 0

    assert cli("unarchive", "broken", *where).code == 0
    assert "broken" in cli("runs", *where).out


def test_delete_says_what_it_deletes_and_needs_yes_off_a_terminal(
    cli: CliRunner, fresh_workspace: Path
) -> None:
    where = ("--workspace", fresh_workspace, "--project", "p")

    refused = cli("delete", "unmeasured", *where)

    assert refused.code == 1
    assert "This deletes 1 execution(s) of run:p.unmeasured" in refused.out
    assert "not deleting run:p.unmeasured without --yes" in refused.err
    assert "unmeasured" in cli("runs", *where).out

    deleted = cli("delete", "unmeasured", "--yes", "--format", "json", *where)

    assert deleted.code == 0, deleted.err
    report = json.loads(deleted.out)
    assert report["run_ref"] == "run:p.unmeasured" and report["rows"]["runs"] == 1
    assert "unmeasured" not in cli("runs", *where).out
    assert cli("run", "show", "unmeasured", *where).code == 1


def test_delete_asks_on_a_terminal(
    cli: CliRunner, fresh_workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    where = ("--workspace", fresh_workspace, "--project", "p")
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    declined = cli("delete", "unmeasured", *where)
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    accepted = cli("delete", "unmeasured", *where)

    assert declined.code == 1 and "Nothing deleted." in declined.out
    assert accepted.code == 0 and "Deleted 1 execution(s) of run:p.unmeasured" in accepted.out
    assert "unmeasured" not in cli("runs", *where).out


def test_delete_then_gc_reclaims_the_runs_log_lines_and_artifact_copies_only(
    cli: CliRunner, tmp_path: Path
) -> None:
    workspace, executions = capture_workspace(tmp_path)
    before = log_lines(workspace)
    copies = {path for path in (workspace / "artifacts").rglob("*") if path.is_file()}
    outside = sorted(tmp_path.glob("model-*.bin"))
    with Workspace(workspace) as reader:
        kept_values = {
            run_id: reader.get_metric_series(run_id, "loss").values for run_id in ("b@1", "b@2", "b")
        }
        a_digests = {
            artifact.hash_value for run in ("a@1", "a@2", "a") for artifact in reader.list_artifacts(run)
        }

    deleted = cli("delete", "a", "--yes", "--format", "json", "--workspace", workspace)
    assert deleted.code == 0, deleted.err
    assert sorted(json.loads(deleted.out)["executions"]) == sorted(executions["a"])
    gc = cli("gc", "--format", "json", "--workspace", workspace)
    assert gc.code == 0, gc.err
    report = json.loads(gc.out)

    gone = set(executions["a"])
    for execution in gone:
        assert set(store_rows(workspace, execution).values()) == {0}
    assert not executions_in_log(workspace, sealed_only=True) & gone
    assert report["log"]["lines_removed"] > 0
    after = log_lines(workspace)
    for family, lines in before.items():  # b's lines are all still there, in order
        assert [line for line in after[family] if execution_of_line(line) not in gone] == [
            line for line in lines if execution_of_line(line) not in gone
        ]
    # a's two contents were kept in the workspace; b's three stay; files outside it are never touched.
    assert report["artifact_files_removed"] == 2
    remaining = {path for path in (workspace / "artifacts").rglob("*") if path.is_file()}
    assert remaining == {path for path in copies if path.name not in a_digests}
    assert all(path.exists() for path in outside)
    with Workspace(workspace) as reader:
        assert {
            run_id: reader.get_metric_series(run_id, "loss").values for run_id in kept_values
        } == kept_values
    assert integrity(workspace) == "ok"


HOLD_RUN_OPEN = textwrap.dedent(
    """
    import sys
    from contexta import Contexta
    with Contexta(workspace=sys.argv[1], config={"project_name": "gcp"}) as ctx, ctx.run("a") as run:
        run.metric("loss", 1.0)
        ctx.flush()
        print(run.execution_id, flush=True)
        sys.stdin.readline()  # the parent tries to delete it meanwhile
        run.metric("loss", 0.5)
    """
)


def test_deleting_a_run_another_process_captures_is_refused_naming_it(cli: CliRunner, tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config=CONFIG) as ctx, ctx.run("b") as run:
        run.metric("loss", 2.0)
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD_RUN_OPEN, str(workspace)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdin is not None
        live = child.stdout.readline().strip()
        refused = cli("delete", "a", "--yes", "--workspace", workspace)
        tagged = cli("tag", "a", "checked=yes", "--workspace", workspace)
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        if child.poll() is None:
            child.kill()
    assert refused.code == 1
    assert f"still being captured by process {child.pid} on host" in refused.err
    assert tagged.code == 0, tagged.err
    with Workspace(workspace) as reader:
        run = reader.get_run("a")
        assert run.execution_id == live and run.status == "completed"
        assert run.tags == {"checked": "yes"}
        assert reader.get_metric_series("a", "loss").values == (1.0, 0.5)


def test_archiving_hides_a_run_from_listings_but_not_from_checks_and_history(
    cli: CliRunner, fresh_workspace: Path
) -> None:
    where = ("--workspace", fresh_workspace, "--project", "p")
    assert cli("archive", "tuned", *where).code == 0

    verified = json.loads(cli("verify", "--format", "json", *where).out)
    summary = json.loads(cli("report", "--summary", "--format", "json", *where).out)
    best = cli("best", "accuracy", *where).out

    assert {item["artifact_ref"].split(".")[1] for item in verified} == {"baseline", "tuned"}
    assert summary["sections"][0]["paragraphs"][0].startswith("Project p has 4 runs")
    assert "tuned" not in best  # the best of the runs `contexta runs` lists

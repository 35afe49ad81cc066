"""`contexta backup` and `contexta restore`: a consistent copy of a workspace another process is
capturing into, restored and queried; damaged backups, live targets and used destinations refused
with nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import orjson
import pytest
from blake3 import blake3

import contexta
from contexta import Contexta, Workspace
from contexta._backup import read_manifest
from contexta.capture import read_capture_log
from contexta.errors import ValidationError

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

# Completes three runs, says "ready", then streams metrics into an open run until told to stop.
# Small segments, so the log has sealed (and compressed) segments as well as active files.
_CAPTURER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from contexta import Contexta

    workspace, stop = Path(sys.argv[1]), Path(sys.argv[2])
    model = workspace / "models" / "model.bin"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights inside the workspace")
    ctx = Contexta(workspace=workspace, config={"project_name": "live", "capture": {"segment_bytes": 32768}})
    for index in range(3):
        with ctx.run(f"r{index}", dataset_ref="dataset:live.stream") as run:
            with run.stage("train") as stage:
                for step in range(200):
                    stage.metric("loss", 1.0 / (step + 1), step=step)
            run.register_artifact("model", model)
    print("ready", flush=True)
    with ctx.run("streaming") as run:
        step = 0
        while not stop.exists():
            for _ in range(100):
                run.metric("loss", float(step), step=step)
                step += 1
            ctx.flush()
            if step == 100:
                print("streaming", flush=True)
            time.sleep(0.01)
    ctx.close()
    print("done", flush=True)
    """
)

# Holds a run open until its stdin closes.
_HOLDER = textwrap.dedent(
    """
    import sys
    from contexta import Contexta

    with Contexta(workspace=sys.argv[1], config={"project_name": "held"}) as ctx, ctx.run("held") as run:
        run.metric("loss", 1.0)
        ctx.flush()
        print("open", flush=True)
        sys.stdin.read()
    """
)


def _expect(process: subprocess.Popen[str], word: str) -> None:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.strip() == word, (
        f"child said {line!r}; stderr: {process.stderr.read() if process.stderr else ''}"
    )


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> content), to show a directory was left as it was."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "live" not in path.relative_to(root).parts
    }


def _capture(workspace: Path, project: str, runs: list[str]) -> None:
    with Contexta(workspace=workspace, config={"project_name": project}) as ctx:
        for name in runs:
            with ctx.run(name, dataset_ref=f"dataset:{project}.data") as run:
                run.metric("loss", 0.5, step=1)


@pytest.fixture
def captured(tmp_path: Path) -> Path:
    workspace = tmp_path / "ws"
    _capture(workspace, "p", ["alpha", "beta"])
    return workspace


def test_backup_of_a_workspace_being_captured_into_restores_and_answers_queries(
    tmp_path: Path, cli: CliRunner
) -> None:
    workspace, backup, restored, stop = (tmp_path / name for name in ("ws", "backup", "restored", "stop"))
    capturer = subprocess.Popen(
        [sys.executable, "-c", _CAPTURER, str(workspace), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _expect(capturer, "ready")
        _expect(capturer, "streaming")

        backed_up = cli("backup", backup, "--workspace", workspace)

        still_capturing = capturer.poll() is None
    finally:
        stop.touch()
        _, errors = capturer.communicate(timeout=600)
    assert capturer.returncode == 0, errors
    assert still_capturing  # the backup was taken while the other process captured
    assert backed_up.code == 0, backed_up.err
    assert backed_up.out.startswith(f"Backed up {workspace} to {backup}: ")

    restoring = cli("restore", backup, "--workspace", restored)

    assert restoring.code == 0, restoring.err
    with Workspace(restored) as copy, Workspace(workspace) as original:
        runs = {run.name: run.status for run in copy.list_runs()}
        assert {name: runs[name] for name in ("r0", "r1", "r2")} == dict.fromkeys(
            ("r0", "r1", "r2"), "completed"
        )
        for name in ("r0", "r1", "r2"):
            assert (
                copy.get_metric_series(name, "loss").values == original.get_metric_series(name, "loss").values
            )
        # The run open at the time is there as far as it had got, a prefix of what it captured.
        streamed = copy.get_metric_series("streaming", "loss").values
        assert len(streamed) >= 100
        assert streamed == original.get_metric_series("streaming", "loss").values[: len(streamed)]
        lineage = copy.traverse_lineage("dataset:live.stream", max_depth=1)
        assert lineage == original.traverse_lineage("dataset:live.stream", max_depth=1)
        assert [node.label for node in lineage.nodes] == ["dataset:live.stream", "r0", "r1", "r2"]
    manifest = read_manifest(backup)
    assert any(item.path.startswith("cache/capture/record.0000") for item in manifest.files)  # sealed ones
    for family in ("record.jsonl", "context.jsonl", "artifact.jsonl"):
        log = read_capture_log(restored / "cache" / "capture" / family)
        assert log.clean and log.lines, family  # whole lines only: no append was half copied
    # The artifact registered inside the workspace came along; the manifest's digests are the files'.
    assert (restored / "models" / "model.bin").read_bytes() == b"weights inside the workspace"
    for item in manifest.files:
        content = (restored / item.path).read_bytes()
        assert (len(content), blake3(content).hexdigest()) == (item.size_bytes, item.blake3), item.path


def test_an_append_in_progress_is_left_out_of_the_copy_of_the_active_log(
    captured: Path, tmp_path: Path
) -> None:
    log = captured / "cache" / "capture" / "record.jsonl"
    whole = log.read_bytes()
    with open(log, "ab") as appender:  # what a writer has put down of a line so far
        appender.write(b'{"captured_at":"2026-12-05T12:00:00.000000Z","family":"REC')

    contexta.backup_workspace(captured, tmp_path / "backup")

    assert (tmp_path / "backup" / "workspace" / "cache" / "capture" / "record.jsonl").read_bytes() == whole


def test_a_tampered_backup_is_refused_naming_the_file_and_the_target_is_unchanged(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    assert cli("backup", backup, "--workspace", captured).code == 0
    _capture(target, "other", ["kept"])
    before = _files(target)
    log = backup / "workspace" / "cache" / "capture" / "record.jsonl"
    content = bytearray(log.read_bytes())
    content[10] ^= 0x01  # one bit, same size: only the digest can tell
    log.write_bytes(bytes(content))

    result = cli("restore", backup, "--workspace", target)

    assert result.code == 1
    assert "cache/capture/record.jsonl" in result.err and "BLAKE3" in result.err
    assert _files(target) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup", "target", "ws"]  # no leftovers
    with Workspace(target) as workspace:
        assert [run.name for run in workspace.list_runs()] == ["kept"]


def test_a_truncated_store_in_a_backup_is_refused_before_anything_is_replaced(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    assert cli("backup", backup, "--workspace", captured).code == 0
    _capture(target, "other", ["kept"])
    before = _files(target)
    store = backup / "workspace" / "metadata" / "contexta.db"
    store.write_bytes(store.read_bytes()[:4096])

    result = cli("restore", backup, "--workspace", target)

    assert result.code == 1
    assert "metadata/contexta.db is truncated" in result.err
    assert _files(target) == before


def test_a_backup_cut_short_has_no_manifest_and_is_refused(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    backup = tmp_path / "backup"
    assert cli("backup", backup, "--workspace", captured).code == 0
    (backup / "manifest.json").unlink()

    result = cli("restore", backup, "--workspace", tmp_path / "target")

    assert result.code == 1
    assert "manifest.json" in result.err
    assert not (tmp_path / "target").exists()


@pytest.mark.parametrize("exchange", ["renameat2", "two renames"])
def test_restore_keeps_the_workspace_it_replaces(
    captured: Path, tmp_path: Path, cli: CliRunner, monkeypatch: pytest.MonkeyPatch, exchange: str
) -> None:
    if exchange == "two renames":  # a system without RENAME_EXCHANGE ends the same way
        monkeypatch.setattr("contexta._backup._swap._exchange", lambda first, second: False)
    backup, target = tmp_path / "backup", tmp_path / "target"
    assert cli("backup", backup, "--workspace", captured).code == 0
    _capture(target, "other", ["kept"])

    result = cli("restore", backup, "--workspace", target, "--format", "json")

    assert result.code == 0, result.err
    report = orjson.loads(result.out)
    previous = Path(report["previous_workspace"])
    assert previous.parent == tmp_path and previous.name.startswith("target.before-restore-")
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(
        ["backup", "target", previous.name, "ws"]
    )
    with Workspace(target) as restored, Workspace(previous) as kept:
        assert [run.name for run in restored.list_runs()] == ["alpha", "beta"]
        assert [run.name for run in kept.list_runs()] == ["kept"]


def test_restore_into_a_workspace_that_is_a_symbolic_link_restores_where_it_points(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    """`.contexta -> /big/disk/contexta` is how a workspace is put on another disk: the restore goes
    to the directory the link names, and the link stays (it was moved aside and replaced by a
    directory beside it, on the link's disk)."""
    backup, disk, link = tmp_path / "backup", tmp_path / "disk", tmp_path / "link"
    assert cli("backup", backup, "--workspace", captured).code == 0
    _capture(disk / "contexta", "other", ["kept"])
    link.symlink_to(disk / "contexta", target_is_directory=True)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(disk / "fresh", target_is_directory=True)

    result = cli("restore", backup, "--workspace", link, "--format", "json")
    fresh = cli("restore", backup, "--workspace", dangling)

    assert result.code == 0, result.err
    assert fresh.code == 0, fresh.err
    assert link.is_symlink() and os.readlink(link) == str(disk / "contexta")
    assert dangling.is_symlink() and (disk / "fresh").is_dir()
    previous = Path(orjson.loads(result.out)["previous_workspace"])
    assert previous.parent == disk and previous.name.startswith("contexta.before-restore-")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup", "dangling", "disk", "link", "ws"]
    with Workspace(link) as restored, Workspace(previous) as kept, Workspace(dangling) as new:
        assert [run.name for run in restored.list_runs()] == ["alpha", "beta"]
        assert [run.name for run in new.list_runs()] == ["alpha", "beta"]
        assert [run.name for run in kept.list_runs()] == ["kept"]


def test_restore_refuses_a_workspace_a_process_is_capturing_into(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    backup, target = tmp_path / "backup", tmp_path / "target"
    assert cli("backup", backup, "--workspace", captured).code == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(target)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _expect(holder, "open")
        before = _files(target)

        result = cli("restore", backup, "--workspace", target)

        after = _files(target)
    finally:
        _, errors = holder.communicate("", timeout=600)
    assert holder.returncode == 0, errors
    assert result.code == 1
    assert "capturing into" in result.err
    assert after == before
    with Workspace(target) as workspace:
        assert [(run.name, run.status) for run in workspace.list_runs()] == [("held", "completed")]


def test_backup_refuses_a_destination_that_is_not_empty(
    captured: Path, tmp_path: Path, cli: CliRunner
) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    inside = captured / "backups"

    result = cli("backup", used, "--workspace", captured)
    nested = cli("backup", inside, "--workspace", captured)

    assert result.code == 1
    assert "not an empty directory" in result.err
    assert [path.name for path in used.iterdir()] == ["notes.txt"]
    assert nested.code == 1 and "inside the workspace" in nested.err
    assert not inside.exists()


def test_the_api_names_external_artifacts_and_restores_into_an_empty_directory(tmp_path: Path) -> None:
    workspace, backup, target = tmp_path / "ws", tmp_path / "backup", tmp_path / "target"
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"kept where it is")
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx, ctx.run("r") as run:
        artifact_ref = run.register_artifact("model", outside).payload["manifest"].artifact_ref
    target.mkdir()

    result = contexta.backup_workspace(workspace, backup)
    restored = contexta.restore_workspace(backup, target)

    assert [item.artifact_ref for item in result.manifest.external_artifacts] == [artifact_ref]
    assert not any("outside" in item.path for item in result.manifest.files)
    assert result.total_bytes == sum(item.size_bytes for item in result.manifest.files)
    assert (restored.workspace, restored.previous_workspace) == (target, None)
    with Workspace(target) as copy:
        assert copy.get_artifact_origin(artifact_ref).size_bytes == len(b"kept where it is")


def test_a_manifest_that_names_a_path_outside_the_backup_is_refused(captured: Path, tmp_path: Path) -> None:
    backup = tmp_path / "backup"
    contexta.backup_workspace(captured, backup)
    manifest = orjson.loads((backup / "manifest.json").read_bytes())
    manifest["files"][0]["path"] = "../../etc/passwd"
    (backup / "manifest.json").write_bytes(orjson.dumps(manifest))

    with pytest.raises(ValidationError) as refused:
        contexta.restore_workspace(backup, tmp_path / "target")

    assert refused.value.code == "backup_manifest_invalid"
    assert not (tmp_path / "target").exists()


def test_restoring_from_a_file_says_it_is_not_a_backup(tmp_path: Path) -> None:
    """SRC a file (a tarball of the backup, say): the API raised NotADirectoryError, not the
    ValidationError every other source that is no backup gives."""
    archive = tmp_path / "backup.tar"
    archive.write_bytes(b"not a directory")

    with pytest.raises(ValidationError) as refused:
        contexta.restore_workspace(archive, tmp_path / "target")

    assert refused.value.code == "backup_manifest_missing"
    assert not (tmp_path / "target").exists()


@pytest.fixture(autouse=True)
def _no_stray_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The children inherit the environment: a CONTEXTA_ override from the shell must not change them.
    for name in list(os.environ):
        if name.startswith("CONTEXTA_"):
            monkeypatch.delenv(name)
    yield

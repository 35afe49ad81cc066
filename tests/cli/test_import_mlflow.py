"""`contexta import mlflow`: runs written by the real MLflow (its file store and its SQLite store)
come into a workspace with every point, at the step and time MLflow recorded, and importing again
changes nothing."""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import blake3
import pytest

from contexta import Workspace
from contexta._imports import import_mlflow
from contexta.errors import NotFoundError, StoreError, ValidationError

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

mlflow = pytest.importorskip("mlflow")
from mlflow.entities import Param, RunTag  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in milliseconds


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


def _write_history(client: MlflowClient, tmp_path: Path) -> list[str]:
    """Three runs in two experiments, with params, tags, several metric histories and artifacts."""
    vision = client.create_experiment("vision-exp")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights " * 100)
    notes = tmp_path / "notes.txt"
    notes.write_text("a second artifact, in a subdirectory")

    first = client.create_run(vision, start_time=T0, run_name="baseline").info.run_id
    client.log_batch(
        first,
        params=[Param("lr", "0.1"), Param("layers", "3")],
        tags=[RunTag("team", "vision"), RunTag("dataset", "digits")],
    )
    for step in range(6):
        client.log_metric(first, "train/loss", 1.0 / (step + 1), timestamp=T0 + 1000 * step, step=step)
        client.log_metric(first, "val_acc", 0.5 + step * 0.07, timestamp=T0 + 1000 * step + 500, step=step)
    client.log_artifact(first, str(model))
    client.log_artifact(first, str(notes), artifact_path="docs/extra")
    client.set_terminated(first, "FINISHED", end_time=T0 + 10_000)

    second = client.create_run(vision, start_time=T0 + 20_000, run_name="diverged").info.run_id
    client.log_param(second, "lr", "10.0")
    for step, value in enumerate([2.0, 7.5, float("nan")]):
        client.log_metric(second, "train/loss", value, timestamp=T0 + 21_000 + step, step=step * 10)
    client.log_metric(second, "val loss", 3.25, timestamp=T0 + 22_000, step=0)  # a space: renamed
    client.set_terminated(second, "FAILED", end_time=T0 + 30_000)

    third = client.create_run("0", start_time=T0 + 40_000, run_name="default-exp-run").info.run_id
    client.log_metric(third, "score", 42.0, timestamp=T0 + 40_001, step=3)
    client.set_terminated(third, "KILLED", end_time=T0 + 41_000)
    return [first, second, third]


@pytest.fixture
def file_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, MlflowClient, list[str]]:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store on request
    root = tmp_path / "mlruns"
    client = MlflowClient(tracking_uri=root.as_uri())
    return root, client, _write_history(client, tmp_path)


@pytest.fixture
def sqlite_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, MlflowClient, list[str]]:
    pytest.importorskip("sqlalchemy")
    pytest.importorskip("alembic")
    monkeypatch.chdir(tmp_path)  # the SQL store keeps artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    return uri, client, _write_history(client, tmp_path)


def _store_dump(workspace: Path) -> tuple[str, dict[str, bytes]]:
    """Everything the workspace holds: the store's rows and the capture log's bytes."""
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        rows = "\n".join(connection.iterdump())
    logs = {path.name: path.read_bytes() for path in sorted((workspace / "cache" / "capture").glob("*"))}
    return rows, logs


_STATUS = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "cancelled"}


def _assert_imported(workspace: Path, client: MlflowClient, run_ids: list[str]) -> None:
    """Each MLflow run, as MLflow reads it back, is in the workspace: name, status, times, params,
    user tags, every metric point (value, step, timestamp) and every artifact file with its digest."""
    reader = Workspace(workspace)
    listed = {run.run_id for run in reader.list_runs()}
    for run_id in run_ids:
        source = client.get_run(run_id)
        experiment = client.get_experiment(source.info.experiment_id).name
        ref = f"run:{experiment.lower().replace(' ', '-')}.{run_id}"
        assert ref in listed
        stored = reader.get_run(ref)
        assert stored.name == source.info.run_name
        assert stored.status == _STATUS[source.info.status]
        assert stored.started_at == _iso(source.info.start_time)
        assert stored.ended_at == _iso(source.info.end_time)
        assert stored.config_snapshot == (source.data.params or None)
        user_tags = {k: v for k, v in source.data.tags.items() if not k.startswith("mlflow.")}
        assert stored.tags == (user_tags or None)
        assert stored.metadata["mlflow"]["run_id"] == run_id
        for key in source.data.metrics:
            history = client.get_metric_history(run_id, key)
            stored_key = key.replace(" ", "_")
            points = reader.get_metric_series(ref, stored_key).points
            got = [(point.step, point.value, point.observed_at) for point in points]
            expected = [(m.step, m.value, _iso(m.timestamp)) for m in history]
            assert len(got) == len(expected) > 0
            for (step, value, at), (want_step, want_value, want_at) in zip(got, expected, strict=True):
                assert (step, at) == (want_step, want_at)
                assert value == want_value or (math.isnan(value) and math.isnan(want_value))
        artifacts = {a.location.removeprefix("path:"): a for a in reader.list_artifacts(ref)}
        files = [info.path for info in _walk_artifacts(client, run_id)]
        assert len(artifacts) == len(files)
        for location, artifact in artifacts.items():
            data = Path(location).read_bytes()
            assert artifact.hash_value == blake3.blake3(data).hexdigest()
            assert artifact.size_bytes == len(data)
            assert any(location.endswith(path) for path in files)


def _walk_artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[Any]:
    found = []
    for info in client.list_artifacts(run_id, path):
        found += _walk_artifacts(client, run_id, info.path) if info.is_dir else [info]
    return found


def test_an_mlruns_directory_imports_every_run_point_and_artifact(
    tmp_path: Path, cli: CliRunner, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    root, client, run_ids = file_store
    workspace = tmp_path / "ws"

    result = cli("import", "mlflow", root, "--workspace", workspace)

    assert result.code == 0, result.err
    assert "Imported 3 run(s)" in result.out
    assert "'val loss' is stored as 'val_loss'" in result.out
    _assert_imported(workspace, client, run_ids)


def test_importing_an_mlruns_directory_twice_leaves_the_same_store(
    tmp_path: Path, cli: CliRunner, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    root, _, _ = file_store
    workspace = tmp_path / "ws"
    assert cli("import", "mlflow", root, "--workspace", workspace).code == 0
    before = _store_dump(workspace)

    again = cli("import", "mlflow", f"file://{root}", "--workspace", workspace, "--format", "json")

    assert again.code == 0, again.err
    assert '"skipped_runs"' in again.out and '"imported_runs": []' in again.out
    assert _store_dump(workspace) == before


def test_imported_runs_survive_a_repair_and_are_still_skipped_after_it(
    tmp_path: Path, cli: CliRunner, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    root, client, run_ids = file_store
    workspace = tmp_path / "ws"
    assert cli("import", "mlflow", root, "--workspace", workspace).code == 0

    assert cli("repair", "--workspace", workspace).code == 0  # the store rebuilt from the capture log

    _assert_imported(workspace, client, run_ids)
    again = cli("import", "mlflow", root, "--workspace", workspace)
    assert (
        again.code == 0 and "Imported 0 run(s)" in again.out and "3 run(s) were imported already" in again.out
    )


def test_an_mlflow_sqlite_database_imports_every_run_and_twice_changes_nothing(
    tmp_path: Path, cli: CliRunner, sqlite_store: tuple[str, MlflowClient, list[str]]
) -> None:
    uri, client, run_ids = sqlite_store
    workspace = tmp_path / "ws"

    assert cli("import", "mlflow", uri, "--workspace", workspace).code == 0
    _assert_imported(workspace, client, run_ids)
    before = _store_dump(workspace)
    assert cli("import", "mlflow", uri, "--workspace", workspace).code == 0
    assert _store_dump(workspace) == before


def test_an_mlflow_postgresql_database_imports_every_run(
    tmp_path: Path, cli: CliRunner, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sqlalchemy")
    monkeypatch.chdir(tmp_path)  # the SQL store keeps artifacts under ./mlruns
    client = MlflowClient(tracking_uri=postgres_url.replace("postgresql://", "postgresql+psycopg://", 1))
    run_ids = _write_history(client, tmp_path)
    workspace = tmp_path / "ws"

    result = cli("import", "mlflow", postgres_url, "--workspace", workspace)

    assert result.code == 0, result.err
    _assert_imported(workspace, client, run_ids)
    before = _store_dump(workspace)
    assert cli("import", "mlflow", postgres_url, "--workspace", workspace).code == 0
    assert _store_dump(workspace) == before


def test_a_run_that_changed_since_its_import_is_reported_and_left_alone(
    tmp_path: Path, cli: CliRunner, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    root, client, run_ids = file_store
    workspace = tmp_path / "ws"
    assert cli("import", "mlflow", root, "--workspace", workspace).code == 0
    client.log_metric(run_ids[0], "train/loss", 0.01, timestamp=T0 + 9_000, step=99)
    before = _store_dump(workspace)

    result = cli("import", "mlflow", root, "--workspace", workspace)

    assert result.code == 1
    assert run_ids[0] in result.err and "contexta delete" in result.err
    assert _store_dump(workspace) == before


def test_an_import_cut_short_is_finished_by_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    from contexta._imports import _writer
    from contexta.capture import LocalJsonlSink

    root, client, run_ids = file_store
    workspace = tmp_path / "ws"
    monkeypatch.setattr(_writer, "IMPORT_BATCH", 4)  # the first run takes several batches
    real_write = LocalJsonlSink.write
    calls = 0

    def dies_on_the_third_batch(self: LocalJsonlSink, batch: Any) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise KeyboardInterrupt
        real_write(self, batch)

    monkeypatch.setattr(LocalJsonlSink, "write", dies_on_the_third_batch)
    with pytest.raises(KeyboardInterrupt):
        import_mlflow(root, workspace=workspace)
    monkeypatch.setattr(LocalJsonlSink, "write", real_write)

    report = import_mlflow(root, workspace=workspace)

    assert len(report.imported_runs) + len(report.skipped_runs) == 3 and report.imported_runs
    _assert_imported(workspace, client, run_ids)
    points = sum(
        len(client.get_metric_history(run_id, key))
        for run_id in run_ids
        for key in client.get_run(run_id).data.metrics
    )
    lines = (workspace / "cache" / "capture" / "record.jsonl").read_text().splitlines()
    assert len(lines) == len(set(lines)) == points  # every point once in the capture log


def test_missing_and_unreadable_sources_fail_clearly(tmp_path: Path, cli: CliRunner) -> None:
    workspace = tmp_path / "ws"
    missing = cli("import", "mlflow", tmp_path / "nope", "--workspace", workspace)
    assert missing.code == 1 and "no MLflow store at" in missing.err
    with pytest.raises(NotFoundError) as not_found:
        import_mlflow(tmp_path / "nope", workspace=workspace)
    assert not_found.value.code == "import_source_not_found"

    not_mlflow = tmp_path / "other.db"
    with sqlite3.connect(not_mlflow) as connection:
        connection.execute("CREATE TABLE t (x)")
    result = cli("import", "mlflow", f"sqlite:///{not_mlflow}", "--workspace", workspace)
    assert result.code == 1 and "cannot be read as an MLflow tracking database" in result.err
    with pytest.raises(StoreError) as unreadable:
        import_mlflow(f"sqlite:///{not_mlflow}", workspace=workspace)
    assert unreadable.value.code == "import_source_unreadable"
    assert not (workspace / "metadata").exists()  # nothing written for a source that cannot be read


def test_a_damaged_metric_file_is_refused_before_anything_is_written(
    tmp_path: Path, file_store: tuple[Path, MlflowClient, list[str]]
) -> None:
    root, _, run_ids = file_store
    damaged = next(root.glob(f"*/{run_ids[0]}/metrics/val_acc"))
    damaged.write_text(damaged.read_text() + "not a metric line at all\n")

    with pytest.raises(ValidationError) as refused:
        import_mlflow(root, workspace=tmp_path / "ws")

    assert refused.value.code == "import_source_corrupt"
    assert str(damaged) in refused.value.message


def test_importing_contexta_loads_neither_the_importers_nor_mlflow() -> None:
    program = (
        "import sys, contexta; print(sorted(m for m in ('contexta._imports', 'mlflow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"

"""`contexta import` on the sources a demanding user has: metric keys Contexta must rename (which
must never merge two source metrics into one series), experiment and run-directory names that are
long or in another script (which must never stop the import), written by the real MLflow and
tensorboardX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from contexta import Contexta, Workspace

if TYPE_CHECKING:
    from tests.cli.conftest import CliRunner

mlflow = pytest.importorskip("mlflow")
tensorboardx = pytest.importorskip("tensorboardX")
from mlflow.tracking import MlflowClient  # noqa: E402

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z in milliseconds


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())


def _series(reader: Workspace, ref: str) -> dict[str, list[tuple[int | None, float]]]:
    found = {}
    for summary in reader.get_metric_summaries(ref):
        points = reader.get_metric_series(ref, summary.metric_key).points
        found[summary.metric_key] = [(point.step, point.value) for point in points]
    return found


def test_mlflow_keys_renamed_alike_stay_apart(tmp_path: Path, cli: CliRunner, client: MlflowClient) -> None:
    """`精度` and `召回` both lose every character Contexta refuses, and `acc:1` becomes the key
    `acc_1` the run also logs: each source metric must still be its own series, with its own values."""
    experiment = client.create_experiment("keys")
    run_id = client.create_run(experiment, start_time=T0, run_name="keys").info.run_id
    logged = {"精度": [0.9, 0.95], "召回": [0.1, 0.2], "acc:1": [0.5, 0.55], "acc_1": [0.6, 0.65]}
    for key, values in logged.items():
        for step, value in enumerate(values):
            client.log_metric(run_id, key, value, timestamp=T0 + step, step=step)
    client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000)
    workspace = tmp_path / "ws"

    result = cli("import", "mlflow", tmp_path / "mlruns", "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    renamed = json.loads(result.out)["renamed_keys"]
    assert set(renamed) == {"精度", "召回", "acc:1"}
    stored_keys = {key: renamed.get(key, key) for key in logged}
    assert len(set(stored_keys.values())) == 4, stored_keys  # four source metrics, four stored keys
    assert stored_keys["acc_1"] == "acc_1"  # a key Contexta accepts is never the one renamed
    series = _series(Workspace(workspace), f"run:keys.{run_id}")
    assert series == {stored_keys[key]: list(enumerate(values)) for key, values in logged.items()}
    again = cli("import", "mlflow", tmp_path / "mlruns", "--workspace", workspace, "--format", "json")
    assert again.code == 0 and json.loads(again.out)["skipped_runs"] == [f"run:keys.{run_id}"]


def test_tensorboard_tags_renamed_alike_stay_apart(tmp_path: Path, cli: CliRunner) -> None:
    logdir = tmp_path / "tb"
    with tensorboardx.SummaryWriter(str(logdir / "run")) as writer:
        for step in range(3):
            writer.add_scalar("损失", 1.0 / (step + 1), step, walltime=1_767_225_600.0 + step)
            writer.add_scalar("精度", 0.25 * step, step, walltime=1_767_225_600.0 + step)
    workspace = tmp_path / "ws"

    result = cli("import", "tensorboard", logdir, "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    renamed = json.loads(result.out)["renamed_keys"]
    assert set(renamed) == {"损失", "精度"} and renamed["损失"] != renamed["精度"]
    (run,) = Workspace(workspace).list_runs()
    series = _series(Workspace(workspace), run.run_id)
    assert series[renamed["损失"]] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3))]
    assert series[renamed["精度"]] == [(0, 0.0), (1, 0.25), (2, 0.5)]


def test_a_long_tensorboard_run_directory_imports(tmp_path: Path, cli: CliRunner) -> None:
    """Ray Tune names each trial's directory after its whole configuration: far longer than a ref
    component. Each must still be a run of its own, named as its directory."""
    logdir = tmp_path / "tune"
    names = [
        f"train_fn_2a3f4_0000{trial}_{trial}_batch_size=64,lr=0.00{trial}0,weight_decay=0.0001_2026-01-01_12-00-0{trial}"
        for trial in range(2)
    ]
    for trial, name in enumerate(names):
        with tensorboardx.SummaryWriter(str(logdir / name)) as writer:
            writer.add_scalar("loss", 1.0 + trial, 0, walltime=1_767_225_600.0)
    workspace = tmp_path / "ws"

    result = cli("import", "tensorboard", logdir, "--workspace", workspace)

    assert result.code == 0, result.err
    runs = Workspace(workspace).list_runs()
    assert sorted(run.name for run in runs) == sorted(names)
    assert len({run.run_id for run in runs}) == 2
    reader = Workspace(workspace)
    by_name = {run.name: run.run_id for run in runs}
    for trial, name in enumerate(names):
        assert _series(reader, by_name[name]) == {"loss": [(0, 1.0 + trial)]}


def test_experiments_named_in_another_script_or_at_length_import(
    tmp_path: Path, cli: CliRunner, client: MlflowClient
) -> None:
    """An experiment name with no Latin letter, or one longer than a project name may be (the
    Databricks style `/Users/<email>/<path>`), must not stop the import of it or of the others."""
    names = ["实验", "/Users/first.last@example.com/churn-prediction/experiments/baseline-2026-q1", "plain"]
    run_ids = {}
    for number, name in enumerate(names):
        experiment = client.create_experiment(name)
        run_id = client.create_run(experiment, start_time=T0, run_name=f"run-{number}").info.run_id
        client.log_metric(run_id, "loss", float(number), timestamp=T0, step=0)
        client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000)
        run_ids[name] = run_id
    workspace = tmp_path / "ws"

    result = cli("import", "mlflow", tmp_path / "mlruns", "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    assert len(json.loads(result.out)["imported_runs"]) == 3
    reader = Workspace(workspace)
    runs = {run.metadata["mlflow"]["experiment_name"]: run for run in reader.list_runs()}
    assert set(runs) == set(names)
    assert len({run.project_name for run in runs.values()}) == 3  # three experiments, three projects
    assert runs["plain"].project_name == "plain"
    for number, name in enumerate(names):
        assert _series(reader, runs[name].run_id) == {"loss": [(0, float(number))]}


@pytest.mark.parametrize("after", ["delete", "gc", "no-journal"])
def test_a_deleted_import_comes_back_when_imported_again_and_stays_after_a_repair(
    tmp_path: Path, cli: CliRunner, client: MlflowClient, after: str
) -> None:
    """`contexta delete RUN --yes` then importing again is how the docs say to bring a run back;
    it must really be back (not reported imported while the store lacks it), and a repair, which
    replays the deletion, must not take the new import away."""
    experiment = client.create_experiment("again")
    run_id = client.create_run(experiment, start_time=T0, run_name="again").info.run_id
    for step in range(5):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=T0 + step, step=step)
    client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000)
    root, workspace, ref = tmp_path / "mlruns", tmp_path / "ws", f"run:again.{run_id}"
    expected = {"loss": [(step, 1.0 / (step + 1)) for step in range(5)]}
    assert cli("import", "mlflow", root, "--workspace", workspace).code == 0
    assert cli("delete", ref, "--workspace", workspace, "--yes").code == 0
    if after == "gc":
        assert cli("gc", "--workspace", workspace).code == 0
    if after == "no-journal":  # as in a PostgreSQL store, which keeps none: its delivered batches tell
        (workspace / "metadata" / "run-journal.jsonl").unlink()

    result = cli("import", "mlflow", root, "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    assert json.loads(result.out)["imported_runs"] == [ref]
    assert [run.run_id for run in Workspace(workspace).list_runs()] == [ref]
    assert _series(Workspace(workspace), ref) == expected

    if after == "no-journal":
        return  # a repair without the journal does not know of the deletion
    assert cli("repair", "--workspace", workspace).code == 0
    assert [run.run_id for run in Workspace(workspace).list_runs()] == [ref]
    assert _series(Workspace(workspace), ref) == expected
    again = cli("import", "mlflow", root, "--workspace", workspace, "--format", "json")
    assert again.code == 0 and json.loads(again.out)["skipped_runs"] == [ref]


def test_a_workspace_whose_store_is_postgresql_imports_deletes_and_imports_again(
    tmp_path: Path, cli: CliRunner, client: MlflowClient, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """store.url names a PostgreSQL server (no run journal there): importing, importing again,
    deleting and importing again behave as with the workspace's own SQLite file."""
    experiment = client.create_experiment("pg")
    run_id = client.create_run(experiment, start_time=T0, run_name="pg").info.run_id
    for step in range(3):
        client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=T0 + step, step=step)
    client.set_terminated(run_id, "FINISHED", end_time=T0 + 1000)
    monkeypatch.setenv("CONTEXTA_STORE_URL", postgres_url)
    root, workspace, ref = tmp_path / "mlruns", tmp_path / "ws", f"run:pg.{run_id}"
    expected = {"loss": [(step, 1.0 / (step + 1)) for step in range(3)]}

    assert cli("import", "mlflow", root, "--workspace", workspace).code == 0
    again = cli("import", "mlflow", root, "--workspace", workspace, "--format", "json")
    assert again.code == 0 and json.loads(again.out)["skipped_runs"] == [ref]
    assert cli("delete", ref, "--workspace", workspace, "--yes").code == 0
    result = cli("import", "mlflow", root, "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    assert json.loads(result.out)["imported_runs"] == [ref]
    reader = Workspace(workspace)
    assert [run.run_id for run in reader.list_runs()] == [ref]
    assert _series(reader, ref) == expected
    assert not (workspace / "metadata" / "contexta.db").exists()  # it all went to the server


def _tensorboard_run(
    directory: Path, values: list[float], wall: float = 1_767_225_600.0, suffix: str = ""
) -> None:
    # `suffix` ends the event file's name as a process id does PyTorch's (tensorboardX names its
    # files by the second and the host only: two written in one second here would share a name).
    with tensorboardx.SummaryWriter(str(directory), filename_suffix=suffix) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("loss", value, step, walltime=wall + step)


def test_importing_into_a_project_never_joins_a_captured_run_of_the_same_name(
    tmp_path: Path, cli: CliRunner
) -> None:
    """`--project team` where a run `baseline` was captured, and a log directory with a `baseline`
    run: the import must not become a hidden earlier execution of the captured run (whose ref the
    report would then name), nor change what `run:team.baseline` reads."""
    workspace = tmp_path / "ws"
    with Contexta(workspace=workspace, config={"project_name": "team"}) as ctx, ctx.run("baseline") as run:
        run.stage("train").metric("loss", 9.0, step=0)
    _tensorboard_run(tmp_path / "tb" / "baseline", [1.0, 0.5, 0.25])

    result = cli("import", "tensorboard", tmp_path / "tb", "--workspace", workspace, "--project", "team")

    assert result.code == 0, result.err
    (imported,) = json.loads(
        cli(
            "import",
            "tensorboard",
            tmp_path / "tb",
            "--workspace",
            workspace,
            "--project",
            "team",
            "--format",
            "json",
        ).out
    )["skipped_runs"]
    assert imported != "run:team.baseline" and imported in result.out
    reader = Workspace(workspace)
    runs = {run.run_id: run for run in reader.list_runs(all_executions=True)}
    assert set(runs) == {"run:team.baseline", imported}
    assert runs["run:team.baseline"].execution_number == 1 and runs[imported].name == "baseline"
    assert _series(reader, "run:team.baseline") == {"loss": [(0, 9.0)]}
    assert _series(reader, imported) == {"loss": [(0, 1.0), (1, 0.5), (2, 0.25)]}


def test_two_log_directories_with_the_same_run_path_are_two_runs(tmp_path: Path, cli: CliRunner) -> None:
    """Lightning's TensorBoardLogger names every project's runs `lightning_logs/version_0`, ...:
    importing two such directories into one project is two runs, not a 'changed since imported'
    conflict whose advice (delete the run) would delete the first project's run."""
    first, second = tmp_path / "a" / "lightning_logs", tmp_path / "b" / "lightning_logs"
    _tensorboard_run(first / "version_0", [1.0, 0.5])
    _tensorboard_run(second / "version_0", [2.0, 1.5], wall=1_767_312_000.0, suffix=".4242.0")
    workspace = tmp_path / "ws"

    assert cli("import", "tensorboard", first, "--workspace", workspace).code == 0
    result = cli("import", "tensorboard", second, "--workspace", workspace, "--format", "json")

    assert result.code == 0, result.err
    report = json.loads(result.out)
    assert report["conflicting_runs"] == [] and len(report["imported_runs"]) == 1
    reader = Workspace(workspace)
    runs = reader.list_runs(all_executions=True)
    assert len(runs) == 2 and {run.name for run in runs} == {"version_0"}
    assert sorted(_series(reader, run.run_id)["loss"][0][1] for run in runs) == [1.0, 2.0]
    for logdir in (first, second):
        again = json.loads(
            cli("import", "tensorboard", logdir, "--workspace", workspace, "--format", "json").out
        )
        assert again["imported_runs"] == [] and len(again["skipped_runs"]) == 1

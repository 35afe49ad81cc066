"""A store written by the previous version (schema 1, one row per run ref) is migrated when a Contexta
opens it: its runs, stages, batches, samples, events, metric points, artifacts and environments stay
readable as the first execution of their run, and running such a run again adds a second execution
instead of replacing or joining the old one.

The schema-1 store is built here with plain SQL from `MIGRATIONS[1]`, the way that version laid it
out; nothing of today's write path touches it before the migration.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
from array import array
from pathlib import Path
from typing import Any

import orjson
import pytest

from contexta import Contexta
from contexta.cli import main
from contexta.contract._timestamps import instant_key, parse_timestamp
from contexta.store._schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION

pytestmark = pytest.mark.sqlite_only("migrates SQLite files of earlier schemas")

PROJECT = "legacy"
RUN = f"run:{PROJECT}.linear-svm"
STAGE = f"stage:{PROJECT}.linear-svm.evaluate"
BATCH = f"batch:{PROJECT}.linear-svm.evaluate.holdout-split"
SAMPLE = f"sample:{PROJECT}.linear-svm.evaluate.holdout-split.first-prediction"
OTHER_RUN = f"run:{PROJECT}.tiny-cnn"
LOSSES = (0.9, 0.5, 0.25)


def _ns(timestamp: str) -> int:
    moment = parse_timestamp(timestamp)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1_000


def _blob(typecode: str, values: Any) -> bytes:
    packed = array(typecode, values)
    if sys.byteorder != "little":
        packed.byteswap()
    return packed.tobytes()


class SchemaOneStore:
    """Rows laid out as schema 1 kept them, written straight into a schema-1 database file."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.connection = sqlite3.connect(path, isolation_level=None)
        self.connection.execute("BEGIN")
        for statement in MIGRATIONS[1]:
            self.connection.execute(statement)
        self.connection.execute(f"PRAGMA application_id={APPLICATION_ID}")
        self.connection.execute("PRAGMA user_version=1")
        self.seq = 0

    def insert(self, table: str, **columns: Any) -> None:
        names = ", ".join(columns)
        marks = ", ".join("?" * len(columns))
        self.connection.execute(f"INSERT INTO {table}({names}) VALUES ({marks})", list(columns.values()))

    def run(self, ref: str, started_at: str, ended_at: str, **extra: Any) -> None:
        self.insert(
            "runs",
            run_ref=ref,
            project_ref=f"project:{PROJECT}",
            name=ref.rpartition(".")[2],
            status="completed",
            started_at=started_at,
            ended_at=ended_at,
            started_key=instant_key(started_at),
            **extra,
        )

    def event(self, owner: dict[str, str], key: str, message: str, observed_at: str) -> None:
        self.seq += 1
        record_ref = f"record:{owner['run_ref'].partition(':')[2]}.a1b2c3d4-{self.seq}"
        envelope = {
            "record_ref": record_ref,
            "record_type": "event",
            "recorded_at": observed_at,
            "observed_at": observed_at,
            "producer_ref": "contexta.capture",
            "completeness_marker": "complete",
            "degradation_marker": "none",
            "schema_version": "1.0",
            **owner,
        }
        payload = {
            "event_key": key,
            "level": "info",
            "message": message,
            "attributes": {"rows": 150},
            "origin_marker": "explicit_capture",
            "subject_ref": owner.get("stage_execution_ref", owner["run_ref"]),
        }
        self.insert(
            "records",
            seq=self.seq,
            record_ref=record_ref,
            record_type="event",
            run_ref=owner["run_ref"],
            stage_ref=owner.get("stage_execution_ref"),
            observed_at=observed_at,
            recorded_at=observed_at,
            key=key,
            document=orjson.dumps({"envelope": envelope, "payload": payload}).decode(),
        )

    def metric_series(
        self, run_ref: str, stage_ref: str, key: str, values: tuple[float, ...], observed_at: str
    ) -> None:
        """One series of captured float points with steps 0..n-1, stored as one chunk."""
        first = self.seq + 1
        self.seq += len(values)
        cursor = self.connection.execute(
            "INSERT INTO metric_series (run_ref, stage_ref, batch_ref, sample_ref, deployment_ref, key, "
            "value_type, unit, extras, point_count, first_seq, last_seq, last_value) "
            "VALUES (?, ?, '', '', '', ?, 'float64', '', '', ?, ?, ?, ?)",
            (run_ref, stage_ref, key, len(values), first, self.seq, values[-1]),
        )
        observed = _ns(observed_at)
        self.insert(
            "metric_chunks",
            series_id=cursor.lastrowid,
            seq_base=first,
            point_count=len(values),
            positions=_blob("i", range(len(values))),
            observed_ns=_blob("q", [observed + step * 1_000_000 for step in range(len(values))]),
            point_values=_blob("d", values),
            steps=_blob("q", range(len(values))),
            id_prefix="a1b2c3d4-",
            ref_base=first,
            recorded_ns=observed + 10_000_000,
        )

    def close(self) -> None:
        self.connection.execute("UPDATE counters SET value = ? WHERE name = 'seq'", (self.seq,))
        self.connection.execute("COMMIT")
        self.connection.close()


def build_schema_one_workspace(root: Path) -> Path:
    """A workspace whose store schema 1 wrote: linear-svm (evaluate stage, holdout-split batch,
    first-prediction sample, an event, a loss series, a model artifact, an environment, a canary
    deployment of it) and
    tiny-cnn (a loss series of its own)."""
    workspace = root / ".contexta"
    store = SchemaOneStore(workspace / "metadata" / "contexta.db")
    store.insert(
        "projects", project_ref=f"project:{PROJECT}", name=PROJECT, created_at="2025-01-01T00:00:00Z"
    )
    store.run(
        RUN,
        "2025-01-01T00:00:00Z",
        "2025-01-01T01:00:00Z",
        dataset_ref="dataset:sklearn.iris",
        tags=json.dumps({"team": "tabular"}),
        config_snapshot=json.dumps({"C": 1.0}),
    )
    store.insert(
        "stages",
        stage_ref=STAGE,
        run_ref=RUN,
        name="evaluate",
        status="completed",
        started_at="2025-01-01T00:10:00Z",
        ended_at="2025-01-01T00:50:00Z",
        order_index=0,
    )
    store.insert(
        "batches",
        batch_ref=BATCH,
        run_ref=RUN,
        stage_ref=STAGE,
        name="holdout-split",
        status="completed",
        started_at="2025-01-01T00:20:00Z",
        ended_at="2025-01-01T00:30:00Z",
        order_index=0,
    )
    store.insert(
        "samples",
        sample_ref=SAMPLE,
        run_ref=RUN,
        stage_ref=STAGE,
        batch_ref=BATCH,
        name="first-prediction",
        observed_at="2025-01-01T00:25:00Z",
        status="completed",
        ended_at="2025-01-01T00:25:01Z",
    )
    store.insert(
        "environments",
        run_ref=RUN,
        captured_at="2025-01-01T00:00:01Z",
        python_version="3.11.4",
        platform="Linux-5.15-x86_64",
        packages=json.dumps({"scikit-learn": "1.3.0"}),
        git_revision="0f3c2a1",
    )
    store.insert(
        "artifacts",
        artifact_ref=f"artifact:{PROJECT}.linear-svm.model-0123456789ab",
        run_ref=RUN,
        kind="model",
        location_ref="path:/work/model.pkl",
        hash_algorithm="blake3",
        hash_value="af" * 32,
        size_bytes=2048,
        created_at="2025-01-01T00:55:00Z",
        binding_status="BOUND",
        source_exists=1,
    )
    store.insert(
        "deployments",
        deployment_ref=f"deployment:{PROJECT}.canary",
        project_ref=f"project:{PROJECT}",
        name="canary",
        status="completed",
        started_at="2025-01-01T02:00:00Z",
        ended_at="2025-01-01T02:05:00Z",
        run_ref=RUN,
        started_key=instant_key("2025-01-01T02:00:00Z"),
    )
    store.event({"run_ref": RUN}, "dataset.loaded", "loaded 150 rows", "2025-01-01T00:01:00Z")
    store.metric_series(RUN, STAGE, "loss", LOSSES, "2025-01-01T00:15:00Z")
    store.run(OTHER_RUN, "2025-01-02T00:00:00Z", "2025-01-02T01:00:00Z")
    store.metric_series(OTHER_RUN, "", "loss", (2.0, 1.0), "2025-01-02T00:15:00Z")
    store.close()
    return workspace


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return build_schema_one_workspace(tmp_path)


def _user_version(workspace: Path) -> int:
    with sqlite3.connect(workspace / "metadata" / "contexta.db") as connection:
        return int(connection.execute("PRAGMA user_version").fetchone()[0])


def test_a_schema_one_store_is_migrated_and_everything_in_it_stays_readable(workspace: Path) -> None:
    # Breaks if the migration lost rows (a run-owned table not carried over), left them without an
    # execution (queries by execution would find nothing), or did not migrate at all.
    assert _user_version(workspace) == 1
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert _user_version(workspace) == SCHEMA_VERSION
        runs = ctx.list_runs()
        assert [(run.run_id, run.name, run.status) for run in runs] == [
            (RUN, "linear-svm", "completed"),
            (OTHER_RUN, "tiny-cnn", "completed"),
        ]
        assert len(ctx.list_runs(all_executions=True)) == 2  # one execution each
        old = runs[0]
        assert (old.tags, old.config_snapshot, old.dataset_ref) == (
            {"team": "tabular"},
            {"C": 1.0},
            "dataset:sklearn.iris",
        )
        assert old.execution_number == 1 and old.latest

        assert [(stage.stage_id, stage.status) for stage in ctx.list_stages("linear-svm")] == [
            (STAGE, "completed")
        ]
        assert [batch.batch_id for batch in ctx.list_batches("linear-svm")] == [BATCH]
        assert [sample.sample_id for sample in ctx.list_samples("linear-svm")] == [SAMPLE]
        environment = ctx.get_environment("linear-svm")
        assert environment is not None and environment.python_version == "3.11.4"
        assert [(a.kind, a.size_bytes) for a in ctx.list_artifacts("linear-svm")] == [("model", 2048)]
        assert [(d.name, d.run_id) for d in ctx.list_deployments(run_id="linear-svm")] == [("canary", RUN)]

        series = ctx.get_metric_series("linear-svm", "loss")
        assert (series.steps, series.values) == ((0, 1, 2), LOSSES)
        assert ctx.get_metric_series("tiny-cnn", "loss").values == (2.0, 1.0)
        events = [
            record
            for record in ctx.get_run_snapshot("linear-svm").records
            if record.envelope.record_type == "event"
        ]
        assert [(event.payload.event_key, event.payload.message) for event in events] == [
            ("dataset.loaded", "loaded 150 rows")
        ]
        assert ctx.get_run_snapshot(f"linear-svm@{old.execution_id}").run.run_id == RUN
        assert ctx.compare_runs("linear-svm", "tiny-cnn").metric_delta("loss") is not None


def test_running_a_migrated_run_again_adds_a_second_execution_beside_the_old_one(workspace: Path) -> None:
    # Breaks if the new execution replaced the migrated one, or if its points joined the migrated
    # series (schema 1 knew one series per run ref and key).
    with (
        Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx,
        ctx.run("linear-svm", tags={"team": "tabular", "attempt": "2"}) as again,
    ):
        again.event("dataset.loaded", message="loaded 150 rows again")
        with again.stage("evaluate") as stage:
            for step, loss in enumerate((0.8, 0.4)):
                stage.metric("loss", loss, step=step)

    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert [run.run_id for run in ctx.list_runs()] == [OTHER_RUN, RUN]
        every = [run for run in ctx.list_runs(all_executions=True) if run.name == "linear-svm"]
        assert [(run.run_id, run.started_at) for run in every] == [
            (f"{RUN}@1", "2025-01-01T00:00:00Z"),
            (RUN, again.started_at),
        ]
        assert every[1].execution_id == again.execution_id != every[0].execution_id

        assert ctx.get_metric_series("linear-svm@1", "loss").values == LOSSES
        assert ctx.get_metric_series("linear-svm", "loss").values == (0.8, 0.4)
        old_events = [
            r.payload.message
            for r in ctx.get_run_snapshot("linear-svm@1").records
            if r.envelope.record_type == "event"
        ]
        new_events = [
            r.payload.message
            for r in ctx.get_run_snapshot("linear-svm").records
            if r.envelope.record_type == "event"
        ]
        assert (old_events, new_events) == (["loaded 150 rows"], ["loaded 150 rows again"])
        assert [sample.name for sample in ctx.list_samples("linear-svm@1")] == ["first-prediction"]
        assert ctx.list_samples("linear-svm") == []
        assert [a.size_bytes for a in ctx.list_artifacts("linear-svm@1")] == [2048]
        assert [(d.name, d.run_id) for d in ctx.list_deployments()] == [("canary", f"{RUN}@1")]
        old_environment = ctx.get_environment("linear-svm@1")
        assert old_environment is not None and old_environment.python_version == "3.11.4"

        # Resuming joins the new execution, not the migrated one.
        with ctx.run("linear-svm", resume=True) as resumed, resumed.stage("evaluate") as stage:
            stage.metric("loss", 0.2, step=2)
        assert resumed.execution_id == again.execution_id
        assert ctx.get_metric_series("linear-svm", "loss").values == (0.8, 0.4, 0.2)
        assert ctx.get_metric_series("linear-svm@1", "loss").values == LOSSES


def test_the_command_line_says_how_to_migrate_a_schema_one_store_then_reads_it(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first thing after an upgrade is often `contexta runs`. Reading never writes (issue 15), so
    # it does not migrate behind the user's back: it says which command does, and after that one
    # command every read command reads the old history. Breaks if the read migrated the file, or if
    # `contexta migrate` left it unreadable.
    monkeypatch.setenv("COLUMNS", "120")
    store = workspace / "metadata" / "contexta.db"
    before = store.read_bytes()
    assert main(["runs", "--workspace", str(workspace)]) == 1
    assert "contexta migrate" in capsys.readouterr().err
    assert store.read_bytes() == before

    assert main(["migrate", "--workspace", str(workspace)]) == 0
    assert "from store schema 1" in capsys.readouterr().out
    assert main(["runs", "--workspace", str(workspace)]) == 0
    listed = capsys.readouterr().out
    assert "linear-svm" in listed and "tiny-cnn" in listed
    assert main(["run", "show", "linear-svm", "--workspace", str(workspace), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [stage["name"] for stage in shown["stages"]] == ["evaluate"]


OPEN_AND_READ = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from contexta import Contexta

    workspace, go = sys.argv[1], Path(sys.argv[2])
    while not go.exists():
        time.sleep(0.002)
    with Contexta(workspace=workspace, config={"project_name": "legacy"}) as ctx:
        print(json.dumps([
            [run.run_id for run in ctx.list_runs(all_executions=True)],
            list(ctx.get_metric_series("linear-svm", "loss").values),
        ]))
    """
)


def test_processes_opening_a_schema_one_store_at_once_migrate_it_once(
    workspace: Path, tmp_path: Path
) -> None:
    # Breaks if two processes both ran the migration (the second would fail on tables that no
    # longer exist, or copy every row twice).
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN_AND_READ, str(workspace), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    go.touch()
    for process in processes:
        out, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors
        assert json.loads(out) == [[RUN, OTHER_RUN], list(LOSSES)]
    assert _user_version(workspace) == SCHEMA_VERSION

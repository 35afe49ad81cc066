"""Shared fixtures: a real store file written with plain SQL, so read-path tests do not depend on the
write path (what the store holds is exactly what each test says)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

import contexta.store._backend
from contexta.contract._timestamps import instant_key
from contexta.store._database import StoreDatabase
from contexta.store._records import store_record_documents

pytest_plugins = ["store_backends"]

DIGEST = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class StoreBuilder:
    """Puts rows into a store the way the canonical store lays them out; refs are derived from names."""

    def __init__(self, db: StoreDatabase):
        self.db = db
        self._record_ids = 0
        self._executions = 0

    def _insert(self, table: str, **columns: Any) -> None:
        if table in ("runs", "deployments"):  # the store orders these by instant through this column
            columns["started_key"] = instant_key(columns["started_at"])
        with self.db.transaction() as connection:
            if table == "runs":  # each run put here is a new execution of its ref
                self._executions += 1
                columns["execution_id"] = f"e{self._executions:04d}"
            elif table == "deployments":
                columns["run_execution_id"] = self._latest(connection, columns["run_ref"])
            elif table != "projects":  # owned by the latest execution of its run
                columns["execution_id"] = self._latest(connection, columns["run_ref"])
            names = ", ".join(columns)
            marks = ", ".join("?" * len(columns))
            connection.execute(f"INSERT INTO {table}({names}) VALUES ({marks})", list(columns.values()))

    @staticmethod
    def _latest(connection: Any, run_ref: str | None) -> str | None:
        row = connection.execute(
            "SELECT execution_id FROM runs WHERE run_ref = ? ORDER BY started_key DESC, rowid DESC LIMIT 1",
            (run_ref,),
        ).fetchone()
        return None if row is None else str(row[0])

    def project(
        self, name: str, created_at: str = "2025-01-01T00:00:00Z", description: str | None = None
    ) -> str:
        ref = f"project:{name}"
        self._insert("projects", project_ref=ref, name=name, created_at=created_at, description=description)
        return ref

    def run(
        self,
        project: str,
        name: str,
        *,
        status: str = "completed",
        started_at: str = "2025-01-01T00:00:00Z",
        ended_at: str | None = "2025-01-01T01:00:00Z",
        **extra: Any,
    ) -> str:
        ref = f"run:{project}.{name}"
        for column in ("tags", "metadata", "config_snapshot"):
            if column in extra:
                extra[column] = _json(extra[column])
        self._insert(
            "runs",
            run_ref=ref,
            project_ref=f"project:{project}",
            name=name,
            status=status,
            started_at=started_at,
            ended_at=None if status == "open" else ended_at,
            **extra,
        )
        return ref

    def stage(
        self,
        run_ref: str,
        name: str,
        order: int | None,
        *,
        status: str = "completed",
        started_at: str = "2025-01-01T00:00:00Z",
        ended_at: str | None = "2025-01-01T00:30:00Z",
    ) -> str:
        ref = f"stage:{run_ref.removeprefix('run:')}.{name}"
        self._insert(
            "stages",
            stage_ref=ref,
            run_ref=run_ref,
            name=name,
            status=status,
            started_at=started_at,
            ended_at=None if status == "open" else ended_at,
            order_index=order,
        )
        return ref

    def batch(
        self,
        stage_ref: str,
        name: str,
        order: int | None,
        *,
        status: str = "completed",
        started_at: str = "2025-01-01T00:00:00Z",
        ended_at: str | None = "2025-01-01T00:10:00Z",
    ) -> str:
        ref = f"batch:{stage_ref.removeprefix('stage:')}.{name}"
        self._insert(
            "batches",
            batch_ref=ref,
            run_ref=self._run_of(stage_ref),
            stage_ref=stage_ref,
            name=name,
            status=status,
            started_at=started_at,
            ended_at=None if status == "open" else ended_at,
            order_index=order,
        )
        return ref

    def sample(
        self,
        owner_ref: str,
        name: str,
        *,
        observed_at: str = "2025-01-01T00:20:00Z",
        retention_class: str | None = None,
        redaction_profile: str | None = None,
    ) -> str:
        owner_kind, _, body = owner_ref.partition(":")
        components = body.split(".")
        stage_ref = "stage:" + ".".join(components[:3])
        self._insert(
            "samples",
            sample_ref=f"sample:{body}.{name}",
            run_ref=self._run_of(owner_ref),
            stage_ref=stage_ref,
            batch_ref=owner_ref if owner_kind == "batch" else None,
            name=name,
            observed_at=observed_at,
            status="completed",
            ended_at=observed_at,
            retention_class=retention_class,
            redaction_profile=redaction_profile,
        )
        return f"sample:{body}.{name}"

    def deployment(
        self,
        project: str,
        name: str,
        *,
        status: str = "completed",
        run_ref: str | None = None,
        artifact_ref: str | None = None,
        started_at: str = "2025-01-02T00:00:00Z",
        ended_at: str = "2025-01-02T00:05:00Z",
        order: int | None = None,
    ) -> str:
        ref = f"deployment:{project}.{name}"
        self._insert(
            "deployments",
            deployment_ref=ref,
            project_ref=f"project:{project}",
            name=name,
            status=status,
            started_at=started_at,
            ended_at=None if status == "open" else ended_at,
            order_index=order,
            run_ref=run_ref,
            artifact_ref=artifact_ref,
        )
        return ref

    def artifact(
        self,
        run_ref: str,
        kind: str,
        *,
        pending: bool = False,
        stage_ref: str | None = None,
        created_at: str = "2025-01-01T00:50:00Z",
    ) -> str:
        ref = f"artifact:{run_ref.removeprefix('run:')}.{kind}-0123456789ab"
        self._insert(
            "artifacts",
            artifact_ref=ref,
            run_ref=run_ref,
            stage_ref=stage_ref,
            kind=kind,
            location_ref=f"path:/work/{kind}.bin",
            hash_algorithm="blake3",
            hash_value=None if pending else DIGEST,
            size_bytes=None if pending else 1024,
            created_at=created_at,
            binding_status="PENDING" if pending else "BOUND",
            source_exists=0 if pending else 1,
        )
        return ref

    def environment(self, run_ref: str, packages: dict[str, str] | None = None) -> None:
        self._insert(
            "environments",
            run_ref=run_ref,
            captured_at="2025-01-01T00:00:01Z",
            python_version="3.11.9",
            platform="Linux-6.1-x86_64",
            packages=_json(packages),
            git_revision="0f3c2a1",
        )

    def _record(self, record_type: str, owner_ref: str, observed_at: str, body: dict[str, Any]) -> str:
        """Insert one record; `owner_ref` is the run, stage, batch or sample it was captured in."""
        self._record_ids += 1
        kind, _, path = owner_ref.partition(":")
        components = path.split(".")
        run_ref = "run:" + ".".join(components[:2])
        envelope: dict[str, Any] = {
            "record_ref": f"record:{'.'.join(components[:2])}.r{self._record_ids:05d}",
            "record_type": record_type,
            "recorded_at": observed_at,
            "observed_at": observed_at,
            "producer_ref": "tests",
            "run_ref": run_ref,
        }
        if kind in ("stage", "batch", "sample"):
            envelope["stage_execution_ref"] = "stage:" + ".".join(components[:3])
        if kind == "batch" or (kind == "sample" and len(components) == 5):
            envelope["batch_execution_ref"] = "batch:" + ".".join(components[:4])
        if kind == "sample":
            envelope["sample_observation_ref"] = owner_ref
        with self.db.transaction() as connection:
            store_record_documents(connection, [{"envelope": envelope, "payload": body}])
        return str(envelope["record_ref"])

    def metric(
        self,
        owner_ref: str,
        key: str,
        value: float | int,
        *,
        step: int | None = None,
        observed_at: str = "2025-01-01T00:15:00Z",
    ) -> str:
        body = {
            "metric_key": key,
            "value": value,
            "value_type": "int64" if type(value) is int else "float64",
            "step": step,
            "unit": "ratio",
            "aggregation_scope": "step",
        }
        return self._record("metric", owner_ref, observed_at, body)

    def event(self, owner_ref: str, key: str, message: str, observed_at: str = "2025-01-01T00:01:00Z") -> str:
        body = {"event_key": key, "level": "info", "message": message, "origin_marker": "explicit_capture"}
        return self._record("event", owner_ref, observed_at, body)

    def degraded(self, owner_ref: str, reason_code: str, dropped_count: int) -> str:
        body = {"reason_code": reason_code, "message": "queue full", "dropped_count": dropped_count}
        return self._record("degraded", owner_ref, "2025-01-01T00:40:00Z", body)

    @staticmethod
    def _run_of(ref: str) -> str:
        return "run:" + ".".join(ref.partition(":")[2].split(".")[:2])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace path of the test's own (not created: Contexta creates what it needs)."""
    return tmp_path / ".contexta"


@pytest.fixture
def store_db(tmp_path: Path) -> Iterator[StoreDatabase]:
    # On the run's backend (store_backends.py patches the module's function, so look it up here).
    db = contexta.store._backend.open_store_database(tmp_path / "contexta.db", None)
    yield db
    db.close_all()


@pytest.fixture
def store_builder(store_db: StoreDatabase) -> StoreBuilder:
    return StoreBuilder(store_db)


@pytest.fixture
def vision_store(store_db: StoreDatabase, store_builder: StoreBuilder) -> StoreDatabase:
    """Two projects with runs covering the cases the read path must handle.

    vision.baseline: train (epoch-0 completed, epoch-1 failed, epoch-2 left open) and evaluate;
      accuracy 0.81 then 0.83; a bound and a pending artifact; a failed and a completed deployment.
    vision.tuned: started later but put first; train failed; evaluate accuracy 0.83 (ties baseline).
    vision.broken: an evaluate stage without metrics and a degraded record; no environment.
    vision.still-open: open, started after tuned.
    audio.baseline: a second `baseline`, making the bare name ambiguous; f1 only.
    """
    store_builder.project("vision", description="image classifier")
    store_builder.project("audio", created_at="2025-01-02T00:00:00Z")

    tuned = store_builder.run(
        "vision", "tuned", started_at="2025-01-02T00:00:00Z", ended_at="2025-01-02T01:00:00Z"
    )
    store_builder.stage(
        tuned, "train", 0, status="failed", started_at="2025-01-02T00:00:00Z", ended_at="2025-01-02T00:10:00Z"
    )
    tuned_eval = store_builder.stage(
        tuned, "evaluate", 1, started_at="2025-01-02T00:10:00Z", ended_at="2025-01-02T00:20:00Z"
    )
    store_builder.metric(tuned_eval, "accuracy", 0.83)

    baseline = store_builder.run(
        "vision",
        "baseline",
        dataset_ref="dataset:vision.cifar",
        code_revision="abc123",
        tags={"team": "cv"},
        config_snapshot={"lr": 0.01},
    )
    store_builder.environment(baseline, {"numpy": "1.26.4", "contexta": "0.1.0", "six": "1.16"})
    # evaluate is put before train but ordered after it
    evaluate = store_builder.stage(
        baseline, "evaluate", 1, started_at="2025-01-01T00:30:00Z", ended_at="2025-01-01T00:45:00Z"
    )
    train = store_builder.stage(baseline, "train", 0)
    store_builder.batch(
        train,
        "epoch-1",
        1,
        status="failed",
        started_at="2025-01-01T00:10:00Z",
        ended_at="2025-01-01T00:20:00Z",
    )
    store_builder.batch(
        train, "epoch-0", 0, started_at="2025-01-01T00:00:00Z", ended_at="2025-01-01T00:10:00Z"
    )
    store_builder.batch(train, "epoch-2", 2, status="open", started_at="2025-01-01T00:20:00Z")
    holdout = store_builder.batch(
        evaluate, "holdout", 0, started_at="2025-01-01T00:30:00Z", ended_at="2025-01-01T00:40:00Z"
    )
    store_builder.sample(evaluate, "s-2", observed_at="2025-01-01T00:35:00Z", redaction_profile="pii-masked")
    store_builder.sample(evaluate, "s-1", observed_at="2025-01-01T00:31:00Z", retention_class="review")
    store_builder.sample(holdout, "s-3", observed_at="2025-01-01T00:36:00Z")
    store_builder.event(baseline, "dataset.loaded", "loaded 150 rows")
    for step, loss in enumerate((0.9, 0.5, 0.3)):
        store_builder.metric(train, "loss", loss, step=step, observed_at=f"2025-01-01T00:0{step}:00Z")
    store_builder.metric(evaluate, "accuracy", 0.81)
    store_builder.metric(holdout, "macro.f1", 0.79)
    store_builder.metric(evaluate, "accuracy", 0.83)
    store_builder.metric(baseline, "wall.seconds", 3600)
    model = store_builder.artifact(baseline, "model", stage_ref=train)
    store_builder.artifact(baseline, "report", pending=True, created_at="2025-01-01T00:55:00Z")
    store_builder.deployment("vision", "canary", status="failed", run_ref=baseline, artifact_ref=model)
    store_builder.deployment(
        "vision", "prod", run_ref=tuned, started_at="2025-01-03T00:00:00Z", ended_at="2025-01-03T00:05:00Z"
    )

    broken = store_builder.run(
        "vision", "broken", started_at="2025-01-01T12:00:00Z", ended_at="2025-01-01T13:00:00Z"
    )
    store_builder.stage(
        broken, "evaluate", 0, started_at="2025-01-01T12:00:00Z", ended_at="2025-01-01T12:30:00Z"
    )
    store_builder.degraded(broken, "capture.dropped", 7)

    # As text `...00.500Z` sorts before `...00Z`; as instants it is half a second later.
    store_builder.run("vision", "still-open", status="open", started_at="2025-01-02T00:00:00.500Z")

    audio = store_builder.run(
        "audio", "baseline", started_at="2025-01-01T06:00:00Z", ended_at="2025-01-01T07:00:00Z"
    )
    store_builder.metric(audio, "f1", 0.5)
    return store_db


# Real servers: PostgreSQL and an S3-compatible store (tests/services.py), for the team backends.
# Nothing starts unless a test asks for one of these fixtures. CI starts both servers once and passes
# their addresses in TEST_POSTGRES_URL and TEST_S3_ENDPOINT (with AWS_ACCESS_KEY_ID and
# AWS_SECRET_ACCESS_KEY); elsewhere each session starts its own. TEST_REQUIRE_SERVICES=1 turns
# "this machine cannot run the server" from a skip into a failure, so CI cannot go green by skipping.


# This section's imports stay beside it (E402), leaving the fixtures above untouched.
import os  # noqa: E402
import secrets  # noqa: E402
from typing import NoReturn  # noqa: E402

import services  # noqa: E402
from services import PostgresServer, S3Bucket, S3Server  # noqa: E402

# Named TEST_*, not CONTEXTA_*: Contexta's configuration reads (and warns about) every CONTEXTA_* variable.
_SERVICE_ENVIRONMENT = {
    key: os.environ[key]
    for key in ("TEST_POSTGRES_URL", "TEST_S3_ENDPOINT", "TEST_REQUIRE_SERVICES")
    if key in os.environ
}


def _server_unavailable(reason: str) -> NoReturn:
    if _SERVICE_ENVIRONMENT.get("TEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (TEST_REQUIRE_SERVICES=1: the real servers are required)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The PostgreSQL at TEST_POSTGRES_URL (an admin URL), else a private one for the session."""
    url = _SERVICE_ENVIRONMENT.get("TEST_POSTGRES_URL")
    if url:
        try:
            services.wait_for_postgres(url, timeout=10)
        except services.ServiceFailedError as error:
            pytest.fail(f"TEST_POSTGRES_URL is set but unusable: {error}")
        yield PostgresServer(url)
        return
    try:
        server = services.start_postgres()
    except services.ServiceUnavailableError as error:
        _server_unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A new, empty database of the test's own: its URL (`postgresql://user@host:port/name`)."""
    with services.database(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """The S3 server at TEST_S3_ENDPOINT (keys from AWS_*), else a private SeaweedFS."""
    endpoint = _SERVICE_ENVIRONMENT.get("TEST_S3_ENDPOINT")
    if endpoint:
        access_key = os.environ.get("AWS_ACCESS_KEY_ID")
        secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not access_key or not secret_key:
            pytest.fail("TEST_S3_ENDPOINT is set without AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or services.S3_REGION
        given = S3Server(endpoint, access_key, secret_key, region)
        if not services.wait_for_s3(given, timeout=10):
            pytest.fail(f"TEST_S3_ENDPOINT={endpoint} does not answer a signed ListBuckets")
        yield given
        return
    try:
        server = services.start_s3()
    except services.ServiceUnavailableError as error:
        _server_unavailable(str(error))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Bucket]:
    """A new bucket of the test's own, with the usual AWS variables pointing at its server.

    Code under test finds the server the way it will in use (AWS_ENDPOINT_URL and the keys); a profile
    or session token from the developer's shell is removed so that it cannot be sent along instead.
    The bucket and everything in it (unfinished multipart uploads too) is deleted afterwards.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3_server.region)
    for variable in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    client = s3_server.client()
    name = f"contexta-test-{secrets.token_hex(6)}"
    client.create_bucket(Bucket=name)
    try:
        yield S3Bucket(name, f"run-{secrets.token_hex(4)}", s3_server)
    finally:
        services.delete_bucket(client, name)

"""Reading MLflow tracking data without MLflow: its file store (`mlruns/`) and its SQL stores.

Users migrating may not have MLflow installed, and the formats are small:
- the file store: `<root>/<experiment id>/meta.yaml` (the experiment), `<root>/<experiment id>/<run
  id>/meta.yaml` (the run: name, status as a number, start and end in epoch milliseconds),
  `params/<key>` and `tags/<key>` (one value per file, keys with `/` are subdirectories),
  `metrics/<key>` (a line `<timestamp ms> <value> <step>` per point, in logging order), and
  `artifacts/` (or wherever the run's `artifact_uri` points). Deleted runs and experiments are in
  `.trash/` or marked `lifecycle_stage: deleted`, and are not imported.
- the SQL store (`sqlite:///mlflow.db`, `postgresql://...`): the tables `experiments`, `runs`,
  `params`, `tags` and `metrics` (`key, value, timestamp, run_uuid, step, is_nan`) that MLflow's
  migrations create. Points are read in insertion order on SQLite (its rowid: the order MLflow
  logged them), by timestamp then step on PostgreSQL.

Every run becomes one Contexta run in the project named after its experiment (or `--project`): its
ref names the MLflow run id, its name is MLflow's run name, params become its config snapshot (as
text, as MLflow keeps them), user tags its tags, and `mlflow.*` tags, the experiment and the run's
MLflow fields its metadata. Metric points keep their step and timestamp (milliseconds: exact).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from contexta._imports._model import ImportedArtifact, ImportedRun
from contexta._optional import require_module
from contexta.errors import NotFoundError, StoreError, ValidationError

__all__ = ["MlflowSource", "open_mlflow_source"]

# MLflow's RunStatus numbers (file store) and names (SQL store) -> a contract status.
_STATUS_NUMBERS = {1: "RUNNING", 2: "SCHEDULED", 3: "FINISHED", 4: "FAILED", 5: "KILLED"}
_STATUSES = {"FINISHED": "completed", "FAILED": "failed", "KILLED": "cancelled"}
_MS = 1_000_000  # nanoseconds in a millisecond


class MlflowSource:
    """One MLflow tracking store to import from: `runs()` yields its runs, read whole, one at a time."""

    def __init__(
        self,
        description: str,
        count: Callable[[], tuple[int, int]],
        runs: Callable[[], Iterator[ImportedRun]],
    ):
        self.description = description
        self._count = count
        self._runs = runs

    def count(self) -> tuple[int, int]:
        """(runs, metric points) the source holds, for the progress bar."""
        return self._count()

    def runs(self) -> Iterator[ImportedRun]:
        return self._runs()


def open_mlflow_source(location: str, *, project: str | None = None) -> MlflowSource:
    """The MLflow store at `location`: an `mlruns` directory (or `file:` URI), `sqlite:///path`, or
    `postgresql://...`. `NotFoundError` when there is none there, `StoreError` when a database
    cannot be read as an MLflow store."""
    if location.startswith("sqlite:"):
        return _sqlite_source(location, project)
    if location.startswith(("postgresql:", "postgresql+", "postgres:")):
        return _postgres_source(location, project)
    if "://" in location and not location.startswith("file:"):
        raise ValidationError(
            f"cannot import MLflow data from {location.split('://', maxsplit=1)[0]}:// : give an mlruns "
            "directory, sqlite:///path/mlflow.db or postgresql://...",
            code="import_source_invalid",
        )
    root = Path(unquote(urlparse(location).path)) if location.startswith("file:") else Path(location)
    return _file_source(root, project)


# -- the file store ---------------------------------------------------------------------------------


def _read_meta(path: Path) -> dict[str, str]:
    """MLflow's meta.yaml: flat `key: value` lines (values plain or single-quoted). Parsed by hand so
    no YAML library is needed; nested or multi-line values (none in the keys used here) are ignored."""
    meta: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line or line[0] in " #-" or ":" not in line:
            continue
        key, _, value = line.partition(":")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1].replace("''", "'") if value[0] == "'" else value[1:-1]
        meta[key.strip()] = value
    return meta


def _keyed_files(directory: Path) -> Iterator[tuple[str, Path]]:
    """(key, file) under a params/, tags/ or metrics/ directory: a key with `/` is a subdirectory."""
    if not directory.is_dir():
        return
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path.relative_to(directory).as_posix(), path


def _experiments(root: Path) -> list[tuple[Path, dict[str, str]]]:
    found = []
    for meta_path in sorted(root.glob("*/meta.yaml")):
        meta = _read_meta(meta_path)
        if meta.get("lifecycle_stage", "active") == "deleted" or meta_path.parent.name == ".trash":
            continue
        found.append((meta_path.parent, meta))
    return found


def _run_dirs(experiment_dir: Path) -> list[Path]:
    return sorted(path.parent for path in experiment_dir.glob("*/meta.yaml"))


def _file_source(root: Path, project: str | None) -> MlflowSource:
    if not root.is_dir():
        raise NotFoundError(
            f"no MLflow store at {root}: give the mlruns directory MLflow wrote (or sqlite:///path/mlflow.db)",
            code="import_source_not_found",
            details={"path": str(root)},
        )
    experiments = _experiments(root)
    if not experiments:
        raise NotFoundError(
            f"{root} holds no MLflow experiment (no <id>/meta.yaml): is it the mlruns directory?",
            code="import_source_not_found",
            details={"path": str(root)},
        )

    def count() -> tuple[int, int]:
        runs = points = 0
        for experiment_dir, _ in experiments:
            for run_dir in _run_dirs(experiment_dir):
                runs += 1
                points += sum(_count_lines(path) for _, path in _keyed_files(run_dir / "metrics"))
        return runs, points

    def runs() -> Iterator[ImportedRun]:
        for experiment_dir, experiment in experiments:
            for run_dir in _run_dirs(experiment_dir):
                run = _file_run(run_dir, experiment, project)
                if run is not None:
                    yield run

    return MlflowSource(str(root), count, runs)


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for line in handle if line.strip())


def _file_run(run_dir: Path, experiment: dict[str, str], project: str | None) -> ImportedRun | None:
    meta = _read_meta(run_dir / "meta.yaml")
    if meta.get("lifecycle_stage", "active") == "deleted":
        return None
    run_id = meta.get("run_id") or meta.get("run_uuid") or run_dir.name
    status_number = int(meta.get("status") or 0)
    tags = {key: path.read_text(encoding="utf-8") for key, path in _keyed_files(run_dir / "tags")}
    params = {key: path.read_text(encoding="utf-8") for key, path in _keyed_files(run_dir / "params")}
    run = _new_run(
        run_id=run_id,
        name=meta.get("run_name") or tags.get("mlflow.runName") or run_id,
        experiment_id=experiment.get("experiment_id", run_dir.parent.name),
        experiment_name=experiment.get("name", run_dir.parent.name),
        status=_STATUS_NUMBERS.get(status_number, "RUNNING"),
        start_ms=_int_or_none(meta.get("start_time")),
        end_ms=_int_or_none(meta.get("end_time")),
        user=meta.get("user_id"),
        tags=tags,
        params=params,
        project=project,
    )
    for key, path in _keyed_files(run_dir / "metrics"):
        history = run.history(key)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) not in (2, 3):
                raise ValidationError(
                    f"{path}:{number} is not an MLflow metric line (<timestamp> <value> [<step>]): "
                    f"{line[:80]!r}",
                    code="import_source_corrupt",
                    details={"path": str(path), "line": number},
                )
            history.append(int(fields[0]) * _MS, int(fields[2]) if len(fields) == 3 else 0, float(fields[1]))
    _add_artifacts(run, meta.get("artifact_uri"), run_dir / "artifacts")
    _finish(run)
    return run


def _int_or_none(text: str | None) -> int | None:
    if text is None or text in ("", "null", "~"):
        return None
    return int(text)


# -- the SQL stores ---------------------------------------------------------------------------------

_SQL_RUNS = (
    "SELECT r.run_uuid, r.name, r.status, r.start_time, r.end_time, r.user_id, r.artifact_uri, "
    "e.experiment_id, e.name FROM runs r JOIN experiments e ON e.experiment_id = r.experiment_id "
    "WHERE r.lifecycle_stage = 'active' AND e.lifecycle_stage = 'active' ORDER BY r.start_time, r.run_uuid"
)


def _sqlite_source(url: str, project: str | None) -> MlflowSource:
    path = Path(unquote(url.removeprefix("sqlite:").removeprefix("///")))
    if url.startswith("sqlite:////"):
        path = Path("/" + str(path).lstrip("/"))
    if not path.is_file():
        raise NotFoundError(
            f"no MLflow database at {path}", code="import_source_not_found", details={"path": str(path)}
        )

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            connection.execute("SELECT count(*) FROM runs JOIN experiments USING (experiment_id)").fetchone()
            connection.execute("SELECT key, value, timestamp, step, is_nan FROM metrics LIMIT 1").fetchall()
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(
                f"{path} cannot be read as an MLflow tracking database ({error})",
                code="import_source_unreadable",
                details={"path": str(path)},
            ) from None
        return connection

    return _sql_source(str(path), connect, order="rowid", project=project)


def _postgres_source(url: str, project: str | None) -> MlflowSource:
    psycopg = require_module(
        "psycopg", "reading an MLflow database in PostgreSQL", package="psycopg", extra="postgres"
    )

    def connect() -> Any:
        try:
            # SQLAlchemy's driver suffix (postgresql+psycopg2://, as MLflow takes them) is not libpq's.
            plain = re.sub(r"^postgres(?:ql)?(?:\+\w+)?:", "postgresql:", url)
            connection = psycopg.connect(plain, autocommit=True)
        except psycopg.Error as error:
            raise StoreError(
                f"cannot reach the MLflow database ({type(error).__name__}: {str(error).splitlines()[0]})",
                code="import_source_unreadable",
            ) from None
        return _QmarkConnection(connection)

    host = urlparse(url).hostname or "localhost"
    return _sql_source(f"postgresql://{host}/...", connect, order="timestamp, step", project=project)


class _QmarkConnection:
    """A psycopg connection taking the `?` placeholders the SQLite queries here use."""

    def __init__(self, connection: Any):
        self._connection = connection

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        return self._connection.execute(sql.replace("?", "%s"), parameters)

    def close(self) -> None:
        self._connection.close()


def _sql_source(
    description: str, connect: Callable[[], Any], *, order: str, project: str | None
) -> MlflowSource:
    connect().close()  # a database that is not MLflow's fails here, before anything is written

    def count() -> tuple[int, int]:
        with closing(connect()) as connection:
            runs = connection.execute(f"SELECT count(*) FROM ({_SQL_RUNS}) listed").fetchone()[0]
            points = connection.execute(
                f"SELECT count(*) FROM metrics WHERE run_uuid IN (SELECT run_uuid FROM ({_SQL_RUNS}) listed)"
            ).fetchone()[0]
        return int(runs), int(points)

    def runs() -> Iterator[ImportedRun]:
        with closing(connect()) as connection:
            for row in connection.execute(_SQL_RUNS).fetchall():
                yield _sql_run(connection, row, order, project)

    return MlflowSource(description, count, runs)


def _sql_run(connection: Any, row: tuple[Any, ...], order: str, project: str | None) -> ImportedRun:
    run_id, name, status, start_ms, end_ms, user, artifact_uri, experiment_id, experiment_name = row
    tags = dict(connection.execute("SELECT key, value FROM tags WHERE run_uuid = ?", (run_id,)).fetchall())
    params = dict(
        connection.execute("SELECT key, value FROM params WHERE run_uuid = ?", (run_id,)).fetchall()
    )
    run = _new_run(
        run_id=run_id,
        name=name or tags.get("mlflow.runName") or run_id,
        experiment_id=str(experiment_id),
        experiment_name=experiment_name,
        status=status or "RUNNING",
        start_ms=start_ms,
        end_ms=end_ms,
        user=user,
        tags={key: value or "" for key, value in tags.items()},
        params=params,
        project=project,
    )
    points = connection.execute(
        f"SELECT key, timestamp, step, value, is_nan FROM metrics WHERE run_uuid = ? ORDER BY {order}",
        (run_id,),
    )
    for key, timestamp, step, value, is_nan in points:
        run.history(key).append(int(timestamp) * _MS, int(step), float("nan") if is_nan else float(value))
    _add_artifacts(run, artifact_uri, None)
    _finish(run)
    return run


# -- shared -----------------------------------------------------------------------------------------


def _new_run(
    *,
    run_id: str,
    name: str,
    experiment_id: str,
    experiment_name: str,
    status: str,
    start_ms: int | None,
    end_ms: int | None,
    user: str | None,
    tags: dict[str, str],
    params: dict[str, str],
    project: str | None,
) -> ImportedRun:
    from contexta._imports._writer import check_project, derived_project

    system = {key: value for key, value in tags.items() if key.startswith("mlflow.")}
    metadata: dict[str, Any] = {
        "mlflow": {
            "run_id": run_id,
            "experiment_id": experiment_id,
            "experiment_name": experiment_name,
            "status": status,
            "user_id": user,
            "tags": system,
        }
    }
    start_ns = (start_ms or 0) * _MS
    return ImportedRun(
        source="mlflow",
        source_id=run_id,
        project=check_project(project) if project is not None else derived_project(experiment_name),
        ref_name=run_id,
        display_name=name,
        # A run MLflow still lists as RUNNING (live, or its process died) has no ending: it is kept
        # as failed, ended at its last point; metadata.mlflow.status says what MLflow said.
        status=_STATUSES.get(status, "failed"),
        started_ns=start_ns,
        ended_ns=(end_ms * _MS) if end_ms else -1,
        tags={key: value for key, value in tags.items() if not key.startswith("mlflow.")},
        params=params,
        metadata=metadata,
    )


def _finish(run: ImportedRun) -> None:
    """A run without a start or an end (RUNNING) gets them from its points."""
    times = [
        time for history in run.metrics.values() for time in history.times_ns[:1] + history.times_ns[-1:]
    ]
    if run.started_ns <= 0 and times:
        run.started_ns = min(times)
    if run.ended_ns < 0:
        run.ended_ns = max([run.started_ns, *times])


def _add_artifacts(run: ImportedRun, artifact_uri: str | None, fallback: Path | None) -> None:
    """The run's artifact files, when its artifact location is a local directory (files in S3 or
    another remote store are not fetched: metadata.mlflow.artifact_uri says where they are)."""
    directory: Path | None = None
    if artifact_uri:
        run.metadata["mlflow"]["artifact_uri"] = artifact_uri
        parsed = urlparse(artifact_uri)
        if parsed.scheme == "file":
            directory = Path(unquote(parsed.path))
        elif not parsed.scheme or re.fullmatch(r"[A-Za-z]", parsed.scheme):  # a path (or C:\...)
            directory = Path(artifact_uri)
    if directory is None or not directory.is_dir():
        directory = fallback  # an mlruns directory moved since: its runs' artifacts/ beside meta.yaml
    if directory is None or not directory.is_dir():
        return
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            run.artifacts.append(ImportedArtifact(path, path.relative_to(directory).as_posix()))

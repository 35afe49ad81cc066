"""The canonical store's schema: versioned, created and migrated in one place.

Refs are the keys everywhere (they are stable, readable and already unique). Every record has a place
in `seq`, which is what "capture order" means. Metrics are stored as columns of points per series and
batch, because one row per point costs SQLite more than capture itself (about 70,000 rows/s on these
machines against 750,000 points/s in chunks).
"""

from __future__ import annotations

# PRAGMA application_id: marks the file as ours, so a foreign SQLite file is refused, not modified.
APPLICATION_ID = 0x43545841  # "CTXA"
SCHEMA_VERSION = 1

# version -> statements that bring a database from version-1 to version.
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        """CREATE TABLE projects(
            project_ref TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            created_at TEXT NOT NULL,
            description TEXT,
            tags TEXT
        )""",
        """CREATE TABLE runs(
            run_ref TEXT PRIMARY KEY,
            project_ref TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            description TEXT,
            dataset_ref TEXT,
            code_revision TEXT,
            tags TEXT,
            metadata TEXT,
            config_snapshot TEXT,
            owner_pid INTEGER,
            owner_host TEXT,
            started_key TEXT,
            end_reason TEXT
        )""",
        "CREATE INDEX runs_by_start ON runs(started_key)",
        "CREATE INDEX runs_by_project ON runs(project_ref, started_key)",
        """CREATE TABLE stages(
            stage_ref TEXT PRIMARY KEY,
            run_ref TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            order_index INTEGER
        )""",
        "CREATE INDEX stages_by_run ON stages(run_ref)",
        """CREATE TABLE batches(
            batch_ref TEXT PRIMARY KEY,
            run_ref TEXT NOT NULL,
            stage_ref TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            order_index INTEGER
        )""",
        "CREATE INDEX batches_by_run ON batches(run_ref, stage_ref)",
        """CREATE TABLE samples(
            sample_ref TEXT PRIMARY KEY,
            run_ref TEXT NOT NULL,
            stage_ref TEXT NOT NULL,
            batch_ref TEXT,
            name TEXT NOT NULL,
            observed_at TEXT NOT NULL,
            status TEXT NOT NULL,
            ended_at TEXT,
            retention_class TEXT,
            redaction_profile TEXT
        )""",
        "CREATE INDEX samples_by_run ON samples(run_ref, stage_ref, batch_ref)",
        """CREATE TABLE operations(
            operation_ref TEXT PRIMARY KEY,
            run_ref TEXT NOT NULL,
            stage_ref TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT
        )""",
        "CREATE INDEX operations_by_run ON operations(run_ref)",
        """CREATE TABLE deployments(
            deployment_ref TEXT PRIMARY KEY,
            project_ref TEXT NOT NULL,
            name TEXT NOT NULL,
            status TEXT NOT NULL,
            started_at TEXT NOT NULL,
            ended_at TEXT,
            order_index INTEGER,
            run_ref TEXT,
            artifact_ref TEXT,
            started_key TEXT
        )""",
        "CREATE INDEX deployments_by_project ON deployments(project_ref, started_key)",
        "CREATE INDEX deployments_by_run ON deployments(run_ref)",
        """CREATE TABLE environments(
            run_ref TEXT PRIMARY KEY,
            captured_at TEXT NOT NULL,
            python_version TEXT NOT NULL,
            platform TEXT NOT NULL,
            packages TEXT,
            git_revision TEXT,
            attributes TEXT
        )""",
        """CREATE TABLE relations(
            source_ref TEXT NOT NULL,
            target_ref TEXT NOT NULL,
            relation TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            attributes TEXT,
            PRIMARY KEY(source_ref, target_ref, relation)
        )""",
        "CREATE INDEX relations_by_target ON relations(target_ref)",
        # Events, spans and degraded markers, one row each. Metrics, the bulk of every store, are kept in
        # columns instead (metric_series / metric_chunks below). `seq` is capture order across both.
        # value has no declared type on purpose: ints stay ints and floats stay floats.
        """CREATE TABLE records(
            seq INTEGER PRIMARY KEY,
            record_ref TEXT NOT NULL,
            record_type TEXT NOT NULL,
            run_ref TEXT,
            stage_ref TEXT,
            batch_ref TEXT,
            sample_ref TEXT,
            deployment_ref TEXT,
            observed_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            key TEXT NOT NULL,
            value,
            step INTEGER,
            unit TEXT,
            document TEXT
        )""",
        "CREATE INDEX records_by_run ON records(run_ref, record_type, seq)",
        "CREATE INDEX records_by_ref ON records(record_ref)",
        # Capture order: each stored batch reserves a range of `seq` numbers here.
        "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
        "INSERT INTO counters(name, value) VALUES ('seq', 0)",
        # One row per metric series: where it was captured, its key and the rare fields that every point
        # of it shares, plus running aggregates so "latest value" and "how many" never read the points.
        # Identity columns hold '' rather than NULL, so the UNIQUE constraint sees every series once.
        # last_value has no type affinity: a NaN or infinite last value is its token text ("NaN",
        # "Infinity", "-Infinity"; SQLite would store a bound NaN as NULL). non_finite_count counts the
        # series' NaN and infinite points; first_non_finite_step is the step of the first of them (NULL
        # when there is none, or when that point had no step), for diagnostics.
        """CREATE TABLE metric_series(
            series_id INTEGER PRIMARY KEY,
            run_ref TEXT NOT NULL,
            stage_ref TEXT NOT NULL,
            batch_ref TEXT NOT NULL,
            sample_ref TEXT NOT NULL,
            deployment_ref TEXT NOT NULL,
            key TEXT NOT NULL,
            value_type TEXT NOT NULL,
            unit TEXT NOT NULL,
            extras TEXT NOT NULL,
            point_count INTEGER NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            last_value,
            non_finite_count INTEGER NOT NULL DEFAULT 0,
            first_non_finite_step INTEGER,
            UNIQUE(run_ref, key, stage_ref, batch_ref, sample_ref, deployment_ref, value_type, unit, extras)
        )""",
        "CREATE INDEX metric_series_by_deployment ON metric_series(deployment_ref) "
        "WHERE deployment_ref != ''",
        # The points of one series from one stored batch, as little-endian arrays: point i has capture
        # order seq_base + positions[i]. Captured points are named by the writer's numbering (record ref
        # `record:{owner}.{id_prefix}{ref_base + positions[i]}`, recorded at recorded_ns); points
        # written by hand or replayed from the outbox keep their own refs and times in `explicit`.
        """CREATE TABLE metric_chunks(
            chunk_id INTEGER PRIMARY KEY,
            series_id INTEGER NOT NULL,
            seq_base INTEGER NOT NULL,
            point_count INTEGER NOT NULL,
            positions BLOB NOT NULL,
            observed_ns BLOB,
            point_values BLOB NOT NULL,
            steps BLOB NOT NULL,
            id_prefix TEXT,
            ref_base INTEGER,
            recorded_ns INTEGER,
            explicit TEXT
        )""",
        "CREATE INDEX metric_chunks_by_series ON metric_chunks(series_id, seq_base)",
        # Refs of metric points written by hand, so a second append of one ref is refused.
        "CREATE TABLE explicit_metric_refs(record_ref TEXT PRIMARY KEY, series_id INTEGER NOT NULL)",
        # Outbox batches delivered into this store: a replayed batch is stored once, even after a crash
        # between delivering it and deleting its outbox file (both happen in one transaction here).
        """CREATE TABLE delivered_batches(
            batch_id TEXT PRIMARY KEY,
            delivered_at TEXT NOT NULL
        )""",
        "CREATE INDEX records_by_deployment ON records(deployment_ref) WHERE deployment_ref IS NOT NULL",
        """CREATE TABLE artifacts(
            artifact_ref TEXT PRIMARY KEY,
            run_ref TEXT NOT NULL,
            stage_ref TEXT,
            kind TEXT NOT NULL,
            location_ref TEXT NOT NULL,
            hash_algorithm TEXT NOT NULL,
            hash_value TEXT,
            size_bytes INTEGER,
            created_at TEXT NOT NULL,
            binding_status TEXT NOT NULL,
            source_exists INTEGER NOT NULL,
            attributes TEXT,
            stored_path TEXT
        )""",
        "CREATE INDEX artifacts_by_run ON artifacts(run_ref)",
        "CREATE INDEX artifacts_by_hash ON artifacts(hash_value)",
    ),
}

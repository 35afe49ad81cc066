"""The canonical store's schema: versioned, created and migrated in one place.

Refs are the keys everywhere (they are stable, readable and already unique). Records keep their
insertion order in `seq`, which is what "capture order" means for a metric series.
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
            created_seq INTEGER NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX runs_by_project ON runs(project_ref, started_at)",
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
            artifact_ref TEXT
        )""",
        "CREATE INDEX deployments_by_project ON deployments(project_ref, started_at)",
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
        "CREATE INDEX records_by_series ON records(run_ref, key, seq)",
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

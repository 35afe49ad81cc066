"""The canonical store's schema: versioned, created and migrated in one place.

Every execution of a run is kept: a run row is keyed by its `execution_id`, and everything a run
owns (stages, batches, samples, operations, its environment, records, metric series, artifacts)
is keyed by that id and its own ref, so running a name again, or in two processes at once, adds an
execution beside the others instead of replacing or joining one. `run:{project}.{run}` means the
latest execution (the one that started last). Refs stay the readable names inside an execution.
Every record has a place in `seq`, which is what "capture order" means. Metrics are stored as
columns of points per series and batch, because one row per point costs SQLite more than capture
itself (about 70,000 rows/s on these machines against 750,000 points/s in chunks).
"""

from __future__ import annotations

# PRAGMA application_id: marks the file as ours, so a foreign SQLite file is refused, not modified.
APPLICATION_ID = 0x43545841  # "CTXA"
SCHEMA_VERSION = 6

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


# The tables that schema 2 rebuilds, as they are now; a run-owned table gains `execution_id` first.
# Why a scope ended, the exception if one did, and its name as typed (`name` holds the ref component).
_SCOPE_COLUMNS = "end_reason TEXT, failure TEXT, display_name TEXT"

# The latest execution of a run ref is the one that started last (ties: the one stored last).
_LATEST_OF_NEW = (
    "(SELECT rowid FROM runs AS other WHERE other.run_ref = NEW.run_ref "
    "ORDER BY other.started_key DESC, other.rowid DESC LIMIT 1)"
)

_SCHEMA_2 = (
    f"""CREATE TABLE runs_2(
        execution_id TEXT PRIMARY KEY NOT NULL,
        run_ref TEXT NOT NULL,
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
        owner_lock INTEGER NOT NULL DEFAULT 0,
        started_key TEXT,
        execution_number INTEGER NOT NULL DEFAULT 1,
        latest INTEGER NOT NULL DEFAULT 1,
        {_SCOPE_COLUMNS}
    )""",
    # Executions of schema 1 (one per ref) get ids that say where they came from.
    """INSERT INTO runs_2 (execution_id, run_ref, project_ref, name, status, started_at, ended_at,
        description, dataset_ref, code_revision, tags, metadata, config_snapshot, owner_pid, owner_host,
        started_key, end_reason)
        SELECT 'v1-' || rowid, run_ref, project_ref, name, status, started_at, ended_at, description,
        dataset_ref, code_revision, tags, metadata, config_snapshot, owner_pid, owner_host, started_key,
        end_reason FROM runs ORDER BY rowid""",
    # Every row below is matched to its execution by run_ref: without this index the copies below
    # take minutes on a store of thousands of runs (a scan of runs_2 per row).
    "CREATE INDEX runs_2_by_ref ON runs_2(run_ref)",
    f"""CREATE TABLE stages_2(
        execution_id TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        order_index INTEGER,
        {_SCOPE_COLUMNS},
        PRIMARY KEY(execution_id, stage_ref)
    )""",
    f"""CREATE TABLE batches_2(
        execution_id TEXT NOT NULL,
        batch_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        order_index INTEGER,
        {_SCOPE_COLUMNS},
        PRIMARY KEY(execution_id, batch_ref)
    )""",
    f"""CREATE TABLE samples_2(
        execution_id TEXT NOT NULL,
        sample_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        batch_ref TEXT,
        name TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        status TEXT NOT NULL,
        ended_at TEXT,
        retention_class TEXT,
        redaction_profile TEXT,
        {_SCOPE_COLUMNS},
        PRIMARY KEY(execution_id, sample_ref)
    )""",
    f"""CREATE TABLE operations_2(
        execution_id TEXT NOT NULL,
        operation_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        {_SCOPE_COLUMNS},
        PRIMARY KEY(execution_id, operation_ref)
    )""",
    """CREATE TABLE environments_2(
        execution_id TEXT PRIMARY KEY NOT NULL,
        run_ref TEXT NOT NULL,
        captured_at TEXT NOT NULL,
        python_version TEXT NOT NULL,
        platform TEXT NOT NULL,
        packages TEXT,
        git_revision TEXT,
        attributes TEXT
    )""",
    # Series of a run-less deployment have execution_id ''. Identity columns hold '' rather than NULL,
    # so the UNIQUE constraint sees every series once. last_value has no type affinity: a NaN or
    # infinite last value is its token text ("NaN", "Infinity", "-Infinity"; SQLite would store a
    # bound NaN as NULL). non_finite_count counts the series' NaN and infinite points;
    # first_non_finite_step is the step of the first of them (NULL when there is none, or when that
    # point had no step), for diagnostics.
    """CREATE TABLE metric_series_2(
        series_id INTEGER PRIMARY KEY,
        execution_id TEXT NOT NULL,
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
        UNIQUE(execution_id, run_ref, key, stage_ref, batch_ref, sample_ref, deployment_ref, value_type,
            unit, extras)
    )""",
    # What schema 1 held moves over, each row to the one execution of its run.
    """INSERT INTO stages_2 SELECT coalesce(r.execution_id, ''), s.stage_ref, s.run_ref, s.name, s.status,
        s.started_at, s.ended_at, s.order_index, NULL, NULL, NULL
        FROM stages s LEFT JOIN runs_2 r ON r.run_ref = s.run_ref ORDER BY s.rowid""",
    """INSERT INTO batches_2 SELECT coalesce(r.execution_id, ''), b.batch_ref, b.run_ref, b.stage_ref,
        b.name, b.status, b.started_at, b.ended_at, b.order_index, NULL, NULL, NULL
        FROM batches b LEFT JOIN runs_2 r ON r.run_ref = b.run_ref ORDER BY b.rowid""",
    """INSERT INTO samples_2 SELECT coalesce(r.execution_id, ''), s.sample_ref, s.run_ref, s.stage_ref,
        s.batch_ref, s.name, s.observed_at, s.status, s.ended_at, s.retention_class, s.redaction_profile,
        NULL, NULL, NULL FROM samples s LEFT JOIN runs_2 r ON r.run_ref = s.run_ref ORDER BY s.rowid""",
    """INSERT INTO operations_2 SELECT coalesce(r.execution_id, ''), o.operation_ref, o.run_ref,
        o.stage_ref, o.name, o.status, o.started_at, o.ended_at, NULL, NULL, NULL
        FROM operations o LEFT JOIN runs_2 r ON r.run_ref = o.run_ref ORDER BY o.rowid""",
    """INSERT INTO environments_2 SELECT coalesce(r.execution_id, 'v1-orphan-' || e.rowid), e.run_ref,
        e.captured_at,
        e.python_version, e.platform, e.packages, e.git_revision, e.attributes
        FROM environments e LEFT JOIN runs_2 r ON r.run_ref = e.run_ref ORDER BY e.rowid""",
    """INSERT INTO metric_series_2 (series_id, execution_id, run_ref, stage_ref, batch_ref, sample_ref,
        deployment_ref, key, value_type, unit, extras, point_count, first_seq, last_seq, last_value)
        SELECT m.series_id, coalesce(r.execution_id, ''), m.run_ref, m.stage_ref, m.batch_ref,
        m.sample_ref, m.deployment_ref, m.key, m.value_type, m.unit, m.extras, m.point_count, m.first_seq,
        m.last_seq, m.last_value FROM metric_series m LEFT JOIN runs_2 r ON r.run_ref = m.run_ref""",
    "ALTER TABLE records ADD COLUMN execution_id TEXT",
    "UPDATE records SET execution_id = "
    "(SELECT execution_id FROM runs_2 WHERE runs_2.run_ref = records.run_ref)",
    "DROP INDEX records_by_run",
    "CREATE INDEX records_by_execution ON records(execution_id, record_type, seq)",
    # An artifact belongs to one execution; a ref given by hand (artifact_ref=...) may be registered
    # again by the next execution of the run, which must not take it from the earlier one.
    """CREATE TABLE artifacts_2(
        execution_id TEXT NOT NULL,
        artifact_ref TEXT NOT NULL,
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
        stored_path TEXT,
        PRIMARY KEY(execution_id, artifact_ref)
    )""",
    """INSERT INTO artifacts_2 SELECT coalesce(r.execution_id, ''), a.artifact_ref, a.run_ref, a.stage_ref,
        a.kind, a.location_ref, a.hash_algorithm, a.hash_value, a.size_bytes, a.created_at,
        a.binding_status, a.source_exists, a.attributes, a.stored_path
        FROM artifacts a LEFT JOIN runs_2 r ON r.run_ref = a.run_ref ORDER BY a.rowid""",
    # The execution a deployment is of (its run_ref names the run, this the execution of it).
    "ALTER TABLE deployments ADD COLUMN run_execution_id TEXT",
    "ALTER TABLE deployments ADD COLUMN display_name TEXT",
    # A deployment is captured by one process, like a run: who, so one killed can be closed too.
    "ALTER TABLE deployments ADD COLUMN owner_id TEXT",
    "ALTER TABLE deployments ADD COLUMN owner_pid INTEGER",
    "ALTER TABLE deployments ADD COLUMN owner_host TEXT",
    "ALTER TABLE deployments ADD COLUMN end_reason TEXT",
    "ALTER TABLE deployments ADD COLUMN failure TEXT",
    "ALTER TABLE projects ADD COLUMN display_name TEXT",
    "UPDATE deployments SET run_execution_id = "
    "(SELECT execution_id FROM runs_2 WHERE runs_2.run_ref = deployments.run_ref)",
    *(
        statement
        for table in (
            "runs",
            "stages",
            "batches",
            "samples",
            "operations",
            "environments",
            "metric_series",
            "artifacts",
        )
        for statement in (f"DROP TABLE {table}", f"ALTER TABLE {table}_2 RENAME TO {table}")
    ),
    "CREATE INDEX runs_by_ref ON runs(run_ref, started_key)",
    "CREATE INDEX runs_by_start ON runs(started_key)",
    "CREATE INDEX runs_by_project ON runs(project_ref, started_key)",
    "CREATE INDEX runs_open ON runs(status) WHERE status = 'open'",
    "CREATE INDEX batches_by_stage ON batches(execution_id, stage_ref)",
    "CREATE INDEX samples_by_stage ON samples(execution_id, stage_ref, batch_ref)",
    "CREATE INDEX metric_series_by_deployment ON metric_series(deployment_ref) WHERE deployment_ref != ''",
    "CREATE INDEX artifacts_by_ref ON artifacts(artifact_ref)",
    "CREATE INDEX artifacts_by_hash ON artifacts(hash_value)",
    "CREATE INDEX runs_latest ON runs(latest, started_key)",
    "CREATE INDEX runs_by_number ON runs(run_ref, execution_number)",
    "CREATE INDEX runs_by_display_name ON runs(display_name) WHERE display_name IS NOT NULL",
    # Executions are numbered in the order they are stored (`run@2` is the second: a number handed
    # out never changes meaning, whatever starts or clocks later runs have), and the one that started
    # last is marked latest (what `run:p.r` names). Triggers keep both, whoever writes the table, in
    # a few index lookups per insert, so a listing reads columns instead of numbering runs.
    """CREATE TRIGGER runs_numbered_after_insert AFTER INSERT ON runs BEGIN
        UPDATE runs SET execution_number = 1 + coalesce((SELECT max(execution_number) FROM runs AS other
            WHERE other.run_ref = NEW.run_ref AND other.rowid != NEW.rowid), 0)
        WHERE rowid = NEW.rowid;
        UPDATE runs SET latest = (rowid = """
    + _LATEST_OF_NEW
    + """) WHERE run_ref = NEW.run_ref AND (latest OR rowid = NEW.rowid);
    END""",
    # A start written again by hand (put_run) may change which one is latest.
    """CREATE TRIGGER runs_latest_after_update AFTER UPDATE OF started_key ON runs BEGIN
        UPDATE runs SET latest = (rowid = """
    + _LATEST_OF_NEW
    + """) WHERE run_ref = NEW.run_ref;
    END""",
)

MIGRATIONS[2] = _SCHEMA_2

# Schema 3: a metric chunk's columns may be encoded (progressions, zstd of shuffled bytes; see
# store/_chunk_codec.py), which `encoding` says; chunks of schema 2 keep NULL there and stay bare
# arrays, so the migration rewrites nothing. The bump itself keeps an older Contexta, which would read
# an encoded column as an array, away from the store ("newer than this Contexta").
MIGRATIONS[3] = ("ALTER TABLE metric_chunks ADD COLUMN encoding INTEGER",)

# Schema 4: each series keeps its smallest and largest value (NaN left out; NULL when every point is
# NaN), so run search answers `min(metrics.loss) < 0.1` over thousands of runs without reading a point.
# The index by key covers every column a search reads, so one metric across 10,000 runs is one range
# of the index (8 ms) rather than 10,000 row lookups (25 ms), for about a tenth more store size. Series
# written before schema 4 have `extremes_known` 0: their extremes are read from their points when
# asked (see query/_run_values.py).
MIGRATIONS[4] = (
    "ALTER TABLE metric_series ADD COLUMN min_value",
    "ALTER TABLE metric_series ADD COLUMN max_value",
    "ALTER TABLE metric_series ADD COLUMN extremes_known INTEGER NOT NULL DEFAULT 0",
    "CREATE INDEX metric_series_by_key ON metric_series(key, deployment_ref, execution_id, stage_ref, "
    "last_seq, last_value, min_value, max_value, extremes_known)",
)

# Schema 5: what people decide about a run after capture (store/_run_changes.py), kept beside what was
# captured. `tags` stays the run's effective tags (captured ones with these edits applied), so
# readers filter on one column; `tag_edits` is the edits alone, as a JSON merge patch (a name set to
# a value, or to null when removed), which capture re-applies whenever it writes the run's tags again
# (its close carries them), so a decision outlives the process still capturing the run. `notes` is
# a JSON list of {"at", "text"}; `archived_at` is when it was hidden from default listings.
MIGRATIONS[5] = (
    "ALTER TABLE runs ADD COLUMN tag_edits TEXT",
    "ALTER TABLE runs ADD COLUMN notes TEXT",
    "ALTER TABLE runs ADD COLUMN archived_at TEXT",
)

# Schema 6: each metric chunk keeps a summary for charts (store/_chunk_summary.py): whether its steps
# and times are in order, their range, and the smallest and largest value of every block of points,
# so a 10,000,000-point series is downsampled to a chart's width without walking every point
# (query/_series_view.py). Chunks of earlier schemas keep NULL and are summarised when read.
MIGRATIONS[6] = ("ALTER TABLE metric_chunks ADD COLUMN summary BLOB",)

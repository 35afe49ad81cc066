"""The canonical store's schema in PostgreSQL: the same tables, columns and meanings as the SQLite
schema at version `SCHEMA_VERSION` (see `_schema.py`), typed for PostgreSQL.

Differences, each for a reason:
- Integers are `bigint` (SQLite's are 64-bit); flags stay integers 0/1, as the queries compare them.
- Values whose type varies (a record's value, a series' last/min/max) are `numeric`: ints stay ints
  and floats keep every digit (the connection passes floats as exact decimal text and reads numerics
  back as int or float, see `_pg_database.py`); NaN and infinities are numerics too.
- Text columns sort and compare byte by byte (`COLLATE "C"`), as SQLite's BINARY does, whatever the
  database's default collation (often en_US, which sorts `B` after `a` and puts `;` before `:`):
  ORDER BY and the range of batch ids a sync looks up (`sync:<id>:` to `sync:<id>;`) depend on it.
- Binary columns are `bytea`. Every table has a `rowid` column, which the queries use as SQLite's
  implicit one: an identity where SQLite has none of its own, the integer key where it has one.
- The two triggers that number executions and mark the latest one are PL/pgSQL, serialised per run
  ref by a row lock (`run_ref_locks`), so two machines opening the same run name at once still
  number their executions 1 and 2.
- SQLite's functions the queries use and PostgreSQL lacks are defined here under SQLite's names:
  `json_patch` (RFC 7396), `instr`, `total`, two-argument `min`/`max`, and `contexta_json_each`,
  which `_pg_sql.py` renames `json_each` to (PostgreSQL has a `json_each` of its own). Params and
  tags are searched with jsonb's own `#>` (see query/_run_values.py), not SQLite's `json_extract`.
"""

from __future__ import annotations

import re

__all__ = ["PG_MIGRATIONS", "PG_SCHEMA", "PG_SCHEMA_VERSION", "table_columns"]

PG_SCHEMA_VERSION = 7

_SCOPE = "end_reason TEXT, failure TEXT, display_name TEXT"

_TABLE_SCHEMA: tuple[str, ...] = (
    """CREATE TABLE projects(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        project_ref TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at TEXT NOT NULL,
        description TEXT,
        tags TEXT,
        display_name TEXT
    )""",
    f"""CREATE TABLE runs(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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
        owner_pid BIGINT,
        owner_host TEXT,
        owner_lock BIGINT NOT NULL DEFAULT 0,
        started_key TEXT,
        execution_number BIGINT NOT NULL DEFAULT 1,
        latest BIGINT NOT NULL DEFAULT 1,
        {_SCOPE},
        tag_edits TEXT,
        notes TEXT,
        archived_at TEXT
    )""",
    "CREATE INDEX runs_by_ref ON runs(run_ref, started_key)",
    "CREATE INDEX runs_by_start ON runs(started_key)",
    "CREATE INDEX runs_by_project ON runs(project_ref, started_key)",
    "CREATE INDEX runs_open ON runs(status) WHERE status = 'open'",
    "CREATE INDEX runs_latest ON runs(latest, started_key)",
    "CREATE INDEX runs_by_number ON runs(run_ref, execution_number)",
    "CREATE INDEX runs_by_display_name ON runs(display_name) WHERE display_name IS NOT NULL",
    f"""CREATE TABLE stages(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        execution_id TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        order_index BIGINT,
        {_SCOPE},
        PRIMARY KEY(execution_id, stage_ref)
    )""",
    f"""CREATE TABLE batches(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        execution_id TEXT NOT NULL,
        batch_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        order_index BIGINT,
        {_SCOPE},
        PRIMARY KEY(execution_id, batch_ref)
    )""",
    "CREATE INDEX batches_by_stage ON batches(execution_id, stage_ref)",
    f"""CREATE TABLE samples(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
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
        {_SCOPE},
        PRIMARY KEY(execution_id, sample_ref)
    )""",
    "CREATE INDEX samples_by_stage ON samples(execution_id, stage_ref, batch_ref)",
    f"""CREATE TABLE operations(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        execution_id TEXT NOT NULL,
        operation_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        {_SCOPE},
        PRIMARY KEY(execution_id, operation_ref)
    )""",
    """CREATE TABLE deployments(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        deployment_ref TEXT PRIMARY KEY,
        project_ref TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        started_at TEXT NOT NULL,
        ended_at TEXT,
        order_index BIGINT,
        run_ref TEXT,
        artifact_ref TEXT,
        started_key TEXT,
        run_execution_id TEXT,
        display_name TEXT,
        owner_id TEXT,
        owner_pid BIGINT,
        owner_host TEXT,
        end_reason TEXT,
        failure TEXT
    )""",
    "CREATE INDEX deployments_by_project ON deployments(project_ref, started_key)",
    "CREATE INDEX deployments_by_run ON deployments(run_ref)",
    """CREATE TABLE environments(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        execution_id TEXT PRIMARY KEY NOT NULL,
        run_ref TEXT NOT NULL,
        captured_at TEXT NOT NULL,
        python_version TEXT NOT NULL,
        platform TEXT NOT NULL,
        packages TEXT,
        git_revision TEXT,
        attributes TEXT
    )""",
    """CREATE TABLE relations(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        source_ref TEXT NOT NULL,
        target_ref TEXT NOT NULL,
        relation TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        attributes TEXT,
        PRIMARY KEY(source_ref, target_ref, relation)
    )""",
    "CREATE INDEX relations_by_target ON relations(target_ref)",
    """CREATE TABLE records(
        seq BIGINT PRIMARY KEY,
        rowid BIGINT GENERATED ALWAYS AS (seq) STORED,
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
        value NUMERIC,
        step BIGINT,
        unit TEXT,
        document TEXT,
        execution_id TEXT
    )""",
    "CREATE INDEX records_by_ref ON records(record_ref)",
    "CREATE INDEX records_by_execution ON records(execution_id, record_type, seq)",
    "CREATE INDEX records_by_deployment ON records(deployment_ref) WHERE deployment_ref IS NOT NULL",
    "CREATE TABLE counters(name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    "INSERT INTO counters(name, value) VALUES ('seq', 0)",
    """CREATE TABLE metric_series(
        series_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        rowid BIGINT GENERATED ALWAYS AS (series_id) STORED,
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
        point_count BIGINT NOT NULL,
        first_seq BIGINT NOT NULL,
        last_seq BIGINT NOT NULL,
        last_value NUMERIC,
        non_finite_count BIGINT NOT NULL DEFAULT 0,
        first_non_finite_step BIGINT,
        min_value NUMERIC,
        max_value NUMERIC,
        extremes_known BIGINT NOT NULL DEFAULT 0,
        UNIQUE(execution_id, run_ref, key, stage_ref, batch_ref, sample_ref, deployment_ref, value_type,
            unit, extras)
    )""",
    "CREATE INDEX metric_series_by_deployment ON metric_series(deployment_ref) WHERE deployment_ref != ''",
    "CREATE INDEX metric_series_by_key ON metric_series(key, deployment_ref, execution_id, stage_ref, "
    "last_seq) INCLUDE (last_value, min_value, max_value, extremes_known)",
    # Schema 7: the runs whose latest value of a key passes a bound (query/_run_values.py, `metric_bound`)
    # as one range of this index, not a scan of every series of the key: 24 ms to 2 ms at 100,000 runs.
    "CREATE INDEX metric_series_by_value ON metric_series(key, deployment_ref, last_value) "
    "INCLUDE (execution_id)",
    """CREATE TABLE metric_chunks(
        chunk_id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        rowid BIGINT GENERATED ALWAYS AS (chunk_id) STORED,
        series_id BIGINT NOT NULL,
        seq_base BIGINT NOT NULL,
        point_count BIGINT NOT NULL,
        positions BYTEA NOT NULL,
        observed_ns BYTEA,
        point_values BYTEA NOT NULL,
        steps BYTEA NOT NULL,
        id_prefix TEXT,
        ref_base BIGINT,
        recorded_ns BIGINT,
        explicit TEXT,
        encoding BIGINT,
        summary BYTEA
    )""",
    "CREATE INDEX metric_chunks_by_series ON metric_chunks(series_id, seq_base)",
    "CREATE TABLE explicit_metric_refs(record_ref TEXT PRIMARY KEY, series_id BIGINT NOT NULL)",
    "CREATE TABLE delivered_batches(batch_id TEXT PRIMARY KEY, delivered_at TEXT NOT NULL)",
    """CREATE TABLE artifacts(
        rowid BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        execution_id TEXT NOT NULL,
        artifact_ref TEXT NOT NULL,
        run_ref TEXT NOT NULL,
        stage_ref TEXT,
        kind TEXT NOT NULL,
        location_ref TEXT NOT NULL,
        hash_algorithm TEXT NOT NULL,
        hash_value TEXT,
        size_bytes BIGINT,
        created_at TEXT NOT NULL,
        binding_status TEXT NOT NULL,
        source_exists BIGINT NOT NULL,
        attributes TEXT,
        stored_path TEXT,
        PRIMARY KEY(execution_id, artifact_ref)
    )""",
    "CREATE INDEX artifacts_by_ref ON artifacts(artifact_ref)",
    "CREATE INDEX artifacts_by_hash ON artifacts(hash_value)",
)
_TEXT = re.compile(r"(?<=\w )TEXT\b")
PG_SCHEMA: tuple[str, ...] = (
    *(
        _TEXT.sub('TEXT COLLATE "C"', statement) if statement.startswith("CREATE TABLE") else statement
        for statement in _TABLE_SCHEMA
    ),
    # -- the execution triggers ------------------------------------------------------------------
    # One row per run ref, locked by the trigger that numbers a new execution of it: two machines
    # opening the same run name at once are numbered one after the other. A row lock, not an advisory
    # lock: those take shared memory per lock until commit, and a sync batch may open thousands of runs.
    "CREATE TABLE run_ref_locks(run_ref TEXT PRIMARY KEY)",
    """CREATE FUNCTION contexta_mark_latest(ref TEXT) RETURNS void LANGUAGE sql AS $$
        UPDATE runs SET latest = (rowid = (SELECT other.rowid FROM runs AS other WHERE other.run_ref = ref
            ORDER BY other.started_key DESC, other.rowid DESC LIMIT 1))::int
        WHERE run_ref = ref
    $$""",
    """CREATE FUNCTION contexta_runs_numbered() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO run_ref_locks(run_ref) VALUES (NEW.run_ref)
            ON CONFLICT (run_ref) DO UPDATE SET run_ref = excluded.run_ref;
        UPDATE runs SET execution_number = 1 + coalesce((SELECT max(execution_number) FROM runs AS other
            WHERE other.run_ref = NEW.run_ref AND other.rowid != NEW.rowid), 0)
        WHERE rowid = NEW.rowid;
        PERFORM contexta_mark_latest(NEW.run_ref);
        RETURN NULL;
    END
    $$""",
    "CREATE TRIGGER runs_numbered_after_insert AFTER INSERT ON runs FOR EACH ROW "
    "EXECUTE FUNCTION contexta_runs_numbered()",
    """CREATE FUNCTION contexta_runs_restarted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        PERFORM contexta_mark_latest(NEW.run_ref);
        RETURN NULL;
    END
    $$""",
    "CREATE TRIGGER runs_latest_after_update AFTER UPDATE OF started_key ON runs FOR EACH ROW "
    "EXECUTE FUNCTION contexta_runs_restarted()",
    # -- SQLite's functions, as the queries use them ----------------------------------------------
    # JSON text as jsonb. A NUL in a captured string is stored escaped (\u0000), which JSON allows and
    # jsonb refuses (text cannot hold NUL): read as U+FFFD, so one such value never fails a query.
    """CREATE FUNCTION contexta_jsonb(doc TEXT) RETURNS JSONB LANGUAGE sql IMMUTABLE AS $$
        SELECT replace(doc, '\\u0000', '\\ufffd')::jsonb
    $$""",
    """CREATE FUNCTION contexta_json_patch(target JSONB, patch JSONB) RETURNS JSONB LANGUAGE plpgsql
    IMMUTABLE AS $$
    DECLARE
        result JSONB;
        item RECORD;
    BEGIN
        IF patch IS NULL OR jsonb_typeof(patch) != 'object' THEN
            RETURN patch;
        END IF;
        result := CASE WHEN target IS NOT NULL AND jsonb_typeof(target) = 'object' THEN target
            ELSE '{}'::jsonb END;
        FOR item IN SELECT key, value FROM jsonb_each(patch) LOOP
            IF jsonb_typeof(item.value) = 'null' THEN
                result := result - item.key;
            ELSE
                result := jsonb_set(result, ARRAY[item.key],
                    contexta_json_patch(result -> item.key, item.value), TRUE);
            END IF;
        END LOOP;
        RETURN result;
    END
    $$""",
    """CREATE FUNCTION json_patch(target TEXT, patch TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
        SELECT contexta_json_patch(contexta_jsonb(target), contexta_jsonb(patch))::text
    $$""",
    """CREATE FUNCTION instr(haystack TEXT, needle TEXT) RETURNS INTEGER LANGUAGE sql IMMUTABLE AS $$
        SELECT strpos(haystack, needle)
    $$""",
    "CREATE AGGREGATE total(DOUBLE PRECISION) (SFUNC = float8pl, STYPE = float8, INITCOND = '0')",
    "CREATE AGGREGATE total(NUMERIC) (SFUNC = numeric_add, STYPE = numeric, INITCOND = '0')",
    # total(a = b) counts the rows where a comparison holds, as SQLite's 0/1 booleans add up
    """CREATE FUNCTION contexta_add_true(sum DOUBLE PRECISION, flag BOOLEAN) RETURNS DOUBLE PRECISION
    LANGUAGE sql IMMUTABLE AS $$ SELECT sum + CASE WHEN flag THEN 1 ELSE 0 END $$""",
    "CREATE AGGREGATE total(BOOLEAN) (SFUNC = contexta_add_true, STYPE = float8, INITCOND = '0')",
    """CREATE FUNCTION min(a ANYELEMENT, b ANYELEMENT) RETURNS ANYELEMENT LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE least(a, b) END
    $$""",
    """CREATE FUNCTION max(a ANYELEMENT, b ANYELEMENT) RETURNS ANYELEMENT LANGUAGE sql IMMUTABLE AS $$
        SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL ELSE greatest(a, b) END
    $$""",
    """CREATE FUNCTION contexta_json_each(doc TEXT) RETURNS TABLE(value TEXT) LANGUAGE sql IMMUTABLE AS $$
        SELECT json_array_elements_text(doc::json)
    $$""",
)


def table_columns() -> dict[str, frozenset[str]]:
    """Each table's column names, read off the statements above."""
    columns: dict[str, frozenset[str]] = {}
    for statement in PG_SCHEMA:
        created = re.match(r"CREATE TABLE (\w+)\((.*)\)\s*$", statement, re.DOTALL)
        if created is None:
            continue
        names = re.findall(r"^\s*(\w+)\s+[A-Z]", created[2], re.MULTILINE)
        names += re.findall(r"(?:^|,)\s*(\w+)\s+(?:TEXT|BIGINT)", created[2])
        columns[created[1]] = frozenset(name for name in names if name not in ("PRIMARY", "UNIQUE"))
    return columns


# What brings a store of an earlier schema up to each version: applied in order, in one transaction,
# by the first process that opens it for writing (`_pg_database.py`). A reader of an older store
# reads it as it is: no version so far changed what a query may assume, only how fast it runs.
PG_MIGRATIONS: dict[int, tuple[str, ...]] = {
    7: (
        "CREATE INDEX IF NOT EXISTS metric_series_by_value ON metric_series(key, deployment_ref, last_value) "
        "INCLUDE (execution_id)",
    ),
}

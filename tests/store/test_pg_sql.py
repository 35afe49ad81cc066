"""The store's SQLite statements as PostgreSQL takes them (store/_pg_sql.py): no server needed."""

from __future__ import annotations

from contexta.store._pg_sql import to_postgres


def test_parameters_become_psycopgs_and_text_in_quotes_is_left_alone() -> None:
    statement = to_postgres("SELECT a FROM t WHERE b = ? AND c = 'it''s 50%? off' AND \"odd?\" = ?")
    assert statement.text == "SELECT a FROM t WHERE b = %s AND c = 'it''s 50%%? off' AND \"odd?\" = %s"
    assert statement.order is None


def test_numbered_parameters_pass_the_callers_values_in_sqlites_order() -> None:
    """SQLite numbers a plain `?` one past the largest number before it; `?N` may repeat."""
    statement = to_postgres("UPDATE t SET a = ?, b = ?, c = CASE WHEN ?4 THEN c ELSE ?3 END WHERE d = ?4")
    assert statement.text == "UPDATE t SET a = %s, b = %s, c = CASE WHEN %s THEN c ELSE %s END WHERE d = %s"
    assert statement.order == (0, 1, 3, 2, 3)


def test_insert_or_ignore_and_an_upserts_bare_columns() -> None:
    assert to_postgres("INSERT OR IGNORE INTO delivered_batches (batch_id) VALUES (?)").text == (
        "INSERT INTO delivered_batches (batch_id) VALUES (%s) ON CONFLICT DO NOTHING"
    )
    upsert = to_postgres(
        "INSERT INTO projects (project_ref, name) VALUES (?, ?) ON CONFLICT (project_ref) DO UPDATE SET "
        "display_name = coalesce(display_name, excluded.display_name), name = excluded.name"
    )
    assert upsert.text.endswith(
        "DO UPDATE SET display_name = coalesce(projects.display_name, excluded.display_name), "
        "name = excluded.name"
    )


def test_sqlites_json_path_operator_and_json_each_and_begin() -> None:
    assert to_postgres("SELECT document ->> '$.payload.level' FROM records").text == (
        "SELECT (contexta_jsonb(document) #>> '{payload,level}') FROM records"
    )
    assert to_postgres("SELECT 1 WHERE x IN (SELECT value FROM json_each(?))").text == (
        "SELECT 1 WHERE x IN (SELECT value FROM contexta_json_each(%s))"
    )
    assert to_postgres("BEGIN IMMEDIATE").text == "BEGIN"
    assert to_postgres("BEGIN").text == "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"

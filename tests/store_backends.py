"""Run the store, query and report tests on either backend: `pytest --store-backend=postgresql`.

The suites are written once. Under `--store-backend=postgresql` every store a test opens (a
workspace's, through `Contexta` or `WorkspaceReader`, or the `store_db` fixture's) lives in a
PostgreSQL database of its own, named after the path its SQLite file would have had: reopening the
same workspace reaches the same database, two workspaces never share one. The server is the one
`CONTEXTA_TEST_POSTGRES_URL` names (an admin URL; `.ci/run` starts one). Tests that are about the
SQLite file itself (WAL, moved or damaged files, read-only mounts, backups of the file) are marked
`sqlite_only` and skipped there, with that reason.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import contexta._facade
import contexta._workspace_reader
import contexta.cli._workspace
import contexta.store._backend
from contexta.store._database import StoreDatabase

ADMIN_URL_VARIABLE = "CONTEXTA_TEST_POSTGRES_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the canonical store every test opens: the SQLite file (default) or PostgreSQL "
        f"(a database per store on the server {ADMIN_URL_VARIABLE} names)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only(reason): a test of the SQLite file itself, skipped on other backends"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--store-backend") == "sqlite":
        return
    for item in items:
        marker = item.get_closest_marker("sqlite_only")
        if marker is not None:
            reason = marker.kwargs.get("reason") or (marker.args[0] if marker.args else "SQLite file only")
            item.add_marker(pytest.mark.skip(reason=f"sqlite only: {reason}"))


class _Databases:
    """One PostgreSQL database per store path, created on first use and dropped at the end."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.created: list[str] = []

    def url_for(self, path: Path) -> str:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = "store_" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20]
        if name not in self.created:
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    admin.execute(f'CREATE DATABASE "{name}"')
            self.created.append(name)
        parts = conninfo_to_dict(self.admin_url)
        parts["dbname"] = name
        url = make_conninfo("", **parts)
        return url

    def holds(self, path: Path) -> bool:
        """Whether a store was ever opened for `path` (what the SQLite file's existence tells)."""
        name = "store_" + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20]
        return name in self.created

    def drop_all(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            for name in self.created:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def store_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.config.getoption("--store-backend")
    return backend


@pytest.fixture(scope="session", autouse=True)
def _stores_on_the_chosen_backend(store_backend: str) -> Iterator[_Databases | None]:
    if store_backend == "sqlite":
        yield None
        return
    admin_url = os.environ.get(ADMIN_URL_VARIABLE)
    if not admin_url:
        pytest.exit(f"--store-backend=postgresql needs {ADMIN_URL_VARIABLE} (an admin URL)", returncode=4)
    databases = _Databases(admin_url)
    original = contexta.store._backend.open_store_database

    def open_on_postgres(path: Path, url: str | None, *, read_only: bool = False) -> StoreDatabase:
        return original(path, url or databases.url_for(path), read_only=read_only)

    patched: list[tuple[Any, Any]] = [
        (module, module.open_store_database)
        for module in (contexta.store._backend, contexta._facade, contexta._workspace_reader)
    ]
    original_require = contexta._workspace_reader.require_store_file

    def require_store(root: Path, store: Path) -> None:
        if not databases.holds(store):
            original_require(root, store)  # says why there is nothing to read, as for a file

    for module, _ in patched:
        module.open_store_database = open_on_postgres
    for module in (contexta._workspace_reader, contexta.cli._workspace):
        module.require_store_file = require_store
    try:
        yield databases
    finally:
        for module, function in patched:
            module.open_store_database = function
        for module in (contexta._workspace_reader, contexta.cli._workspace):
            module.require_store_file = original_require
        databases.drop_all()


def another_connection_to(database: StoreDatabase) -> StoreDatabase:
    """A second database object on the same store (as another process would open it)."""
    url = getattr(database, "url", None)
    return contexta.store._backend.open_store_database(database.path, url)


def open_test_store(path: Path) -> StoreDatabase:
    """The store at `path` on the backend the run uses (what `store_db` gives)."""
    return contexta.store._backend.open_store_database(path, None)

"""Run the store, query and report tests on either backend: `pytest --store-backend=postgresql`.

The suites are written once. Under `--store-backend=postgresql` every store a test opens (a
workspace's, through `Contexta` or `WorkspaceReader`, or the `store_db` fixture's) lives in a
PostgreSQL database of its own, named after the path its SQLite file would have had: reopening the
same workspace reaches the same database, two workspaces never share one. The server is the
`postgres_server` fixture's (TEST_POSTGRES_URL, or one started for the session). Tests about the
SQLite file itself (WAL, moved or damaged files, read-only mounts, backups of the file) are marked
`sqlite_only` and skipped there, with that reason.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import contexta.store._backend
from contexta.store._database import StoreDatabase
from store_backend_redirect import DATABASE_PREFIX, Redirect, install

# What child processes read at start-up (tests/store_backend_children/sitecustomize.py).
CHILD_BACKEND_VARIABLE = "TEST_STORE_BACKEND"
CHILD_ADMIN_URL_VARIABLE = "TEST_STORE_ADMIN_URL"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--store-backend",
        choices=("sqlite", "postgresql"),
        default="sqlite",
        help="the canonical store every test opens: the SQLite file (default) or PostgreSQL "
        "(a database per store on the postgres_server fixture's server)",
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


@pytest.fixture(scope="session")
def store_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.config.getoption("--store-backend")
    return backend


@pytest.fixture(scope="session", autouse=True)
def _stores_on_the_chosen_backend(
    store_backend: str, request: pytest.FixtureRequest
) -> Iterator[Redirect | None]:
    if store_backend == "sqlite":
        yield None
        return
    admin_url: str = request.getfixturevalue("postgres_server").admin_url
    redirect = install(admin_url, dashboard=True)
    # Child processes (a second writer, a CLI run, a process killed mid-capture) redirect the same way.
    children = str(Path(__file__).parent / "store_backend_children")
    overrides = {
        "PYTHONPATH": os.pathsep.join(filter(None, (children, os.environ.get("PYTHONPATH")))),
        CHILD_BACKEND_VARIABLE: "postgresql",
        CHILD_ADMIN_URL_VARIABLE: admin_url,
    }
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield redirect
    finally:
        redirect.unpatch()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _drop_test_databases(admin_url)


def _drop_test_databases(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        names = [
            row[0]
            for row in admin.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", (DATABASE_PREFIX + "%",)
            )
        ]
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def another_connection_to(database: StoreDatabase) -> StoreDatabase:
    """A second database object on the same store (as another process would open it)."""
    url = getattr(database, "url", None)
    return contexta.store._backend.open_store_database(database.path, url)


def open_test_store(path: Path) -> StoreDatabase:
    """The store at `path` on the backend the run uses (what `store_db` gives)."""
    return contexta.store._backend.open_store_database(path, None)

"""Every store a process opens goes to a PostgreSQL database of its own, named after the path its
SQLite file would have had (see tests/store_backends.py): used in the test process and, through
tests/store_backend_children/sitecustomize.py, in its child processes."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

DATABASE_PREFIX = "store_"
_PATCHED_MODULES = (
    "contexta.store._backend",
    "contexta.store",
    "contexta._facade",
    "contexta._workspace_reader",
    "contexta._ui._app",
    "contexta.cli._maintenance",
    "contexta._sync",
)
_REQUIRE_MODULES = ("contexta._workspace_reader", "contexta.cli._workspace")


def database_name(path: Path) -> str:
    return DATABASE_PREFIX + hashlib.sha1(str(Path(path).resolve()).encode()).hexdigest()[:20]


class Redirect:
    """Opens each store path's database on the server `admin_url` names (creating it once)."""

    def __init__(self, admin_url: str):
        self.admin_url = admin_url
        self.known: set[str] = set()

    def url_for(self, path: Path) -> str:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        name = database_name(path)
        if name not in self.known:
            with psycopg.connect(self.admin_url, autocommit=True) as admin:
                exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    try:
                        admin.execute(f'CREATE DATABASE "{name}"')
                    except psycopg.errors.DuplicateDatabase:
                        pass  # another process created it at the same moment
                    except psycopg.errors.UniqueViolation:
                        pass
            self.known.add(name)
        parts = conninfo_to_dict(self.admin_url)
        parts["dbname"] = name
        return str(make_conninfo("", **parts))

    def holds(self, path: Path) -> bool:
        """Whether a store exists for `path` (what the SQLite file's existence tells)."""
        import psycopg

        name = database_name(path)
        if name in self.known:
            return True
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            found = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        return found is not None

    def patch(self, module: ModuleType) -> None:
        backend = sys.modules["contexta.store._backend"]
        if not hasattr(backend, "_test_original_open"):
            backend._test_original_open = backend.open_store_database  # type: ignore[attr-defined]
        if module.__name__ in _PATCHED_MODULES:
            redirect = self

            def open_on_postgres(path: Path, url: str | None, *, read_only: bool = False) -> Any:
                return backend._test_original_open(  # type: ignore[attr-defined]
                    path, url or redirect.url_for(path), read_only=read_only
                )

            module.open_store_database = open_on_postgres  # type: ignore[attr-defined]
        if module.__name__ in _REQUIRE_MODULES and not hasattr(module, "_test_original_require"):
            original_require = module.require_store_file  # type: ignore[attr-defined]
            module._test_original_require = original_require  # type: ignore[attr-defined]

            def require_store(root: Path, store: Path) -> None:
                if not self.holds(store):
                    original_require(root, store)  # says why there is nothing to read, as for a file

            module.require_store_file = require_store  # type: ignore[attr-defined]

    def unpatch(self) -> None:
        backend = sys.modules["contexta.store._backend"]
        original = getattr(backend, "_test_original_open", None)
        for name in {*_PATCHED_MODULES, *_REQUIRE_MODULES}:
            module = sys.modules.get(name)
            if module is None:
                continue
            if name in _PATCHED_MODULES and original is not None:
                module.open_store_database = original  # type: ignore[attr-defined]
            if hasattr(module, "_test_original_require"):
                module.require_store_file = module._test_original_require  # type: ignore[attr-defined]
                del module._test_original_require
        if original is not None:
            del backend._test_original_open


def install(admin_url: str, *, dashboard: bool = False) -> Redirect:
    """Redirect this process's stores (the test process, or a child at start-up); with `dashboard`,
    the dashboard's too (it imports Starlette, which a child rarely needs)."""
    import importlib

    redirect = Redirect(admin_url)
    importlib.import_module("contexta.store._backend")
    for name in dict.fromkeys((*_PATCHED_MODULES, *_REQUIRE_MODULES)):
        if name == "contexta._ui._app" and not dashboard:
            continue
        redirect.patch(importlib.import_module(name))
    return redirect

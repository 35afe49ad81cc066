"""A store opened read-only writes nothing, and still follows a writer: what is committed after it
opened is read, and a read the store file changed under is refused rather than answered torn.

With no `-wal` beside the file, a read-only store reads it `immutable` (see store/_read_only.py),
which on its own would never notice a writer; these tests show that it does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from contexta import Contexta, query
from contexta.errors import StoreError
from contexta.store import StoreDatabase

pytestmark = pytest.mark.sqlite_only("the SQLite file opened read-only")


def _capture(workspace: Path, *names: str) -> Contexta:
    ctx = Contexta(workspace=workspace, config={"project_name": "p"})
    for name in names:
        with ctx.run(name) as run, run.stage("train") as stage:
            stage.metric("loss", 0.5)
    return ctx


def _names(database: StoreDatabase) -> list[str]:
    return [run.name for run in query.list_runs(database)]


def test_a_read_only_store_reads_what_a_writer_commits_after_it_opened(tmp_path: Path) -> None:
    # Breaks if the reader kept its first (immutable) view: it would never list "later".
    workspace = tmp_path / ".contexta"
    _capture(workspace, "first").close()
    path = workspace / "metadata" / "contexta.db"
    reader = StoreDatabase(path, read_only=True)
    assert _names(reader) == ["first"]

    writer = _capture(workspace, "later")  # open: its commits are in the -wal
    assert Path(f"{path}-wal").exists()
    assert _names(reader) == ["first", "later"]
    writer.close()
    reader.close_all()


def test_a_read_the_store_file_changed_under_is_refused(tmp_path: Path) -> None:
    # Breaks if a lock-free read could return what it read while a writer rewrote the file.
    workspace = tmp_path / ".contexta"
    _capture(workspace, "first").close()
    reader = StoreDatabase(workspace / "metadata" / "contexta.db", read_only=True)

    with pytest.raises(StoreError) as refused, reader.read() as connection:
        connection.execute("SELECT count(*) FROM runs").fetchone()
        _capture(workspace, "meanwhile").close()  # commits, then checkpoints into the file

    assert refused.value.code == "store_changed_while_read"
    assert "run the command again" in refused.value.message
    assert _names(reader) == ["first", "meanwhile"]  # the next read opens the store afresh
    reader.close_all()


def test_a_read_only_store_refuses_to_write_and_creates_nothing(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    _capture(workspace, "first").close()
    metadata = workspace / "metadata"
    reader = StoreDatabase(metadata / "contexta.db", read_only=True)

    assert _names(reader) == ["first"]
    with pytest.raises(StoreError) as refused, reader.transaction():
        pass

    assert refused.value.code == "store_read_only"
    assert sorted(path.name for path in metadata.iterdir()) == ["contexta.db"]
    reader.close_all()


def test_a_missing_store_is_not_created_by_a_reader(tmp_path: Path) -> None:
    reader = StoreDatabase(tmp_path / "metadata" / "contexta.db", read_only=True)

    with pytest.raises(StoreError) as refused, reader.read():
        pass

    assert refused.value.code == "store_missing"
    assert list(tmp_path.iterdir()) == []

"""Managing runs after capture on the facade: tags and notes added later read back where captured
ones do and outlive the capturing process's own writes and a rebuild from the capture log; archived
runs leave the default listing but stay addressable; deleting removes a run (or one execution) and
is refused while a process still captures into it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.errors import ConflictError, NotFoundError, ValidationError


def _capture(ctx: Contexta, name: str, accuracy: float, *, tags: dict[str, str] | None = None) -> str:
    with ctx.run(name, tags=tags or {"team": "vision"}) as run, run.stage("evaluate") as stage:
        stage.metric("accuracy", accuracy)
        return run.execution_id


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    with Contexta(workspace=tmp_path / "ws", config={"project_name": "p"}) as ctx:
        yield ctx


def _names(ctx: Contexta, **options: bool) -> list[str]:
    return [run.name for run in ctx.list_runs(**options)]


def test_tags_added_after_capture_are_listed_with_the_captured_ones(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)
    _capture(ctx, "tuned", 0.9)

    tagged = ctx.tag_run("tuned", {"team/owner": "ana"}, reviewed=True, lr=0.01)

    assert tagged.tags == {"team": "vision", "team/owner": "ana", "reviewed": True, "lr": 0.01}
    by_name = {run.name: run.tags for run in ctx.list_runs()}
    assert by_name == {"baseline": {"team": "vision"}, "tuned": tagged.tags}
    # The one column every reader (and a filter on `tags.<name>`) reads holds them.
    assert [run.name for run in ctx.list_runs(filter="tags.`team/owner` = 'ana'")] == ["tuned"]


def test_a_tag_set_again_replaces_its_value_and_untag_removes_captured_tags_too(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)

    ctx.tag_run("baseline", stage="candidate")
    ctx.tag_run("baseline", stage="production")
    untagged = ctx.untag_run("baseline", "team")

    assert untagged.tags == {"stage": "production"}
    assert ctx.get_run("baseline").tags == {"stage": "production"}


def test_tags_and_notes_set_while_the_run_is_captured_outlive_its_close(ctx: Contexta) -> None:
    with ctx.run("live", tags={"team": "vision", "gpu": "a100"}) as run, run.stage("train") as stage:
        stage.metric("loss", 0.5)
        ctx.tag_run("live", owner="ana")
        ctx.untag_run("live", "gpu")
        ctx.add_run_note("live", "started on the new data")
        stage.metric("loss", 0.4)
    # The close wrote the run's captured tags (team, gpu) again; the edits made meanwhile stay.
    run_record = ctx.get_run("live")
    assert run_record.status == "completed"
    assert run_record.tags == {"team": "vision", "owner": "ana"}
    assert [note.text for note in run_record.notes] == ["started on the new data"]


def test_notes_are_kept_in_order_with_when_they_were_added(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)

    ctx.add_run_note("baseline", "  first look: fine ")
    noted = ctx.add_run_note("baseline", "second look:\naccuracy dips on holdout")

    assert [note.text for note in noted.notes] == [
        "first look: fine",
        "second look:\naccuracy dips on holdout",
    ]
    assert all(note.added_at.endswith("Z") for note in noted.notes)
    assert noted.to_dict()["notes"][0]["text"] == "first look: fine"


def test_tags_and_notes_change_only_the_execution_named(ctx: Contexta) -> None:
    first = _capture(ctx, "sweep", 0.7)
    _capture(ctx, "sweep", 0.75)

    ctx.tag_run("sweep", best="yes")
    ctx.add_run_note("sweep@1", "the first attempt")

    assert ctx.get_run("sweep").tags == {"team": "vision", "best": "yes"}
    earlier = ctx.get_run(f"sweep@{first}")
    assert earlier.tags == {"team": "vision"}
    assert [note.text for note in earlier.notes] == ["the first attempt"]
    assert ctx.get_run("sweep").notes == ()


def test_an_archived_run_leaves_the_default_listing_but_every_query_still_finds_it(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)
    _capture(ctx, "old", 0.6)
    _capture(ctx, "old", 0.65)

    archived = ctx.archive_run("old")

    assert archived.archived is True
    assert _names(ctx) == ["baseline"]
    assert _names(ctx, all_executions=True) == ["baseline"]
    assert _names(ctx, include_archived=True) == ["baseline", "old"]
    assert [run.archived for run in ctx.list_runs(include_archived=True, all_executions=True)] == [
        False,
        True,
        True,
    ]
    assert ctx.get_run("old").archived is True
    assert ctx.get_run_snapshot("old").run.name == "old"
    assert ctx.compare_runs("baseline", "old").right_run_id == "run:p.old"
    assert ctx.select_best_run(["baseline", "old"], "accuracy") == "run:p.baseline"
    assert ctx.build_snapshot_report("old@1").title.endswith("run:p.old@1")

    # Searching, sorting, paging and run tables hide it too, unless asked.
    assert [run.name for run in ctx.list_runs(filter="metrics.accuracy > 0")] == ["baseline"]
    assert [run.name for run in ctx.list_runs(sort="-metrics.accuracy", offset=0)] == ["baseline"]
    assert [run.name for run in ctx.list_runs(sort="name", include_archived=True)] == ["baseline", "old"]
    assert ctx.get_runs_table(columns="name").rows == [("baseline",)]
    assert ctx.get_runs_table(columns="name", include_archived=True).rows == [("baseline",), ("old",)]

    ctx.unarchive_run("old")
    assert _names(ctx) == ["baseline", "old"]


def test_archiving_one_execution_leaves_the_others_listed(ctx: Contexta) -> None:
    _capture(ctx, "sweep", 0.7)
    _capture(ctx, "sweep", 0.75)

    ctx.archive_run("sweep@1")

    assert [run.execution_number for run in ctx.list_runs(all_executions=True)] == [2]
    assert ctx.get_run("sweep").archived is False


def test_delete_removes_every_execution_of_the_run_and_nothing_else(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)
    first = _capture(ctx, "old", 0.6)
    second = _capture(ctx, "old", 0.65)

    deleted = ctx.delete_run("old")

    assert deleted.run_ref == "run:p.old"
    assert set(deleted.executions) == {first, second}
    assert deleted.rows["runs"] == 2 and deleted.metric_points == 2
    assert _names(ctx, include_archived=True, all_executions=True) == ["baseline"]
    with pytest.raises(NotFoundError):
        ctx.get_run("old")
    assert ctx.get_metric_series("baseline", "accuracy").values == (0.8,)


def test_deleting_the_latest_execution_makes_the_one_before_the_latest(ctx: Contexta) -> None:
    first = _capture(ctx, "sweep", 0.7)
    _capture(ctx, "sweep", 0.75)

    ctx.delete_run("sweep@2")

    (remaining,) = ctx.list_runs()
    assert remaining.execution_id == first and remaining.run_id == "run:p.sweep"
    assert ctx.get_metric_series("sweep", "accuracy").values == (0.7,)


def test_a_dry_run_delete_says_what_it_would_remove_and_changes_nothing(ctx: Contexta) -> None:
    execution = _capture(ctx, "old", 0.6)

    preview = ctx.delete_run("old", dry_run=True)

    assert preview.executions == (execution,) and preview.rows["runs"] == 1
    assert ctx.get_run("old").execution_id == execution
    assert not (ctx.workspace / "metadata" / "run-journal.jsonl").exists()


def test_deleting_a_run_a_process_still_captures_is_refused_naming_the_process(ctx: Contexta) -> None:
    with ctx.run("live") as run, run.stage("train") as stage:
        stage.metric("loss", 0.5)
        with pytest.raises(ConflictError) as refused:
            ctx.delete_run("live")
        stage.metric("loss", 0.4)
    assert refused.value.code == "run_live"
    assert f"process ({os.getpid()})" in refused.value.message
    assert ctx.get_metric_series("live", "loss", "train").values == (0.5, 0.4)


@pytest.mark.sqlite_only("repair rebuilds the SQLite file from the capture log")
def test_changes_made_after_capture_survive_a_rebuild_from_the_capture_log(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)
    _capture(ctx, "tuned", 0.9)
    _capture(ctx, "old", 0.6)
    _capture(ctx, "scratch", 0.1)
    ctx.tag_run("tuned", owner="ana")
    ctx.untag_run("tuned", "team")
    ctx.add_run_note("tuned", "ship it")
    ctx.archive_run("old")
    ctx.delete_run("scratch")

    report = ctx.repair()

    assert report.previous_store is not None
    runs = {run.name: run for run in ctx.list_runs(include_archived=True)}
    assert sorted(runs) == ["baseline", "old", "tuned"]
    assert runs["tuned"].tags == {"owner": "ana"}
    assert [note.text for note in runs["tuned"].notes] == ["ship it"]
    assert runs["old"].archived and not runs["baseline"].archived
    assert runs["baseline"].tags == {"team": "vision"}


def test_bad_input_is_refused_with_a_code_saying_what_to_fix(ctx: Contexta) -> None:
    _capture(ctx, "baseline", 0.8)
    refusals = [
        (lambda: ctx.tag_run("baseline"), ValidationError, "tags_invalid"),
        (lambda: ctx.tag_run("baseline", nested={"a": 1}), ValidationError, "tags_invalid"),
        (lambda: ctx.tag_run("baseline", {"": "x"}), ValidationError, "tags_invalid"),
        (lambda: ctx.untag_run("baseline"), ValidationError, "tag_names_invalid"),
        (lambda: ctx.untag_run("baseline", "tema"), NotFoundError, "tag_not_found"),
        (lambda: ctx.add_run_note("baseline", "  "), ValidationError, "note_invalid"),
        (lambda: ctx.archive_run("nothing-like-it"), NotFoundError, "run_not_found"),
        (lambda: ctx.delete_run("baseline@7"), NotFoundError, "run_not_found"),
    ]
    messages = {}
    for call, error_type, code in refusals:
        with pytest.raises(error_type) as refused:
            call()
        assert refused.value.code == code
        messages[code] = refused.value.message
    assert "has no tag 'tema' (its tags: team)" in messages["tag_not_found"]
    assert ctx.get_run("baseline").tags == {"team": "vision"}


def test_secrets_in_tags_and_notes_are_redacted_like_captured_ones(ctx: Contexta, store_backend: str) -> None:
    _capture(ctx, "baseline", 0.8)

    run = ctx.tag_run("baseline", source="postgresql://ana:hunter2@db/prod")
    run = ctx.add_run_note("baseline", "data from postgresql://ana:hunter2@db/prod")

    assert "hunter2" not in str(run.tags) and "hunter2" not in run.notes[0].text
    if store_backend == "sqlite":  # the journal beside the file (a PostgreSQL store keeps none)
        assert "hunter2" not in (ctx.workspace / "metadata" / "run-journal.jsonl").read_text()

"""Names as typed (SPEC §2 "Names"): runs, stages, batches and samples whose names normalise alike
are kept apart; every list, report and the `contexta` command show the name the user typed; and
that name, passed back to a query, finds what it named."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.cli import main
from contexta.contract import ref_component
from contexta.errors import ConflictError, ValidationError

PROJECT = "names"

RUN_NAMES = [
    "lr=0.1",
    "lr=0-1",
    "ResNet 50",
    "resnet_50",
    "обучение-1",
    "валидация-1",
    "обучение",
    "評価",
    "평가",
    "v1.2/final",
    "A" * 61 + "!",
    "A" * 61 + "?",
]


@pytest.fixture
def ctx(workspace: Path) -> Iterator[Contexta]:
    context = Contexta(workspace=workspace, config={"project_name": PROJECT})
    yield context
    context.close()


def _contexta(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> str:
    capsys.readouterr()
    code = main([str(arg) for arg in argv])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    return printed.out


def test_runs_whose_names_normalise_alike_stay_apart_and_show_their_typed_names(
    ctx: Contexta, workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Breaks if refs were normalised names (lr=0.1 and lr=0-1 would be two executions of one run,
    # the names without Latin letters would be refused or merged), if lists showed refs instead of
    # the typed names, or if a typed name did not find its run.
    refs = {}
    for value, name in enumerate(RUN_NAMES):
        with ctx.run(name) as run:
            run.metric("score", float(value))
        refs[name] = run.ref
    assert len(set(refs.values())) == len(RUN_NAMES)

    runs = ctx.list_runs()
    assert [run.name for run in runs] == RUN_NAMES
    assert [run.run_id for run in runs] == [refs[name] for name in RUN_NAMES]
    for value, name in enumerate(RUN_NAMES):
        series = ctx.get_metric_series(name, "score")
        assert (series.run_id, series.values) == (refs[name], (float(value),)), name
        assert ctx.get_run_snapshot(name).run.name == name
    assert ctx.build_snapshot_report("ResNet 50").to_markdown().count("ResNet 50") >= 1

    monkeypatch.setenv("COLUMNS", "200")
    table = _contexta(capsys, "runs", "--workspace", workspace)
    for name in RUN_NAMES:
        assert name in table, name
    listed = json.loads(_contexta(capsys, "runs", "--workspace", workspace, "--format", "json"))
    assert [run["name"] for run in listed] == RUN_NAMES
    shown = _contexta(capsys, "run", "show", "обучение-1", "--workspace", workspace)
    assert "обучение-1" in shown and "валидация-1" not in shown


def test_the_same_typed_name_in_a_new_process_is_the_same_run(workspace: Path) -> None:
    # Breaks if a name's ref depended on the process (a salted hash): each script run would start
    # a new run instead of a new execution of the same one.
    script = textwrap.dedent(
        """
        import sys
        from contexta import Contexta
        with Contexta(workspace=sys.argv[1], config={"project_name": "names"}) as ctx:
            for name in ("ResNet 50", "評価"):
                with ctx.run(name) as run:
                    run.metric("score", float(sys.argv[2]))
        """
    )
    for attempt in ("1", "2"):
        subprocess.run([sys.executable, "-c", script, str(workspace), attempt], check=True, timeout=120)
    with Contexta(workspace=workspace, config={"project_name": PROJECT}) as ctx:
        assert [(run.name, run.execution_number) for run in ctx.list_runs()] == [
            ("ResNet 50", 2),
            ("評価", 2),
        ]
        assert len(ctx.list_runs(all_executions=True)) == 4
        assert ctx.get_metric_series("評価@1", "score").values == (1.0,)
        assert ctx.get_metric_series("評価", "score").values == (2.0,)
        assert ctx.list_runs()[0].run_id == f"run:names.{ref_component('ResNet 50')}"


def test_three_samples_whose_names_normalise_alike_are_three_samples(ctx: Contexta) -> None:
    # All three open at once under one stage: breaks if they shared a ref (the second would be
    # refused as already open, or their scores would land on one sample).
    names = ["case_1", "case-1", "Case 1"]
    with ctx.run("judge") as run, run.stage("evaluate") as stage:
        samples = [stage.sample(name) for name in names]
        for score, sample in enumerate(samples):
            sample.metric("score", float(score))
        for sample in samples:
            sample.close()
    assert len({sample.ref for sample in samples}) == 3
    assert samples[1].ref == "sample:names.judge.evaluate.case-1"  # already in ref form: kept

    listed = ctx.list_samples("judge", "evaluate")
    assert [sample.name for sample in listed] == names
    score_of = {
        record.envelope.sample_observation_ref: record.payload.value
        for record in ctx.get_run_snapshot("judge").records
        if record.envelope.record_type == "metric"
    }
    assert [score_of[sample.sample_id] for sample in listed] == [0.0, 1.0, 2.0]


def test_stages_and_batches_whose_names_normalise_alike_keep_their_own_metrics(ctx: Contexta) -> None:
    # Breaks if a stage filter given as a typed name matched all three look-alike stages.
    stage_names = ["Train Model", "train-model", "train_model"]
    with ctx.run("fit") as run:
        for index, name in enumerate(stage_names):
            with run.stage(name) as stage:
                stage.metric("loss", float(index))
                for batch_name in ("Epoch 1", "epoch-1"):
                    with stage.batch(batch_name) as batch:
                        batch.metric("seen", float(index))
    assert [stage.name for stage in ctx.list_stages("fit")] == stage_names
    assert ctx.list_stages("fit")[1].stage_id == "stage:names.fit.train-model"
    for index, name in enumerate(stage_names):
        assert ctx.get_metric_series("fit", "loss", stage=name).values == (float(index),), name
        batches = ctx.list_batches("fit", name)
        assert [batch.name for batch in batches] == ["Epoch 1", "epoch-1"]
        assert len({batch.batch_id for batch in batches}) == 2


def test_seed_style_names_keep_exactly_their_refs(ctx: Contexta) -> None:
    # The seed programs print these refs; breaks if names in ref form got a hash suffix.
    with Contexta(workspace=ctx.workspace, config={"project_name": "iris-svm"}) as iris:
        with (
            iris.run("linear-svm") as run,
            run.stage("evaluate") as stage,
            stage.batch("holdout-split") as batch,
            batch.sample("first-prediction") as sample,
        ):
            sample.metric("correct", 1.0)
        with iris.deployment("tiny-cnn-candidate", run_ref=run.ref) as deployment:
            pass
        assert (run.ref, stage.ref, batch.ref, sample.ref, deployment.ref) == (
            "run:iris-svm.linear-svm",
            "stage:iris-svm.linear-svm.evaluate",
            "batch:iris-svm.linear-svm.evaluate.holdout-split",
            "sample:iris-svm.linear-svm.evaluate.holdout-split.first-prediction",
            "deployment:iris-svm.tiny-cnn-candidate",
        )
        assert [d.name for d in iris.list_deployments("iris-svm")] == ["tiny-cnn-candidate"]
        assert [s.sample_id for s in iris.list_samples("linear-svm")] == [sample.ref]


@pytest.mark.parametrize("first", ["typed", "ref-form"])
def test_a_name_equal_to_another_names_hashed_component_never_silently_shares_its_ref(
    ctx: Contexta, first: str
) -> None:
    # "ABC" becomes `abc-<hash>`; a run literally named `abc-<hash>` is in ref form and keeps it.
    # Two different names must get distinct refs or a ConflictError, never one run silently.
    typed = "ABC"
    ref_form = ref_component(typed)
    order = [typed, ref_form] if first == "typed" else [ref_form, typed]
    with ctx.run(order[0]) as run:
        run.metric("score", 1.0)
    try:
        with ctx.run(order[1]) as other:
            other.metric("score", 2.0)
    except ConflictError:
        return
    assert other.ref != run.ref, (
        f"{order[0]!r} and {order[1]!r} share {run.ref}: the second is listed as a new execution of "
        f"the first ({[(r.run_id, r.name) for r in ctx.list_runs(all_executions=True)]})"
    )


@pytest.mark.parametrize("name", ["exp@home", "model@2", "lr:0.1", "eval: holdout", " padded "])
def test_a_typed_run_name_with_query_syntax_can_be_passed_back(ctx: Contexta, name: str) -> None:
    # `@` selects an execution, `:` starts a ref and queries strip spaces; a run whose typed name
    # holds them is accepted at capture, so the name as listed must still find it.
    with ctx.run(name) as run:
        run.metric("score", 1.0)
    assert [listed.name for listed in ctx.list_runs()] == [name]
    assert ctx.get_metric_series(name, "score").run_id == run.ref


def test_a_typed_stage_name_with_a_colon_can_be_passed_back(ctx: Contexta) -> None:
    with ctx.run("fit") as run, run.stage("eval: holdout") as stage:
        stage.metric("accuracy", 0.9)
    assert [listed.name for listed in ctx.list_stages("fit")] == ["eval: holdout"]
    assert ctx.get_metric_series("fit", "accuracy", stage="eval: holdout").values == (0.9,)


@pytest.mark.parametrize(
    ("name", "code"),
    [("", "name_empty"), ("  \t ", "name_empty"), ("\ud800", "name_invalid"), ("a" * 64, "name_too_long")],
    ids=["empty", "whitespace", "lone-surrogate", "too-long"],
)
def test_a_name_that_cannot_be_kept_is_refused_at_the_call_and_captures_nothing(
    ctx: Contexta, name: str, code: str
) -> None:
    # Breaks if a bad name reached the writer (the error would surface later, or not at all).
    with pytest.raises(ValidationError) as refused:
        ctx.run(name)
    assert refused.value.code == code
    with ctx.run("fine") as run:
        for open_child in (run.stage, lambda bad: run.stage("s").sample(bad)):
            with pytest.raises(ValidationError) as refused:
                open_child(name)
            assert refused.value.code == code
    assert [listed.name for listed in ctx.list_runs()] == ["fine"]
    assert [stage.name for stage in ctx.list_stages("fine")] == ["s"]

"""Refs: normalised names, the builders that join them, and `parse_ref` that checks them."""

from __future__ import annotations

import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from contexta.contract import (
    artifact_ref,
    batch_ref,
    deployment_ref,
    normalize_name,
    parse_ref,
    record_ref,
    ref_component,
    run_ref,
    sample_ref,
    stage_ref,
)
from contexta.errors import ValidationError

# -- normalize_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Linear SVM!", "linear-svm"),
        ("linear-svm", "linear-svm"),
        ("  Epoch 1  ", "epoch-1"),
        ("train__val//test", "train-val-test"),
        ("macro.f1", "macro-f1"),
        ("ResNet50", "resnet50"),
        ("--a--b--", "a-b"),
        ("007", "007"),
    ],
)
def test_normalize_name_lowercases_and_folds_other_characters_into_single_hyphens(
    name: str, expected: str
) -> None:
    assert normalize_name(name) == expected


@pytest.mark.parametrize("name", ["", "   ", "!!!", "---", "._/"])
def test_normalize_name_without_letters_or_digits_is_name_empty(name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        normalize_name(name)
    assert excinfo.value.code == "name_empty"


def test_normalize_name_allows_63_characters() -> None:
    assert normalize_name("a" * 63) == "a" * 63
    # the limit applies to the normalised form: surrounding junk is stripped first
    assert normalize_name("  " + "B" * 63 + "!!") == "b" * 63


@pytest.mark.parametrize("name", ["a" * 64, "word " * 20])
def test_normalize_name_longer_than_63_characters_is_name_too_long(name: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        normalize_name(name)
    assert excinfo.value.code == "name_too_long"


@pytest.mark.parametrize("name", [None, 3, b"bytes"])
def test_normalize_name_refuses_non_strings(name: object) -> None:
    with pytest.raises(ValidationError):
        normalize_name(name)  # type: ignore[arg-type]


# -- builders ------------------------------------------------------------------------------------


def _hash(name: str) -> str:
    return xxhash.xxh3_64_hexdigest(name.encode())


def test_run_ref_joins_the_components_of_project_and_run_names() -> None:
    assert run_ref("iris-svm", "linear-svm") == "run:iris-svm.linear-svm"
    assert run_ref("Iris SVM", "Linear SVM!") == (
        f"run:iris-svm-{_hash('Iris SVM')}.linear-svm-{_hash('Linear SVM!')}"
    )


def test_stage_and_batch_refs_extend_their_parent() -> None:
    run = run_ref("iris-svm", "linear-svm")
    stage = stage_ref(run, "evaluate")
    assert stage == "stage:iris-svm.linear-svm.evaluate"
    assert batch_ref(stage, "holdout-split") == "batch:iris-svm.linear-svm.evaluate.holdout-split"
    assert batch_ref(stage, "Holdout Split") == (
        f"batch:iris-svm.linear-svm.evaluate.holdout-split-{_hash('Holdout Split')}"
    )


def test_sample_ref_under_a_stage_has_four_components() -> None:
    stage = "stage:iris-svm.linear-svm.evaluate"
    ref = sample_ref(stage, "first-prediction")
    assert ref == "sample:iris-svm.linear-svm.evaluate.first-prediction"
    parsed = parse_ref(ref, "sample")
    assert parsed.components == ("iris-svm", "linear-svm", "evaluate", "first-prediction")


def test_sample_ref_under_a_batch_has_five_components() -> None:
    batch = "batch:iris-svm.linear-svm.evaluate.holdout-split"
    ref = sample_ref(batch, "case 7")
    assert ref == f"sample:iris-svm.linear-svm.evaluate.holdout-split.case-7-{_hash('case 7')}"
    assert len(parse_ref(ref, "sample").components) == 5


def test_sample_name_with_a_dot_becomes_one_component() -> None:
    ref = sample_ref("stage:p.r.s", "a.b")
    assert ref == f"sample:p.r.s.a-b-{_hash('a.b')}"


# -- ref_component: two names never share a ref -----------------------------------------------------


@pytest.mark.parametrize("name", ["linear-svm", "epoch-1", "first-prediction", "007", "a" * 63])
def test_a_name_in_ref_form_is_its_own_component(name: str) -> None:
    assert ref_component(name) == name


@pytest.mark.parametrize(
    "names",
    [
        ("lr=0.1", "lr=0-1", "lr-0-1"),
        ("ResNet 50", "resnet_50", "resnet-50", "RESNET 50"),
        ("case_1", "case-1", "Case 1"),
        ("обучение-1", "валидация-1", "1"),
        ("обучение", "валидация", "評価", "평가"),
    ],
)
def test_different_names_get_different_components(names: tuple[str, ...]) -> None:
    components = [ref_component(name) for name in names]
    assert len(set(components)) == len(names), components
    for component in components:
        assert parse_ref(f"run:p.{component}").name == component


def test_a_component_is_stable_and_documented() -> None:
    assert ref_component("ResNet 50") == ref_component("ResNet 50") == f"resnet-50-{_hash('ResNet 50')}"
    assert ref_component("обучение") == _hash("обучение")  # no Latin letters or digits: the hash alone


def test_a_long_name_keeps_a_shortened_stem_and_its_whole_hash() -> None:
    name = "A" * 60
    component = ref_component(name)
    assert len(component) <= 63 and component.endswith(_hash(name)) and component.startswith("aaaa")


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80))
def test_two_names_share_a_component_only_when_they_are_equal(left: str, right: str) -> None:
    try:
        components = ref_component(left), ref_component(right)
    except ValidationError as error:
        assert error.code in {"name_empty", "name_too_long", "name_invalid"}
        return
    assert (components[0] == components[1]) == (left == right)


@pytest.mark.parametrize("owner", ["run:p.r", "project:p", "deployment:p.d"])
def test_sample_ref_needs_a_stage_or_batch_owner(owner: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        sample_ref(owner, "x")
    assert excinfo.value.code == "ref_kind_mismatch"


def test_stage_ref_refuses_a_parent_of_another_kind() -> None:
    with pytest.raises(ValidationError) as excinfo:
        stage_ref("stage:p.r.s", "child")
    assert excinfo.value.code == "ref_kind_mismatch"


def test_batch_ref_refuses_a_run_parent() -> None:
    with pytest.raises(ValidationError) as excinfo:
        batch_ref("run:p.r", "b")
    assert excinfo.value.code == "ref_kind_mismatch"


def test_deployment_record_and_artifact_refs() -> None:
    assert deployment_ref("iris-svm", "prod-deploy-v3") == "deployment:iris-svm.prod-deploy-v3"
    run = "run:iris-svm.linear-svm"
    assert record_ref(run, "r00001") == "record:iris-svm.linear-svm.r00001"
    assert record_ref("deployment:iris-svm.prod", "r1") == "record:iris-svm.prod.r1"
    assert artifact_ref(run, "Model", "0123456789ab") == "artifact:iris-svm.linear-svm.model-0123456789ab"
    for ref in (record_ref(run, "r00001"), artifact_ref(run, "model", "0123456789ab")):
        assert parse_ref(ref).ref == ref


def test_record_ref_needs_a_run_or_deployment_owner() -> None:
    with pytest.raises(ValidationError) as excinfo:
        record_ref("stage:p.r.s", "r1")
    assert excinfo.value.code == "ref_kind_mismatch"


def test_builder_name_too_long_is_reported_with_the_name_code() -> None:
    with pytest.raises(ValidationError) as excinfo:
        stage_ref("run:p.r", "s" * 64)
    assert excinfo.value.code == "name_too_long"
    assert stage_ref("run:p.r", "s" * 63) == "stage:p.r." + "s" * 63


def test_builder_refuses_a_whole_ref_longer_than_255_characters() -> None:
    stage = stage_ref(run_ref("p" * 63, "r" * 63), "s" * 63)  # 6 + 3 * 63 + 2 = 197 characters
    with pytest.raises(ValidationError) as excinfo:
        batch_ref(stage, "b" * 63)  # would be 261 characters
    assert excinfo.value.code == "ref_too_long"
    # 57 more characters plus the dot land exactly on 255, which is allowed
    ref = batch_ref(stage, "b" * 57)
    assert len(ref) == 255
    assert parse_ref(ref, "batch").name == "b" * 57


@pytest.mark.parametrize(
    ("build", "args"),
    [
        (record_ref, ("run:p.r", "Bad Id")),
        (record_ref, ("run:p.r", "a.b")),
        (artifact_ref, ("run:p.r", "model", "XYZ!")),
        (artifact_ref, ("run:p.r", "k" * 60, "0123456789ab")),  # kind + suffix over 63 characters
    ],
)
def test_builders_never_return_a_ref_that_parse_ref_rejects(build: object, args: tuple[str, ...]) -> None:
    try:
        ref = build(*args)  # type: ignore[operator]
    except ValidationError:
        return
    parse_ref(ref)


@given(
    project=st.text(max_size=80),
    run=st.text(max_size=80),
    stage=st.text(max_size=80),
    sample=st.text(max_size=80),
)
def test_built_refs_always_parse_back(project: str, run: str, stage: str, sample: str) -> None:
    try:
        ref = sample_ref(stage_ref(run_ref(project, run), stage), sample)
    except ValidationError as error:
        assert error.code in {"name_empty", "name_too_long", "ref_too_long"}
        return
    parsed = parse_ref(ref, "sample")
    assert parsed.ref == ref
    assert len(ref) <= 255
    assert all(len(component) <= 63 for component in parsed.components)


# -- parse_ref -----------------------------------------------------------------------------------


def test_parse_ref_splits_kind_and_components() -> None:
    parsed = parse_ref("stage:iris-svm.linear-svm.evaluate")
    assert parsed.kind == "stage"
    assert parsed.components == ("iris-svm", "linear-svm", "evaluate")
    assert parsed.name == "evaluate"
    assert parsed.project == "iris-svm"
    assert parsed.ref == "stage:iris-svm.linear-svm.evaluate"
    assert parsed.extends(parse_ref("run:iris-svm.linear-svm"))
    assert not parsed.extends(parse_ref("run:iris-svm.other"))
    assert not parsed.extends(parsed)


@pytest.mark.parametrize(
    "ref",
    [
        "",
        "iris-svm.linear-svm",  # no kind
        "widget:p.r",  # unknown kind
        "run:p",  # too few components
        "run:p.r.x",  # too many components
        "sample:p.r.s",  # a sample needs 4 or 5
        "sample:p.r.s.b.x.y",
        "run:P.r",  # upper case
        "run:p..r",  # empty component
        "run:p.-r",
        "run:p.r-",
        "run:p.a--b",  # double hyphen
        "run:p.a_b",
        "run:p.a b",
        "run:p." + "r" * 64,  # component longer than 63
        "batch:" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 58,  # 256 characters
    ],
)
def test_parse_ref_rejects_malformed_refs_with_ref_invalid(ref: str) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_ref(ref)
    assert excinfo.value.code == "ref_invalid"


@pytest.mark.parametrize("ref", [None, 12, b"run:p.r"])
def test_parse_ref_rejects_non_strings(ref: object) -> None:
    with pytest.raises(ValidationError) as excinfo:
        parse_ref(ref)  # type: ignore[arg-type]
    assert excinfo.value.code == "ref_invalid"


def test_parse_ref_accepts_the_limits() -> None:
    assert parse_ref("run:p." + "r" * 63).name == "r" * 63
    longest = "batch:" + "a" * 63 + "." + "b" * 63 + "." + "c" * 63 + "." + "d" * 57
    assert len(longest) == 255
    assert parse_ref(longest).kind == "batch"


def test_parse_ref_with_an_expected_kind_reports_a_kind_mismatch() -> None:
    assert parse_ref("run:p.r", "run").kind == "run"
    with pytest.raises(ValidationError) as excinfo:
        parse_ref("run:p.r", "stage")
    assert excinfo.value.code == "ref_kind_mismatch"

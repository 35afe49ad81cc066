"""A name's ref component (SPEC §2 "Names"): names that normalise alike never share one, the same
name gets the same one in every process, names already in ref form keep theirs, and names that
cannot be a component are refused at once with a code that says why."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from contexta.contract import (
    batch_ref,
    deployment_ref,
    parse_ref,
    ref_component,
    run_ref,
    sample_ref,
    stage_ref,
)
from contexta.errors import ValidationError

COMPONENT = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")

# Groups of names that a lossy normalisation (lower-case, other characters to '-') would merge.
LOOK_ALIKES = [
    ("lr=0.1", "lr=0-1", "lr-0-1", "LR=0.1"),
    ("ResNet 50", "resnet_50", "resnet-50", "ResNet-50", "resnet 50"),
    ("case_1", "case-1", "Case 1", "CASE_1"),
    ("обучение-1", "валидация-1", "1", "тест 1"),
    ("обучение", "評価", "평가", "валидация", "テスト"),
    ("v1.2", "v1/2", "v1-2", "v1_2", "v1 2"),
]


def _is_component(text: str) -> bool:
    return len(text) <= 63 and COMPONENT.fullmatch(text) is not None


@pytest.mark.parametrize("names", LOOK_ALIKES, ids=lambda names: names[0])
def test_names_that_normalise_alike_get_distinct_valid_components(names: tuple[str, ...]) -> None:
    # Breaks if a component were only the normalised form (lr=0.1 and lr=0-1 would be one run).
    components = [ref_component(name) for name in names]
    assert len(set(components)) == len(names), dict(zip(names, components, strict=True))
    assert all(_is_component(component) for component in components), components


def test_a_component_is_the_same_in_another_process_with_another_hash_seed() -> None:
    # Breaks if the hash part came from Python's salted hash() or anything per-process: the same
    # name would become a new run every time a script runs.
    names = [name for group in LOOK_ALIKES for name in group]
    script = textwrap.dedent(
        """
        import json, sys
        from contexta.contract import ref_component
        print(json.dumps([ref_component(name) for name in json.loads(sys.argv[1])]))
        """
    )
    seen = []
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", script, json.dumps(names)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        seen.append(json.loads(done.stdout))
    assert seen[0] == seen[1] == [ref_component(name) for name in names]


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: run_ref("iris-svm", "linear-svm"), "run:iris-svm.linear-svm"),
        (lambda: stage_ref("run:iris-svm.linear-svm", "evaluate"), "stage:iris-svm.linear-svm.evaluate"),
        (
            lambda: batch_ref("stage:iris-svm.linear-svm.evaluate", "holdout-split"),
            "batch:iris-svm.linear-svm.evaluate.holdout-split",
        ),
        (
            lambda: batch_ref("stage:mnist.tiny-cnn.train", "epoch-1"),
            "batch:mnist.tiny-cnn.train.epoch-1",
        ),
        (
            lambda: sample_ref("batch:iris-svm.linear-svm.evaluate.holdout-split", "first-prediction"),
            "sample:iris-svm.linear-svm.evaluate.holdout-split.first-prediction",
        ),
        (lambda: deployment_ref("mnist", "tiny-cnn-candidate"), "deployment:mnist.tiny-cnn-candidate"),
    ],
)
def test_names_already_in_ref_form_keep_exactly_their_refs(build: object, expected: str) -> None:
    # Breaks if every name got a hash suffix: the seed programs print these refs.
    assert build() == expected  # type: ignore[operator]


def test_two_long_names_with_the_same_long_stem_get_distinct_components_of_at_most_63() -> None:
    # Both normalise to 61 a's; the component must shorten the stem, keep the whole hash, and
    # still tell them apart.
    left, right = "A" * 61 + "!", "A" * 61 + "?"
    components = ref_component(left), ref_component(right)
    assert components[0] != components[1]
    for component in components:
        assert _is_component(component) and len(component) <= 63
        assert component.startswith("a" * 40)
    # A name in ref form of exactly 63 characters is still its own component.
    assert ref_component("b" * 63) == "b" * 63


def test_names_with_dots_and_slashes_become_a_single_component() -> None:
    # Breaks if a '.' survived into the component: the ref would gain a level and belong elsewhere.
    for name in ("v1.2", "data/train.csv", "a.b.c/d"):
        ref = sample_ref("stage:p.r.s", name)
        parsed = parse_ref(ref, "sample")
        assert len(parsed.components) == 4 and parsed.name == ref_component(name)


def test_names_of_any_script_are_accepted_even_when_long() -> None:
    # A name with no Latin letters normalises to nothing; it must still get a component.
    name = "обучение " * 50  # 450 characters, none of them Latin
    component = ref_component(name)
    assert _is_component(component)
    assert ref_component(name + "!") != component


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("", "name_empty"),
        ("   ", "name_empty"),
        ("\t\n", "name_empty"),
        ("---", "name_empty"),
        ("\ud800", "name_invalid"),
        ("epoch \udc80 1", "name_invalid"),
        ("a" * 64, "name_too_long"),
        ("Word " * 20, "name_too_long"),
        ("я" * 600, "name_too_long"),
    ],
    ids=[
        "empty",
        "spaces",
        "whitespace",
        "dashes",
        "lone-surrogate",
        "surrogate-inside",
        "64",
        "words",
        "600",
    ],
)
def test_a_name_that_cannot_be_a_component_is_refused_with_a_code(name: str, code: str) -> None:
    # Breaks if such a name were silently turned into some component (or crashed with another error).
    with pytest.raises(ValidationError) as refused:
        ref_component(name, "run name")
    assert refused.value.code == code
    assert "run name" in refused.value.message


@pytest.mark.parametrize("name", [None, 7, b"bytes", ["x"]])
def test_a_name_that_is_not_a_string_is_refused(name: object) -> None:
    with pytest.raises(ValidationError) as refused:
        ref_component(name)  # type: ignore[arg-type]
    assert refused.value.code == "name_invalid"

"""Secrets under every key pattern, inside URLs, in name/value pairs, in event messages and in
exception text never reach a file of the workspace nor any rendering of it; ordinary look-alikes stay.

Each secret is a distinct string, so a failure names the pattern that leaked it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture import RunScope
from contexta.capture._scopes._redaction import REDACTED
from contexta.cli import main

SECRET_KEYS = (
    "openai_key",
    "OPENAI_KEY",
    "hf_key",
    "signing_key",
    "passwords",
    "private_key",
    "aws_secret_access_key",
    "client_secret",
    "x-api-key",
    "bearer",
    "cookie",
    "session_token",
    "access_token",
    "refresh_token",
    "webhook_secret",
    "db_password",
    "PGPASSWORD",
    "HF_TOKEN",
    "githubToken",
)
# Ordinary keys whose names look like a secret's, with text values that must be kept as they are.
LOOK_ALIKES = {
    "keyboard": "qwerty",
    "monkey": "banana",
    "key_count": "3",
    "tokenizer": "bpe-32k",
    "max_tokens": "256",
    "num_tokens": "12",
    "token_count": "7",
    "passage": "a passage of text",
    "author": "ada",
    "metric_key": "val/loss",
    "input_key": "question",
    "token_type": "Bearer",
}


def _secret(label: str) -> str:
    return f"zq-{label}-9f31c"


def _secrets_of(where: str) -> dict[str, str]:
    return {key: _secret(f"{where}-{index}") for index, key in enumerate(SECRET_KEYS)}


def _texts_with_secrets() -> dict[str, object]:
    """Secrets that no key names: inside URLs, pairs and env-style strings, under ordinary keys."""
    return {
        "database": f"postgresql://trainer:{_secret('url-pass')}@db.internal:5432/features",
        "remote": f"https://bot:{_secret('url-token')}@github.com/org/repo.git",
        "clone": f"https://ghp_{_secret('url-user-token')}@github.com/org/repo.git",
        "endpoint": f"https://api.example.com/v1?token={_secret('query-token')}&api_key={_secret('query-key')}&page=2",
        "env": [{"name": "API_KEY", "value": _secret("pair-name")}, {"name": "EPOCHS", "value": "3"}],
        "tags_list": [{"key": "password", "value": _secret("pair-key")}],
        "headers": [["Authorization", f"Bearer {_secret('pair-list')}"], ["Accept", "json"]],
        "environment": [f"OPENAI_API_KEY=sk-{_secret('env-line')}", "CUDA_VISIBLE_DEVICES=0"],
        "argv": ["train.py", "--api-key", _secret("argv"), "--epochs", "3"],
    }


ALL_SECRETS = (
    *(_secrets_of("tags").values()),
    *(_secrets_of("event").values()),
    *(_secrets_of("span").values()),
    *(_secrets_of("metric").values()),
    *(_secrets_of("artifact").values()),
    _secret("url-pass"),
    _secret("url-token"),
    _secret("url-user-token"),
    _secret("query-token"),
    _secret("query-key"),
    _secret("pair-name"),
    _secret("pair-key"),
    _secret("pair-list"),
    _secret("env-line"),
    _secret("argv"),
    _secret("message-url"),
    _secret("message-assignment"),
    _secret("exception-url"),
    _secret("exception-query"),
    _secret("source-line"),
    _secret("dataset-ref"),
)


def _connect(api_key: str) -> None:
    raise ConnectionError(f"cannot reach https://svc:{_secret('exception-url')}@api.internal/v1")


def _fail_to_fetch(run: RunScope) -> None:
    try:
        with run.stage("fetch"):
            try:
                _connect(api_key="zq-source-line-9f31c")  # shown in the traceback's source line
            except ConnectionError as error:
                raise RuntimeError(f"fetch failed: ?access_token={_secret('exception-query')}") from error
    except RuntimeError:
        pass


def _capture(workspace: Path, artifact: Path) -> None:
    with (
        Contexta(workspace=workspace, config={"project_name": "p"}) as ctx,
        ctx.run(
            "leaky",
            dataset_ref=f"postgresql://reader:{_secret('dataset-ref')}@db/rows",
            tags=_secrets_of("tags"),
            metadata=LOOK_ALIKES,
            config_snapshot=_texts_with_secrets(),
        ) as run,
    ):
        run.event(
            "connect",
            message=(
                f"connecting to postgresql://u:{_secret('message-url')}@h/db "
                f"with password={_secret('message-assignment')}"
            ),
            attributes=_secrets_of("event"),
        )
        run.span("call", attributes=_secrets_of("span"))
        run.metric("latency", 1.0, tags=_secrets_of("metric"))
        run.register_artifact("model", artifact, attributes=_secrets_of("artifact"))
        _fail_to_fetch(run)


@pytest.fixture(scope="module")
def captured(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secrets")
    artifact = root / "model.bin"
    artifact.write_bytes(b"weights")
    workspace = root / ".contexta"
    _capture(workspace, artifact)
    return workspace


def _workspace_files(workspace: Path) -> Iterator[tuple[Path, bytes]]:
    for path in workspace.rglob("*"):
        if path.is_file():
            yield path, path.read_bytes()


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [secret for secret in ALL_SECRETS if secret.encode() in data]


def test_no_secret_reaches_any_file_of_the_workspace(captured: Path) -> None:
    leaks = {str(path): found for path, data in _workspace_files(captured) if (found := _leaks(data))}

    assert leaks == {}


def test_no_secret_reaches_any_report_format(captured: Path) -> None:
    with Contexta(workspace=captured, config={"project_name": "p"}) as ctx:
        report = ctx.build_snapshot_report("leaky")
        renderings = [report.to_markdown(), report.to_html(), report.to_json(), report.to_csv()]
        summary = ctx.build_project_summary_report("p")
        renderings += [summary.to_markdown(), summary.to_csv()]

    assert [_leaks(rendering) for rendering in renderings] == [[]] * len(renderings)


@pytest.mark.parametrize(
    "command",
    [
        ("run", "show", "leaky"),
        ("run", "show", "leaky", "--format", "json"),
        ("tail", "--lines", "50"),
        ("tail", "--lines", "50", "--format", "json"),
        ("diagnose", "leaky"),
        ("report", "leaky"),
    ],
)
def test_no_secret_reaches_the_command_line(
    captured: Path,
    command: tuple[str, ...],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "4000")  # nothing is cut short of the secret it would show
    main([*command, "--workspace", str(captured)])
    out, err = capsys.readouterr()

    assert _leaks(out + err) == []


def test_ordinary_look_alikes_and_the_rest_of_each_text_are_kept(captured: Path) -> None:
    with Contexta(workspace=captured, config={"project_name": "p"}) as ctx:
        (run,) = ctx.list_runs()
        snapshot = ctx.get_run_snapshot("leaky")

    assert run.metadata == LOOK_ALIKES
    assert run.tags == {key: REDACTED for key in SECRET_KEYS}
    config = run.config_snapshot
    assert config["database"] == f"postgresql://trainer:{REDACTED}@db.internal:5432/features"
    assert config["endpoint"] == f"https://api.example.com/v1?token={REDACTED}&api_key={REDACTED}&page=2"
    assert config["env"] == [{"name": "API_KEY", "value": REDACTED}, {"name": "EPOCHS", "value": "3"}]
    assert config["headers"] == [["Authorization", REDACTED], ["Accept", "json"]]
    assert config["argv"] == ["train.py", "--api-key", REDACTED, "--epochs", "3"]
    assert run.dataset_ref == f"postgresql://reader:{REDACTED}@db/rows"
    (stage,) = snapshot.stages
    assert stage.failure is not None
    assert stage.failure["type"] == "RuntimeError"
    assert stage.failure["message"] == f"fetch failed: ?access_token={REDACTED}"
    assert f"https://svc:{REDACTED}@api.internal/v1" in stage.failure["traceback"]
    assert f'_connect(api_key="{REDACTED}")' in stage.failure["traceback"]


def test_with_redaction_off_messages_are_kept_but_exception_text_is_still_scrubbed(tmp_path: Path) -> None:
    """`capture.redact_secrets = False` keeps what the program chose to record; an exception's text
    is a library's, and is scrubbed either way."""
    script = f"""
from contexta import Contexta
ctx = Contexta(workspace={str(tmp_path / ".contexta")!r},
               config={{"project_name": "p", "capture": {{"redact_secrets": False}}}})
with ctx.run("r") as run:
    run.event("note", message="password={_secret("kept")}")
    try:
        with run.stage("s"):
            raise ValueError("GET https://u:{_secret("scrubbed")}@h/x")
    except ValueError:
        pass
ctx.close()
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120, env={**os.environ})
    data = b"".join(data for _, data in _workspace_files(tmp_path / ".contexta"))

    assert _secret("kept").encode() in data
    assert _secret("scrubbed").encode() not in data
    assert f"https://u:{REDACTED}@h/x".encode() in data

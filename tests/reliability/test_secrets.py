"""Secrets stay out of every file a workspace holds, and out of reports."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from contexta import Contexta
from contexta.capture._scopes._redaction import REDACTED, looks_secret

SECRET = "sk-live-4f9a1c77e2"


def _workspace_bytes(workspace: Path) -> bytes:
    return b"".join(path.read_bytes() for path in workspace.rglob("*") if path.is_file())


@pytest.mark.parametrize(
    "key",
    [
        "api_key",
        "apiKey",
        "OPENAI_API_KEY",
        "openaiApiKey",
        "password",
        "db.password",
        "auth_token",
        "token",
        "client_secret",
        "credentials",
        "Authorization",
        "aws_secret_access_key",
        "private_key",
        "session_id",
    ],
)
def test_keys_that_name_secrets_are_recognised(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize(
    "key", ["tokens", "prompt_tokens", "tokenizer", "keyword", "monkey", "passes", "author"]
)
def test_ordinary_keys_are_not_taken_for_secrets(key: str) -> None:
    assert not looks_secret(key)


def test_secret_values_never_reach_the_log_the_store_or_a_report(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    with Contexta(workspace=workspace, config={"project_name": "p"}) as ctx:
        with ctx.run(
            "r",
            tags={"api_key": SECRET},
            config_snapshot={"openai": {"apiKey": SECRET, "model": "mini"}, "db": {"password": SECRET}},
            metadata={"credentials": {"user": "me", "pass": SECRET}},
        ) as run:
            run.event(
                "call",
                message="called the API",
                attributes={
                    "headers": {"Authorization": f"Bearer {SECRET}"},
                    "prompt_tokens": 12,
                    "token": 3,
                },
            )
            run.metric("latency", 1.0, tags={"auth_token": SECRET})
            model = tmp_path / "model.bin"
            model.write_bytes(b"w")
            run.register_artifact("model", str(model), attributes={"upload_token": SECRET})
        ctx.flush()
        (stored,) = ctx.list_runs()
        report = ctx.build_snapshot_report("r")
        rendered = report.to_markdown() + report.to_html() + report.to_json() + report.to_csv()
    assert SECRET.encode() not in _workspace_bytes(workspace)
    assert SECRET not in rendered
    assert stored.config_snapshot == {
        "openai": {"apiKey": REDACTED, "model": "mini"},
        "db": {"password": REDACTED},
    }
    assert stored.tags == {"api_key": REDACTED}
    assert stored.metadata == {"credentials": REDACTED}
    assert b'"prompt_tokens":12' in (workspace / "cache" / "capture" / "record.jsonl").read_bytes()


def test_redaction_can_be_turned_off(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    config = {"project_name": "p", "capture": {"redact_secrets": False}}
    with Contexta(workspace=workspace, config=config) as ctx, ctx.run("r", tags={"api_key": SECRET}):
        pass
    assert SECRET.encode() in _workspace_bytes(workspace)


def test_the_environment_snapshot_records_only_allow_listed_variables(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        from contexta import Contexta
        with Contexta(workspace={str(tmp_path / ".contexta")!r}, config={{"project_name": "p"}}) as ctx:
            with ctx.run("r"):
                pass
        """
    )
    environment = {
        **os.environ,
        "MY_SERVICE_TOKEN": SECRET,
        "DATABASE_URL": f"postgres://u:{SECRET}@h/db",
        "CUDA_VISIBLE_DEVICES": "1,3",
    }
    subprocess.run([sys.executable, "-c", script], env=environment, check=True, timeout=120)
    with Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"}) as ctx:
        snapshot = ctx.get_run_snapshot("r")
    assert snapshot.environment is not None
    assert SECRET.encode() not in _workspace_bytes(tmp_path / ".contexta")
    lines = (tmp_path / ".contexta" / "cache" / "capture" / "context.jsonl").read_text()
    assert '"environment_variables":{"CUDA_VISIBLE_DEVICES":"1,3"}' in lines

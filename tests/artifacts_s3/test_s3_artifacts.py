"""Artifact copies in S3-compatible storage (`artifacts.url`), against a real local server: kept under
their BLAKE3 digest once, verified and fetched by artifact ref, damage and outages reported with codes,
a 1 GiB file sent in parts with bounded memory, and no credential ever written to the workspace."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any

import pytest
from flaky_gateway import flaky_gateway

from contexta import Contexta, Workspace
from contexta.cli import main
from contexta.errors import ArtifactStorageError, ValidationError

MIB = 1024 * 1024


def _client() -> Any:
    """A plain boto3 client reaching the test's bucket through the same AWS_* variables."""
    import boto3

    return boto3.client("s3")


def _open(workspace: Path, bucket: Any) -> Contexta:
    return Contexta(workspace=workspace, config={"project_name": "vision", "artifacts": {"url": bucket.url}})


def _register(ctx: Contexta, path: Path, kind: str = "model") -> Any:
    with ctx.run("train") as run:
        manifest = run.register_artifact(kind, path).payload["manifest"]
    ctx.flush()
    return manifest


def _key(bucket: Any, digest: str) -> str:
    return f"{bucket.prefix}/blake3/{digest[:2]}/{digest}"


def _all_keys(bucket: Any) -> list[str]:
    return [item["Key"] for item in _client().list_objects_v2(Bucket=bucket.name).get("Contents", [])]


def _cli(*argv: str | Path) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main([str(arg) for arg in argv])
    return code, out.getvalue()


def test_keep_copy_puts_the_file_under_its_digest_and_records_only_its_s3_location(
    tmp_path: Path, s3_bucket: Any
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(3 * MIB))
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)
        location = ctx.artifact_store.keep_copy(manifest.artifact_ref)

        key = _key(s3_bucket, manifest.hash_value)
        assert location == f"s3://{s3_bucket.name}/{key}"
        assert ctx.artifact_store.stored_location(manifest.artifact_ref) == location
        head = _client().head_object(Bucket=s3_bucket.name, Key=key)
        assert head["ContentLength"] == model.stat().st_size
        assert head["Metadata"] == {"blake3": manifest.hash_value}
        assert ctx.verify_artifact(manifest.artifact_ref).status == "verified"

    secrets = [s3_bucket.server.secret_key, s3_bucket.server.access_key, s3_bucket.server.endpoint_url]
    secrets.append(s3_bucket.server.endpoint_url.rpartition(":")[2])  # the port alone
    for directory, _, files in os.walk(workspace):
        for name in files:
            content = (Path(directory) / name).read_bytes()
            for secret in secrets:
                assert secret.encode() not in content, (name, secret)


def test_the_same_content_twice_is_uploaded_once(tmp_path: Path, s3_bucket: Any) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.bin"
    content = os.urandom(20 * MIB)  # multipart-sized
    first.write_bytes(content)
    second.write_bytes(content)
    with _open(tmp_path / ".contexta", s3_bucket) as ctx:
        with ctx.run("train") as run:
            one = run.register_artifact("model", first).payload["manifest"]
            two = run.register_artifact("model", second).payload["manifest"]
        ctx.flush()
        kept = ctx.artifact_store.keep_copy(one.artifact_ref)
        # Were the second file read and sent, its changed bytes would be refused (artifact_changed):
        # its copy is found by digest instead, and nothing is read or sent.
        second.write_bytes(b"changed since registration")

        assert ctx.artifact_store.keep_copy(two.artifact_ref) == kept

    assert _all_keys(s3_bucket) == [_key(s3_bucket, one.hash_value)]


def test_an_artifact_is_fetched_by_ref_byte_for_byte_after_the_original_is_gone(
    tmp_path: Path, s3_bucket: Any
) -> None:
    model = tmp_path / "model.bin"
    content = os.urandom(18 * MIB + 123)
    model.write_bytes(content)
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)
        ctx.artifact_store.keep_copy(manifest.artifact_ref)
    model.unlink()

    with Workspace(workspace) as reader:
        fetched = reader.fetch_artifact(manifest.artifact_ref, tmp_path / "restored.bin")
    assert fetched.read_bytes() == content

    into = f"{tmp_path / 'cli'}/"  # a directory that does not exist yet: the file keeps its name
    code, out = _cli("artifact", "get", manifest.artifact_ref, into, "--workspace", workspace)
    assert code == 0
    assert Path(out.strip()) == tmp_path / "cli" / "model.bin"
    assert (tmp_path / "cli" / "model.bin").read_bytes() == content
    code, out = _cli("verify", "--workspace", workspace, "--format", "json")
    assert code == 0
    (result,) = json.loads(out)
    assert result["status"] == "verified" and result["path"].startswith(f"s3://{s3_bucket.name}/")


def test_a_damaged_copy_fails_verification_and_is_never_fetched(tmp_path: Path, s3_bucket: Any) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(2 * MIB))
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)
        ctx.artifact_store.keep_copy(manifest.artifact_ref)
        # Same size, same metadata, other bytes: only hashing what is stored finds it.
        _client().put_object(
            Bucket=s3_bucket.name,
            Key=_key(s3_bucket, manifest.hash_value),
            Body=os.urandom(2 * MIB),
            Metadata={"blake3": manifest.hash_value},
        )

        assert ctx.verify_artifact(manifest.artifact_ref).status == "hash_mismatch"
        with pytest.raises(ArtifactStorageError) as excinfo:
            ctx.fetch_artifact(manifest.artifact_ref, tmp_path / "out.bin")
        assert excinfo.value.code == "artifact_digest_mismatch"
        assert not (tmp_path / "out.bin").exists()
        assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []

    code, _ = _cli("verify", "--workspace", workspace)
    assert code == 1


def test_a_file_changed_since_registration_is_not_stored_and_leaves_no_parts(
    tmp_path: Path, s3_bucket: Any
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(40 * MIB))
    with _open(tmp_path / ".contexta", s3_bucket) as ctx:
        manifest = _register(ctx, model)
        with open(model, "r+b") as handle:  # same size, one byte different, in the last part
            handle.seek(39 * MIB)
            handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")

        with pytest.raises(ValidationError) as excinfo:
            ctx.artifact_store.keep_copy(manifest.artifact_ref)
        assert excinfo.value.code == "artifact_changed"

    assert _all_keys(s3_bucket) == []
    assert _client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []


def test_a_missing_bucket_and_refused_credentials_are_named(
    tmp_path: Path, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    missing = type(s3_bucket)(f"{s3_bucket.name}-gone", "x", s3_bucket.server)
    with _open(tmp_path / "one", missing) as ctx:
        manifest = _register(ctx, model)
        with pytest.raises(ArtifactStorageError) as excinfo:
            ctx.artifact_store.keep_copy(manifest.artifact_ref)
        assert excinfo.value.code == "artifact_bucket_missing"
        assert missing.name in str(excinfo.value)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    with _open(tmp_path / "two", s3_bucket) as ctx:
        manifest = _register(ctx, model)
        with pytest.raises(ArtifactStorageError) as excinfo:
            ctx.artifact_store.keep_copy(manifest.artifact_ref)
        assert excinfo.value.code == "artifact_credentials_refused"
        assert "not-the-secret" not in str(excinfo.value)


def test_an_unreachable_endpoint_fails_the_call_and_loses_nothing_captured(
    tmp_path: Path, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{closed}")
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights" * 1000)
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        with ctx.run("train") as run:
            run.metric("loss", 0.25, step=1)
            manifest = run.register_artifact("model", model).payload["manifest"]
        ctx.flush()
        with pytest.raises(ArtifactStorageError) as excinfo:
            ctx.artifact_store.keep_copy(manifest.artifact_ref)
        assert excinfo.value.code == "artifact_endpoint_unreachable"
        assert "AWS_ENDPOINT_URL" in str(excinfo.value)

    with Workspace(workspace) as reader:
        (stored,) = reader.list_artifacts("train")
        assert stored.hash_value == manifest.hash_value
        assert [point.value for point in reader.get_metric_series("train", "loss").points] == [0.25]
        assert reader.verify_artifact(manifest.artifact_ref).status == "verified"  # the local file


_UPLOAD_IN_A_CHILD = textwrap.dedent(
    """
    import json, sys
    from contexta import Contexta

    def status_kib(field):
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through fork and exec,
        # and the parent (pytest) has just hashed the 1 GiB file through mmap.
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

    workspace, url, ref = sys.argv[1:]
    with Contexta(workspace=workspace, config={"project_name": "vision", "artifacts": {"url": url}}) as ctx:
        ctx.artifact_store.remote().client  # boto3 imported and the client made before the baseline
        baseline = status_kib("VmRSS")
        location = ctx.artifact_store.keep_copy(ref)
        peak = status_kib("VmHWM")
    print(json.dumps({"location": location, "baseline_kib": baseline, "peak_kib": peak}))
    """
)


def test_a_1_gib_artifact_goes_up_in_parts_with_bounded_memory_and_verifies_by_digest(
    tmp_path: Path, s3_bucket: Any
) -> None:
    model = tmp_path / "model.bin"
    with open(model, "wb") as handle:
        for _ in range(64):
            handle.write(os.urandom(16 * MIB))
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)

    child = subprocess.run(
        [sys.executable, "-c", _UPLOAD_IN_A_CHILD, str(workspace), s3_bucket.url, manifest.artifact_ref],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    growth_mib = (figures["peak_kib"] - figures["baseline_kib"]) / 1024
    assert growth_mib < 200, figures  # a memory bound (a few parts in flight), not a timing

    head = _client().head_object(Bucket=s3_bucket.name, Key=_key(s3_bucket, manifest.hash_value))
    assert head["ContentLength"] == 1024 * MIB
    assert head["ETag"].strip('"').endswith("-64")  # a multipart object of 64 parts of 16 MiB
    assert _client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []
    with Workspace(workspace) as reader:
        verification = reader.verify_artifact(manifest.artifact_ref)
    assert verification.status == "verified" and verification.path == figures["location"]
    assert verification.actual_hash == manifest.hash_value


def test_import_contexta_and_capture_do_not_import_an_s3_client(tmp_path: Path, s3_bucket: Any) -> None:
    program = textwrap.dedent(
        f"""
        import sys
        import contexta
        loaded = [name for name in ("boto3", "botocore", "obstore") if name in sys.modules]
        config = {{"artifacts": {{"url": {s3_bucket.url!r}}}}}
        with contexta.Contexta(workspace={str(tmp_path)!r}, config=config) as ctx:
            with ctx.run("train") as run:
                run.metric("loss", 1.0)
        loaded += [name for name in ("boto3", "botocore", "obstore") if name in sys.modules]
        print(" ".join(loaded))
        """
    )
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True)

    assert result.stdout.split() == []


def test_a_part_answered_504_is_sent_again_and_the_upload_completes(
    tmp_path: Path, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(40 * MIB))  # three parts
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)
    answered: list[str] = []

    def two_timeouts_for_part_2(method: str, path: str) -> bool:
        if method == "PUT" and "partNumber=2&" in path + "&" and len(answered) < 2:
            answered.append(path)
            return True
        return False

    with flaky_gateway(s3_bucket.server.endpoint_url, two_timeouts_for_part_2) as (endpoint, failed):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        with _open(workspace, s3_bucket) as ctx:
            ctx.artifact_store.keep_copy(manifest.artifact_ref)
            assert ctx.verify_artifact(manifest.artifact_ref).status == "verified"
    assert len(failed) == 2


def test_a_part_that_keeps_failing_aborts_the_upload_and_leaves_no_parts(
    tmp_path: Path, s3_bucket: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "model.bin"
    model.write_bytes(os.urandom(40 * MIB))
    workspace = tmp_path / ".contexta"
    with _open(workspace, s3_bucket) as ctx:
        manifest = _register(ctx, model)

    def part_3_always(method: str, path: str) -> bool:
        return method == "PUT" and "partNumber=3&" in path + "&"

    with flaky_gateway(s3_bucket.server.endpoint_url, part_3_always) as (endpoint, failed):
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        with _open(workspace, s3_bucket) as ctx:
            with pytest.raises(ArtifactStorageError) as excinfo:
                ctx.artifact_store.keep_copy(manifest.artifact_ref)
            assert excinfo.value.code == "artifact_storage_failed"
            assert "part 3" in str(excinfo.value)
            assert ctx.artifact_store.stored_location(manifest.artifact_ref) is None
    # Part 3 was tried again (botocore's standard retries) before the upload was given up and aborted.
    assert len(failed) >= 3 and all(request.endswith("partNumber=3") for request in failed), failed
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_bucket.server.endpoint_url)
    assert _all_keys(s3_bucket) == []
    assert _client().list_multipart_uploads(Bucket=s3_bucket.name).get("Uploads", []) == []

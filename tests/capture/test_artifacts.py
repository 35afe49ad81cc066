"""Artifact registration and verification (SPEC §6): BLAKE3 digests, the artifact log, and re-hashing."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest

from contexta import Contexta
from contexta.capture import hash_file, read_capture_log
from contexta.errors import NotFoundError, ValidationError

MiB = 1024 * 1024
ARTIFACT_REF = re.compile(r"artifact:p\.r\.model-[0-9a-f]{12}")


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[Contexta]:
    contexta = Contexta(workspace=tmp_path / ".contexta", config={"project_name": "p"})
    yield contexta
    contexta.close()


@pytest.fixture(scope="module")
def large_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A ~40 MB random file (well past the memory-mapped threshold) and its reference digest."""
    path = tmp_path_factory.mktemp("large") / "checkpoint.bin"
    chunks = [os.urandom(MiB) for _ in range(40)] + [os.urandom(12_345)]  # not a whole number of chunks
    with open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    return path, blake3.blake3(b"".join(chunks)).hexdigest()


def write_random(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def artifact_lines(ctx: Contexta) -> list[dict[str, Any]]:
    ctx.flush()
    read = read_capture_log(ctx.workspace / "cache" / "capture" / "artifact.jsonl")
    assert read.clean
    return read.lines


# -- digests ------------------------------------------------------------------------------------


def test_a_large_file_is_hashed_with_blake3(ctx: Contexta, large_file: tuple[Path, str]) -> None:
    path, expected = large_file
    size = path.stat().st_size

    digest = hash_file(path)
    assert (digest.hash_value, digest.size_bytes) == (expected, size)

    with ctx.run("r") as run:
        registered = run.register_artifact("model", path)
    manifest = registered.payload["manifest"]
    assert (manifest.hash_value, manifest.size_bytes) == (expected, size)
    (line,) = artifact_lines(ctx)
    assert line["payload"]["manifest"]["hash_value"] == expected
    assert line["payload"]["manifest"]["size_bytes"] == size


@pytest.mark.parametrize(
    "size",
    [0, 1, 1000, MiB, MiB + 17, 4 * MiB - 1, 4 * MiB, 4 * MiB + 1],
    ids=["empty", "1B", "1000B", "1MiB", "1MiB+17", "4MiB-1", "4MiB", "4MiB+1"],
)
def test_files_around_the_read_and_map_thresholds_hash_correctly(
    ctx: Contexta, tmp_path: Path, size: int
) -> None:
    path = tmp_path / "weights.bin"
    data = write_random(path, size)
    expected = blake3.blake3(data).hexdigest()

    assert hash_file(path).hash_value == expected
    assert hash_file(path).size_bytes == size
    with ctx.run("r") as run:
        manifest = run.register_artifact("model", path).payload["manifest"]
    assert (manifest.hash_value, manifest.size_bytes) == (expected, size)


# -- the artifact log -------------------------------------------------------------------------


def test_a_registered_file_is_bound_in_the_artifact_log(
    ctx: Contexta, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_random(tmp_path / "model.pkl", 2048)
    monkeypatch.chdir(tmp_path)
    absolute = os.path.abspath("model.pkl")

    with ctx.run("r") as run, run.stage("train") as stage:
        result = stage.register_artifact("model", "model.pkl", attributes={"format": "pickle"})

    assert result.accepted
    assert result.payload["binding_status"] == "BOUND"
    manifest = result.payload["manifest"]
    assert ARTIFACT_REF.fullmatch(manifest.artifact_ref)
    assert manifest.run_ref == run.ref

    (line,) = artifact_lines(ctx)
    assert line["family"] == "ARTIFACT"
    assert line["sink_name"] == "local-jsonl"
    payload = line["payload"]
    assert payload["binding_status"] == "BOUND"
    assert payload["source"] == {"exists": True, "kind": "PATH", "uri": absolute}
    logged = payload["manifest"]
    assert ARTIFACT_REF.fullmatch(logged["artifact_ref"])
    assert logged["artifact_ref"] == manifest.artifact_ref
    assert logged["artifact_kind"] == "model"
    assert logged["run_ref"] == run.ref
    assert logged["stage_execution_ref"] == stage.ref
    assert logged["location_ref"] == f"path:{absolute}"
    assert logged["hash_algorithm"] == "blake3"
    assert logged["hash_value"] == blake3.blake3(data).hexdigest()
    assert logged["size_bytes"] == 2048
    assert logged["attributes"] == {"format": "pickle"}
    assert logged["created_at"].endswith("Z")


def test_two_registrations_of_one_kind_get_distinct_refs(ctx: Contexta, tmp_path: Path) -> None:
    write_random(tmp_path / "a.bin", 10)
    with ctx.run("r") as run:
        first = run.register_artifact("model", tmp_path / "a.bin").payload["manifest"].artifact_ref
        second = run.register_artifact("model", tmp_path / "a.bin").payload["manifest"].artifact_ref
    assert first != second
    assert ARTIFACT_REF.fullmatch(first) and ARTIFACT_REF.fullmatch(second)


def test_a_missing_file_raises_and_records_nothing(ctx: Contexta, tmp_path: Path) -> None:
    with ctx.run("r") as run:
        with pytest.raises(ValidationError) as raised:
            run.register_artifact("model", tmp_path / "not-written-yet.pkl")
        assert raised.value.code == "artifact_missing"
        assert raised.value.message
    assert run.status == "completed"
    assert artifact_lines(ctx) == []


def test_allow_missing_records_a_pending_binding(ctx: Contexta, tmp_path: Path) -> None:
    path = tmp_path / "later.pkl"
    with ctx.run("r") as run:
        result = run.register_artifact("model", path, allow_missing=True)
    assert result.payload["binding_status"] == "PENDING"
    assert result.payload["manifest"].hash_value is None
    (line,) = artifact_lines(ctx)
    payload = line["payload"]
    assert payload["binding_status"] == "PENDING"
    assert payload["manifest"].get("hash_value") is None
    assert payload["manifest"]["location_ref"] == f"path:{path}"
    assert payload["source"]["exists"] is False
    assert payload["source"]["uri"] == str(path)


def test_a_directory_is_refused(ctx: Contexta, tmp_path: Path) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    with pytest.raises(ValidationError) as raised:
        hash_file(folder)
    assert raised.value.code == "artifact_not_regular_file"
    with ctx.run("r") as run:
        with pytest.raises(ValidationError) as raised:
            run.register_artifact("model", folder)
        assert raised.value.code == "artifact_not_regular_file"
    assert artifact_lines(ctx) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_fifo_is_refused_without_blocking(ctx: Contexta, tmp_path: Path) -> None:
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    outcome: dict[str, BaseException] = {}

    def register() -> None:
        try:
            with ctx.run("r") as run:
                run.register_artifact("model", fifo)
        except BaseException as error:
            outcome["error"] = error

    worker = threading.Thread(target=register, daemon=True)
    worker.start()
    worker.join(timeout=20)
    if worker.is_alive():
        # Opening the FIFO blocked waiting for a writer: give it one so the thread can end, then fail.
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(writer)
        worker.join(timeout=20)
        pytest.fail("register_artifact blocked on a FIFO")
    error = outcome.get("error")
    assert isinstance(error, ValidationError)
    assert error.code == "artifact_not_regular_file"
    with pytest.raises(ValidationError) as raised:
        hash_file(fifo)
    assert raised.value.code == "artifact_not_regular_file"


def test_compute_hash_false_records_the_size_only(ctx: Contexta, tmp_path: Path) -> None:
    path = tmp_path / "huge.bin"
    write_random(path, 3000)
    with ctx.run("r") as run:
        result = run.register_artifact("model", path, compute_hash=False)
    assert result.payload["binding_status"] == "BOUND"
    assert result.payload["manifest"].hash_value is None
    assert result.payload["manifest"].size_bytes == 3000
    (line,) = artifact_lines(ctx)
    assert line["payload"]["manifest"]["size_bytes"] == 3000
    assert line["payload"]["manifest"].get("hash_value") is None
    assert line["payload"]["source"]["exists"] is True


# -- verification -----------------------------------------------------------------------------


def flip_one_byte(path: Path) -> None:
    with open(path, "r+b") as handle:
        handle.seek(path.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))


def append_bytes(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"more")


def delete(path: Path) -> None:
    path.unlink()


@pytest.mark.parametrize("size", [4096, 5 * MiB], ids=["read", "mmap"])
@pytest.mark.parametrize(
    ("change", "status"),
    [(flip_one_byte, "hash_mismatch"), (append_bytes, "size_mismatch"), (delete, "missing")],
    ids=["same-size-edit", "appended", "deleted"],
)
def test_verify_artifact_reports_what_changed(
    ctx: Contexta, tmp_path: Path, size: int, change: Any, status: str
) -> None:
    path = tmp_path / "model.bin"
    data = write_random(path, size)
    with ctx.run("r") as run:
        ref = run.register_artifact("model", path).payload["manifest"].artifact_ref

    verified = ctx.verify_artifact(ref)
    assert verified.status == "verified"
    assert verified.ok
    assert verified.artifact_ref == ref
    assert verified.expected_hash == verified.actual_hash == blake3.blake3(data).hexdigest()

    change(path)
    after = ctx.verify_artifact(ref)
    assert after.status == status
    assert not after.ok
    assert after.expected_hash == blake3.blake3(data).hexdigest()
    if status != "missing":
        assert after.actual_hash == blake3.blake3(path.read_bytes()).hexdigest()
        assert after.actual_size == path.stat().st_size


def test_verify_artifact_finds_refs_from_an_earlier_contexta(tmp_path: Path) -> None:
    workspace = tmp_path / ".contexta"
    path = tmp_path / "model.bin"
    write_random(path, 1500)
    with Contexta(workspace=workspace, config={"project_name": "p"}) as first, first.run("r") as run:
        ref = run.register_artifact("model", path).payload["manifest"].artifact_ref

    with Contexta(workspace=workspace, config={"project_name": "p"}) as later:
        assert later.verify_artifact(ref).status == "verified"
        flip_one_byte(path)
        assert later.verify_artifact(ref).status == "hash_mismatch"


def test_verify_artifact_of_an_unknown_ref_raises_not_found(ctx: Contexta) -> None:
    with pytest.raises(NotFoundError) as raised:
        ctx.verify_artifact("artifact:p.r.model-0123456789ab")
    assert raised.value.code
    with ctx.run("r"):
        pass
    with pytest.raises(NotFoundError):  # an existing log without the ref is no different
        ctx.verify_artifact("artifact:p.r.model-0123456789ab")

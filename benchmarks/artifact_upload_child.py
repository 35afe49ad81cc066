"""One measurement of `benchmarks/test_artifact_upload.py`, in a process of its own so that its peak
RSS belongs to that method alone: `python artifact_upload_child.py METHOD FILE KEY` prints a JSON line
with the seconds the method took, the RSS before it (after imports and client set-up) and the peak
(VmHWM: see `_status_kib`).
Imports are kept few, so that the peak is the method's and not the interpreter's start-up.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

BUCKET = "bench"
MIB = 1024 * 1024
PART = 16 * MIB
THREADS = 4


def _status_kib(field: str) -> int:
    """`VmRSS` (now) or `VmHWM` (the peak) of this process, in KiB.

    Not `ru_maxrss`: Linux carries it over from the parent through fork and exec, so a child of a
    pytest process that had just hashed a 1 GiB file through mmap reports at least 1 GiB. `VmHWM`
    belongs to the address space exec made, and counts the same pages (C and Rust buffers too)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def _boto3_loop(client: Any, path: Path, key: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from blake3 import blake3

    hasher = blake3()
    upload = client.create_multipart_upload(Bucket=BUCKET, Key=key)["UploadId"]
    parts: list[dict[str, Any]] = []
    try:
        with open(path, "rb") as handle, ThreadPoolExecutor(THREADS) as pool:
            pending: list[Any] = []
            number = 0
            while chunk := handle.read(PART):
                hasher.update(chunk)
                number += 1
                pending.append(
                    pool.submit(
                        client.upload_part,
                        Bucket=BUCKET,
                        Key=key,
                        UploadId=upload,
                        PartNumber=number,
                        Body=chunk,
                    )
                )
                if len(pending) >= THREADS:  # bounded: at most THREADS parts in memory
                    done = pending.pop(0)
                    parts.append({"PartNumber": len(parts) + 1, "ETag": done.result()["ETag"]})
            for done in pending:
                parts.append({"PartNumber": len(parts) + 1, "ETag": done.result()["ETag"]})
        client.complete_multipart_upload(
            Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )
    except BaseException:
        client.abort_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload)
        raise
    hasher.hexdigest()


def _child(method: str, path: Path, key: str) -> dict[str, Any]:
    """Run one method once in this process; the timings and memory of it."""
    import boto3  # imported by every S3 method's child alike, so set-up RSS compares
    import obstore
    from boto3.s3.transfer import TransferConfig
    from obstore.store import S3Store

    from contexta.contract._hashing import hash_file
    from contexta.store import S3ArtifactBackend

    client = boto3.client("s3")
    store = S3Store(BUCKET, client_options={"allow_http": True})
    backend = S3ArtifactBackend.from_url(f"s3://{BUCKET}/contexta")
    _ = backend.client  # made before the baseline, like the other clients
    digest = os.environ.get("BENCH_DIGEST", "")  # hashed by the parent: an mmap here would count in RSS
    baseline = _status_kib("VmRSS")
    setup_peak = _status_kib("VmHWM")
    started = time.perf_counter()
    if method == "copyfile":
        shutil.copyfile(path, path.with_name(path.name + ".copy"))
    elif method == "blake3_mmap":
        hash_file(path)
    elif method == "boto3_transfer":
        config = TransferConfig(multipart_threshold=PART, multipart_chunksize=PART, max_concurrency=THREADS)
        client.upload_file(str(path), BUCKET, key, Config=config)
    elif method == "boto3_loop":
        _boto3_loop(client, path, key)
    elif method == "obstore_path":
        obstore.put(store, key, path, chunk_size=PART, max_concurrency=THREADS)
    elif method == "obstore_stream":
        from blake3 import blake3

        hasher = blake3()

        def chunks() -> Any:
            with open(path, "rb") as handle:
                while chunk := handle.read(PART):
                    hasher.update(chunk)
                    yield chunk

        obstore.put(store, key, chunks(), chunk_size=PART, max_concurrency=THREADS)
    elif method == "contexta":
        backend.put_file(path, digest, path.stat().st_size)
    else:
        raise ValueError(method)
    elapsed = time.perf_counter() - started
    peak = _status_kib("VmHWM")
    return {"seconds": elapsed, "baseline_kib": baseline, "setup_peak_kib": setup_peak, "peak_kib": peak}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1], Path(sys.argv[2]), sys.argv[3])))

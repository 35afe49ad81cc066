"""The real-server fixtures do what the backend tests will rely on: a database of each test's own on a
real PostgreSQL, and a bucket of each test's own on a real S3-compatible server, reached through the
same environment variables the artifact backend reads."""

from __future__ import annotations

import hashlib
import os
import urllib.parse

import boto3
import psycopg
import pytest

import services
from services import PostgresServer, S3Bucket

MIB = 1024 * 1024


def _public_tables(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return sorted(str(name) for (name,) in rows)


def test_postgres_url_is_a_fresh_database_that_keeps_a_row(postgres_url: str) -> None:
    parts = urllib.parse.urlsplit(postgres_url)
    assert parts.scheme == "postgresql"
    assert parts.path.startswith("/contexta_test_")
    assert _public_tables(postgres_url) == []
    with psycopg.connect(postgres_url) as connection:
        connection.execute("CREATE TABLE runs (id bigint PRIMARY KEY, name text NOT NULL)")
        connection.execute("INSERT INTO runs VALUES (%s, %s)", (1, "baseline"))
    with psycopg.connect(postgres_url) as connection:  # committed: a new connection sees it
        assert connection.execute("SELECT id, name FROM runs").fetchall() == [(1, "baseline")]


def test_two_databases_are_separate(postgres_server: PostgresServer, postgres_url: str) -> None:
    with services.database(postgres_server) as other_url:
        assert other_url != postgres_url
        with psycopg.connect(postgres_url) as connection:
            connection.execute("CREATE TABLE only_here (x int)")
        assert _public_tables(postgres_url) == ["only_here"]
        assert _public_tables(other_url) == []
    other_name = urllib.parse.urlsplit(other_url).path.lstrip("/")
    with psycopg.connect(postgres_server.admin_url) as admin:
        left = admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", (other_name,)).fetchone()
    assert left == (0,)  # dropped on the way out


def test_s3_bucket_round_trips_an_object_through_the_environment(s3_bucket: S3Bucket) -> None:
    assert s3_bucket.url == f"s3://{s3_bucket.name}/{s3_bucket.prefix}"
    assert os.environ["AWS_ENDPOINT_URL"] == s3_bucket.server.endpoint_url
    # No endpoint or keys passed: boto3 finds them in the variables the fixture set, as the backend will.
    client = boto3.client("s3")
    key = f"{s3_bucket.prefix}/hello.txt"
    client.put_object(Bucket=s3_bucket.name, Key=key, Body=b"hello, bucket")
    assert client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read() == b"hello, bucket"
    listed = client.list_objects_v2(Bucket=s3_bucket.name, Prefix=s3_bucket.prefix)
    assert [item["Key"] for item in listed["Contents"]] == [key]


def test_s3_bucket_takes_a_multipart_upload(s3_bucket: S3Bucket) -> None:
    client = s3_bucket.server.client()
    key = f"{s3_bucket.prefix}/model.bin"
    parts = [bytes([index]) * (5 * MIB) for index in range(3)]  # 5 MiB: S3's smallest non-final part
    upload = client.create_multipart_upload(Bucket=s3_bucket.name, Key=key)
    done = [
        {
            "PartNumber": number,
            "ETag": client.upload_part(
                Bucket=s3_bucket.name, Key=key, UploadId=upload["UploadId"], PartNumber=number, Body=body
            )["ETag"],
        }
        for number, body in enumerate(parts, start=1)
    ]
    client.complete_multipart_upload(
        Bucket=s3_bucket.name, Key=key, UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    head = client.head_object(Bucket=s3_bucket.name, Key=key)
    assert head["ContentLength"] == 15 * MIB
    assert head["ETag"].strip('"').endswith("-3")  # S3's multipart ETag: digest of the parts, then count
    read = hashlib.sha256(client.get_object(Bucket=s3_bucket.name, Key=key)["Body"].read()).hexdigest()
    assert read == hashlib.sha256(b"".join(parts)).hexdigest()


def test_s3_server_checks_signatures(s3_bucket: S3Bucket) -> None:
    from botocore.exceptions import ClientError

    server = s3_bucket.server
    client = server.client()
    client.put_object(Bucket=s3_bucket.name, Key="x", Body=b"1")
    stranger = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="not-a-key",
        aws_secret_access_key="not-a-secret",
        region_name=server.region,
    )
    with pytest.raises(ClientError):  # the server really checks signatures
        stranger.get_object(Bucket=s3_bucket.name, Key="x")

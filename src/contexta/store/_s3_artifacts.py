"""Artifact copies in S3-compatible storage, content-addressed by BLAKE3: `<prefix>/blake3/<aa>/<digest>`.

Why it is shaped this way:
- The digest is known before the upload starts (`register_artifact` hashed the file with one mmap
  pass at several GB/s), so the bytes go straight to their final key: no temporary object, no
  server-side copy (S3 copies one request at most 5 GB; above that it takes UploadPartCopy), and an
  object already there with the same size and digest is not sent again.
- The upload is one streaming pass: each part is read into its own buffer, hashed, and handed to a
  small pool of uploaders; at most `concurrency` parts are in memory, whatever the file's size. The
  digest of what was sent is compared before the multipart upload completes, so a file that changed
  since it was registered never appears under the old digest's key.
- Any failure aborts the multipart upload, so no orphaned parts keep costing storage; each part is
  retried by botocore's standard retry mode (5xx, throttling, dropped connections) first.
- Downloads stream into a partial file beside the destination, hashed as they arrive, and are renamed
  into place only when size and digest match.
- The object's metadata carries the digest (`x-amz-meta-blake3`), so a cheap HEAD tells whether the
  object is the one expected; `verify` also re-hashes the bytes by streaming them, unless asked not to.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from blake3 import blake3

from contexta.errors import ArtifactStorageError, ConfigurationError, ValidationError
from contexta.store._s3_client import make_client, storage_error

__all__ = ["S3ArtifactBackend", "S3ObjectCheck", "is_s3_location", "parse_s3_url"]

MIB = 1024 * 1024
PART_BYTES = 16 * MIB  # S3's minimum part is 5 MiB; 16 MiB keeps request overhead small
MAX_PARTS = 10_000  # S3's limit: parts grow for files above 10,000 x PART_BYTES (~156 GiB)
CONCURRENCY = 4
_READ_BYTES = 4 * MIB
_DIGEST_METADATA = "blake3"


def is_s3_location(location: str | None) -> bool:
    return location is not None and location.startswith("s3://")


def parse_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key or prefix) of `s3://bucket/key`; the prefix has no leading or trailing slash."""
    if not url.startswith("s3://"):
        raise ConfigurationError(f"{url!r} is not an s3:// URL", code="config_value_invalid")
    bucket, _, rest = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise ConfigurationError(f"{url!r} names no bucket", code="config_value_invalid")
    return bucket, rest.strip("/")


def part_bytes_for(size: int) -> int:
    """The part size for a file of `size` bytes: PART_BYTES, or larger (whole MiB) to stay within
    S3's 10,000 parts."""
    needed = -(-size // MAX_PARTS)
    return max(PART_BYTES, -(-needed // MIB) * MIB)


@dataclass(frozen=True, slots=True)
class S3ObjectCheck:
    """What `verify` found at a location: `verified`, `missing`, `size_mismatch` or `hash_mismatch`."""

    location: str
    status: str
    actual_hash: str | None
    actual_size: int | None


class S3ArtifactBackend:
    """Content-addressed artifact copies under `s3://bucket/prefix` (the client is made on first use)."""

    def __init__(self, bucket: str, prefix: str, *, client: Any = None):
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._bucket_checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str) -> S3ArtifactBackend:
        bucket, prefix = parse_s3_url(url)
        return cls(bucket, prefix)

    # -- naming ----------------------------------------------------------------------------------

    def key_for(self, digest: str) -> str:
        relative = f"blake3/{digest[:2]}/{digest}"
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def location_for(self, digest: str) -> str:
        return f"s3://{self.bucket}/{self.key_for(digest)}"

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = make_client()
            return self._client

    def _call(self, action: str, call: Callable[..., Any], bucket: str | None = None, **kwargs: Any) -> Any:
        """`call(**kwargs)`, its failure translated into an `ArtifactStorageError` naming `action`."""
        try:
            return call(**kwargs)
        except ArtifactStorageError:
            raise
        except Exception as error:
            raise storage_error(error, bucket or self.bucket, action) from None

    def _check_bucket(self, bucket: str) -> None:
        """One HEAD of the bucket before the first transfer: a missing bucket, refused credentials or
        an unreachable endpoint are named as such instead of surfacing as a failed part."""
        if self._bucket_checked and bucket == self.bucket:
            return
        self._call("check bucket", self.client.head_bucket, bucket, Bucket=bucket)
        if bucket == self.bucket:
            self._bucket_checked = True

    def _head(self, bucket: str, key: str) -> dict[str, Any] | None:
        try:
            return dict(self.client.head_object(Bucket=bucket, Key=key))
        except Exception as error:
            response = getattr(error, "response", None)
            if isinstance(response, dict) and str(response.get("Error", {}).get("Code")) in (
                "404",
                "NoSuchKey",
            ):
                return None
            raise storage_error(error, bucket, f"look up {key}") from None

    # -- put -------------------------------------------------------------------------------------

    def put_file(self, path: Path, digest: str, size: int) -> str:
        """Upload the file at `path` under its digest's key, unless an object of that size and digest
        is already there; its `s3://bucket/key` location.

        `digest` and `size` are what registration recorded: the bytes sent are hashed on the way, and
        a file that no longer matches raises `ValidationError(artifact_changed)` with nothing stored.
        """
        key = self.key_for(digest)
        self._check_bucket(self.bucket)
        existing = self._head(self.bucket, key)
        if (
            existing is not None
            and existing.get("ContentLength") == size
            and existing.get("Metadata", {}).get(_DIGEST_METADATA) == digest
        ):
            return self.location_for(digest)
        if size <= PART_BYTES:
            self._put_small(path, key, digest, size)
        else:
            self._put_multipart(path, key, digest, size)
        return self.location_for(digest)

    def _changed(self, path: Path) -> ValidationError:
        return ValidationError(
            f"{path} no longer matches the digest registered for it; nothing was stored",
            code="artifact_changed",
            details={"path": str(path)},
        )

    def _put_small(self, path: Path, key: str, digest: str, size: int) -> None:
        body = path.read_bytes()
        if len(body) != size or blake3(body).hexdigest() != digest:
            raise self._changed(path)
        self._call(
            f"upload {key}",
            self.client.put_object,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            Metadata={_DIGEST_METADATA: digest},
        )

    def _put_multipart(self, path: Path, key: str, digest: str, size: int) -> None:
        upload_id = self._call(
            f"start the upload of {key}",
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=key,
            Metadata={_DIGEST_METADATA: digest},
        )["UploadId"]
        try:
            parts = self._send_parts(path, key, upload_id, size, digest)
            self._call(
                f"complete the upload of {key}",
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # No orphaned parts: they would be billed and never listed (best effort: the failure that
            # brought us here is the one the caller needs to see).
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            except Exception:
                pass
            raise

    def _send_parts(
        self, path: Path, key: str, upload_id: str, size: int, digest: str
    ) -> list[dict[str, Any]]:
        """Read, hash and upload every part (at most CONCURRENCY in memory); the parts' ETags."""
        part_bytes = part_bytes_for(size)
        hasher = blake3()
        etags: list[dict[str, Any]] = []
        in_flight: deque[tuple[int, Future[Any]]] = deque()
        sent = 0

        def collect(oldest: tuple[int, Future[Any]]) -> None:
            number, future = oldest
            etags.append({"PartNumber": number, "ETag": future.result()["ETag"]})

        with open(path, "rb") as handle, ThreadPoolExecutor(CONCURRENCY, "contexta-s3-part") as pool:
            try:
                number = 0
                while part := handle.read(part_bytes):
                    hasher.update(part)
                    sent += len(part)
                    if sent > size:
                        raise self._changed(path)
                    number += 1
                    if len(in_flight) >= CONCURRENCY:
                        collect(in_flight.popleft())  # wait for a buffer to free up: memory stays bounded
                    in_flight.append(
                        (
                            number,
                            pool.submit(
                                self._call,
                                f"upload part {number} of {key}",
                                self.client.upload_part,
                                Bucket=self.bucket,
                                Key=key,
                                UploadId=upload_id,
                                PartNumber=number,
                                Body=part,
                            ),
                        )
                    )
                    del part
                while in_flight:
                    collect(in_flight.popleft())
            finally:
                for _, future in in_flight:
                    future.cancel()
        if sent != size or hasher.hexdigest() != digest:
            raise self._changed(path)
        return etags

    # -- get -------------------------------------------------------------------------------------

    def _stream(self, location: str) -> tuple[Any, int]:
        bucket, key = parse_s3_url(location)
        self._check_bucket(bucket)
        response = self._call(f"download {key}", self.client.get_object, bucket, Bucket=bucket, Key=key)
        return response["Body"], int(response["ContentLength"])

    def _chunks(self, body: Any, bucket: str, key: str) -> Iterator[bytes]:
        """The body's bytes in bounded chunks; a connection lost midway is an `ArtifactStorageError`."""
        chunks = body.iter_chunks(chunk_size=_READ_BYTES)
        while True:
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as error:
                raise storage_error(error, bucket, f"download {key}") from None
            yield chunk

    def download(self, location: str, digest: str, size: int | None, destination: Path) -> Path:
        """Stream the object at `location` into `destination` (renamed into place only once its size
        and BLAKE3 digest match); `ArtifactStorageError(artifact_digest_mismatch)` otherwise."""
        bucket, key = parse_s3_url(location)
        if self._head(bucket, key) is None:
            self._check_bucket(bucket)
            raise ArtifactStorageError(
                f"{location} does not exist (the copy was removed from the bucket)",
                code="artifact_copy_missing",
                details={"location": location},
            )
        body, _ = self._stream(location)
        destination.parent.mkdir(parents=True, exist_ok=True)
        partial = destination.with_name(f".{destination.name}.{os.getpid()}.partial")
        hasher = blake3()
        received = 0
        try:
            with open(partial, "wb") as handle:
                for chunk in self._chunks(body, bucket, key):
                    hasher.update(chunk)
                    handle.write(chunk)
                    received += len(chunk)
            actual = hasher.hexdigest()
            if actual != digest or (size is not None and received != size):
                raise ArtifactStorageError(
                    f"{location} holds {received} bytes with digest {actual[:16]}…, not the registered "
                    f"{digest[:16]}…: the stored copy is damaged; nothing was written to {destination}",
                    code="artifact_digest_mismatch",
                    details={"location": location, "expected_hash": digest, "actual_hash": actual},
                )
            os.replace(partial, destination)
        finally:
            body.close()
            partial.unlink(missing_ok=True)
        return destination

    # -- verify ----------------------------------------------------------------------------------

    def verify(self, location: str, digest: str, size: int | None, *, rehash: bool = True) -> S3ObjectCheck:
        """Whether the object at `location` is still the registered one: present, of the registered
        size, with the digest in its metadata, and (with `rehash`) bytes that hash to it."""
        bucket, key = parse_s3_url(location)
        head = self._head(bucket, key)
        if head is None:
            self._check_bucket(bucket)  # a missing bucket is an error, not a missing artifact
            return S3ObjectCheck(location, "missing", None, None)
        length = int(head["ContentLength"])
        if size is not None and length != size:
            return S3ObjectCheck(location, "size_mismatch", None, length)
        recorded = head.get("Metadata", {}).get(_DIGEST_METADATA)
        if not rehash:
            status = "verified" if recorded == digest else "hash_mismatch"
            return S3ObjectCheck(location, status, recorded, length)
        body, _ = self._stream(location)
        hasher = blake3()
        try:
            for chunk in self._chunks(body, bucket, key):
                hasher.update(chunk)
        finally:
            body.close()
        actual = hasher.hexdigest()
        status = "verified" if actual == digest and recorded == digest else "hash_mismatch"
        return S3ObjectCheck(location, status, actual, length)

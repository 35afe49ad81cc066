"""Talking to S3-compatible storage: a boto3 client set up from the environment, and its failures
turned into `ArtifactStorageError`s with codes a caller can act on.

boto3 is imported here, when a workspace with `artifacts.url` first copies, verifies or fetches an
artifact, never by `import contexta` (it costs ~200 ms and ~40 MB). The endpoint and the credentials
come from the environment only (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_REGION / AWS_DEFAULT_REGION, or boto3's own chain after them), so nothing that could open the
bucket is ever written into the workspace or the store. Why boto3 rather than obstore: see
docs/benchmarks.md, "Artifact upload to S3".
"""

from __future__ import annotations

import os
from typing import Any

from contexta._optional import require_module
from contexta.errors import ArtifactStorageError

__all__ = ["S3_CLIENT_RETRIES", "make_client", "storage_error"]

# Attempts per request (a part, a HEAD, a GET) in botocore's "standard" mode, which retries throttling,
# 5xx answers (the 502/504 a proxy gives on a slow part) and dropped connections with jittered backoff.
S3_CLIENT_RETRIES = 5

_CREDENTIAL_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "AuthorizationHeaderMalformed",
        "403",
    }
)
_BUCKET_CODES = frozenset({"NoSuchBucket"})


def make_client() -> Any:
    """A boto3 S3 client configured only from the environment (path-style addressing when an endpoint
    is given, since local and self-hosted servers rarely serve bucket subdomains)."""
    boto3 = require_module("boto3", "keeping artifacts in S3 (artifacts.url)", extra="s3")
    botocore_config = require_module(
        "botocore.config", "keeping artifacts in S3", package="boto3", extra="s3"
    )
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None
    config = botocore_config.Config(
        retries={"mode": "standard", "max_attempts": S3_CLIENT_RETRIES},
        connect_timeout=10,
        read_timeout=120,
        s3={"addressing_style": "path" if endpoint else "auto"},
        # Only what the caller asked for: no CRC trailers (some S3-compatible servers refuse them).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def storage_error(error: BaseException, bucket: str, action: str) -> ArtifactStorageError:
    """The `ArtifactStorageError` that says what went wrong with `action` on `bucket`."""
    exceptions = require_module("botocore.exceptions", "keeping artifacts in S3", package="boto3", extra="s3")
    details = {"bucket": bucket, "action": action, "reason": str(error)[:500]}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
    if isinstance(error, exceptions.ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in _BUCKET_CODES or (code in ("404", "NotFound") and action == "check bucket"):
            return ArtifactStorageError(
                f"the bucket {bucket!r} does not exist at {endpoint}; create it, or point artifacts.url "
                "at one that does",
                code="artifact_bucket_missing",
                details=details,
            )
        if code in _CREDENTIAL_CODES:
            return ArtifactStorageError(
                f"{endpoint} refused the credentials for bucket {bucket!r} ({code}) while trying to "
                f"{action}; check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and the "
                "bucket's policy",
                code="artifact_credentials_refused",
                details=details,
            )
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return ArtifactStorageError(
            f"no credentials for bucket {bucket!r}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
            code="artifact_credentials_refused",
            details=details,
        )
    if isinstance(
        error,
        exceptions.EndpointConnectionError | exceptions.ConnectTimeoutError | exceptions.ProxyConnectionError,
    ):
        return ArtifactStorageError(
            f"cannot reach {endpoint} to {action} (after {S3_CLIENT_RETRIES} attempts); check "
            "AWS_ENDPOINT_URL and the network",
            code="artifact_endpoint_unreachable",
            details=details,
        )
    return ArtifactStorageError(
        f"could not {action} in bucket {bucket!r}: {str(error)[:300]}",
        code="artifact_storage_failed",
        details=details,
    )

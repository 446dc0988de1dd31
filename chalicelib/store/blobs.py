"""S3 adapter: uploaded sources and the parsed skill artefacts."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.errors import NotFound, TransientError
from chalicelib.store import aws


def s3_client() -> Any:
    return aws.client("s3")


class BlobStore:
    """Objects by (bucket, key[, version]); JSON helpers for artefacts."""

    def get_bytes(self, bucket: str, key: str, version_id: str | None = None, *, max_bytes: int | None = None) -> bytes:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if version_id:
            kwargs["VersionId"] = version_id
        if max_bytes is not None:
            # read one byte past the limit so the caller can tell "too large" apart
            kwargs["Range"] = f"bytes=0-{max_bytes}"
        try:
            return s3_client().get_object(**kwargs)["Body"].read()
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "NoSuchBucket", "NoSuchVersion", "404"):
                raise NotFound(f"s3://{bucket}/{key} does not exist") from error
            if code == "InvalidRange":  # empty object
                return b""
            if code in ("SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout"):
                raise TransientError(f"S3 is unavailable ({code})") from error
            raise

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str | None:
        response = s3_client().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        return response.get("VersionId")

    def put_json(self, bucket: str, key: str, document: Any) -> None:
        self.put_bytes(bucket, key, json.dumps(document, sort_keys=True).encode(), "application/json")

    def get_json(self, bucket: str, key: str) -> Any:
        return json.loads(self.get_bytes(bucket, key))


def upload_with_own_credentials(bucket: str, key: str, data: bytes, content_type: str, *, region: str,
                                endpoint_url: str | None) -> None:  # fmt: skip
    """Put one object as the caller (the CLI's ``import --s3``), outside the stack's settings;
    TransientError saying what failed."""
    try:
        client = aws.own_session_client("s3", region=region, endpoint_url=endpoint_url)
        client.put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
    except aws.AwsError as error:
        raise TransientError(str(error)) from error

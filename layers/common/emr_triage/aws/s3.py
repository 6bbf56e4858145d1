"""Reading EMR logs from S3: list a prefix, stream an object in chunks (never whole into memory)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from emr_triage.aws import clients
from emr_triage.exceptions import LogReadError, TransientError
from emr_triage.logs.reader import CHUNK_SIZE
from emr_triage.ports import ObjectInfo, ObjectStream

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def _translate(exc: Exception, what: str) -> Exception:
    from botocore.exceptions import ClientError

    if clients.is_transient(exc):
        return TransientError(f"reading {what} failed transiently ({exc}); the event will be retried")
    if isinstance(exc, ClientError):
        code = clients.error_code(exc)
        if code in ("NoSuchKey", "404", "NotFound"):
            return LogReadError(f"{what} no longer exists (deleted, or expired by a lifecycle rule)")
        if code == "NoSuchBucket":
            return LogReadError(f"{what}: the bucket does not exist")
        if code in ("AccessDenied", "403", "AllAccessDisabled", "KMS.AccessDeniedException"):
            return LogReadError(
                f"access denied reading {what}: the function role needs s3:GetObject/s3:ListBucket on the log "
                "bucket (LogBucketName/LogKeyPrefix in template.yaml), and kms:Decrypt if the logs are KMS-encrypted"
            )
        return LogReadError(f"reading {what} failed: {code}: {exc.response.get('Error', {}).get('Message', '')}")
    return exc


class S3LogStore:
    """The log store over boto3 S3."""

    def __init__(self, client: S3Client | None = None) -> None:
        self._client = client

    @property
    def client(self) -> S3Client:
        return self._client or clients.s3()

    def list_objects(self, bucket: str, prefix: str, limit: int = 1000) -> list[ObjectInfo]:
        found: list[ObjectInfo] = []
        try:
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    found.append(
                        ObjectInfo(
                            bucket,
                            item["Key"],
                            int(item.get("Size", 0)),
                            str(item.get("ETag", "")).strip('"'),
                        )
                    )
                    if len(found) >= limit:
                        return found
        except Exception as exc:
            raise _translate(exc, f"s3://{bucket}/{prefix}") from exc
        return found

    def open_object(self, bucket: str, key: str) -> ObjectStream:
        what = f"s3://{bucket}/{key}"
        try:
            response: Any = self.client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:
            raise _translate(exc, what) from exc
        info = ObjectInfo(bucket, key, int(response.get("ContentLength", 0)), str(response.get("ETag", "")).strip('"'))
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK_SIZE)
            finally:
                body.close()

        return ObjectStream(info=info, chunks=chunks())

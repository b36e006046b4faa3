"""An archive's place in S3 (``s3://bucket/prefix``) and the few calls made to it.

:class:`ArchiveBucket` wraps a boto3 S3 client that the caller makes (the commands import
boto3; this module imports only botocore's exceptions, when a call fails): ``get``,
``put`` and ``names``, the last paginated with ``list_objects_v2`` (an archive of a large
ledger holds thousands of segments; a page is 1,000 keys at most). Every failure to reach
the bucket, or a refusal (no credentials, access denied, no such bucket), becomes
:class:`~crowdledger.adapters.archive.errors.ArchiveUnavailable` naming the object; a
missing object is ``None``, for the caller to judge.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from typing import Any

from crowdledger.adapters.archive.errors import ArchiveRefused, ArchiveUnavailable

__all__ = ["ArchiveBucket", "ArchiveLocation", "parse_location"]

# S3's own rule for bucket names (3 to 63 lowercase letters, digits, dots and hyphens).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_MISSING = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclasses.dataclass(frozen=True)
class ArchiveLocation:
    """``bucket`` and ``prefix`` (no leading or trailing ``/``; empty: the bucket's root)."""

    bucket: str
    prefix: str

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def name(self, key: str) -> str:
        return key[len(self.prefix) + 1 :] if self.prefix else key

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"


def parse_location(url: str) -> ArchiveLocation:
    """``s3://bucket/prefix`` -> :class:`ArchiveLocation`; refuses anything else."""
    if not url.startswith("s3://"):
        raise ArchiveRefused(f"{url!r} is not an archive address: use s3://bucket/prefix")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise ArchiveRefused(
            f"{bucket!r} is not an S3 bucket name (3 to 63 lowercase letters, digits, "
            "dots and hyphens)"
        )
    prefix = prefix.strip("/")
    if "//" in prefix or any(ord(c) < 32 or ord(c) == 127 for c in prefix):
        raise ArchiveRefused(
            f"{prefix!r} is not a usable key prefix (empty parts, control characters)"
        )
    return ArchiveLocation(bucket, prefix)


class ArchiveBucket:
    """The objects of one archive, through ``client`` (a boto3 S3 client)."""

    def __init__(self, client: Any, location: ArchiveLocation, *, page_size: int = 1000) -> None:
        self.client = client
        self.location = location
        self.page_size = page_size

    def _unavailable(self, action: str, name: str, exc: Exception) -> ArchiveUnavailable:
        code = _error_code(exc)
        detail = f"{code}: {exc}" if code else str(exc)
        return ArchiveUnavailable(
            f"{self.location}: could not {action} {name or 'the bucket'} ({detail})"
        )

    def get(self, name: str) -> bytes | None:
        """The object's bytes, or None if there is no such object."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            reply = self.client.get_object(Bucket=self.location.bucket, Key=self.location.key(name))
            data: bytes = reply["Body"].read()
        except ClientError as exc:
            if _error_code(exc) in _MISSING:
                return None
            raise self._unavailable("read", name, exc) from None
        except BotoCoreError as exc:
            raise self._unavailable("read", name, exc) from None
        return data

    def put(self, name: str, data: bytes, content_type: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(
                Bucket=self.location.bucket,
                Key=self.location.key(name),
                Body=data,
                ContentType=content_type,
            )
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("write", name, exc) from None

    def names(self, folder: str) -> Iterator[str]:
        """The names (keys without the prefix) under ``folder/``, in S3's key order."""
        from botocore.exceptions import BotoCoreError, ClientError

        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.location.bucket,
            Prefix=self.location.key(folder) + "/",
            PaginationConfig={"PageSize": self.page_size},
        )
        try:
            for page in pages:
                for item in page.get("Contents", ()):
                    yield self.location.name(item["Key"])
        except (BotoCoreError, ClientError) as exc:
            raise self._unavailable("list", folder + "/", exc) from None


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None

"""Amazon S3, Cloudflare R2 and any S3-compatible server, through botocore (the core of boto3).

`s3://BUCKET[/PREFIX]` uses the SDK's region and endpoint (or `--endpoint-url`);
`r2://ACCOUNT_ID/BUCKET[/PREFIX]` is the same API at the account's R2 endpoint, region "auto".
Credentials come only from the SDK's own chain (environment, profiles, instance roles).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
)

from claude_sync.errors import BackendError, ConfigError, ObjectNotFoundError, SyncError
from claude_sync.store import RemoteOptions
from claude_sync.store.base import PIECE_SIZE, ObjectInfo
from claude_sync.store.bucket import PROBE_PREFIX, BucketStore, remote_path

# Bucket names as S3 and R2 accept them (lower case, 3-63 characters).
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_ACCOUNT = re.compile(r"[A-Za-z0-9-]{1,63}")
# Fail fast on an unreachable endpoint (3 attempts x 3 s) yet ride out a throttled request.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 60
MAX_ATTEMPTS = 3
# A lost create-only race: 412 from S3 and most servers, 409 when two writes overlap on S3.
_LOST_RACE = {"PreconditionFailed", "ConditionalRequestConflict", "412"}
_NO_BUCKET = {"NoSuchBucket"}
_NO_KEY = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "403", "AllAccessDisabled", "AccountProblem"}
_BAD_KEY_ID = {"InvalidAccessKeyId", "InvalidToken", "ExpiredToken", "TokenRefreshRequired"}
_BAD_SECRET = {"SignatureDoesNotMatch"}
_WRONG_REGION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "301",
}


@dataclass(frozen=True)
class Location:
    scheme: str  # "s3" or "r2"
    bucket: str
    prefix: str  # "" or "a/b", never with a leading or trailing slash
    account: str | None = None

    def __str__(self) -> str:
        parts = [self.account, self.bucket, self.prefix]
        return f"{self.scheme}://" + "/".join(p for p in parts if p)


def parse(remote: str) -> Location:
    scheme, segments = remote_path(remote, ("s3", "r2"), "an")
    account = None
    if scheme == "r2":
        if len(segments) < 2:
            raise ConfigError(f"R2 remotes look like r2://ACCOUNT_ID/BUCKET[/PREFIX], not {remote}")
        account, *segments = segments
        if not _ACCOUNT.fullmatch(account):
            raise ConfigError(f"{account!r} is not an R2 account id")
    bucket, *prefix = segments
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(
            f"{bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, '.', '-')"
        )
    return Location(scheme, bucket, "/".join(prefix), account)


def normalize(remote: str) -> str:
    return str(parse(remote))


def open_remote(remote: str, options: RemoteOptions) -> S3Store:
    return S3Store(parse(remote), options)


def _client_config(options: RemoteOptions) -> Config:
    settings: dict[str, Any] = {
        "max_pool_connections": max(1, options.transfers),
        "connect_timeout": CONNECT_TIMEOUT,
        "read_timeout": READ_TIMEOUT,
        # The SDK's own retries: backoff on throttling, 5xx and dropped connections.
        "retries": {"mode": "standard", "max_attempts": MAX_ATTEMPTS},
        "user_agent_extra": "claude-sync",
    }
    if options.endpoint_url:
        # Self-hosted servers rarely have wildcard DNS for virtual-host buckets, and many
        # reject the CRC checksums botocore sends by default since 1.36. Our objects are
        # authenticated-encrypted, so corruption is caught on read anyway.
        settings["s3"] = {"addressing_style": "path"}
        settings["request_checksum_calculation"] = "when_required"
        settings["response_checksum_validation"] = "when_required"
    return Config(**settings)


# The services whose endpoints a made S3 client may still look up: itself, and the
# credential providers that resolve lazily (assumed roles through STS, SSO profiles).
_ENDPOINTS_KEPT = frozenset({"s3", "sts", "sso", "portal.sso", "oidc"})


def _new_client(endpoint: str | None, region: str | None, config: Config) -> Any:
    # botocore's own session rather than boto3's: nothing here uses boto3's additions,
    # whose import (s3transfer, multiprocessing) is ~2.5 MiB of a sync's peak memory.
    session = botocore.session.get_session()
    client = session.create_client("s3", endpoint_url=endpoint, region_name=region, config=config)
    _forget_other_services(session)
    return client


def _forget_other_services(session: botocore.session.Session) -> None:
    """Drop the other AWS services from the endpoint table the session keeps loaded.

    The table lists every service in every region, ~6.5 MiB of Python objects held for
    the life of the process; a sync of 50,000 files peaked just over 200 MiB with it.
    """
    endpoints = session.get_component("data_loader").load_data("endpoints")
    for partition in endpoints.get("partitions", ()):
        services = partition.get("services", {})
        for name in services.keys() - _ENDPOINTS_KEPT:
            del services[name]


class S3Store(BucketStore):
    conditional_write = "If-None-Match"

    def __init__(self, location: Location, options: RemoteOptions) -> None:
        self.location = location
        self.display = str(location)
        self.bucket = location.bucket
        self._key_prefix = f"{location.prefix}/" if location.prefix else ""
        self._create_bucket = options.create_bucket
        endpoint = options.endpoint_url
        region = None
        if location.scheme == "r2":
            endpoint = endpoint or f"https://{location.account}.r2.cloudflarestorage.com"
            region = "auto"
        self._endpoint = endpoint
        try:
            self._client = _new_client(endpoint, region, _client_config(options))
        except ValueError:  # botocore's word for a malformed endpoint URL
            raise ConfigError(f"{endpoint} is not a usable endpoint URL") from None
        except BotoCoreError as exc:  # e.g. an unknown AWS_PROFILE
            raise self._error(exc, "connect to") from None

    # -- the ObjectStore operations ------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, name: str) -> Iterator[None]:
        """What a read of object name fails with, as this store says it."""
        try:
            yield
        except ClientError as exc:
            if _code(exc) in _NO_KEY:
                raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None
            raise self._error(exc, "read from") from None
        except BotoCoreError as exc:
            raise self._error(exc, "read from") from None

    def content_tag(self, data: bytes) -> str | None:
        # The ETag of an object written in one request, unencrypted or with S3's own keys
        # (SSE-S3), is its MD5; with KMS keys it is not, and a kept root is then taken up
        # only from a listing.
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def get(self, name: str) -> bytes:
        with self._reading(name):
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            body: bytes = response["Body"].read()
            return body

    def get_pieces(self, name: str) -> Iterator[bytes]:
        with self._reading(name):
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
            with contextlib.closing(body):
                yield from body.iter_chunks(PIECE_SIZE)

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        with self._reading(name):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket,
                    Key=self._key(name),
                    Range=f"bytes={offset}-{offset + length - 1}",
                )
            except ClientError as exc:
                if _code(exc) == "InvalidRange":  # starts at or past the end
                    return b""
                raise
            body: bytes = response["Body"].read()
            return body

    def put_if_absent(self, name: str, data: bytes) -> bool:
        key = self._key(name)
        try:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*")
            return True
        except ClientError as exc:
            if _code(exc) in _LOST_RACE:
                return self._retry_found_own_write(exc, name, data)
            if _code(exc) == "NotImplemented":
                raise self._no_conditional_writes() from None
            raise self._error(exc, "write to") from None
        except BotoCoreError as exc:
            raise self._error(exc, "write to") from None

    def _listing(self, prefix: str, start_after: str) -> list[ObjectInfo]:
        # LastModified is the S3 server's clock at the time the upload completed.
        start = len(self._key_prefix)
        infos = []
        after = {"StartAfter": self._key_prefix + start_after} if start_after else {}
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key_prefix + prefix, **after
            )
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"][start:]
                    if not name.startswith(PROBE_PREFIX):
                        modified = item["LastModified"].timestamp()
                        # Servers quote the ETag or not, in either case.
                        tag = item.get("ETag", "").strip('"').lower() or None
                        infos.append(ObjectInfo(name, int(item["Size"]), modified, tag))
        except ClientError as exc:
            # `init --create-bucket` looks for an existing repository before it creates the
            # bucket: a bucket that is not there yet holds nothing.
            if _code(exc) in _NO_BUCKET and self._create_bucket:
                return []
            raise self._error(exc, "list") from None
        except BotoCoreError as exc:
            raise self._error(exc, "list") from None
        return infos

    def delete(self, name: str) -> None:
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(name))
        except ClientError as exc:
            if _code(exc) not in _NO_KEY:
                raise self._error(exc, "delete from") from None
        except BotoCoreError as exc:
            raise self._error(exc, "delete from") from None

    def close(self) -> None:
        self._client.close()

    # -- helpers --------------------------------------------------------------------------

    def _retry_found_own_write(self, exc: ClientError, name: str, data: bytes) -> bool:
        """A 412 after the SDK retried may answer our own first attempt, whose reply was lost:
        then the object holds exactly our bytes (random nonces make a stranger's differ)."""
        if exc.response.get("ResponseMetadata", {}).get("RetryAttempts", 0) == 0:
            return False
        try:
            return self.get(name) == data
        except ObjectNotFoundError:
            return False

    def _bucket_exists(self) -> bool:
        # Listing needs only the permission we need anyway; HeadBucket often is not granted.
        try:
            self._client.list_objects_v2(Bucket=self.bucket, Prefix=self._key_prefix, MaxKeys=1)
            return True
        except ClientError as exc:
            if _code(exc) in _NO_BUCKET:
                return False
            raise self._error(exc, "list") from None
        except BotoCoreError as exc:
            raise self._error(exc, "list") from None

    def _make_bucket(self) -> None:
        args: dict[str, Any] = {"Bucket": self.bucket}
        region = self._client.meta.region_name
        # us-east-1 is S3's default and must not be named; R2's "auto" is not a location.
        if region and region not in ("us-east-1", "auto", "aws-global"):
            args["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            self._client.create_bucket(**args)
        except ClientError as exc:
            code = _code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return  # created meanwhile by us, e.g. on another machine
            if code == "BucketAlreadyExists":
                raise ConfigError(
                    f"bucket {self.bucket} belongs to someone else; bucket names are global, "
                    "choose another"
                ) from None
            raise self._error(exc, "create the bucket on") from None
        except BotoCoreError as exc:
            raise self._error(exc, "create the bucket on") from None

    def _where(self) -> str:
        return self._endpoint or "S3"

    def _error(self, exc: Exception, action: str) -> SyncError:
        """The one place botocore's exceptions become one-line messages for the user."""
        where = self._where()
        if isinstance(exc, NoCredentialsError | PartialCredentialsError):
            return ConfigError(_no_credentials_hint(self.location.scheme))
        if isinstance(exc, ProfileNotFound):
            return ConfigError(f"cannot {action} {self.display}: {exc}")
        if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
            return BackendError(f"cannot reach {where}: no answer from the endpoint")
        if isinstance(exc, ConnectionClosedError | ReadTimeoutError):
            return BackendError(f"{where} stopped answering (connection closed or timed out)")
        if isinstance(exc, SSLError):
            return BackendError(f"TLS failed talking to {where}")
        if not isinstance(exc, ClientError):
            return BackendError(f"cannot {action} {self.display}: {exc}")
        code = _code(exc)
        if code in _NO_BUCKET:
            return self._missing_bucket()
        if code in _DENIED:
            return BackendError(
                f"access denied to bucket {self.bucket} at {where}: the credentials lack "
                f"permission to {action} it"
            )
        if code in _BAD_KEY_ID:
            return ConfigError(f"{where} does not accept the access key id (unknown or expired)")
        if code in _BAD_SECRET:
            return ConfigError(f"{where} rejected the request signature: wrong secret access key")
        if code in _WRONG_REGION:
            return ConfigError(self._region_hint(exc))
        message = exc.response.get("Error", {}).get("Message") or "no details"
        return BackendError(f"cannot {action} {self.display}: {code}: {message}")

    def _region_hint(self, exc: ClientError) -> str:
        error = exc.response.get("Error", {})
        headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        region = error.get("Region") or headers.get("x-amz-bucket-region")
        told = f" (it is in {region})" if region else ""
        return (
            f"bucket {self.bucket} is in another region than the client uses{told}; "
            "set AWS_REGION/AWS_DEFAULT_REGION or the profile's region to match"
        )


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _no_credentials_hint(scheme: str) -> str:
    if scheme == "r2":
        return (
            "no credentials found for R2: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to "
            "an R2 API token's keys, or use an AWS profile (AWS_PROFILE)"
        )
    return (
        "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, use a "
        "profile (AWS_PROFILE, `aws configure`), or run where an instance role is available"
    )

"""Google Cloud Storage (`gs://BUCKET[/PREFIX]`) through the official client.

Credentials come from Application Default Credentials only. When STORAGE_EMULATOR_HOST is set
(fake-gcs-server and friends) the client talks to the emulator anonymously.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import google.auth
import google_crc32c
import requests
from google.api_core import exceptions as gexc
from google.auth import exceptions as auth_exc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from claude_sync.errors import BackendError, ConfigError, ObjectNotFoundError, SyncError
from claude_sync.store import RemoteOptions
from claude_sync.store.base import ObjectInfo
from claude_sync.store.bucket import PROBE_PREFIX, BucketStore, remote_path

_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
EMULATOR_PROJECT = "claude-sync"
# (connect, read) seconds per request, and the SDK's retry policy (transient errors: 429, 5xx,
# dropped connections): about four attempts within 6 s, like the S3 backend's three, so that an
# unreachable endpoint fails in seconds rather than after the library's default two minutes.
TIMEOUT = (3.0, 60.0)
RETRY = DEFAULT_RETRY.with_delay(initial=0.5, maximum=4.0, multiplier=2.0).with_timeout(6.0)

T = TypeVar("T")


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str

    def __str__(self) -> str:
        return "gs://" + "/".join(p for p in (self.bucket, self.prefix) if p)


def parse(remote: str) -> Location:
    _, segments = remote_path(remote, ("gs",))
    bucket, *prefix = segments
    if not _BUCKET.fullmatch(bucket):
        raise ConfigError(
            f"{bucket!r} is not a valid bucket name (lower-case letters, digits, '.', '-', '_')"
        )
    return Location(bucket, "/".join(prefix))


def normalize(remote: str) -> str:
    return str(parse(remote))


def open_remote(remote: str, options: RemoteOptions) -> GCSStore:
    return GCSStore(parse(remote), options)


def _credentials() -> tuple[Credentials, str | None]:
    if os.environ.get(EMULATOR_ENV):
        project = os.environ.get("GOOGLE_CLOUD_PROJECT") or EMULATOR_PROJECT
        return AnonymousCredentials(), project
    credentials, project = google.auth.default(scopes=list(storage.Client.SCOPE))
    return credentials, project


def _client(transfers: int) -> storage.Client:
    credentials, project = _credentials()
    session = AuthorizedSession(credentials, refresh_timeout=TIMEOUT[1])
    # One pool sized to the number of parallel transfers; retries are the Retry object's job.
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=max(1, transfers))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return storage.Client(project=project, credentials=credentials, _http=session)


class GCSStore(BucketStore):
    conditional_write = "if_generation_match"

    def __init__(self, location: Location, options: RemoteOptions) -> None:
        self.location = location
        self.display = str(location)
        self._key_prefix = f"{location.prefix}/" if location.prefix else ""
        self._create_bucket = options.create_bucket
        self.bucket = location.bucket
        self._service = os.environ.get(EMULATOR_ENV) or "Google Cloud Storage"
        self._client = self._call("connect to", lambda: _client(options.transfers))
        self._bucket = self._client.bucket(location.bucket)

    # -- the ObjectStore operations ------------------------------------------------------

    def get(self, name: str) -> bytes:
        blob = self._bucket.blob(self._key(name))
        try:
            data: bytes = self._call(
                "read from", lambda: blob.download_as_bytes(retry=RETRY, timeout=TIMEOUT)
            )
            return data
        except _Missing:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        blob = self._bucket.blob(self._key(name))

        def read() -> bytes:
            try:
                part: bytes = blob.download_as_bytes(
                    start=offset, end=offset + length - 1, retry=RETRY, timeout=TIMEOUT
                )
                return part
            except gexc.RequestRangeNotSatisfiable:
                return b""  # starts at or past the end

        try:
            return self._call("read from", read)
        except _Missing:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None

    def put_if_absent(self, name: str, data: bytes) -> bool:
        blob = self._bucket.blob(self._key(name))
        try:
            self._call(
                "write to",
                # Generation 0 means "no live object": GCS's create-only write.
                lambda: blob.upload_from_string(
                    data, if_generation_match=0, retry=RETRY, timeout=TIMEOUT
                ),
            )
            return True
        except _LostRace:
            return self._holds_our_bytes(name, data)

    def content_tag(self, data: bytes) -> str | None:
        return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()

    def _listing(self, prefix: str, start_after: str) -> list[ObjectInfo]:
        # `updated` is set by the GCS service when the object (this generation) was written.
        start = len(self._key_prefix)
        # start_offset is inclusive: the name itself is dropped by list().
        after = {"start_offset": self._key_prefix + start_after} if start_after else {}

        def infos() -> list[ObjectInfo]:
            blobs = self._client.list_blobs(
                self._bucket,
                prefix=self._key_prefix + prefix,
                retry=RETRY,
                timeout=TIMEOUT,
                **after,
            )
            return [
                ObjectInfo(
                    b.name[start:],
                    int(b.size or 0),
                    b.updated and b.updated.timestamp(),
                    b.md5_hash,
                )
                for b in blobs
                if not b.name[start:].startswith(PROBE_PREFIX)
            ]

        try:
            return self._call("list", infos)
        except _Missing:
            # `init --create-bucket` looks for an existing repository before it creates the
            # bucket: a bucket that is not there yet holds nothing.
            if self._create_bucket:
                return []
            raise self._missing_bucket() from None

    def delete(self, name: str) -> None:
        blob = self._bucket.blob(self._key(name))
        with contextlib.suppress(_Missing):
            self._call("delete from", lambda: blob.delete(retry=RETRY, timeout=TIMEOUT))

    def close(self) -> None:
        self._client.close()

    # -- helpers --------------------------------------------------------------------------

    def _holds_our_bytes(self, name: str, data: bytes) -> bool:
        """A 412 may answer a retry of our own first attempt whose reply was lost: then the
        object holds exactly our bytes (random nonces make anyone else's differ). Comparing
        size and CRC32C from the metadata spares downloading the object."""
        key = self._key(name)
        blob = self._call(
            "read from", lambda: self._bucket.get_blob(key, retry=RETRY, timeout=TIMEOUT)
        )
        if blob is None or blob.size != len(data):
            return False
        ours = base64.b64encode(struct.pack(">I", google_crc32c.value(data))).decode()
        return bool(blob.crc32c == ours)

    def _bucket_exists(self) -> bool:
        # Listing needs only the permission we need anyway; buckets.get often is not granted.
        try:
            self._call(
                "list",
                lambda: list(
                    self._client.list_blobs(
                        self._bucket, max_results=1, retry=RETRY, timeout=TIMEOUT
                    )
                ),
            )
            return True
        except _Missing:
            return False

    def _make_bucket(self) -> None:
        if not self._client.project:
            raise ConfigError(
                "creating a bucket needs a Google Cloud project: set GOOGLE_CLOUD_PROJECT"
            )
        try:
            self._call(
                "create the bucket on",
                lambda: self._client.create_bucket(self._bucket, retry=RETRY, timeout=TIMEOUT),
            )
        except _Conflict:
            # Taken: by us meanwhile (fine) or by a stranger (the listing says which).
            if not self._bucket_exists():
                raise ConfigError(
                    f"bucket {self.location.bucket} belongs to someone else; bucket names are "
                    "global, choose another"
                ) from None

    def _where(self) -> str:
        return self._service

    def _call(self, action: str, fn: Callable[[], T]) -> T:
        """Run one SDK call; the one place google's exceptions become one-line messages."""
        try:
            return fn()
        except gexc.RetryError as exc:  # the retry window closed: judge by the last failure
            raise self._error(exc.cause or exc, action) from None
        except Exception as exc:
            raise self._error(exc, action) from None

    def _error(self, exc: BaseException, action: str) -> Exception:
        where = self._where()
        if isinstance(exc, gexc.NotFound):
            return _Missing(f"not found at {where}: {self.display}")
        if isinstance(exc, gexc.PreconditionFailed):
            return _LostRace(f"an object name is already taken in {self.display}")
        if isinstance(exc, gexc.Conflict):
            return _Conflict(f"bucket {self.location.bucket} already exists")
        if isinstance(exc, auth_exc.DefaultCredentialsError):
            return ConfigError(
                "no Google Cloud credentials found: run `gcloud auth application-default "
                "login` or set GOOGLE_APPLICATION_CREDENTIALS to a service-account key file"
            )
        if isinstance(exc, auth_exc.RefreshError | gexc.Unauthorized):
            return ConfigError(f"{where} rejected the credentials (expired or revoked?)")
        if isinstance(exc, gexc.Forbidden):
            return BackendError(
                f"access denied to bucket {self.location.bucket}: the credentials lack "
                f"permission to {action} it"
            )
        if isinstance(exc, requests.ConnectionError | requests.Timeout | auth_exc.TransportError):
            return BackendError(f"cannot reach {where}: no answer from the endpoint")
        if isinstance(exc, gexc.GoogleAPICallError):
            return BackendError(f"cannot {action} {self.display}: {exc.code} {exc.message}")
        if isinstance(exc, SyncError):
            return exc
        return BackendError(f"cannot {action} {self.display}: {type(exc).__name__}: {exc}")


# What 404, 412 and 409 mean depends on the call, so _error() returns these and the callers
# decide; they are BackendErrors so that one that slips through still reads well.
class _Missing(BackendError):
    """404: the object or the bucket is not there."""


class _LostRace(BackendError):
    """412 on a create-only write: the name is taken."""


class _Conflict(BackendError):
    """409: the bucket name is taken."""

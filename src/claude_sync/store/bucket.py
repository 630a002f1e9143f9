"""What the bucket stores (S3/R2 and GCS) share: their remotes' paths, a prefix, create-only
probing, messages."""

from __future__ import annotations

from abc import abstractmethod

from claude_sync.errors import ConfigError
from claude_sync.store.base import PROBE_PREFIX, ObjectInfo, ObjectStore

__all__ = ["PROBE_PREFIX", "BucketStore", "remote_path"]


def remote_path(remote: str, schemes: tuple[str, ...], article: str = "a") -> tuple[str, list[str]]:
    """The scheme and the '/'-separated segments after it of a bucket remote; a ConfigError
    for another scheme, or characters and segments that have no place in a bucket path."""
    scheme, sep, rest = remote.partition("://")
    if not sep or scheme not in schemes:
        accepted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError(f"not {article} {accepted} remote: {remote}")
    if any(c in rest for c in "?#\\") or any(ord(c) < 32 for c in rest):
        raise ConfigError(f"remote {remote} has characters that do not belong in a bucket path")
    segments = rest.removesuffix("/").split("/")
    if any(s in ("", ".", "..") for s in segments):
        raise ConfigError(f"remote {remote} has an empty or relative path segment")
    return scheme, segments


class BucketStore(ObjectStore):
    tagged = True
    bucket: str
    _key_prefix: str
    #: the conditional-write feature, named as the provider names it, for messages
    conditional_write: str

    def _key(self, name: str) -> str:
        return self._key_prefix + name

    @abstractmethod
    def _listing(self, prefix: str, start_after: str) -> list[ObjectInfo]:
        """The objects under prefix after start_after, with the service's size and time."""

    def _list(self, prefix: str, start_after: str) -> list[str]:
        return [info.name for info in self._listing(prefix, start_after)]

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        return self._listing(prefix, "")

    def list_tagged(self, prefix: str, start_after: str = "") -> dict[str, str | None]:
        return {i.name: i.tag for i in self._listing(prefix, start_after) if i.name > start_after}

    @abstractmethod
    def _where(self) -> str:
        """The service or endpoint, for messages."""

    @abstractmethod
    def _bucket_exists(self) -> bool: ...

    @abstractmethod
    def _make_bucket(self) -> None: ...

    def prepare(self, create: bool) -> None:
        if not self._bucket_exists():
            if not create:
                raise self._missing_bucket()
            self._make_bucket()
        self._check_conditional_writes()

    def _check_conditional_writes(self) -> None:
        """Create-only writes are what keeps two machines from overwriting each other's
        snapshots: refuse a server that silently ignores them."""
        if not self.probe_writes():
            raise self._no_conditional_writes()

    def _no_conditional_writes(self) -> ConfigError:
        return ConfigError(
            f"{self.display} does not honour conditional writes ({self.conditional_write}), so "
            "two machines could overwrite each other's snapshots; use a server that supports them"
        )

    def _missing_bucket(self) -> ConfigError:
        return ConfigError(
            f"bucket {self.bucket} does not exist at {self._where()}; create it, or run "
            "`claude-sync init` with --create-bucket"
        )

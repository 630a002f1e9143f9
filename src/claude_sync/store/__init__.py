"""Storage backends and the remote-URL syntax of docs/CLI.md "Remotes".

Each backend module provides `normalize(remote) -> str` (validate and canonicalize a remote of
its scheme, raising ConfigError) and `open_remote(remote, options) -> ObjectStore`. They are
imported only when used, so the folder backend needs no cloud SDK.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from urllib.parse import urlparse

from claude_sync.errors import ConfigError
from claude_sync.store.base import ObjectStore
from claude_sync.store.folder import FolderStore

__all__ = ["ObjectStore", "RemoteOptions", "normalize_remote", "open_store"]

# scheme -> module implementing it
BACKENDS = {
    "s3": "claude_sync.store.s3",
    "r2": "claude_sync.store.s3",
    "gs": "claude_sync.store.gcs",
    "git": "claude_sync.store.git",
}


@dataclass
class RemoteOptions:
    """How to reach a remote. Never holds credentials: those come from each SDK's chain."""

    #: S3-compatible endpoint (SeaweedFS, MinIO, ...); for r2:// it overrides the account's.
    endpoint_url: str | None = None
    #: Git branch to use; None means the remote's default branch (or `main` when it has none).
    git_branch: str | None = None
    #: `init --create-bucket`: a missing bucket may be created by prepare().
    create_bucket: bool = False
    #: A folder the backend may keep a cache in (the git backend keeps its clone here).
    cache_dir: Path | None = None
    #: Parallel transfers for backends that can do several at once.
    transfers: int = 8


def _scheme(remote: str) -> str:
    scheme = remote.split("://", 1)[0] if "://" in remote else ""
    return "git" if scheme.startswith("git+") else scheme


def _backend(scheme: str) -> ModuleType:
    try:
        return importlib.import_module(BACKENDS[scheme])
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the {scheme} backend is not available ({exc.name} is missing)"
        ) from None


def normalize_remote(remote: str) -> str:
    """Canonical form of a remote as stored in the config; raises ConfigError when unusable."""
    if remote.startswith("file://"):
        parsed = urlparse(remote)
        if parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
            raise ConfigError(f"file remotes need an absolute path: {remote}")
        return str(Path(parsed.path))
    if remote.startswith("/"):
        return str(Path(remote))
    scheme = _scheme(remote)
    if scheme in BACKENDS:
        return str(_backend(scheme).normalize(remote))
    raise ConfigError(
        f"unknown remote {remote!r}: use an absolute folder path, file://, s3://, r2://, gs:// "
        "or git+URL"
    )


def local_folder(remote: str) -> Path | None:
    """The folder a folder remote names, without opening anything; None for the others
    (whose backend is not even imported: botocore's import alone is 0.1 s of a push with
    nothing to send, which sends no request)."""
    if _scheme(remote) in BACKENDS:
        return None
    return Path(normalize_remote(remote))


def open_store(remote: str, options: RemoteOptions | None = None) -> ObjectStore:
    remote = normalize_remote(remote)
    scheme = _scheme(remote)
    if scheme in BACKENDS:
        store: ObjectStore = _backend(scheme).open_remote(remote, options or RemoteOptions())
        return store
    return FolderStore(Path(remote))

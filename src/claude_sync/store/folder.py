"""A plain folder as the object store: the embedded default, and a shared drive's backend."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from pathlib import Path

from claude_sync.durable import write_atomically
from claude_sync.errors import BackendError, ObjectNotFoundError
from claude_sync.portable import create_only_rename
from claude_sync.store.base import PIECE_SIZE, ObjectInfo, ObjectStore

TMP_PREFIX = ".tmp-"


class FolderStore(ObjectStore):
    def __init__(self, root: Path, display: str | None = None) -> None:
        self.root = self.local_folder = root
        self.display = display or str(root)

    def _path(self, name: str) -> Path:
        parts = name.split("/")
        if any(p in ("", ".", "..") or p.startswith(TMP_PREFIX) for p in parts):
            raise BackendError(f"invalid object name {name!r}")
        return self.root.joinpath(*parts)

    def missing(self) -> str | None:
        if self.root.is_dir():
            return None
        return f"the folder {self.root} does not exist (unmounted or deleted?)"

    def prepare(self, create: bool) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot create {self.display}: {exc.strerror}") from None

    def get(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None
        except OSError as exc:
            raise BackendError(f"cannot read {self.display}: {exc.strerror}") from None

    def get_pieces(self, name: str) -> Iterator[bytes]:
        try:
            with open(self._path(name), "rb") as fh:
                while piece := fh.read(PIECE_SIZE):
                    yield piece
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None
        except OSError as exc:
            raise BackendError(f"cannot read {self.display}: {exc.strerror}") from None

    def get_range(self, name: str, offset: int, length: int) -> bytes:
        try:
            with open(self._path(name), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except FileNotFoundError:
            raise ObjectNotFoundError(f"object {name} is missing from {self.display}") from None
        except OSError as exc:
            raise BackendError(f"cannot read {self.display}: {exc.strerror}") from None

    def put_if_absent(self, name: str, data: bytes) -> bool:
        path = self._path(name)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # create_only_rename fails when the name exists: an atomic create-only write
            # that never exposes a half-written object under its final name.
            write_atomically(path, data, prefix=TMP_PREFIX, rename=create_only_rename)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno == errno.ENOSPC:
                raise BackendError(f"no space left on {self.display}") from None
            raise BackendError(f"cannot write to {self.display}: {exc.strerror}") from None

    def _list(self, prefix: str, start_after: str) -> list[str]:
        # Walk only the deepest folder the prefix pins down.
        folder, _, _ = prefix.rpartition("/")
        base = self.root.joinpath(*folder.split("/")) if folder else self.root
        if not base.is_dir():
            return []
        names = []
        try:
            for dirpath, dirnames, filenames in os.walk(base):
                dirnames[:] = [d for d in dirnames if not d.startswith(TMP_PREFIX)]
                rel = Path(dirpath).relative_to(self.root).as_posix()
                for filename in filenames:
                    if filename.startswith(TMP_PREFIX):
                        continue
                    name = filename if rel == "." else f"{rel}/{filename}"
                    if name.startswith(prefix):
                        names.append(name)
        except OSError as exc:
            raise BackendError(f"cannot list {self.display}: {exc.strerror}") from None
        return names

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        # mtime is set by whoever writes the file: the file server for a network share, but
        # this machine (or, for a folder that Dropbox and the like copy around, the writing
        # machine) for a local disk. Prune therefore also waits by its own clock.
        infos = []
        for name in self._list(prefix, ""):
            try:
                st = self._path(name).stat()
            except FileNotFoundError:
                continue  # deleted since the listing
            except OSError as exc:
                raise BackendError(f"cannot list {self.display}: {exc.strerror}") from None
            infos.append(ObjectInfo(name, st.st_size, st.st_mtime))
        return infos

    def delete(self, name: str) -> None:
        try:
            self._path(name).unlink(missing_ok=True)
        except OSError as exc:
            raise BackendError(f"cannot delete from {self.display}: {exc.strerror}") from None

"""An in-memory object store for unit tests (the real backends have their own tests)."""

from __future__ import annotations

import hashlib
import time

from claude_sync.errors import ObjectNotFoundError
from claude_sync.store.base import ObjectInfo, ObjectStore


class MemoryStore(ObjectStore):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.written: dict[str, float] = {}
        self.display = "memory"

    def get(self, name: str) -> bytes:
        try:
            return self.objects[name]
        except KeyError:
            raise ObjectNotFoundError(name) from None

    def put_if_absent(self, name: str, data: bytes) -> bool:
        if name in self.objects:
            return False
        self.objects[name] = data
        self.written[name] = time.time()
        return True

    def _list(self, prefix: str, start_after: str) -> list[str]:
        return [n for n in self.objects if n.startswith(prefix)]

    def list_info(self, prefix: str) -> list[ObjectInfo]:
        return [
            ObjectInfo(n, len(self.objects[n]), self.written[n]) for n in self._list(prefix, "")
        ]

    def delete(self, name: str) -> None:
        self.objects.pop(name, None)


class TaggedMemoryStore(MemoryStore):
    """A store whose listings give a digest of each object, as S3's and GCS's do (a head's
    root is then kept between looks: claude_sync.kept_head)."""

    tagged = True

    def content_tag(self, data: bytes) -> str | None:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def list_tagged(self, prefix: str, start_after: str = "") -> dict[str, str | None]:
        return {n: self.content_tag(self.objects[n]) for n in self.list(prefix, start_after)}

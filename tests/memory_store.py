"""An in-memory object store for unit tests (the real backends have their own tests)."""

from __future__ import annotations

from claude_sync.errors import ObjectNotFoundError
from claude_sync.store.base import ObjectStore


class MemoryStore(ObjectStore):
    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
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
        return True

    def _list(self, prefix: str, start_after: str) -> list[str]:
        return [n for n in self.objects if n.startswith(prefix)]

    def delete(self, name: str) -> None:
        self.objects.pop(name, None)

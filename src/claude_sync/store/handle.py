"""What a repository object is, told by its name: its kind and the rest of its name (restic's
FileType and Handle{Type, Name}). The repository builds every object name here, and a store
that lays objects out by kind (the git backend's fan-out folders) reads the kind here: no
other module spells a name's prefix or pattern (docs/FORMAT.md §1, §8)."""

from __future__ import annotations

import enum
import os
import re
from dataclasses import dataclass

#: digits of a snapshot's or a key epoch's number in its name
SEQ_DIGITS = 10


class ObjectKind(enum.Enum):
    """The kinds of object a repository holds; the value is where their names start (for a
    kind with one object, its whole name)."""

    CONFIG = "config"
    CONFIG_UPGRADE = "config-upgrade"
    KEY = "keys/"
    EPOCH = "epochs/"
    PACK = "data/"
    INDEX = "index/"
    MANIFEST = "manifest/"
    SNAPSHOT = "snapshots/"
    PRUNE_MARK = "prune/"
    FORGOTTEN = "forgotten/"

    @property
    def prefix(self) -> str:
        return str(self.value)

    @property
    def single(self) -> bool:
        """A kind with one object, named by the kind alone (the config)."""
        return not self.prefix.endswith("/")


_NUMBER = rf"\d{{{SEQ_DIGITS}}}"
_RANDOM = r"[0-9a-f]{64}"
# What may follow a kind's prefix in a well-formed name (kinds with many objects).
_IDENT = {
    ObjectKind.KEY: re.compile(r"[^/]+"),
    ObjectKind.EPOCH: re.compile(_NUMBER),
    ObjectKind.PACK: re.compile(rf"[0-9a-f]{{2}}/{_RANDOM}"),
    ObjectKind.INDEX: re.compile(_RANDOM),
    ObjectKind.MANIFEST: re.compile(_RANDOM),
    ObjectKind.SNAPSHOT: re.compile(_NUMBER),
    ObjectKind.PRUNE_MARK: re.compile(_RANDOM),
    ObjectKind.FORGOTTEN: re.compile(_RANDOM),
}


@dataclass(frozen=True)
class Handle:
    """One object: its kind and what follows the kind's prefix in its name."""

    kind: ObjectKind
    ident: str = ""

    @property
    def name(self) -> str:
        """The name the object is stored under (and sealed with, as associated data)."""
        return self.kind.prefix + self.ident

    @classmethod
    def numbered(cls, kind: ObjectKind, number: int) -> Handle:
        """A snapshot or a key epoch: numbered, so that names sort in order."""
        return cls(kind, f"{number:0{SEQ_DIGITS}d}")

    @classmethod
    def random(cls, kind: ObjectKind, size: int = 32) -> Handle:
        """A new index, manifest part, prune mark, history record or key object: a random
        name nobody else will take."""
        return cls(kind, os.urandom(size).hex())

    @classmethod
    def pack(cls, digest: str) -> Handle:
        """A pack, named by the SHA-256 of its bytes in a folder of its first two digits."""
        return cls(ObjectKind.PACK, f"{digest[:2]}/{digest}")

    @property
    def number(self) -> int:
        """The number of a snapshot or key epoch."""
        return int(self.ident)

    @classmethod
    def parse(cls, name: str) -> Handle | None:
        """The handle of a well-formed name; None for any other (a probe, a stray file, a
        name made up by a hostile backend)."""
        for kind in ObjectKind:
            if kind.single:
                if name == kind.prefix:
                    return cls(kind)
            elif name.startswith(kind.prefix):
                ident = name[len(kind.prefix) :]
                return cls(kind, ident) if _IDENT[kind].fullmatch(ident) else None
        return None

    @classmethod
    def probe(cls, kind: ObjectKind) -> str:
        """A new name among a kind's objects that no handle parses to, so reading the kind
        skips it: for a probe that a listing of the kind must show (prune's clock probe).
        Key objects take any name: none can hide among them."""
        name = f"{kind.prefix}probe-{os.urandom(16).hex()}"
        if cls.parse(name) is not None:
            raise ValueError(f"no probe can hide among {kind.prefix} objects")
        return name

    @classmethod
    def parse_as(cls, kind: ObjectKind, name: str) -> Handle | None:
        """The handle of a well-formed name of that kind; None for any other name."""
        handle = cls.parse(name)
        return handle if handle is not None and handle.kind is kind else None

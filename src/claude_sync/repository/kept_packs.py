"""Packs one command reads twice, kept on this machine's disk for its second reading: a
pull's code guard reads the agents, commands, skills and settings it must show, and a first
pull's are spread over the packs of everything else, so it reads those packs whole; the
install then wanted the same packs for the rest (on S3, 8 MiB each again). What is kept is
a pack as the store served it: read again, it is checked against its name as before (a
whole read), or each blob is authenticated (a read by range)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from claude_sync.limits import RESERVE
from claude_sync.store.base import PIECE_SIZE

#: in a machine's config folder, while a pull or restore runs
KEPT_PACKS = "kept-packs"


class KeptPacks:
    """A folder of packs read whole while `keeping` is set (made when the first is); they
    are read from there, not the store, until the folder is dropped."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: packs read whole meanwhile are kept (see tee)
        self.keeping = False
        self._lock = threading.Lock()
        self._serial = 0
        self._made = False
        #: the folder is one this command made (not a link, nor a file, planted there)
        self._usable = False
        self._clear()  # what a command that was killed left

    def _clear(self) -> None:
        try:
            st = os.lstat(self.folder)
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode):
            shutil.rmtree(self.folder, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                os.unlink(self.folder)  # a link goes, not what it leads to

    def _path(self, pack: str) -> Path:
        return self.folder / pack.rsplit("/", 1)[-1]

    def pieces(self, pack: str) -> Iterator[bytes] | None:
        """The kept pack's bytes in pieces; None when it is not kept."""
        path = self._path(pack)
        if not self._usable or not path.is_file():  # (kept ones stay until dropped)
            return None

        def read() -> Iterator[bytes]:
            with open(path, "rb") as fh:
                while piece := fh.read(PIECE_SIZE):
                    yield piece

        return read()

    def range(self, pack: str, offset: int, length: int) -> bytes | None:
        """Up to length bytes of the kept pack from offset; None when it is not kept."""
        if not self._usable:
            return None
        try:
            with open(self._path(pack), "rb") as fh:
                fh.seek(offset)
                return fh.read(length)
        except OSError:
            return None

    def tee(self, pack: str, pieces: Iterator[bytes]) -> Iterator[bytes]:
        """pieces, written to the folder as they pass; the pack is kept once all have
        passed. A disk that cannot take it (or has little room left: the pull's own files
        come first) only means it is read from the store again."""
        with self._lock:
            if not self._made:
                self._made = True
                with contextlib.suppress(OSError):
                    os.mkdir(self.folder, 0o700)
                    self._usable = True
            self._serial += 1
            tmp = self.folder / f".{self._serial}.tmp"
        out = None
        with contextlib.suppress(OSError):
            if self._usable and shutil.disk_usage(self.folder).free > 2 * RESERVE:
                out = open(tmp, "wb")  # noqa: SIM115 (closed below, also when left early)
        try:
            for piece in pieces:
                if out is not None:
                    try:
                        out.write(piece)
                    except OSError:
                        _close(out)
                        out = None
                yield piece
            if out is not None:
                whole, out = _close(out), None
                if whole:
                    with contextlib.suppress(OSError):
                        os.replace(tmp, self._path(pack))
        finally:
            if out is not None:
                _close(out)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def drop(self) -> bool:
        """Remove the folder and what it holds (read from the store again); whether it
        held any."""
        if not self._usable:
            return False
        self._usable = False
        try:
            with os.scandir(self.folder) as entries:
                held = any(True for _ in entries)
        except OSError:
            held = False
        shutil.rmtree(self.folder, ignore_errors=True)
        return held


def _close(out: BinaryIO) -> bool:
    """Whether out, closed, holds all that was written to it."""
    try:
        out.close()
    except OSError:
        return False
    return True

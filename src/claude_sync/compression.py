"""zstd framing for plaintexts: one flag byte, then the (maybe) compressed bytes."""

from __future__ import annotations

import threading

import zstandard

from claude_sync.errors import CorruptionError

RAW = 0
ZSTD = 1
LEVEL = 3

# zstd contexts must not be shared between threads (a shared one crashes the interpreter
# when packs are read in parallel): one pair per thread, made on first use.
_local = threading.local()


def _contexts() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = _local.pair = (zstandard.ZstdCompressor(level=LEVEL), zstandard.ZstdDecompressor())
    return pair


def pack(data: bytes | memoryview) -> bytes:
    """Compress when it pays; incompressible data is stored as is."""
    compressed = _contexts()[0].compress(data)
    if len(compressed) < len(data):
        return bytes([ZSTD]) + compressed
    return bytes([RAW]) + bytes(data)


def unpack(data: bytes, what: str) -> bytes:
    view = memoryview(data)  # no copy of the frame behind the flag byte
    if not view:
        raise CorruptionError(f"{what} is empty")
    if view[0] == RAW:
        return bytes(view[1:])
    if view[0] == ZSTD:
        try:
            return _contexts()[1].decompress(view[1:])
        except zstandard.ZstdError:
            raise CorruptionError(f"{what} does not decompress") from None
    raise CorruptionError(f"{what} has an unknown compression flag")

"""zstd framing for plaintexts: one flag byte, then the (maybe) compressed bytes.

What is sealed is also padded (Padmé: to a length whose low bits are zero, at most ~12%
more), so an object's size tells the storage little about how well its content compressed.
The padding is a zstd *skippable frame* after the data frame: readers decode the first
frame and never look at it, so padded objects read the same in every claude-sync version.
"""

from __future__ import annotations

import struct
import threading

import zstandard

from claude_sync.errors import CorruptionError

RAW = 0
ZSTD = 1
# Level 2, not zstd's default 3: on transcripts cut into ~512 KiB chunks it compresses 14 %
# faster for 2.5 % less ratio (5.55x against 5.69x), and zstd is the biggest share of a first
# push's work (~40 % of its CPU at level 3).
LEVEL = 2
#: a zstd skippable frame: magic, payload length, payload (zstd format, section 3.1.2)
SKIPPABLE_MAGIC = 0x184D2A50
SKIPPABLE_HEADER = 8

# zstd contexts must not be shared between threads (a shared one crashes the interpreter
# when packs are read in parallel): one pair per thread, made on first use.
_local = threading.local()


def _contexts() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = _local.pair = (zstandard.ZstdCompressor(level=LEVEL), zstandard.ZstdDecompressor())
    return pair


def padme(length: int) -> int:
    """The Padmé length (Nikitin et al., PETS 2019) for `length`: it leaks O(log log n)
    bits of the length instead of O(log n)."""
    exponent = length.bit_length() - 1
    low_bits = exponent - exponent.bit_length()
    if length < 2 or low_bits <= 0:
        return length
    mask = (1 << low_bits) - 1
    return (length + mask) & ~mask


def pack(data: bytes | memoryview, padded: bool = False) -> bytes:
    """Compress when it pays; incompressible data is stored as is. padded: always a zstd
    frame, followed by a skippable frame up to the Padmé length of the whole."""
    compressed = _contexts()[0].compress(data)
    if padded:
        used = 1 + len(compressed) + SKIPPABLE_HEADER
        filler = padme(used) - used
        skip = struct.pack("<II", SKIPPABLE_MAGIC, filler) + bytes(filler)
        return b"".join([bytes([ZSTD]), compressed, skip])
    if len(compressed) < len(data):
        return bytes([ZSTD]) + compressed
    return bytes([RAW]) + bytes(data)


def unpack(data: bytes, what: str) -> bytes:
    """The content of a packed frame; CorruptionError (naming `what`) for an empty frame,
    an unknown flag or zstd data that does not decompress."""
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

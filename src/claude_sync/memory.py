"""How much memory a big push keeps from the system: glibc's allocator, told to use fewer
arenas, to keep big buffers out of its heap, and to give back what is free between a push's
phases.

A first push of 50,000 files peaks at ~140 MiB of live objects but ~240 MiB resident: the
rest is freed memory the allocator keeps, most of it in the arenas of the threads that read,
seal and send (glibc makes up to eight per core), and in pages between live objects that the
scan's short-lived buffers left. Two arenas and a trim after the scan and before the commit
took 12 MiB off that peak, and 30 MiB off the `huge` bench set's (296 -> 264 MiB), at no
measured cost in time.

glibc also serves a freed buffer above its mmap threshold from the heap the next time, raising
the threshold up to 32 MiB as it goes. A push's 8 MiB packs then landed in the heap between
the small objects the scan keeps per file, which no trim can take back: a fixed threshold of
1 MiB took another 26 MiB off the peak of a first push of 50,000 files (224 -> 198 MiB), 18 MiB
off one of 1 GiB (110 -> 92 MiB), at no measured cost in time.

Elsewhere (macOS, Windows, musl) this does nothing: their allocators
behave otherwise, and their calls differ.
"""

from __future__ import annotations

import ctypes
import functools
import sys

#: mallopt's parameter for the most arenas (malloc.h)
M_ARENA_MAX = -8
#: arenas for all threads: the main one and one the workers share
ARENAS = 2
#: mallopt's parameter for the size from which a buffer gets its own mapping (malloc.h)
M_MMAP_THRESHOLD = -3
#: big enough that chunks and records stay in the heap; packs and whole files do not
MMAP_THRESHOLD = 1024 * 1024


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the C library this interpreter runs on
    except OSError:
        return None
    # Only glibc has both: musl's malloc has neither call.
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


def tune() -> None:
    """Fewer allocator arenas for the threads to come (it counts before they start), and
    big buffers returned to the system when freed."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_ARENA_MAX, ARENAS)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def give_back() -> None:
    """Return the allocator's free pages to the system (a few milliseconds)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)

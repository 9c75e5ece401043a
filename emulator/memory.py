"""Giving memory back after `reset()`: what a long-running emulator needs so that its resident size returns
near where it started once a test run's requests are forgotten.

CPython frees objects at once, but the C allocator keeps freed pages for reuse: large request bodies and
parsed inputs leave the heap fragmented, and glibc only returns its top to the system. `release_memory()`
collects cycles, then asks glibc to return every free page (`malloc_trim(0)`, a documented glibc call;
elsewhere it only collects).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc
from collections.abc import Callable


@functools.lru_cache(maxsize=1)
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return None
    return trim


def release_memory() -> None:
    """Collect garbage and return the allocator's free pages to the operating system (glibc)."""
    gc.collect()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

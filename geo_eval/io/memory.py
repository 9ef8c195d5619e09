"""Giving freed memory back to the system between the steps of a long run.

After a province's evaluation is let go, glibc's allocator keeps most of the freed heap (3–4 GB at 1M
parcels) for reuse instead of returning it; the next step (cutting the map tiles) then adds its own on
top. :func:`release_memory` collects what Python still holds in cycles and asks glibc to return the free
heap (``malloc_trim``), and Arrow's allocator what it keeps; elsewhere (another C library) it only collects.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

import pyarrow as pa


def release_memory() -> bool:
    """Collect garbage and return the free heap to the system (Arrow's pool too); whether glibc returned any."""
    gc.collect()
    pa.default_memory_pool().release_unused()
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return bool(trim(0))

"""A worker's mapped file pages given back to the page cache when its resident memory passes a budget.

A worker reads a run through memory maps (its columnar copy, :mod:`api.runcopy`, and its tile archive,
:mod:`api.tilearchive`): what it touches counts in its resident set (``RssFile``) although the pages
belong to the kernel's page cache, which every worker mapping the same files shares. After a reviewer
has looked at every park of a province those pages are most of the run (1.6–1.8 GB of a 2.5 GB
resident set at 1M parcels). :class:`PageTrimmer` checks the worker's resident set every
:data:`CHECK_INTERVAL_S` and, above the budget (``GEO_EVAL_WORKER_RSS_MB``), tells the kernel
(``madvise(MADV_DONTNEED)``) that the worker no longer needs the pages of its read-only file maps (every
shared one, and pyarrow's private ones of the run copies only: :func:`file_maps`). The files stay mapped
and their pages stay cached: the next read of one is a minor fault that maps the cached page again, not a
disk read. Nothing is dropped from a writable mapping, a library's own segments or the worker's heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import mmap
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

CHECK_INTERVAL_S = 0.5
"""How often the worker's resident set is compared with its budget."""
MIN_GAP_S = 5.0
"""The least time between two trims: under load the pages a worker reads come back at once (minor faults,
cheap one by one but not when every page of the working set comes back twice a second: trimming at each
check doubled the GeoJSON and search p95 at 1M parcels), so a busy worker trims at most this often."""
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_MADV_DONTNEED = getattr(mmap, "MADV_DONTNEED", 4)


def resident_bytes() -> int:
    """The process's resident set size, from ``/proc/self/statm`` (0 where there is no ``/proc``)."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return 0


def file_maps(roots: tuple[str, ...] = (), maps: str | None = None) -> Iterator[tuple[int, int, str]]:
    """(start, end, path) of each read-only mapping of a file whose pages are the page cache's own: every
    shared one (``r--s`` in ``/proc/self/maps``: SQLite's and numpy's maps, Python's ``mmap``), and the
    private ones (``r--p``: pyarrow's memory maps) of files under ``roots`` only, since a library's
    private read-only segments may hold pages changed when it was loaded (relocations)."""
    if maps is None:
        try:
            maps = Path("/proc/self/maps").read_text()
        except OSError:
            return
    for line in maps.splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or not parts[5].startswith("/"):
            continue
        path = parts[5]
        if parts[1] == "r--s" or (parts[1] == "r--p" and any(path.startswith(r) for r in roots)):
            start, end = (int(x, 16) for x in parts[0].split("-"))
            yield start, end, path


@functools.cache
def _libc_madvise() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    fn = ctypes.CDLL(name, use_errno=True).madvise  # CDLL: the GIL is released during the call
    fn.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    fn.restype = ctypes.c_int
    return fn


def give_back_mapped_pages(roots: tuple[str, ...] = ()) -> int:
    """Drop the pages of the read-only file mappings of :func:`file_maps` from this process's resident
    set (they stay in the page cache); returns the bytes of address space advised."""
    madvise = _libc_madvise()
    if madvise is None:
        return 0
    advised = 0
    for start, end, path in file_maps(roots):
        if madvise(start, end - start, _MADV_DONTNEED) == 0:
            advised += end - start
        else:  # a mapping unmapped meanwhile: nothing to give back
            log.debug("madvise %s: errno %d", path, ctypes.get_errno())
    return advised


@dataclass
class PageTrimmer:
    """Keep the worker's resident set near ``budget_bytes`` by giving mapped file pages back
    (:func:`give_back_mapped_pages`) when it is above; ``budget_bytes`` 0 turns it off. ``roots``: the
    folders whose files are also mapped privately (the runs' columnar copies)."""

    budget_bytes: int
    roots: tuple[str, ...] = ()
    interval_s: float = CHECK_INTERVAL_S
    min_gap_s: float = MIN_GAP_S
    trims: int = 0
    _last: float = float("-inf")
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def check(self) -> bool:
        """Give the pages back if the resident set is above the budget and the last trim is at least
        ``min_gap_s`` ago; whether it did."""
        if self.budget_bytes <= 0 or time.monotonic() - self._last < self.min_gap_s:
            return False
        if resident_bytes() <= self.budget_bytes:
            return False
        give_back_mapped_pages(self.roots)
        self._last = time.monotonic()
        self.trims += 1
        return True

    def start(self) -> None:
        if self.budget_bytes <= 0 or self._thread is not None or not Path("/proc/self/statm").exists():
            return
        self._stop.clear()  # started again after a stop (the app's lifespan run twice, as tests do)
        self._thread = threading.Thread(target=self._loop, daemon=True, name="page-trimmer")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.check()
            except Exception:  # never let the trimmer take a worker down
                log.exception("page trimmer")

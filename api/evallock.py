"""One evaluation at a time (``POST /api/runs``), across threads, worker processes and servers.

An evaluation reads a whole dataset and writes a run; two at once would double the memory and could
register runs out of order. :class:`EvaluationLock` is held for the whole evaluation and is tried, never
waited for (the second request is answered 409):

- within the process, a :class:`threading.Lock`;
- between the worker processes of ``geo-eval serve --workers N`` (and anything else using the same
  data directory), an exclusive ``flock`` on :data:`LOCK_FILE` in the data directory; the kernel
  releases it when the holder's file is closed or its process dies, so a killed worker never leaves
  it taken (systems without ``fcntl`` have the in-process lock only);
- with a PostgreSQL store, a session advisory lock (:data:`ADVISORY_KEY`) on a connection of its own,
  so that servers on several machines sharing one database, each with its own data directory, queue
  too; PostgreSQL releases it when that connection ends, whatever happens to the server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LOCK_FILE = "evaluation.lock"
"""The file in the data directory whose ``flock`` marks an evaluation in progress (its content is unused)."""
ADVISORY_KEY = 0x67656F5F6576616C  # "geo_eval" in ASCII, as a bigint
"""The key of the PostgreSQL advisory lock held during an evaluation."""


class EvaluationLock:
    """Held while an evaluation runs; :meth:`hold` yields False when another one holds it."""

    def __init__(self, data_dir: Path, database_url: str | None = None) -> None:
        self.path = Path(data_dir) / LOCK_FILE
        self.database_url = database_url
        self._thread_lock = threading.Lock()

    @contextlib.contextmanager
    def hold(self) -> Iterator[bool]:
        """Take the lock for the block if it is free: yields True (held until the block ends), else False."""
        if not self._thread_lock.acquire(blocking=False):
            yield False
            return
        try:
            with self._file_lock() as free:
                if not free:
                    yield False
                    return
                with self._advisory_lock() as free_in_database:
                    yield free_in_database
        finally:
            self._thread_lock.release()

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[bool]:
        if fcntl is None:  # pragma: no cover - Windows: one process only
            yield True
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh: IO[bytes] = self.path.open("a+b")
        try:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.getpid()}\n".encode("ascii"))  # who holds it, for an administrator looking
                fh.flush()
                yield True
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        finally:
            fh.close()

    @contextlib.contextmanager
    def _advisory_lock(self) -> Iterator[bool]:
        if not self.database_url:
            yield True
            return
        from geo_eval.db.connection import connect

        conn: Any = connect(self.database_url, autocommit=True)
        try:
            row = conn.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
            if not (row and row[0]):
                yield False
                return
            try:
                yield True
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
                except Exception as exc:  # closing the connection below releases it anyway
                    log.warning("could not release the evaluation lock in the database: %s", exc)
        finally:
            conn.close()

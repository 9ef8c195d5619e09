"""OUT_DIR on disk: a new one put in place with a way back, and what killed runs left tidied.

:func:`geo_eval.io.writers.write_outputs` writes a run's files into the sibling directory
``.<name>.tmp-<pid>`` and renames it to OUT_DIR once complete. Around it, :func:`kept_aside` (used by
:func:`geo_eval.io.run.run`) moves the old OUT_DIR to ``.<name>.old-<pid>`` just before that rename
(:meth:`Swap.set_aside`, the last step of writing) and deletes it only when the block ends without
error (with ``--db``: after the database commit), or puts it back when anything failed (the rename, the
commit). Each step is a rename, so OUT_DIR is at every moment either complete or absent.

A run killed (kill -9, power loss) leaves these directories behind; :func:`tidy`, called by the next run
into the same OUT_DIR, deletes those of processes that have ended, puts back an OUT_DIR that was set
aside and never replaced, and keeps (and reports) those of a process still running. Process ids are
those of this machine: an OUT_DIR shared between machines over a network is written by one at a time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from geo_eval.errors import GeoEvalError
from geo_eval.storage.errors import RunFilesError

log = logging.getLogger(__name__)

TMP, OLD = "tmp", "old"
"""The kinds of sibling directories: a run's files being written, and an old OUT_DIR set aside."""


def sibling(out_dir: Path, kind: str, pid: int | None = None) -> Path:
    """The temporary (``tmp``) or set-aside (``old``) directory of OUT_DIR for process ``pid`` (this one).

    >>> sibling(Path("/data/out"), "old", 42).as_posix()
    '/data/.out.old-42'
    """
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.{kind}-{os.getpid() if pid is None else pid}"


def leftovers(out_dir: Path) -> list[tuple[Path, str, int]]:
    """The temporary and set-aside directories of OUT_DIR on disk: (path, kind, process id), by name."""
    out_dir = Path(out_dir)
    pattern = re.compile(rf"\.{re.escape(out_dir.name)}\.({TMP}|{OLD})-(\d+)")
    try:
        names = sorted(p.name for p in out_dir.parent.iterdir())
    except OSError:  # no parent yet: nothing left
        return []
    found = []
    for name in names:
        m = pattern.fullmatch(name)
        if m is not None and (out_dir.parent / name).is_dir():
            found.append((out_dir.parent / name, m.group(1), int(m.group(2))))
    return found


def running(pid: int) -> bool:
    """Whether process ``pid`` is running (this process counts as ended: it has not written anything yet
    when it tidies, so what carries its id was left by an earlier process that had the same id)."""
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True


def tidy(out_dir: Path) -> list[str]:
    """Clean up after runs into OUT_DIR that were killed; returns what was done, one Chinese line each.

    Directories of ended processes are deleted, except that when OUT_DIR is missing the latest one set
    aside is put back (a run was killed between setting the old OUT_DIR aside and renaming the new one
    in place). Directories of a process still running are kept.
    """
    out_dir = Path(out_dir)
    notes: list[str] = []
    found = leftovers(out_dir)
    live = [(p, kind, pid) for p, kind, pid in found if running(pid)]
    ended = [item for item in found if item not in live]
    if not out_dir.exists():
        aside = [item for item in ended if item[1] == OLD]
        if aside:
            path, _, pid = max(aside, key=lambda item: item[0].stat().st_mtime_ns)
            path.rename(out_dir)
            ended.remove((path, OLD, pid))
            notes.append(f"已恢复中断的运行（进程 {pid}）移开的原输出目录 {out_dir}（曾暂存为 {path}）")
    for path, _, pid in ended:
        shutil.rmtree(path, ignore_errors=True)
        notes.append(f"已删除中断的运行（进程 {pid}）留下的临时目录 {path}")
    for path, _, pid in live:
        notes.append(f"保留 {path}：写入它的进程 {pid} 仍在运行（可能有另一次评价正写入同一输出目录）")
    for note in notes:
        log.info("%s", note)
    return notes


class Swap:
    """The old OUT_DIR of one run: set aside just before the new one is renamed in place, then deleted
    (:meth:`finish`) or put back (:meth:`restore`)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.aside = sibling(self.out_dir, OLD)
        self.moved = False

    def set_aside(self) -> None:
        """Rename the current OUT_DIR (if any) to ``.<name>.old-<pid>``."""
        if self.aside.exists():  # left by an earlier process with this id
            shutil.rmtree(self.aside)
        if self.out_dir.exists():
            self.out_dir.rename(self.aside)
            self.moved = True

    def restore(self) -> None:
        """Put the old OUT_DIR back, moving away a new one already in place (each step a rename)."""
        if not self.moved:
            return
        discard = sibling(self.out_dir, TMP)
        if self.out_dir.exists():
            shutil.rmtree(discard, ignore_errors=True)
            self.out_dir.rename(discard)
        self.aside.rename(self.out_dir)
        self.moved = False
        shutil.rmtree(discard, ignore_errors=True)

    def finish(self) -> None:
        """Delete the old OUT_DIR (the new one is in place and, with ``--db``, committed)."""
        if self.moved:
            shutil.rmtree(self.aside, ignore_errors=True)
            self.moved = False


@contextlib.contextmanager
def kept_aside(out_dir: Path) -> Iterator[Swap]:
    """A :class:`Swap` for the block: finished when it ends, restored (and this run's temporary directory
    removed) when it raises. An operating system error (disk full, read-only directory) becomes a
    :class:`~geo_eval.storage.errors.RunFilesError` with a Chinese message."""
    swap = Swap(out_dir)
    try:
        yield swap
    except BaseException as exc:
        kept = _restore(swap)
        shutil.rmtree(sibling(swap.out_dir, TMP), ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, GeoEvalError):
            raise RunFilesError(f"写入输出目录 {swap.out_dir} 失败：{exc}；{kept}") from exc
        raise
    swap.finish()


def _restore(swap: Swap) -> str:
    """Put the old OUT_DIR back after a failure; says where it is."""
    if not swap.moved:
        return "原有输出目录未改动" if swap.out_dir.exists() else "未写入任何输出"
    try:
        swap.restore()
    except OSError as exc:
        log.error("could not put %s back to %s: %s", swap.aside, swap.out_dir, exc)
        return f"原有输出目录暂存于 {swap.aside}，无法移回（{exc}），下次评价到该目录时会恢复"
    return "原有输出目录已恢复"

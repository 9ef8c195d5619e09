"""Sign-in throttling: too many failed sign-ins lock a user name, or a client address, for a while.

``POST /login`` records each failure under the user name given and under the client's address (uvicorn
takes it from ``X-Forwarded-For`` only behind a proxy it trusts). ``GEO_EVAL_LOGIN_MAX_FAILURES``
failures of one key within ``GEO_EVAL_LOGIN_WINDOW_S`` seconds lock that key for
``GEO_EVAL_LOGIN_LOCKOUT_S`` seconds (defaults: 5 in 300 s, 300 s): a locked name or address is answered
429 with the time to wait, whatever token it sends, and the lock is logged. A success clears the name's
failures (not the address's: a guesser with an account of its own cannot reset its count).

Locking a name lets someone who knows it keep its owner out of the browser sign-in for a few minutes;
the short lockout bounds that, and scripts with a Bearer token are not affected. The state is in the
memory of the process, bounded to :data:`MAX_KEYS` keys, and is not shared: with
``geo-eval serve --workers N`` (or several machines) each worker counts the failures it sees, so a
guesser gets at most N times the tries before every worker has locked it out. That is accepted: a token
carries 256 random bits and every try costs a scrypt, so the throttle keeps the noise and the logs down
rather than standing between a guesser and a token; a lock lost with a restarted worker costs the same.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MAX_KEYS = 10_000
"""Keys (names and addresses) remembered at most; the least recently failed go first."""
MAX_NAME_KEY = 64


@dataclass
class _Record:
    failures: deque[float] = field(default_factory=deque)
    locked_until: float = 0.0


@dataclass(frozen=True)
class Lock:
    """Why a sign-in is refused: the locked key (``user`` or ``address``), its value and the seconds left."""

    kind: str
    value: str
    seconds: int

    def message(self) -> str:
        """The Chinese message shown to the person signing in.

        >>> Lock("user", "张三", 260).message()
        '登录失败次数过多，用户名“张三”已暂时锁定：请 4 分 20 秒后再试'
        >>> Lock("address", "10.0.0.1", 45).message()
        '登录失败次数过多，此地址（10.0.0.1）已暂时锁定：请 45 秒后再试'
        """
        who = f"用户名“{self.value}”" if self.kind == "user" else f"此地址（{self.value}）"
        return f"登录失败次数过多，{who}已暂时锁定：请 {wait_label(self.seconds)}后再试"


def wait_label(seconds: int) -> str:
    """A waiting time in Chinese.

    >>> wait_label(300), wait_label(260), wait_label(45)
    ('5 分', '4 分 20 秒', '45 秒')
    """
    minutes, rest = divmod(max(int(seconds), 1), 60)
    if not minutes:
        return f"{rest} 秒"
    return f"{minutes} 分" + (f" {rest} 秒" if rest else "")


class LoginThrottle:
    """Failed sign-ins per key in a sliding window, and the keys locked (thread-safe)."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300,
        lockout_s: float = 300,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.clock = clock
        self._records: OrderedDict[tuple[str, str], _Record] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def keys(name: str, address: str) -> list[tuple[str, str]]:
        """The keys of a sign-in: its user name (trimmed, case-folded, cut) and its client address."""
        return [("user", name.strip().casefold()[:MAX_NAME_KEY]), ("address", address)]

    def locked(self, name: str, address: str) -> Lock | None:
        """The lock that refuses a sign-in of ``name`` from ``address`` now, if any (the longest one)."""
        now = self.clock()
        with self._lock:
            locks = []
            for kind, value in self.keys(name, address):
                record = self._records.get((kind, value))
                if record is not None and record.locked_until > now:
                    shown = name.strip()[:MAX_NAME_KEY] if kind == "user" else value
                    locks.append(Lock(kind, shown, math.ceil(record.locked_until - now)))
        return max(locks, key=lambda lk: lk.seconds, default=None)

    def failure(self, name: str, address: str) -> None:
        """Record a failed sign-in; lock (and log) each key that reached the limit."""
        now = self.clock()
        with self._lock:
            for key in self.keys(name, address):
                record = self._records.pop(key, None) or _Record()
                self._records[key] = record  # most recently failed last
                record.failures.append(now)
                while record.failures and record.failures[0] <= now - self.window_s:
                    record.failures.popleft()
                if len(record.failures) >= self.max_failures and record.locked_until <= now:
                    record.locked_until = now + self.lockout_s
                    record.failures.clear()
                    log.warning(
                        "sign-in locked for %gs: %s %r after %d failures in %gs",
                        self.lockout_s,
                        "user" if key[0] == "user" else "address",
                        key[1],
                        self.max_failures,
                        self.window_s,
                    )
            while len(self._records) > MAX_KEYS:
                self._records.popitem(last=False)

    def success(self, name: str) -> None:
        """A successful sign-in clears the failures of its user name."""
        with self._lock:
            self._records.pop(self.keys(name, "")[0], None)

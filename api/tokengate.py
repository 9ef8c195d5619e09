"""Token checks that guessing cannot turn against signed-in users.

A token's secret is checked with scrypt (tens of milliseconds of CPU, on purpose), and an unknown token
id costs the same as a wrong secret (:meth:`~geo_eval.storage.common.TokenCache.verify`), so a wrong
token always costs one scrypt. Run in the worker threads that every request shares, 40 clients sending
wrong tokens would hold all of them (anyio's default is 40) and the CPU, and signed-in users would wait.

:class:`TokenGate` keeps the two apart. It remembers for :data:`VERIFIED_TTL_S` seconds which tokens
the store verified (by a keyed BLAKE2b hash of the token, in memory only, at most :data:`VERIFIED_SIZE`,
least recently used first out; a wrong token is never remembered, so it cannot push a real one out).
A remembered token is checked again by the store in the shared worker threads (a row lookup and the
store's own cache: no scrypt). Any other token waits its turn for one of :data:`SCRYPT_SLOTS` checking
slots, without holding a worker thread while it waits: guessers queue behind each other and are slowed
to what one core can hash, while users who are signed in are not queued at all.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import anyio
import anyio.to_thread
from anyio.lowlevel import RunVar

from geo_eval.storage import Store, User

VERIFIED_TTL_S = 600.0
VERIFIED_SIZE = 4096
SCRYPT_SLOTS = 1
"""Token checks that may run scrypt at once (a second core stays free for the service)."""


class TokenGate:
    """Authenticate Bearer tokens and sign-in tokens through the store, scheduled as described above."""

    def __init__(
        self,
        store: Store,
        *,
        slots: int = SCRYPT_SLOTS,
        ttl_s: float = VERIFIED_TTL_S,
        size: int = VERIFIED_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.slots = slots
        self.ttl_s = ttl_s
        self.size = size
        self.clock = clock
        self._key = secrets.token_bytes(32)
        self._verified: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self._limiter: RunVar[anyio.CapacityLimiter] = RunVar("token_gate_limiter")

    def _digest(self, token: str) -> bytes:
        return hashlib.blake2b(token.encode("utf-8"), key=self._key, digest_size=16).digest()

    def _limiter_now(self) -> anyio.CapacityLimiter:
        """The checking slots of the running event loop (like anyio's own default thread limiter)."""
        try:
            return self._limiter.get()
        except LookupError:
            limiter = anyio.CapacityLimiter(self.slots)
            self._limiter.set(limiter)
            return limiter

    def known(self, token: str) -> bool:
        """Whether the store verified ``token`` less than ``ttl_s`` seconds ago."""
        key = self._digest(token)
        with self._lock:
            expires = self._verified.get(key)
            if expires is None:
                return False
            if expires <= self.clock():
                del self._verified[key]
                return False
            self._verified.move_to_end(key)
            return True

    def _remember(self, token: str) -> None:
        key = self._digest(token)
        with self._lock:
            self._verified[key] = self.clock() + self.ttl_s
            self._verified.move_to_end(key)
            while len(self._verified) > self.size:
                self._verified.popitem(last=False)

    def _forget(self, token: str) -> None:
        with self._lock:
            self._verified.pop(self._digest(token), None)

    async def authenticate(self, token: str) -> User | None:
        """The user holding ``token``, or None (always decided by the store)."""
        if self.known(token):
            user = await anyio.to_thread.run_sync(self.store.authenticate, token)
        else:
            user = await anyio.to_thread.run_sync(self.store.authenticate, token, limiter=self._limiter_now())
        if user is None:
            self._forget(token)  # rotated or deleted since
        else:
            self._remember(token)
        return user

"""How ``geo-eval serve`` runs uvicorn: timeouts and size limits against slow or oversized requests.

uvicorn (0.55) has no timeout for reading a request's headers: ``timeout_keep_alive`` only closes a
connection idle *between* requests, and every byte received cancels it, so a client that opens a
connection and trickles its headers a byte at a time (slowloris) holds it for ever. uvicorn accepts a
protocol class as its ``http`` setting; :class:`HeaderTimeoutProtocol` is its h11 protocol with one
addition: from the moment a connection waits for a request (opened, or its previous response sent and
the first byte of the next one received) the request line and headers must be complete within
``GEO_EVAL_HEADER_TIMEOUT_S`` seconds (default 10), else the connection is closed. A request whose
headers have arrived is never cut, however long its body upload or its answer takes.

The other settings (:func:`uvicorn_options`):

- ``timeout_keep_alive`` = :data:`KEEP_ALIVE_S` (5 s, uvicorn's default, stated): an idle keep-alive
  connection is closed after that;
- ``h11_max_incomplete_event_size`` = :data:`MAX_HEADER_BYTES` (16 KiB): a request line plus headers
  longer than that is refused (400) before it is buffered further;
- ``limit_concurrency`` = :data:`MAX_CONNECTIONS`: beyond that many connections and tasks uvicorn
  answers 503 at once instead of queueing without bound;
- ``server_header`` off (the server does not announce itself).

With several worker processes (``geo-eval serve --workers N``) uvicorn's own multi-process mode runs
them (:class:`WorkerHeaderTimeoutProtocol`, :func:`worker_environment`).

Request bodies are limited by the application (``GEO_EVAL_MAX_BODY_BYTES``, :mod:`api.guards`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from api.settings import Settings

log = logging.getLogger(__name__)

KEEP_ALIVE_S = 5
MAX_HEADER_BYTES = 16 * 1024
MAX_CONNECTIONS = 512


class HeaderTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers take longer than ``header_timeout``."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._header_timer is None and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:  # request line and headers are in
            self._cancel_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._cancel_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timeout_expired)

    def _cancel_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_timeout_expired(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "?"
            log.warning("closed connection from %s: request headers not complete in %gs", client, self.header_timeout)
            self.transport.close()


def protocol_class(header_timeout: float) -> type[HeaderTimeoutProtocol]:
    """:class:`HeaderTimeoutProtocol` with its header timeout (uvicorn builds one protocol per connection)."""
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout": float(header_timeout)})


WORKER_PROTOCOL = "api.server:WorkerHeaderTimeoutProtocol"
""":class:`WorkerHeaderTimeoutProtocol` by name, for uvicorn's ``http`` setting with several workers."""
HEADER_TIMEOUT_ENV = "GEO_EVAL_HEADER_TIMEOUT_S"


@functools.cache
def env_header_timeout() -> float:
    """``GEO_EVAL_HEADER_TIMEOUT_S`` of this process (``geo-eval serve`` sets it from the settings it
    checked); the default when missing or not a positive number."""
    try:
        value = float(os.environ.get(HEADER_TIMEOUT_ENV, ""))
    except ValueError:
        return HeaderTimeoutProtocol.header_timeout
    return value if value > 0 else HeaderTimeoutProtocol.header_timeout


class WorkerHeaderTimeoutProtocol(HeaderTimeoutProtocol):
    """:class:`HeaderTimeoutProtocol` for the worker processes of ``geo-eval serve --workers N``.

    uvicorn starts its workers with ``multiprocessing``'s *spawn* and sends each its configuration
    pickled; a class made by :func:`protocol_class` cannot be pickled (pickle finds classes by module and
    name, and that name holds the base class). So uvicorn is given this class by name
    (:data:`WORKER_PROTOCOL`), each worker imports it, and it reads its timeout from the environment,
    which the workers inherit from ``geo-eval serve``.
    """

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.header_timeout = env_header_timeout()
        super().connection_made(transport)


WORKER_HEALTHCHECK_S = 120
"""Seconds a worker may take to answer uvicorn's health check before it is killed as hung and restarted
(uvicorn's default, 5 s, kills a worker that is reading a large run: pandas and Arrow hold the GIL for
several seconds at a time while a run of a million parcels is read and its columnar copy written)."""


def uvicorn_options(settings: Settings, *, workers: int = 1) -> dict[str, Any]:
    """The keyword arguments of ``uvicorn.run``/``uvicorn.Config`` besides the application, host and port
    (with ``workers`` above 1: ``workers``, and the protocol by name, which needs ``GEO_EVAL_HEADER_TIMEOUT_S``
    set in the environment: :func:`worker_environment`)."""
    if workers > 1:
        return {
            **uvicorn_options(settings),
            "http": WORKER_PROTOCOL,
            "workers": workers,
            "timeout_worker_healthcheck": WORKER_HEALTHCHECK_S,
        }
    return {
        "http": protocol_class(settings.header_timeout_s),
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
        "limit_concurrency": MAX_CONNECTIONS,
        "server_header": False,
    }


def worker_environment(settings: Settings, workers: int) -> dict[str, str]:
    """What the worker processes must find in their environment to be one service: the checked settings
    that are not already there as the user gave them. The session key above all: in demo mode a
    placeholder key is replaced by a random one per process, so ``geo-eval serve`` makes it once and every
    worker signs and reads cookies with it (it is never printed)."""
    return {
        "GEO_EVAL_SECRET_KEY": settings.secret_key.get_secret_value(),
        HEADER_TIMEOUT_ENV: repr(float(settings.header_timeout_s)),
        "GEO_EVAL_WORKERS": str(workers),
    }

"""The tile routes' fast lane: a map tile answered without FastAPI's routing and dependency solving.

A tile from a run's pre-built archive is one indexed SQLite read of well under a millisecond, yet through
FastAPI it took about 4 ms of one CPU: measured with ``py-spy --gil`` at 1M parcels, routing, solving the
route's dependencies (user, store, run cache, selected run) and four thread-pool hops were 70 % of it, the
tile itself under 5 %. A map asks for dozens of tiles a view, so this lane, a pure ASGI middleware innermost
in the service's stack (the guards and security headers still apply), answers the ordinary tile request
itself: ``GET /api/tiles/{park}/{z}/{x}/{y}.pbf`` or ``GET /api/tiles/{z}/{x}/{y}.pbf`` with at most the
``run``, ``year`` and ``basemap`` parameters, from a signed-in user (a session cookie, or a Bearer token the
:class:`~api.tokengate.TokenGate` has already verified). It uses the same functions as the routes
(:func:`api.deps.session_user`, :func:`api.deps.selected_run`, ``_tile_response``), in one thread-pool hop.

Anything else goes on to the routes unchanged: a request without credentials or with a token not verified
yet (the gate queues those), a parameter the lane does not know, and every refusal (401, 403, 404, 422),
so the routes alone word the errors and stay the documented interface (``/openapi.json``).
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from typing import Any

from fastapi import Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import selected_run, session_user
from api.mapdata import MapScope
from api.routes.map_data import _park_tile_scope, _tile_response
from api.security import COOKIE_NAME
from geo_eval.storage import RunRecord

TILE_PATH = re.compile(r"/api/tiles/(?:(?P<park>.+)/)?(?P<z>[0-9]{1,2})/(?P<x>[0-9]{1,7})/(?P<y>[0-9]{1,7})\.pbf")
"""The two tile routes' paths (a park's name may hold slashes, as the route's ``{park:path}``)."""
PARAMETERS = frozenset({"run", "year", "basemap"})
BASEMAPS = frozenset({"none", "tianditu", "gaode"})
YEARS = range(1900, 2201)  # as api.deps.selected_run's ``year`` query
RUN_RECORD_TTL_S = 1.0
"""How long a worker answers tiles of a run named by ``?run=`` (as every map page's tile URLs name it) from
the run's record as it last read it, without asking the store again: a run's tiles never change while its
record says it was stored at the same time (that time is in the tiles' ETags), so a record this old at most
costs, after the run was removed or stored again, a second of tiles from the copy it had. The user is still
checked by the store on every request; a tile without ``?run=`` (the latest run) asks the store each time."""


class RunRecords:
    """The records of the runs whose tiles a worker served in the last :data:`RUN_RECORD_TTL_S` seconds."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[float, RunRecord]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, store: Any, run_id: str) -> RunRecord:
        now = time.monotonic()
        with self._lock:
            item = self._items.get(run_id)
            if item is not None and now - item[0] < RUN_RECORD_TTL_S:
                return item[1]
        record: RunRecord = store.get_run(run_id)  # raises for a run that is not (or no longer) there
        with self._lock:
            self._items[run_id] = (now, record)
            self._items.move_to_end(run_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return record


def run_records(state: Any) -> RunRecords:
    """The app's :class:`RunRecords` (``app.state``), made on first use."""
    records: RunRecords | None = getattr(state, "tile_run_records", None)
    if records is None:
        records = state.tile_run_records = RunRecords()
    return records


class TileLane:
    """Pure ASGI: answers ordinary tile requests itself, passes everything else to ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith("/api/tiles/"):
            response = await self._answer(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope) -> Response | None:
        match = TILE_PATH.fullmatch(scope["path"])
        if match is None:
            return None
        request = Request(scope)
        query = request.query_params
        if not PARAMETERS.issuperset(query.keys()) or any(len(query.getlist(k)) > 1 for k in query):
            return None
        basemap = query.get("basemap", "none")
        year = query.get("year")
        if basemap not in BASEMAPS or (year is not None and not (year.isdigit() and int(year) in YEARS)):
            return None
        token = _bearer_token(request)
        if token is None and not request.cookies.get(COOKIE_NAME):
            return None
        if token is not None and not request.app.state.token_gate.known(token):
            return None  # a token never verified here waits its turn at the gate (the route)
        try:
            return await run_in_threadpool(_tile, request, match, token, basemap, year)
        except Exception:  # any refusal or failure is answered by the route, which words it
            return None


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else ""


def _tile(request: Request, match: re.Match[str], token: str | None, basemap: str, year: str | None) -> Response | None:
    """The tile as the route answers it; None when the route must decide (no such user, another park …)."""
    state = request.app.state
    store = state.store
    if token is not None:
        user = store.authenticate(token)
        request.state.auth = "bearer"
    else:
        user = session_user(state.settings, store, request.cookies[COOKIE_NAME])
        request.state.auth = "cookie"
    if user is None:
        return None
    park = match["park"]
    if park is not None and not user.may_see_park(park):
        return None
    run = request.query_params.get("run") or None
    if run is not None:
        record = run_records(state).get(store, run)
    else:
        record = selected_run(user, store, int(year) if year is not None else None, None)
    z, x, y = int(match["z"]), int(match["x"]), int(match["y"])
    scope_of: Any = (lambda *_: MapScope.overview(user)) if park is None else _park_tile_scope(request, record, park)
    return _tile_response(request, record, state.run_cache, store, scope_of, basemap, z, x, y)

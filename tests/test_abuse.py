"""The service under abuse: body limits, NUL characters, sign-in throttling, sessions, park scope of
enterprise rows and run counts, the datasets directory, and the API documentation behind sign-in.

One module-scoped evaluation of the catalogue split into two parks (海滨高新技术产业园: P1–P3 with E1, E2,
E4, E5; 青松经济开发区: P4–P8 with E6–E9) where 丙公司 (E3), a lessee on P2 in the first park, is
registered in the second park.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import catalogue
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.io.run import run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import Store, open_store, run_record_from_out_dir

PARK_A = "海滨高新技术产业园"
PARK_B = "青松经济开发区"
SCHEME = "huaian-2024"
SECRET = "k" * 48
SITE = "https://testserver"
SAME_ORIGIN = {"Origin": SITE}
E3 = catalogue.E[3]  # 丙公司: a lessee on P2 (park A), registered in park B


def two_park_dataset(root: Path) -> Path:
    p = catalogue.parcels()
    e = catalogue.enterprises()
    p.loc[p["parcel_id"].isin(["P4", "P5", "P6", "P7", "P8"]), "park"] = PARK_B
    e.loc[e["uscc"].isin([catalogue.E[i] for i in (3, 6, 7, 8, 9)]), "park"] = PARK_B
    return catalogue.write_dataset(root, parcels_gdf=p, enterprises_df=e)


@dataclass
class Service:
    app: object
    client: TestClient
    base: Path
    datasets: Path
    dataset: Path
    out: Path
    run_id: str
    tokens: dict[str, str]

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def flags(self, park: str | None = None) -> pd.DataFrame:
        fl = pd.read_csv(self.out / "flags.csv", encoding="utf-8-sig", dtype=str)
        return fl if park is None else fl.loc[fl["park"] == park]


def add_users(store: Store) -> dict[str, str]:
    users = [
        ("admin", "admin", []),
        ("rev", "reviewer", []),
        ("comA", "committee", [PARK_A]),
        ("comB", "committee", [PARK_B]),
    ]
    return {name: store.add_user(name, role, parks)[1] for name, role, parks in users}


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path, Path]:
    """``(base, dataset, out)``: the dataset lies in ``base/datasets``, its evaluation in ``base/out``."""
    base = tmp_path_factory.mktemp("abuse")
    dataset = two_park_dataset(base / "datasets" / "two-parks")
    run(dataset, load_scheme(SCHEME), base / "out")
    return base, dataset, base / "out"


@pytest.fixture(scope="module")
def svc(evaluated) -> Iterator[Service]:
    base, dataset, out = evaluated
    store = open_store(base / "data")
    run_id = store.add_run(run_record_from_out_dir(out), actor="test").run_id
    tokens = add_users(store)
    store.close()
    settings = Settings(data_dir=base / "data", secret_key=SECRET, datasets_dir=base / "datasets")
    app = create_app(settings)
    with TestClient(app, base_url=SITE) as client:
        yield Service(app, client, base, base / "datasets", dataset, out, run_id, tokens)


def browser(svc: Service, address: str = "testclient") -> TestClient:
    """A browser of its own (cookies), sending ``Origin`` like a real one on POST."""
    return TestClient(svc.app, base_url=SITE, follow_redirects=False, client=(address, 50000))


# --- request bodies ----------------------------------------------------------------------------------------
def batch_of(n_items: int, comment: str = "") -> dict:
    return {"status": "site_visit", "comment": comment, "items": [{"flag_id": "P1:x", "version": 0}] * n_items}


def test_a_body_above_the_limit_is_413_in_chinese_before_the_route_runs(svc):
    before = len(svc.client.get("/api/audit", headers=svc.h("admin")).json())
    big = json.dumps(batch_of(1, comment="长" * 400_000)).encode("utf-8")  # 1.2 MB
    assert len(big) > 1024 * 1024
    r = svc.client.post("/api/reviews/batch", content=big, headers={**svc.h("rev"), "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {
        "detail": "请求内容过大：最多 1 MB（GEO_EVAL_MAX_BODY_BYTES = 1048576 字节）",
        "error": "ContentTooLarge",
    }
    assert len(svc.client.get("/api/audit", headers=svc.h("admin")).json()) == before
    # the sign-in form too, whoever sends it
    r = browser(svc).post("/login", content=b"name=" + b"x" * 1_100_000, headers=SAME_ORIGIN)
    assert r.status_code == 413 and "请求内容过大" in r.json()["detail"]


async def call_asgi(
    app, method: str, path: str, headers: dict[str, str], chunks: list[bytes]
) -> tuple[int, bytes, int]:
    """Drive an ASGI app with a body in ``chunks`` (no Content-Length): status, body and chunks it asked for."""
    asked = 0
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        if asked >= len(chunks):
            return {"type": "http.disconnect"}
        asked += 1
        return {"type": "http.request", "body": chunks[asked - 1], "more_body": asked < len(chunks)}

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("testclient", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, asked


def test_a_chunked_body_is_counted_as_it_arrives(tmp_path):
    import asyncio

    store = open_store(tmp_path / "data")
    token = add_users(store)["admin"]
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET, max_body_bytes=2000))
    h = {"authorization": f"Bearer {token}", "content-type": "application/json"}
    status, body, asked = asyncio.run(call_asgi(app, "POST", "/api/users", h, [b" " * 500] * 100))
    assert status == 413 and "2000 字节" in json.loads(body)["detail"]
    assert asked == 5  # refused at the chunk that passed the limit, the rest never read
    status, body, _ = asyncio.run(call_asgi(app, "POST", "/api/users", h, [b'{"name": ', b'"x"}']))
    assert status == 422 and json.loads(body)["error"] == "RequestValidationError"  # small: parsed as usual
    app.state.store.close()


def test_the_body_limit_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("GEO_EVAL_MAX_BODY_BYTES", "4096")
    monkeypatch.setenv("GEO_EVAL_SECRET_KEY", SECRET)
    monkeypatch.setenv("GEO_EVAL_DATA_DIR", str(tmp_path))
    app = create_app(Settings())
    with TestClient(app) as c:
        r = c.post("/login", content=b"x" * 5000, headers={"Content-Type": "text/plain", **SAME_ORIGIN})
        assert r.status_code == 413 and "4 KB" in r.json()["detail"]


# --- NUL characters and blank reasons, on both backends ---------------------------------------------------------
def nul_cases(flag_id: str) -> list[tuple[str, str, dict]]:
    enc = quote(flag_id)
    return [
        ("GET", f"/api/flags/{enc}%00", {}),
        ("GET", "/api/flags?run=%00", {}),
        ("GET", "/api/rankings?park=a%00b", {}),
        ("GET", f"/api/flags/{enc}/history?run=x%00", {}),
        ("PATCH", f"/api/flags/{enc}", {"json": {"status": "confirmed", "comment": "a\x00b", "version": 0}}),
        (
            "POST",
            "/api/reviews/batch",
            {"json": {"status": "confirmed", "items": [{"flag_id": "P1\x00", "version": 0}]}},
        ),
        ("POST", "/api/users", {"json": {"name": "a\x00", "role": "reviewer"}}),
    ]


def assert_nul_refused(client: TestClient, headers: dict[str, str], flag_id: str) -> None:
    for method, path, kwargs in nul_cases(flag_id):
        r = client.request(method, path, headers=headers, **kwargs)
        assert r.status_code == 422, (method, path, r.status_code, r.text[:300])
        body = r.json()
        assert body["error"] == "NulCharacter" and "空字符" in body["detail"], body
    r = client.patch(
        f"/api/flags/{quote(flag_id)}", json={"status": "confirmed", "comment": "a\x00b", "version": 0}, headers=headers
    )
    assert "comment" in r.json()["detail"]
    r = client.get("/api/rankings?park=a%00b", headers=headers)
    assert "park" in r.json()["detail"]


BLANK_REASONS = ["", "   ", "\u200b", "\u200c\u200d", "\ufeff", " \u2060 \u200b\n"]


def assert_blank_reasons_refused(client: TestClient, headers: dict[str, str], flag_id: str, version: int) -> None:
    for reason in BLANK_REASONS:
        body = {"status": "dismissed", "comment": reason, "version": version}
        r = client.patch(f"/api/flags/{quote(flag_id)}", json=body, headers=headers)
        assert r.status_code == 422, (repr(reason), r.text)
        assert "理由" in r.json()["detail"]
        batch = {"status": "dismissed", "comment": reason, "items": [{"flag_id": flag_id, "version": version}]}
        r = client.post("/api/reviews/batch", json=batch, headers=headers)
        assert r.status_code == 422, (repr(reason), r.text)
    r = client.get(f"/api/flags/{quote(flag_id)}/history", headers=headers)
    assert r.json()["review"]["version"] == version  # nothing was written


def test_nul_characters_and_blank_reasons_are_422_on_sqlite(svc):
    fid = svc.flags(PARK_A)["flag_id"].iloc[0]
    assert_nul_refused(svc.client, svc.h("admin"), fid)
    assert_blank_reasons_refused(svc.client, svc.h("rev"), fid, 0)


def test_nul_characters_and_blank_reasons_are_422_on_postgis(evaluated, pg_db, tmp_path):
    from geo_eval.db import PostgresStore

    _, _, out = evaluated
    store = PostgresStore(pg_db)
    store.add_run(run_record_from_out_dir(out), actor="test")
    tokens = add_users(store)
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET, database_url=pg_db))
    fid = str(pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype=str)["flag_id"].iloc[0])
    with TestClient(app) as c:
        assert_nul_refused(c, {"Authorization": f"Bearer {tokens['admin']}"}, fid)
        assert_blank_reasons_refused(c, {"Authorization": f"Bearer {tokens['rev']}"}, fid, 0)
        # and a real reason still works
        r = c.patch(
            f"/api/flags/{quote(fid)}",
            json={"status": "dismissed", "comment": "\u200b已复垦", "version": 0},
            headers={"Authorization": f"Bearer {tokens['rev']}"},
        )
        assert r.status_code == 200 and r.json()["review"]["version"] == 1


def test_a_store_refuses_a_blank_reason_whatever_the_caller(tmp_path, evaluated):
    from geo_eval.storage import InvalidValueError

    _, _, out = evaluated
    store = open_store(tmp_path)
    run_id = store.add_run(run_record_from_out_dir(out)).run_id
    for reason in BLANK_REASONS:
        with pytest.raises(InvalidValueError, match="理由"):
            store.set_review(run_id, "P1:x", status="dismissed", comment=reason, version=0, actor="rev")
    store.close()


# --- slow request headers (geo-eval serve's uvicorn settings) ---------------------------------------------------
@pytest.fixture
def slow_server(tmp_path) -> Iterator[tuple[str, int]]:
    """uvicorn with ``geo-eval serve``'s options (header timeout 1 s) and a one-line app, on a free port."""
    import socket
    import threading
    import time

    import uvicorn

    from api.server import uvicorn_options

    async def hello(scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = Settings(data_dir=tmp_path, secret_key=SECRET, header_timeout_s=1.0)
    config = uvicorn.Config(hello, host="127.0.0.1", port=port, log_level="warning", **uvicorn_options(settings))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield "127.0.0.1", port
    server.should_exit = True
    thread.join(timeout=10)


def closed_after(sock, trickle: list[bytes], pause: float, limit: float) -> float | None:
    """Send ``trickle`` piece by piece every ``pause`` seconds; when the server closed the connection (seconds
    since the first byte), or None if it still answers nothing after ``limit`` seconds."""
    import time

    start = time.monotonic()
    sock.settimeout(pause)
    pieces = iter(trickle)
    while time.monotonic() - start < limit:
        try:
            piece = next(pieces, b"x-y: z\r\n")
            sock.sendall(piece)
            if sock.recv(1024) == b"":
                return time.monotonic() - start
        except TimeoutError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - start
    return None


def test_serve_closes_a_connection_whose_headers_trickle_in(slow_server):
    import socket

    host, port = slow_server
    with socket.create_connection((host, port)) as sock:  # slowloris: a header line every 0.3 s, never ending
        after = closed_after(sock, [b"GET / HTTP/1.1\r\n", b"Host: x\r\n"], pause=0.3, limit=6)
    assert after is not None and 0.8 < after < 3, after
    with socket.create_connection((host, port)) as sock:  # a connection that sends nothing at all
        sock.settimeout(5)
        assert sock.recv(10) == b""
    with socket.create_connection((host, port)) as sock:  # a prompt client: answered, and kept alive
        sock.settimeout(5)
        for _ in range(2):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"\r\n\r\nok"):
                answer += sock.recv(1024)
            assert answer.startswith(b"HTTP/1.1 200")


def test_serve_passes_its_limits_to_uvicorn(tmp_path):
    from api.server import MAX_HEADER_BYTES, HeaderTimeoutProtocol, uvicorn_options

    opts = uvicorn_options(Settings(data_dir=tmp_path, secret_key=SECRET, header_timeout_s=7))
    assert issubclass(opts["http"], HeaderTimeoutProtocol) and opts["http"].header_timeout == 7
    assert opts["timeout_keep_alive"] == 5 and opts["h11_max_incomplete_event_size"] == MAX_HEADER_BYTES == 16384
    assert opts["server_header"] is False


# --- sign-in: same origin, server-side sign-out ---------------------------------------------------------------
def login(b: TestClient, name: str, token: str, headers: dict[str, str] | None = None, **kwargs):
    body = {"name": name, "token": token, "next": "/"}
    return b.post("/login", data=body, headers=SAME_ORIGIN if headers is None else headers, **kwargs)


def new_user(svc: Service, name: str, role: str = "reviewer") -> str:
    r = svc.client.post("/api/users", json={"name": name, "role": role, "replace": True}, headers=svc.h("admin"))
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def test_logout_ends_the_session_on_the_server(svc):
    from api.security import COOKIE_NAME

    token = new_user(svc, "会话用户")
    first, second = browser(svc), browser(svc)
    assert login(first, "会话用户", token).status_code == 303
    assert login(second, "会话用户", token).status_code == 303  # the same user in another browser
    stolen = first.cookies[COOKIE_NAME]
    assert first.get("/api/me").status_code == 200
    r = first.post("/logout", headers=SAME_ORIGIN)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    replay = browser(svc)
    replay.cookies.set(COOKIE_NAME, stolen)
    assert replay.get("/api/me").status_code == 401
    r = replay.get("/", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
    assert second.get("/api/me").status_code == 401  # signing out ends every browser session of the user
    assert svc.client.get("/api/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200  # not the token
    # signing in again works at once
    assert login(first, "会话用户", token).status_code == 303 and first.get("/api/me").status_code == 200
    entry = svc.client.get("/api/audit", headers=svc.h("admin")).json()[0]
    assert entry["action"] == "user.sign_out" and entry["entity"] == "会话用户" and entry["actor"] == "会话用户"


CROSS_SITE = [
    {},
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Referer": "https://evil.example/login"},
    {"Origin": "https://testserver.evil.example"},
]


@pytest.mark.parametrize("headers", CROSS_SITE)
def test_login_and_logout_need_a_same_origin_request(svc, headers):
    from api.security import COOKIE_NAME

    b = browser(svc)
    r = login(b, "rev", svc.tokens["rev"], headers=headers)
    assert r.status_code == 403 and "跨站" in r.text and COOKIE_NAME not in b.cookies
    r = b.post("/login", json={"name": "rev", "token": svc.tokens["rev"]}, headers=headers)
    assert r.status_code == 403 and r.json()["error"] == "Forbidden" and "跨站" in r.json()["detail"]
    # a real browser sends Origin on POST; without it, a Referer of this site will do
    assert login(b, "rev", svc.tokens["rev"], headers={"Referer": f"{SITE}/login?next=/"}).status_code == 303
    r = b.post("/logout", headers=headers)
    assert r.status_code == 403 and "跨站" in r.json()["detail"]
    assert b.get("/api/me").status_code == 200  # still signed in


def test_schema_upgrades_add_session_generations_on_sqlite(tmp_path):
    import sqlite3

    from geo_eval.storage.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore

    path = tmp_path / "geo-eval.sqlite3"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO users (name, role, parks, token_id, token_hash, created) VALUES ('老用户', 'admin', '[]', 't', 'h', '')"
    )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.status()["schema_version"] == SCHEMA_VERSION >= 2
    assert store.get_user("老用户").session_gen == 0
    assert store.end_sessions("老用户", actor="老用户").session_gen == 1
    assert store.get_user("老用户").session_gen == 1
    store.close()


def test_schema_upgrades_add_session_generations_on_postgis(pg_db, monkeypatch):
    from conftest import wipe_database

    from geo_eval.db import PostgresStore, connect, upgrade_schema
    from geo_eval.db import schema as db_schema

    wipe_database(pg_db)
    with monkeypatch.context() as m:  # the database as the first release made it
        m.setattr(db_schema, "MIGRATIONS", db_schema.MIGRATIONS[:1])
        m.setattr(db_schema, "SCHEMA_VERSION", 1)
        db_schema.init_schema(pg_db)
    with connect(pg_db, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO geo_eval.users (name, role, token_id, token_hash, created) VALUES ('老用户', 'admin', 't', 'h', '')"
        )
    result = upgrade_schema(pg_db)
    assert result["from_version"] == 1 and result["schema_version"] == db_schema.SCHEMA_VERSION >= 2
    store = PostgresStore(pg_db)
    assert store.get_user("老用户").session_gen == 0
    assert store.end_sessions("老用户", actor="老用户").session_gen == 1
    assert store.get_user("老用户").session_gen == 1
    assert [e.action for e in store.audit()] == ["user.sign_out"]
    store.close()


# --- sign-in throttling ----------------------------------------------------------------------------------------
@pytest.fixture
def fresh(tmp_path) -> Iterator[tuple[TestClient, dict[str, str], object]]:
    """A service of its own (its throttle starts empty): ``(client, tokens, app)``."""
    store = open_store(tmp_path / "data")
    tokens = add_users(store)
    store.close()
    app = create_app(Settings(data_dir=tmp_path / "data", secret_key=SECRET))
    with TestClient(app, base_url=SITE) as client:
        yield client, tokens, app


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_five_failures_for_a_user_lock_that_name_from_every_address(fresh, caplog):
    client, tokens, app = fresh
    clock = Clock()
    app.state.login_throttle.clock = clock
    caplog.set_level(logging.INFO)
    for i in range(5):
        b = TestClient(app, base_url=SITE, follow_redirects=False, client=(f"10.0.0.{i}", 5000))
        assert login(b, "rev", tokens["comA"]).status_code == 401
        clock.t += 10
    b = TestClient(app, base_url=SITE, follow_redirects=False, client=("10.0.0.99", 5000))
    r = login(b, "rev", tokens["rev"])  # the right token, but the name is locked
    assert r.status_code == 429 and "登录失败次数过多" in r.text and "4 分 50 秒" in r.text  # locked at 5th failure
    assert r.headers["retry-after"] == "290"
    r = b.post("/login", json={"name": "rev", "token": tokens["rev"]}, headers=SAME_ORIGIN)
    assert r.status_code == 429 and r.json()["error"] == "TooManyAttempts"
    assert r.json()["detail"] == "登录失败次数过多，用户名“rev”已暂时锁定：请 4 分 50 秒后再试"
    assert login(b, "comA", tokens["comA"]).status_code == 303  # other names from the same address: fine
    assert client.get("/api/me", headers={"Authorization": f"Bearer {tokens['rev']}"}).status_code == 200
    assert any("locked" in rec.getMessage() and "rev" in rec.getMessage() for rec in caplog.records)
    clock.t += 291
    assert login(b, "rev", tokens["rev"]).status_code == 303


def test_five_failures_from_an_address_lock_that_address_for_every_name(fresh, caplog):
    _, tokens, app = fresh
    clock = Clock()
    app.state.login_throttle.clock = clock
    caplog.set_level(logging.INFO)
    guesser = TestClient(app, base_url=SITE, follow_redirects=False, client=("10.9.9.9", 5000))
    for name in ("a", "b", "c", "d", "e"):
        assert login(guesser, name, "gev.000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").status_code == 401
    r = login(guesser, "comA", tokens["comA"])
    assert r.status_code == 429 and "此地址" in r.text and "5 分" in r.text
    assert any("10.9.9.9" in rec.getMessage() and "locked" in rec.getMessage() for rec in caplog.records)
    elsewhere = TestClient(app, base_url=SITE, follow_redirects=False, client=("10.9.9.10", 5000))
    assert login(elsewhere, "comA", tokens["comA"]).status_code == 303
    # failures older than the window do not count
    clock.t += 301
    for name in ("a", "b", "c", "d"):
        login(elsewhere, name, "wrong")
    clock.t += 301
    login(elsewhere, "e", "wrong")
    assert login(elsewhere, "comB", tokens["comB"]).status_code == 303


# --- token checks: no timing oracle, a cache that wrong tokens cannot flush, no starvation -------------------
@pytest.fixture(params=["sqlite", "postgis"])
def any_store(request, tmp_path) -> Iterator[Store]:
    if request.param == "sqlite":
        store: Store = open_store(tmp_path)
    else:
        from geo_eval.db import PostgresStore

        store = PostgresStore(request.getfixturevalue("pg_db"))
    yield store
    store.close()


def count_scrypt(monkeypatch) -> list[tuple[int, int, int, int]]:
    import hashlib

    calls: list[tuple[int, int, int, int]] = []
    real = hashlib.scrypt

    def counting(password: bytes, **kw):  # type: ignore[no-untyped-def]
        calls.append((kw["n"], kw["r"], kw["p"], kw["dklen"]))
        return real(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    return calls


def test_an_unknown_token_id_costs_what_a_wrong_secret_costs(any_store, monkeypatch):
    from geo_eval.storage.tokens import SCRYPT_N, SCRYPT_P, SCRYPT_R, parse_token

    _, token = any_store.add_user("时序", "reviewer")
    token_id, secret = parse_token(token)
    calls = count_scrypt(monkeypatch)
    assert any_store.authenticate(f"gev.{token_id}.{'A' * len(secret)}") is None
    wrong_secret = list(calls)
    calls.clear()
    assert any_store.authenticate(f"gev.ffffffffffff.{'A' * len(secret)}") is None
    unknown_id = list(calls)
    assert wrong_secret == unknown_id == [(SCRYPT_N, SCRYPT_R, SCRYPT_P, 32)]


def test_the_token_cache_keeps_real_tokens_briefly_and_never_a_wrong_one(monkeypatch):
    from geo_eval.storage.common import TokenCache
    from geo_eval.storage.tokens import hash_secret, new_token, parse_token

    clock = Clock()
    cache = TokenCache(size=3, ttl_s=600, clock=clock)
    real = [new_token()[0] for _ in range(4)]
    parsed = [parse_token(t) for t in real]
    hashes = [hash_secret(s) for _, s in parsed]
    calls = count_scrypt(monkeypatch)

    def verify(i: int, token: str | None = None) -> bool:
        tid, secret = parsed[i]
        return cache.verify(token or real[i], parse_token(token)[1] if token else secret, tid, hashes[i])

    assert verify(0) and len(calls) == 1
    assert verify(0) and len(calls) == 1  # cached
    for k in range(50):  # wrong tokens are checked every time and never stored
        wrong = f"gev.{parsed[0][0]}.{'W' * 40}{k:03d}"
        assert not verify(0, wrong)
    assert len(calls) == 51
    assert verify(0) and len(calls) == 51  # still cached: wrong tokens evicted nothing
    assert verify(1) and verify(2) and verify(0) and len(calls) == 53
    assert verify(3) and len(calls) == 54  # the cache is full: the least recently used (1) goes
    assert verify(0) and verify(2) and len(calls) == 54
    assert verify(1) and len(calls) == 55
    clock.t += 601  # entries expire
    assert verify(0) and len(calls) == 56


def test_forty_token_guessers_do_not_starve_signed_in_users(fresh, monkeypatch):
    import hashlib
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    client, tokens, _ = fresh
    real = {"Authorization": f"Bearer {tokens['rev']}"}
    assert client.get("/api/me", headers=real).status_code == 200  # verified once
    token_id = tokens["comA"].split(".")[1]
    release = threading.Event()
    scrypt = hashlib.scrypt

    def stuck(password: bytes, **kw):  # type: ignore[no-untyped-def]
        release.wait(60)  # every check of an unverified token hangs until released
        return scrypt(password, **kw)

    monkeypatch.setattr(hashlib, "scrypt", stuck)
    wrong = {"Authorization": f"Bearer gev.{token_id}.{'G' * 43}"}
    with ThreadPoolExecutor(max_workers=60) as pool:
        guesses = [pool.submit(client.get, "/api/me", headers=wrong) for _ in range(44)]
        time.sleep(1.0)  # every guess is in
        try:
            served = [pool.submit(client.get, "/api/me", headers=real) for _ in range(5)]
            assert [f.result(timeout=10).status_code for f in served] == [200] * 5
        finally:
            release.set()
        assert [f.result(timeout=120).status_code for f in guesses] == [401] * 44


# --- another park's enterprise: name and USCC only ---------------------------------------------------------------
ENTERPRISE_FIGURES = ("tax", "sales", "score", "grade", "tax_per_mu", "rank", "energy_tce", "land_mu")


def assert_only_named(rows: list[dict], hidden: str, shown: set[str]) -> None:
    by_uscc = {r["uscc"]: r for r in rows}
    assert set(by_uscc) == shown | {hidden}
    assert by_uscc[hidden] == {"uscc": hidden, "name": "丙公司", "restricted": True}
    for uscc in shown:
        assert by_uscc[uscc]["tax"] is not None and by_uscc[uscc]["grade"] and "restricted" not in by_uscc[uscc]


def test_a_committee_sees_another_parks_enterprise_by_name_and_uscc_only(svc):
    e2 = catalogue.E[2]
    parcel = svc.client.get("/api/parcels/P2", headers=svc.h("comA")).json()["properties"]
    assert_only_named(parcel["enterprise_rows"], E3, {e2})
    assert parcel["tax_per_mu"] is None  # a figure of the parcel made from 丙公司's tax as well
    assert parcel["grade"] == "D" and parcel["main_user"] == e2  # its main user is of this park
    fid = svc.flags(PARK_A).query("parcel_id == 'P2'")["flag_id"].iloc[0]
    flag = svc.client.get(f"/api/flags/{quote(fid)}", headers=svc.h("comA")).json()["properties"]
    assert_only_named(flag["enterprise_rows"], E3, {e2})
    assert flag["parcel"]["tax_per_mu"] is None
    listed = svc.client.get("/api/parcels", headers=svc.h("comA")).json()["features"]
    p2 = next(f["properties"] for f in listed if f["id"] == "P2")
    assert p2["tax_per_mu"] is None and p2["grade"] == "D"
    assert next(f["properties"] for f in listed if f["id"] == "P1")["tax_per_mu"] == pytest.approx(20.0)
    # reviewers see everything, and a committee of both parks too
    full = svc.client.get("/api/parcels/P2", headers=svc.h("rev")).json()["properties"]
    assert {r["uscc"] for r in full["enterprise_rows"]} == {e2, E3}
    e3 = next(r for r in full["enterprise_rows"] if r["uscc"] == E3)
    assert e3["tax"] == 90 and e3["grade"] == "D" and full["tax_per_mu"] == pytest.approx(20.0)
    text = json.dumps(svc.client.get("/api/parcels/P2", headers=svc.h("comA")).json(), ensure_ascii=False)
    assert '"tax": 90' not in text


# --- the runs list of a committee: its own parks' counts --------------------------------------------------------
def test_a_committee_gets_the_counts_of_its_own_park(svc):
    run = next(r for r in svc.client.get("/api/runs", headers=svc.h("comA")).json() if r["run_id"] == svc.run_id)
    counts = run["counts"]
    e = pd.read_csv(svc.out / "enterprises.csv", encoding="utf-8-sig", dtype=str)
    mine = e.loc[e["park"] == PARK_A]
    assert counts["enterprises"] == len(mine) == 4
    assert counts["grades"] == mine["grade"].value_counts().to_dict() == {"D": 3, "C": 1}
    assert counts["parcels"] == 3
    assert counts["flags"] == len(svc.flags(PARK_A)) == 6
    assert counts["flagged_parcels_by_flag"] == {"low_efficiency": 3, "renewal_candidate": 3}
    assert counts["parks"] == [PARK_A] and counts["flags_enabled"] is True
    assert counts["leases"] is None and counts["exceptions"] is None  # city-wide figures are not shown
    city = next(r for r in svc.client.get("/api/runs", headers=svc.h("rev")).json() if r["run_id"] == svc.run_id)
    assert city["counts"]["enterprises"] == 9 and city["counts"]["flags"] == 10 and "parks" not in city["counts"]
    other = next(r for r in svc.client.get("/api/runs", headers=svc.h("comB")).json() if r["run_id"] == svc.run_id)
    assert other["counts"]["enterprises"] == 5 and other["counts"]["flags"] == 4


# --- the datasets directory of POST /api/runs ---------------------------------------------------------------------
def test_evaluations_read_only_the_datasets_directory(svc, tmp_path):
    h = svc.h("admin")
    outside = two_park_dataset(tmp_path / "elsewhere")
    (svc.datasets / "link-out").symlink_to(outside, target_is_directory=True)
    (svc.datasets / "scheme-link.toml").symlink_to(tmp_path / "x.toml")
    refused = [
        {"dataset_dir": str(outside)},
        {"dataset_dir": "../datasets/two-parks"},
        {"dataset_dir": "two-parks/../../out"},
        {"dataset_dir": "link-out"},
        {"dataset_dir": str(svc.datasets / "link-out")},
        {"dataset_dir": "/etc"},
        {"dataset_dir": "two-parks", "scheme": str(tmp_path / "x.toml")},
        {"dataset_dir": "two-parks", "scheme": "../x.toml"},
        {"dataset_dir": "two-parks", "scheme": "scheme-link.toml"},
    ]
    (tmp_path / "x.toml").write_text(load_scheme_text(), encoding="utf-8")
    for body in refused:
        r = svc.client.post("/api/runs", json={"scheme": SCHEME, **body}, headers=h)
        assert r.status_code == 403, (body, r.text)
        assert "GEO_EVAL_DATASETS_DIR" in r.json()["detail"], r.json()
    assert not list((svc.base / "data").glob("runs/*"))  # nothing was evaluated
    # inside: by a relative or an absolute path, a preset scheme or a scheme file of the directory
    (svc.datasets / "mine.toml").write_text(load_scheme_text(), encoding="utf-8")
    r = svc.client.post("/api/runs", json={"dataset_dir": "two-parks", "scheme": "mine.toml"}, headers=h)
    assert r.status_code == 201, r.text
    r = svc.client.post("/api/runs", json={"dataset_dir": str(svc.dataset), "scheme": SCHEME}, headers=h)
    assert r.status_code == 201 and r.json()["run_id"] == svc.run_id, r.text
    r = svc.client.post("/api/runs", json={"dataset_dir": "no-such", "scheme": SCHEME}, headers=h)
    assert r.status_code == 422 and "不存在" in r.json()["detail"]


def load_scheme_text() -> str:
    from geo_eval.rating.scheme import preset_text

    return preset_text(SCHEME)


def test_without_a_datasets_directory_only_demo_mode_evaluates(evaluated, tmp_path):
    _, dataset, _ = evaluated
    for demo, expected in ((False, 403), (True, 201)):
        data = tmp_path / f"data-{demo}"
        store = open_store(data)
        token = add_users(store)["admin"]
        store.close()
        app = create_app(Settings(data_dir=data, secret_key=SECRET, demo=demo))
        with TestClient(app) as c:
            r = c.post(
                "/api/runs",
                json={"dataset_dir": str(dataset), "scheme": SCHEME},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == expected, r.text
            if not demo:
                assert "GEO_EVAL_DATASETS_DIR" in r.json()["detail"] and "未配置" in r.json()["detail"]


# --- the API documentation -----------------------------------------------------------------------------------
def test_docs_and_openapi_need_a_signed_in_user_outside_demo_mode(svc, tmp_path):
    anon = browser(svc)
    r = anon.get("/docs", headers={"Accept": "text/html"})
    assert r.status_code == 303 and r.headers["location"] == "/login?next=/docs"
    r = anon.get("/openapi.json")
    assert r.status_code == 401 and r.json()["error"] == "Unauthorized"
    spec = svc.client.get("/openapi.json", headers=svc.h("comA"))
    assert spec.status_code == 200 and "/api/flags" in spec.json()["paths"]
    b = browser(svc)
    assert login(b, "comB", svc.tokens["comB"]).status_code == 303
    assert b.get("/docs").status_code == 200 and "/openapi.json" in b.get("/docs").text
    assert b.get("/openapi.json").status_code == 200
    demo = create_app(Settings(data_dir=tmp_path, secret_key=SECRET, demo=True))
    with TestClient(demo) as c:
        assert c.get("/docs").status_code == 200 and c.get("/openapi.json").status_code == 200

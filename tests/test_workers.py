"""``geo-eval serve --workers 2``: two worker processes are one service.

Each request goes over a fresh connection, so the kernel hands it to either worker; every answer names
its worker (``X-Geo-Eval-Worker``, the worker's pid), and :func:`on_worker` repeats a request until the
worker wanted answers it. On SQLite (the data directory; the SQLite service in demo mode, whose random
session key ``geo-eval serve`` makes once for all workers) and on PostgreSQL (``--db``):

- a review made through one worker is read back through the other at once;
- a browser session signed in through one worker holds on the other, and signing out ends it on both;
- a run registered with the CLI while the service runs is listed and served (rankings, park map) by both
  workers without a restart, and a change of its status is seen by both at once;
- one evaluation at a time (``POST /api/runs``): while the evaluation lock is held elsewhere (another
  process; on PostgreSQL one with another data directory, as another server would be) both workers
  answer 409; two requests at once: one evaluates, the other gets 409;
- the request-header timeout of ``api.server`` reaches the workers.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from serving import serving
from typer.testing import CliRunner

from api.evallock import EvaluationLock
from geo_eval.cli import app as cli

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_parcels"
SECRET = "w" * 48
HEADER_TIMEOUT_S = 2
TRIES = 200
WORKER = "x-geo-eval-worker"
OVERVIEW_TILE = "8/212/101"
"""The zoom-8 tile of the sample parks (a zoom the service's own cut tiles hold no flag points at)."""

runner = CliRunner()


@dataclass
class Service:
    url: str
    data_dir: Path
    db: str | None
    tokens: dict[str, str]
    workers: tuple[int, int]
    backend: str
    runs: dict[int, Path]
    """Copies of the sample's OUT_DIRs (registering one cuts its tiles into it)."""

    def cli(self, *args: str) -> str:
        where = ["--data-dir", str(self.data_dir), *(["--db", self.db] if self.db else [])]
        r = runner.invoke(cli, [*args, *where])
        assert r.exit_code == 0, r.output
        return r.output

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def ask(method: str, url: str, **kw: Any) -> httpx.Response:
    """One request over a connection of its own (``httpx.request`` opens a new one each time)."""
    return httpx.request(method, url, timeout=120, **kw)


def worker_of(r: httpx.Response) -> int:
    return int(r.headers[WORKER])


def on_worker(pid: int, method: str, url: str, **kw: Any) -> httpx.Response:
    """The first answer to ``method url`` that worker ``pid`` gives (the others' answers are dropped:
    only requests that change nothing, or that every worker refuses, go through here)."""
    for _ in range(TRIES):
        r = ask(method, url, **kw)
        if worker_of(r) == pid:
            return r
    pytest.fail(f"worker {pid} never answered {method} {url} in {TRIES} requests")


def both(method: str, url: str, **kw: Any) -> dict[int, httpx.Response]:
    """The answer of each worker (by pid) to ``method url``."""
    answers: dict[int, httpx.Response] = {}
    for _ in range(TRIES):
        r = ask(method, url, **kw)
        answers.setdefault(worker_of(r), r)
        if len(answers) == 2:
            return answers
    pytest.fail(f"only workers {sorted(answers)} answered {method} {url} in {TRIES} requests")


def _wipe_and_init(url: str) -> None:
    from geo_eval.db import connect, init_schema

    with connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS geo_eval CASCADE")
    init_schema(url)


@pytest.fixture(scope="module", params=["sqlite", "postgis"])
def svc(request: pytest.FixtureRequest, sample_runs: dict[int, Path], tmp_path_factory) -> Iterator[Service]:
    """The sample's 2024 run registered, three users, and ``geo-eval serve --workers 2`` over them."""
    base = tmp_path_factory.mktemp(f"workers-{request.param}")
    db = None
    if request.param == "postgis":
        db = request.getfixturevalue("pg_url")
        _wipe_and_init(db)
    data_dir = base / "data"
    runs = {year: Path(shutil.copytree(out, base / str(year))) for year, out in sample_runs.items()}
    where = ["--data-dir", str(data_dir), *(["--db", db] if db else [])]
    assert runner.invoke(cli, ["runs", "add", str(runs[2024]), *where]).exit_code == 0
    tokens = {}
    for name, role in (("rev", "reviewer"), ("rev2", "reviewer"), ("admin", "admin")):
        r = runner.invoke(cli, ["users", "add", name, "--role", role, *where])
        assert r.exit_code == 0, r.output
        tokens[name] = r.output.splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_EVAL_")}
    env |= {
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]),
        "GEO_EVAL_DATASETS_DIR": str(SAMPLE),
        "GEO_EVAL_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
    }
    if db:
        env |= {"GEO_EVAL_SECRET_KEY": SECRET, "GEO_EVAL_DEMO": "0"}
    else:  # demo mode, no key: `geo-eval serve` makes one for both workers
        env |= {"GEO_EVAL_DEMO": "1"}
    log = base / "serve.log"
    with serving(env, log, args=["--workers", "2", *where]) as url:
        pids = sorted(both("GET", f"{url}/health"))
        yield Service(url, data_dir, db, tokens, (pids[0], pids[1]), request.param, runs)
    text = log.read_text()
    assert SECRET not in text and not any(t in text for t in tokens.values())


def test_two_workers_answer(svc):
    a, b = svc.workers
    assert a != b
    for pid in svc.workers:  # both are alive processes, children of the one service
        assert Path(f"/proc/{pid}").exists()
    health = both("GET", f"{svc.url}/health")
    assert all(r.status_code == 200 and r.json()["status"] == "ok" for r in health.values())


def test_a_review_made_through_one_worker_is_read_through_the_other_at_once(svc):
    runs = ask("GET", f"{svc.url}/api/runs", headers=svc.h("rev")).json()
    run = next(r["run_id"] for r in runs if r["year"] == 2024)
    flags = ask("GET", f"{svc.url}/api/flags?run={run}&limit=5", headers=svc.h("rev")).json()["features"]
    assert len(flags) >= 2
    for feature in flags[:2]:
        fid = feature["id"]
        r = ask(
            "PATCH",
            f"{svc.url}/api/flags/{fid}?run={run}",
            headers=svc.h("rev"),
            json={"status": "confirmed", "comment": f"属实（{svc.backend}）", "version": 0},
        )
        assert r.status_code == 200, r.text
        writer = worker_of(r)
        reader = next(pid for pid in svc.workers if pid != writer)
        r = on_worker(reader, "GET", f"{svc.url}/api/flags/{fid}?run={run}", headers=svc.h("rev2"))
        review = r.json()["properties"]["review"]
        assert (review["status"], review["comment"], review["version"], review["updated_by"]) == (
            "confirmed",
            f"属实（{svc.backend}）",
            1,
            "rev",
        )
        # the other worker refuses a stale version (the compare-and-set is in the store)
        r = on_worker(
            reader,
            "PATCH",
            f"{svc.url}/api/flags/{fid}?run={run}",
            headers=svc.h("rev2"),
            json={"status": "dismissed", "comment": "不属实", "version": 0},
        )
        assert r.status_code == 409 and "rev" in r.json()["detail"]


def _cookie(r: httpx.Response) -> str:
    for header in r.headers.get_list("set-cookie"):
        name, _, rest = header.partition("=")
        if name == "geo_eval_session" and rest.split(";")[0]:
            return rest.split(";")[0]
    pytest.fail(f"no session cookie in {r.status_code} {r.headers}")


def test_a_session_signed_in_through_one_worker_holds_on_the_other(svc):
    a, b = svc.workers
    login = {"name": "rev", "token": svc.tokens["rev"]}
    r = on_worker(a, "POST", f"{svc.url}/login", data=login, headers={"Origin": svc.url})
    assert r.status_code == 303
    cookie = {"Cookie": f"geo_eval_session={_cookie(r)}"}
    for pid in (b, a):
        r = on_worker(pid, "GET", f"{svc.url}/api/me", headers=cookie)
        assert r.status_code == 200 and r.json()["user"]["name"] == "rev" and r.json()["auth"] == "cookie"
    # signing out (through either worker) ends the session on both: the generation is in the store
    r = ask("POST", f"{svc.url}/logout", headers={**cookie, "Origin": svc.url})
    assert r.status_code == 303
    for pid in (a, b):
        assert on_worker(pid, "GET", f"{svc.url}/api/me", headers=cookie).status_code == 401


def test_a_run_registered_while_serving_is_served_by_both_workers(svc):
    before = {r["run_id"] for r in ask("GET", f"{svc.url}/api/runs", headers=svc.h("rev")).json()}
    # both workers have loaded the latest run (2024) before the new one comes
    for r in both("GET", f"{svc.url}/api/rankings?limit=1", headers=svc.h("rev")).values():
        assert r.json()["year"] == 2024
    svc.cli("runs", "add", str(svc.runs[2025]))
    new = next(r for r in ask("GET", f"{svc.url}/api/runs", headers=svc.h("rev")).json() if r["run_id"] not in before)
    assert new["year"] == 2025
    for pid, r in both("GET", f"{svc.url}/api/runs", headers=svc.h("rev")).items():
        assert r.json()[0]["run_id"] == new["run_id"], pid  # latest first
    answers = both("GET", f"{svc.url}/api/rankings?limit=3", headers=svc.h("rev"))
    for r in answers.values():
        assert (r.json()["run_id"], r.json()["year"]) == (new["run_id"], 2025)
    park = answers[svc.workers[0]].json()["rows"][0]["park"]
    pages = both("GET", f"{svc.url}/maps/{park}", headers=svc.h("rev"))
    for r in pages.values():
        assert r.status_code == 200 and new["run_id"] in r.text
    # its tiles come from the archive `runs add` cut (the flag points of the overview zooms are only there)
    for r in both(
        "GET", f"{svc.url}/api/tiles/{quote(park, safe='')}/{OVERVIEW_TILE}.pbf", headers=svc.h("rev")
    ).values():
        assert r.status_code == 200 and b"flagged" in r.content
    # a change of the run's status (a new row state in the store) is seen by both workers at once
    svc.cli("runs", "status", "2025", "--to", "publicity", "--start", "2026-03-01", "--end", "2026-03-10")
    for r in both("GET", f"{svc.url}/api/runs", headers=svc.h("rev")).values():
        latest = r.json()[0]
        assert (latest["run_id"], latest["status"], latest["publicity_end"]) == (
            new["run_id"],
            "publicity",
            "2026-03-10",
        )


def test_one_evaluation_at_a_time_across_workers(svc, tmp_path):
    body = {"dataset_dir": "2025", "flags": False}
    url = f"{svc.url}/api/runs"
    # held by another process: on SQLite through the same data directory, on PostgreSQL through the
    # database alone (another server, with a data directory of its own)
    lock_dir = svc.data_dir if svc.db is None else tmp_path / "another-server"
    with EvaluationLock(lock_dir, svc.db).hold() as free:
        assert free
        for pid in svc.workers:
            r = on_worker(pid, "POST", url, json=body, headers=svc.h("admin"))
            assert r.status_code == 409 and r.json()["detail"] == "已有一次评价在运行，请稍后再试"
    count = len(ask("GET", url, headers=svc.h("admin")).json())
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: ask("POST", url, json=body, headers=svc.h("admin")), range(2)))
    assert sorted(r.status_code for r in answers) == [201, 409], [r.text for r in answers]
    assert len(ask("GET", url, headers=svc.h("admin")).json()) == count + 1
    with EvaluationLock(lock_dir, svc.db).hold() as free:  # released by the worker that evaluated
        assert free


def test_the_header_timeout_reaches_the_workers(svc):
    host, port = svc.url.removeprefix("http://").split(":")
    conns = [socket.create_connection((host, int(port))) for _ in range(6)]
    try:
        start = time.monotonic()
        for conn in conns:  # nothing sent: each worker closes its connections after the timeout
            conn.settimeout(HEADER_TIMEOUT_S + 4)
            assert conn.recv(1) == b""
        assert time.monotonic() - start < HEADER_TIMEOUT_S + 4
    finally:
        for conn in conns:
            conn.close()


def test_the_evaluation_lock_between_processes(tmp_path):
    """Without a service: a lock held by another process is refused here, and free once it ends."""
    import subprocess
    import sys

    code = (
        "import sys, time\n"
        "from api.evallock import EvaluationLock\n"
        "with EvaluationLock(sys.argv[1]).hold() as free:\n"
        "    print('held' if free else 'busy', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        lock = EvaluationLock(tmp_path)
        with lock.hold() as free:
            assert not free
        proc.communicate("\n", timeout=30)
        with lock.hold() as free:
            assert free
            with lock.hold() as again:  # and within one process, the second caller is refused too
                assert not again
    finally:
        proc.kill()
        proc.wait()

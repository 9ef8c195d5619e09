"""The storage layer of the service: users and tokens, the run registry, reviews, the audit trail, durability.

Every test taking ``store`` runs on both backends: SQLite in a temporary directory and PostgreSQL/PostGIS
on the test database (``GEO_EVAL_TEST_DATABASE_URL``, see tests/conftest.py; skipped without it unless
``GEO_EVAL_REQUIRE_DB=1``). The PostGIS-only behaviour is in tests/test_db_store.py.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import catalogue
import pandas as pd
import psycopg
import pytest
from typer.testing import CliRunner

from geo_eval.cli import app as cli
from geo_eval.db import PostgresStore
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import (
    AlreadyExistsError,
    ConflictError,
    InvalidValueError,
    NotFoundError,
    Review,
    RunFilesError,
    RunRecord,
    SQLiteStore,
    Store,
    open_store,
    run_record_from_out_dir,
)
from geo_eval.storage.sqlite import DB_NAME


@pytest.fixture
def sqlite_store(tmp_path: Path):
    s = SQLiteStore.in_dir(tmp_path / "data")
    yield s
    s.close()


def raw_rows(store, sql: str) -> list[tuple]:
    """Rows of a query on the store's database, read past the store (``{t}`` is the table's schema prefix)."""
    if isinstance(store, SQLiteStore):
        raw = sqlite3.connect(store.path)
        try:
            return raw.execute(sql.format(t="")).fetchall()
        finally:
            raw.close()
    with psycopg.connect(store.url) as conn:
        return conn.execute(sql.format(t="geo_eval.")).fetchall()


def raw_change_refused(store, sql: str) -> str:
    """The error message of a change made past the store, which the database must refuse."""
    if isinstance(store, SQLiteStore):
        raw = sqlite3.connect(store.path)
        try:
            with pytest.raises(sqlite3.IntegrityError) as info:
                raw.execute(sql.format(t=""))
        finally:
            raw.close()
        return str(info.value)
    with psycopg.connect(store.url) as conn, pytest.raises(psycopg.errors.RaiseException) as info:
        conn.execute(sql.format(t="geo_eval."))
    return str(info.value)


def record(run_id: str = "2025-x-1", year: int = 2025) -> RunRecord:
    return RunRecord(
        run_id=run_id, year=year, scheme="x", scheme_title="测试方案", out_dir="/nowhere", counts={"enterprises": 3}
    )


def evaluated(dataset: Path, out: Path) -> Path:
    """A real OUT_DIR: ``geo-eval evaluate`` of ``dataset`` into ``out``."""
    r = CliRunner().invoke(cli, ["evaluate", str(dataset), "--scheme", "huaian-2024", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def store_schema_version(store: Store) -> int:
    """The schema version this tool creates for the store's backend."""
    from geo_eval.db.schema import SCHEMA_VERSION as POSTGIS_VERSION
    from geo_eval.storage.sqlite import SCHEMA_VERSION as SQLITE_VERSION

    return POSTGIS_VERSION if isinstance(store, PostgresStore) else SQLITE_VERSION


def test_the_store_implements_the_interface(store, tmp_path):
    assert isinstance(store, Store)
    st = store.status()
    assert st["ok"] and st["backend"] == store.backend
    assert st["schema_version"] == store_schema_version(store) and st["runs"] == 0 and st["users"] == 0
    if isinstance(store, PostgresStore):
        reopened = open_store(tmp_path, database_url=store.url)
        assert isinstance(reopened, PostgresStore) and reopened.url == store.url
        reopened.close()
        assert st["database"] == store.database and st["postgis_version"]
    else:
        assert isinstance(open_store(store.path.parent), SQLiteStore)


def test_the_sqlite_store_runs_in_wal_mode(sqlite_store):
    st = sqlite_store.status()
    assert st["backend"] == "sqlite" and st["journal_mode"] == "wal"


# users and tokens -------------------------------------------------------------------------------------
def test_tokens_are_stored_only_as_salted_hashes(store):
    u, token = store.add_user("张三", "reviewer")
    u2, token2 = store.add_user("李四", "reviewer")
    assert token != token2 and token.startswith("gev.")
    assert store.authenticate(token) == u and store.authenticate(token2) == u2
    hashes = [r[0] for r in raw_rows(store, "SELECT token_hash FROM {t}users")]
    assert len(hashes) == 2 and all(h.startswith("scrypt$") for h in hashes)
    assert hashes[0].split("$")[4] != hashes[1].split("$")[4]  # salts differ
    secret = token.split(".", 2)[2]
    if isinstance(store, SQLiteStore):
        for f in store.path.parent.iterdir():  # not in the database, its WAL or anywhere else
            assert secret.encode() not in f.read_bytes()
    else:  # not in any column of the users or the audit trail
        stored = raw_rows(
            store, "SELECT row_to_json(u)::text FROM {t}users u UNION ALL SELECT row_to_json(a)::text FROM {t}audit a"
        )
        assert len(stored) == 4 and not any(secret in r[0] for r in stored)


def test_authentication_refuses_wrong_rotated_and_deleted_tokens(store):
    u, token = store.add_user("alice", "committee", ["甲园", "甲园", "乙园"])
    assert u.parks == ("甲园", "乙园")
    tid, secret = token.split(".")[1:]
    assert store.authenticate(f"gev.{tid}.{'A' * len(secret)}") is None
    assert store.authenticate("gev.000000000000." + secret) is None
    assert store.authenticate("nonsense") is None
    assert store.authenticate(token) is not None  # cached now
    new = store.rotate_token("alice")
    assert store.authenticate(token) is None
    assert store.authenticate(new).name == "alice"
    store.delete_user("alice")
    assert store.authenticate(new) is None
    with pytest.raises(NotFoundError):
        store.get_user("alice")


def test_user_validation(store):
    store.add_user("bob", "admin")
    with pytest.raises(AlreadyExistsError):
        store.add_user("bob", "admin")
    with pytest.raises(InvalidValueError, match="至少要指定一个园区"):
        store.add_user("c", "committee", [])
    with pytest.raises(InvalidValueError, match="不要指定 --park"):
        store.add_user("d", "reviewer", ["甲园"])
    with pytest.raises(InvalidValueError, match="角色"):
        store.add_user("e", "superuser")
    with pytest.raises(InvalidValueError):
        store.add_user("  ", "admin")
    u, _ = store.add_user("bob", "committee", ["甲园"], replace=True)
    assert u.role == "committee" and store.get_user("bob").parks == ("甲园",)
    assert [x.name for x in store.list_users()] == ["bob"]


# runs -------------------------------------------------------------------------------------------------
def test_run_registry_latest_first_and_by_year(store):
    store.add_run(record("2024-x-1", 2024), actor="cli")
    store.add_run(record("2025-x-1", 2025), actor="cli")
    store.add_run(record("2024-x-2", 2024), actor="cli")
    assert [r.run_id for r in store.list_runs()] == ["2024-x-2", "2025-x-1", "2024-x-1"]
    assert store.latest_run().run_id == "2024-x-2"
    assert store.latest_run(2025).run_id == "2025-x-1"
    again = store.add_run(record("2025-x-1", 2025), actor="admin")  # registering again makes it the latest
    assert store.latest_run().run_id == "2025-x-1" and again.registered_by == "admin"
    assert len(store.list_runs()) == 3
    assert store.get_run("2024-x-1").counts == {"enterprises": 3}
    with pytest.raises(NotFoundError):
        store.latest_run(1999)
    with pytest.raises(NotFoundError):
        store.get_run("nope")


def test_run_records_come_from_the_manifest(tmp_path):
    dataset = catalogue.write_dataset(tmp_path / "dataset")
    a_dir = evaluated(dataset, tmp_path / "a")
    a = run_record_from_out_dir(a_dir)
    b = run_record_from_out_dir(evaluated(dataset, tmp_path / "b"))
    e = catalogue.enterprises()
    e.loc[e["uscc"] == catalogue.E[1], "tax"] = 601.0
    e.to_csv(dataset / "enterprises.csv", index=False, encoding="utf-8-sig")  # one tax changed
    c = run_record_from_out_dir(evaluated(dataset, tmp_path / "c"))
    assert a.run_id == b.run_id != c.run_id  # same inputs and scheme: same run; another tax: another run
    assert a.run_id.startswith("2025-huaian-2024-")
    assert a.year == 2025 and a.scheme_title == load_scheme("huaian-2024").title and a.out_dir == str(a_dir.resolve())
    # the counts are those of the run's own files
    ent = pd.read_csv(a_dir / "enterprises.csv", encoding="utf-8-sig", dtype=str)
    flags = pd.read_csv(a_dir / "flags.csv", encoding="utf-8-sig", dtype=str)
    assert a.counts["enterprises"] == len(ent) == len(catalogue.enterprises())
    assert a.counts["parcels"] == len(catalogue.parcels()) and a.counts["flags"] == len(flags) > 0
    assert a.counts["grades"] == {g: int((ent["grade"] == g).sum()) for g in "ABCDT"}
    with pytest.raises(RunFilesError, match=r"manifest\.json"):
        run_record_from_out_dir(tmp_path / "missing")
    (a_dir / "manifest.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RunFilesError):
        run_record_from_out_dir(a_dir)


# reviews and the audit trail --------------------------------------------------------------------------
def test_reviews_are_compare_and_set_on_version(store):
    store.add_run(record())
    assert store.get_review("2025-x-1", "P1:idle") == Review("2025-x-1", "P1:idle")
    r1 = store.set_review("2025-x-1", "P1:idle", status="confirmed", comment="现场属实", version=0, actor="张三")
    assert (r1.version, r1.status, r1.updated_by) == (1, "confirmed", "张三")
    with pytest.raises(ConflictError) as info:
        store.set_review("2025-x-1", "P1:idle", status="dismissed", comment="误报", version=0, actor="李四")
    assert info.value.current == r1
    assert store.get_review("2025-x-1", "P1:idle") == r1
    r2 = store.set_review("2025-x-1", "P1:idle", status="site_visit", comment="", version=1, actor="李四")
    assert r2.version == 2
    assert store.reviews("2025-x-1") == {"P1:idle": r2}
    assert store.reviews("2025-x-1", ["P1:idle", "P2:idle"]) == {"P1:idle": r2}


def test_reviews_of_more_flags_than_one_query_takes(store):
    """SQLite asks in lists of 500 flag ids, PostgreSQL in one array: the answer is the same."""
    store.add_run(record())
    ids = [f"P{i}:idle" for i in range(1201)]
    done = {
        fid: store.set_review("2025-x-1", fid, status="confirmed", comment="", version=0, actor="张三")
        for fid in (ids[0], ids[499], ids[500], ids[1200])
    }
    assert store.reviews("2025-x-1", ids) == done
    assert store.reviews("2025-x-1", [*reversed(ids), ids[500], "P9999:idle"]) == done  # repeated, unknown ids
    assert store.reviews("2025-x-1", ids[501:1200]) == {}
    assert store.reviews("2025-x-1", []) == {}
    assert store.reviews("2025-x-2", ids) == {}


def test_review_values_are_checked(store):
    store.add_run(record())
    with pytest.raises(InvalidValueError, match="须填写理由"):
        store.set_review("2025-x-1", "P1:idle", status="dismissed", comment="  ", version=0, actor="a")
    with pytest.raises(InvalidValueError):
        store.set_review("2025-x-1", "P1:idle", status="maybe", comment="", version=0, actor="a")
    with pytest.raises(NotFoundError):
        store.set_review("nope", "P1:idle", status="confirmed", comment="", version=0, actor="a")
    assert store.history("2025-x-1", "P1:idle") == []


def test_every_change_is_in_the_append_only_audit_trail(store):
    store.add_run(record(), actor="cli")
    store.add_user("张三", "reviewer", actor="admin")
    store.set_review("2025-x-1", "P1:idle", status="confirmed", comment="属实", version=0, actor="张三")
    store.set_review("2025-x-1", "P1:idle", status="dismissed", comment="已整改", version=1, actor="张三")
    h = store.history("2025-x-1", "P1:idle")
    assert [(e.actor, e.before["status"], e.after["status"]) for e in h] == [
        ("张三", "pending", "confirmed"),
        ("张三", "confirmed", "dismissed"),
    ]
    assert h[1].after["comment"] == "已整改" and h[0].at <= h[1].at
    actions = [e.action for e in store.audit()]
    assert actions == ["review", "review", "user.add", "run.add"]
    assert "token" not in json.dumps([e.after for e in store.audit()])
    assert "append-only" in raw_change_refused(store, "UPDATE {t}audit SET actor = 'x'")
    assert "append-only" in raw_change_refused(store, "DELETE FROM {t}audit")
    assert [e.action for e in store.audit()] == actions and store.audit()[-1].actor == "cli"


def test_a_failing_write_changes_nothing(store, monkeypatch):
    store.add_run(record())
    store.set_review("2025-x-1", "P1:idle", status="confirmed", comment="", version=0, actor="a")

    def boom(*args, **kwargs):
        raise RuntimeError("crash between the review and its audit entry")

    monkeypatch.setattr(type(store), "_append_audit", staticmethod(boom))
    with pytest.raises(RuntimeError):
        store.set_review("2025-x-1", "P1:idle", status="site_visit", comment="", version=1, actor="b")
    monkeypatch.undo()
    assert store.get_review("2025-x-1", "P1:idle").status == "confirmed"
    assert len(store.history("2025-x-1", "P1:idle")) == 1
    store.set_review("2025-x-1", "P1:idle", status="site_visit", comment="", version=1, actor="b")  # usable again


def test_two_reviewers_at_once_one_wins_the_other_conflicts(store):
    store.add_run(record())
    barrier = threading.Barrier(8)
    results: list[str] = []

    def attempt(i: int) -> None:
        barrier.wait()
        try:
            store.set_review("2025-x-1", "P1:idle", status="confirmed", comment=str(i), version=0, actor=f"r{i}")
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 7 + ["ok"]
    assert store.get_review("2025-x-1", "P1:idle").version == 1
    assert len(store.history("2025-x-1", "P1:idle")) == 1


CHILD = """
import sys
from pathlib import Path
from geo_eval.storage import open_store
store = open_store(Path(sys.argv[1]), database_url=sys.argv[2] or None)
v = 0
while True:
    store.set_review("2025-x-1", "P1:idle", status="confirmed", comment=str(v), version=v, actor="child")
    v += 1
    print(v, flush=True)
"""


def test_a_killed_writer_loses_nothing_it_saved(store):
    store.add_run(record())
    where = [str(store.path.parent), ""] if isinstance(store, SQLiteStore) else ["", store.url]
    proc = subprocess.Popen([sys.executable, "-c", CHILD, *where], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    saved = 0
    for line in proc.stdout:
        saved = int(line)
        if saved >= 30:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    fresh: SQLiteStore | PostgresStore
    if isinstance(store, SQLiteStore):
        fresh = SQLiteStore(store.path)
        raw = sqlite3.connect(store.path)
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        raw.close()
    else:
        fresh = PostgresStore(store.url)
    review = fresh.get_review("2025-x-1", "P1:idle")
    assert review.version >= saved  # every acknowledged write survived (one more may have committed)
    assert len(fresh.history("2025-x-1", "P1:idle")) == review.version  # and each with its audit entry
    fresh.close()


def test_a_newer_database_is_refused(tmp_path):
    path = tmp_path / DB_NAME
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    with pytest.raises(Exception, match="比本程序新"):
        SQLiteStore(path)

"""Consistency of runs, their OUT_DIR and the registry (issue 10): a run's identity follows its content,
reviews carry over only to identical flags, ``evaluate --db`` changes the database and OUT_DIR together
or neither, and the leftovers of a killed run are tidied by the next run into that OUT_DIR.

Runs are real evaluations of the hand-made catalogue (tests/catalogue.py, about half a second each).
Tests taking ``store`` run on both backends (SQLite, and PostgreSQL on the test database of
``GEO_EVAL_TEST_DATABASE_URL``: see conftest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import catalogue
import pandas as pd
import psycopg
import pytest
from conftest import wipe_database
from typer.testing import CliRunner

from api.rundata import load_run_data
from geo_eval.cli import app
from geo_eval.db import DatabaseError, PostgresStore, init_schema
from geo_eval.db import schema as db_schema
from geo_eval.db.schema import upgrade_schema
from geo_eval.errors import OutputExistsError
from geo_eval.io.run import TileJob, run
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import (
    RunFilesError,
    SQLiteStore,
    run_id_of,
    run_record_from_out_dir,
)
from geo_eval.storage import sqlite as sqlite_store
from geo_eval.storage.publication_sql import RUN_STATUS_TEXT_COLUMNS
from geo_eval.storage.runs import legacy_run_id_of, out_dir_state

SCHEME = "lianyungang"
CHANGED = "P1:low_efficiency.grade_d"
"""A flag whose value changes when 甲公司's tax changes (its enterprise's score)."""
SAME = "P8:idle_suspected.no_enterprise"
"""A flag that does not depend on any tax (a parcel nobody uses)."""
runner = CliRunner()


def dataset(root: Path, *, tax_of_e1: int = 600) -> Path:
    """The catalogue as a dataset; ``tax_of_e1`` changes 甲公司's tax (and with it its score)."""
    e = catalogue.enterprises()
    e.loc[e["uscc"] == catalogue.E[1], "tax"] = tax_of_e1
    return catalogue.write_dataset(root, enterprises_df=e)


def flags_of(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False).set_index("flag_id")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def review_both(store, run_id: str) -> None:
    store.set_review(run_id, CHANGED, status="confirmed", comment="现场属实", version=0, actor="张三")
    store.set_review(run_id, SAME, status="dismissed", comment="国有储备用地", version=0, actor="李四")
    store.set_review(run_id, SAME, status="dismissed", comment="国有储备用地，已入库", version=1, actor="李四")


def siblings(out: Path) -> list[str]:
    """Names of the hidden siblings of OUT_DIR (temporary and set-aside directories)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


# --- identity -------------------------------------------------------------------------------------------
def test_the_run_id_follows_inputs_and_scheme_not_the_tool_version():
    manifest = {
        "year": 2025,
        "version": "0.1.0",
        "scheme": {"name": "lianyungang", "sha256": "s1"},
        "inputs": {"parcels": {"path": "/a/p.gpkg", "sha256": "aa"}, "enterprises": {"path": "e", "sha256": "bb"}},
        "flags": {"enabled": True},
    }
    upgraded = {**manifest, "version": "9.9.9"}
    moved = {**manifest, "inputs": {"parcels": {"path": "/b/p.gpkg", "sha256": "aa"}, "enterprises": {"sha256": "bb"}}}
    assert run_id_of(upgraded) == run_id_of(manifest) == run_id_of(moved)  # not the version, not the paths
    assert run_id_of(manifest).startswith("2025-lianyungang-")
    other_input = {**manifest, "inputs": {"parcels": {"sha256": "ab"}, "enterprises": {"sha256": "bb"}}}
    other_scheme = {**manifest, "scheme": {"name": "lianyungang", "sha256": "s2"}}
    no_flags = {**manifest, "flags": {"enabled": False}}
    ids = {run_id_of(m) for m in (manifest, other_input, other_scheme, no_flags)}
    assert len(ids) == 4
    # the ids geo-eval gave before (with the version) are still recognised, for runs registered then
    assert legacy_run_id_of(manifest) != legacy_run_id_of(upgraded)
    assert legacy_run_id_of(manifest) != run_id_of(manifest)


def test_an_out_dir_rewritten_in_place_is_not_served_under_its_old_run(store, tmp_path):
    out = tmp_path / "out"
    ds = dataset(tmp_path / "ds")
    run(ds, load_scheme(SCHEME), out)
    first = store.add_run(run_record_from_out_dir(out), actor="cli")
    assert first.manifest_sha256 == sha256(out / "manifest.json")
    assert load_run_data(store.get_run(first.run_id)).run_id == first.run_id
    review_both(store, first.run_id)
    # evaluated again in place from other inputs, not registered again: the registry still names the
    # first run there, and its reviews must not be shown on the new flags
    run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True)
    with pytest.raises(RunFilesError) as info:
        load_run_data(store.get_run(first.run_id))
    message = str(info.value)
    assert first.run_id in message and "另一次评价" in message and f"geo-eval runs add {out}" in message
    # the same inputs again (e.g. a new geo-eval): the same run id, but the files changed: also refused
    run(ds, load_scheme(SCHEME), out, overwrite=True)
    assert run_record_from_out_dir(out).run_id == first.run_id
    with pytest.raises(RunFilesError, match="已重新评价"):
        load_run_data(store.get_run(first.run_id))


def test_registering_a_rewritten_out_dir_carries_reviews_only_to_identical_flags(store, tmp_path):
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    before = flags_of(out)
    first = store.add_run(run_record_from_out_dir(out), actor="cli")
    assert first.carryover is not None and first.carryover.message(first.run_id) == ""
    review_both(store, first.run_id)
    run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True)
    after = flags_of(out)
    assert before.loc[CHANGED, "value"] != after.loc[CHANGED, "value"]  # the score changed ...
    cols = ["flag", "rule_id", "value", "threshold", "evidence"]
    assert before.loc[SAME, cols].tolist() == after.loc[SAME, cols].tolist()  # ... this flag did not
    second = store.add_run(run_record_from_out_dir(out), actor="admin")
    assert second.run_id != first.run_id
    c = second.carryover
    assert c is not None and (c.previous, c.again, c.kept, c.changed, c.unchecked) == (first.run_id, False, 1, 1, 0)
    assert c.message(second.run_id) == (
        f"重新登记：新批次 {second.run_id}（取代该输出目录中的批次 {first.run_id}）；沿用复核 1 条，因标记变化未沿用 1 条"
    )
    carried = store.reviews(second.run_id)
    assert set(carried) == {SAME}
    old = store.get_review(first.run_id, SAME)
    assert (carried[SAME].status, carried[SAME].comment, carried[SAME].version) == ("dismissed", old.comment, 2)
    assert (carried[SAME].updated_by, carried[SAME].updated_at) == ("李四", old.updated_at)
    assert set(store.reviews(first.run_id)) == {CHANGED, SAME}  # the first run keeps its own
    history = store.history(second.run_id, SAME)
    assert [(e.action, e.actor, e.after["status"]) for e in history] == [("review.carry", "admin", "dismissed")]
    assert history[0].after["from_run"] == first.run_id
    # the carried review goes on as a review of the new run (compare-and-set from its version)
    store.set_review(second.run_id, SAME, status="site_visit", comment="", version=2, actor="王五")
    assert [e.action for e in store.history(second.run_id, SAME)] == ["review.carry", "review"]
    actions = [e.action for e in store.audit(run_id=second.run_id)]
    assert actions.count("run.add") == 1 and actions.count("review.carry") == 1


def test_the_same_run_registered_again_keeps_reviews_only_on_unchanged_flags(store, tmp_path):
    """Same inputs and scheme, a new geo-eval whose rule gives another value: the same run id (the
    version is not part of it), the review of the flag that changed is set back to pending."""
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    first = store.add_run(run_record_from_out_dir(out), actor="cli")
    review_both(store, first.run_id)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    manifest["version"] = "9.9.9"
    (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    text = (out / "flags.csv").read_text(encoding="utf-8-sig")
    line = next(x for x in text.splitlines() if x.startswith(CHANGED + ","))
    assert ",35.0,,综合得分=35.0" in line
    (out / "flags.csv").write_text(
        text.replace(line, line.replace(",35.0,,综合得分=35.0", ",36.0,,综合得分=36.0")), encoding="utf-8-sig"
    )
    again = store.add_run(run_record_from_out_dir(out), actor="admin")
    assert again.run_id == first.run_id
    c = again.carryover
    assert c is not None and (c.previous, c.again, c.kept, c.changed) == ("", True, 1, 1)
    assert c.message(again.run_id) == f"重新登记：批次 {again.run_id}；沿用复核 1 条，因标记变化未沿用 1 条"
    assert set(store.reviews(again.run_id)) == {SAME}
    assert store.get_review(again.run_id, CHANGED).version == 0  # pending again
    reset = store.history(again.run_id, CHANGED)[-1]
    assert (reset.action, reset.before["status"], reset.after["status"]) == ("review.reset", "confirmed", "pending")
    # registering the unchanged OUT_DIR once more changes nothing
    third = store.add_run(run_record_from_out_dir(out), actor="admin")
    assert third.carryover is not None and (third.carryover.kept, third.carryover.changed) == (1, 0)
    assert store.get_review(again.run_id, SAME).version == 2


def test_what_counts_as_an_identical_flag(tmp_path):
    """Identical: the same flag id, kind, rule, value, threshold and evidence (numbers compared to 9
    significant digits); the reason's wording, the basis, the severity and the names do not count."""
    from geo_eval.storage.runs import flag_prints

    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    base = flag_prints(out / "flags.csv")
    f = pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert set(base) == set(f["flag_id"]) and len(base) == 10

    def prints_after(column: str, value: str) -> dict[str, str]:
        g = f.copy()
        g.loc[g["flag_id"] == CHANGED, column] = value
        g.to_csv(tmp_path / "edited.csv", index=False, encoding="utf-8-sig")
        return flag_prints(tmp_path / "edited.csv")

    for column, value in (("reason", "另一种说法"), ("basis", "新文件"), ("severity", "高"), ("enterprise_names", "X")):
        assert prints_after(column, value) == base, column
    assert prints_after("value", "35.00000000001") == base  # the same number written otherwise
    assert prints_after("value", "35") == base
    for column, value in (("value", "35.1"), ("threshold", "40"), ("evidence", "综合得分=35.1；分类=D")):
        changed = prints_after(column, value)
        assert changed[CHANGED] != base[CHANGED], column
        assert {k: v for k, v in changed.items() if k != CHANGED} == {k: v for k, v in base.items() if k != CHANGED}


def test_flag_prints_of_a_large_flags_csv_are_those_of_each_row(tmp_path):
    """flags.csv read in several blocks (each number formatted once): the same digest as row by row."""
    from geo_eval.storage.runs import flag_print, flag_prints

    n = 40_000
    f = pd.DataFrame(
        {
            "flag_id": [f"P{i:06d}:low_efficiency.tax_per_mu_mean" for i in range(n)],
            "flag": "low_efficiency",
            "rule_id": "low_efficiency.tax_per_mu_mean",
            "reason": "亩均税收低于县区平均" * 8,
            "value": [repr(i / 7) if i % 5 else "" for i in range(n)],
            "threshold": [str(40 + i % 3) for i in range(n)],
            "evidence": [f"亩均税收={i / 7:.4f}；县区平均=40" for i in range(n)],
        }
    )
    f.to_csv(tmp_path / "flags.csv", index=False, encoding="utf-8-sig")
    assert (tmp_path / "flags.csv").stat().st_size > 4 << 20  # more than one block of the csv reader
    prints = flag_prints(tmp_path / "flags.csv")
    expected = {r.flag_id: flag_print(r.flag, r.rule_id, r.value, r.threshold, r.evidence) for r in f.itertuples()}
    assert prints == expected and len(set(prints.values())) == n


def test_registering_says_what_happened(tmp_path):
    out = tmp_path / "out"
    data = tmp_path / "data"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    r = runner.invoke(app, ["runs", "add", str(out), "--no-tiles", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    first = r.output.strip().splitlines()[-1]
    s = SQLiteStore.in_dir(data)
    review_both(s, first)
    s.close()
    r = runner.invoke(app, ["runs", "list", "--data-dir", str(data)], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "一致" in r.output and "须重新登记" not in r.output
    run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True)
    r = runner.invoke(app, ["runs", "list", "--data-dir", str(data)], env={"COLUMNS": "400"})
    assert r.exit_code == 0 and "与登记不符，须重新登记" in r.output
    r = runner.invoke(app, ["runs", "add", str(out), "--no-tiles", "--data-dir", str(data)])
    assert r.exit_code == 0, r.output
    second = r.output.strip().splitlines()[-1]
    assert (
        f"重新登记：新批次 {second}（取代该输出目录中的批次 {first}）；沿用复核 1 条，因标记变化未沿用 1 条" in r.output
    )


# --- runs registered by an older geo-eval (schema version 1) ---------------------------------------------
def legacy_store(backend: str, tmp_path: Path, pg_url: str | None):
    """A store made by the previous geo-eval: the database at schema version 1."""
    if backend == "sqlite":
        path = tmp_path / "data" / sqlite_store.DB_NAME
        path.parent.mkdir()
        conn = sqlite3.connect(path)
        for sql in sqlite_store.MIGRATIONS[0]:
            conn.execute(sql)
        conn.execute("PRAGMA user_version = 1")
        conn.commit()
        conn.close()
        return path
    assert pg_url is not None
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS geo_eval CASCADE")
    real = db_schema.MIGRATIONS
    db_schema.MIGRATIONS, db_schema.SCHEMA_VERSION = real[:1], 1
    try:
        init_schema(pg_url)
    finally:
        db_schema.MIGRATIONS, db_schema.SCHEMA_VERSION = real, len(real)
    return pg_url


def legacy_rows(target, backend: str, manifest: dict, out: Path) -> str:
    """Register ``out`` and review two of its flags as the previous geo-eval did (its run id included the
    version); returns that run id."""
    run_id = legacy_run_id_of(manifest)
    run_row = (run_id, 2025, SCHEME, "连云港", str(out.resolve()), "{}", "2026-01-01T00:00:00.000Z", "cli", 1)
    reviews = [
        (run_id, CHANGED, "confirmed", "现场属实", 1, "张三", "2026-01-02T00:00:00.000Z"),
        (run_id, SAME, "dismissed", "国有储备用地", 1, "李四", "2026-01-02T00:00:00.000Z"),
    ]
    if backend == "sqlite":
        conn = sqlite3.connect(target)
        conn.execute("INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", run_row)
        conn.executemany("INSERT INTO reviews VALUES (?, ?, ?, ?, ?, ?, ?)", reviews)
        conn.commit()
        conn.close()
    else:
        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO geo_eval.runs (run_id, year, scheme, scheme_title, out_dir, counts, registered_at, "
                "registered_by, seq) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                run_row,
            )
            for r in reviews:
                conn.execute("INSERT INTO geo_eval.reviews VALUES (%s, %s, %s, %s, %s, %s, %s)", r)
    return run_id


def legacy_run(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[Path, Path | str, str]:
    """The catalogue evaluated into ``tmp_path / "out"``, registered with two reviews in a store made by the
    previous geo-eval (:func:`legacy_store`, :func:`legacy_rows`): the OUT_DIR, that store's database (a
    file or a URL) and the run's id in it."""
    pg_url = request.getfixturevalue("pg_url") if backend == "postgis" else None
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    target = legacy_store(backend, tmp_path, pg_url)
    return out, target, legacy_rows(target, backend, manifest, out)


def upgraded(backend: str, target) -> SQLiteStore | PostgresStore:
    """The store of a database at schema version 1, after its upgrade to version 2."""
    if backend == "sqlite":
        return SQLiteStore(Path(target))  # migrates on opening
    with pytest.raises(DatabaseError, match="geo-eval db upgrade"):
        PostgresStore(str(target))
    assert upgrade_schema(str(target))["applied"] == [2, 3, 4, 5]
    return PostgresStore(str(target))


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_runs_registered_by_an_older_geo_eval_keep_their_reviews(backend, tmp_path, request):
    out, target, legacy = legacy_run(backend, tmp_path, request)
    s = upgraded(backend, target)
    try:
        assert s.status()["schema_version"] == (4 if backend == "sqlite" else 5)  # PostGIS 5: the tile sets
        old = s.get_run(legacy)
        assert old.manifest_sha256 == sha256(out / "manifest.json")  # filled in from its OUT_DIR
        assert load_run_data(old).run_id == legacy  # served as before
        # registered again unchanged: the new id (without the version), every review carried
        new = s.add_run(run_record_from_out_dir(out), actor="admin")
        assert new.run_id != legacy and new.carryover is not None
        assert (new.carryover.previous, new.carryover.kept, new.carryover.unchecked) == (legacy, 2, 0)
        assert set(s.reviews(new.run_id)) == {CHANGED, SAME}
        assert s.get_review(new.run_id, SAME).comment == "国有储备用地"
    finally:
        s.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_an_older_run_whose_out_dir_was_rewritten_cannot_pass_on_its_reviews(backend, tmp_path, request):
    out, target, legacy = legacy_run(backend, tmp_path, request)
    run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True)  # before the upgrade
    s = upgraded(backend, target)
    try:
        old = s.get_run(legacy)
        assert old.manifest_sha256 == ""  # nothing to fill in from: OUT_DIR holds another run
        with pytest.raises(RunFilesError, match="另一次评价"):
            load_run_data(old)
        new = s.add_run(run_record_from_out_dir(out), actor="admin")
        c = new.carryover
        assert c is not None and (c.previous, c.kept, c.changed, c.unchecked) == (legacy, 0, 0, 2)
        assert c.message(new.run_id).endswith("，2 条无法核对未沿用（原批次由旧版 geo-eval 登记，未记录标记内容）")
        assert s.reviews(new.run_id) == {} and len(s.reviews(legacy)) == 2
    finally:
        s.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgis"])
def test_an_older_run_out_of_reach_during_the_upgrade_passes_its_reviews_on_when_it_is_back(backend, tmp_path, request):
    """E.g. a network share not mounted while the database was upgraded: nothing could be filled in, but
    the same evaluation registered again later (its older id is the run's) carries every review."""
    out, target, legacy = legacy_run(backend, tmp_path, request)
    out.rename(tmp_path / "unmounted")
    s = upgraded(backend, target)
    try:
        assert s.get_run(legacy).manifest_sha256 == ""
        (tmp_path / "unmounted").rename(out)
        new = s.add_run(run_record_from_out_dir(out), actor="admin")
        assert new.carryover is not None and (new.carryover.kept, new.carryover.unchecked) == (2, 0)
        assert set(s.reviews(new.run_id)) == {CHANGED, SAME}
    finally:
        s.close()


def test_the_upgrade_fills_in_a_stored_run_from_the_database(pg_url, tmp_path):
    """A run stored with ``evaluate --db`` before schema version 3 gets its manifest sha256 and flag
    digests from its stored rows when the database is upgraded, even without its OUT_DIR."""
    wipe_database(pg_url)
    init_schema(pg_url)
    out = tmp_path / "out"
    first = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out, db=pg_url).stored
    assert first is not None
    s = PostgresStore(pg_url)
    review_both(s, first.run_id)
    s.close()
    sha, prints = sha256(out / "manifest.json"), run_record_from_out_dir(out).flag_prints
    with psycopg.connect(pg_url, autocommit=True) as conn:  # back to version 2, as an older geo-eval left it
        conn.execute("DROP TABLE geo_eval.run_tiles, geo_eval.run_tile_sets")
        conn.execute("DELETE FROM geo_eval.schema_version WHERE version = 5")
        conn.execute("DROP TABLE geo_eval.objection_files, geo_eval.objections")
        conn.execute("ALTER TABLE geo_eval.reviews DROP COLUMN carried_from")
        drop = ", ".join(f"DROP COLUMN {c}" for c in ("status", "version", *RUN_STATUS_TEXT_COLUMNS))
        conn.execute(f"ALTER TABLE geo_eval.runs {drop}")
        conn.execute("DELETE FROM geo_eval.schema_version WHERE version = 4")
        conn.execute("DROP TABLE geo_eval.run_flags")
        conn.execute("ALTER TABLE geo_eval.flags DROP COLUMN digest")
        conn.execute("ALTER TABLE geo_eval.runs DROP COLUMN manifest_sha256")
        conn.execute("DELETE FROM geo_eval.schema_version WHERE version = 3")
    shutil.rmtree(out)
    assert upgrade_schema(pg_url)["applied"] == [3, 4, 5]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert conn.execute("SELECT manifest_sha256 FROM geo_eval.runs").fetchall() == [(sha,)]
        assert dict(conn.execute("SELECT flag_id, digest FROM geo_eval.run_flags").fetchall()) == prints
    second = run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, db=pg_url).stored
    assert second is not None and second.carryover is not None
    assert (second.carryover.previous, second.carryover.kept, second.carryover.changed) == (first.run_id, 1, 1)


# --- evaluate --db: the database and OUT_DIR change together ---------------------------------------------
def latest(url: str):
    s = PostgresStore(url)
    try:
        return s.latest_run()
    finally:
        s.close()


def test_a_failing_swap_leaves_the_database_naming_the_run_in_out_dir(pg_db, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out, db=pg_db).stored
    assert first is not None
    manifest = (out / "manifest.json").read_bytes()
    real_rename = Path.rename

    def full_disk(self, target):
        if Path(self).name.startswith(".out.tmp-") and Path(target) == out:  # the new OUT_DIR cannot go in place
            raise OSError(28, "No space left on device")
        return real_rename(self, target)

    monkeypatch.setattr(Path, "rename", full_disk)
    monkeypatch.setattr(os, "replace", lambda a, b: full_disk(Path(a), b))
    with pytest.raises(RunFilesError, match="No space left on device"):
        run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True, db=pg_db)
    monkeypatch.undo()
    assert (out / "manifest.json").read_bytes() == manifest  # the old OUT_DIR is back in place
    assert siblings(out) == []
    now = latest(pg_db)
    assert now.run_id == first.run_id and now.manifest_sha256 == sha256(out / "manifest.json")
    with psycopg.connect(pg_db, autocommit=True) as conn:
        assert [r[0] for r in conn.execute("SELECT run_id FROM geo_eval.runs")] == [first.run_id]


def test_a_failing_commit_puts_the_old_out_dir_back(pg_db, tmp_path):
    """The transaction commits after OUT_DIR is swapped in; if the commit fails the old OUT_DIR returns."""
    out = tmp_path / "out"
    first = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out, db=pg_db).stored
    assert first is not None
    manifest = (out / "manifest.json").read_bytes()
    with psycopg.connect(pg_db, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION geo_eval.fail_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk full at commit (test)'; END $$"
        )
        conn.execute(
            "CREATE CONSTRAINT TRIGGER fail_commit AFTER INSERT OR UPDATE ON geo_eval.runs "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION geo_eval.fail_commit()"
        )
    with pytest.raises(DatabaseError, match="disk full at commit"):
        run(dataset(tmp_path / "ds2", tax_of_e1=100), load_scheme(SCHEME), out, overwrite=True, db=pg_db)
    assert (out / "manifest.json").read_bytes() == manifest
    assert siblings(out) == []
    now = latest(pg_db)
    assert now.run_id == first.run_id and now.manifest_sha256 == sha256(out / "manifest.json")


def test_a_published_run_registered_again_from_other_files_is_served_from_the_files(pg_db, tmp_path):
    out = tmp_path / "out"
    first = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out, db=pg_db).stored
    assert first is not None and first.stored
    s = PostgresStore(pg_db)
    try:
        assert s.add_run(run_record_from_out_dir(out), actor="admin").stored  # the same files: still stored
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
        manifest["version"] = "9.9.9"  # the same run id, evaluated again (no --db) by another geo-eval
        (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
        again = s.add_run(run_record_from_out_dir(out), actor="admin")
        assert again.run_id == first.run_id and not again.stored and not s.latest_run().stored
        assert load_run_data(s.latest_run()).run_id == first.run_id
    finally:
        s.close()


def test_evaluate_db_says_what_happened_to_the_reviews(pg_db, tmp_path):
    out = tmp_path / "out"
    args = ["evaluate", "--scheme", SCHEME, "--out", str(out), "--db", pg_db]
    r = runner.invoke(app, [*args[:1], str(dataset(tmp_path / "ds")), *args[1:]])
    assert r.exit_code == 0, r.output
    first = latest(pg_db).run_id
    s = PostgresStore(pg_db)
    review_both(s, first)
    s.close()
    r = runner.invoke(app, [*args[:1], str(dataset(tmp_path / "ds2", tax_of_e1=100)), *args[1:], "--overwrite"])
    assert r.exit_code == 0, r.output
    second = latest(pg_db).run_id
    with psycopg.connect(pg_db, autocommit=True) as conn:  # a published run's digests are in its flags rows
        stored = dict(conn.execute("SELECT flag_id, digest FROM geo_eval.flags WHERE run_id = %s", (second,)))
        assert conn.execute("SELECT count(*) FROM geo_eval.run_flags").fetchone() == (0,)
    assert stored == run_record_from_out_dir(out).flag_prints and len(stored) == len(flags_of(out)) > 0
    text = " ".join(r.output.split())
    assert f"重新登记：新批次 {second}（取代该输出目录中的批次 {first}）；沿用复核 1 条，因标记变化未沿用 1 条" in text
    # the map tiles are cut after the evaluation is let go, and stored beside the run
    assert "地图瓦片已切割：" in text and "已存入数据库" in text.split("地图瓦片已切割：")[1]
    with psycopg.connect(pg_db, autocommit=True) as conn:
        sets = conn.execute("SELECT tiles FROM geo_eval.run_tile_sets WHERE run_id = %s", (second,)).fetchall()
        assert len(sets) == 1 and sets[0][0] > 0


def test_a_tile_job_whose_database_is_gone_says_so_instead_of_failing(tmp_path):
    """The run is stored when its tiles are cut afterwards; a database gone by then is reported, not raised
    (its tiles are then cut per request), as a failing cut already was."""
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    job = TileJob("postgresql://postgres@127.0.0.1:1/gone", run_record_from_out_dir(out), out)
    steps: list[str] = []
    said = job(steps.append)
    assert said.startswith("地图瓦片未能存入数据库（服务将按需切割，较慢）：无法连接数据库"), said
    assert steps == ["正在切割地图瓦片并存入数据库（100 万宗地约需数分钟）……"]


# --- leftovers of killed runs ----------------------------------------------------------------------------
def dead_pid() -> int:
    """The id of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_leftovers_of_killed_runs_are_removed_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    pid = dead_pid()
    for kind in ("tmp", "old"):
        left = tmp_path / f".out.{kind}-{pid}"
        left.mkdir()
        (left / "enterprises.csv").write_text("half written", encoding="utf-8")
    (tmp_path / ".other.tmp-1").mkdir()  # another OUT_DIR's: not ours to touch
    result = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out, overwrite=True)
    assert siblings(out) == []
    assert (tmp_path / ".other.tmp-1").is_dir()
    assert result.tidied == [
        f"已删除中断的运行（进程 {pid}）留下的临时目录 {tmp_path / f'.out.old-{pid}'}",
        f"已删除中断的运行（进程 {pid}）留下的临时目录 {tmp_path / f'.out.tmp-{pid}'}",
    ]


def test_a_leftover_of_a_run_still_going_is_kept_and_reported(tmp_path):
    out = tmp_path / "out"
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f".out.tmp-{alive.pid}").mkdir()
        result = run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
        assert siblings(out) == [f".out.tmp-{alive.pid}"]
        assert result.tidied == [
            f"保留 {tmp_path / f'.out.tmp-{alive.pid}'}：写入它的进程 {alive.pid} 仍在运行（可能有另一次评价正写入同一输出目录）"
        ]
    finally:
        alive.kill()
        alive.wait()


def test_an_out_dir_set_aside_by_a_killed_run_is_put_back(tmp_path):
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    manifest = (out / "manifest.json").read_bytes()
    pid = dead_pid()
    out.rename(tmp_path / f".out.old-{pid}")  # killed after setting the old OUT_DIR aside ...
    (tmp_path / f".out.tmp-{pid}").mkdir()  # ... before the new one was put in place
    with pytest.raises(OutputExistsError):
        run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    assert (out / "manifest.json").read_bytes() == manifest and siblings(out) == []


STALL = """
import functools, importlib, sys, time
from pathlib import Path
marker = Path(sys.argv[1])
*owner, name = "{attribute}".split(".")
target = functools.reduce(getattr, owner, importlib.import_module("{module}"))
real = getattr(target, name)
def stalled(*args, **kwargs):
    {before}
    marker.write_text("stalled")
    time.sleep(120)
setattr(target, name, stalled)
from geo_eval.cli import main
sys.argv = ["geo-eval", *sys.argv[2:]]
main()
"""


def evaluate_and_kill(
    tmp_path: Path, out: Path, *, module: str, attribute: str, before: str = "pass", extra: tuple[str, ...] = ()
) -> int:
    """Start ``geo-eval evaluate`` (overwrite) in a subprocess that stalls in ``attribute`` of ``module``
    (after running ``before``) and kill -9 it there; returns its process id."""
    marker = tmp_path / "stalled"
    marker.unlink(missing_ok=True)
    script = tmp_path / "stall.py"
    script.write_text(
        textwrap.dedent(STALL.format(module=module, attribute=attribute, before=before)), encoding="utf-8"
    )
    ds = tmp_path / "ds"
    args = ["evaluate", str(ds), "--scheme", SCHEME, "--out", str(out), "--overwrite", *extra]
    proc = subprocess.Popen([sys.executable, str(script), str(marker), *args], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the run ended before the stall"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    return proc.pid


def test_kill_9_while_writing_then_the_next_run_tidies_up(tmp_path):
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    manifest = (out / "manifest.json").read_bytes()
    pid = evaluate_and_kill(tmp_path, out, module="geo_eval.io.writers", attribute="write_workbooks")
    assert (out / "manifest.json").read_bytes() == manifest  # the killed run changed nothing
    assert siblings(out) == [f".out.tmp-{pid}"]
    assert (tmp_path / f".out.tmp-{pid}" / "enterprises.csv").is_file()  # half written
    r = runner.invoke(app, ["evaluate", str(tmp_path / "ds"), "--scheme", SCHEME, "--out", str(out), "--overwrite"])
    assert r.exit_code == 0, r.output
    assert siblings(out) == []
    assert f"已删除中断的运行（进程 {pid}）留下的临时目录 {tmp_path / f'.out.tmp-{pid}'}" in r.output


def test_kill_9_between_setting_out_dir_aside_and_the_swap_then_the_next_run_puts_it_back(tmp_path):
    out = tmp_path / "out"
    run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    manifest = (out / "manifest.json").read_bytes()
    pid = evaluate_and_kill(
        tmp_path, out, module="geo_eval.io.outdir", attribute="Swap.set_aside", before="real(*args, **kwargs)"
    )
    assert not out.exists() and siblings(out) == [f".out.old-{pid}", f".out.tmp-{pid}"]
    with pytest.raises(OutputExistsError):  # put back, then refused as any existing OUT_DIR without --overwrite
        run(dataset(tmp_path / "ds"), load_scheme(SCHEME), out)
    assert (out / "manifest.json").read_bytes() == manifest and siblings(out) == []


def test_kill_9_between_the_swap_and_the_commit_is_found_out_and_tidied(pg_db, tmp_path):
    """The one moment --db cannot make atomic: OUT_DIR holds the new run, the database (rolled back by the
    kill) still names the old one there. The recorded manifest sha256 tells, and the next run mends it."""
    out = tmp_path / "out"
    first = run(dataset(tmp_path / "first"), load_scheme(SCHEME), out, db=pg_db).stored
    assert first is not None
    dataset(tmp_path / "ds", tax_of_e1=100)
    pid = evaluate_and_kill(
        tmp_path, out, module="geo_eval.db.publish", attribute="Publication.__exit__", extra=("--db", pg_db)
    )
    old = latest(pg_db)
    assert old.run_id == first.run_id and old.manifest_sha256 != sha256(out / "manifest.json")
    assert run_record_from_out_dir(out).run_id != first.run_id  # OUT_DIR holds the uncommitted run
    assert out_dir_state(old) == "与登记不符，须重新登记（结果在数据库中）"
    assert siblings(out) == [f".out.old-{pid}"]
    again = run(tmp_path / "ds", load_scheme(SCHEME), out, overwrite=True, db=pg_db)
    assert again.tidied == [f"已删除中断的运行（进程 {pid}）留下的临时目录 {tmp_path / f'.out.old-{pid}'}"]
    now = latest(pg_db)
    assert now.run_id == run_record_from_out_dir(out).run_id != first.run_id
    assert now.manifest_sha256 == sha256(out / "manifest.json") and out_dir_state(now) == "一致"
    assert siblings(out) == []


@pytest.mark.parametrize("failing", ["write_parcels", "write_workbook"])
def test_a_failing_write_leaves_the_old_out_dir_and_no_leftovers(tmp_path, monkeypatch, failing):
    """A disk error while the parcels or a workbook are written fails the run, keeps the previous OUT_DIR
    as it was and leaves nothing behind; the manifest times the report apart."""
    from geo_eval.io import writers

    out = tmp_path / "out"
    ds = dataset(tmp_path / "ds")
    run(ds, load_scheme(SCHEME), out)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert Path("rankings.xlsx") in before and Path("report.html") in before
    manifest = json.loads(before[Path("manifest.json")])
    assert manifest["workbooks"] == ["rankings.xlsx"]
    assert {"write_workbooks", "write_report", "write_parcels_gpkg"} <= set(manifest["timings_s"])

    def full_disk(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers, failing, full_disk)
    with pytest.raises(OSError, match="No space left"):
        run(ds, load_scheme(SCHEME), out, overwrite=True)
    after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "out"]  # no .out.tmp-* or .out.old-*


def test_evaluate_names_the_park_workbooks_it_wrote(tmp_path, monkeypatch):
    """A run of more enterprises than one workbook takes writes one per park under rankings/, and says so."""
    from geo_eval.io import writers

    monkeypatch.setattr(writers, "WORKBOOK_ROW_LIMIT", 1)
    out = tmp_path / "out"
    res = runner.invoke(app, ["evaluate", str(dataset(tmp_path / "ds")), "--scheme", SCHEME, "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = sorted(p.relative_to(out).as_posix() for p in (out / "rankings").glob("*.xlsx"))
    assert written and not (out / "rankings.xlsx").exists()
    assert json.loads((out / "manifest.json").read_text(encoding="utf-8"))["workbooks"] == written
    assert f"rankings/（{len(written)} 个园区排名表）" in res.output
    assert "rankings.xlsx" not in res.output

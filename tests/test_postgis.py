"""PostGIS as a source and a target: parcels read from a table or query, runs published with
``evaluate --db`` (one transaction), areas against PostGIS's own ``ST_Area``, and the service serving a
stored run from the database (ST_AsMVT tiles without review states, review states as reviews.json, role
checks) without its OUT_DIR.

Uses the realistic sample park (sample_parcels/2025, 790 parcels in EPSG:4528). Needs the test database
of ``GEO_EVAL_TEST_DATABASE_URL`` (see conftest.py: its schema geo_eval is wiped; source tables go into
a schema ``geo_eval_src`` that these tests drop and create).
"""

from __future__ import annotations

import io
import json
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from conftest import shown_url, wipe_database
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval import maps
from geo_eval.db import DatabaseError, PostgresStore, init_schema, publish
from geo_eval.db.parcels import import_parcels
from geo_eval.db.results import enterprises_csv, read_stored_run
from geo_eval.errors import DatasetError
from geo_eval.io import load_inputs
from geo_eval.io.run import run
from geo_eval.maps.tiles import lonlat_to_tile
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage import open_store, run_record_from_out_dir

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels" / "2025"
SCHEME = "lianyungang"
SRC = "geo_eval_src"
RESULT_TABLES = ("enterprise_results", "parcel_results", "flags", "renewal_blocks", "run_files")


def sql(url: str, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


def fresh_source_schema(url: str) -> None:
    sql(url, f"DROP SCHEMA IF EXISTS {SRC} CASCADE")
    sql(url, f"CREATE SCHEMA {SRC}")


def db_dataset(root: Path, url: str, parcels_toml: str) -> Path:
    """The sample 2025 dataset with its parcels read from PostGIS (the same enterprises and leases)."""
    root.mkdir(parents=True)
    for name in ("enterprises.xlsx", "leases.csv"):
        shutil.copy(SAMPLE / name, root / name)
    builtup = (ROOT / "layers" / "builtup_10m.tif").as_posix()
    (root / "dataset.toml").write_text(
        'year = 2025\nevaluation_date = "2026-03-31"\n'
        f'[parcels]\ndb = "{url}"\n{parcels_toml}\n'
        '[enterprises]\npath = "enterprises.xlsx"\nsheet = "企业数据"\n'
        '[leases]\npath = "leases.csv"\n'
        f'[layers]\nbuiltup = "{builtup}"\n',
        encoding="utf-8",
    )
    return root


def run_count(url: str, run_id: str) -> dict[str, int]:
    return {t: sql(url, f"SELECT count(*) FROM geo_eval.{t} WHERE run_id = %s", (run_id,))[0][0] for t in RESULT_TABLES}


# --- parcels from PostGIS ------------------------------------------------------------------------------
def test_parcels_from_a_postgis_table_give_the_same_results_as_the_file(pg_db, tmp_path):
    fresh_source_schema(pg_db)
    n = import_parcels(pg_db, SAMPLE / "parcels.gpkg", f"{SRC}.parcels_2025", layer="parcels")
    assert n == 790
    ds = db_dataset(tmp_path / "ds", pg_db, f'table = "{SRC}.parcels_2025"')
    scheme = load_scheme(SCHEME)
    from_file = run(SAMPLE, scheme, tmp_path / "file")
    from_db = run(ds, scheme, tmp_path / "db")
    for name in ("enterprises.csv", "flags.csv", "benchmarks.csv"):
        assert (tmp_path / "file" / name).read_bytes() == (tmp_path / "db" / name).read_bytes(), name
    # the exceptions are the same rows; only the file column names the database table instead
    label = f"{shown_url(pg_db)} 表 {SRC}.parcels_2025"
    exc_file = (tmp_path / "file" / "exceptions.csv").read_text(encoding="utf-8-sig")
    exc_db = (tmp_path / "db" / "exceptions.csv").read_text(encoding="utf-8-sig")
    assert exc_db.replace(label, "parcels.gpkg") == exc_file
    assert len(from_db.evaluation.parcels) == len(from_file.evaluation.parcels) == 790
    source = from_db.manifest["inputs"]["parcels"]  # type: ignore[index]
    assert source["path"] == label and len(source["sha256"]) == 64
    # the same rows read again hash the same, so the run id (and its reviews) carry over
    again = run(ds, scheme, tmp_path / "db2")
    assert again.manifest["inputs"]["parcels"]["sha256"] == source["sha256"]  # type: ignore[index]


def test_parcels_from_a_query_with_english_column_names_and_another_geometry_name(pg_db, tmp_path):
    """The sample table has Chinese headers (宗地代码 …); a bureau's view may use the contract's English names."""
    fresh_source_schema(pg_db)
    import_parcels(pg_db, SAMPLE / "parcels.gpkg", f"{SRC}.parcels", layer="parcels")
    sql(
        pg_db,
        f'CREATE VIEW {SRC}.cadastre AS SELECT "宗地代码" AS parcel_id, "权利人统一社会信用代码" AS holder_uscc, '
        f'"县区" AS county, "园区" AS park, "土地用途" AS land_use, "登记面积" AS registered_area_m2, '
        f'"总建筑面积" AS floor_area_m2, geom AS shape FROM {SRC}.parcels',
    )
    park = sql(pg_db, f'SELECT "园区" FROM {SRC}.parcels GROUP BY 1 ORDER BY count(*) DESC LIMIT 1')[0][0]
    ids = sorted(r[0] for r in sql(pg_db, f'SELECT "宗地代码" FROM {SRC}.parcels WHERE "园区" = %s', (park,)))
    query = f"SELECT * FROM {SRC}.cadastre WHERE park = '{park}' ORDER BY parcel_id DESC"
    ds = db_dataset(tmp_path / "ds", pg_db, f"sql = {json.dumps(query, ensure_ascii=False)}")
    inputs, paths, _ = load_inputs(ds)
    p = inputs.parcels
    assert list(p.index) == ids[::-1]  # the query's order: source_row 1 is the first row it returns
    assert list(p["source_row"]) == list(range(1, len(ids) + 1))
    assert p.crs.to_epsg() == 4528
    file_inputs, _, _ = load_inputs(SAMPLE)
    ref = file_inputs.parcels.loc[ids[::-1]]
    assert p["registered_area_m2"].tolist() == pytest.approx(ref["registered_area_m2"].tolist())
    assert p["holder_uscc"].fillna("").tolist() == ref["holder_uscc"].fillna("").tolist()
    assert np.allclose(p.geometry.area.to_numpy(), ref.geometry.area.to_numpy())
    assert str(getattr(paths["parcels"], "label", "")).endswith("SQL 查询")


def test_database_sources_that_cannot_be_used_say_why(pg_db, tmp_path):
    fresh_source_schema(pg_db)
    import_parcels(pg_db, SAMPLE / "parcels.gpkg", f"{SRC}.parcels", layer="parcels")
    cases = {
        "missing": (f'table = "{SRC}.no_such_table"', f"{SRC}.no_such_table"),
        "two geometries": (
            f'sql = "SELECT *, ST_Centroid(geom) AS centre FROM {SRC}.parcels"',
            "多个几何列（geom、centre）",
        ),
        "mixed srid": (
            "sql = '''SELECT *, CASE WHEN \"县区\" = '青松县' THEN ST_Transform(geom, 4490) ELSE geom END AS g "
            f"FROM {SRC}.parcels'''\ngeometry = \"g\"",
            "混有多个坐标系",
        ),
        "both": (f'table = "{SRC}.parcels"\nsql = "SELECT 1"', "table（宗地表）或 sql（查询语句）之一"),
    }
    for name, (toml, words) in cases.items():
        ds = db_dataset(tmp_path / name.replace(" ", "_"), pg_db, toml)
        with pytest.raises((DatasetError, DatabaseError)) as info:
            load_inputs(ds)
        assert words in str(info.value), (name, str(info.value))
        assert "\n" not in str(info.value).split("：", 1)[0]
    # a file and a database at once is refused too
    bad = db_dataset(tmp_path / "path_and_db", pg_db, 'path = "parcels.gpkg"\ntable = "x"')
    with pytest.raises(DatasetError, match="path（宗地文件）或 db"):
        load_inputs(bad)


# --- areas against PostGIS -----------------------------------------------------------------------------
def test_parcel_areas_agree_with_postgis_st_area_on_the_gauss_krueger_plane(pg_db, tmp_path):
    """Parcels in CGCS2000 geographic coordinates (EPSG:4490): geo-eval projects them with pyproj,
    PostGIS with its own ST_Transform; areas agree to 0.01 % (in practice far better)."""
    fresh_source_schema(pg_db)
    lonlat = gpd.read_file(SAMPLE / "parcels.gpkg", layer="parcels").to_crs(4490)
    lonlat.to_file(tmp_path / "parcels_4490.gpkg", layer="parcels", driver="GPKG")
    import_parcels(pg_db, tmp_path / "parcels_4490.gpkg", f"{SRC}.parcels_4490")
    ds = db_dataset(tmp_path / "ds", pg_db, f'table = "{SRC}.parcels_4490"')
    result = run(ds, load_scheme(SCHEME), tmp_path / "out", db=pg_db)
    rec = result.stored
    assert rec is not None and rec.srid in (4528, 4549)  # CGCS2000 3° GK zone 40 (central meridian 120°E)
    rows = sql(
        pg_db,
        "SELECT r.area_m2, ST_Area(ST_MakeValid(ST_Transform(s.geom, %s))), ST_Area(r.geom), ST_SRID(r.geom) "
        f'FROM geo_eval.parcel_results r JOIN {SRC}.parcels_4490 s ON s."宗地代码" = r.parcel_id WHERE r.run_id = %s',
        (rec.srid, rec.run_id),
    )
    assert len(rows) == 790
    ours = np.array([r[0] for r in rows])
    postgis = np.array([r[1] for r in rows])
    stored = np.array([r[2] for r in rows])
    assert {r[3] for r in rows} == {rec.srid}
    rel = np.abs(ours - postgis) / postgis
    assert rel.max() < 1e-4, f"largest difference {rel.max():.2e}"
    assert np.abs(ours - stored).max() < 0.006  # area_m2 is rounded to 0.01 m²
    # the Gauss-Krüger areas are far from what degrees or Web Mercator would give
    merc = sql(
        pg_db,
        f"SELECT sum(ST_Area(ST_Transform(ST_MakeValid(geom), 3857))) FROM {SRC}.parcels_4490",
    )[0][0]
    assert merc / ours.sum() > 1.4


# --- evaluate --db ---------------------------------------------------------------------------------------
def test_evaluate_db_stores_the_run_and_republishing_keeps_reviews(pg_db, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(publish, "PUBLISH_ROWS", 100)  # the 790 parcels published in 8 slices, as a province's are
    result = run(SAMPLE, load_scheme(SCHEME), out, db=pg_db)
    rec = result.stored
    assert rec is not None and rec.stored
    rows = sql(
        pg_db,
        "SELECT row_no, parcel_id, ST_Area(geom), geom_gcj02 IS NOT NULL FROM geo_eval.parcel_results "
        "WHERE run_id = %s ORDER BY row_no",
        (rec.run_id,),
    )
    layer = gpd.read_file(out / "parcels.gpkg", layer="parcels")
    assert [r[0] for r in rows] == list(range(1, 791)) and [r[1] for r in rows] == layer["parcel_id"].tolist()
    assert [r[2] for r in rows] == pytest.approx(
        layer["area_m2"].tolist(), abs=0.006
    )  # written to 0.01 m² and all(r[3] for r in rows)
    counts = run_count(pg_db, rec.run_id)
    ent = pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    flags = pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype=str)
    blocks = gpd.read_file(out / "renewal_blocks.gpkg")
    assert counts == {
        "enterprise_results": len(ent),
        "parcel_results": 790,
        "flags": len(flags),
        "renewal_blocks": len(blocks),
        "run_files": 4,  # exceptions.csv, benchmarks.csv, manifest.json, policies.csv
    }
    with psycopg.connect(pg_db) as conn:
        layout = sql(pg_db, "SELECT columns FROM geo_eval.runs WHERE run_id = %s", (rec.run_id,))[0][0]
        assert enterprises_csv(conn, rec.run_id, layout["enterprises"]) == (out / "enterprises.csv").read_bytes()
        stored = read_stored_run(conn, rec.run_id)
    stored_flags = stored.flags
    # the parcel rows come back from row_csv with the layer's columns and values, nulls included
    parcels = pd.DataFrame(gpd.read_file(out / "parcels.gpkg", layer="parcels", ignore_geometry=True))
    back = pd.DataFrame(stored.parcels.drop(columns="geometry"))
    assert list(back.columns) == list(parcels.columns)
    for c in parcels.columns:
        a, b = parcels[c], back[c]
        assert ((a == b) | (a.isna() & b.isna())).all(), c
    layer = pd.DataFrame(gpd.read_file(out / "parcels.gpkg", layer="flags", ignore_geometry=True))
    assert list(stored_flags.columns) == list(layer.columns) and len(stored_flags) == len(layer)
    for c in layer.columns:  # the same values (the rows come back exactly, nulls included)
        a, b = layer[c], stored_flags[c]
        assert ((a == b) | (a.isna() & b.isna())).all(), c
    for name in ("exceptions.csv", "benchmarks.csv", "manifest.json", "policies.csv"):
        stored = sql(
            pg_db, "SELECT content FROM geo_eval.run_files WHERE run_id = %s AND name = %s", (rec.run_id, name)
        )
        assert bytes(stored[0][0]) == (out / name).read_bytes(), name
    # typed columns hold the key figures; row_csv the whole row, read back to the csv's values
    rows = sql(
        pg_db,
        "SELECT uscc, grade, score, rank, land_mu, row_csv FROM geo_eval.enterprise_results "
        "WHERE run_id = %s ORDER BY row_no",
        (rec.run_id,),
    )
    assert [r[0] for r in rows] == ent["uscc"].tolist()
    assert [r[1] for r in rows] == ent["grade"].tolist()
    rated = ent["score"] != ""
    assert np.allclose([r[2] for r, k in zip(rows, rated, strict=True) if k], ent.loc[rated, "score"].astype(float))
    assert [r[4] for r in rows] == pytest.approx(ent["land_mu"].astype(float).tolist())
    store = PostgresStore(pg_db)
    try:
        assert store.latest_run().run_id == rec.run_id and store.latest_run().stored
        flag_id = str(flags["flag_id"].iloc[0])
        store.set_review(rec.run_id, flag_id, status="confirmed", comment="现场已核实", version=0, actor="rev")
        # the same inputs again: the same run id, results replaced (not added), the review kept
        again = run(SAMPLE, load_scheme(SCHEME), out, overwrite=True, db=pg_db)
        assert again.stored is not None and again.stored.run_id == rec.run_id
        assert run_count(pg_db, rec.run_id) == counts
        assert len(partitions(pg_db)) == 4  # the old partitions were swapped out, not kept
        # each partition has its parent's indexes (built before attaching, adopted, not duplicated)
        n_indexes = dict(
            sql(pg_db, "SELECT tablename, count(*) FROM pg_indexes WHERE schemaname = 'geo_eval' GROUP BY 1")
        )
        for part in partitions(pg_db):
            parent = part.rsplit("_", 1)[0]
            assert n_indexes[part] == n_indexes[parent] >= 2, part
        assert store.get_review(rec.run_id, flag_id).status == "confirmed"
        actions = [a.action for a in store.audit(run_id=rec.run_id)]
        assert actions.count("run.update") == 1 and actions.count("run.add") == 1
    finally:
        store.close()


def partitions(url: str) -> list[str]:
    """The tables attached as partitions of the result tables."""
    query = "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE c.relkind = 'r'"
    return [r[0] for r in sql(url, query)]


def test_a_failed_publish_leaves_nothing_behind(pg_db, tmp_path):
    """A database failure at the very end of publishing (the last statement, after every COPY, index build
    and partition swap) rolls the whole transaction back, and OUT_DIR is not created either."""
    sql(
        pg_db,
        "CREATE FUNCTION geo_eval.fail_store() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN IF NEW.stored_at IS NOT NULL THEN RAISE EXCEPTION 'disk full (test)'; END IF; RETURN NEW; END $$",
    )
    sql(
        pg_db,
        "CREATE TRIGGER fail_store BEFORE UPDATE ON geo_eval.runs FOR EACH ROW EXECUTE FUNCTION geo_eval.fail_store()",
    )
    out = tmp_path / "out"
    with pytest.raises(DatabaseError, match="disk full"):
        run(SAMPLE, load_scheme(SCHEME), out, db=pg_db)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary directory left either
    assert sql(pg_db, "SELECT count(*) FROM geo_eval.runs")[0][0] == 0
    for table in RESULT_TABLES:
        assert sql(pg_db, f"SELECT count(*) FROM geo_eval.{table}")[0][0] == 0, table
    assert partitions(pg_db) == []
    # a run already stored keeps its previous results when republishing it fails
    sql(pg_db, "ALTER TABLE geo_eval.runs DISABLE TRIGGER fail_store")
    first = run(SAMPLE, load_scheme(SCHEME), out, db=pg_db)
    assert first.stored is not None
    before, parts = run_count(pg_db, first.stored.run_id), sorted(partitions(pg_db))
    assert len(parts) == 4  # one partition per result table
    sql(pg_db, "ALTER TABLE geo_eval.runs ENABLE TRIGGER fail_store")
    with pytest.raises(DatabaseError):
        run(SAMPLE, load_scheme(SCHEME), out, overwrite=True, db=pg_db)
    assert run_count(pg_db, first.stored.run_id) == before
    assert sorted(partitions(pg_db)) == parts
    assert (out / "manifest.json").is_file()  # the old OUT_DIR is untouched


def test_evaluate_db_refuses_an_unusable_database_in_one_line_before_computing(pg_url, tmp_path):
    exe = Path(sys.executable).parent / "geo-eval"
    down = "postgresql://postgres:hunter2@127.0.0.1:1/geo"
    proc = subprocess.run(
        [str(exe), "evaluate", str(SAMPLE), "--out", str(tmp_path / "o"), "--db", down],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "注意" not in line]
    assert len(lines) == 1, proc.stderr
    assert "postgresql://postgres:***@127.0.0.1:1/geo" in lines[0] and "hunter2" not in proc.stderr
    assert not (tmp_path / "o").exists()
    wipe_database(pg_url)  # no geo_eval schema: the message says to run db init
    proc = subprocess.run(
        [str(exe), "evaluate", str(SAMPLE), "--out", str(tmp_path / "o"), "--db", pg_url],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and "geo-eval db init" in proc.stderr
    assert not (tmp_path / "o").exists()


# --- the service on a stored run ------------------------------------------------------------------------
class Served:
    """Two services of the same run: ``files`` (OUT_DIR + SQLite) and ``db`` (PostGIS only)."""

    def __init__(
        self,
        files: TestClient,
        db: TestClient,
        tokens: dict[str, dict[str, str]],
        run_id: str,
        parks: list,
        db_settings: Settings,
    ):
        self.files, self.db, self.tokens, self.run_id, self.parks = files, db, tokens, run_id, parks
        self.db_settings = db_settings
        """To start another service on the database (with empty in-memory caches)."""

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['postgis'][who]}"}


@pytest.fixture(scope="module")
def served(pg_url, tmp_path_factory):
    """The sample 2025 run served twice: from its files (SQLite store) and from PostGIS (its OUT_DIR removed)."""
    base = tmp_path_factory.mktemp("served")
    wipe_database(pg_url)
    init_schema(pg_url)
    scheme = load_scheme(SCHEME)
    run(SAMPLE, scheme, base / "files_out")
    steps: list[str] = []  # what `geo-eval evaluate --db` shows while it works
    result = run(SAMPLE, scheme, base / "db_out", db=pg_url, tiles=True, progress=steps.append)
    stored, job = result.stored, result.tile_job
    assert stored is not None and job is not None and job.record == stored
    del result
    message = job(steps.append)  # cut once the result is let go, as geo-eval evaluate --db does
    assert message.startswith("地图瓦片已切割：") and message.endswith("已存入数据库"), message
    expected_steps = ["正在读取并校验输", "正在评价、标记地", "正在写出结果文件", "正在切割地图瓦片"]
    assert [s[:8] for s in steps] == expected_steps, steps
    assert "并存入数据库" in steps[2]
    shutil.rmtree(base / "db_out")
    parks = sorted(pd.read_csv(base / "files_out" / "enterprises.csv", encoding="utf-8-sig")["park"].dropna().unique())
    sqlite = open_store(base / "data")
    sqlite.add_run(run_record_from_out_dir(base / "files_out"), actor="test")
    pg = PostgresStore(pg_url)
    users = [("rev", "reviewer", []), ("com", "committee", [parks[0]])]
    tokens = {store.backend: {n: store.add_user(n, r, p)[1] for n, r, p in users} for store in (sqlite, pg)}
    sqlite.close()
    pg.close()
    secret = "s" * 48
    files_app = create_app(Settings(data_dir=base / "data", secret_key=secret))
    db_settings = Settings(data_dir=base / "data_pg", secret_key=secret, database_url=pg_url)
    db_app = create_app(db_settings)
    with TestClient(files_app) as fc, TestClient(db_app) as dc:
        yield Served(fc, dc, tokens, stored.run_id, parks, db_settings)


def fget(s: Served, path: str, who: str = "rev"):
    return s.files.get(path, headers={"Authorization": f"Bearer {s.tokens['sqlite'][who]}"})


def dget(s: Served, path: str, who: str = "rev"):
    return s.db.get(path, headers=s.h(who))


def test_the_stored_run_is_served_without_its_out_dir(served):
    health = served.db.get("/health").json()
    assert health["storage"]["backend"] == "postgis" and health["runs"] == 1
    runs = dget(served, "/api/runs").json()
    assert runs[0]["run_id"] == served.run_id
    for path in ("/api/rankings/download?format=csv", "/api/flags/download?format=csv"):
        a, b = fget(served, path), dget(served, path)
        assert a.status_code == b.status_code == 200, (path, b.text[:200])
        assert a.content == b.content, path
    park = served.parks[0]
    a = fget(served, f"/api/parcels?park={quote(park)}&limit=10000").json()
    b = dget(served, f"/api/parcels?park={quote(park)}&limit=10000").json()
    assert [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]]
    for fa, fb in zip(a["features"], b["features"], strict=True):
        assert fa["properties"].keys() == fb["properties"].keys()
        for k, va in fa["properties"].items():
            vb = fb["properties"][k]
            assert va == pytest.approx(vb) if isinstance(va, float) else va == vb, (fa["id"], k)
        ga, gb = shapely.geometry.shape(fa["geometry"]), shapely.geometry.shape(fb["geometry"])
        assert ga.symmetric_difference(gb).area < 1e-9  # same outline (PostGIS vs pyproj: < 1 mm)
    assert dget(served, f"/maps/{quote(park)}").status_code == 200


def test_the_site_checklist_of_a_stored_run_matches_the_files(served):
    path = "/api/flags/checklist?format=csv"
    a, b = fget(served, path), dget(served, path)
    assert a.status_code == b.status_code == 200, b.text[:200]
    fa = pd.read_csv(io.BytesIO(a.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    fb = pd.read_csv(io.BytesIO(b.content), encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert len(fa) > 50 and list(fa.columns) == list(fb.columns)
    coords = [c for c in fa.columns if c.startswith("中心点")]
    text = [c for c in fa.columns if c not in coords]
    assert fa[text].equals(fb[text])
    # the geometries went through PostGIS's ST_Transform rather than pyproj: the same point to < 1e-6°
    assert np.allclose(fa[coords].astype(float), fb[coords].astype(float), rtol=0, atol=2e-6)


def _tile(served: Served, getter, path: str, who: str = "rev") -> dict[str, dict]:
    r = getter(served, path, who)
    assert r.status_code == 200, (path, r.text[:300])
    layer = mapbox_vector_tile.decode(r.content).get("parcels", {"features": []}) if r.content else {"features": []}
    return {f["properties"]["parcel_id"]: f for f in layer["features"]}


def _tile_of(served: Served, parcel_id: str, z: int) -> str:
    """The zoom-``z`` tile holding a point of the parcel."""
    f = fget(served, f"/api/parcels/{quote(parcel_id)}").json()
    c = shapely.geometry.shape(f["geometry"]).representative_point()
    x, y = lonlat_to_tile(c.x, c.y, z)
    return f"{z}/{x}/{y}"


def _park_tile(served: Served, park: str, z: int) -> str:
    first = fget(served, f"/api/parcels?park={quote(park)}&limit=1").json()["features"][0]
    return _tile_of(served, first["id"], z)


@pytest.mark.parametrize("z", [12, 16])
def test_postgis_tiles_carry_what_the_file_tiles_carry(served, z):
    park = served.parks[0]
    t = _park_tile(served, park, z)
    path = f"/api/tiles/{quote(park)}/{t}.pbf?tiles=1"
    from_files = _tile(served, fget, path)
    from_db = _tile(served, dget, path)
    assert from_db and set(from_db) == set(from_files)
    for pid, f in from_db.items():
        pa, pb = from_files[pid]["properties"], f["properties"]
        assert pa.keys() == pb.keys(), pid
        assert set(pb) <= set(maps.tile_properties(z)), pid  # no review state
        for k in pa:
            assert pb[k] == pytest.approx(pa[k]) if isinstance(pa[k], float) else pb[k] == pa[k], (pid, k)


def test_a_stored_run_serves_its_prebuilt_tiles_from_the_database(served, pg_url):
    """``evaluate --db`` cut the run's tiles and stored them beside it: the service (OUT_DIR gone) serves
    them, with the flag points of the overview zooms that only the archive has, immutable, 304 on a repeat,
    and a committee's tile holds only its park."""
    with psycopg.connect(pg_url) as conn:
        n, lo, hi = conn.execute(
            "SELECT tiles, min_zoom, max_zoom FROM geo_eval.run_tile_sets WHERE run_id = %s", (served.run_id,)
        ).fetchone()
        assert (
            conn.execute("SELECT count(*) FROM geo_eval.run_tiles WHERE run_id = %s", (served.run_id,)).fetchone()[0]
            == n
            > 0
        )
    assert (lo, hi) == (6, 15)
    park = served.parks[0]
    t = _park_tile(served, park, 8)
    r = dget(served, f"/api/tiles/{t}.pbf")
    assert r.status_code == 200 and r.headers["cache-control"] == "private, max-age=86400, immutable"
    layers = mapbox_vector_tile.decode(r.content)
    assert {"parcels", "flagged"} <= set(layers)
    assert {f["properties"].get("park") for f in layers["flagged"]["features"]} >= set(served.parks[:2])
    again = served.db.get(f"/api/tiles/{t}.pbf", headers={**served.h("rev"), "If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
    mine = mapbox_vector_tile.decode(dget(served, f"/api/tiles/{t}.pbf", "com").content)
    for layer in mine.values():
        assert {f["properties"].get("park") for f in layer["features"]} == {park}


def test_a_review_changes_no_postgis_tile_and_shows_in_the_review_states(served):
    park, other = served.parks[0], served.parks[1]
    flags = dget(served, f"/api/flags?park={quote(park)}&limit=10000").json()["features"]
    fid, pid = flags[0]["properties"]["flag_id"], flags[0]["properties"]["parcel_id"]
    paths = [f"/api/tiles/{quote(park)}/{_tile_of(served, pid, z)}.pbf" for z in (12, 14, 16)]
    paths.append(f"/api/tiles/{_tile_of(served, pid, 16)}.pbf")
    before = {p: dget(served, p) for p in paths}
    tile = _tile(served, dget, paths[-2])[pid]["properties"]
    assert tile["n_flags"] >= 1 and "review" not in tile
    assert not any(w in tile["flags"] for w in ("待复核", "确认", "排除", "待核查"))  # 标记：原因 lines only
    states_path = f"/api/maps/{quote(park, safe='')}/reviews.json"
    states = dget(served, states_path)
    assert states.status_code == 200 and states.json()["run_id"] == served.run_id
    assert fid not in states.json()["states"]
    r = served.db.patch(
        f"/api/flags/{quote(fid)}",
        json={"status": "confirmed", "comment": "已到现场", "version": 0},
        headers=served.h("rev"),
    )
    assert r.status_code == 200, r.text
    # the same bytes and ETags, from this service and from a fresh one that cuts every tile anew
    with TestClient(create_app(served.db_settings)) as fresh:
        for p, old in before.items():
            for client in (served.db, fresh):
                new = client.get(p, headers=served.h("rev"))
                assert new.status_code == 200, p
                assert new.content == old.content and new.headers["etag"] == old.headers["etag"], p
                assert new.headers["cache-control"] == "private, max-age=86400, immutable"
        assert (
            fresh.get(
                paths[0], headers={**served.h("rev"), "If-None-Match": before[paths[0]].headers["etag"]}
            ).status_code
            == 304
        )
    # the review is in the run's review states (stored in PostGIS), in Beijing time
    after = served.db.get(states_path, headers={**served.h("com"), "If-None-Match": states.headers["etag"]})
    assert after.status_code == 200
    status, version, comment, reviewer, at, carried = after.json()["states"][fid]
    assert carried == ""  # reviewed in this run, not carried over from an earlier version
    assert (status, version, comment, reviewer) == ("confirmed", 1, "已到现场", "rev")
    assert at == r.json()["review"]["updated_at_label"] and len(at) == len("2026-12-06 19:57")
    assert (
        served.db.get(states_path, headers={**served.h("com"), "If-None-Match": after.headers["etag"]}).status_code
        == 304
    )
    # a park committee sees its own park's tiles and states only
    assert _tile(served, dget, paths[-2], "com")
    assert dget(served, f"/api/tiles/{quote(other)}/{_park_tile(served, other, 16)}.pbf", "com").status_code == 403
    assert dget(served, f"/api/maps/{quote(other, safe='')}/reviews.json", "com").status_code == 403
    overview = _tile(served, dget, f"/api/tiles/{_park_tile(served, other, 12)}.pbf", "com")
    parks_seen = {dget(served, f"/api/parcels/{quote(p)}").json()["properties"]["park"] for p in list(overview)[:20]}
    assert parks_seen <= {park}
    other_flags = dget(served, f"/api/flags?park={quote(other)}&limit=10000").json()["features"]
    other_fid = other_flags[0]["properties"]["flag_id"]
    r = served.db.patch(
        f"/api/flags/{quote(other_fid)}", json={"status": "site_visit", "version": 0}, headers=served.h("rev")
    )
    assert r.status_code == 200, r.text
    assert other_fid in dget(served, "/api/maps/reviews.json").json()["states"]
    seen = dget(served, "/api/maps/reviews.json", "com").json()["states"]
    assert fid in seen and other_fid not in seen


def test_postgis_tiles_for_a_gaode_basemap_are_shifted_to_gcj02(served):
    park = served.parks[0]
    t = _park_tile(served, park, 15)
    plain = _tile(served, dget, f"/api/tiles/{quote(park)}/{t}.pbf")
    shifted = _tile(served, dget, f"/api/tiles/{quote(park)}/{t}.pbf?basemap=gaode")
    common = set(plain) & set(shifted)
    assert common
    pid = sorted(common)[0]

    def centre(f: dict) -> tuple[float, float]:
        g = shapely.geometry.shape(f["geometry"])
        return g.centroid.x, g.centroid.y

    (x0, y0), (x1, y1) = centre(plain[pid]), centre(shifted[pid])
    # GCJ-02 lies ~500–600 m east and ~100 m north of WGS-84 near Lianyungang; at zoom 15 a tile is
    # ~1 km wide in 4096 units (y grows downwards in tile units)
    assert 1500 < x1 - x0 < 3000 and 100 < y0 - y1 < 700


def test_a_province_on_the_gaode_basemap_gets_no_database_tiles_below_zoom_13(served):
    """Tiles on the 高德 basemap have no pre-built set: PostGIS cuts them per request. For a map of more
    parcels than GEO_EVAL_MAP_PROVINCE_PARCELS (a province) the page draws them from zoom 13, and the route
    answers a shallower tile empty instead of having ST_AsMVT cut a province's parcels in one request."""
    park = served.parks[0]
    province = served.db_settings.model_copy(update={"map_province_parcels": 10})
    with TestClient(create_app(province)) as big:

        def get(s: Served, path: str, who: str = "rev"):
            return big.get(path, headers=s.h(who))

        for z, drawn in ((12, False), (13, True)):
            t = _park_tile(served, park, z)
            for path in (f"/api/tiles/{t}.pbf?basemap=gaode", f"/api/tiles/{quote(park)}/{t}.pbf?basemap=gaode"):
                assert bool(_tile(served, get, path)) is drawn, path
            assert _tile(served, get, f"/api/tiles/{t}.pbf")  # from the stored tile set, at any zoom
        page = get(served, "/maps/?basemap=gaode")
        assert page.status_code == 200, page.text[:300]
        assert '"minZoom":13,' in page.text and '"prebuilt":false' in page.text
    small = _park_tile(served, park, 12)  # the same tile where the map is not a province's: cut by PostGIS
    assert _tile(served, dget, f"/api/tiles/{small}.pbf?basemap=gaode")


def _stored_tiles(url: str, run_id: str) -> dict[tuple[int, int, int], bytes]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT z, x, y, data FROM geo_eval.run_tiles WHERE run_id = %s", (run_id,)).fetchall()
    return {(z, x, y): bytes(d) for z, x, y, d in rows}


def test_a_stored_tile_set_exported_as_mbtiles_holds_every_tile_as_stored(served, tmp_path):
    from geo_eval.db.tiles import export_tile_set, tile_set, tile_set_key

    assert served.db_settings.database_url is not None
    url, run_id = served.db_settings.database_url.get_secret_value(), served.run_id
    stored = _stored_tiles(url, run_id)
    with psycopg.connect(url, autocommit=True) as conn:
        record = PostgresStore(url).get_run(run_id)
        found = tile_set(conn, run_id, record.stored_at)
        assert found is not None and found.min_zoom == 6 and found.max_zoom == 15
        assert export_tile_set(conn, run_id, record.stored_at, tmp_path / "t.mbtiles") == len(stored) > 50
    assert [p.name for p in tmp_path.iterdir()] == ["t.mbtiles"]  # written beside it, renamed into place
    with sqlite3.connect(tmp_path / "t.mbtiles") as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
        meta = dict(db.execute("SELECT name, value FROM metadata").fetchall())
    assert {
        (z, x, (1 << z) - 1 - row): bytes(d) for z, x, row, d in rows
    } == stored  # MBTiles rows count from the south
    assert (meta["minzoom"], meta["maxzoom"], meta["geo_eval_run_id"]) == ("6", "15", run_id)
    assert meta["geo_eval_tile_set"] == tile_set_key(record.stored_at, found.built_at)
    assert json.loads(meta["geo_eval_parks"]) == served.parks


def test_a_server_serves_a_stored_tile_set_from_its_own_copy(served, tmp_path, monkeypatch):
    """The first use of a run's stored tiles writes the server's own copy of them beside the run's columnar
    copy; tiles are read from the database until it is there, then from it (no query per tile)."""
    from geo_eval.db import tiles as db_tiles

    assert served.db_settings.database_url is not None
    stored = _stored_tiles(served.db_settings.database_url.get_secret_value(), served.run_id)
    overview = sorted(k for k in stored if k[0] == 12)
    settings = served.db_settings.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(settings)) as c:
        first = c.get(f"/api/tiles/{'/'.join(map(str, overview[0]))}.pbf", headers=served.h("rev"))
        assert first.status_code == 200 and first.content == stored[overview[0]]
        for _ in range(200):  # written on a thread of its own
            copies = list((tmp_path / "data").rglob("tiles-*.mbtiles"))
            archives = [a for a in c.app.state.tile_archives._items.values() if a is not None]
            if copies and archives and archives[0].local is not None:
                break
            time.sleep(0.05)
        assert len(copies) == 1 and archives[0].local is not None

        def no_query(*args: object, **kwargs: object) -> bytes:
            raise AssertionError("a tile read from the database after the server's copy was there")

        monkeypatch.setattr(db_tiles, "read_tile", no_query)
        for key in [*overview, *sorted(k for k in stored if k[0] == 15)[:20]]:
            r = c.get(f"/api/tiles/{'/'.join(map(str, key))}.pbf", headers=served.h("rev"))
            assert r.status_code == 200 and r.content == stored[key], key
    monkeypatch.undo()
    # a copy of another tile set (here: renamed) is replaced by one of this set
    other = copies[0].with_name("tiles-0000.mbtiles")
    copies[0].rename(other)
    with TestClient(create_app(settings)) as c:
        r = c.get(f"/api/tiles/{'/'.join(map(str, overview[-1]))}.pbf", headers=served.h("rev"))
        assert r.status_code == 200 and r.content == stored[overview[-1]]
        for _ in range(200):
            if not other.exists() and copies[0].exists():
                break
            time.sleep(0.05)
    assert not other.exists() and copies[0].exists()


def test_two_workers_of_a_machine_copy_a_stored_tile_set_once_and_both_read_it(served, tmp_path, monkeypatch):
    """Two services on one data directory (as two workers of a machine) opening a run's stored tiles at once:
    one writes the machine's copy while the other waits for it (the copy's lock), and both read it."""
    import threading

    from geo_eval.db import tiles as db_tiles

    assert served.db_settings.database_url is not None
    stored = _stored_tiles(served.db_settings.database_url.get_secret_value(), served.run_id)
    key = min(k for k in stored if k[0] == 12)
    exports: list[Path] = []
    export = db_tiles.export_tile_set
    slow = threading.Event()

    def counted(conn, run_id, stored_at, target):
        exports.append(target)
        slow.wait(0.5)  # long enough for the other worker to ask for the lock meanwhile
        return export(conn, run_id, stored_at, target)

    monkeypatch.setattr(db_tiles, "export_tile_set", counted)
    settings = served.db_settings.model_copy(update={"data_dir": tmp_path / "data"})
    with TestClient(create_app(settings)) as one, TestClient(create_app(settings)) as two:
        for c in (one, two):
            r = c.get(f"/api/tiles/{'/'.join(map(str, key))}.pbf", headers=served.h("rev"))
            assert r.status_code == 200 and r.content == stored[key]
        for _ in range(200):
            archives = [a for c in (one, two) for a in c.app.state.tile_archives._items.values() if a is not None]
            if len(archives) == 2 and all(a.local is not None for a in archives):
                break
            time.sleep(0.05)
        assert len(archives) == 2 and all(a.local is not None for a in archives)
        assert len(exports) == 1 and {a.local.path for a in archives} == {exports[0]}
    assert [p.name for p in exports[0].parent.glob("*.mbtiles")] == [exports[0].name]


def test_an_evaluation_started_through_the_service_on_postgis_is_stored_there(pg_db, tmp_path):
    store = PostgresStore(pg_db)
    token = store.add_user("管理员", "admin")[1]
    store.close()
    settings = Settings(data_dir=tmp_path / "data", secret_key="s" * 48, database_url=pg_db, datasets_dir=SAMPLE.parent)
    app = create_app(settings)
    with TestClient(app) as c:
        r = c.post(
            "/api/runs",
            json={"dataset_dir": str(SAMPLE), "scheme": SCHEME},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        run_id = r.json()["run_id"]
    store = PostgresStore(pg_db)
    try:
        rec = store.get_run(run_id)
        assert rec.stored and rec.srid == 4528
        assert run_count(pg_db, run_id)["parcel_results"] == 790
        # the route lets the evaluation go, then cuts the run's tiles and stores them beside it
        tile_sets = sql(pg_db, "SELECT stored_at, tiles FROM geo_eval.run_tile_sets WHERE run_id = %s", (run_id,))
        assert len(tile_sets) == 1 and tile_sets[0][0] == rec.stored_at and tile_sets[0][1] > 0
        entry = next(a for a in store.audit(run_id=run_id) if a.action == "run.add")
        assert entry.actor == "管理员"
    finally:
        store.close()

"""Pre-built tile archives (``tiles.mbtiles``, cut by tippecanoe when a run is registered) and the tile
routes that serve them.

- at park zooms (13–19) the archive's tiles hold the same parcels, ids and properties as the tiles the
  route cuts itself (decoded and compared feature by feature);
- below them no tile exceeds the size bound and every flagged parcel is still there (as a point, or in a
  merged point that counts it), on a dense synthetic park;
- ETag and ``immutable``; ``If-None-Match`` gets 304; committee scoping holds on every tile;
- an OUT_DIR rewritten after its archive was cut is not served from the stale archive;
- a run registered while the service runs is served from its archive without a restart.
"""

from __future__ import annotations

import math
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import quote

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from shapely.geometry import shape

from api.app import create_app
from api.mapdata import MapScope, map_caches, tile_source
from api.rundata import load_run_data
from api.settings import Settings
from geo_eval import maps
from geo_eval.io.runtiles import ARCHIVE_FILE, build_run_tiles, with_gids
from geo_eval.maps.archive import (
    ARCHIVE_MAX_ZOOM,
    ARCHIVE_MIN_ZOOM,
    MAX_TILE_BYTES,
    OVERVIEW_MAX_ZOOM,
    build_archive,
)
from geo_eval.maps.attributes import TILE_PROPERTIES
from geo_eval.maps.tiles import TILE_EXTENT, lonlat_to_tile, mvt_tile
from geo_eval.storage import open_store, run_record_from_out_dir

SECRET = "t" * 48
IMMUTABLE = "private, max-age=86400, immutable"


def decode(content: bytes) -> dict:
    return mapbox_vector_tile.decode(content, default_options={"y_coord_down": True}) if content else {}


def tiles_covering(bounds: np.ndarray, z: int) -> list[tuple[int, int, int]]:
    west, south, east, north = bounds
    x0, y0 = lonlat_to_tile(west, north, z)
    x1, y1 = lonlat_to_tile(east, south, z)
    return [(z, x, y) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


class Svc:
    def __init__(self, client: TestClient, tokens: dict[str, str], out: Path, run_id: str, parks: list[str]) -> None:
        self.client, self.tokens, self.out, self.run_id, self.parks = client, tokens, out, run_id, parks

    def get(self, path: str, who: str, **headers: str):
        return self.client.get(path, headers={"Authorization": f"Bearer {self.tokens[who]}", **headers})


@pytest.fixture(scope="module")
def svc(sample_runs, tmp_path_factory):
    base = tmp_path_factory.mktemp("archive")
    out = base / "2025"
    shutil.copytree(sample_runs[2025], out, ignore=shutil.ignore_patterns(ARCHIVE_FILE))
    found = run_record_from_out_dir(out)
    info = build_run_tiles(out, found.run_id)
    assert info.path == out / ARCHIVE_FILE and info.tiles > 0
    store = open_store(base / "data")
    store.add_run(found, actor="test")
    parks = sorted(pd.read_csv(out / "enterprises.csv", dtype=str)["park"].dropna().unique())
    tokens = {
        "rev": store.add_user("rev", "reviewer", [])[1],
        "admin": store.add_user("admin", "admin", [])[1],
        "com": store.add_user("com", "committee", [parks[0]])[1],
    }
    store.close()
    app = create_app(Settings(data_dir=base / "data", secret_key=SECRET))
    with TestClient(app, follow_redirects=False) as client:
        yield Svc(client, tokens, out, found.run_id, parks)


@pytest.fixture(scope="module")
def cut(svc):
    """The tiles the route cuts itself for a scope (the same code the route falls back to)."""
    data = load_run_data(run_record_from_out_dir(svc.out))
    caches = map_caches(SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace())))  # type: ignore[arg-type]

    def tile(scope: MapScope, z: int, x: int, y: int) -> bytes:
        src = tile_source(data, caches, scope, "none")
        return mvt_tile(src, z, x, y, properties=maps.tile_properties(z), id_column="gid")

    return data, tile


def features(content: bytes, layer: str = "parcels") -> dict[int, dict]:
    return {f["id"]: f["properties"] for f in decode(content).get(layer, {}).get("features", [])}


def same_properties(a: dict, b: dict) -> bool:
    if set(a) != set(b):
        return False
    return all(math.isclose(a[k], b[k], rel_tol=1e-6) if isinstance(a[k], float) else a[k] == b[k] for k in a)


def park_path(park: str, z: int, x: int, y: int) -> str:
    return f"/api/tiles/{quote(park, safe='')}/{z}/{x}/{y}.pbf"


def clearly_inside(content: bytes, area: float) -> set[int]:
    """Ids of the parcels covering more than ``area`` square units of the tile proper (not only its buffer)."""
    proper = shapely.box(0, 0, TILE_EXTENT, TILE_EXTENT)
    feats = decode(content).get("parcels", {}).get("features", [])
    return {f["id"] for f in feats if shapely.intersection(shape(f["geometry"]), proper).area > area}


@pytest.mark.parametrize("z", [13, 14, 15, 16, 19])
def test_park_zoom_tiles_match_the_routes_own_tiles(svc, cut, z) -> None:
    """Stored zooms: the same features, in the buffer too. Deeper zooms are cut from zoom 15, whose vertices
    are whole zoom-15 units (2^dz units here): a parcel that covers more than a sliver of the tile in one
    is in the other (one that only touches the tile's edge or buffer may be in either)."""
    data, tile = cut
    park = svc.parks[0]
    rows = data.parcels.loc[data.parcels["park"] == park]
    step = float(1 << max(z - ARCHIVE_MAX_ZOOM, 0))  # a zoom-15 unit, in this zoom's units
    compared = 0
    if z <= ARCHIVE_MAX_ZOOM:
        over = tiles_covering(rows.total_bounds, z)
    else:  # every tile of a park at zoom 19 is thousands: those over every 25th parcel
        boxes = rows.geometry.bounds.to_numpy()[::25]
        over = sorted({t for b in boxes for t in tiles_covering(b, z)})
    for _, x, y in over:
        served = svc.get(park_path(park, z, x, y), "rev")
        assert served.status_code == 200
        own = tile(MapScope.of_park(park), z, x, y)
        got, want = features(served.content), features(own)
        if z <= ARCHIVE_MAX_ZOOM:
            assert set(got) == set(want), (z, x, y, set(got) ^ set(want))
        else:
            sliver = 16 * step * step
            assert clearly_inside(served.content, sliver) <= set(want), (z, x, y)
            assert clearly_inside(own, sliver) <= set(got), (z, x, y)
        for fid in set(got) & set(want):
            diff = {k: (got[fid].get(k), want[fid].get(k)) for k in set(got[fid]) | set(want[fid])}
            assert same_properties(got[fid], want[fid]), (z, x, y, fid, diff)
        assert all(set(p) <= set(maps.tile_properties(z)) for p in got.values())
        compared += len(got)
    assert compared >= (len(rows) if z <= ARCHIVE_MAX_ZOOM else len(boxes))  # every parcel was in some tile
    # the ids are the parcels' rows in the run's parcel layer, plus one
    c = rows.geometry.iloc[0].centroid
    fid, props = next(
        iter(features(svc.get(park_path(park, 15, *lonlat_to_tile(c.x, c.y, 15)), "rev").content).items())
    )
    assert data.parcels["parcel_id"].iloc[fid - 1] == props["parcel_id"]


def test_detail_zooms_carry_every_popup_column(svc, cut) -> None:
    data, _ = cut
    c = data.parcels.geometry.iloc[0].centroid
    props = features(svc.get(f"/api/tiles/14/{'/'.join(map(str, lonlat_to_tile(c.x, c.y, 14)))}.pbf", "rev").content)
    assert props and all(set(p) <= set(TILE_PROPERTIES) for p in props.values())
    assert any({"parcel_id", "park", "area_mu", "grade"} <= set(p) for p in props.values())


def test_archive_tiles_are_immutable_with_an_etag_and_304(svc, cut) -> None:
    data, _ = cut
    c = data.parcels.geometry.iloc[0].centroid
    path = f"/api/tiles/{ARCHIVE_MIN_ZOOM + 2}/{'/'.join(map(str, lonlat_to_tile(c.x, c.y, ARCHIVE_MIN_ZOOM + 2)))}.pbf"
    r = svc.get(path, "rev")
    assert r.status_code == 200 and r.headers["cache-control"] == IMMUTABLE
    assert "flagged" in decode(r.content)  # from the archive: the route's own tiles have no flag points
    again = svc.get(path, "rev", **{"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == r.headers["etag"]
    assert svc.get(path, "com").headers["etag"] != r.headers["etag"]  # scoped: another answer, another tag


def every_tile(data, own: str) -> list[tuple[int, int, int]]:
    """Every tile of the run's extent at zooms 6–14, and at zooms 15 and 16 (cut from 15) those over the park
    (its borders with the other parks included)."""
    rows = data.parcels.loc[data.parcels["park"] == own]
    every = [t for z in range(ARCHIVE_MIN_ZOOM, ARCHIVE_MAX_ZOOM) for t in tiles_covering(data.parcels.total_bounds, z)]
    near = [t for z in (ARCHIVE_MAX_ZOOM, ARCHIVE_MAX_ZOOM + 1) for t in tiles_covering(rows.total_bounds, z)]
    return every + near


def test_committee_tiles_hold_only_its_park_at_every_zoom(svc, cut) -> None:
    data, _ = cut
    own = svc.parks[0]
    seen_other = set()
    for z, x, y in every_tile(data, own):
        mine = decode(svc.get(f"/api/tiles/{z}/{x}/{y}.pbf", "com").content)
        for layer in mine.values():
            assert {f["properties"].get("park") for f in layer["features"]} <= {own}, (z, x, y)
        everyone = decode(svc.get(f"/api/tiles/{z}/{x}/{y}.pbf", "rev").content)
        for layer in everyone.values():
            seen_other |= {f["properties"].get("park") for f in layer["features"]} - {own}
        assert svc.get(park_path(svc.parks[1], z, x, y), "com").status_code == 403
    assert seen_other  # the reviewer's overview does show the other parks in the same tiles


def test_overview_zooms_keep_every_flagged_parcel(svc, cut) -> None:
    data, _ = cut
    flagged = int((data.flags.groupby("parcel_id").size() > 0).sum())
    for z in range(ARCHIVE_MIN_ZOOM, OVERVIEW_MAX_ZOOM + 1):
        counted: dict[int, int] = {}
        for _, x, y in tiles_covering(data.parcels.total_bounds, z):
            for f in (
                decode(svc.get(f"/api/tiles/{z}/{x}/{y}.pbf", "rev").content).get("flagged", {}).get("features", [])
            ):
                counted[f["id"]] = f["properties"]["n_parcels"]
        assert sum(counted.values()) == flagged, z


def test_a_rewritten_out_dir_is_not_served_from_its_stale_archive(svc, tmp_path) -> None:
    from api.rundata import RunCache
    from api.tilearchive import ArchiveCache

    out = tmp_path / "run"
    shutil.copytree(svc.out, out)
    record = run_record_from_out_dir(out)
    archive = ArchiveCache().get(record, RunCache().stamp(record), stored=False)
    assert archive is not None and archive.parks == frozenset(svc.parks)
    manifest = out / "manifest.json"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("{", '{"rewritten": 1, ', 1), encoding="utf-8")
    assert ArchiveCache().get(record, RunCache().stamp(record), stored=False) is None


def test_tiles_are_served_without_reading_the_run_and_an_unknown_park_is_404(svc) -> None:
    cache = svc.client.app.state.run_cache
    cache.clear()
    park = svc.parks[0]
    r = svc.get(park_path(park, 8, 212, 101), "rev")
    assert r.status_code == 200 and "flagged" in decode(r.content)
    assert not cache._items  # the run itself was not read for it
    assert svc.get(park_path("没有的园区", 8, 212, 101), "rev").status_code == 404
    assert svc.get(park_path(svc.parks[1], 8, 212, 101), "com").status_code == 403


def test_the_tile_lane_answers_as_the_route_and_leaves_refusals_to_it(svc, cut, monkeypatch) -> None:
    """Ordinary tile requests are answered by :class:`api.tilelane.TileLane` (counted), with the body and
    headers the route gives (asked with a parameter the lane does not take, so the route answers);
    refusals go on to the route and keep its words."""
    import api.tilelane as lane

    answered: list[str] = []
    original = lane._tile

    def counting(request, *args):
        response = original(request, *args)
        if response is not None:
            answered.append(request.url.path)
        return response

    monkeypatch.setattr(lane, "_tile", counting)
    for who in ("com", "rev"):  # the gate verifies a token once (the route); the lane takes verified ones
        assert svc.get("/api/me", who).status_code == 200
    data, _ = cut
    own = svc.parks[0]
    rows = data.parcels.loc[data.parcels["park"] == own]
    c = rows.geometry.iloc[0].representative_point()
    for z in (8, 14, 17):
        x, y = lonlat_to_tile(c.x, c.y, z)
        for path, who in ((park_path(own, z, x, y), "com"), (f"/api/tiles/{z}/{x}/{y}.pbf", "rev")):
            before = len(answered)
            fast = svc.get(path, who)
            assert len(answered) == before + 1, path
            slow = svc.get(path + "?by=route", who)  # not a lane parameter: FastAPI's route answers
            assert len(answered) == before + 1, path
            assert fast.status_code == slow.status_code == 200 and fast.content == slow.content and fast.content
            for h in ("etag", "cache-control", "content-type", "x-content-type-options", "content-security-policy"):
                assert fast.headers.get(h) == slow.headers.get(h), h
            again = svc.get(path, who, **{"If-None-Match": fast.headers["etag"]})
            assert again.status_code == 304 and len(answered) == before + 2
    x, y = lonlat_to_tile(c.x, c.y, 14)
    before = len(answered)
    other = svc.get(park_path(svc.parks[1], 14, x, y), "com")
    assert other.status_code == 403 and svc.parks[1] in other.json()["detail"]
    assert svc.client.get(park_path(own, 14, x, y)).status_code == 401
    assert svc.client.get(park_path(own, 14, x, y), headers={"Authorization": "Bearer nope"}).status_code == 401
    assert svc.get(park_path("没有的园区", 14, x, y), "rev").status_code == 404
    assert svc.get(park_path(own, 14, x, y) + "?year=1800", "rev").status_code == 422
    assert len(answered) == before  # every refusal was the route's


def test_the_lane_reads_the_record_of_a_run_named_in_the_url_at_most_once_a_second(svc, cut, monkeypatch) -> None:
    """A map page's tile URLs name their run (``?run=``): the lane asks the store for that run's record once
    per RUN_RECORD_TTL_S, not once per tile; the user is still checked by the store on every tile; a run
    that is not there is the route's 404, and a tile of the latest run (no ``?run=``) asks the store each time."""
    import api.tilelane as lane

    state = svc.client.app.state
    monkeypatch.setattr(state, "tile_run_records", lane.RunRecords(), raising=False)
    asked: list[str] = []
    users: list[str] = []
    get_run, authenticate, latest = state.store.get_run, state.store.authenticate, state.store.latest_run
    monkeypatch.setattr(state.store, "get_run", lambda run_id: (asked.append(run_id), get_run(run_id))[1])
    monkeypatch.setattr(state.store, "authenticate", lambda token: (users.append(token), authenticate(token))[1])
    monkeypatch.setattr(state.store, "latest_run", lambda year=None: (asked.append("latest"), latest(year))[1])
    assert svc.get("/api/me", "rev").status_code == 200
    data, _ = cut
    c = data.parcels.geometry.iloc[0].representative_point()
    tiles = [lonlat_to_tile(c.x, c.y, z) for z in (10, 12, 14, 16)]
    paths = [f"/api/tiles/{z}/{x}/{y}.pbf?run={svc.run_id}" for z, (x, y) in zip((10, 12, 14, 16), tiles, strict=True)]
    monkeypatch.setattr(lane, "RUN_RECORD_TTL_S", 60.0)
    users.clear()
    for path in paths:
        r = svc.get(path, "rev")
        assert r.status_code == 200 and r.content, path
    assert asked == [svc.run_id] and len(users) == len(paths)
    assert svc.get("/api/tiles/14/1/1.pbf?run=no-such-run", "rev").status_code == 404
    assert svc.get(paths[0].split("?")[0], "rev").status_code == 200  # the latest run: asked each time
    assert asked[1:] == ["no-such-run", "no-such-run", "latest"]  # the lane's try, then the route's
    monkeypatch.setattr(lane, "RUN_RECORD_TTL_S", 0.0)
    asked.clear()
    for path in paths:
        assert svc.get(path, "rev").status_code == 200
    assert asked == [svc.run_id] * len(paths)


def dense_park(n_side: int = 120, seed: int = 1) -> gpd.GeoDataFrame:
    """``n_side``² parcels of about 100 m × 80 m in one park (the bench's cadastre), long popup texts, a third flagged."""
    rng = np.random.default_rng(seed)
    lon0, lat0, dx, dy = 119.2, 34.6, 0.0011, 0.00072
    i, j = np.meshgrid(np.arange(n_side), np.arange(n_side))
    i, j = i.ravel(), j.ravel()
    geoms = shapely.box(lon0 + i * dx, lat0 + j * dy, lon0 + (i + 0.93) * dx, lat0 + (j + 0.93) * dy)
    n = len(geoms)
    n_flags = np.where(rng.random(n) < 0.33, rng.integers(1, 3, n), 0)
    ids = [f"320706{k:012d}GB{k % 99999:05d}" for k in range(n)]
    frame = pd.DataFrame(
        {
            "parcel_id": ids,
            "park": "稠密工业园",
            "area_mu": rng.uniform(2, 20, n).round(4),
            "holder": [f"913207{k:012d}" for k in range(n)],
            "users": [f"连云港某某{k}机械制造有限公司（913207{k:012d}）" for k in range(n)],
            "main_name": [f"连云港某某{k}机械制造有限公司" for k in range(n)],
            "grade": rng.choice(["A", "B", "C", "D"], n),
            "tax_per_mu": rng.lognormal(2, 1, n).round(4),
            "block_id": None,
            "flags": np.where(n_flags > 0, "低效用地：容积率 0.35，低于控制指标 0.8", None),
            "n_flags": n_flags,
        },
        index=pd.Index(ids),
    )
    return with_gids(gpd.GeoDataFrame(frame, geometry=geoms, crs=4326))


def test_overview_tiles_of_a_dense_park_stay_small_and_keep_every_flag(tmp_path) -> None:
    src = dense_park()
    target = tmp_path / "dense.mbtiles"
    info = build_archive(src, target, run_id="r1", manifest_sha256="0" * 64)
    assert info.max_tile_bytes <= MAX_TILE_BYTES
    flagged = int((src["n_flags"] > 0).sum())
    with sqlite3.connect(target) as db:
        rows = db.execute(
            "SELECT zoom_level, tile_data FROM tiles WHERE zoom_level <= ?", (OVERVIEW_MAX_ZOOM,)
        ).fetchall()
        z15 = db.execute("SELECT count(*) FROM tiles WHERE zoom_level = 15").fetchone()[0]
    assert z15 > 0
    by_zoom: dict[int, dict[int, int]] = {}
    thinned = False
    for z, data in rows:
        layers = decode(bytes(data))
        for f in layers.get("flagged", {}).get("features", []):
            by_zoom.setdefault(z, {})[f["id"]] = f["properties"]["n_parcels"]
        thinned |= len(layers.get("parcels", {}).get("features", [])) < len(src) and z == ARCHIVE_MIN_ZOOM
    assert sorted(by_zoom) == list(range(ARCHIVE_MIN_ZOOM, OVERVIEW_MAX_ZOOM + 1))
    assert all(sum(c.values()) == flagged for c in by_zoom.values())
    assert thinned


def test_runs_add_cuts_the_tiles_and_runs_tiles_cuts_them_again(sample_runs, tmp_path) -> None:
    from typer.testing import CliRunner

    from geo_eval.cli import app

    runner = CliRunner()
    where = ["--data-dir", str(tmp_path / "data")]
    fresh = shutil.ignore_patterns(ARCHIVE_FILE)  # as `geo-eval evaluate` left them
    out = Path(shutil.copytree(sample_runs[2024], tmp_path / "2024", ignore=fresh))
    r = runner.invoke(app, ["runs", "add", str(out), *where])
    assert r.exit_code == 0, r.output
    assert "地图瓦片已切割" in r.output and (out / ARCHIVE_FILE).is_file()
    copies = [p for p in (tmp_path / "data" / "runcopies").glob("*/*") if p.is_dir()]  # the service's copy too
    assert "已生成服务用的列式副本" in r.output and len(copies) == 1 and (copies[0] / "frames.json").is_file()
    (out / ARCHIVE_FILE).unlink()
    r = runner.invoke(app, ["runs", "tiles", str(out), *where])
    assert r.exit_code == 0 and "地图瓦片已切割" in r.output and (out / ARCHIVE_FILE).is_file(), r.output
    other = Path(shutil.copytree(sample_runs[2025], tmp_path / "2025", ignore=fresh))
    r = runner.invoke(app, ["runs", "tiles", str(other), *where])  # not registered: named, nothing cut
    assert r.exit_code == 2 and not (other / ARCHIVE_FILE).exists(), r.output
    r = runner.invoke(app, ["runs", "add", str(other), "--no-tiles", *where])
    assert r.exit_code == 0 and not (other / ARCHIVE_FILE).exists(), r.output
    assert len([p for p in (tmp_path / "data" / "runcopies").glob("*/*") if p.is_dir()]) == 1

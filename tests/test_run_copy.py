"""The columnar copy of a run (api/runcopy.py): the service reads a run from its outputs once, writes what it
made as Arrow files under the data directory, and every later read (another worker, a restart) maps them.

Checked on the sample's 2025 run: the copy holds the same frames, values and geometries as the outputs;
a second reader uses the copy without touching the outputs; a rewritten OUT_DIR gets a new copy and the old
one goes; a damaged copy is skipped and the run read from its outputs; the service answers the same
GeoJSON and rankings from the copy.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient

from api import mapdata, rundata
from api.app import RUN_COPIES, create_app
from api.geojson import feature
from api.mapdata import (
    MapCache,
    MapCaches,
    MapScope,
    flag_rows,
    parcel_at,
    parcel_changes,
    parcel_popup,
    scope_blocks,
    tile_source,
)
from api.routes.parcels import prepared_features
from api.runcopy import FRAMES, copy_dir
from api.rundata import RunCache, RunData, load_run_data, map_enterprises, records, search_rows
from api.settings import Settings
from geo_eval import maps
from geo_eval.maps import tiles
from geo_eval.storage import RunFilesError, RunRecord, open_store, run_record_from_out_dir


@pytest.fixture
def run(sample_runs, tmp_path) -> RunRecord:
    out = tmp_path / "2025"
    shutil.copytree(sample_runs[2025], out)
    return run_record_from_out_dir(out)


def plain(df: pd.DataFrame) -> list[list[object]]:
    """Rows of ``df`` with every missing value as None and numbers as floats (dtypes aside)."""
    obj = df.astype(object)
    return [
        [None if pd.isna(v) else (float(v) if isinstance(v, int | float | np.number) else v) for v in r]
        for r in obj.itertuples(index=False)
    ]


def test_the_copy_holds_what_the_outputs_hold(run, tmp_path) -> None:
    direct = load_run_data(run)
    copied = RunCache(copies=tmp_path / "copies").get(run)
    target = copy_dir(tmp_path / "copies", run.run_id, RunCache().stamp(run))
    assert (target / "frames.json").is_file() and all((target / f"{f}.text.arrow").is_file() for f in FRAMES)
    assert copied.stamp == RunCache().stamp(run) and copied.source == "files" and copied.manifest == direct.manifest
    p, q = direct.parcels, copied.parcels
    assert len(q) == len(p) == 790 and list(q.columns) == list(p.columns) and q.crs == p.crs
    attrs = [c for c in p.columns if c != p.geometry.name]
    assert plain(q[attrs]) == plain(p[attrs])
    assert bool(shapely.equals_exact(q.geometry.array, p.geometry.array, tolerance=0).all())
    assert q.geometry.to_crs(4547).area.sum() == pytest.approx(p.geometry.to_crs(4547).area.sum(), rel=1e-12)
    assert [copied.parcel_geojson[i] for i in range(len(p))] == list(direct.parcel_geojson)
    assert list(copied.flags.index) == list(direct.flags.index) and len(copied.flags) > 0
    assert plain(copied.flags) == plain(direct.flags)
    assert copied.flags["parcel_pos"].tolist() == direct.flags["parcel_pos"].tolist()
    assert plain(copied.enterprises) == plain(direct.enterprises)
    for frame in ("parcels", "flags", "enterprises"):  # read as they were made
        a, b = getattr(direct, frame), getattr(copied, frame)
        assert [str(t) for t in b.dtypes] == [str(t) for t in a.dtypes], frame
    assert copied.enterprises["rank"].dtype == "Int64" and copied.enterprises["tax"].dtype == "float64"
    assert direct.blocks is not None and copied.blocks is not None and len(copied.blocks) == len(direct.blocks) > 0
    assert bool(shapely.equals_exact(copied.blocks.geometry.array, direct.blocks.geometry.array, tolerance=0).all())
    assert plain(copied.policies) == plain(direct.policies)
    # the parcels in a box are found the same way
    box = tuple(np.asarray(p.total_bounds) * [1, 1, 1, 1])
    w, s, e, n = box
    half = (w, s, (w + e) / 2, (s + n) / 2)
    assert copied.parcels_in_bbox(half).tolist() == direct.parcels_in_bbox(half).tolist() != []


def test_a_copy_keeps_its_texts_and_geometries_out_of_the_heap(run, tmp_path) -> None:
    """Read from its copy, a run holds no Python object per row: texts are Arrow strings mapped from the copy,
    numbers views of it, and geometries are made only for the rows a request takes, the same as the outputs'."""
    RunCache(copies=tmp_path / "copies").get(run)  # writes the copy
    copied = RunCache(copies=tmp_path / "copies").get(run)
    direct = load_run_data(run)
    for frame in (copied.parcel_table, copied.flags, copied.enterprises):
        for c in ("parcel_id", "park", "county", "uscc", "name", "flag_id"):
            if c in frame.columns:
                assert frame[c].dtype == "str", c
    assert copied.enterprises["tax"].to_numpy().flags.writeable is False  # a view of the mapped file
    geoms = copied.parcel_geometries
    assert not geoms.in_memory and "parcels" not in vars(copied)  # nothing made yet
    rows = copied.parcel_rows(frozenset([copied.parks[0]]))
    frame = copied.parcel_frame(rows)
    assert "parcels" not in vars(copied) and len(frame) == len(rows) > 10
    same = direct.parcels.iloc[rows]
    assert bool(shapely.equals_exact(frame.geometry.array, same.geometry.array, tolerance=0).all())
    assert frame["parcel_id"].tolist() == same["parcel_id"].tolist() and frame.crs == same.crs
    # the parcels in a box: from the bounds, then exactly, as an STRtree over every geometry finds them
    whole = direct.parcels
    w, s, e, n = whole.total_bounds
    for box in ((w, s, (w + e) / 2, (s + n) / 2), ((w + e) / 2, (s + n) / 2, e + 1, n + 1), (w - 1, s - 1, w, s)):
        expected = np.sort(whole.sindex.query(shapely.box(*box), predicate="intersects")).tolist()
        assert copied.parcels_in_bbox(box).tolist() == expected
    assert "parcels" not in vars(copied)
    # one parcel by its id, without a hash table of them all
    ids = direct.parcel_table["parcel_id"].tolist()
    for i in (0, 17, len(ids) - 1):
        assert copied.parcel_position(ids[i]) == direct.parcel_position(ids[i]) == i
    assert copied.parcel_position("没有这宗地") == -1


def test_a_second_reader_maps_the_copy_without_reading_the_outputs(run, tmp_path) -> None:
    root = tmp_path / "copies"
    first = RunCache(copies=root).get(run)
    out = Path(run.out_dir)
    for name in ("parcels.gpkg", "enterprises.csv", "renewal_blocks.gpkg", "policies.csv"):
        (out / name).unlink()  # a second worker, or the service restarted, with nothing but the copy to read
    again = RunCache(copies=root).get(run)
    assert (
        len(again.parcels) == len(first.parcels)
        and again.parcels["parcel_id"].tolist() == first.parcels["parcel_id"].tolist()
    )
    assert again.enterprises["name"].tolist() == first.enterprises["name"].tolist()
    assert again.policies is not None and len(again.policies) == len(first.policies)
    with pytest.raises(
        RunFilesError, match=r"缺少 enterprises\.csv、parcels\.gpkg"
    ):  # without a copy, the outputs are read, and are gone
        RunCache(copies=tmp_path / "elsewhere").get(run)


def test_a_rewritten_out_dir_gets_a_new_copy_and_the_old_one_goes(run, tmp_path) -> None:
    root = tmp_path / "copies"
    RunCache(copies=root).get(run)
    old = copy_dir(root, run.run_id, RunCache().stamp(run))
    manifest = Path(run.out_dir) / "manifest.json"
    st = manifest.stat()
    os.utime(manifest, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # as an OUT_DIR rewritten in place
    RunCache(copies=root).get(run)
    new = copy_dir(root, run.run_id, RunCache().stamp(run))
    assert new != old and new.is_dir() and not old.exists()
    assert [p.name for p in new.parent.iterdir() if p.is_dir()] == [new.name]


def test_a_damaged_copy_is_skipped_and_the_outputs_read(run, tmp_path, caplog) -> None:
    root = tmp_path / "copies"
    RunCache(copies=root).get(run)
    target = copy_dir(root, run.run_id, RunCache().stamp(run))
    part = target / "parcels.values.arrow"
    part.write_bytes(part.read_bytes()[:100])
    with caplog.at_level(logging.WARNING, logger="api.runcopy"):
        data = RunCache(copies=root).get(run)
    assert len(data.parcels) == 790 and data.parcels.geometry.notna().all()
    assert "cannot be read" in caplog.text
    about = json.loads((target / "frames.json").read_text(encoding="utf-8"))
    assert about["rows"] == 790 and (target / "parcels.values.arrow").stat().st_size > 100  # written again


def test_the_service_answers_the_same_from_the_copy(run, tmp_path) -> None:
    data_dir = tmp_path / "data"
    store = open_store(data_dir)
    store.add_run(run, actor="test")
    token = store.add_user("r1", "reviewer")[1]
    store.close()
    paths = ["/api/parcels?limit=500", "/api/rankings?limit=500", "/api/flags?limit=500"]

    def answers() -> list[object]:
        app = create_app(Settings(data_dir=data_dir, secret_key="t" * 48))
        with TestClient(app) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            got = [c.get(p) for p in paths]
            assert all(r.status_code == 200 for r in got), [r.text for r in got]
            assert isinstance(app.state.run_cache.get(run), RunData)
            return [r.json() for r in got]

    first = answers()  # reads the outputs, writes the copy
    copies = data_dir / RUN_COPIES
    assert any(p.is_dir() for p in copies.glob("*/*"))
    for name in ("parcels.gpkg", "enterprises.csv"):
        (Path(run.out_dir) / name).unlink()
    assert answers() == first  # a restart: from the copy alone
    assert first[0]["features"] and first[1]["rows"] and first[2]["features"]


def test_a_scope_search_index_is_cut_from_the_copy_as_it_would_be_made(run, tmp_path) -> None:
    copied = RunCache(copies=tmp_path / "copies").get(run)
    assert sorted(copied.search_rows) == ["gaode", "none"]
    names = map_enterprises(copied.enterprises)
    parks = copied.parks
    scopes = [None, frozenset(parks[:1]), frozenset(parks[1:3]), frozenset(["没有的园区"])]
    for kind in ("none", "gaode"):
        for parks_of in scopes:
            pos = copied.parcel_rows(parks_of)
            made = maps.search_index(copied.parcels.iloc[pos], enterprises=names, basemap=kind)  # type: ignore[arg-type]
            cut = copied.search_index(pos, kind)
            assert cut == json.dumps(made, ensure_ascii=False, separators=(",", ":")).encode(), (kind, parks_of)
    first = json.loads(copied.search_index(copied.parcel_rows(frozenset(parks[:1])), "gaode") or b"")
    plain_first = json.loads(copied.search_index(copied.parcel_rows(frozenset(parks[:1])), "none") or b"")
    assert len(first) == len(plain_first) > 10 and first[0][0] == plain_first[0][0]
    assert first[0][3] != plain_first[0][3]  # GCJ-02 shifts the box by a few hundred metres
    # a parcel without a geometry is in no index, and the rows after it keep their places
    parcels = copied.parcels.copy()
    parcels.loc[parcels.index[1], "geometry"] = None
    rows = search_rows(parcels, copied.enterprises, ("none",))["none"]
    assert rows[1].as_py() == b"" and len(rows) == len(parcels)
    made = maps.search_index(parcels, enterprises=names)
    assert [json.loads(r) for r in rows.to_pylist() if r] == made and len(made) == len(parcels) - 1


def test_geojson_features_from_the_prepared_properties_are_those_made_row_by_row(run, tmp_path) -> None:
    data = RunCache(copies=tmp_path / "copies").get(run)
    assert data.parcel_properties is not None and len(data.parcel_properties) == len(data.parcels)
    flagged = data.flags["parcel_pos"].to_numpy()
    page = np.unique(np.concatenate([np.arange(0, len(data.parcels), 7), flagged[:50]]))
    flags = {int(p): [{"flag_id": f"F{p}", "review_status": "pending", "note": "<甲>\n"}] for p in flagged[:50]}
    made = [
        feature(str(p["parcel_id"]), data.parcel_geojson[pos], {**p, "flags": flags.get(int(pos), [])})
        for pos, p in zip(page, records(data.parcel_table.iloc[page]), strict=True)
    ]
    assert prepared_features(data, page, flags) == made
    got = json.loads(made[0])
    assert got["properties"]["parcel_id"] == data.parcels["parcel_id"].iloc[0] and "flags" in got["properties"]
    assert any(json.loads(m)["properties"]["flags"] for m in made)


def test_a_park_map_finds_its_renewal_blocks_as_the_scan_of_every_block_did(run, tmp_path) -> None:
    data = RunCache(copies=tmp_path / "copies").get(run)
    assert data.blocks is not None and len(data.blocks) > 0
    assert data.stored_block_parks is not None  # made once, when the copy was written: the same as made now
    assert data.block_parks == load_run_data(run).block_parks
    assert data.block_parks is not None and {p for b in data.block_parks for p in b} <= set(data.parks)
    del data.__dict__["block_parks"]
    parks = data.parks
    a, b = (data.parcels.loc[data.parcels["park"] == p, "parcel_id"].iloc[0] for p in parks[:2])
    extra = data.blocks.iloc[:3].copy()  # a block across two parks, one naming an unknown parcel, one naming none
    extra["parcel_ids"] = [f"{a};{b}", f"{a};没有的宗地", ""]
    data.blocks = pd.concat([data.blocks, extra], ignore_index=True)
    for chosen in [*([p] for p in parks), parks[:2], parks]:
        scope = MapScope(None, tuple(chosen))
        scanned = scope_blocks(data.blocks, data.parcels.iloc[data.parcel_rows(frozenset(chosen))], scope)
        assert scanned is not None
        found = data.blocks.loc[data.blocks_within(frozenset(chosen))]
        assert list(found.index) == list(scanned.index), chosen
    n = len(data.blocks)
    assert data.blocks_within(frozenset(parks[:2]))[n - 3 :].tolist() == [True, False, False]
    assert data.blocks_within(frozenset(parks[:1]))[n - 3 :].tolist() == [False, False, False]


@pytest.mark.parametrize(
    ("geoms", "encoding"),
    [
        (
            [shapely.box(0, 0, 1, 1), shapely.Polygon([(0, 0), (2, 0), (2, 2)], [[(0.5, 0.2), (1, 0.2), (1, 0.5)]])],
            "ragged",
        ),
        ([shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3)])] * 2, "ragged"),
        ([shapely.box(0, 0, 1, 1), shapely.MultiPolygon([shapely.box(2, 2, 3, 3)]), None], "wkb"),
    ],
)
def test_geometries_come_back_exactly_in_either_encoding(tmp_path, geoms, encoding) -> None:
    from api.runcopy import _read_geo, _write_geo

    frame = gpd.GeoDataFrame({"parcel_id": [f"P{i}" for i in range(len(geoms))]}, geometry=geoms, crs=4547)
    _write_geo(tmp_path / "parcels.arrow", frame)
    assert json.loads((tmp_path / "parcels.geometry.json").read_text())["encoding"] == encoding
    back = _read_geo(tmp_path / "parcels.arrow", frame.crs.to_wkt())
    assert back["parcel_id"].tolist() == frame["parcel_id"].tolist() and back.crs == frame.crs
    same = [
        (a is None and b is None) or (a is not None and b is not None and a.equals_exact(b, 0))
        for a, b in zip(back.geometry, frame.geometry, strict=True)
    ]
    assert all(same) and back.geometry.area.sum() == pytest.approx(frame.geometry.area.sum())


def fresh_caches() -> MapCaches:
    return MapCaches(pages=MapCache(4), tile_sources=MapCache(4), tiles=MapCache(100), other=MapCache(16))


@pytest.mark.parametrize("basemap", ["none", "gaode"])
def test_a_province_overview_makes_only_the_parcels_it_needs(run, tmp_path, monkeypatch, basemap) -> None:
    """A map of more parcels than WHOLE_SOURCE_MAX makes its review list, 分类变化 keys and popups from the
    parcels each needs, never the tile source (and geometries) of them all; the answers are the same."""
    RunCache(copies=tmp_path / "copies").get(run)
    data = RunCache(copies=tmp_path / "copies").get(run)
    scope = MapScope(None, None)
    whole = fresh_caches()
    src = tile_source(data, whole, scope, basemap)
    expected = (flag_rows(data, whole, scope, basemap), parcel_changes(data, whole, scope, basemap))
    data = RunCache(copies=tmp_path / "copies").get(run)  # read afresh: nothing made yet
    biggest = max(len(data.parcel_rows(frozenset([p]))) for p in data.parks)
    monkeypatch.setattr(mapdata, "WHOLE_SOURCE_MAX", biggest)  # every park's map as before, the overview "large"
    part = fresh_caches()
    assert mapdata.is_large(data, scope, part)
    assert not any(mapdata.is_large(data, MapScope.of_park(p), part) for p in data.parks)
    assert (flag_rows(data, part, scope, basemap), parcel_changes(data, part, scope, basemap)) == expected
    assert json.loads(expected[0])["rows"] and len(json.loads(expected[1])["changes"]) == len(src) == 790
    flagged = sorted(set(data.flags["parcel_id"]))
    for pid in [*flagged[:: max(1, len(flagged) // 12)], str(src.index[5])]:
        i = src.index.get_indexer([pid])[0]
        assert parcel_popup(mapdata.parcel_by_id(data, scope, basemap, pid), 0) == parcel_popup(src, i)
        inside = shapely.point_on_surface(src.geometry.iloc[i])  # a click inside it, in the map's coordinates
        near = mapdata.parcel_near(data, scope, basemap, inside.x, inside.y)
        found = parcel_at(near, inside.x, inside.y)
        assert found is not None and parcel_popup(near, found) == parcel_popup(src, parcel_at(src, inside.x, inside.y))
    assert not part.tile_sources._items and "parcels" not in vars(data)  # no source, no geometry of them all
    # a committee's map: another park's parcel is not found by its id, nor under a click
    own, other = data.parks[0], data.parks[1]
    theirs = data.parcel_table.loc[data.parcel_table["park"] == other, "parcel_id"].iloc[0]
    committee = MapScope(None, (own,))
    assert mapdata.parcel_by_id(data, committee, basemap, theirs).empty
    at = shapely.point_on_surface(src.geometry.loc[theirs])
    assert theirs not in set(mapdata.parcel_near(data, committee, basemap, at.x, at.y).index)


@pytest.mark.parametrize("basemap", ["none", "gaode"])
def test_a_province_without_an_archive_cuts_each_tile_from_its_own_parcels(run, tmp_path, basemap) -> None:
    """A province's tile cut per request (高德, or a run without an archive) is made from the parcels under the
    tile alone (``box_source``): the same bytes as the tile cut from the tile source of every parcel."""
    from geo_eval.maps.tiles import lonlat_to_tile

    data = RunCache(copies=tmp_path / "copies").get(run)
    caches = fresh_caches()
    for scope in (MapScope(None, None), MapScope(None, (data.parks[0],))):
        src = tile_source(data, caches, scope, basemap)
        centres = shapely.point_on_surface(np.asarray(src.geometry.array, dtype=object)[::40])
        seen = set()
        for z in (13, 15, 17):
            for c in centres:
                x, y = lonlat_to_tile(c.x, c.y, z)
                if (z, x, y) in seen:
                    continue
                seen.add((z, x, y))
                props = maps.tile_properties(z)
                whole = tiles.mvt_tile(src, z, x, y, properties=props, id_column="gid")
                part = tiles.mvt_tile(
                    mapdata.box_source(data, scope, basemap, z, x, y), z, x, y, properties=props, id_column="gid"
                )
                assert whole and part == whole, (scope, z, x, y)
        assert len(seen) > 10


def test_a_copy_file_holds_one_chunk_per_column_even_from_a_table_read_in_batches(tmp_path) -> None:
    """A table read through Arrow comes in batches (pyogrio's, 65,536 rows each); written as the copy's file it
    is one chunk per column, so that a request taking a few rows does not join a million rows first."""
    import pyarrow as pa
    from pyarrow import feather

    from api.runcopy import _write_table

    chunked = pa.Table.from_batches(
        [pa.record_batch({"t": pa.array(["a", "b"]), "x": pa.array([1.0, 2.0])}) for _ in range(3)]
    )
    assert chunked.column("t").num_chunks == 3
    _write_table(chunked, tmp_path / "t.arrow")
    back = feather.read_table(tmp_path / "t.arrow", memory_map=True)
    assert [back.column(c).num_chunks for c in ("t", "x")] == [1, 1] and back.column("t").to_pylist() == ["a", "b"] * 3


def test_texts_made_a_slice_at_a_time_are_those_made_at_once(run, monkeypatch) -> None:
    """The copy's per-parcel texts (GeoJSON, popup properties, search rows) are made in slices of rows so
    that a province's million parcels are never all Python strings at once: slices of 7 rows (every slice
    boundary crossed, a parcel without a geometry at one) give the same texts as one slice."""
    data = load_run_data(run)
    parcels = data.parcels.copy()
    parcels.loc[parcels.index[7], "geometry"] = None  # the first row of the second slice of 7
    table = data.parcel_table

    def made() -> tuple[list[object], ...]:
        geojson = rundata._geometry_json(parcels.geometry)
        search = search_rows(parcels, data.enterprises, ("none", "gaode"))
        props = rundata.property_texts(table)
        return (
            [geojson[i] for i in range(len(geojson))],
            props.to_pylist(),
            search["none"].to_pylist(),
            search["gaode"].to_pylist(),
        )

    monkeypatch.setattr(rundata, "TEXT_CHUNK", 10**9)
    whole = made()
    monkeypatch.setattr(rundata, "TEXT_CHUNK", 7)
    sliced = made()
    assert sliced == whole
    geojson, props, plain_rows, gaode_rows = sliced
    assert len(geojson) == len(props) == len(plain_rows) == len(parcels) == 790
    assert geojson[7] is None and plain_rows[7] == b"" and gaode_rows[7] == b""
    assert json.loads(geojson[8])["type"] in ("Polygon", "MultiPolygon")
    assert json.loads(plain_rows[8])[0] == parcels["parcel_id"].iloc[8]
    assert json.loads(props[8] + "}")["parcel_id"] == table["parcel_id"].iloc[8]

"""Vector tiles: encoded per request, decoded back and compared with an independent projection."""

from __future__ import annotations

import math

import geopandas as gpd
import mapbox_vector_tile
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer
from shapely.geometry import Polygon, box

from geo_eval import maps
from geo_eval.maps.gcj02 import wgs84_to_gcj02
from geo_eval.maps.tiles import TILE_EXTENT, lonlat_to_tile, mvt_tile, tile_bounds

XSS = "<img src=x onerror=alert(1)>"
Z = 15


def decode(data: bytes) -> dict:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})


@pytest.fixture
def parcels() -> gpd.GeoDataFrame:
    """Three parcels about 100 m wide near Lianyungang, in EPSG:4326."""
    lon, lat = 119.2205, 34.6005
    geoms = [box(lon + i * 0.0012, lat, lon + i * 0.0012 + 0.001, lat + 0.0008) for i in range(3)]
    return gpd.GeoDataFrame(
        {
            "parcel_id": ["P1", "P2", "P3"],
            "grade": ["A", None, "D"],
            "tax_per_mu": [12.5, np.nan, 1.0],
            "n_flags": [0, 0, 2],
            "main_name": [XSS, "乙", "丙"],
        },
        geometry=geoms,
        crs=4326,
    )


def tile_of(gdf: gpd.GeoDataFrame, z: int = Z) -> tuple[int, int, int]:
    c = gdf.geometry.iloc[0].centroid
    return (z, *lonlat_to_tile(c.x, c.y, z))


def expected_units(lon: np.ndarray, lat: np.ndarray, z: int, x: int, y: int) -> np.ndarray:
    """Tile units from an independent route: pyproj to EPSG:3857, then the tile's own bounds."""
    to3857 = Transformer.from_crs(4326, 3857, always_xy=True)
    mx, my = to3857.transform(lon, lat)
    w, s, e, n = tile_bounds(z, x, y)
    (x0, x1), (y0, y1) = to3857.transform([w, e], [s, n])
    return np.column_stack([(mx - x0) / (x1 - x0) * TILE_EXTENT, (y1 - my) / (y1 - y0) * TILE_EXTENT])


def test_tile_decodes_to_the_parcels(parcels) -> None:
    z, x, y = tile_of(parcels)
    layer = decode(mvt_tile(parcels, z, x, y))["parcels"]
    assert layer["extent"] == TILE_EXTENT
    feats = {f["properties"]["parcel_id"]: f for f in layer["features"]}
    assert set(feats) == {"P1", "P2", "P3"}  # all three lie in the tile
    p1 = feats["P1"]
    assert p1["properties"] == {"parcel_id": "P1", "grade": "A", "tax_per_mu": 12.5, "n_flags": 0, "main_name": XSS}
    assert p1["id"] == 0
    # missing values are left out, numbers stay numbers
    assert "grade" not in feats["P2"]["properties"] and "tax_per_mu" not in feats["P2"]["properties"]
    got = np.array(p1["geometry"]["coordinates"][0], dtype=float)
    ring = np.asarray(parcels.geometry.iloc[0].exterior.coords)
    want = expected_units(ring[:, 0], ring[:, 1], z, x, y)
    # same corners (rounded to whole units), in whatever order the ring starts
    assert {tuple(p) for p in got.round().astype(int)} == {tuple(p) for p in want.round().astype(int)}


def test_exterior_rings_have_positive_area_in_tile_units(parcels) -> None:
    z, x, y = tile_of(parcels)
    for f in decode(mvt_tile(parcels, z, x, y))["parcels"]["features"]:
        ring = np.array(f["geometry"]["coordinates"][0], dtype=float)
        area = 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])
        assert area > 0  # MVT 2.1 §4.3.4.3: clockwise on screen (y down)


def test_web_mercator_input_gives_the_same_tile(parcels) -> None:
    z, x, y = tile_of(parcels)
    a = decode(mvt_tile(parcels, z, x, y))["parcels"]["features"]
    b = decode(mvt_tile(parcels.to_crs(3857), z, x, y))["parcels"]["features"]
    assert [f["properties"] for f in a] == [f["properties"] for f in b]
    for fa, fb in zip(a, b, strict=True):
        ca = np.array(fa["geometry"]["coordinates"][0], dtype=float)
        cb = np.array(fb["geometry"]["coordinates"][0], dtype=float)
        np.testing.assert_allclose(ca, cb, atol=1)


def test_cgcs2000_is_accepted_and_other_crs_refused(parcels) -> None:
    z, x, y = tile_of(parcels)
    assert mvt_tile(parcels.set_crs(4490, allow_override=True), z, x, y) == mvt_tile(parcels, z, x, y)
    with pytest.raises(ValueError, match="to_crs"):
        mvt_tile(parcels.to_crs(4549), z, x, y)
    with pytest.raises(ValueError, match="坐标系"):
        mvt_tile(parcels.set_crs(None, allow_override=True), z, x, y)


def test_geometry_is_clipped_to_the_tile_and_buffer() -> None:
    w, s, e, n = tile_bounds(14, 13_617, 6_480)
    big = gpd.GeoDataFrame({"parcel_id": ["big"]}, geometry=[box(w - 1, s - 1, e + 1, n + 1)], crs=4326)
    f = decode(mvt_tile(big, 14, 13_617, 6_480, buffer=64))["parcels"]["features"][0]
    ring = np.array(f["geometry"]["coordinates"][0])
    assert ring.min() == -64
    assert ring.max() == TILE_EXTENT + 64


def test_empty_tile_is_empty_bytes(parcels) -> None:
    assert mvt_tile(parcels, 15, 0, 0) == b""
    assert decode(b"") == {}


@pytest.mark.parametrize(("z", "x", "y"), [(-1, 0, 0), (25, 0, 0), (3, 8, 0), (3, 0, -1)])
def test_tile_outside_the_grid_is_refused(parcels, z: int, x: int, y: int) -> None:
    with pytest.raises(ValueError, match="瓦片"):
        mvt_tile(parcels, z, x, y)


def test_low_zoom_simplifies_and_drops_what_cannot_show() -> None:
    lon, lat = 119.2205, 34.6005
    t = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    r = 0.001 * (1 + 0.005 * np.sin(40 * t))  # a 100 m disc with 0.5 m wiggles
    wiggly = Polygon(np.column_stack([lon + r * np.cos(t), lat + r * np.sin(t)]))
    tiny = box(lon + 0.003, lat, lon + 0.003 + 1e-5, lat + 1e-5)  # a 1 m square
    gdf = gpd.GeoDataFrame({"parcel_id": ["disc", "tiny"]}, geometry=[wiggly, tiny], crs=4326)

    def vertices(z: int, at: Polygon) -> dict[str, int]:
        c = at.centroid
        x, y = lonlat_to_tile(c.x, c.y, z)
        feats = decode(mvt_tile(gdf, z, x, y)).get("parcels", {"features": []})["features"]
        return {f["properties"]["parcel_id"]: len(f["geometry"]["coordinates"][0]) for f in feats}

    assert "tiny" not in vertices(11, tiny)  # less than a tile unit (≈ 4 m) at zoom 11
    assert "tiny" in vertices(17, tiny)
    low, high = vertices(11, wiggly)["disc"], vertices(17, wiggly)["disc"]
    assert low < high / 4


def test_properties_can_be_chosen(parcels) -> None:
    z, x, y = tile_of(parcels)
    layer = decode(mvt_tile(parcels, z, x, y, properties=["parcel_id", "grade"], layer="p"))["p"]
    assert all(set(f["properties"]) <= {"parcel_id", "grade"} for f in layer["features"])


def test_spatial_index_is_reused(parcels) -> None:
    src = parcels.copy()
    z, x, y = tile_of(src)
    mvt_tile(src, z, x, y)
    sindex = src.sindex
    mvt_tile(src, z, x, y)
    assert src.sindex is sindex


def test_tile_source_for_the_maps_tiles(parcels) -> None:
    parcels = parcels.assign(users=["91320700000000001X", None, "91320700000000003X"])
    flags = pd.DataFrame(
        {
            "parcel_id": ["P3", "P3"],
            "flag_label": ["低效用地", "疑似闲置"],
            "reason": ["r1", "r2"],
            "status": ["site_visit", None],
            "comment": ["要去现场", None],
        }
    )
    src = maps.tile_source(parcels, flags=flags)
    assert list(src.columns[:-1]) == [*maps.TILE_PROPERTIES, "holder_name", "prev_grade", "change"]
    assert set(src["change"]) == {"none"}  # no enterprises with last year's classes given
    assert "review" not in src.columns
    assert src.crs.to_epsg() == 4326
    z, x, y = tile_of(parcels, 17)
    full = decode(mvt_tile(src, z, x, y, properties=maps.tile_properties(z)))["parcels"]["features"]
    p3 = next(f for f in full if f["properties"]["parcel_id"] == "P3")
    assert p3["properties"]["n_flags"] == 2
    # the flags as 标记：原因 lines; review states never reach a tile (the page applies them)
    assert p3["properties"]["flags"].split("\n") == ["低效用地：r1", "疑似闲置：r2"]
    assert set(p3["properties"]) <= set(maps.TILE_PROPERTIES) and "review" not in p3["properties"]
    unreviewed = maps.tile_source(parcels, flags=flags.drop(columns=["status", "comment"]))
    assert mvt_tile(unreviewed, z, x, y, properties=maps.tile_properties(z)) == mvt_tile(
        src, z, x, y, properties=maps.tile_properties(z)
    )
    zl, xl, yl = tile_of(parcels, 12)
    light = decode(mvt_tile(src, zl, xl, yl, properties=maps.tile_properties(zl)))["parcels"]["features"]
    assert {k for f in light for k in f["properties"]} <= set(maps.TILE_STYLE_PROPERTIES)
    assert len(light) == 3


def test_tile_source_for_gaode_is_shifted(parcels) -> None:
    plain = maps.tile_source(parcels)
    gaode = maps.tile_source(parcels, basemap="gaode")
    a = shapely.get_coordinates(plain.geometry.array)
    b = shapely.get_coordinates(gaode.geometry.array)
    ex, ey = wgs84_to_gcj02(a[:, 0], a[:, 1])
    np.testing.assert_allclose(b[:, 0], ex, atol=1e-12)
    np.testing.assert_allclose(b[:, 1], ey, atol=1e-12)


def test_tile_bounds_and_lookup_agree() -> None:
    for lon, lat, z in [(119.2, 34.6, 12), (-0.1, 51.5, 9), (179.9, -85.0, 4), (0.0, 0.0, 0)]:
        x, y = lonlat_to_tile(lon, lat, z)
        w, s, e, n = tile_bounds(z, x, y)
        assert w <= lon <= e
        assert s <= max(lat, -85.0511287798066) <= n
    w, s, e, n = tile_bounds(0, 0, 0)
    assert (w, e) == (-180.0, 180.0)
    assert n == pytest.approx(math.degrees(math.atan(math.sinh(math.pi))))

"""WGS-84 ↔ GCJ-02: the published test vector, the inverse, and shifting layers."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import Geod
from shapely.geometry import MultiPolygon, Point, Polygon

from geo_eval.maps.gcj02 import gcj02_offset, gcj02_to_wgs84, in_china, shift_to_gcj02, shift_to_wgs84, wgs84_to_gcj02


def test_published_vector_beijing_station() -> None:
    # domain.md §9: WGS-84 (lat 39.90105, lon 116.42079) → GCJ-02 (39.90245, 116.42703), 5 decimals.
    lon, lat = wgs84_to_gcj02(116.42079, 39.90105)
    assert float(lat) == pytest.approx(39.90245, abs=1e-5)
    assert float(lon) == pytest.approx(116.42703, abs=1e-5)
    assert round(float(lat), 5) == 39.90245


def test_no_shift_outside_china() -> None:
    lon = np.array([2.3522, -74.006, 139.69, 151.21, 100.0])
    lat = np.array([48.8566, 40.7128, 35.69, -33.87, 60.0])
    gx, gy = wgs84_to_gcj02(lon, lat)
    np.testing.assert_array_equal(gx, lon)
    np.testing.assert_array_equal(gy, lat)
    assert not in_china(lon, lat).any()
    bx, by = gcj02_to_wgs84(lon, lat)
    np.testing.assert_array_equal(bx, lon)
    np.testing.assert_array_equal(by, lat)


def test_offset_near_lianyungang_is_about_500_m() -> None:
    # domain.md §9: the offset is ≈ 500 m around Lianyungang.
    lon, lat = 119.22, 34.60
    gx, gy = wgs84_to_gcj02(lon, lat)
    _, _, dist = Geod(ellps="WGS84").inv(lon, lat, float(gx), float(gy))
    assert 400 < dist < 650


def test_vectorised_matches_scalar() -> None:
    rng = np.random.default_rng(4)
    lon = rng.uniform(74, 135, 500)
    lat = rng.uniform(18, 53, 500)
    gx, gy = wgs84_to_gcj02(lon, lat)
    for i in (0, 17, 499):
        sx, sy = wgs84_to_gcj02(lon[i], lat[i])
        assert float(sx) == gx[i]
        assert float(sy) == gy[i]
    dlon, dlat = gcj02_offset(lon, lat)
    np.testing.assert_allclose(gx - lon, dlon, atol=1e-12)
    np.testing.assert_allclose(gy - lat, dlat, atol=1e-12)


def test_inverse_round_trip_below_1e7_degrees() -> None:
    rng = np.random.default_rng(2025)
    lon = rng.uniform(73, 135, 20_000)
    lat = rng.uniform(4, 53.5, 20_000)
    gx, gy = wgs84_to_gcj02(lon, lat)
    bx, by = gcj02_to_wgs84(gx, gy)
    assert np.max(np.abs(bx - lon)) < 1e-7
    assert np.max(np.abs(by - lat)) < 1e-7
    # and the other way round: shifting the recovered point lands on the GCJ-02 input
    fx, fy = wgs84_to_gcj02(bx, by)
    assert np.max(np.abs(fx - gx)) < 1e-7
    assert np.max(np.abs(fy - gy)) < 1e-7


def test_published_vector_inverse() -> None:
    lon, lat = gcj02_to_wgs84(116.42703, 39.90245)
    assert float(lon) == pytest.approx(116.42079, abs=2e-5)
    assert float(lat) == pytest.approx(39.90105, abs=2e-5)


def test_nan_coordinates_pass_through() -> None:
    gx, gy = wgs84_to_gcj02([np.nan, 119.2], [34.6, 34.6])
    assert np.isnan(gx[0])
    bx, _ = gcj02_to_wgs84(gx, gy)
    assert bx[1] == pytest.approx(119.2, abs=1e-9)


def _layer(crs: int | str = 4326) -> gpd.GeoDataFrame:
    square = Polygon([(119.20, 34.60), (119.21, 34.60), (119.21, 34.61), (119.20, 34.61)])
    holed = Polygon(
        [(119.3, 34.6), (119.32, 34.6), (119.32, 34.62), (119.3, 34.62)],
        [[(119.305, 34.605), (119.31, 34.605), (119.31, 34.61), (119.305, 34.61)]],
    )
    multi = MultiPolygon([square, holed])
    return gpd.GeoDataFrame(
        {"parcel_id": ["a", "b", "c", "d", "e"]},
        geometry=[square, holed, multi, Polygon(), None],
        crs=crs,
    ).set_index("parcel_id")


@pytest.mark.parametrize("crs", [4326, 4490])
def test_shift_layer_moves_every_vertex(crs: int) -> None:
    gdf = _layer(crs)
    out = shift_to_gcj02(gdf)
    assert out is not gdf
    assert out.crs == gdf.crs
    assert list(out.index) == list(gdf.index)
    before = shapely.get_coordinates(gdf.geometry.array)
    after = shapely.get_coordinates(out.geometry.array)
    ex, ey = wgs84_to_gcj02(before[:, 0], before[:, 1])
    np.testing.assert_allclose(after[:, 0], ex, atol=1e-12)
    np.testing.assert_allclose(after[:, 1], ey, atol=1e-12)
    # structure kept: holes, parts, empties and missing geometries
    assert len(out.loc["b"].geometry.interiors) == 1
    assert len(out.loc["c"].geometry.geoms) == 2
    assert out.loc["d"].geometry.is_empty
    assert out.loc["e"].geometry is None
    # input untouched
    np.testing.assert_array_equal(shapely.get_coordinates(gdf.geometry.array), before)
    back = shift_to_wgs84(out)
    np.testing.assert_allclose(shapely.get_coordinates(back.geometry.array), before, atol=1e-9)


def test_shift_series_keeps_name_and_index() -> None:
    s = gpd.GeoSeries([Point(116.42079, 39.90105)], index=["bj"], crs=4326, name="geom")
    out = shift_to_gcj02(s)
    assert isinstance(out, gpd.GeoSeries)
    assert out.name == "geom"
    assert list(out.index) == ["bj"]
    assert out.iloc[0].y == pytest.approx(39.90245, abs=1e-5)


@pytest.mark.parametrize("crs", [None, 4528, 3857])
def test_shift_refuses_projected_or_unknown_crs(crs: int | None) -> None:
    gdf = _layer(4326).set_crs(crs, allow_override=True)
    with pytest.raises(ValueError, match="4326"):
        shift_to_gcj02(gdf)

"""Built-up fraction per parcel (geo_eval.landuse.evidence) and reading rasters (geo_eval.io.raster).

The hand-made raster is 4 × 4 pixels of 10 m in EPSG:4549, top-left corner at (X0, TOP); row 0 is
the top row, 255 is nodata::

    row 0:  1   1   0   0
    row 1:  1   0   0   0
    row 2:  0   0   1   1
    row 3:  0  255  1   0

Pixel (row r, column c) spans x ∈ [X0 + 10c, X0 + 10(c+1)], y ∈ [TOP − 10(r+1), TOP − 10r]. Expected
values are counted by hand in each test.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from affine import Affine
from pyproj import CRS, Geod
from rasterio.errors import NotGeoreferencedWarning

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.io.raster import read_raster
from geo_eval.landuse.evidence import Raster, builtup_fraction

X0, TOP = 500_000.0, 3_800_000.0
GRID = np.array(
    [
        [1, 1, 0, 0],
        [1, 0, 0, 0],
        [0, 0, 1, 1],
        [0, 255, 1, 0],
    ],
    dtype=np.uint8,
)


def from_origin(west: float, north: float, xsize: float, ysize: float) -> Affine:
    """North-up transform (rasterio's own ``from_origin`` still uses the deprecated ``*`` of affine 3)."""
    return Affine(xsize, 0.0, west, 0.0, -ysize, north)


LAYER = Path(__file__).resolve().parents[1] / "layers" / "builtup_10m.tif"


@pytest.fixture
def raster() -> Raster:
    return Raster(values=GRID.copy(), transform=from_origin(X0, TOP, 10, 10), crs=CRS.from_epsg(4549), nodata=255)


def box(x1: float, y1: float, x2: float, y2: float) -> shapely.Polygon:
    """A rectangle in metres from the raster's top-left corner, y counted downwards."""
    return shapely.box(X0 + x1, TOP - y2, X0 + x2, TOP - y1)


def parcels(geoms: dict[str, shapely.Geometry | None], crs: int = 4549) -> gpd.GeoSeries:
    return gpd.GeoSeries(list(geoms.values()), index=pd.Index(list(geoms), name="parcel_id"), crs=crs)


def shapely_coverage(geom: shapely.Geometry, values: np.ndarray, transform: Affine) -> tuple[float, float]:
    """(valid, built-up) covered area by clipping the polygon with every pixel: an independent check."""
    valid = built = 0.0
    for r in range(values.shape[0]):
        for c in range(values.shape[1]):
            x, y = transform.c + c * transform.a, transform.f + r * transform.e
            cell = shapely.box(x, y + transform.e, x + transform.a, y)
            a = shapely.intersection(cell, geom).area
            if values[r, c] != 255:
                valid += a
                built += a * (values[r, c] == 1)
    return valid, built


# --- builtup_fraction -------------------------------------------------------------------------------


def test_pixel_aligned_parcel_counts_pixels(raster: Raster) -> None:
    # rows 0–1, columns 0–1: pixels 1, 1, 1, 0
    out = builtup_fraction(parcels({"A": box(0, 0, 20, 20)}), raster)
    assert list(out.columns) == ["builtup_fraction", "valid_fraction", "builtup_m2"]
    assert out.loc["A", "builtup_fraction"] == pytest.approx(0.75)
    assert out.loc["A", "valid_fraction"] == pytest.approx(1.0)
    assert out.loc["A", "builtup_m2"] == pytest.approx(300.0)


def test_half_pixels_are_weighted_by_area(raster: Raster) -> None:
    # x 5–20 m, rows 0–1: row 0 → ½·1 + 1·1, row 1 → ½·1 + 1·0; built 2.0 of 3.0 pixels
    out = builtup_fraction(parcels({"B": box(5, 0, 20, 20)}), raster)
    assert out.loc["B", "builtup_fraction"] == pytest.approx(2 / 3)
    assert out.loc["B", "valid_fraction"] == pytest.approx(1.0)
    assert out.loc["B", "builtup_m2"] == pytest.approx(200.0)


def test_diagonal_parcel_cuts_pixels_in_half(raster: Raster) -> None:
    # lower-right triangle of the block rows 2–3, columns 2–3: (2,2) 0 %, (2,3) ½ of a 1,
    # (3,2) ½ of a 1, (3,3) all of a 0 → built 1.0 of 2.0 pixels
    tri = shapely.Polygon([(X0 + 20, TOP - 40), (X0 + 40, TOP - 40), (X0 + 40, TOP - 20)])
    out = builtup_fraction(parcels({"T": tri}), raster)
    assert out.loc["T", "builtup_fraction"] == pytest.approx(0.5)
    assert out.loc["T", "valid_fraction"] == pytest.approx(1.0)
    assert out.loc["T", "builtup_m2"] == pytest.approx(100.0)


def test_parcels_smaller_than_a_pixel(raster: Raster) -> None:
    # 2 m × 2 m inside pixel (0,0) = 1 and inside pixel (0,3) = 0; the pair as one multipolygon
    inside_built = box(3, 3, 5, 5)
    inside_open = box(33, 3, 35, 5)
    out = builtup_fraction(
        parcels({"in1": inside_built, "in0": inside_open, "both": shapely.union(inside_built, inside_open)}), raster
    )
    assert out.loc["in1", "builtup_fraction"] == pytest.approx(1.0)
    assert out.loc["in1", "valid_fraction"] == pytest.approx(1.0)
    assert out.loc["in1", "builtup_m2"] == pytest.approx(4.0)
    assert out.loc["in0", "builtup_fraction"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc["in0", "builtup_m2"] == pytest.approx(0.0, abs=1e-12)
    assert out.loc["both", "builtup_fraction"] == pytest.approx(0.5)
    assert out.loc["both", "builtup_m2"] == pytest.approx(4.0)


def test_nodata_and_outside(raster: Raster) -> None:
    out = builtup_fraction(
        parcels(
            {
                "nodata": box(12, 32, 18, 38),  # inside pixel (3,1) = 255
                "outside": box(100, 100, 120, 120),
                "half_out": box(30, 20, 50, 40),  # column 3 of rows 2–3 (1, 0) and 200 m² off the raster
                "half_nodata": box(10, 30, 30, 40),  # pixels (3,1) = 255 and (3,2) = 1
            }
        ),
        raster,
    )
    assert math.isnan(out.loc["nodata", "builtup_fraction"])
    assert out.loc["nodata", "valid_fraction"] == 0.0
    assert math.isnan(out.loc["nodata", "builtup_m2"])
    assert math.isnan(out.loc["outside", "builtup_fraction"])
    assert out.loc["outside", "valid_fraction"] == 0.0
    assert out.loc["half_out", "builtup_fraction"] == pytest.approx(0.5)
    assert out.loc["half_out", "valid_fraction"] == pytest.approx(0.5)
    assert out.loc["half_out", "builtup_m2"] == pytest.approx(100.0)
    assert out.loc["half_nodata", "builtup_fraction"] == pytest.approx(1.0)
    assert out.loc["half_nodata", "valid_fraction"] == pytest.approx(0.5)
    assert out.loc["half_nodata", "builtup_m2"] == pytest.approx(100.0)


def test_parcels_in_another_crs_are_reprojected(raster: Raster) -> None:
    local = parcels({"A": box(0, 0, 20, 20), "B": box(5, 0, 20, 20)})
    geographic = local.to_crs(4490)
    assert geographic.crs.equals(CRS.from_epsg(4490))
    out = builtup_fraction(geographic, raster)
    assert out.loc["A", "builtup_fraction"] == pytest.approx(0.75, abs=1e-6)
    assert out.loc["B", "builtup_fraction"] == pytest.approx(2 / 3, abs=1e-6)
    assert out.loc["B", "builtup_m2"] == pytest.approx(200.0, abs=1e-3)
    assert out["valid_fraction"].tolist() == pytest.approx([1.0, 1.0], abs=1e-6)


def test_index_order_and_missing_geometries(raster: Raster) -> None:
    geoms = parcels({"z": box(0, 0, 20, 20), "none": None, "empty": shapely.Polygon(), "a": box(33, 3, 35, 5)})
    out = builtup_fraction(geoms, raster)
    assert out.index.tolist() == ["z", "none", "empty", "a"]
    assert out.index.name == "parcel_id"
    assert out["builtup_fraction"].tolist()[0] == pytest.approx(0.75)
    assert out.loc[["none", "empty"]].isna().all().all()
    assert out.loc["a", "builtup_fraction"] == pytest.approx(0.0, abs=1e-12)


def test_builtup_values_select_the_class(raster: Raster) -> None:
    out = builtup_fraction(parcels({"A": box(0, 0, 20, 20)}), raster, builtup_values=(0,))
    assert out.loc["A", "builtup_fraction"] == pytest.approx(0.25)
    assert out.loc["A", "builtup_m2"] == pytest.approx(100.0)


def test_float_raster_with_nan_nodata() -> None:
    values = GRID.astype(np.float32)
    values[GRID == 255] = np.nan
    r = Raster(values=values, transform=from_origin(X0, TOP, 10, 10), crs=CRS.from_epsg(4549), nodata=float("nan"))
    out = builtup_fraction(parcels({"half_nodata": box(10, 30, 30, 40), "A": box(0, 0, 20, 20)}), r)
    assert out["builtup_fraction"].tolist() == pytest.approx([1.0, 0.75])
    assert out["valid_fraction"].tolist() == pytest.approx([0.5, 1.0])


def test_south_up_raster_is_read_the_right_way_round(raster: Raster) -> None:
    flipped = Raster(values=GRID[::-1].copy(), transform=Affine(10, 0, X0, 0, 10, TOP - 40), crs=raster.crs, nodata=255)
    geoms = parcels({"A": box(0, 0, 20, 20), "B": box(5, 0, 20, 20), "nodata": box(12, 32, 18, 38)})
    pd.testing.assert_frame_equal(builtup_fraction(geoms, flipped), builtup_fraction(geoms, raster))


def test_matches_clipping_every_pixel(raster: Raster) -> None:
    rng = np.random.default_rng(7)
    geoms = {}
    for k in range(25):
        cx, cy = rng.uniform(-5, 45, 2)
        pts = [(X0 + cx + dx, TOP - cy + dy) for dx, dy in rng.normal(0, 8, (5, 2))]
        geoms[f"p{k}"] = shapely.convex_hull(shapely.MultiPoint(pts))
    out = builtup_fraction(parcels(geoms), raster)
    for key, geom in geoms.items():
        valid, built = shapely_coverage(geom, GRID, raster.transform)
        # no valid pixel under the parcel: no fraction and no built-up area (NaN), a valid share of 0
        fraction, built_m2 = (built / valid, built) if valid > 0 else (math.nan, math.nan)
        assert out.loc[key, "builtup_fraction"] == pytest.approx(fraction, abs=1e-5, nan_ok=True)
        assert out.loc[key, "valid_fraction"] == pytest.approx(valid / geom.area, abs=1e-5)
        assert out.loc[key, "builtup_m2"] == pytest.approx(built_m2, abs=1e-3, nan_ok=True)


def test_geographic_raster_gives_square_metres() -> None:
    # 0.0001° pixels in EPSG:4490 at 34.6°N; parcel = pixels (0,0) = 1 and (0,1) = 1 and (1,0) = 1,
    # (1,1) = 0 → 3 of 4 built; builtup_m2 ≈ three geodesic cell areas
    lon0, lat0, d = 119.2, 34.6, 0.0001
    r = Raster(values=GRID.copy(), transform=from_origin(lon0, lat0, d, d), crs=CRS.from_epsg(4490), nodata=255)
    g = gpd.GeoSeries([shapely.box(lon0, lat0 - 2 * d, lon0 + 2 * d, lat0)], index=["A"], crs=4490)
    out = builtup_fraction(g, r)
    cell_m2 = abs(Geod(ellps="GRS80").geometry_area_perimeter(shapely.box(lon0, lat0 - d, lon0 + d, lat0))[0])
    assert out.loc["A", "builtup_fraction"] == pytest.approx(0.75)
    assert out.loc["A", "valid_fraction"] == pytest.approx(1.0)
    assert out.loc["A", "builtup_m2"] == pytest.approx(3 * cell_m2, rel=0.01)


def test_on_the_sample_park() -> None:
    geoms = gpd.read_file(LAYER.parents[1] / "sample_parcels" / "2025" / "parcels.gpkg").geometry
    out = builtup_fraction(geoms, read_raster(LAYER))
    # layers/README.md: median 48 %, 38 parcels below 10 %
    assert out["builtup_fraction"].median() == pytest.approx(0.48, abs=0.01)
    assert int((out["builtup_fraction"] < 0.1).sum()) == 38
    assert out["valid_fraction"].min() > 0.99


def test_raster_checks_its_inputs() -> None:
    with pytest.raises(DatasetError, match="二维"):
        Raster(values=np.zeros((1, 2, 2)), transform=from_origin(0, 0, 1, 1), crs=CRS.from_epsg(4549))
    with pytest.raises(DatasetError, match="旋转"):
        Raster(values=np.zeros((2, 2)), transform=Affine(1, 0.5, 0, 0, -1, 0), crs=CRS.from_epsg(4549))


def test_parcels_without_crs_are_refused(raster: Raster) -> None:
    with pytest.raises(DatasetError, match="坐标参考系"):
        builtup_fraction(gpd.GeoSeries([box(0, 0, 20, 20)]), raster)


# --- read_raster ------------------------------------------------------------------------------------


def write_tif(path: Path, *, crs: int | None = 4549, georeferenced: bool = True) -> Path:
    profile: dict[str, object] = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "uint8"}
    if georeferenced:
        profile["transform"] = from_origin(X0, TOP, 10, 10)
    with rasterio.open(path, "w", crs=crs, nodata=255, **profile) as ds:
        ds.write(GRID, 1)
    return path


def test_read_raster_round_trip(tmp_path: Path) -> None:
    r = read_raster(write_tif(tmp_path / "b.tif"))
    np.testing.assert_array_equal(r.values, GRID)
    assert r.transform == from_origin(X0, TOP, 10, 10)
    assert r.crs.to_epsg() == 4549
    assert r.nodata == 255
    out = builtup_fraction(parcels({"B": box(5, 0, 20, 20)}), r)
    assert out.loc["B", "builtup_fraction"] == pytest.approx(2 / 3)


def test_read_the_sample_layer() -> None:
    r = read_raster(LAYER)
    assert r.shape == (2237, 2700)
    assert r.values.dtype == np.uint8
    assert r.crs.to_epsg() == 4528
    assert r.nodata == 255
    assert (r.transform.a, r.transform.e) == (10.0, -10.0)
    # layers/README.md: 98,984 built-up pixels, 224,752 nodata
    assert int((r.values == 1).sum()) == 98_984
    assert int((r.values == 255).sum()) == 224_752


def test_read_raster_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.tif"
    with pytest.raises(InputFileError, match="找不到栅格文件") as exc:
        read_raster(path)
    assert "nope.tif" in str(exc.value)
    assert isinstance(exc.value, OSError)


def test_read_raster_not_a_raster(tmp_path: Path) -> None:
    path = tmp_path / "notes.tif"
    path.write_text("not a raster", encoding="utf-8")
    with pytest.raises(InputFileError, match=r"无法读取栅格文件 .*notes\.tif"):
        read_raster(path)


def test_read_raster_without_crs(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "nocrs.tif", crs=None)
    with pytest.raises(InputFileError, match=r"nocrs\.tif 没有坐标参考系"):
        read_raster(path)


def test_read_raster_without_georeferencing(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        path = write_tif(tmp_path / "plain.tif", georeferenced=False)
    with pytest.raises(InputFileError, match="没有地理参照"):
        read_raster(path)


def test_read_raster_missing_band(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="没有第 2 波段"):
        read_raster(write_tif(tmp_path / "b.tif"), band=2)

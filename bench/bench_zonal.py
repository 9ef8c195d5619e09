"""Zonal statistics for the built-up evidence: geo-eval's ``builtup_fraction`` against the alternatives.

    python -m bench.bench_zonal --n 100000 [--skip-slow] [--seed 0]

Builds ``N`` synthetic parcels over a synthetic 10 m built-up raster (EPSG:4549, uint8, 1 built-up,
0 not, 255 nodata for a "sea" strip on the east side) and times, each on the same inputs:

- ``builtup_fraction``: geo-eval (raster in memory, WKB features, array writer);
- the bare exactextract call that ``builtup_fraction`` wraps (NumPy raster, WKB features, array
  writer, on the raw 0/1/255 grid): the floor of that approach;
- exactextract with the raster in memory but its GeoDataFrame feature source (GeoJSON) and pandas
  output, and with WKB features but pandas output (``--skip-slow`` drops these two);
- exactextract's default file-based set-up: ``exact_extract(tif_path, gdf, ["count", "sum"],
  output="pandas")`` (rasterio reads windows of the GeoTIFF; ``--skip-slow`` drops it);
- rasterize-ids + ``numpy.bincount``: burn parcel ids at pixel centres, count pixels per id.

Parcels sit one per 120 m slot (no overlaps, so rasterize-ids is not penalised for them): 20 % smaller
than a pixel (2–9 m sides), 30 % small (10–40 m), 50 % typical (40–110 m); a third are rotated. The
rasterize-ids error is measured against the exact fractions per size class. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from affine import Affine
from exactextract import Operation, exact_extract
from exactextract.raster import NumPyRasterSource
from pyproj import CRS
from rasterio import features

from geo_eval.io.raster import read_raster
from geo_eval.landuse.evidence import Raster, _ArrayWriter, _WkbFeatureSource, builtup_fraction

PIXEL = 10.0
SLOT = 120.0  # one parcel per slot of 120 m × 120 m
X0, Y0 = 480_000.0, 3_800_000.0  # south-west corner, EPSG:4549 around 119.8°E 34.3°N
CRS_EPSG = 4549
SIZE_CLASSES = ("sub-pixel", "small", "typical")


def _peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def make_raster(n: int, rng: np.random.Generator) -> Raster:
    """A built-up grid covering the parcel slots: 40 m blocks 35 % built-up, the east 3 % nodata."""
    side = int(np.ceil(np.sqrt(n)))
    width = int(side * SLOT / PIXEL)
    blocks = rng.random((width // 4 + 1, width // 4 + 1)) < 0.35
    values = np.repeat(np.repeat(blocks, 4, axis=0), 4, axis=1)[:width, :width].astype(np.uint8)
    values[:, int(width * 0.97) :] = 255
    transform = Affine(PIXEL, 0.0, X0, 0.0, -PIXEL, Y0 + width * PIXEL)
    return Raster(values=values, transform=transform, crs=CRS.from_epsg(CRS_EPSG), nodata=255)


def make_parcels(n: int, rng: np.random.Generator) -> tuple[gpd.GeoSeries, np.ndarray]:
    """``n`` rectangles (a third rotated), one per slot, and their size class (0, 1, 2)."""
    side = int(np.ceil(np.sqrt(n)))
    i = np.arange(n)
    cx = X0 + (i % side + 0.5) * SLOT + rng.uniform(-3, 3, n)
    cy = Y0 + (i // side + 0.5) * SLOT + rng.uniform(-3, 3, n)
    u = rng.random(n)
    size_class = np.where(u < 0.2, 0, np.where(u < 0.5, 1, 2))
    lo = np.array([2.0, 10.0, 40.0])[size_class]
    hi = np.array([9.0, 40.0, 110.0])[size_class]
    w = rng.uniform(lo, hi)
    h = rng.uniform(lo, hi)
    angle = np.where(rng.random(n) < 1 / 3, rng.uniform(0, np.pi / 2, n), 0.0)
    corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5], [-0.5, -0.5]])
    dx = corners[None, :, 0] * w[:, None]
    dy = corners[None, :, 1] * h[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    coords = np.stack([cx[:, None] + dx * cos - dy * sin, cy[:, None] + dx * sin + dy * cos], axis=-1)
    geoms = shapely.polygons(coords)
    index = pd.Index([f"P{k:07d}" for k in range(n)], name="parcel_id")
    return gpd.GeoSeries(geoms, index=index, crs=CRS_EPSG), size_class


def write_tif(raster: Raster, path: Path) -> None:
    rows, cols = raster.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=cols,
        height=rows,
        count=1,
        dtype="uint8",
        crs=f"EPSG:{CRS_EPSG}",
        transform=raster.transform,
        nodata=255,
        tiled=True,
        blockxsize=256,
        blockysize=256,
        compress="deflate",
        predictor=2,
    ) as ds:
        ds.write(raster.values, 1)


# --- the methods ------------------------------------------------------------------------------------


def _fractions(valid: np.ndarray, built: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(valid > 0, built / valid, np.nan)


def run_geo_eval(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    return builtup_fraction(geoms, raster)["builtup_fraction"].to_numpy()


def _numpy_source(raster: Raster) -> NumPyRasterSource:
    xmin, ymin, xmax, ymax = raster.bounds
    return NumPyRasterSource(raster.values, xmin, ymin, xmax, ymax, nodata=255, srs_wkt=raster.crs.to_wkt())


def run_bare_exactextract(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    src = _numpy_source(raster)
    writer = _ArrayWriter(["valid", "built"])
    ops = [Operation("count", "valid", src), Operation("sum", "built", src)]
    wkb = shapely.to_wkb(np.asarray(geoms.array, dtype=object))
    exact_extract(src, _WkbFeatureSource(wkb, raster.crs.to_wkt()), ops, output=writer)
    out = writer.arrays()
    return _fractions(out["valid"], out["built"])


def run_numpy_gdf_pandas(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    gdf = gpd.GeoDataFrame(geometry=geoms.reset_index(drop=True))
    df = exact_extract(_numpy_source(raster), gdf, ["count", "sum"], output="pandas")
    return _fractions(df["count"].to_numpy(float), df["sum"].to_numpy(float))


def run_numpy_wkb_pandas(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    wkb = shapely.to_wkb(np.asarray(geoms.array, dtype=object))
    df = exact_extract(
        _numpy_source(raster), _WkbFeatureSource(wkb, raster.crs.to_wkt()), ["count", "sum"], output="pandas"
    )
    return _fractions(df["count"].to_numpy(float), df["sum"].to_numpy(float))


def run_file_default(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    gdf = gpd.GeoDataFrame(geometry=geoms.reset_index(drop=True))
    df = exact_extract(str(tif), gdf, ["count", "sum"], output="pandas")
    return _fractions(df["count"].to_numpy(float), df["sum"].to_numpy(float))


def run_rasterize_bincount(geoms: gpd.GeoSeries, raster: Raster, tif: Path) -> np.ndarray:
    n = len(geoms)
    ids = features.rasterize(
        zip(np.asarray(geoms.array, dtype=object), range(1, n + 1), strict=True),
        out_shape=raster.shape,
        transform=raster.transform,
        fill=0,
        dtype="int32",
    )
    v = raster.values
    valid = v != 255
    pid = ids[valid]
    count = np.bincount(pid, minlength=n + 1)[1:]
    built = np.bincount(pid, weights=(v[valid] == 1), minlength=n + 1)[1:]
    return _fractions(count.astype(float), built)


METHODS: list[tuple[str, str, bool, bool, Callable[[gpd.GeoSeries, Raster, Path], np.ndarray]]] = [
    # key, label, exact, slow
    ("geo_eval", "`builtup_fraction` (geo-eval: NumPy raster, WKB, array writer)", True, False, run_geo_eval),
    ("bare", "exactextract bare: NumPy raster, WKB, array writer", True, False, run_bare_exactextract),
    ("numpy_wkb_pandas", "exactextract: NumPy raster, WKB, pandas output", True, True, run_numpy_wkb_pandas),
    ("numpy_gdf_pandas", "exactextract: NumPy raster, GeoDataFrame, pandas output", True, True, run_numpy_gdf_pandas),
    ("file_default", "exactextract default: GeoTIFF path, GeoDataFrame, pandas", True, True, run_file_default),
    ("rasterize", "rasterize-ids + `numpy.bincount` (pixel centres)", False, False, run_rasterize_bincount),
]


def error_table(approx: np.ndarray, exact: np.ndarray, size_class: np.ndarray) -> list[str]:
    rows = [
        "| size class | parcels | exact NaN | missed (no pixel centre) | mean abs error | abs error > 0.1 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for k, name in enumerate(SIZE_CLASSES):
        sel = size_class == k
        ex, ap = exact[sel], approx[sel]
        has = ~np.isnan(ex)
        missed = has & np.isnan(ap)
        both = has & ~np.isnan(ap)
        err = np.abs(ap[both] - ex[both])
        rows.append(
            f"| {name} | {sel.sum():,} | {int((~has).sum()):,} | {int(missed.sum()):,} ({missed.sum() / max(has.sum(), 1):.1%}) "
            f"| {err.mean() if err.size else float('nan'):.4f} | {int((err > 0.1).sum()):,} ({(err > 0.1).sum() / max(has.sum(), 1):.1%}) |"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000, help="number of parcels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-slow", action="store_true", help="skip the pandas-output and file-based set-ups")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    t = time.perf_counter()
    raster = make_raster(args.n, rng)
    geoms, size_class = make_parcels(args.n, rng)
    print(
        f"{args.n:,} parcels over a {raster.shape[1]:,} × {raster.shape[0]:,} raster of 10 m "
        f"({raster.values.size / 1e6:.0f} M pixels); built in {time.perf_counter() - t:.1f} s",
        file=sys.stderr,
    )

    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tif = Path(tmp) / "builtup.tif"
        write_tif(raster, tif)
        t = time.perf_counter()
        read_raster(tif)
        read_s = time.perf_counter() - t
        for key, label, exact, slow, fn in METHODS:
            if slow and args.skip_slow:
                continue
            print(f"running {key} …", file=sys.stderr)
            t = time.perf_counter()
            values = fn(geoms, raster, tif)
            seconds = time.perf_counter() - t
            results[key] = {"label": label, "exact": exact, "seconds": seconds, "values": values}
            print(f"  {seconds:.2f} s", file=sys.stderr)

    reference = results["geo_eval"]["values"]
    fastest_exact = min(r["seconds"] for r in results.values() if r["exact"])
    print(f"\n### Zonal statistics, {args.n:,} parcels\n")
    print(f"`read_raster` of the {tif.name} (deflate, 256² tiles) into memory: {read_s:.2f} s (not included below).\n")
    print("| method | exact | s | s per 1M parcels | × fastest exact | max abs diff to geo-eval |")
    print("|---|---|---:|---:|---:|---:|")
    for r in results.values():
        diff = np.abs(r["values"] - reference)
        both = ~np.isnan(r["values"]) & ~np.isnan(reference)
        nan_mismatch = int((np.isnan(r["values"]) != np.isnan(reference)).sum())
        diff_s = f"{diff[both].max():.1e}" if both.any() else "–"
        if nan_mismatch:
            diff_s += f" ({nan_mismatch:,} NaN mismatches)"
        print(
            f"| {r['label']} | {'yes' if r['exact'] else 'no'} | {r['seconds']:.2f} "
            f"| {r['seconds'] / args.n * 1e6:.1f} | {r['seconds'] / fastest_exact:.2f} | {diff_s} |"
        )
    if "rasterize" in results:
        print("\n### rasterize-ids + bincount against the exact fractions\n")
        print("\n".join(error_table(results["rasterize"]["values"], reference, size_class)))
    print(f"\nPeak RSS {_peak_gb():.1f} GB.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

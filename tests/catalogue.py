"""A catalogue of small hand-made parcels and enterprises with hand-computed figures.

All parcels are axis-aligned rectangles in EPSG:4549 (CGCS2000 3° GK, central meridian 120°E, no
zone prefix), so their planar areas are exact: width × height. 1 亩 = 2000/3 m², so 20 000 m² is
exactly 30 亩 and 10 000 m² exactly 15 亩.

Layout (origin x0, y0; metres):

====  ===============  =========  ======  =======================================
id    rectangle        m²         亩      holder / note
====  ===============  =========  ======  =======================================
P1    200 × 100        20 000     30      E1
P2    100 × 100        10 000     15      E2; leases 3 000 m² of land to E3
P3    150 × 100        15 000     22.5    E4; floor 30 000 m² (plot ratio 2.0);
                                          leases 6 000 m² of floor to E5
P4    100 × 60         6 000      9       E6 (规下)
P5    40 × 50          2 000      3       E7 (规下, exactly 3 亩)
P6    30 × 50          1 500      2.25    E8 (规下, under 3 亩: out of scope)
P7    100 × 100        10 000     15      E9 (utility, T)
P8    100 × 100        10 000     15      nobody (state land)
====  ===============  =========  ======  =======================================
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
from shapely.geometry import box
from uscc_reference import make_uscc  # written from the standard, not geo_eval.inputs.uscc

X0, Y0 = 436_000.0, 3_830_000.0
CRS = "EPSG:4549"


E = {i: make_uscc(10_000 + i) for i in range(1, 20)}

RECTS = {
    "P1": (0, 0, 200, 100),
    "P2": (0, 130, 100, 230),
    "P3": (130, 130, 280, 230),
    "P4": (0, 260, 100, 320),
    "P5": (130, 260, 170, 310),
    "P6": (200, 260, 230, 310),
    "P7": (300, 0, 400, 100),
    "P8": (300, 130, 400, 230),
}
HOLDERS = {"P1": 1, "P2": 2, "P3": 4, "P4": 6, "P5": 7, "P6": 8, "P7": 9, "P8": None}


def parcels() -> gpd.GeoDataFrame:
    """The catalogue's parcels with canonical column names."""
    rows = []
    for pid, (x1, y1, x2, y2) in RECTS.items():
        h = HOLDERS[pid]
        rows.append(
            {
                "parcel_id": pid,
                "holder_uscc": E[h] if h else None,
                "county": "海滨区",
                "park": "海滨高新技术产业园",
                "land_use": "工业用地",
                "registered_area_m2": float((x2 - x1) * (y2 - y1)),
                "floor_area_m2": 30_000.0 if pid == "P3" else float((x2 - x1) * (y2 - y1)),
                "footprint_area_m2": float((x2 - x1) * (y2 - y1)) * 0.5,
                "geometry": box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2),
            }
        )
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)


def enterprises() -> pd.DataFrame:
    """The catalogue's enterprises (canonical columns)."""
    base = {"county": "海滨区", "park": "海滨高新技术产业园", "production_start": "2015-01-01", "exempt_reason": ""}
    rows = [
        # tax per 亩 = 600 / 30 = 20; sales 6000 → 200 per 亩; energy 300 → tax/energy 2
        {
            "uscc": E[1],
            "name": "甲公司",
            "industry_code": "C3360",
            "above_scale": "是",
            "tax": 600,
            "sales": 6000,
            "energy_tce": 300,
        },
        # land 15 − 4.5 = 10.5 亩
        {
            "uscc": E[2],
            "name": "乙公司",
            "industry_code": "C2614",
            "above_scale": "是",
            "tax": 210,
            "sales": 2100,
            "energy_tce": 105,
        },
        # lessee-only: 3000 m² = 4.5 亩
        {
            "uscc": E[3],
            "name": "丙公司",
            "industry_code": "C3311",
            "above_scale": "是",
            "tax": 90,
            "sales": 900,
            "energy_tce": 45,
        },
        # land 22.5 − 4.5 = 18 亩 (floor lease 6000 / plot ratio 2 = 3000 m²)
        {
            "uscc": E[4],
            "name": "丁公司",
            "industry_code": "C3911",
            "above_scale": "是",
            "tax": 360,
            "sales": 3600,
            "energy_tce": 180,
        },
        {
            "uscc": E[5],
            "name": "戊公司",
            "industry_code": "C3911",
            "above_scale": "否",
            "tax": 45,
            "sales": 450,
            "energy_tce": 20,
        },
        {
            "uscc": E[6],
            "name": "己公司",
            "industry_code": "C1391",
            "above_scale": "否",
            "tax": 90,
            "sales": 900,
            "energy_tce": 30,
        },
        {
            "uscc": E[7],
            "name": "庚公司",
            "industry_code": "C1391",
            "above_scale": "否",
            "tax": 15,
            "sales": 150,
            "energy_tce": 10,
        },
        {
            "uscc": E[8],
            "name": "辛公司",
            "industry_code": "C1391",
            "above_scale": "否",
            "tax": 10,
            "sales": 100,
            "energy_tce": 5,
        },
        {
            "uscc": E[9],
            "name": "壬供电公司",
            "industry_code": "D4420",
            "above_scale": "是",
            "tax": 500,
            "sales": 9000,
            "energy_tce": 100,
        },
    ]
    df = pd.DataFrame([{**base, **r} for r in rows])
    for c in ("value_added", "main_revenue", "rnd", "electricity_10k_kwh", "emission_t", "employees"):
        df[c] = pd.NA
    df["main_revenue"] = df["sales"]
    df["safety_veto"] = "否"
    df["environment_veto"] = "否"
    return df


def leases() -> pd.DataFrame:
    """The catalogue's leases."""
    return pd.DataFrame(
        [
            {"lessee_uscc": E[3], "parcel_id": "P2", "leased_land_m2": 3000.0, "leased_floor_m2": None},
            {"lessee_uscc": E[5], "parcel_id": "P3", "leased_land_m2": None, "leased_floor_m2": 6000.0},
        ]
    )


def write_dataset(
    root: Path,
    *,
    parcels_gdf: gpd.GeoDataFrame | None = None,
    enterprises_df: pd.DataFrame | None = None,
    leases_df: pd.DataFrame | None = None,
    year: int = 2025,
    parcels_name: str = "parcels.gpkg",
    enterprises_name: str = "enterprises.csv",
    extra_toml: str = "",
) -> Path:
    """Write a dataset directory (GeoPackage parcels, csv tables, dataset.toml) and return it."""
    root.mkdir(parents=True, exist_ok=True)
    p = parcels() if parcels_gdf is None else parcels_gdf
    e = enterprises() if enterprises_df is None else enterprises_df
    leases_frame = leases() if leases_df is None else leases_df
    if parcels_name.endswith(".gpkg"):
        p.to_file(root / parcels_name, layer="parcels", driver="GPKG")
    elif parcels_name.endswith(".geojson"):
        p.to_file(root / parcels_name, driver="GeoJSON")
    else:
        p.to_file(root / parcels_name)
    if enterprises_name.endswith(".csv"):
        e.to_csv(root / enterprises_name, index=False, encoding="utf-8-sig")
    else:
        e.to_excel(root / enterprises_name, index=False)
    leases_frame.to_csv(root / "leases.csv", index=False, encoding="utf-8-sig")
    (root / "dataset.toml").write_text(
        f'year = {year}\nevaluation_date = "{year + 1}-03-31"\n{extra_toml}\n'
        f'[parcels]\npath = "{parcels_name}"\n\n'
        f'[enterprises]\npath = "{enterprises_name}"\n\n'
        '[leases]\npath = "leases.csv"\n',
        encoding="utf-8",
    )
    return root

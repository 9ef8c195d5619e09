#!/usr/bin/env python
"""Check the generated sample data set and layers; exits non-zero when a check fails.

.venv/bin/python sample_parcels/check_sample.py
"""

from __future__ import annotations

import sys
import tomllib
from collections import Counter
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import rasterio
import shapely
from pyproj import Transformer

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
from geo_eval.inputs.uscc import uscc_problems  # noqa: E402

MU = 2000 / 3
failures: list[str] = []


def check(ok: bool, msg: str) -> None:
    print(("ok   " if ok else "FAIL ") + msg)
    if not ok:
        failures.append(msg)


def components(ids: list[str], edges: list[tuple[str, str]]) -> list[set[str]]:
    parent = {i: i for i in ids}

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges:
        parent[find(a)] = find(b)
    groups: dict[str, set[str]] = {}
    for i in ids:
        groups.setdefault(find(i), set()).add(i)
    return list(groups.values())


def main() -> int:
    flags = pd.read_csv(HERE / "expected_flags.csv", dtype=str)
    eodd = pd.read_csv(HERE / "expected_enterprises.csv", dtype=str)
    to_ll = Transformer.from_crs("EPSG:4528", "EPSG:4490", always_xy=True)
    parks = gpd.read_file(ROOT / "layers/parks.gpkg")
    counties = gpd.read_file(ROOT / "layers/counties.gpkg")
    check(parks.crs.to_epsg() == 4528 and counties.crs.to_epsg() == 4528, "layers are EPSG:4528")
    check(set(parks.columns) >= {"园区", "县区"} and set(counties.columns) >= {"县区", "县区代码"}, "layer fields")
    for _, pk in parks.iterrows():
        cty = counties.loc[counties["县区"] == pk["县区"]].geometry.iloc[0]
        check(cty.contains(pk.geometry), f"park {pk['园区']} inside {pk['县区']}")

    for year in (2024, 2025):
        d = HERE / str(year)
        cfg = tomllib.loads((d / "dataset.toml").read_text(encoding="utf-8"))
        check(cfg["year"] == year and cfg["parcels"]["layer"] == "parcels", f"{year} dataset.toml")
        print(f"--- {year} (evaluation_date {cfg['evaluation_date']})")
        # ---------------- parcels
        info = pyogrio.read_info(d / "parcels.gpkg", layer="parcels")
        g = gpd.read_file(d / "parcels.gpkg", layer="parcels")
        check(g.crs is not None and g.crs.to_epsg() == 4528, f"parcels CRS {g.crs.to_string()}")
        check(700 <= len(g) <= 900, f"{len(g)} parcels")
        x0, y0, x1, y1 = g.total_bounds
        lon0, lat0 = to_ll.transform(x0, y0)
        lon1, lat1 = to_ll.transform(x1, y1)
        check(40_400_000 < x0 < x1 < 40_500_000, f"eastings carry the zone prefix: {x0:.0f}–{x1:.0f}")
        check(
            lon0 >= 119.15 and lon1 <= 119.45 and lat0 >= 34.55 and lat1 <= 34.75,
            f"extent lon {lon0:.3f}–{lon1:.3f}, lat {lat0:.3f}–{lat1:.3f}",
        )
        check(
            g["宗地代码"].str.fullmatch(r"32079[89]\d{6}GB\d{5}").all() and g["宗地代码"].is_unique,
            "宗地代码: 19 characters, unique",
        )
        date_types = {f: t for f, t in zip(info["fields"], info["ogr_types"], strict=False) if "日期" in f}
        print(f"     date fields stored as {sorted(set(date_types.values()))}")
        invalid = g.loc[~g.is_valid, "宗地代码"].tolist()
        exp_invalid = flags[(flags["year"] == str(year)) & (flags["flag"] == "invalid_geometry")]["parcel_id"].tolist()
        check(
            sorted(invalid) == sorted(exp_invalid) and 1 <= len(invalid) <= 2,
            f"invalid geometries = deliberate bow-ties {invalid}",
        )
        repaired = shapely.make_valid(g.geometry.values)
        check(bool(shapely.is_valid(repaired).all()), "make_valid repairs them")
        valid = g[g.is_valid].reset_index(drop=True)
        check(
            bool(shapely.coverage_is_valid(valid.geometry.values)),
            "coverage_is_valid: no overlaps, neighbours share edges vertex for vertex",
        )
        tree = shapely.STRtree(valid.geometry.values)
        a, b = tree.query(valid.geometry.values, predicate="intersects")
        keep = a < b
        a, b = a[keep], b[keep]
        inter = shapely.intersection(valid.geometry.values[a], valid.geometry.values[b])
        kinds = Counter(shapely.get_type_id(inter).tolist())
        lengths = shapely.length(inter)
        areas = shapely.area(inter)
        line_pairs = int((lengths > 0.5).sum())
        check(float(areas.max()) < 1e-3, f"no overlaps (max pairwise overlap {areas.max():.2e} m²)")
        check(
            line_pairs > len(g),
            f"{line_pairs} neighbour pairs meet along a line "
            f"(intersection types {dict(sorted(kinds.items()))}: 1 Point, 2 LineString, 5 MultiLineString, 7 collection)",
        )
        area = shapely.area(repaired)
        mu = area / MU
        print(
            f"     sizes: median {np.median(mu):.1f} 亩, {(mu < 3).sum()} < 3 亩, {(mu > 150).sum()} > 150 亩, max {mu.max():.0f}"
        )
        diff = (g["登记面积"] - area).abs() / area
        check(
            ((diff > 0.05).sum() == 6) and ((diff > 0.005) & (diff <= 0.05)).sum() == 0,
            f"登记面积: {(diff <= 0.005).sum()} within 0.5 %, {(diff > 0.05).sum()} off by > 5 %",
        )
        bow = g["宗地代码"].isin(invalid)
        print(
            f"     bow-tie area vs registered: {((g.loc[bow, '登记面积'] - area[bow.to_numpy()]) / area[bow.to_numpy()]).round(4).tolist()}"
        )
        check(g["土地用途"].isin(["工业用地", "仓储用地"]).all(), f"土地用途 {dict(g['土地用途'].value_counts())}")
        check(
            ((g["已开发面积比例"].dropna().between(0, 1)) & True).all()
            and g["已投资比例"].dropna().between(0, 1).all(),
            "ratios within 0–1",
        )
        causes = set(g["政府原因延迟"].dropna())
        allowed = {
            "land_not_delivered",
            "plan_change",
            "policy_change",
            "petition",
            "military_heritage",
            "other_government",
            "force_majeure",
            "未按约定交付土地",
            "规划调整",
            "国家政策调整",
            "信访",
            "军事管制或文物保护",
            "其他政府原因",
            "不可抗力",
        }
        check(causes <= allowed, f"政府原因延迟 values {sorted(causes)}")
        # parcels inside parks and their county
        joined = gpd.sjoin(g.assign(geometry=g.representative_point()), parks, predicate="within", how="left")
        check(bool((joined["园区_left"] == joined["园区_right"]).all()), "every parcel lies inside its park polygon")
        # ---------------- enterprises
        wb = openpyxl.load_workbook(d / "enterprises.xlsx")
        ws = wb["企业数据"]
        merged = [str(r) for r in ws.merged_cells.ranges]
        check(merged == ["A1:U1"], f"merged title {merged}: {ws['A1'].value}")
        headers = [c.value for c in ws[2]]
        check(headers[0] == "统一社会信用代码" and headers[8] == "税收（万元）" and len(headers) == 21, "header row 2")
        numeric_ok = all(
            isinstance(ws.cell(r, c).value, (int, float)) or ws.cell(r, c).value is None
            for r in range(3, ws.max_row + 1)
            for c in range(9, 18)
        )
        check(numeric_ok, "figures are numeric cells")
        e = pd.read_excel(d / "enterprises.xlsx", sheet_name="企业数据", header=1, dtype={"统一社会信用代码": str})
        check(550 <= len(e) <= 650, f"{len(e)} enterprises; per park {dict(e.groupby(['县区', '园区']).size())}")
        check(
            bool(((e["主营业务收入（万元）"] >= 2000) == (e["是否规上"] == "是")).all()),
            "是否规上 ⇔ 主营业务收入 ≥ 2000",
        )
        check(e["行业代码"].str.fullmatch(r"[A-Z]\d{4}").all(), "行业代码 letter + 4 digits")
        nblank = e.loc[e["是否规上"] == "是", "主要污染物排放量（吨）"].isna().sum()
        print(
            f"     规上 {int((e['是否规上'] == '是').sum())}, 规下 {int((e['是否规上'] == '否').sum())}, "
            f"blank emission among 规上 {nblank}, safety veto {int((e['安全生产否决'] == '是').sum())}, "
            f"env veto {int((e['环保否决'] == '是').sum())}, 不参评原因 {int(e['不参评原因'].notna().sum())}, "
            f"zero tax {int((e['税收（万元）'] == 0).sum())}"
        )
        # ---------------- USCC
        prob = uscc_problems(e["统一社会信用代码"])
        bad = sorted(e.loc[prob != "", "统一社会信用代码"])
        exp_bad = sorted(eodd[(eodd["year"] == str(year)) & (eodd["oddity"] == "invalid_uscc")]["uscc"])
        check(
            bad == exp_bad and len(bad) == 3,
            f"invalid USCCs are exactly the deliberate ones: {dict(zip(bad, prob[prob != ''].tolist(), strict=False))}",
        )
        hp = uscc_problems(g["权利人统一社会信用代码"])
        hbad = set(g.loc[(hp != "") & g["权利人统一社会信用代码"].notna(), "权利人统一社会信用代码"])
        check(hbad <= set(exp_bad), "parcel holder USCCs valid except the deliberate ones")
        # ---------------- leases
        raw = (d / "leases.csv").read_bytes()
        check(raw.startswith(b"\xef\xbb\xbf"), "leases.csv has a UTF-8 BOM")
        ls = pd.read_csv(d / "leases.csv", encoding="utf-8-sig", dtype={"承租方统一社会信用代码": str, "宗地代码": str})
        one = ls["租赁土地面积（平方米）"].notna() ^ ls["租赁厂房面积（平方米）"].notna()
        check(bool(one.all()), f"{len(ls)} leases, each with land or floor area, not both")
        check(ls["宗地代码"].isin(g["宗地代码"]).all(), "lease parcels exist")
        check(ls["承租方统一社会信用代码"].isin(e["统一社会信用代码"]).all(), "lessees are in the enterprise table")
        lp = uscc_problems(ls["承租方统一社会信用代码"])
        check(set(ls.loc[lp != "", "承租方统一社会信用代码"]) <= set(exp_bad), "lessee USCCs valid except deliberate")
        owners = set(g["权利人统一社会信用代码"].dropna())
        lessee_only = set(e["统一社会信用代码"]) - owners
        check(
            set(ls["承租方统一社会信用代码"]) >= lessee_only,
            f"{len(lessee_only)} lessee-only enterprises, all with a lease",
        )
        # ---------------- holders
        unknown = sorted(set(g["权利人统一社会信用代码"].dropna()) - set(e["统一社会信用代码"]))
        check(len(unknown) == 3, f"holders missing from the enterprise table: {unknown}")
        nohold = int(g["权利人统一社会信用代码"].isna().sum())
        zero = set(e.loc[(e["税收（万元）"] == 0) & (e["销售收入（万元）"] == 0), "统一社会信用代码"])
        idle_ev = nohold + int(g["权利人统一社会信用代码"].isin(zero).sum())
        print(f"     parcels with no holder {nohold}, with a zero-tax-zero-sales holder {idle_ev - nohold}")
        # land per enterprise < 3 亩
        own = g.assign(mu=area / MU).groupby("权利人统一社会信用代码")["mu"].sum()
        small = e[(e["是否规上"] == "否")]
        small_mu = small["统一社会信用代码"].map(own).fillna(0) + small["统一社会信用代码"].map(
            ls.groupby("承租方统一社会信用代码")["租赁土地面积（平方米）"].sum() / MU
        ).fillna(0)
        print(
            f"     规下 with < 3 亩 of own or leased land (floor leases not counted): "
            f"{int(((small_mu > 0) & (small_mu < 3)).sum())}"
        )
        # ---------------- flagged clusters
        fy = flags[(flags["year"] == str(year)) & (flags["expect"] == "yes")]
        # the design: deliberately flagged parcels only (not the rules that need the whole evaluation)
        deliberate_low_tax = (fy["flag"] == "low_tax_per_mu") & fy["why"].str.contains("故意设置")
        fy = fy.loc[(fy["flag"] != "low_tax_per_mu") | deliberate_low_tax]
        eff = {
            "zero_output",
            "zero_tax_2y",
            "low_tax_per_mu",
            "idle_1y",
            "idle_exempt",
            "low_plot_ratio",
            "low_building_coefficient",
            "mainly_leased_out",
            "no_holder",
        }
        fl_ids = sorted(set(fy.loc[fy["flag"].isin(eff), "parcel_id"]))
        idx = {pid: i for i, pid in enumerate(valid["宗地代码"])}
        pair_ids = [
            (valid["宗地代码"][i], valid["宗地代码"][j]) for i, j, L in zip(a, b, lengths, strict=False) if L > 0.5
        ]
        fs = set(fl_ids)
        edges = [(p, q) for p, q in pair_ids if p in fs and q in fs]
        comps = components([i for i in fl_ids if i in idx], edges)
        mu_by = dict(zip(g["宗地代码"], mu, strict=False))
        big = sorted([sorted(c) for c in comps if len(c) > 1], key=len, reverse=True)
        print(
            f"     flagged parcels {len(fl_ids)}; multi-parcel groups: "
            + "; ".join(f"{len(c)} parcels {sum(mu_by[x] for x in c):.0f} 亩" for c in big)
        )
        for key in ("cluster_A", "cluster_B"):
            members = set(fy.loc[fy["flag"] == key, "parcel_id"])
            comp = [c for c in comps if members & c]
            check(
                len(comp) == 1 and comp[0] == members and sum(mu_by[x] for x in members) > 50,
                f"{key}: {len(members)} adjacent flagged parcels, {sum(mu_by[x] for x in members):.1f} 亩, "
                "a component of its own",
            )
        iso = set(fy.loc[fy["flag"] == "isolated_flagged", "parcel_id"])
        check(any(c == iso for c in comps), f"isolated flagged plot {sorted(iso)} has no flagged neighbour")
        others = [
            c for c in comps if len(c) > 1 and not (c & set(fy.loc[fy["flag"].str.startswith("cluster"), "parcel_id"]))
        ]
        check(
            all(sum(mu_by[x] for x in c) <= 50 for c in others),
            "no other group of adjacent flagged parcels exceeds 50 亩",
        )
        print(f"     expected flags {year}: {dict(sorted(Counter(fy['flag']).items()))}")

    # ---------------- raster
    with rasterio.open(ROOT / "layers/builtup_10m.tif") as src:
        prof = src.profile
        r = src.read(1)
        check(
            src.crs.to_epsg() == 4528
            and src.res == (10.0, 10.0)
            and src.nodata == 255
            and prof["dtype"] == "uint8"
            and prof.get("compress", "").lower() == "deflate"
            and prof["tiled"],
            f"raster {src.width}×{src.height}, {src.crs}, {prof.get('compress')}, tiled {prof['tiled']}",
        )
        check(set(np.unique(r).tolist()) <= {0, 1, 255}, f"raster values {np.unique(r).tolist()}")
    g = gpd.read_file(HERE / "2025/parcels.gpkg")
    from rasterio.features import rasterize

    ids = rasterize(
        ((geom, i + 1) for i, geom in enumerate(shapely.make_valid(g.geometry.values))),
        out_shape=r.shape,
        transform=prof["transform"],
        fill=0,
        dtype="int32",
    )
    n = np.bincount(ids.ravel(), weights=(r.ravel() == 1), minlength=len(g) + 1)[1:] * 100
    fp = g["建筑基底面积"].fillna(0).to_numpy()
    m = fp > 5000
    rel = np.abs(n[m] - fp[m]) / fp[m]
    check(
        float(np.median(rel)) < 0.1,
        f"built-up pixels × 100 m² vs 建筑基底面积 (parcels with > 5000 m²): "
        f"median relative error {np.median(rel):.1%}, 90th percentile {np.percentile(rel, 90):.1%}",
    )
    check(bool((n[fp == 0] == 0).all()), "no built-up pixels on parcels with no footprint")

    # ---------------- sizes
    total = sum(p.stat().st_size for p in [*HERE.rglob("*"), *(ROOT / "layers").rglob("*")] if p.is_file())
    check(total < 10_000_000, f"sample_parcels/ + layers/ total {total / 1e6:.2f} MB")
    print("\n" + ("all checks passed" if not failures else f"{len(failures)} FAILED"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

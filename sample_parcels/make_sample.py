#!/usr/bin/env python
"""Generate the fictional geo-eval sample data set (two years) and its context layers.

Run from the repository root::

    .venv/bin/python sample_parcels/make_sample.py

Everything is drawn from one seeded numpy generator (``SEED``), so a rerun rewrites every file
byte for byte (GeoPackage timestamps are pinned with ``OGR_CURRENT_DATE``, the xlsx creation date
is fixed, and no set of strings is ever iterated unsorted).

Writes
  sample_parcels/{2024,2025}/dataset.toml, parcels.gpkg, enterprises.xlsx, leases.csv
  sample_parcels/expected_flags.csv, expected_enterprises.csv, README.md
  layers/parks.gpkg, layers/counties.gpkg, layers/builtup_10m.tif, layers/README.md

All places, parks, companies and codes are invented. The counties 海滨区 (320799) and 青松县
(320798) do not exist; coordinates are placed near Lianyungang only so that the CRS logic
(CGCS2000 3-degree Gauss-Krueger zone 40, EPSG:4528) is exercised on realistic numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import itertools
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# Where the files go: the repository (default), or another root given with --out (same layout below it).
OUT_ROOT = ROOT
SAMPLE = OUT_ROOT / "sample_parcels"
LAYERS = OUT_ROOT / "layers"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import geopandas as gpd  # noqa: E402
import hand_rating  # noqa: E402  (sample_parcels/hand_rating.py: no geo_eval inside)
import pandas as pd  # noqa: E402
import pyogrio  # noqa: E402
import rasterio  # noqa: E402
import shapely  # noqa: E402
import xlsxwriter  # noqa: E402
from pyproj import Transformer  # noqa: E402
from rasterio.features import rasterize  # noqa: E402
from rasterio.transform import from_origin  # noqa: E402
from shapely.geometry import Polygon, box  # noqa: E402
from shapely.geometry.polygon import orient  # noqa: E402

from geo_eval.inputs import fields as gf  # noqa: E402
from geo_eval.inputs.uscc import ALPHABET, org_code_check_char, uscc_check_char  # noqa: E402

SEED = 20260331
MU = 2000 / 3  # m² per 亩
CRS = "EPSG:4528"
YEARS = (2024, 2025)
EVAL_DATE = {2024: dt.date(2025, 3, 31), 2025: dt.date(2026, 3, 31)}
GPKG_DATE = "2026-01-01T00:00:00Z"  # pinned gpkg_contents.last_change
XLSX_CREATED = dt.datetime(2026, 1, 1, 0, 0, 0)
SAMPLE_BOX = (119.15, 34.55, 119.45, 34.75)  # lon/lat of the sample area

rng = np.random.default_rng(SEED)
TO_GK = Transformer.from_crs("EPSG:4490", CRS, always_xy=True)


def U(a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def chance(p: float) -> bool:
    return bool(rng.random() < p)


def pick(seq, k=None):
    """Random element (or k distinct elements) of a list, deterministic."""
    if k is None:
        return seq[int(rng.integers(len(seq)))]
    idx = rng.choice(len(seq), size=k, replace=False)
    return [seq[int(i)] for i in idx]


def add_days(d: dt.date, n: float) -> dt.date:
    return d + dt.timedelta(days=round(n))


def rand_date(a: dt.date, b: dt.date) -> dt.date:
    return a + dt.timedelta(days=int(rng.integers(0, (b - a).days + 1)))


def add_years(d: dt.date, n: int) -> dt.date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


def full_years(start: dt.date, end: dt.date) -> int:
    """Number of full years from start to end (0 when end < start + 1 year)."""
    if end < start:
        return -1
    n = 0
    while add_years(start, n + 1) <= end:
        n += 1
    return n


# ---------------------------------------------------------------------------------------------
# Sectors (GB/T 4754-2017 codes) and the 2008 minimum plot ratios (国土资发〔2008〕24号, mapped by
# industry name from the GB/T 4754-2002 groups: see /work/shared/domain.md §7).
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sector:
    key: str
    label: str
    codes: tuple[tuple[str, str, float | None], ...]  # (code, name, min plot ratio 2008)
    tax_med: float  # median 评价税收 per 亩 (万元/亩)
    sigma: float
    sales_x: tuple[float, float]  # sales / tax
    va: tuple[float, float]  # value added / sales
    energy: float  # tce per 万元 value added
    elec: float  # 万kWh per 万元 sales
    emis: float  # t per 万元 value added
    prod: float  # sales per employee (万元)
    rnd: tuple[float, float]  # R&D / main revenue
    words: tuple[str, ...]


SECTORS: dict[str, Sector] = {
    s.key: s
    for s in (
        Sector(
            "chem",
            "化工",
            (
                ("C2614", "有机化学原料制造", 0.6),
                ("C2661", "化学试剂和助剂制造", 0.6),
                ("C2631", "化学农药制造", 0.6),
                ("C2651", "初级形态塑料及合成树脂制造", 0.6),
            ),
            22,
            0.9,
            (8, 13),
            (0.22, 0.30),
            1.0,
            0.020,
            0.006,
            220,
            (0.003, 0.025),
            ("化工", "化学", "精细化工", "化学品"),
        ),
        Sector(
            "med",
            "医药",
            (
                ("C2710", "化学药品原料药制造", 0.7),
                ("C2720", "化学药品制剂制造", 0.7),
                ("C2740", "中成药生产", 0.7),
                ("C2761", "生物药品制造", 0.7),
                ("C2770", "卫生材料及医药用品制造", 0.7),
            ),
            25,
            0.8,
            (8, 12),
            (0.26, 0.34),
            0.25,
            0.012,
            0.002,
            120,
            (0.02, 0.05),
            ("药业", "制药", "生物医药", "医药科技", "生物科技"),
        ),
        Sector(
            "mat",
            "新材料",
            (
                ("C3091", "石墨及碳素制品制造", 0.7),
                ("C3061", "玻璃纤维及制品制造", 0.7),
                ("C3062", "玻璃纤维增强塑料制品制造", 0.7),
                ("C3099", "其他非金属矿物制品制造", 0.7),
            ),
            15,
            0.9,
            (10, 18),
            (0.20, 0.28),
            0.9,
            0.040,
            0.003,
            180,
            (0.01, 0.04),
            ("新材料", "硅材料", "复合材料", "石英科技", "碳材料"),
        ),
        Sector(
            "equip",
            "装备制造",
            (
                ("C3441", "泵及真空设备制造", 0.7),
                ("C3421", "金属切削机床制造", 0.7),
                ("C3511", "矿山机械制造", 0.7),
                ("C3599", "其他专用设备制造", 0.7),
                ("C3670", "汽车零部件及配件制造", 0.7),
                ("C3812", "电动机制造", 0.7),
            ),
            12,
            0.8,
            (12, 20),
            (0.22, 0.28),
            0.12,
            0.010,
            0.0005,
            100,
            (0.01, 0.04),
            ("机械", "装备制造", "重工", "智能装备", "机电"),
        ),
        Sector(
            "food",
            "食品",
            (
                ("C1361", "水产品冷冻加工", 1.0),
                ("C1331", "食用植物油加工", 1.0),
                ("C1469", "其他调味品、发酵制品制造", 1.0),
                ("C1495", "食品及饲料添加剂制造", 1.0),
                ("C1524", "含乳饮料和植物蛋白饮料制造", 1.0),
            ),
            10,
            0.8,
            (12, 20),
            (0.18, 0.25),
            0.30,
            0.015,
            0.002,
            80,
            (0.0, 0.015),
            ("食品", "水产食品", "粮油", "海洋食品", "调味品"),
        ),
        Sector(
            "tex",
            "纺织服装",
            (
                ("C1711", "棉纺纱加工", 0.8),
                ("C1713", "棉印染精加工", 0.8),
                ("C1752", "化纤织物染整精加工", 0.8),
                ("C1810", "机织服装制造", 1.0),
            ),
            8,
            0.8,
            (14, 20),
            (0.18, 0.25),
            0.40,
            0.030,
            0.003,
            50,
            (0.0, 0.015),
            ("纺织", "织造", "印染", "服饰"),
        ),
        Sector(
            "elec",
            "电子信息",
            (
                ("C3982", "电子电路制造", 1.0),
                ("C3976", "光电子器件制造", 1.0),
                ("C3985", "电子专用材料制造", 1.0),
                ("C3983", "敏感元件及传感器制造", 1.0),
            ),
            18,
            0.9,
            (10, 18),
            (0.20, 0.30),
            0.10,
            0.012,
            0.0004,
            90,
            (0.02, 0.05),
            ("电子", "光电", "电子科技", "半导体", "智能科技"),
        ),
        Sector(
            "metal",
            "金属制品",
            (
                ("C3360", "金属表面处理及热处理加工", 0.7),
                ("C3311", "金属结构制造", 0.7),
                ("C3340", "金属丝绳及其制品制造", 0.7),
                ("C3399", "其他未列明金属制品制造", 0.7),
                ("C3130", "钢压延加工", 0.6),
            ),
            9,
            0.8,
            (12, 20),
            (0.20, 0.26),
            0.50,
            0.030,
            0.002,
            120,
            (0.0, 0.02),
            ("金属制品", "钢结构", "五金", "精密制造", "表面处理"),
        ),
        Sector(
            "util",
            "公用事业",
            (("D4411", "火力发电", None), ("D4610", "自来水生产和供应", None), ("D4430", "热力生产和供应", None)),
            6,
            0.3,
            (10, 15),
            (0.25, 0.35),
            5.0,
            0.050,
            0.010,
            150,
            (0.0, 0.005),
            ("热电", "水务", "热力"),
        ),
    )
}
CODE_INFO = {c: (name, pr, s.key) for s in SECTORS.values() for c, name, pr in s.codes}

# ---------------------------------------------------------------------------------------------
# Parks and geometry
# ---------------------------------------------------------------------------------------------


@dataclass
class ParkSpec:
    key: str
    name: str
    county: str
    county_code: str
    district: str  # 地籍区 (3 digits)
    lon: float
    lat: float
    rot: float  # degrees, anticlockwise
    ncols: int
    nrows: int
    width: tuple[float, float]
    depth: tuple[float, float]
    two_strip: float  # blocks deeper than this are split into two strips
    median_mu: float
    sigma: float
    p_single: float  # chance that a block of 200-400 亩 stays one parcel
    missing: tuple[tuple[int, int], ...]  # grid cells outside the park
    vacant: tuple[tuple[int, int], ...]  # cells inside the park without registered parcels
    sectors: dict[str, float]
    cx: float = 0.0
    cy: float = 0.0


PARKS = [
    ParkSpec(
        "P1",
        "海滨高新技术产业园",
        "海滨区",
        "320799",
        "001",
        119.225,
        34.595,
        12.0,
        8,
        7,
        (300, 430),
        (200, 330),
        250,
        22,
        0.7,
        0.0,
        ((0, 6), (7, 0), (7, 6)),
        ((3, 3),),
        {"elec": 0.30, "equip": 0.25, "med": 0.20, "mat": 0.12, "food": 0.05, "metal": 0.08},
    ),
    ParkSpec(
        "P2",
        "海滨临港工业园",
        "海滨区",
        "320799",
        "003",
        119.372,
        34.700,
        -8.0,
        8,
        6,
        (420, 640),
        (330, 470),
        300,
        45,
        0.7,
        0.35,
        ((0, 0), (7, 5)),
        ((4, 2),),
        {"chem": 0.35, "metal": 0.20, "mat": 0.20, "equip": 0.15, "food": 0.10},
    ),
    ParkSpec(
        "P3",
        "青松经济开发区",
        "青松县",
        "320798",
        "002",
        119.205,
        34.705,
        4.0,
        8,
        6,
        (340, 480),
        (250, 360),
        270,
        30,
        0.7,
        0.0,
        ((7, 5),),
        ((2, 4),),
        {"tex": 0.20, "food": 0.20, "equip": 0.20, "metal": 0.15, "elec": 0.10, "med": 0.10, "chem": 0.05},
    ),
]
PARK_BY_KEY = {p.key: p for p in PARKS}
COUNTY_CODES = {"海滨区": "320799", "青松县": "320798"}


@dataclass
class Parcel:
    idx: int
    park: str
    block: tuple[int, int]
    order: tuple
    ring: list[tuple[float, float]]  # local coordinates, anticlockwise, not closed
    corners: list[tuple[float, float]]  # block corners that are vertices of the ring
    tags: list[str] = field(default_factory=list)
    geom: Polygon | None = None  # world geometry as written (may be invalid)
    intended: Polygon | None = None  # world geometry as meant (valid)
    area: float = 0.0  # m², of the intended geometry
    code: str = ""
    years: tuple[int, ...] = YEARS
    holder: object = None  # Ent, UnknownHolder or None
    land_use: str = "工业用地"
    reg_area: float = 0.0
    bc: float = 0.0  # building coefficient target (footprint / area)
    pr: float = 0.0  # plot ratio target (floor / area)
    attrs: dict = field(default_factory=dict)  # field -> value, both years
    year_attrs: dict = field(default_factory=dict)  # year -> {field -> value}
    buildings: list = field(default_factory=list)  # world polygons (2025 state)
    case: str = ""  # idle-case key

    @property
    def mu(self) -> float:
        return self.area / MU

    def get(self, year: int, key: str):
        return self.year_attrs.get(year, {}).get(key, self.attrs.get(key))


def split_widths(L: float, depth: float, spec: ParkSpec) -> list[float]:
    """Parcel widths along a strip of length L, summing exactly to L."""
    widths: list[float] = []
    while sum(widths) < L:
        a = float(np.clip(rng.lognormal(math.log(spec.median_mu), spec.sigma), 5, 150)) * MU
        widths.append(max(a / depth, 45.0))
    widths[-1] -= sum(widths) - L
    if len(widths) > 1 and (widths[-1] < 45 or widths[-1] * depth < 5 * MU):
        w = widths.pop()
        widths[-1] += w
    return widths


def make_cuts(x0: float, x1: float, depth: float, spec: ParkSpec) -> list[tuple[float, float]]:
    """Cuts across a strip as (x at lower edge, x at upper edge), block edges included."""
    widths = split_widths(x1 - x0, depth, spec)
    pos = [x0]
    for w in widths[:-1]:
        pos.append(pos[-1] + w)
    cuts = [(x0, x0)] + [(p, p) for p in pos[1:]] + [(x1, x1)]
    for i in range(1, len(cuts) - 1):
        if chance(0.3):
            d = U(-18, 18)
            lo, up = cuts[i][0] - d / 2, cuts[i][1] + d / 2
            if (
                lo - cuts[i - 1][0] >= 35
                and up - cuts[i - 1][1] >= 35
                and cuts[i + 1][0] - lo >= 35
                and cuts[i + 1][1] - up >= 35
            ):
                cuts[i] = (lo, up)
    return cuts


def subdivide_block(spec: ParkSpec, col: int, row: int, x0, y0, x1, y1, start_idx: int) -> list[Parcel]:
    block_corners = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    area_mu = (x1 - x0) * (y1 - y0) / MU
    out: list[Parcel] = []

    def new(ring, strip_rank, pos):
        corners = [c for c in block_corners if c in ring]
        out.append(Parcel(start_idx + len(out), spec.key, (col, row), (col, row, strip_rank, pos), ring, corners))

    if 200 <= area_mu <= 400 and chance(spec.p_single):
        new([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], 0, 0)
        return out
    D = y1 - y0
    if spec.two_strip >= D:
        cuts = make_cuts(x0, x1, D, spec)
        for i in range(len(cuts) - 1):
            new([(cuts[i][0], y0), (cuts[i + 1][0], y0), (cuts[i + 1][1], y1), (cuts[i][1], y1)], 0, i)
        return out
    ym = y0 + D * U(0.42, 0.58)
    top = make_cuts(x0, x1, y1 - ym, spec)  # (x on middle line, x on top edge)
    bot = make_cuts(x0, x1, ym - y0, spec)  # (x on bottom edge, x on middle line)
    # Snap bottom cut ends on the middle line to nearby top cut ends: four-way junctions.
    top_mid = [c[0] for c in top[1:-1]]
    for j in range(1, len(bot) - 1):
        near = [t for t in top_mid if abs(t - bot[j][1]) < 25]
        if near:
            t = near[0]
            if t - bot[j - 1][1] >= 35 and bot[j + 1][1] - t >= 35 and abs(bot[j][0] - t) <= 20:
                bot[j] = (bot[j][0], t)
    mids = sorted({x0, x1, *[c[0] for c in top], *[c[1] for c in bot]})
    for i in range(len(bot) - 1):
        a, b = bot[i][1], bot[i + 1][1]
        inner = [m for m in mids if a < m < b]
        ring = [(bot[i][0], y0), (bot[i + 1][0], y0), (b, ym)] + [(m, ym) for m in reversed(inner)] + [(a, ym)]
        new(ring, 0, i)
    for i in range(len(top) - 1):
        a, b = top[i][0], top[i + 1][0]
        inner = [m for m in mids if a < m < b]
        ring = [(a, ym)] + [(m, ym) for m in inner] + [(b, ym), (top[i + 1][1], y1), (top[i][1], y1)]
        new(ring, 1, i)
    return out


def carve_corner(p: Parcel, corner, w: float, h: float, idx: int) -> Parcel:
    """Cut a w × h rectangle off a right-angled block corner of p; return the small parcel."""
    ring = p.ring
    k = ring.index(corner)
    P, N = ring[k - 1], ring[(k + 1) % len(ring)]
    cx, cy = corner

    def unit(a):
        dx, dy = a[0] - cx, a[1] - cy
        n = math.hypot(dx, dy)
        return dx / n, dy / n, n

    ux, uy, lp = unit(P)
    vx, vy, ln = unit(N)
    assert w < lp - 30 and h < ln - 30
    a = (cx + w * ux, cy + w * uy)
    b = (cx + w * ux + h * vx, cy + w * uy + h * vy)
    c = (cx + h * vx, cy + h * vy)
    p.ring = [*ring[:k], a, b, c, *ring[k + 1 :]]
    p.corners = [q for q in p.corners if q != corner]
    small = Parcel(idx, p.park, p.block, (*p.order[:3], p.order[3] + 0.5), [corner, c, b, a], [corner])
    small.tags.append("tiny")
    return small


def local_to_world(spec: ParkSpec, xy: np.ndarray) -> np.ndarray:
    th = math.radians(spec.rot)
    c, s = math.cos(th), math.sin(th)
    x = spec.cx + c * xy[:, 0] - s * xy[:, 1]
    y = spec.cy + s * xy[:, 0] + c * xy[:, 1]
    return np.round(np.column_stack([x, y]), 3)


def build_geometry():
    parcels: list[Parcel] = []
    park_cells = {}
    for spec in PARKS:
        spec.cx, spec.cy = (round(v, 3) for v in TO_GK.transform(spec.lon, spec.lat))
        widths = [U(*spec.width) for _ in range(spec.ncols)]
        depths = [U(*spec.depth) for _ in range(spec.nrows)]
        roads_x = [40.0 if (i + 1) % 3 == 0 else float(pick([20.0, 24.0, 30.0])) for i in range(spec.ncols - 1)]
        roads_y = [40.0 if (j + 1) % 3 == 0 else float(pick([20.0, 24.0, 30.0])) for j in range(spec.nrows - 1)]
        xs = [0.0]
        for i in range(spec.ncols - 1):
            xs.append(xs[-1] + widths[i] + roads_x[i])
        ys = [0.0]
        for j in range(spec.nrows - 1):
            ys.append(ys[-1] + depths[j] + roads_y[j])
        W = xs[-1] + widths[-1]
        H = ys[-1] + depths[-1]
        xs = [round(x - W / 2, 2) for x in xs]
        ys = [round(y - H / 2, 2) for y in ys]
        x1s = [round(xs[i] + widths[i], 2) for i in range(spec.ncols)]
        y1s = [round(ys[j] + depths[j], 2) for j in range(spec.nrows)]
        # park cell edges: the middle of each road; 20 m margin outside the outer blocks
        bx = [xs[0] - 20.0] + [(x1s[i] + xs[i + 1]) / 2 for i in range(spec.ncols - 1)] + [x1s[-1] + 20.0]
        by = [ys[0] - 20.0] + [(y1s[j] + ys[j + 1]) / 2 for j in range(spec.nrows - 1)] + [y1s[-1] + 20.0]
        cells = []
        for col in range(spec.ncols):
            for row in range(spec.nrows):
                if (col, row) in spec.missing:
                    continue
                x0, y0 = xs[col], ys[row]
                x1, y1 = x1s[col], y1s[row]
                cells.append(box(bx[col], by[row], bx[col + 1], by[row + 1]))
                if (col, row) in spec.vacant:
                    continue
                parcels.extend(subdivide_block(spec, col, row, x0, y0, x1, y1, len(parcels)))
        park_cells[spec.key] = shapely.union_all(cells)
    # -- carve small corner parcels (1-3 亩) out of larger corner parcels
    n_carve = {"P1": 5, "P2": 2, "P3": 5}
    for spec in PARKS:
        cands = [
            p for p in parcels if p.park == spec.key and p.corners and p.ring_area() > 20 * MU and len(p.ring) >= 4
        ]
        done = 0
        for p in pick(cands, len(cands)):
            if done >= n_carve[spec.key]:
                break
            if any(q.park == p.park and q.block == p.block and "tiny" in q.tags for q in parcels):
                continue
            corner = p.corners[0]
            area = U(1.1, 2.9) * MU
            w = U(28, 46)
            h = area / w
            k = p.ring.index(corner)
            lp = math.dist(p.ring[k - 1], corner)
            ln = math.dist(p.ring[(k + 1) % len(p.ring)], corner)
            if w < lp * 0.5 and h < ln * 0.5:
                parcels.append(carve_corner(p, corner, round(w, 2), round(h, 2), len(parcels)))
                done += 1
    # -- merge a few top/bottom pairs into L-shapes
    n_merge = {"P1": 4, "P2": 4, "P3": 5}
    removed: set[int] = set()
    for spec in PARKS:
        done = 0
        blocks = sorted({p.block for p in parcels if p.park == spec.key})
        for blk in pick(blocks, len(blocks)):
            if done >= n_merge[spec.key]:
                break
            members = [
                p
                for p in parcels
                if p.park == spec.key and p.block == blk and p.idx not in removed and "tiny" not in p.tags
            ]
            bottoms = [p for p in members if p.order[2] == 0]
            tops = [p for p in members if p.order[2] == 1]
            if not tops:
                continue
            for t in tops:
                tp = Polygon(t.ring)
                merged = False
                for b in bottoms:
                    bp = Polygon(b.ring)
                    inter = tp.intersection(bp)
                    if inter.geom_type != "LineString" or inter.length < 40:
                        continue
                    tx = sorted(x for x, y in t.ring if abs(y - t.ring[0][1]) < 1e-9)
                    bx = sorted(x for x, y in b.ring if abs(y - t.ring[0][1]) < 1e-9)
                    same_left, same_right = tx[0] == bx[0], tx[-1] == bx[-1]
                    if same_left == same_right:
                        continue
                    if (tp.area + bp.area) / MU > 150:
                        continue
                    u = tp.union(bp)
                    if u.geom_type != "Polygon" or u.interiors:
                        continue
                    ring = list(orient(u, 1.0).exterior.coords)[:-1]
                    t.ring = ring
                    t.corners = sorted(set(t.corners) | set(b.corners))
                    t.tags.append("L-shape")
                    removed.add(b.idx)
                    merged = True
                    break
                if merged:
                    done += 1
                    break
    parcels = [p for p in parcels if p.idx not in removed]
    for i, p in enumerate(parcels):
        p.idx = i
    return parcels, park_cells


def _ring_area(self: Parcel) -> float:
    return Polygon(self.ring).area


Parcel.ring_area = _ring_area  # type: ignore[attr-defined]


def make_bowtie(p: Parcel, e: float) -> list[tuple[float, float]]:
    """Ring with a self-crossing knot at a block corner: P → v → u → N instead of P → C → N."""
    corner = p.corners[0]
    ring = p.ring
    k = ring.index(corner)
    P, N = ring[k - 1], ring[(k + 1) % len(ring)]
    cx, cy = corner
    lp, ln = math.dist(P, corner), math.dist(N, corner)
    u = (cx + e * (P[0] - cx) / lp, cy + e * (P[1] - cy) / lp)
    v = (cx + e * (N[0] - cx) / ln, cy + e * (N[1] - cy) / ln)
    return [*ring[:k], v, u, *ring[k + 1 :]]


def finish_geometry(parcels: list[Parcel]):
    for p in parcels:
        spec = PARK_BY_KEY[p.park]
        xy = local_to_world(spec, np.array(p.ring))
        p.intended = orient(Polygon(xy), 1.0)
        p.geom = p.intended
        p.area = p.intended.area
    # bow-ties: one large corner parcel in P1 and one in P3
    for park, e in (("P1", 0.5), ("P3", 0.35)):
        cands = [p for p in parcels if p.park == park and p.corners and len(p.ring) == 4 and p.mu > 60 and not p.tags]
        p = pick(cands)
        ring = make_bowtie(p, e)
        xy = local_to_world(PARK_BY_KEY[park], np.array(ring))
        p.geom = Polygon(xy)
        p.tags.append(f"bowtie e={e} m")
        assert not p.geom.is_valid


def neighbours(parcels: list[Parcel]) -> dict[int, list[int]]:
    geoms = [p.intended for p in parcels]
    tree = shapely.STRtree(geoms)
    a, b = tree.query(geoms, predicate="intersects")
    nb: dict[int, list[int]] = {p.idx: [] for p in parcels}
    for i, j in zip(a.tolist(), b.tolist(), strict=False):
        if i < j:
            inter = geoms[i].intersection(geoms[j])
            if inter.length > 0.5:
                nb[i].append(j)
                nb[j].append(i)
    return nb


# ---------------------------------------------------------------------------------------------
# Names and codes
# ---------------------------------------------------------------------------------------------

BRAND_CHARS = (
    "瀚澜泓嘉禾睿拓弘晟朗峰源泽润铭宸翊岳钧骏涵辰熠霖蔚悦沐岚汐珂琨璟烨煜湛瀛洵淼沣渤溯澄灏岱嵘"
    "屹昶旻曜昀暄炜焓垚坤堃桦楠樾榕栩檀篁筠苇蓁芃芮荟蔓菁沅沛潇漪濠珩琛瑭璞玥翎羿鹭鸿骐驰骁"
)
# Words of well-known real firms in and around Lianyungang and big national brands: never used.
BLOCKED = (
    "恒瑞",
    "豪森",
    "康缘",
    "天晴",
    "正大",
    "盛虹",
    "斯尔邦",
    "神鹰",
    "中复",
    "鹰游",
    "荣泰",
    "天明",
    "德邦",
    "亚新",
    "新海",
    "卫星",
    "恒力",
    "荣盛",
    "万华",
    "隆基",
    "通威",
    "天合",
    "晶科",
    "亨通",
)
used_names: set[str] = set()
used_brands: set[str] = set()
used_uscc: set[str] = set()


def brand() -> str:
    while True:
        b = "".join(pick(list(BRAND_CHARS), 2))
        if b not in used_brands and not any(x in b for x in BLOCKED):
            used_brands.add(b)
            return b


UTIL_WORDS = {"D4411": "热电", "D4610": "水务", "D4430": "热力"}
# energy (tce per 万元 value added) and emission intensity per utility code
UTIL_INTENSITY = {"D4411": (5.0, 0.010), "D4610": (0.6, 0.001), "D4430": (3.0, 0.006)}


def company_name(county: str, sector: str, big: bool = False, code: str = "") -> str:
    s = SECTORS[sector]
    while True:
        word = UTIL_WORDS.get(code) or pick(list(s.words))
        b = brand()
        if county == "海滨区":
            place = "江苏海滨" if big and chance(0.5) else "连云港海滨"
        else:
            place = "江苏青松" if big and chance(0.5) else pick(["青松县", "连云港青松"])
        if sector == "util":
            name = f"{place}{b}{word}有限公司"
        elif big and chance(0.6):
            name = f"{place}{b}{word}股份有限公司"
        elif word.endswith("科技") or chance(0.25):
            name = f"{place}{b}{word}{'' if word.endswith('科技') else '科技'}有限公司"
        else:
            name = f"{place}{b}{word}有限公司"
        if name not in used_names:
            used_names.add(name)
            return name


ORG_BODY_CHARS = list(ALPHABET)  # digits + allowed capitals


def make_uscc(region: str, new_style: bool) -> str:
    while True:
        if new_style:
            body = "MA" + pick(["1", "2", "3", "4", "5", "6"]) + "".join(pick(ORG_BODY_CHARS) for _ in range(5))
        else:
            body = str(int(rng.integers(1, 8))) + "".join(str(int(rng.integers(0, 10))) for _ in range(7))
        first17 = "91" + region + body + org_code_check_char(body)
        code = first17 + uscc_check_char(first17)
        if code not in used_uscc:
            used_uscc.add(code)
            return code


def region_for(county: str) -> str:
    r = rng.random()
    if r < 0.62:
        return COUNTY_CODES[county]
    if r < 0.90:
        return "320700"  # city-level registration
    return pick(["320100", "320500", "320200", "310115", "370200"])  # registered elsewhere


# ---------------------------------------------------------------------------------------------
# Enterprises
# ---------------------------------------------------------------------------------------------


@dataclass
class Ent:
    uscc: str
    name: str
    county: str
    park: str
    sector: str
    code: str
    kind: str  # normal | zero | dlike | leased_out | util | lessee
    years: tuple[int, ...] = YEARS
    parcels: list[Parcel] = field(default_factory=list)
    prod_start: dt.date | None = None
    tags: list[str] = field(default_factory=list)
    exempt: dict = field(default_factory=dict)  # year -> reason
    safety: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    bonus: dict = field(default_factory=dict)
    penalty: dict = field(default_factory=dict)
    small: bool = False
    parcel_name: str = ""  # name as written in the parcel layer, when different
    figures: dict = field(default_factory=dict)  # year -> dict
    no_emission: set = field(default_factory=set)  # years with blank emission


@dataclass
class UnknownHolder:
    uscc: str
    name: str


@dataclass
class Lease:
    lessee: Ent
    parcel: Parcel
    land: float | None
    floor: float | None
    years: tuple[int, ...] = YEARS


ENTS: list[Ent] = []


def new_ent(county: str, park: str, sector: str, kind: str, *, big=False, new_style=None, code=None) -> Ent:
    s = SECTORS[sector]
    if code is None:
        code = pick([c for c, _, _ in s.codes])
    if new_style is None:
        new_style = chance(0.55)
    region = pick([COUNTY_CODES[county], "320700"]) if sector == "util" else region_for(county)
    e = Ent(make_uscc(region, new_style), company_name(county, sector, big, code), county, park, sector, code, kind)
    ENTS.append(e)
    return e


def pick_sector(spec: ParkSpec) -> str:
    keys = list(spec.sectors)
    w = np.array([spec.sectors[k] for k in keys])
    return keys[int(rng.choice(len(keys), p=w / w.sum()))]


# ---------------------------------------------------------------------------------------------
# Main assembly
# ---------------------------------------------------------------------------------------------

# Idle-land cases (闲置土地处置办法): key, contract start, actual start (by year), developed, invested,
# suspended since, government cause, note. Dates are absolute; the flag depends on evaluation_date.
IDLE_CASES = [
    ("I01", dt.date(2022, 10, 15), None, 0.0, 0.03, None, None, "未动工；2024：2年5个月，2025：3年5个月"),
    ("I02", dt.date(2023, 12, 20), None, 0.0, 0.0, None, None, "扩建用地未动工（权利人另有在产宗地）"),
    ("I03", dt.date(2024, 3, 31), None, 0.0, 0.0, None, None, "未动工；2024 恰满1年，2025 恰满2年"),
    ("I04", dt.date(2024, 4, 1), None, 0.0, 0.0, None, None, "未动工；2024 差1天满1年（11个月30天），2025 差1天满2年"),
    ("I05", dt.date(2024, 9, 30), None, 0.0, 0.0, None, None, "未动工；2025：1年6个月"),
    ("I06", dt.date(2025, 3, 31), None, 0.0, 0.0, None, None, "未动工；2025 恰满12个月"),
    ("I07", dt.date(2025, 4, 1), None, 0.0, 0.0, None, None, "未动工；2025 为11个月30天，不满1年"),
    ("I08", dt.date(2023, 6, 30), None, 0.0, 0.0, None, "未按约定交付土地", "政府原因（交地延迟）免责"),
    ("I09", dt.date(2023, 3, 1), None, 0.0, 0.02, None, "plan_change", "政府原因（规划调整，代码形式）免责"),
    ("I10", dt.date(2024, 6, 1), None, 0.0, 0.0, None, "military_heritage", "政府原因（军事管制或文物保护）免责"),
    (
        "I11",
        dt.date(2021, 9, 1),
        dt.date(2021, 10, 10),
        0.20,
        0.30,
        dt.date(2024, 6, 15),
        None,
        "已动工，开发不足1/3，2024-06-15 停工",
    ),
    (
        "I12",
        dt.date(2022, 3, 1),
        dt.date(2022, 4, 1),
        0.50,
        0.18,
        dt.date(2023, 11, 1),
        None,
        "扩建用地已动工，投资不足25%，2023-11-01 停工（权利人另有在产宗地）",
    ),
    (
        "I13",
        dt.date(2023, 2, 1),
        dt.date(2023, 5, 10),
        0.25,
        0.20,
        dt.date(2025, 3, 31),
        None,
        "已动工，开发不足1/3，2025-03-31 停工：2025 恰满1年",
    ),
    (
        "I14",
        dt.date(2021, 5, 1),
        dt.date(2021, 6, 1),
        0.60,
        0.50,
        dt.date(2023, 1, 1),
        None,
        "已动工，开发≥1/3 且投资≥25%，虽停工也不构成闲置",
    ),
    (
        "I15",
        dt.date(2022, 6, 1),
        dt.date(2022, 7, 15),
        0.20,
        0.15,
        dt.date(2024, 1, 1),
        "信访",
        "已动工停工，政府原因（信访）免责",
    ),
    (
        "I16",
        dt.date(2023, 5, 1),
        {2025: dt.date(2025, 6, 1)},
        0.40,
        0.35,
        None,
        None,
        "2024 未动工（满1年11个月）；2025-06-01 动工",
    ),
    (
        "I17",
        dt.date(2022, 8, 1),
        dt.date(2022, 9, 1),
        0.10,
        0.10,
        dt.date(2024, 7, 1),
        "不可抗力",
        "已动工停工，不可抗力免责",
    ),
    ("I18", dt.date(2024, 2, 29), None, 0.0, 0.0, None, None, "未动工，约定日期为闰日 2024-02-29"),
]


def main() -> None:
    parcels, park_cells = build_geometry()
    finish_geometry(parcels)
    nb = neighbours(parcels)
    by_idx = {p.idx: p for p in parcels}

    flagged: set[int] = set()  # parcels carrying a deliberate efficiency/idle flag (either year)
    taken: set[int] = set()  # parcels already given a role

    def free(p: Parcel, *, lo=0.0, hi=1e9, park=None, clean=True) -> bool:
        if p.idx in taken or p.tags or not (lo <= p.mu <= hi) or (park and p.park != park):
            return False
        return not (clean and (p.idx in flagged or any(n in flagged for n in nb[p.idx])))

    def choose(n, *, flag=True, **kw) -> list[Parcel]:
        cands = [p for p in parcels if free(p, **kw)]
        out = []
        for p in pick(cands, len(cands)):
            if len(out) >= n:
                break
            if not free(p, **kw):
                continue
            out.append(p)
            taken.add(p.idx)
            if flag:
                flagged.add(p.idx)
        assert len(out) == n, (n, kw, len(out))
        return out

    # -- clusters: consecutive parcels of one strip (they share cut edges)
    def cluster(park: str, n: int, lo_mu: float, hi_mu: float) -> list[Parcel]:
        strips: dict = {}
        for p in parcels:
            if p.park == park:
                strips.setdefault(p.order[:3], []).append(p)
        keys = sorted(strips)
        for key in pick(keys, len(keys)):
            row = sorted(strips[key], key=lambda q: q.order[3])
            for s in range(len(row) - n + 1):
                grp = row[s : s + n]
                tot = sum(q.mu for q in grp)
                ok = all(free(q) for q in grp) and lo_mu <= tot <= hi_mu
                ok = ok and all(grp[i + 1].idx in nb[grp[i].idx] for i in range(n - 1))
                if ok:
                    for q in grp:
                        taken.add(q.idx)
                        flagged.add(q.idx)
                    return grp
        raise RuntimeError("no cluster found")

    cl_a = cluster("P2", 4, 80, 260)
    cl_b = cluster("P3", 3, 55, 150)
    isolated = choose(1, lo=15, hi=45, park="P1")[0]
    for p in cl_a:
        p.case = "cluster_A"
    for p in cl_b:
        p.case = "cluster_B"
    isolated.case = "isolated"

    unassigned = (
        choose(6, lo=8, hi=120, park="P1") + choose(5, lo=8, hi=150, park="P2") + choose(4, lo=8, hi=120, park="P3")
    )
    idle_parcels = {}
    park_cycle = ["P1", "P2", "P3"]
    for i, case in enumerate(IDLE_CASES):
        idle_parcels[case[0]] = choose(1, lo=8, hi=110, park=park_cycle[i % 3])[0]
        idle_parcels[case[0]].case = case[0]
    gone = [choose(1, lo=10, hi=80, park="P2")[0], choose(1, lo=10, hi=80, park="P3")[0]]
    newp = choose(3, lo=8, hi=90, park="P1") + choose(2, lo=8, hi=120, park="P2") + choose(3, lo=8, hi=90, park="P3")
    zero_built = (
        choose(2, lo=8, hi=90, park="P1") + choose(2, lo=8, hi=90, park="P2") + choose(1, lo=8, hi=90, park="P3")
    )
    dlike = choose(1, lo=10, hi=90, park="P1") + choose(1, lo=10, hi=90, park="P2") + choose(2, lo=10, hi=90, park="P3")
    t25 = choose(1, lo=10, hi=90, park="P1") + choose(1, lo=10, hi=90, park="P2") + choose(1, lo=10, hi=90, park="P3")
    leased_out = (
        choose(2, lo=20, hi=120, park="P1") + choose(1, lo=20, hi=120, park="P2") + choose(1, lo=20, hi=120, park="P3")
    )
    unknown_parcels = choose(1, lo=8, hi=120, park="P1", flag=False) + choose(1, lo=8, hi=120, park="P3", flag=False)
    # a third unknown holder with two neighbouring parcels in P2
    for p in pick([q for q in parcels if free(q, park="P2", clean=False)], 60):
        pair = [n for n in nb[p.idx] if free(by_idx[n], clean=False) and by_idx[n].park == "P2"]
        if pair:
            unknown_parcels += [p, by_idx[pair[0]]]
            taken.update({p.idx, pair[0]})
            break
    utilities = [
        choose(1, lo=40, hi=200, park="P1", flag=False)[0],
        choose(1, lo=120, hi=400, park="P2", flag=False)[0],
        choose(1, lo=30, hi=150, park="P3", flag=False)[0],
        choose(1, lo=30, hi=150, park="P3", flag=False)[0],
    ]
    tiny = [p for p in parcels if "tiny" in p.tags]
    for p in tiny:
        taken.add(p.idx)
    for p in newp:
        p.years = (2025,)
        p.case = p.case or "new_2025"
    for p in gone:
        p.years = (2024,)

    # -- enterprises for the special parcels
    def spec_of(p: Parcel) -> ParkSpec:
        return PARK_BY_KEY[p.park]

    def ent_for(p: Parcel, kind: str, sector=None, **kw) -> Ent:
        spec = spec_of(p)
        e = new_ent(spec.county, spec.name, sector or pick_sector(spec), kind, **kw)
        e.parcels.append(p)
        p.holder = e
        return e

    # utilities
    util_codes = ["D4610", "D4411", "D4610", "D4430"]
    for p, code in zip(utilities, util_codes, strict=False):
        e = ent_for(p, "util", "util", code=code, big=True, new_style=False)
        e.tags.append("T_utility")
    # unknown holders (not in the enterprise table)
    unknowns = []
    for grp in ([unknown_parcels[0]], [unknown_parcels[1]], unknown_parcels[2:]):
        spec = spec_of(grp[0])
        sector = pick_sector(spec)
        u = UnknownHolder(make_uscc(region_for(spec.county), True), company_name(spec.county, sector))
        unknowns.append((u, grp, sector))
        for p in grp:
            p.holder = u
    # idle-land holders
    expansion_cases = {"I02", "I12"}
    for key, *_ in IDLE_CASES:
        p = idle_parcels[key]
        if key not in expansion_cases:
            ent_for(p, "zero")
    gone_e = [ent_for(gone[0], "zero"), ent_for(gone[1], "normal")]
    gone_e[0].years = (2024,)
    gone_e[1].years = (2024,)
    gone_e[1].exempt[2024] = "政策性搬迁"
    gone[0].case = "gone_takeback"
    gone[1].case = "gone_relocated"
    for p in zero_built:
        ent_for(p, "zero").tags.append("built_not_producing")
        p.case = p.case or "zero_built"
    isolated_e = ent_for(isolated, "zero")
    isolated_e.tags.append("built_not_producing")
    for p in dlike:
        ent_for(p, "dlike", pick(["tex", "metal", "food", "equip"]))
        p.case = "dlike"
    for p in t25:
        e = ent_for(p, "normal")
        e.prod_start = rand_date(dt.date(2025, 3, 1), dt.date(2025, 9, 30))
        e.tags.append("T_new_2025_on_own_land")
        p.case = "t25"
    for p in leased_out:
        ent_for(p, "leased_out")
        p.case = "leased_out"
    # new parcels in 2025: half to new enterprises, half to existing ones (expansion, decided below)
    new_owned = newp[:4]
    for p in new_owned:
        e = ent_for(p, "zero")
        e.years = (2025,)
        e.tags.append("new_2025_not_producing")
    # clusters
    a1, a2, a3, a4 = cl_a
    ent_for(a1, "zero")
    a1.case = "cluster_A"
    ent_for(a2, "zero").tags.append("built_not_producing")
    ent_for(a3, "dlike", "metal")
    ent_for(a4, "dlike", "chem")
    b1, b2, b3 = cl_b
    ent_for(b1, "zero").tags.append("built_not_producing")
    ent_for(b2, "leased_out", "tex")
    ent_for(b3, "dlike", "tex")
    # tiny parcels: small 规下 firms
    for p in tiny:
        e = ent_for(p, "normal", pick(["equip", "metal", "food", "elec"]))
        e.small = True

    # -- remaining parcels: runs of 1-4 neighbouring parcels per owner, within a block
    rest = sorted([p for p in parcels if p.holder is None and p.idx not in taken], key=lambda q: (q.park, q.order))
    runs: list[list[Parcel]] = []
    i = 0
    while i < len(rest):
        n = int(rng.choice([1, 2, 3, 4], p=[0.60, 0.26, 0.09, 0.05]))
        grp = [rest[i]]
        while (
            len(grp) < n
            and i + len(grp) < len(rest)
            and rest[i + len(grp)].block == rest[i].block
            and rest[i + len(grp)].park == rest[i].park
        ):
            grp.append(rest[i + len(grp)])
        runs.append(grp)
        i += len(grp)
    normal_owners: list[Ent] = []
    for grp in runs:
        spec = spec_of(grp[0])
        big = sum(q.mu for q in grp) > 80
        e = new_ent(spec.county, spec.name, pick_sector(spec), "normal", big=big)
        for q in grp:
            e.parcels.append(q)
            q.holder = e
        normal_owners.append(e)
    # expansion idle parcels and the rest of the new 2025 parcels go to a neighbouring normal owner
    for p in [idle_parcels["I02"], idle_parcels["I12"], *newp[4:]]:
        owners = [
            by_idx[n].holder
            for n in nb[p.idx]
            if isinstance(by_idx[n].holder, Ent)
            and by_idx[n].holder.kind == "normal"
            and not by_idx[n].holder.small
            and 2025 in by_idx[n].holder.years
        ]
        if not owners:
            owners = [e for e in normal_owners if e.park == spec_of(p).name]
        e = owners[0]
        e.parcels.append(p)
        p.holder = e
        if p in newp:
            e.tags.append("expansion_parcel_2025")
        else:
            e.tags.append("idle_expansion_parcel")

    single_normal = [e for e in normal_owners if len(e.parcels) == 1]

    # -- deliberate low plot ratio / low building coefficient on normal producing single-parcel owners
    def choose_owner_parcels(n, sectors, lo=8, hi=150):
        cands = [
            e.parcels[0] for e in single_normal if e.sector in sectors and not e.tags and e.parcels[0].idx not in taken
        ]
        out = []
        for p in pick(cands, len(cands)):
            if len(out) >= n:
                break
            if free(p, lo=lo, hi=hi):
                out.append(p)
                taken.add(p.idx)
                flagged.add(p.idx)
        assert len(out) == n
        return out

    low_pr = choose_owner_parcels(12, {"elec", "food", "equip", "med", "metal", "mat", "tex"})
    low_bc = choose_owner_parcels(10, {"elec", "med", "equip"})
    for p in low_pr:
        p.holder.tags.append("low_plot_ratio")
        p.case = "low_pr"
    for p in low_bc:
        p.holder.tags.append("low_building_coefficient")
        p.case = "low_bc"

    # -- T class, exempt, veto, bonus/penalty, name variants among normal owners
    pool = [e for e in normal_owners if not e.tags and not e.small]
    pool = pick(pool, len(pool))
    cursor = 0

    def take(n):
        nonlocal cursor
        out = pool[cursor : cursor + n]
        cursor += n
        return out

    t24 = take(9)
    for e in t24:
        e.prod_start = rand_date(dt.date(2024, 2, 1), dt.date(2024, 11, 30))
        e.tags.append("T_production_2024")
    t23 = take(5)
    for e in t23:
        e.prod_start = rand_date(dt.date(2023, 3, 1), dt.date(2023, 11, 30))
        e.tags.append("T_production_2023")
    exempt25 = take(3)
    for e, reason in zip(exempt25, ["政策性搬迁", "破产重整", "重大技改停产（经批准）"], strict=False):
        e.exempt[2025] = reason
        e.tags.append("exempt_2025")
    ex24 = take(1)[0]
    ex24.exempt[2024] = "破产重整"
    ex24.tags.append("exempt_2024")
    for e in take(4):
        e.safety[2025] = True
        e.tags.append("safety_veto_2025")
    for e in take(3):
        e.env[2025] = True
        e.tags.append("environment_veto_2025")
    for e in take(2):
        e.safety[2024] = True
        e.tags.append("safety_veto_2024")
    for e in take(2):
        e.env[2024] = True
        e.tags.append("environment_veto_2024")
    for e in take(8):
        e.bonus[2025] = float(pick([2, 3, 5, 5, 8, 10]))
        if chance(0.5):
            e.bonus[2024] = float(pick([2, 3, 5]))
        e.tags.append("bonus")
    for e in take(5):
        e.penalty[2025] = float(pick([2, 3, 5, 10]))
        e.tags.append("penalty")
    for e in take(5):
        old = e.name.replace("股份有限公司", "有限公司")
        b = e.name
        for place in ("江苏海滨", "连云港海滨", "青松县", "连云港青松", "江苏青松"):
            b = b.replace(place, "")
        alt = ("连云港" if e.county == "海滨区" else "青松县") + b
        e.parcel_name = alt if alt != e.name else old + "（原名）"
        e.tags.append("name_differs_in_parcels")
    bad_check = take(1)  # owner with wrong position-18 check character
    bad_org = take(1)  # owner with wrong organisation-code check (position 17)

    # -- lessee-only enterprises and leases
    leases: list[Lease] = []
    lessors = [
        p
        for e in normal_owners
        if e.kind == "normal" and not e.small and not e.tags
        for p in e.parcels
        if p.idx not in flagged and len(p.years) == 2
    ]
    lessors = pick(lessors, len(lessors))
    lessor_i = 0
    lessees: list[Ent] = []

    def lessee(p: Parcel, sector=None, years=YEARS) -> Ent:
        spec = spec_of(p)
        e = new_ent(
            spec.county,
            spec.name,
            sector or pick(["elec", "equip", "food", "tex", "metal", "med"]),
            "lessee",
            new_style=chance(0.8),
        )
        e.years = years
        lessees.append(e)
        return e

    def land_lease(p: Parcel, lo: float, hi: float) -> float:
        # at least 3000 m² (4.5 亩) so that only the deliberate small lessees fall below 3 亩
        return round(max(U(lo, hi) * p.area, 3000.0), 2)

    # mainly-leased-out parcels: 2 by land, 2 by floor, b2 by land
    lo_specs = [
        (leased_out[0], "land"),
        (leased_out[1], "floor"),
        (leased_out[2], "land"),
        (leased_out[3], "floor"),
        (b2, "land"),
    ]
    for p, how in lo_specs:
        share = U(0.60, 0.85)
        k = int(rng.integers(2, 5))
        parts = rng.dirichlet(np.ones(k) * 3) * share
        for part in parts:
            e = lessee(p)
            if how == "land":
                leases.append(Lease(e, p, round(float(part) * p.area, 2), None))
            else:
                leases.append(Lease(e, p, None, -float(part)))  # share of floor, resolved below
        p.holder.tags.append(f"mainly_leased_out_{how}")
    small_lessees = []
    while len(lessees) < 57:
        p = lessors[lessor_i]
        lessor_i += 1
        small = len(small_lessees) < 8
        e = lessee(p)
        if small:
            e.small = True
            small_lessees.append(e)
            leases.append(Lease(e, p, round(U(700, 1900), 2), None))
        elif chance(0.5) and p.mu > 20:
            leases.append(Lease(e, p, land_lease(p, 0.08, 0.30), None))
        else:
            leases.append(Lease(e, p, None, -U(0.10, 0.35)))  # share of floor, resolved below
        if not small and chance(0.45):  # a second lease
            q = lessors[lessor_i]
            lessor_i += 1
            if q.park == p.park:
                leases.append(
                    Lease(e, q, land_lease(q, 0.05, 0.2), None)
                    if chance(0.5) and q.mu > 20
                    else Lease(e, q, None, -U(0.05, 0.2))
                )
    # new lessees in 2025 (T class) and one that left in 2025
    for _ in range(3):
        p = lessors[lessor_i]
        lessor_i += 1
        e = lessee(p, years=(2025,))
        e.prod_start = rand_date(dt.date(2025, 2, 1), dt.date(2025, 8, 31))
        e.tags.append("T_new_lessee_2025")
        leases.append(Lease(e, p, None, -U(0.1, 0.3), years=(2025,)))
    p = lessors[lessor_i]
    lessor_i += 1
    e = lessee(p, years=(2024,))
    e.tags.append("gone_lessee_2025")
    leases.append(Lease(e, p, None, -U(0.1, 0.25), years=(2024,)))
    bad_check.append(lessees[20])  # a lessee-only enterprise with a wrong check character
    # owners renting extra land or floor space elsewhere in their park
    renters = pick([e for e in normal_owners if not e.small and e.kind == "normal" and not e.tags], 36)
    for e in renters:
        cands = [q for q in lessors[lessor_i : lessor_i + 40] if q.park == e.parcels[0].park and q.holder is not e]
        if not cands:
            continue
        q = cands[0]
        lessors.remove(q)
        if chance(0.5) and q.mu > 20:
            leases.append(Lease(e, q, land_lease(q, 0.05, 0.2), None))
        else:
            leases.append(Lease(e, q, None, -U(0.05, 0.2)))
        e.tags.append("also_rents")
    for e in lessees:
        if e.kind == "lessee":
            e.tags.append("lessee_only")

    # -- parcel attributes -------------------------------------------------------------------------
    def sector_min_pr(p: Parcel) -> float | None:
        h = p.holder
        if isinstance(h, Ent):
            return CODE_INFO[h.code][1]
        return None

    def normal_dates(p: Parcel, e: Ent | None, first: bool):
        if e is not None and e.prod_start is not None and e.prod_start.year >= 2023:
            if "T_new_2025_on_own_land" in e.tags:
                c = rand_date(dt.date(2023, 1, 15), dt.date(2023, 6, 30))
            else:
                c = add_days(e.prod_start, -U(600, 900))
        else:
            c = rand_date(dt.date(2004, 1, 1), dt.date(2020, 6, 30))
        a = add_days(c, U(-30, 150))
        return c, a

    # warehouse land: a few normal parcels, mostly in the port park
    wh = pick([p for e in normal_owners for p in e.parcels if p.idx not in flagged and p.park == "P2"], 14) + pick(
        [p for e in normal_owners for p in e.parcels if p.idx not in flagged and p.park != "P2"], 8
    )
    for p in wh:
        p.land_use = "仓储用地"

    def price(p: Parcel, c: dt.date) -> float:
        per_mu = 6 + (c.year - 2004) * 0.9 + U(-1.5, 3.0)
        return round(p.mu * per_mu, 2)

    for p in parcels:
        h = p.holder
        a = p.attrs
        minpr = sector_min_pr(p) or 0.8
        if h is None:  # unassigned state land
            for k in ("total_floor", "footprint", "contract", "actual", "dev", "inv", "susp", "cause", "price"):
                a[k] = None
            continue
        e = h if isinstance(h, Ent) else None
        if p.case in {k for k, *_ in IDLE_CASES} or (p.case == "cluster_A" and p is cl_a[0]):
            if p is cl_a[0]:
                case = ("A1", dt.date(2022, 12, 1), None, 0.0, 0.0, None, None, "")
            else:
                case = next(c for c in IDLE_CASES if c[0] == p.case)
            _, c, act, dev, inv, susp, cause, _ = case
            a["contract"], a["cause"], a["susp"] = c, cause, susp
            a["price"] = price(p, c)
            if isinstance(act, dict):  # starts in 2025
                p.year_attrs[2024] = {"actual": None, "dev": 0.0, "inv": 0.0, "total_floor": 0.0, "footprint": 0.0}
                a["actual"], a["dev"], a["inv"] = act[2025], dev, inv
            else:
                a["actual"], a["dev"], a["inv"] = act, dev, inv
            if a["dev"] > 0:
                p.bc = 0.45 * a["dev"]
                p.pr = p.bc * 1.0
            else:
                p.bc = p.pr = 0.0
            continue
        if p in newp:
            c = rand_date(dt.date(2026, 5, 1), dt.date(2026, 12, 31))
            a.update(
                contract=c, actual=None, dev=0.0, inv=0.0, susp=None, cause=None, price=price(p, dt.date(2025, 6, 1))
            )
            p.bc = p.pr = 0.0
            continue
        if p is gone[0]:
            c = dt.date(2022, 3, 1)
            a.update(contract=c, actual=None, dev=0.0, inv=0.0, susp=None, cause=None, price=price(p, c))
            p.bc = p.pr = 0.0
            continue
        first = e is None or e.parcels[0] is p
        c, act = normal_dates(p, e, first)
        if e is not None and not first and e.kind == "normal" and e.prod_start is None:
            c0 = e.parcels[0].attrs.get("contract") or c
            c = min(add_days(c0, U(0, 6 * 365)), dt.date(2021, 6, 30))
            act = add_days(c, U(-30, 150))
        a.update(contract=c, actual=act, dev=1.0, inv=1.0, susp=None, cause=None, price=price(p, c))
        if chance(0.04):
            a["cause"] = pick(["国家政策调整", "other_government", "规划调整"])  # historic, no effect
        # intensity
        if p.case == "low_bc" or p is a4 or p is b3:
            p.bc = U(0.12, 0.26)
            p.pr = max(minpr * U(1.15, 1.6), p.bc * 1.05) if p.case == "low_bc" else p.bc * U(1.0, 1.3)
            if p is b3:
                p.pr = min(p.pr, minpr * 0.6)
        elif p.case == "low_pr" or p is a3:
            p.pr = minpr * U(0.55, 0.8)
            p.bc = U(0.33, min(p.pr, 0.5)) if p.pr > 0.34 else p.pr
        else:
            p.bc = U(0.36, 0.62)
            p.pr = max(minpr * U(1.15, 2.2), p.bc * U(1.0, 1.4))
        if isinstance(e, Ent) and "T_new_2025_on_own_land" in e.tags:
            p.year_attrs[2024] = {"dev": 0.6, "inv": 0.7, "total_floor": None, "footprint": None}
    # floor area and footprint from the targets
    for p in parcels:
        if p.holder is None:
            continue
        fp = round(p.bc * p.area, 2)
        fl = round(p.pr * p.area, 2)
        p.attrs["footprint"] = fp
        p.attrs["total_floor"] = fl
        y24 = p.year_attrs.get(2024, {})
        if "footprint" in y24 and y24["footprint"] is None:  # under construction in 2024
            y24["footprint"] = round(fp * 0.6, 2)
            y24["total_floor"] = round(fl * 0.5, 2)
    # registered area: ±0.45 % normally, six parcels far off
    for p in parcels:
        p.reg_area = round(p.area * (1 + float(np.clip(rng.normal(0, 0.0015), -0.0045, 0.0045))), 2)
        if any(t.startswith("bowtie") for t in p.tags):
            p.reg_area = round(p.area, 2)  # registered = the intended (valid) shape
    mism_cands = [
        p
        for e in normal_owners
        for p in e.parcels
        if p.idx not in flagged and not p.tags and len(p.years) == 2 and p.case == ""
    ]
    mismatch = pick(mism_cands, 6)
    factors = [1.065, 0.93, 1.12, 0.88, 1.30, None]
    for p, f in zip(mismatch, factors, strict=False):
        if f is None:
            p.reg_area = round(p.area / MU, 2)  # 亩 typed into the m² column
            p.tags.append("area_mismatch 亩 typed as m²")
        else:
            p.reg_area = round(p.area * f, 2)
            p.tags.append(f"area_mismatch ×{f}")

    # resolve floor-share leases into floor areas
    for ls in leases:
        if ls.floor is not None:
            share = -ls.floor
            fl = ls.parcel.attrs.get("total_floor") or 0.0
            ls.floor = round(share * fl, 2)

    # -- bad USCCs (same wrong code in every table: the registry entry itself is wrong)
    for e in bad_check:
        c = e.uscc
        wrong = ALPHABET[(ALPHABET.index(c[17]) + 7) % 31]
        e.uscc = c[:17] + wrong
        e.tags.append("invalid_uscc_check_char")
    for e in bad_org:
        c = e.uscc
        good = c[16]
        wrong = "7" if good != "7" else "3"
        first17 = c[:16] + wrong
        e.uscc = first17 + uscc_check_char(first17)
        e.tags.append("invalid_org_code_check")

    # -- figures ---------------------------------------------------------------------------------
    def land_mu(e: Ent, year: int) -> float:
        mu = sum(p.mu for p in e.parcels if year in p.years)
        for ls in leases:
            if year not in ls.years:
                continue
            if ls.lessee is e:
                mu += (ls.land or 0) / MU + (ls.floor or 0) / max(ls.parcel.pr, 0.5) / MU
            if ls.parcel.holder is e:
                mu -= (ls.land or 0) / MU + (ls.floor or 0) / max(ls.parcel.pr, 0.5) / MU
        return max(mu, 0.3)

    all_ents = list(ENTS)
    for e in all_ents:
        s = SECTORS[e.sector]
        if e.prod_start is None and e.kind not in ("zero",):
            if e.kind == "lessee":
                e.prod_start = rand_date(dt.date(2008, 1, 1), dt.date(2022, 10, 31))
            elif e.parcels:
                act = e.parcels[0].attrs.get("actual") or dt.date(2015, 1, 1)
                e.prod_start = min(add_days(act, U(365, 800)), dt.date(2022, 12, 15))
        base = float(np.clip(rng.lognormal(math.log(s.tax_med), s.sigma), 2.5, 150))
        if e.kind == "dlike":
            base = U(0.2, 1.2)
        elif e.kind == "leased_out":
            base = U(1.0, 3.0)
        elif e.kind == "util":
            base = U(3, 8)
        growth = float(rng.lognormal(math.log(1.04), 0.18))
        sx, va, mr = U(*s.sales_x), U(*s.va), U(0.92, 1.0)
        rnd_share = U(*s.rnd) if chance(0.85) else 0.0
        e_int = float(rng.lognormal(0, 0.3))
        el_int = float(rng.lognormal(0, 0.3))
        em_int = float(rng.lognormal(0, 0.5))
        prod = s.prod * float(rng.lognormal(0, 0.25))
        for year in e.years:
            f = {}
            mu = land_mu(e, year)
            per_mu = base * (growth if year == 2025 else 1.0)
            if e.kind == "dlike":
                per_mu = base * (U(0.8, 1.2) if year == 2025 else 1.0)
            ps = e.prod_start
            if e.kind == "zero" or ps is None or ps.year > year:
                per_mu = 0.0
            elif ps.year == year:
                per_mu *= U(0.1, 0.5)
            elif ps.year == year - 1 and ps.year >= 2023:
                per_mu *= U(0.6, 1.0)
            tax = per_mu * mu
            if e.small:
                tax = min(tax, 1900 / sx / 1.0 * 0.95)
            sales = tax * sx
            f["tax"] = round(tax, 2)
            f["sales"] = round(sales, 2)
            f["value_added"] = round(sales * va, 2)
            f["main_revenue"] = round(sales * mr, 2)
            f["rnd"] = round(sales * mr * rnd_share, 2)
            if tax == 0:
                f["energy"] = round(U(0, 15), 2) if chance(0.5) else 0.0
                f["electricity"] = round(f["energy"] / 1.229 * U(0.6, 1.0), 2)
                f["emission"] = 0.0
                f["employees"] = int(rng.integers(2, 12))
            else:
                energy, emis = UTIL_INTENSITY.get(e.code, (s.energy, s.emis))
                f["energy"] = round(sales * va * energy * e_int, 2)
                f["electricity"] = round(sales * s.elec * el_int, 2)
                f["emission"] = round(sales * va * emis * em_int, 2)
                f["employees"] = max(3, round(sales / prod))
            f["above_scale"] = f["main_revenue"] >= 2000
            e.figures[year] = f
    # blank emission for ~5 % of 规上 each year
    for year in YEARS:
        n_above = sum(1 for e in all_ents if year in e.years and e.figures[year]["above_scale"])
        above = [
            e
            for e in all_ents
            if year in e.years and e.figures[year]["above_scale"] and not e.tags and e.kind == "normal"
        ]
        for e in pick(above, round(0.05 * n_above)):
            e.no_emission.add(year)
            e.figures[year]["emission"] = None
            if "missing_emission" not in e.tags:
                e.tags.append("missing_emission")

    # -- parcel codes --------------------------------------------------------------------------------
    for spec in PARKS:
        ps = [p for p in parcels if p.park == spec.key]
        by_sub: dict[int, list[Parcel]] = {}
        for p in ps:
            by_sub.setdefault(p.block[1] + 1, []).append(p)
        for sub, group in sorted(by_sub.items()):
            old = sorted([p for p in group if p not in newp], key=lambda q: (q.order[0], q.order[2], q.order[3]))
            new = sorted([p for p in group if p in newp], key=lambda q: q.order)
            for n, p in enumerate(old + new, start=1):
                p.code = f"{spec.county_code}{spec.district}{sub:03d}GB{n:05d}"
    codes = [p.code for p in parcels]
    assert len(set(codes)) == len(codes)

    # -- buildings (2025 state) ----------------------------------------------------------------------
    for p in parcels:
        if 2025 not in p.years or p.holder is None:
            continue
        target = p.attrs.get("footprint") or 0.0
        p.buildings = draw_buildings(p, target)

    write_all(parcels, leases, unknowns, park_cells, locals())


def draw_buildings(p: Parcel, target: float) -> list[Polygon]:
    """Rectangular buildings inside the parcel with total area ≈ target (local frame → world)."""
    if target < 50:
        return []
    poly = Polygon(p.ring)
    setback = 8.0 if p.mu > 3 else 3.0
    inner = poly.buffer(-setback, join_style="mitre")
    if inner.is_empty:
        inner = poly.buffer(-1.0, join_style="mitre")
    minx, miny, maxx, maxy = inner.bounds
    k = 1 if target < 3000 else 2 if target < 12000 else 3 if target < 30000 else 4
    horizontal = (maxx - minx) >= (maxy - miny)
    L = (maxx - minx) if horizontal else (maxy - miny)
    gap = 12.0
    seg = (L - (k - 1) * gap) / k
    if seg < 10:
        k, seg = 1, L
    jitter = [U(0.85, 1.0) for _ in range(k)]

    def rects(t):
        out = []
        for i in range(k):
            if horizontal:
                a0 = minx + i * (seg + gap)
                cx, cy = a0 + seg / 2, (miny + maxy) / 2
                w, h = seg * t * jitter[i], (maxy - miny) * t
            else:
                a0 = miny + i * (seg + gap)
                cx, cy = (minx + maxx) / 2, a0 + seg / 2
                w, h = (maxx - minx) * t, seg * t * jitter[i]
            r = box(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2).intersection(inner)
            if not r.is_empty and r.area > 1:
                out.append(r)
        return out

    def total(t):
        return sum(r.area for r in rects(t))

    lo, hi = 0.0, 1.0
    if total(1.0) <= target:
        t = 1.0
    else:
        for _ in range(30):
            mid = (lo + hi) / 2
            if total(mid) < target:
                lo = mid
            else:
                hi = mid
        t = (lo + hi) / 2
    spec = PARK_BY_KEY[p.park]
    out = []
    for r in rects(t):
        for g in getattr(r, "geoms", [r]):
            if g.geom_type == "Polygon":
                out.append(Polygon(local_to_world(spec, np.array(g.exterior.coords))))
    return out


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

ENT_HEADERS = [
    ("uscc", "统一社会信用代码"),
    ("name", "企业名称"),
    ("county", "县区"),
    ("park", "园区"),
    ("industry_code", "行业代码"),
    ("above_scale", "是否规上"),
    ("production_start", "投产日期"),
    ("exempt_reason", "不参评原因"),
    ("tax", "税收（万元）"),
    ("sales", "销售收入（万元）"),
    ("value_added", "工业增加值（万元）"),
    ("main_revenue", "主营业务收入（万元）"),
    ("rnd", "研发经费支出（万元）"),
    ("energy_tce", "综合能耗（吨标准煤）"),
    ("electricity_10k_kwh", "用电量（万千瓦时）"),
    ("emission_t", "主要污染物排放量（吨）"),
    ("employees", "年平均职工人数（人）"),
    ("safety_veto", "安全生产否决"),
    ("environment_veto", "环保否决"),
    ("bonus", "加分"),
    ("penalty", "减分"),
]
PARCEL_COLS = [
    ("parcel_id", "宗地代码"),
    ("holder_uscc", "权利人统一社会信用代码"),
    ("holder_name", "权利人"),
    ("county", "县区"),
    ("park", "园区"),
    ("land_use", "土地用途"),
    ("registered_area_m2", "登记面积"),
    ("floor_area_m2", "总建筑面积"),
    ("footprint_area_m2", "建筑基底面积"),
    ("contract_start_date", "约定动工日期"),
    ("actual_start_date", "实际动工日期"),
    ("developed_ratio", "已开发面积比例"),
    ("invested_ratio", "已投资比例"),
    ("suspended_since", "停工日期"),
    ("delay_cause", "政府原因延迟"),
    ("land_price", "土地出让价款"),
]
LEASE_HEADERS = [
    ("lessee_uscc", "承租方统一社会信用代码"),
    ("lessee_name", "承租方名称"),
    ("parcel_id", "宗地代码"),
    ("leased_land_m2", "租赁土地面积（平方米）"),
    ("leased_floor_m2", "租赁厂房面积（平方米）"),
]


def _check_contract():
    names = {f.name: f for t in gf.TABLE_FIELDS.values() for f in t}
    for cols in (ENT_HEADERS, PARCEL_COLS, LEASE_HEADERS):
        for n, h in cols:
            assert n in names, n
            assert gf.normalize_header(h)[0] == names[n].label, (n, h)


def parcel_frame(parcels: list[Parcel], year: int) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    ev = EVAL_DATE[year]

    def d(v):
        if v is None or v > ev:  # events after the export date are not known yet
            return None
        return v if year == 2025 else v.isoformat()

    for p in sorted(parcels, key=lambda q: q.code):
        if year not in p.years:
            continue
        h = p.holder
        spec = PARK_BY_KEY[p.park]
        g = lambda k, p=p: p.get(year, k)  # noqa: E731
        contract = g("contract")
        rows.append(
            {
                "宗地代码": p.code,
                "权利人统一社会信用代码": h.uscc if h is not None else None,
                "权利人": (h.parcel_name or h.name) if isinstance(h, Ent) else (h.name if h is not None else None),
                "县区": spec.county,
                "园区": spec.name,
                "土地用途": p.land_use,
                "登记面积": p.reg_area,
                "总建筑面积": g("total_floor"),
                "建筑基底面积": g("footprint"),
                # the contracted date is known in advance: keep it even when it lies after the export date
                "约定动工日期": (contract if year == 2025 else contract.isoformat()) if contract else None,
                "实际动工日期": d(g("actual")),
                "已开发面积比例": g("dev"),
                "已投资比例": g("inv"),
                "停工日期": d(g("susp")),
                "政府原因延迟": g("cause"),
                "土地出让价款": g("price"),
            }
        )
        geoms.append(p.geom)
    df = pd.DataFrame(rows)
    for c in ("登记面积", "总建筑面积", "建筑基底面积", "已开发面积比例", "已投资比例", "土地出让价款"):
        df[c] = df[c].astype("float64")
    return gpd.GeoDataFrame(df, geometry=geoms, crs=CRS)


def write_gpkg(gdf: gpd.GeoDataFrame, path: Path, layer: str, use_arrow: bool = False) -> None:
    if path.exists():
        path.unlink()
    pyogrio.write_dataframe(gdf, path, layer=layer, driver="GPKG", use_arrow=use_arrow)


def write_xlsx(ents: list[Ent], year: int, path: Path) -> None:
    if path.exists():
        path.unlink()
    title = f"{year}年度连云港市海滨区、青松县工业企业资源集约利用综合评价基础数据表"
    wb = xlsxwriter.Workbook(str(path))
    wb.set_properties({"title": title, "author": "geo-eval sample generator (fictional data)", "created": XLSX_CREATED})
    ws = wb.add_worksheet("企业数据")
    f_title = wb.add_format({"bold": True, "font_size": 14, "align": "center", "valign": "vcenter"})
    f_head = wb.add_format(
        {"bold": True, "text_wrap": True, "align": "center", "valign": "vcenter", "border": 1, "bg_color": "#DDEBF7"}
    )
    f_money = wb.add_format({"num_format": "0.00"})
    f_int = wb.add_format({"num_format": "0"})
    f_date = wb.add_format({"num_format": "yyyy-mm-dd"})
    ncol = len(ENT_HEADERS)
    ws.merge_range(0, 0, 0, ncol - 1, title, f_title)
    ws.set_row(0, 30)
    ws.set_row(1, 36)
    for c, (_, h) in enumerate(ENT_HEADERS):
        ws.write_string(1, c, h, f_head)
    widths = [22, 36, 8, 22, 9, 8, 11, 16] + [12] * 9 + [8, 8, 6, 6]
    for c, w in enumerate(widths):
        ws.set_column(c, c, w)
    ws.freeze_panes(2, 2)
    r = 2
    for e in ents:
        f = e.figures[year]
        yn = lambda b: "是" if b else "否"  # noqa: E731
        ws.write_string(r, 0, e.uscc)
        ws.write_string(r, 1, e.name)
        ws.write_string(r, 2, e.county)
        ws.write_string(r, 3, e.park)
        ws.write_string(r, 4, e.code)
        ws.write_string(r, 5, yn(f["above_scale"]))
        if e.prod_start is not None and e.prod_start <= dt.date(year, 12, 31):
            ws.write_datetime(r, 6, dt.datetime.combine(e.prod_start, dt.time()), f_date)
        if year in e.exempt:
            ws.write_string(r, 7, e.exempt[year])
        for c, k in (
            (8, "tax"),
            (9, "sales"),
            (10, "value_added"),
            (11, "main_revenue"),
            (12, "rnd"),
            (13, "energy"),
            (14, "electricity"),
            (15, "emission"),
        ):
            if f[k] is not None:
                ws.write_number(r, c, f[k], f_money)
        ws.write_number(r, 16, f["employees"], f_int)
        ws.write_string(r, 17, yn(e.safety.get(year)))
        ws.write_string(r, 18, yn(e.env.get(year)))
        if year in e.bonus:
            ws.write_number(r, 19, e.bonus[year])
        if year in e.penalty:
            ws.write_number(r, 20, e.penalty[year])
        r += 1
    ws.autofilter(1, 0, r - 1, ncol - 1)
    wb.close()


def write_leases(leases: list[Lease], year: int, path: Path) -> int:
    rows = [ls for ls in leases if year in ls.years and year in ls.parcel.years]
    rows.sort(key=lambda ls: (ls.parcel.code, ls.lessee.uscc))
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([h for _, h in LEASE_HEADERS])
        for ls in rows:
            w.writerow(
                [
                    ls.lessee.uscc,
                    ls.lessee.name,
                    ls.parcel.code,
                    f"{ls.land:.2f}" if ls.land else "",
                    f"{ls.floor:.2f}" if ls.floor else "",
                ]
            )
    return len(rows)


DATASET_TOML = """year = {year}
evaluation_date = "{ev}"
[parcels]
path = "parcels.gpkg"
layer = "parcels"
[enterprises]
path = "enterprises.xlsx"
sheet = "企业数据"
[leases]
path = "leases.csv"
{layers}"""

# The built-up raster shows the 2025 state, so only the 2025 dataset points at it; both years name the
# park outlines the maps draw.
LAYERS_TOML = {
    2024: '[layers]\nparks = "../../layers/parks.gpkg"\n',
    2025: '[layers]\nbuiltup = "../../layers/builtup_10m.tif"\nparks = "../../layers/parks.gpkg"\n',
}


def make_counties() -> gpd.GeoDataFrame:
    """Two fictional counties cut from the sample box; the sea lies east of a ragged coastline."""
    lon0, lat0, _lon1, lat1 = SAMPLE_BOX

    def fractal(a, b, depth, amp):
        pts = [a, b]
        for _ in range(depth):
            new = [pts[0]]
            for p, q in itertools.pairwise(pts):
                mx, my = (p[0] + q[0]) / 2, (p[1] + q[1]) / 2
                dx, dy = q[0] - p[0], q[1] - p[1]
                n = math.hypot(dx, dy)
                off = float(rng.normal(0, amp))
                new += [(mx - dy / n * off, my + dx / n * off), q]
            pts = new
            amp /= 1.8
        return pts

    def proj(pts):
        x, y = TO_GK.transform([p[0] for p in pts], [p[1] for p in pts])
        return [(round(a, 3), round(b, 3)) for a, b in zip(x, y, strict=False)]

    def edge(a, b, n=30):
        return [(a[0] + (b[0] - a[0]) * i / n, a[1] + (b[1] - a[1]) * i / n) for i in range(n)]

    coast = fractal((119.440, lat1), (119.425, lat0), 6, 0.006)  # north → south
    border = (
        fractal((lon0, 34.645), (119.300, 34.650), 5, 0.004) + fractal((119.300, 34.650), (119.310, lat1), 5, 0.004)[1:]
    )  # west edge → north edge
    land_ring = (
        edge((lon0, lat0), (coast[-1][0], lat0))
        + list(reversed(coast))
        + edge((coast[0][0], lat1), (lon0, lat1))
        + edge((lon0, lat1), (lon0, lat0))
    )
    qs_ring = border + edge((border[-1][0], lat1), (lon0, lat1)) + edge((lon0, lat1), (lon0, 34.645))[:-1]
    land = Polygon(proj(land_ring))
    qs = Polygon(proj(qs_ring)).intersection(land)
    hb = land.difference(qs)
    return gpd.GeoDataFrame(
        {"县区": ["海滨区", "青松县"], "县区代码": ["320799", "320798"]},
        geometry=[orient(hb, 1.0), orient(qs, 1.0)],
        crs=CRS,
    )


def parks_frame(park_cells) -> gpd.GeoDataFrame:
    rows, geoms = [], []
    for spec in PARKS:
        g = park_cells[spec.key]
        xy = local_to_world(spec, np.array(g.exterior.coords))
        rows.append({"园区": spec.name, "县区": spec.county})
        geoms.append(orient(Polygon(xy), 1.0))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=CRS)


def write_raster(parcels: list[Parcel], counties: gpd.GeoDataFrame, path: Path):
    minx, miny, maxx, maxy = counties.total_bounds
    minx, miny = math.floor(minx / 10) * 10, math.floor(miny / 10) * 10
    maxx, maxy = math.ceil(maxx / 10) * 10, math.ceil(maxy / 10) * 10
    width, height = int((maxx - minx) / 10), int((maxy - miny) / 10)
    transform = from_origin(minx, maxy, 10, 10)
    land = rasterize(
        ((g, 1) for g in counties.geometry), out_shape=(height, width), transform=transform, fill=0, dtype="uint8"
    )
    bld = [g for p in parcels for g in p.buildings]
    built = rasterize(((g, 1) for g in bld), out_shape=(height, width), transform=transform, fill=0, dtype="uint8")
    data = np.where(land == 1, built, 255).astype("uint8")
    if path.exists():
        path.unlink()
    profile = {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": 1,
        "dtype": "uint8",
        "crs": CRS,
        "transform": transform,
        "nodata": 255,
        "compress": "deflate",
        "zlevel": 9,
        "predictor": 2,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.set_band_description(1, "built-up (1) / not built-up (0), 255 = outside the sample counties")
        dst.update_tags(SOURCE="geo-eval sample_parcels/make_sample.py (fictional)", YEAR="2025")
    return data, transform


def write_all(parcels, leases, unknowns, park_cells, ctx):
    _check_contract()
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    LAYERS.mkdir(exist_ok=True)
    ents = sorted(ENTS, key=lambda e: (e.county, e.park, e.uscc))
    counts = {}
    for year in YEARS:
        d = SAMPLE / str(year)
        d.mkdir(exist_ok=True)
        (d / "dataset.toml").write_text(
            DATASET_TOML.format(year=year, ev=EVAL_DATE[year].isoformat(), layers=LAYERS_TOML.get(year, "")),
            encoding="utf-8",
        )
        gdf = parcel_frame(parcels, year)
        write_gpkg(gdf, d / "parcels.gpkg", "parcels", use_arrow=(year == 2025))
        ye = [e for e in ents if year in e.years]
        write_xlsx(ye, year, d / "enterprises.xlsx")
        nl = write_leases(leases, year, d / "leases.csv")
        counts[year] = (len(gdf), len(ye), nl)
    counties = make_counties()
    parks = parks_frame(park_cells)
    for _, pk in parks.iterrows():
        cty = counties.loc[counties["县区"] == pk["县区"]].geometry.iloc[0]
        assert cty.contains(pk.geometry), pk["园区"]
    write_gpkg(counties, LAYERS / "counties.gpkg", "counties")
    write_gpkg(parks, LAYERS / "parks.gpkg", "parks")
    raster, transform = write_raster(parcels, counties, LAYERS / "builtup_10m.tif")
    built_frac = builtup_fraction(parcels, raster, transform)
    hand = hand_evaluation(parcels, leases, ents)
    flags = expected_flags(parcels, leases, ctx, built_frac, hand)
    write_csv(SAMPLE / "expected_flags.csv", ["parcel_id", "year", "flag", "expect", "why"], flags)
    eflags = expected_enterprises(ents, unknowns, ctx, hand)
    write_csv(SAMPLE / "expected_enterprises.csv", ["uscc", "name", "year", "oddity", "why"], eflags)
    write_csv(SAMPLE / "expected_scores.csv", SCORE_HEADER, expected_scores(hand))
    write_csv(SAMPLE / "expected_benchmarks.csv", BENCHMARK_HEADER, expected_benchmarks(hand))
    write_readmes(parcels, leases, ents, unknowns, ctx, counts, flags, eflags, built_frac, hand)
    print(
        f"parcels 2024/2025: {counts[2024][0]}/{counts[2025][0]}, enterprises {counts[2024][1]}/"
        f"{counts[2025][1]}, leases {counts[2024][2]}/{counts[2025][2]}"
    )


def hand_evaluation(parcels, leases, ents) -> dict[int, tuple[dict, hand_rating.Year]]:
    """The hand evaluation (``hand_rating``) of both years, from the values written to the files."""
    out: dict[int, tuple[dict, hand_rating.Year]] = {}
    previous = None
    for year in YEARS:
        land = [
            hand_rating.LandUse(
                p.code,
                shapely.make_valid(p.geom).area,
                p.holder.uscc if p.holder is not None else None,
                p.get(year, "total_floor"),
                PARK_BY_KEY[p.park].county,
            )
            for p in sorted(parcels, key=lambda q: q.code)
            if year in p.years
        ]
        rows = [ls for ls in leases if year in ls.years and year in ls.parcel.years]
        lease_rows = [hand_rating.Lease(ls.lessee.uscc, ls.parcel.code, ls.land, ls.floor) for ls in rows]
        firms = {
            e.uscc: hand_rating.Firm(
                uscc=e.uscc,
                name=e.name,
                county=e.county,
                industry_code=e.code,
                above_scale=e.figures[year]["above_scale"],
                production_start=e.prod_start if e.prod_start and e.prod_start <= dt.date(year, 12, 31) else None,
                exempt_reason=e.exempt.get(year, ""),
                figures=e.figures[year],
                veto=bool(e.safety.get(year) or e.env.get(year)),
                bonus=e.bonus.get(year, 0.0),
                penalty=e.penalty.get(year, 0.0),
            )
            for e in sorted(ents, key=lambda q: q.uscc)
            if year in e.years
        }
        result = hand_rating.evaluate(year, land, lease_rows, list(firms.values()), previous)
        out[year] = (firms, result)
        previous = (firms, result)
    return out


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def builtup_fraction(parcels, raster, transform) -> dict[int, float]:
    shapes = [(p.intended, i + 1) for i, p in enumerate(parcels) if 2025 in p.years]
    ids = rasterize(shapes, out_shape=raster.shape, transform=transform, fill=0, dtype="int32")
    flat_ids, flat_v = ids.ravel(), raster.ravel()
    n = np.bincount(flat_ids, minlength=len(parcels) + 1)
    b = np.bincount(flat_ids, weights=(flat_v == 1), minlength=len(parcels) + 1)
    return {p.idx: (b[i + 1] / n[i + 1] if n[i + 1] else 0.0) for i, p in enumerate(parcels) if 2025 in p.years}


def idle_status(p: Parcel, year: int) -> tuple[str, str]:
    """(flag, why) under 闲置土地处置办法 at evaluation_date; flag '' when not idle."""
    ev = EVAL_DATE[year]
    c = p.get(year, "contract")
    if c is None or p.holder is None:
        return "", ""
    act = p.get(year, "actual")
    act = act if act is not None and act <= ev else None
    cause = p.get(year, "cause")
    dev, inv = p.get(year, "dev") or 0.0, p.get(year, "inv") or 0.0
    susp = p.get(year, "susp")
    if act is None:
        n = full_years(c, ev)
        basis = f"约定动工日期 {c} 至评价日 {ev} 满 {max(n, 0)} 年，未动工"
    else:
        if not ((dev < 1 / 3 or inv < 0.25) and susp is not None and susp <= ev):
            return "", ""
        n = full_years(susp, ev)
        basis = f"已动工，开发比例 {dev:.2f}，投资比例 {inv:.2f}，{susp} 起停工，至 {ev} 满 {max(n, 0)} 年"
    if n < 1:
        return "not_idle", basis
    if cause:
        return "exempt", basis + f"；政府原因 {cause}"
    return ("idle_2y" if n >= 2 else "idle_1y"), basis


def expected_flags(parcels, leases, ctx, built_frac, hand) -> list[list]:
    rows = []
    idle_keys = {k for k, *_ in IDLE_CASES}
    for year in YEARS:
        first_row = len(rows)
        firms, result = hand[year]
        for p in sorted(parcels, key=lambda q: q.code):
            if year not in p.years:
                continue
            h = p.holder
            e = h if isinstance(h, Ent) else None
            add = lambda flag, why, expect="yes", p=p, year=year: rows.append([p.code, year, flag, expect, why])  # noqa: E731
            # geometry and area
            if not p.geom.is_valid:
                add("invalid_geometry", f"自相交“蝴蝶结”环（{p.tags[0]}），make_valid 可修复")
            comp = shapely.make_valid(p.geom).area
            diff = (p.reg_area - comp) / comp
            if abs(diff) > 0.05:
                add("area_mismatch", f"登记面积 {p.reg_area:.2f} 与计算面积 {comp:.2f} 相差 {diff:+.1%}")
            # holders
            if h is None:
                add("no_holder", "未供应的国有储备用地，无权利人（疑似闲置证据）")
            elif isinstance(h, UnknownHolder):
                add("holder_not_in_enterprises", f"权利人 {h.name} 不在企业数据表中")
            elif year in e.years:
                f = e.figures[year]
                if f["tax"] == 0 and f["sales"] == 0:
                    add("zero_output", f"权利人 {e.name} 当年税收与销售收入均为 0（疑似闲置证据）")
                if year == 2025 and all(y in e.figures and e.figures[y]["tax"] == 0 for y in YEARS):
                    add("zero_tax_2y", "权利人 2024、2025 连续两年税收为 0")
            # legal idle
            flag, why = idle_status(p, year)
            if flag in ("idle_1y", "idle_2y"):
                add("idle_1y", why)
                if flag == "idle_2y":
                    add("idle_2y", why + "（满2年：无偿收回）")
                else:
                    add("idle_2y", why + "（不满2年）", "no")
            elif flag == "exempt":
                add("idle_exempt", why)
                add("idle_1y", why + "（政府原因，不计闲置）", "no")
            elif p.case in idle_keys or (p.case == "cluster_A" and p is ctx["cl_a"][0]):
                add("idle_1y", (why or "约定动工日期未到或未满1年") + "（边界/反例：不构成闲置）", "no")
            # intensity (needs the holder's industry)
            fl, fp = p.get(year, "total_floor"), p.get(year, "footprint")
            if e is not None and fl is not None:
                minpr = CODE_INFO[e.code][1]
                pr, bc = fl / comp, fp / comp
                kind = "未开发或在建" if (p.get(year, "dev") or 0) < 1 else "故意设置"
                if minpr is not None and pr < minpr:
                    add("low_plot_ratio", f"容积率 {pr:.2f} < {e.code} 行业下限 {minpr}（{kind}）")
                if bc < 0.30:
                    add("low_building_coefficient", f"建筑系数 {bc:.1%} < 30%（{kind}）")
            # leases
            land = sum(ls.land or 0 for ls in leases if ls.parcel is p and year in ls.years)
            floor = sum(ls.floor or 0 for ls in leases if ls.parcel is p and year in ls.years)
            if land > 0.5 * p.area or (fl and floor > 0.5 * fl):
                add("mainly_leased_out", f"出租土地 {land / p.area:.0%} / 出租厂房 {floor / fl if fl else 0:.0%}")
            # clusters and the isolated plot
            if p.case in ("cluster_A", "cluster_B"):
                grp = ctx["cl_a"] if p.case == "cluster_A" else ctx["cl_b"]
                tot = sum(q.mu for q in grp)
                add(p.case, f"同一街区内相邻的 {len(grp)} 宗低效/闲置地块，合计 {tot:.1f} 亩（> 50 亩）")
            if p.case == "isolated":
                add("isolated_flagged", f"孤立的低效地块（{p.mu:.1f} 亩），相邻宗地均未标记")
            # the raster rule looks at the ground, whoever holds the parcel: unassigned state land is listed too
            if year == 2025 and p.idx in built_frac and built_frac[p.idx] < 0.10:
                unheld = "（无权利人的储备用地）" if h is None else ""
                add("low_builtup", f"builtup_10m.tif 建成区像元比例 {built_frac[p.idx]:.1%}{unheld}")
            # the rules that need the whole evaluation (hand_rating.py)
            tpm = result.parcel_tax_per_mu.get(p.code)
            mean = result.county_tax_per_mu[PARK_BY_KEY[p.park].county]
            if tpm is not None and tpm < hand_rating.LOW_TAX_SHARE * mean:
                deliberate = "（故意设置：两年都很低）" if isinstance(e, Ent) and e.kind == "dlike" else ""
                add(
                    "low_tax_per_mu",
                    f"宗地亩均税收 {tpm:.2f} 万元/亩 < 县区参评企业亩均税收 {mean:.2f} 的 20%（{0.2 * mean:.2f}）{deliberate}",
                )
            main = hand_rating.main_user(result.allocation, p.code)
            if main in result.results and result.results[main].grade == "D":
                r = result.results[main]
                veto = "，安全生产或环保否决" if firms[main].veto else ""
                add("grade_d", f"主要使用企业 {main}（{firms[main].name}）为 D 类（得分 {r.score:.2f}{veto}）")
        rows.extend(renewal_rows(parcels, rows[first_row:], year))
    return rows


COUNTED_FLAGS = (
    "idle_1y",
    "no_holder",
    "holder_not_in_enterprises",
    "zero_output",
    "low_builtup",
    "grade_d",
    "low_tax_per_mu",
    "low_plot_ratio",
    "low_building_coefficient",
    "zero_tax_2y",
    "mainly_leased_out",
)
"""Expected flags that make a parcel a 退二优二 candidate (every idle, suspected idle and low-efficiency rule)."""


def renewal_rows(parcels, rows: list[list], year: int) -> list[list]:
    """``renewal_candidate`` and ``renewal_block`` rows of one year from its other expected rows: a parcel
    with a counted flag and no ``idle_exempt`` is a candidate; candidates within 15 m form a group, and a
    group of at least 50 亩 is a 连片改造区块 (each row names its group by its first parcel code)."""
    yes = [r for r in rows if r[3] == "yes"]
    exempt = {r[0] for r in yes if r[2] == "idle_exempt"}
    counted = {r[0] for r in yes if r[2] in COUNTED_FLAGS} - exempt
    by_code = {p.code: p for p in parcels}
    geoms = {c: shapely.make_valid(by_code[c].geom) for c in counted}
    out = []
    for group in hand_rating.renewal_groups(geoms, shapely.distance):
        mu = sum(geoms[c].area for c in group) / MU
        for c in group:
            why = f"区块 {group[0]}：{len(group)} 宗，{mu:.1f} 亩"
            out.append([c, year, "renewal_candidate", "yes", why])
            if mu >= hand_rating.BLOCK_MIN_MU:
                out.append([c, year, "renewal_block", "yes", why + "（≥ 50 亩，连片改造区块）"])
    return sorted(out, key=lambda r: (r[0], r[2]))


def expected_enterprises(ents, unknowns, ctx, hand) -> list[list]:
    rows = []
    for e in ents:
        for year in YEARS:
            if year not in e.years:
                continue
            add = lambda o, why, e=e, year=year: rows.append([e.uscc, e.name, year, o, why])  # noqa: E731
            f = e.figures[year]
            if "invalid_uscc_check_char" in e.tags:
                add("invalid_uscc", "第18位校验码错误（各表同样写错，关联仍成立）")
            if "invalid_org_code_check" in e.tags:
                add("invalid_uscc", "第17位组织机构代码校验码错误（第18位按错误的前17位计算）")
            if e.kind == "lessee":
                add("lessee_only", "无自有宗地，仅租用土地或厂房")
            if e.kind == "util":
                add("t_class_utility", f"行业代码 {e.code}（{CODE_INFO[e.code][0]}）为公用事业")
            ps = e.prod_start
            if ps is not None and year - 1 <= ps.year <= year:
                add("t_class_new_production", f"投产日期 {ps}，评价年末不满2年")
            if year in e.exempt:
                add("exempt_reason", e.exempt[year])
            if e.safety.get(year):
                add("safety_veto", "安全生产否决 = 是")
            if e.env.get(year):
                add("environment_veto", "环保否决 = 是")
            if year in e.bonus:
                add("bonus", f"加分 {e.bonus[year]:g}")
            if year in e.penalty:
                add("penalty", f"减分 {e.penalty[year]:g}")
            if year in e.no_emission:
                add("missing_emission", "规上企业主要污染物排放量空白")
            r = hand[year][1].results[e.uscc]
            if r.t_reason == "规下不足3亩":  # every one, not only the deliberate ones
                how = "故意设置" if e.small else "厂房租赁按容积率折算"
                add("small_below_3mu", f"规下，评价用地 {r.land_mu:.2f} 亩不足3亩（{how}）")
            if f["tax"] == 0 and f["sales"] == 0:
                add("zero_output", "税收与销售收入均为 0")
            if e.kind == "dlike":
                add("low_tax", "亩均税收很低（D 类候选），两年都是")
            if e.parcel_name:
                add("name_differs_in_parcels", f"宗地表权利人写作“{e.parcel_name}”")
            if len(e.years) == 1 and e.years[0] == 2025:
                add("new_in_2025", "2025 年新出现的企业")
            if len(e.years) == 1 and e.years[0] == 2024:
                add("gone_in_2025", "2025 年已不在表中")
    for u, grp, _ in unknowns:
        for year in YEARS:
            rows.append(
                [
                    u.uscc,
                    u.name,
                    year,
                    "holder_not_in_enterprises",
                    "宗地权利人，不在企业数据表中：" + "、".join(p.code for p in grp),
                ]
            )
    return rows


SCORE_HEADER = ["uscc", "name", "year", "county", "group", "land_mu", "score", "grade", "rank", "rank_of", "note"]
BENCHMARK_HEADER = ["year", "county", "group", "indicator", "benchmark", "basis"]
GROUP_ORDER = {"above_scale": 0, "below_scale": 1, "": 2}


def score_note(f: hand_rating.Firm, r: hand_rating.Result) -> str:
    """What is special about an enterprise's result (the T reason, a veto, a missing figure, points)."""
    if not r.group:
        return "T：" + r.t_reason
    notes = []
    if f.veto:
        notes.append("否决→D")
    if r.values["tax_per_emission"] is None:
        notes.append("排放量空白，取县区本组平均得分")
    if f.bonus:
        notes.append(f"加分 {f.bonus:g}")
    if f.penalty:
        notes.append(f"减分 {f.penalty:g}")
    if r.score == 0:
        notes.append("得分为0，并列D")
    return "；".join(notes)


def expected_scores(hand) -> list[list]:
    """Every enterprise of both years as the hand evaluation (hand_rating.py) rates it."""
    rows = []
    for year in YEARS:
        firms, result = hand[year]
        order = sorted(
            result.results.values(),
            key=lambda r: (firms[r.uscc].county, GROUP_ORDER[r.group], r.rank or 0, r.uscc),
        )
        for r in order:
            f = firms[r.uscc]
            rated = bool(r.group)
            rows.append(
                [
                    r.uscc,
                    f.name,
                    year,
                    f.county,
                    r.group,
                    f"{r.land_mu:.6f}",
                    f"{r.score:.2f}" if rated else "",
                    r.grade,
                    r.rank if rated else "",
                    r.rank_of if rated else "",
                    score_note(f, r),
                ]
            )
    return rows


def expected_benchmarks(hand) -> list[list]:
    """The benchmarks of every county, group and indicator of both years (hand evaluation)."""
    rows = []
    for year in YEARS:
        basis = "2×本年均值（无上年结果）" if year == YEARS[0] else "2×上年均值"
        for (county, group, key), value in sorted(hand[year][1].benchmarks.items()):
            rows.append([year, county, group, key, f"{value:.12g}", basis])
    return rows


def md_table(header: list[str], rows: list[list]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def file_sizes() -> list[list]:
    rows = []
    for path in sorted([*SAMPLE.rglob("*"), *LAYERS.rglob("*")]):
        if path.is_file() and path.suffix not in (".md", ".py", ".pyc"):
            data = path.read_bytes()
            rows.append(
                [f"`{path.relative_to(OUT_ROOT).as_posix()}`", f"{len(data):,}", hashlib.sha256(data).hexdigest()[:12]]
            )
    return rows


INDICATOR_LABELS = {
    "tax_per_mu": "亩均税收",
    "revenue_per_mu": "亩均销售收入",
    "tax_per_energy": "单位能耗税收",
    "tax_per_emission": "单位排放税收",
    "labour_productivity": "全员劳动生产率",
    "rnd_intensity": "研发经费支出占比",
}


def hand_readme(A, hand) -> None:
    """The README section on the expected results: how they are worked out, counts, one example."""
    A("### Expected results worked out by hand\n")
    A(
        "`hand_rating.py` (imported by the generator, importing nothing from geo-eval) rates every enterprise of"
        " both years from the values the generator wrote, by the default scheme `lianyungang` as read from"
        " `geo_eval/rating/schemes/lianyungang.toml` and the domain reference (domain.md §3, §4) and copied into its code by hand: evaluated"
        " land (owned − leased out + leased in, floor leases ÷ plot ratio), T class, 2 × the county's previous-year"
        " aggregate mean per group as benchmark (2024: this year's, no previous year), item = weight × value ÷"
        " benchmark (floor 0, the group's average item where 排放量 or 研发 is missing), 加分 ≤ 10, 减分 ≤ 20, classes"
        " A 20 % / B 60 % / C 95 % per county and group with floor rounding, ties to the better class except at D,"
        " vetoes to D, competition ranks. Its module docstring spells every rule out.\n"
    )
    A(
        "- `expected_scores.csv`: every enterprise of both years (uscc, name, year, county, group, land_mu, score,"
        " grade, rank, rank_of, note); `note` gives the T reason or what is special (veto, missing emission, points,"
        " a score of 0). The tests require geo-eval's `enterprises.csv` to agree on group, class, rank and rank_of"
        " exactly, on the score to 1e-6 and on land_mu to 1e-4 (it is written with 4 decimals)."
    )
    A(
        "- `expected_benchmarks.csv`: every benchmark (year, county, group, indicator); geo-eval's `benchmarks.csv`"
        " must agree to a relative 1e-6 (2025 uses the 2024 results as geo-eval published them, land to 4"
        " decimals, which moves the benchmarks by about 1e-7).\n"
    )
    rows = []
    for year in YEARS:
        firms, result = hand[year]
        for county in sorted({f.county for f in firms.values()}):
            rs = [r for r in result.results.values() if firms[r.uscc].county == county]
            rows.append([year, county, *(sum(1 for r in rs if r.grade == g) for g in "ABCDT")])
    A(md_table(["year", "县区", "A", "B", "C", "D", "T"], rows))
    A("")
    firms, result = hand[2025]
    example = next(
        r
        for r in sorted(result.results.values(), key=lambda r: (firms[r.uscc].county, r.group, r.rank or 0))
        if r.group == "above_scale" and firms[r.uscc].bonus and not firms[r.uscc].veto
    )
    f = firms[example.uscc]
    A(
        f"Worked example (2025): `{f.uscc}` {f.name}, {f.county}, 规上, evaluated land {example.land_mu:.4f} 亩,"
        f" 加分 {f.bonus:g}:\n"
    )
    lines = []
    for key, (num, den, weight) in hand_rating.INDICATORS.items():
        b = result.benchmarks[(f.county, example.group, key)]
        v = example.values[key]
        shown = "missing" if v is None else f"{v:.6g}"
        lines.append([INDICATOR_LABELS[key], f"{num} ÷ {den}", shown, f"{b:.6g}", weight, f"{example.items[key]:.4f}"])
    A(md_table(["indicator", "formula", "value", "benchmark (2 × 2024 mean)", "weight", "item"], lines))
    cell = sum(1 for r in result.results.values() if r.group == example.group and firms[r.uscc].county == f.county)
    A(
        f"\nScore = {sum(example.items.values()):.4f} + {f.bonus:g} = {example.score:.2f}; rank {example.rank} of"
        f" {cell} (A up to position {math.floor(cell * 0.2 + 1e-9)}, B {math.floor(cell * 0.6 + 1e-9)},"
        f" C {math.floor(cell * 0.95 + 1e-9)}): class {example.grade}.\n"
    )


def write_readmes(parcels, leases, ents, unknowns, ctx, counts, flags, eflags, built_frac, hand):
    from collections import Counter

    def ids(ps):
        return ", ".join(f"`{p.code}`" for p in sorted(ps, key=lambda q: q.code))

    def ent_list(tag):
        return ", ".join(f"`{e.uscc}` {e.name}" for e in ents if tag in e.tags)

    lines = []
    A = lines.append
    A("# Sample parks (fictional)\n")
    A("> Generated by `sample_parcels/make_sample.py`; do not edit by hand (edit the generator and rerun).\n")
    A(
        "A complete, invented two-year data set for geo-eval: two fictional counties (海滨区 320799, 青松县 320798)"
        " near Lianyungang, three parks, about 800 industrial parcels, 600 enterprises and 100 leases. No place,"
        " company or code refers to a real one; the coordinates sit near Lianyungang only so that the CRS logic"
        " runs on realistic numbers.\n"
    )
    A("## Regenerate\n")
    A("```\n.venv/bin/python sample_parcels/make_sample.py\n```\n")
    A(
        f"Seed `{SEED}` (numpy `default_rng`). A rerun rewrites every file byte for byte: GeoPackage timestamps"
        f" are pinned (`OGR_CURRENT_DATE={GPKG_DATE}`), the xlsx creation date is fixed (xlsxwriter writes"
        " fixed zip member dates), and the generator never iterates an unsorted set. The generator also writes"
        " `layers/` (see `layers/README.md`), the four expected-results tables and this README.\n"
    )
    A(
        "`--out DIR` writes the same files under `DIR/sample_parcels/` and `DIR/layers/` instead. The test suite"
        " (`tests/test_sample_golden.py`) does that in a temporary folder, under another `PYTHONHASHSEED`, and"
        " requires every file to have the committed SHA-256: a change of the generator, of a library it uses or of"
        " a committed file without rerunning the generator fails there.\n"
    )
    A("Verify (CRS, counts, shared edges, merged title row, USCC checks, leases, clusters, raster, sizes):\n")
    A("```\n.venv/bin/python sample_parcels/check_sample.py\n```\n")
    A(
        "**CRS.** EPSG:4528, CGCS2000 3-degree Gauss-Kruger zone 40 with the zone prefix on the easting. The parks"
        " lie 0.6–0.8° west of the 120°E central meridian, so eastings are about 40 425 000 – 40 445 000 m"
        " (x ≈ 40 4xx xxx, not 40 5xx xxx) and northings 3 829 000 – 3 844 000 m.\n"
    )
    A("## Files\n")
    A("| dir | parcels | enterprises | leases | evaluation_date |\n|---|---|---|---|---|")
    for y in YEARS:
        A(f"| `sample_parcels/{y}/` | {counts[y][0]} | {counts[y][1]} | {counts[y][2]} | {EVAL_DATE[y]} |")
    A("")
    A(
        "Each year directory holds `dataset.toml`, `parcels.gpkg` (layer `parcels`), `enterprises.xlsx` (sheet"
        " `企业数据`) and `leases.csv` (UTF-8 with BOM). Sizes and SHA-256 prefixes of all generated files:\n"
    )
    A(md_table(["file", "bytes", "sha256"], file_sizes()))
    A("")
    A("## How it was made\n")
    A(
        "1. **Parks and blocks.** Each park is a grid of street blocks in a local frame (block widths and depths"
        " drawn per column/row, roads 20, 24, 30 m or 40 m on every third gap). Roads are gaps, not parcels. A few"
        " grid cells are outside the park, one per park is a vacant block (inside the park, no registered parcel)."
        " The grid is rotated (P1 12°, P2 −8°, P3 4°) and placed at a lon/lat centre projected to EPSG:4528."
    )
    A(
        "2. **Parcels.** A block is one parcel (some 200–400 亩 blocks in the port park), one strip or two strips."
        " A strip is cut across at lognormal widths (median 22/50/30 亩 for P1/P2/P3, clipped to 5–150 亩); 30 %"
        " of cuts are slanted (trapezoids). In two-strip blocks the middle line carries every cut end of both"
        " strips as a vertex, bottom cut ends within 25 m of a top cut are snapped into four-way junctions, and"
        " some top/bottom pairs are merged into L-shapes. Small 1–3 亩 parcels are cut out of block corners"
        " (their host becomes an L). Neighbours therefore share edges vertex for vertex (checked with"
        " `shapely.coverage_is_valid`). Coordinates are rounded to the millimetre after the rotation."
    )
    A(
        "3. **Roles.** Deliberate cases (idle land, clusters, unassigned land, …) are placed first, every one"
        " of them away from the others (no flagged parcel touches another flagged parcel except inside the two"
        " designed clusters). The remaining parcels go to owners in runs of 1–4 consecutive parcels of a block,"
        " so multi-parcel holdings are contiguous."
    )
    A(
        "4. **Figures.** Per-mu tax is lognormal by sector (medians 8–25 万元/亩, σ 0.8–0.9, clipped at 2.5 for"
        " ordinary firms so that 'very low' stays deliberate); sales = tax × 8–20 by sector, value added ≈ 18–34 %"
        " of sales, main revenue = 92–100 % of sales, R&D 0–5 % of main revenue, energy, electricity, emissions"
        " and employees from sector intensities with lognormal noise. 是否规上 = 是 when main revenue ≥ 2000 万元."
        " 2025 = 2024 × a lognormal growth factor (median 1.04, σ 0.18)."
    )
    A(
        "5. **Buildings.** 1–4 rectangles per developed parcel, set back 8 m, scaled by bisection so their area"
        " matches 建筑基底面积; they are rasterised into `layers/builtup_10m.tif` (2025 state).\n"
    )
    A("## Fields\n")
    A("### parcels.gpkg (layer `parcels`, EPSG:4528, Polygon)\n")
    pf = {f.name: f for f in gf.PARCEL_FIELDS}
    notes = {
        "parcel_id": "19 characters, GB/T 37346: county (6) + 地籍区 (3) + 地籍子区 (3) + `GB` + sequence (5)",
        "holder_uscc": "empty (NULL) for unassigned state land",
        "holder_name": "usually the enterprise name; a few old names (see below)",
        "land_use": "工业用地, a few 仓储用地",
        "registered_area_m2": "computed area ± 0.45 %, six parcels far off",
        "contract_start_date": "2025: GeoPackage DATE; 2024: ISO text `YYYY-MM-DD`",
        "actual_start_date": "same storage as above; blank when not started",
        "developed_ratio": "0–1",
        "invested_ratio": "0–1",
        "suspended_since": "only for started-then-suspended parcels",
        "delay_cause": "empty, a code (`plan_change`, …) or its Chinese name (`未按约定交付土地`, …)",
    }
    A(
        md_table(
            ["Chinese header", "canonical name", "unit", "notes"],
            [[h, f"`{n}`", pf[n].unit, notes.get(n, "")] for n, h in PARCEL_COLS],
        )
    )
    A("")
    A("### enterprises.xlsx (sheet `企业数据`)\n")
    A(
        "Row 1 is a merged title cell over all columns, row 2 the headers with units in full-width brackets, data"
        " from row 3. Numbers are numeric cells (money and energy with 2 decimals), 投产日期 is a date cell,"
        " booleans are 是/否, blank cells are missing values.\n"
    )
    ef = {f.name: f for f in gf.ENTERPRISE_FIELDS}
    A(
        md_table(
            ["Chinese header (as written)", "canonical name", "unit"],
            [[h, f"`{n}`", ef[n].unit] for n, h in ENT_HEADERS],
        )
    )
    A("")
    A("### leases.csv (UTF-8 with BOM)\n")
    A("Each row has either 租赁土地面积 or 租赁厂房面积, never both.\n")
    lf = {f.name: f for f in gf.LEASE_FIELDS}
    A(md_table(["Chinese header", "canonical name", "unit"], [[h, f"`{n}`", lf[n].unit] for n, h in LEASE_HEADERS]))
    A("")
    A("### Industry codes used (GB/T 4754-2017) and the 2008 minimum plot ratio applied\n")
    used = sorted({e.code for e in ents})
    A(
        md_table(
            ["code", "name", "min plot ratio (2008)"],
            [
                [c, CODE_INFO[c][0], CODE_INFO[c][1] if CODE_INFO[c][1] is not None else "— (not manufacturing)"]
                for c in used
            ],
        )
    )
    A("")
    # counts per county/park
    A("## Counts\n")
    rows = []
    for y in YEARS:
        ye = [e for e in ents if y in e.years]
        for spec in PARKS:
            pe = [e for e in ye if e.park == spec.name]
            pp = [p for p in parcels if y in p.years and p.park == spec.key]
            rows.append(
                [
                    y,
                    spec.county,
                    spec.name,
                    len(pp),
                    len(pe),
                    sum(1 for e in pe if e.figures[y]["above_scale"]),
                    sum(1 for e in pe if e.kind == "lessee"),
                ]
            )
    A(md_table(["year", "县区", "园区", "parcels", "enterprises", "规上", "lessee-only"], rows))
    A("")
    sizes = np.array([p.mu for p in parcels])
    A(
        f"Parcel sizes (all {len(parcels)} parcels of both years): median {np.median(sizes):.1f} 亩, "
        f"{(sizes < 5).sum()} below 5 亩, {((sizes >= 5) & (sizes <= 150)).sum()} of 5–150 亩, "
        f"{((sizes > 150) & (sizes < 200)).sum()} of 150–200 亩, {(sizes >= 200).sum()} of 200 亩 or more "
        f"(max {sizes.max():.0f} 亩). Shapes: {sum(1 for p in parcels if 'L-shape' in p.tags)} merged L-shapes, "
        f"{sum(1 for p in parcels if 'tiny' in p.tags)} small corner parcels (whose hosts are L-shaped), the rest"
        " rectangles and trapezoids.\n"
    )
    # oddities
    A("## Deliberate oddities\n")
    A(
        "Machine-readable: `expected_flags.csv` (parcel_id, year, flag, expect, why — `expect=no` rows are"
        " boundary or counter-examples that must NOT be flagged) and `expected_enterprises.csv` (uscc, name, year,"
        " oddity, why); the expected results are in `expected_scores.csv` and `expected_benchmarks.csv` (section"
        " *Expected results worked out by hand* below). None of them comes from geo-eval: `tests/test_sample_golden.py`"
        " compares each rule with a geo-eval run of the sample by set equality, both years. Flag counts:\n"
    )
    A(
        "Flag meanings: `invalid_geometry` self-intersecting ring; `area_mismatch` 登记面积 differs from the"
        " (make_valid) polygon area by > 5 %; `no_holder` unassigned state land; `holder_not_in_enterprises`"
        " holder USCC absent from the enterprise table; `zero_output` holder's tax and sales both 0 that year;"
        " `zero_tax_2y` (2025 rows only) tax 0 in both 2024 and 2025;"
        " `idle_1y`, `idle_2y`, `idle_exempt` see the idle-land table below; `low_plot_ratio` floor area / area"
        " below the 2008 minimum for the holder's industry; `low_building_coefficient` footprint / area < 30 %;"
        " `mainly_leased_out` leased land > 50 % of the parcel or leased floor > 50 % of its floor area;"
        " `low_builtup` (2025 only) < 10 % built-up pixels in `layers/builtup_10m.tif`, on every parcel, held or"
        " not; `low_tax_per_mu` the parcel's 亩均税收 (its users' tax shared by land) below 20 % of its county's"
        " aggregate 亩均税收 of the rated enterprises (the deliberately very low ones say 故意设置: they are low in"
        " both years); `grade_d` the user with most land on the parcel is class D; `renewal_candidate` any of the"
        " idle, suspected-idle and low-efficiency flags above and no `idle_exempt`; `renewal_block` a candidate in"
        " a group of at least 50 亩 (candidates within 15 m of each other form a group; each row names its group by"
        " its first parcel); `cluster_A`, `cluster_B`, `isolated_flagged` the designed 集中连片 cases. Rows are"
        " derived from the generated values, so every parcel meeting a rule is listed, deliberate or not (the"
        " 'why' column says which).\n"
    )
    A(
        "**Decision on `low_builtup` and unassigned land.** The raster rule is evidence on the ground: a parcel"
        " with under 10 % built-up pixels is listed whoever holds it, so the 15 unassigned state parcels (no 权利人)"
        " are listed too, as geo-eval's rule `idle_suspected.low_builtup` does and docs/schemes.md §5.2 documents"
        " (`builtup_fraction < builtup_below`, no condition on the holder). Unassigned land is also listed by"
        " `idle_suspected.no_enterprise`, in line with it. Earlier versions of this file listed only parcels with"
        " a holder (23 instead of 38 in 2025); the golden side was changed, not geo-eval.\n"
    )
    cnt = Counter((r[2], r[1], r[3]) for r in flags)
    names = sorted({k[0] for k in cnt})
    A(
        md_table(
            ["flag", "2024 yes", "2024 no", "2025 yes", "2025 no"],
            [
                [n, cnt[(n, 2024, "yes")], cnt[(n, 2024, "no")], cnt[(n, 2025, "yes")], cnt[(n, 2025, "no")]]
                for n in names
            ],
        )
    )
    A("")
    bow = [p for p in parcels if any(t.startswith("bowtie") for t in p.tags)]
    A("### Geometry and area\n")
    for p in bow:
        mv = shapely.make_valid(p.geom)
        A(
            f"- **Bow-tie** `{p.code}` ({p.tags[0]}): at a block corner the ring runs P → v → u → N instead of"
            f" P → C → N (u, v lie {p.tags[0].split('=')[1]} from the corner C on the two road-facing edges), so"
            f" two edges cross and leave a tiny lobe. `make_valid` gives a {mv.geom_type} of area {mv.area:.1f} m²"
            f" (intended {p.area:.1f} m², 登记面积 {p.reg_area:.1f} m²). Its shared edges are untouched."
        )
    for p in [q for q in parcels if any(t.startswith("area_mismatch") for t in q.tags)]:
        A(
            f"- **Area mismatch** `{p.code}`: 登记面积 {p.reg_area:,.2f} m² vs computed {p.area:,.2f} m²"
            f" ({p.tags[0].split(' ', 1)[1]})."
        )
    A("")
    A("### Holders\n")
    A(f"- **Unassigned state land** (权利人 empty): {ids(ctx['unassigned'])}.")
    for u, grp, _ in unknowns:
        A(f"- **Holder not in the enterprise table**: `{u.uscc}` {u.name} holds {ids(grp)}.")
    A(
        f"- **Holder name differs from the enterprise table** (match must be on USCC): {ent_list('name_differs_in_parcels')}."
    )
    A("")
    A("### Enterprises\n")
    A(
        f"- **Invalid USCC** (the same wrong code is used in every table, so joins still work): "
        f"position 18 wrong: {ent_list('invalid_uscc_check_char')}; position 17 (GB 11714 organisation-code"
        f" check) wrong, position 18 consistent with it: {ent_list('invalid_org_code_check')}."
        " Every other USCC passes `geo_eval.inputs.uscc.uscc_problems`."
    )
    A(f"- **T class, utilities**: {ent_list('T_utility')}.")
    A(f"- **T class, production started in 2024** (T in 2024 and 2025): {ent_list('T_production_2024')}.")
    A(f"- **T class, production started in 2023** (T in 2024 only): {ent_list('T_production_2023')}.")
    A(
        f"- **Started production in 2025 on their own land** (zero output in 2024, T in 2025): {ent_list('T_new_2025_on_own_land')}."
    )
    A(f"- **New lessees in 2025** (T in 2025): {ent_list('T_new_lessee_2025')}.")
    ex = [e for e in ents if e.exempt]
    A(
        "- **不参评原因 filled**: "
        + "; ".join(f"`{e.uscc}` {e.name} ({', '.join(f'{y}: {r}' for y, r in sorted(e.exempt.items()))})" for e in ex)
        + "."
    )
    A(f"- **Safety veto 2025**: {ent_list('safety_veto_2025')}. **2024**: {ent_list('safety_veto_2024')}.")
    A(
        f"- **Environment veto 2025**: {ent_list('environment_veto_2025')}. **2024**: {ent_list('environment_veto_2024')}."
    )
    A(f"- **加分**: {ent_list('bonus')}. **减分**: {ent_list('penalty')}.")
    A(
        f"- **Missing emission data** (规上, blank 主要污染物排放量, 'group average' rule): {ent_list('missing_emission')}."
    )
    A(f"- **Zero tax and zero sales in both years** (built but not producing): {ent_list('built_not_producing')}.")
    A(
        "- **Very low tax per mu in both years** (grade-D-like): "
        + ", ".join(f"`{e.uscc}` {e.name}" for e in ents if e.kind == "dlike")
        + "."
    )
    A(
        "- **Small 规下 with < 3 亩** (tiny parcels or small land leases): "
        + ", ".join(f"`{e.uscc}`" for e in ents if e.small)
        + "."
    )
    A(
        f"- **Lessee-only** ({sum(1 for e in ents if e.kind == 'lessee')} enterprises over both years): listed in"
        " `expected_enterprises.csv` (oddity `lessee_only`)."
    )
    A(
        "- **Owners that lease out most of their parcel**: "
        + ", ".join(
            f"`{e.uscc}` ({'land' if 'mainly_leased_out_land' in e.tags else 'floor'}, parcel `{e.parcels[0].code}`)"
            for e in ents
            if any(t.startswith("mainly_leased_out") for t in e.tags)
        )
        + "."
    )
    A(
        f"- **Gone in 2025**: parcel {ids([ctx['gone'][0]])} (idle ≥ 2 years in the 2024 evaluation, taken back) and"
        f" parcel {ids([ctx['gone'][1]])} (holder relocating, 不参评原因 政策性搬迁 in 2024), with their holders;"
        f" one lessee ({ent_list('gone_lessee_2025')})."
    )
    A(
        f"- **New in 2025**: parcels {ids(ctx['newp'])} (contract start in 2026, not developed; four to new"
        " enterprises, four to neighbouring owners as expansion land).\n"
    )
    A("### Idle land (闲置土地处置办法) cases\n")
    A(
        "Idle duration counts full years from 约定动工日期 when not started, or from 停工日期 when started but"
        " developed < 1/3 or invested < 25 %. `idle_1y` means penalisable idle (≥ 1 full year, no government"
        " cause), `idle_2y` ≥ 2 full years, `idle_exempt` idle by duration but with a government cause.\n"
    )
    rows = []
    for key, c, act, dev, inv, susp, cause, note in IDLE_CASES:
        p = next(q for q in parcels if q.case == key)
        rows.append(
            [
                key,
                f"`{p.code}`",
                c,
                act if not isinstance(act, dict) else f"2025: {act[2025]}",
                dev,
                inv,
                susp or "",
                cause or "",
                idle_status(p, 2024)[0] or "—",
                idle_status(p, 2025)[0] or "—",
                note,
            ]
        )
    p = ctx["cl_a"][0]
    rows.append(
        [
            "A1",
            f"`{p.code}`",
            p.attrs["contract"],
            "",
            0.0,
            0.0,
            "",
            "",
            idle_status(p, 2024)[0],
            idle_status(p, 2025)[0],
            "cluster A member, not started",
        ]
    )
    A(
        md_table(
            ["case", "parcel", "约定动工", "实际动工", "开发", "投资", "停工", "政府原因", "2024", "2025", "note"], rows
        )
    )
    A("")
    A("### Low intensity\n")
    A(f"- **Plot ratio below the 2008 minimum for the industry** (deliberate): {ids(ctx['low_pr'])}.")
    A(
        f"- **Building coefficient below 30 %** (deliberate, tall buildings so plot ratio stays above the minimum): {ids(ctx['low_bc'])}."
    )
    A("- Undeveloped and partly developed parcels are also below both (listed in `expected_flags.csv`).\n")
    A("### Clusters for 退二优二 (集中连片)\n")
    for key, grp, desc in (
        (
            "A",
            ctx["cl_a"],
            "not started (idle), zero output (built), grade-D-like with low plot ratio, grade-D-like with low building coefficient",
        ),
        (
            "B",
            ctx["cl_b"],
            "zero output (built), grade-D-like and mainly leased out, grade-D-like with low plot ratio and building coefficient",
        ),
    ):
        A(
            f"- **Cluster {key}** ({PARK_BY_KEY[grp[0].park].name}): {ids(grp)}, consecutive parcels of one strip"
            f" of one block sharing cut edges, {sum(q.mu for q in grp):.1f} 亩 in all; {desc}."
        )
    iso = ctx["isolated"]
    iso_rows = [r for r in flags if r[0] == iso.code and r[2] == "renewal_candidate"]
    A(
        f"- **Isolated flagged plot**: `{iso.code}` ({iso.mu:.1f} 亩, {PARK_BY_KEY[iso.park].name}), zero output"
        " both years although built; none of its neighbours carries a deliberate flag. Under all the default"
        " rules it is not alone: a neighbour whose 亩均税收 is below 20 % of the county's (`low_tax_per_mu`) touches"
        " it, and that one touches unassigned land, so the three form a 连片改造区块 ("
        + "; ".join(f"{r[1]}: {r[4]}" for r in iso_rows)
        + ")."
    )
    A(
        "- Every other deliberately flagged parcel touches no other deliberately flagged parcel (checked by the"
        " generator). Rules that depend on the whole evaluation (class D, tax per 亩 against the county mean) and"
        " the 15 m tolerance of the blocks still join ordinary neighbours (`renewal_block` rows).\n"
    )
    hand_readme(A, hand)
    A("### Other variations\n")
    A("- 2025 `parcels.gpkg` stores dates as GeoPackage DATE; 2024 stores them as ISO text.")
    A(
        "- The 2024 files omit start and suspension dates that lie after 2025-03-31 (not known at export);"
        " contracted start dates are always present. Registered areas, geometry and land prices are the same"
        " in both years for parcels present in both."
    )
    A("- Some parcels carry a historic 政府原因延迟 value although they were developed on time (no effect).")
    A(
        "- USCC positions 3–8 are mostly the county code, otherwise 320700 (city) or another city: the"
        " registering authority, not the location."
    )
    (SAMPLE / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")

    # layers README
    with rasterio.open(LAYERS / "builtup_10m.tif") as src:
        r = src.read(1)
        prof = src.profile
    L = []
    B = L.append
    B("# Context layers (fictional)\n")
    B("> Generated by `sample_parcels/make_sample.py` together with the sample parcels; do not edit by hand.\n")
    B(
        "All layers are in **EPSG:4528** (CGCS2000 / 3-degree Gauss-Kruger zone 40, central meridian 120°E, false"
        " easting 40 500 000 m, so eastings carry the zone prefix: x ≈ 40 43x xxx – 40 45x xxx here because the"
        " area lies 0.55–0.85° west of the central meridian).\n"
    )
    B(md_table(["file", "bytes", "sha256"], [r_ for r_ in file_sizes() if r_[0].startswith("`layers/")]))
    B("")
    B("## counties.gpkg (layer `counties`)\n")
    B(
        "| field | meaning |\n|---|---|\n| 县区 | county name (海滨区, 青松县) |\n| 县区代码 | fictional 6-digit code (320799, 320798) |\n"
    )
    B(
        "The sample box (lon 119.15–119.45 E, lat 34.55–34.75 N) is split by a random midpoint-displacement"
        " border; 青松县 is the north-west part. Land east of a ragged coastline (≈ 119.42–119.45 E) is sea and"
        " belongs to neither county. Polygons were built in lon/lat (CGCS2000) and projected vertex by vertex.\n"
    )
    B("## parks.gpkg (layer `parks`)\n")
    B("| field | meaning |\n|---|---|\n| 园区 | park name |\n| 县区 | county of the park |\n")
    B(
        "Each park boundary is the union of its street-block cells, each enlarged by half of the adjacent road"
        " width (20 m outside the outer blocks): a staircase outline that contains every parcel and internal"
        " road. Parks: " + "; ".join(f"{s.name} ({s.county}, centre {s.lon} E {s.lat} N)" for s in PARKS) + ".\n"
    )
    B("## builtup_10m.tif\n")
    vals, nums = np.unique(r, return_counts=True)
    B(
        f"Single band uint8, {prof['width']} × {prof['height']} pixels of 10 m, origin snapped to 10 m, DEFLATE"
        f" (predictor 2), 256 × 256 tiles, nodata 255. Values: "
        + ", ".join(f"{int(v)}: {int(n):,} pixels" for v, n in zip(vals, nums, strict=False))
        + ".\n"
    )
    B(
        "- 1 = built-up: building footprints drawn inside parcels (1–4 rectangles per developed parcel, set"
        " back 8 m from the parcel boundary, total area matched to the parcel's 2025 建筑基底面积) rasterised with"
        " `rasterio.features.rasterize` (pixel centre rule)."
    )
    B(
        "- 0 = not built-up, inside the two counties (roads, open land, idle and unassigned parcels, and every"
        " place outside the parks: the sample has no village or town buildings)."
    )
    B("- 255 = outside the counties (the sea).")
    fr = np.array(list(built_frac.values()))
    B(
        f"\nParcel built-up fractions (2025): median {np.median(fr):.0%}; {int((fr < 0.10).sum())} parcels below 10 %"
        " (unassigned, idle, newly granted). Per parcel, pixel count × 100 m² tracks 建筑基底面积 within the"
        " rasterisation error of a 10 m grid."
    )
    (LAYERS / "README.md").write_text("\n".join(L) + "\n", encoding="utf-8")


def set_output_root(root: Path) -> None:
    """Write below ``root`` (``root/sample_parcels``, ``root/layers``) instead of the repository."""
    global OUT_ROOT, SAMPLE, LAYERS
    OUT_ROOT = Path(root).resolve()
    SAMPLE = OUT_ROOT / "sample_parcels"
    LAYERS = OUT_ROOT / "layers"
    SAMPLE.mkdir(parents=True, exist_ok=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Generate the fictional sample data set and its layers.")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="write DIR/sample_parcels and DIR/layers instead of the repository's (to compare a fresh run with"
        " the committed files: every file must come out byte for byte the same)",
        metavar="DIR",
    )
    args = parser.parse_args()
    if args.out is not None:
        set_output_root(args.out)
    main()

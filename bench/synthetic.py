"""A fast, vectorised synthetic dataset generator for benchmarks.

``make_dataset(out_dir, n_parcels)`` writes a dataset directory like the sample park's:
``dataset.toml``, ``parcels.gpkg`` (layer ``parcels``), ``enterprises.csv`` and ``leases.csv``, all
with the canonical (English) column names of :mod:`geo_eval.inputs.fields`.

Layout. Parcels are the cells of blocks of ``BLOCK_COLS × BLOCK_ROWS`` cells; blocks are separated
by road gaps. Inside a block the cells share a jittered vertex lattice, so neighbouring parcels
share their edges exactly (the same vertex coordinates), as in a real cadastre. Column widths and
row heights vary per block; interior vertices are moved by up to 15 % of the block's smallest cell
side, which keeps every quad simple and valid. Coordinates are built in metres in CGCS2000 3° GK
zone 40 (EPSG:4549) around lon 119.3°, lat 34.6° (Lianyungang), then the *vertices* are transformed
to the requested CRS (default geographic EPSG:4490, so an evaluation must reproject), which keeps
shared edges shared. Every step is a numpy operation over all parcels at once: no Python loop per
parcel or per enterprise.

Enterprises: about 0.6 per parcel; owners hold contiguous runs of parcels (1 + geometric, mean about
1.75), about 8 % of enterprises hold no land and only lease, about 3 % of parcels have no holder
(state land). Up to six counties (by position, west to east; five at 100 000 parcels), about one park
per 5 000 parcels (a park is a tile of about 7 × 7 blocks inside one county). USCCs are valid (both GB 32100 and GB 11714 check characters, computed
vectorised with the weights of :mod:`geo_eval.inputs.uscc`; organisation-code bodies are digits only).
Figures are lognormal; a few rows carry things the evaluator must handle: registered areas off by
more than 5 %, missing emission / R&D figures, utilities, recent start-ups, vetoes, exempt reasons,
enterprises without a park, parcels without floor area.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyogrio
import shapely
from pyproj import CRS, Transformer

from geo_eval.inputs.uscc import ALPHABET, ORG_WEIGHTS, USCC_WEIGHTS

GENERATOR_VERSION = 1
"""Bumped when the generated data changes, so cached datasets are regenerated."""

BLOCK_COLS, BLOCK_ROWS = 10, 10
BLOCK_W, BLOCK_H = 1000.0, 800.0  # metres: cells average 100 m × 80 m = 8 000 m² = 12 亩
ROAD = 40.0  # gap between blocks, metres
CENTRE_GK = (436_000.0, 3_830_000.0)  # EPSG:4549 (zone 40, no prefix): about lon 119.30, lat 34.60
GK_CRS = "EPSG:4549"
PARK_TILE = 7  # a park is a tile of PARK_TILE × PARK_TILE blocks (about 4 900 parcels)

COUNTIES = (
    ("海州区", 320706),
    ("连云区", 320703),
    ("赣榆区", 320707),
    ("东海县", 320722),
    ("灌云县", 320723),
    ("灌南县", 320724),
)

_ALPHA_BYTES = np.frombuffer(ALPHABET.encode("ascii"), dtype=np.uint8)
_LUT = np.full(256, -1, dtype=np.int64)
_LUT[_ALPHA_BYTES] = np.arange(len(ALPHABET))
_USCC_W = np.asarray(USCC_WEIGHTS, dtype=np.int64)
_ORG_W = np.asarray(ORG_WEIGHTS, dtype=np.int64)

_NAME_A = np.array(list("恒华金新宏瑞盛海港云东鑫永泰康联"))
_NAME_B = np.array(list("达丰源润信通利隆昌安兴宇创远晟诚"))
_NAME_SUFFIX = np.array(
    [
        "科技有限公司",
        "实业有限公司",
        "化工有限公司",
        "机械制造有限公司",
        "新材料有限公司",
        "电子有限公司",
        "食品有限公司",
        "纺织有限公司",
        "医药有限公司",
        "装备有限公司",
    ]
)
# GB/T 4754-2017 manufacturing divisions (C13–C43) and the utility divisions (D44–D46).
_MFG_DIVISIONS = np.array(
    [
        13,
        14,
        15,
        17,
        18,
        19,
        20,
        21,
        22,
        23,
        24,
        25,
        26,
        27,
        28,
        29,
        30,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        38,
        39,
        40,
        41,
        42,
        43,
    ]
)
_UTILITY_DIVISIONS = np.array([44, 45, 46])


# --- vectorised codes ---------------------------------------------------------------------------


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    """ASCII digit bytes of non-negative integers, zero-padded: shape ``(n, width)``, dtype uint8."""
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((np.asarray(values, dtype=np.int64)[:, None] // powers) % 10 + 48).astype(np.uint8)


def _bytes_to_str(chars: np.ndarray) -> np.ndarray:
    """Rows of a uint8 ``(n, w)`` byte matrix as a numpy unicode array."""
    chars = np.ascontiguousarray(chars)
    return chars.view(f"S{chars.shape[1]}").ravel().astype(f"U{chars.shape[1]}")


def make_usccs(serials: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """Valid USCCs ``91 + region(6) + organisation code(8 digits + check) + check``, vectorised.

    ``serials`` (unique, < 10**8) become the organisation-code bodies; ``regions`` are 6-digit
    administrative division codes. Both check characters follow :mod:`geo_eval.inputs.uscc`.
    """
    n = len(serials)
    chars = np.empty((n, 18), dtype=np.uint8)
    chars[:, 0] = ord("9")  # registered by the market regulator
    chars[:, 1] = ord("1")  # enterprise
    chars[:, 2:8] = _digits(regions, 6)
    body = _digits(serials, 8)
    chars[:, 8:16] = body
    org = 11 - ((body.astype(np.int64) - 48) * _ORG_W).sum(axis=1) % 11
    chars[:, 16] = np.where(org == 10, ord("X"), np.where(org == 11, ord("0"), org + 48)).astype(np.uint8)
    total = (_LUT[chars[:, :17]] * _USCC_W).sum(axis=1)
    chars[:, 17] = _ALPHA_BYTES[(31 - total % 31) % 31]
    return _bytes_to_str(chars)


def make_parcel_ids(county_codes: np.ndarray, block: np.ndarray, seq: np.ndarray) -> np.ndarray:
    """19-character 宗地代码: county (6) + block (6) + ``GB`` + number in block (5)."""
    n = len(block)
    chars = np.empty((n, 19), dtype=np.uint8)
    chars[:, 0:6] = _digits(county_codes, 6)
    chars[:, 6:12] = _digits(block, 6)
    chars[:, 12] = ord("G")
    chars[:, 13] = ord("B")
    chars[:, 14:19] = _digits(seq, 5)
    return _bytes_to_str(chars)


# --- geometry -----------------------------------------------------------------------------------


def _lattice(n_blocks: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, int]:
    """Jittered vertex lattice of every block: x and y of shape ``(n_blocks, rows + 1, cols + 1)``."""
    ncols = max(1, math.ceil(math.sqrt(n_blocks)))
    b = np.arange(n_blocks)
    bx0 = (b % ncols) * (BLOCK_W + ROAD)
    by0 = (b // ncols) * (BLOCK_H + ROAD)
    # Centre the whole layout on CENTRE_GK.
    nrows = math.ceil(n_blocks / ncols)
    bx0 = bx0 + CENTRE_GK[0] - ncols * (BLOCK_W + ROAD) / 2
    by0 = by0 + CENTRE_GK[1] - nrows * (BLOCK_H + ROAD) / 2
    w = rng.lognormal(0.0, 0.35, size=(n_blocks, BLOCK_COLS))
    h = rng.lognormal(0.0, 0.35, size=(n_blocks, BLOCK_ROWS))
    w *= BLOCK_W / w.sum(axis=1, keepdims=True)
    h *= BLOCK_H / h.sum(axis=1, keepdims=True)
    xs = np.concatenate([np.zeros((n_blocks, 1)), np.cumsum(w, axis=1)], axis=1)
    ys = np.concatenate([np.zeros((n_blocks, 1)), np.cumsum(h, axis=1)], axis=1)
    xs[:, -1] = BLOCK_W
    ys[:, -1] = BLOCK_H
    x = np.broadcast_to(xs[:, None, :], (n_blocks, BLOCK_ROWS + 1, BLOCK_COLS + 1)) + bx0[:, None, None]
    y = np.broadcast_to(ys[:, :, None], (n_blocks, BLOCK_ROWS + 1, BLOCK_COLS + 1)) + by0[:, None, None]
    x = np.array(x)
    y = np.array(y)
    amp = 0.15 * np.minimum(w.min(axis=1), h.min(axis=1))  # per block
    shape = (n_blocks, BLOCK_ROWS - 1, BLOCK_COLS - 1)
    x[:, 1:-1, 1:-1] += rng.uniform(-1, 1, size=shape) * amp[:, None, None]
    y[:, 1:-1, 1:-1] += rng.uniform(-1, 1, size=shape) * amp[:, None, None]
    return x, y, ncols


def _quads(x: np.ndarray, y: np.ndarray, n: int) -> np.ndarray:
    """Closed rings ``(n, 5, 2)`` of the first ``n`` cells, block by block, row by row."""
    k = np.arange(n)
    b = k // (BLOCK_COLS * BLOCK_ROWS)
    r = (k % (BLOCK_COLS * BLOCK_ROWS)) // BLOCK_COLS
    c = k % BLOCK_COLS
    rr = np.stack([r, r, r + 1, r + 1, r], axis=1)
    cc = np.stack([c, c + 1, c + 1, c, c], axis=1)
    bb = b[:, None]
    return np.stack([x[bb, rr, cc], y[bb, rr, cc]], axis=2)


def _shoelace(rings: np.ndarray) -> np.ndarray:
    xs, ys = rings[:, :, 0], rings[:, :, 1]
    # Shift to a local origin first: GK coordinates are large and the products lose precision.
    xs = xs - xs[:, :1]
    ys = ys - ys[:, :1]
    return 0.5 * np.abs((xs[:, :-1] * ys[:, 1:] - xs[:, 1:] * ys[:, :-1]).sum(axis=1))


# --- the dataset ----------------------------------------------------------------------------------


def _round(a: np.ndarray, decimals: int = 2) -> np.ndarray:
    return np.round(a, decimals)


def make_frames(
    n_parcels: int, *, seed: int = 0, crs: str = "EPSG:4490"
) -> tuple[gpd.GeoDataFrame, pd.DataFrame, pd.DataFrame]:
    """The synthetic parcels, enterprises and leases (canonical columns), in memory."""
    rng = np.random.default_rng(seed)
    n = int(n_parcels)
    if n <= 0:
        raise ValueError("n_parcels must be positive")
    cells = BLOCK_COLS * BLOCK_ROWS
    n_blocks = math.ceil(n / cells)

    # --- parcels: geometry ---
    x, y, ncols = _lattice(n_blocks, rng)
    rings = _quads(x, y, n)
    area = _shoelace(rings)  # exact planar area in EPSG:4549
    target = CRS.from_user_input(crs)
    if not target.equals(CRS.from_user_input(GK_CRS)):
        tr = Transformer.from_crs(GK_CRS, target, always_xy=True)
        tx, ty = tr.transform(x.ravel(), y.ravel())  # transform the shared vertices once
        x = np.asarray(tx).reshape(x.shape)
        y = np.asarray(ty).reshape(y.shape)
        rings = _quads(x, y, n)
    geoms = shapely.polygons(rings)

    # --- parcels: parks and counties (a park is a tile of blocks inside one county) ---
    k = np.arange(n)
    block = k // cells
    bcol, brow = block % ncols, block // ncols
    tiles_across = math.ceil(ncols / PARK_TILE)
    tile = (brow // PARK_TILE) * tiles_across + (bcol // PARK_TILE)
    used_tiles, park_idx = np.unique(tile, return_inverse=True)
    n_parks = len(used_tiles)
    tile_col = used_tiles % tiles_across
    park_county = np.minimum(
        (tile_col * PARK_TILE + PARK_TILE / 2) * len(COUNTIES) // max(ncols, 1), len(COUNTIES) - 1
    ).astype(np.int64)
    county_names = np.array([c[0] for c in COUNTIES])
    county_codes = np.array([c[1] for c in COUNTIES], dtype=np.int64)
    park_names = np.array([f"{county_names[park_county[i]]}第{i + 1}工业园" for i in range(n_parks)])
    p_county = park_county[park_idx]

    parcel_id = make_parcel_ids(county_codes[p_county], block, k % cells + 1)
    registered = area * (1 + rng.normal(0, 0.01, n))
    off = rng.random(n) < 0.02
    registered[off] = area[off] * rng.uniform(0.85, 1.15, off.sum())
    plot_ratio = np.clip(rng.lognormal(np.log(1.3), 0.3, n), 0.2, 3.0)
    floor_area = area * plot_ratio
    floor_area[rng.random(n) < 0.02] = np.nan
    footprint = area * np.clip(rng.normal(0.45, 0.1, n), 0.1, 0.8)
    land_use = np.where(rng.random(n) < 0.05, "仓储用地", "工业用地")

    # --- owners: contiguous runs of held parcels ---
    held = rng.random(n) >= 0.03
    held_idx = np.flatnonzero(held)
    n_held = len(held_idx)
    p_geo = 1 / 1.75
    lengths = rng.geometric(p_geo, size=int(n_held * p_geo * 1.2) + 16)
    ends = np.cumsum(lengths)
    n_owner = int(np.searchsorted(ends, n_held) + 1) if n_held else 0
    owner_of_held = np.repeat(np.arange(n_owner), lengths[:n_owner])[:n_held]
    first_held = held_idx[np.searchsorted(owner_of_held, np.arange(n_owner))]

    n_lo = round(n_owner * 0.08 / 0.92)  # lessee-only: about 8 % of all enterprises
    lo_first = held_idx[rng.integers(0, n_held, n_lo)] if n_held else np.zeros(0, dtype=np.int64)
    n_ent = n_owner + n_lo
    ent_parcel = np.concatenate([first_held, lo_first])  # the parcel that gives county and park

    # --- enterprise identity ---
    serials = 10_000_000 + rng.permutation(n_ent).astype(np.int64) * 13 + rng.integers(0, 13, n_ent)
    e_county = p_county[ent_parcel]
    uscc = make_usccs(serials, county_codes[e_county])
    holder = np.full(n, None, dtype=object)
    holder[held_idx] = uscc[owner_of_held]

    # --- leases ---
    held_pos = np.full(n, -1, dtype=np.int64)
    held_pos[held_idx] = np.arange(n_held)
    two = rng.random(n_lo) < 0.2
    lo_second = held_idx[np.minimum(held_pos[lo_first[two]] + 1, n_held - 1)] if n_held else lo_first[two]
    extra_owner = np.flatnonzero(rng.random(n_owner) < 0.03)
    ex_parcel = (
        held_idx[np.clip(held_pos[first_held[extra_owner]] + rng.integers(1, 200, len(extra_owner)), 0, n_held - 1)]
        if n_held
        else first_held[extra_owner]
    )
    l_ent = np.concatenate([np.arange(n_owner, n_ent), np.arange(n_owner, n_ent)[two], extra_owner])
    l_parcel = np.concatenate([lo_first, lo_second, ex_parcel])
    keep = holder[l_parcel] != uscc[l_ent]
    l_ent, l_parcel = l_ent[keep], l_parcel[keep]
    n_lease = len(l_ent)
    by_floor = (rng.random(n_lease) < 0.3) & np.isfinite(floor_area[l_parcel])
    frac = rng.uniform(0.1, 0.4, n_lease)
    leases = pd.DataFrame(
        {
            "lessee_uscc": uscc[l_ent],
            "parcel_id": parcel_id[l_parcel],
            "leased_land_m2": np.where(by_floor, np.nan, _round(area[l_parcel] * frac)),
            "leased_floor_m2": np.where(by_floor, _round(floor_area[l_parcel] * frac), np.nan),
        }
    )

    # --- enterprise figures (万元, tce, 万kWh, t, persons) ---
    # Revenue scales with the land an enterprise uses (万元 per 亩, lognormal), as in real parks,
    # so that per-mu indicators spread realistically and about a third of the parcels get flagged.
    own_land = np.bincount(owner_of_held, weights=area[held_idx], minlength=n_owner) if n_held else np.zeros(n_owner)
    ent_mu = np.concatenate([own_land, area[lo_first] * 0.25]) / (2000 / 3)
    main_rev = np.maximum(ent_mu * rng.lognormal(np.log(150), 0.6, n_ent), 10.0)
    above = main_rev >= 2000
    sales = main_rev * rng.uniform(1.0, 1.15, n_ent)
    tax = sales * rng.lognormal(np.log(0.035), 0.5, n_ent)
    value_added = sales * rng.uniform(0.15, 0.35, n_ent)
    rnd = main_rev * rng.lognormal(np.log(0.015), 0.7, n_ent)
    rnd[~above & (rng.random(n_ent) < 0.25)] = np.nan
    energy = sales * rng.lognormal(np.log(0.08), 0.8, n_ent)
    electricity = energy * rng.lognormal(np.log(0.6), 0.3, n_ent)
    emission = sales * rng.lognormal(np.log(0.002), 1.0, n_ent)
    emission[rng.random(n_ent) < 0.15] = np.nan
    employees = np.maximum(np.round(sales / rng.lognormal(np.log(80), 0.5, n_ent)), 5)
    utility = rng.random(n_ent) < 0.02
    division = np.where(utility, rng.choice(_UTILITY_DIVISIONS, n_ent), rng.choice(_MFG_DIVISIONS, n_ent))
    industry = np.strings.add(
        np.where(utility, "D", "C"),
        _bytes_to_str(np.concatenate([_digits(division, 2), _digits(rng.integers(0, 100, n_ent), 2)], axis=1)),
    )
    start_days = rng.integers(0, (np.datetime64("2024-12-31") - np.datetime64("1990-01-01")).astype(int), n_ent)
    production_start = np.datetime_as_string(np.datetime64("1990-01-01") + start_days, unit="D")
    exempt = np.where(rng.random(n_ent) < 0.005, "整体搬迁，停产", "")
    safety = np.where(rng.random(n_ent) < 0.003, "是", "否")
    environment = np.where(rng.random(n_ent) < 0.003, "是", "否")
    bonus = np.where(rng.random(n_ent) < 0.05, np.round(rng.uniform(1, 8, n_ent), 1), np.nan)
    penalty = np.where(rng.random(n_ent) < 0.03, np.round(rng.uniform(1, 15, n_ent), 1), np.nan)
    name = np.strings.add(
        np.strings.add(
            np.strings.add("连云港", _NAME_A[rng.integers(0, len(_NAME_A), n_ent)]),
            _NAME_B[rng.integers(0, len(_NAME_B), n_ent)],
        ),
        np.strings.add(
            _bytes_to_str(_digits(serials % 1_000_000, 6)), _NAME_SUFFIX[rng.integers(0, len(_NAME_SUFFIX), n_ent)]
        ),
    )
    e_park = park_names[park_idx[ent_parcel]].astype(object)
    e_park[rng.random(n_ent) < 0.05] = None  # the evaluator takes the park of the largest parcel

    enterprises = pd.DataFrame(
        {
            "uscc": uscc,
            "name": name,
            "county": county_names[e_county],
            "park": e_park,
            "industry_code": industry,
            "above_scale": np.where(above, "是", "否"),
            "production_start": production_start,
            "exempt_reason": exempt,
            "tax": _round(tax),
            "sales": _round(sales),
            "value_added": _round(value_added),
            "main_revenue": _round(main_rev),
            "rnd": _round(rnd),
            "energy_tce": _round(energy),
            "electricity_10k_kwh": _round(electricity),
            "emission_t": _round(emission, 3),
            "employees": employees,
            "safety_veto": safety,
            "environment_veto": environment,
            "bonus": bonus,
            "penalty": penalty,
        }
    )
    enterprises = enterprises.iloc[rng.permutation(n_ent)].reset_index(drop=True)

    parcels = gpd.GeoDataFrame(
        {
            "parcel_id": parcel_id,
            "holder_uscc": holder,
            "county": county_names[p_county],
            "park": park_names[park_idx],
            "land_use": land_use,
            "registered_area_m2": _round(registered),
            "floor_area_m2": _round(floor_area),
            "footprint_area_m2": _round(footprint),
        },
        geometry=geoms,
        crs=target,
    )
    return parcels, enterprises, leases


def _write_csv(df: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(df, preserve_index=False)
    pacsv.write_csv(table, path)


def make_dataset(
    out_dir: Path | str, n_parcels: int, *, seed: int = 0, crs: str = "EPSG:4490", year: int = 2024
) -> dict[str, object]:
    """Write a synthetic dataset directory into ``out_dir``; returns its description (also ``bench_meta.json``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    parcels, enterprises, leases = make_frames(n_parcels, seed=seed, crs=crs)
    t_frames = time.perf_counter() - t0
    t = time.perf_counter()
    gpkg = out / "parcels.gpkg"
    if gpkg.exists():
        gpkg.unlink()
    pyogrio.write_dataframe(parcels, gpkg, layer="parcels", driver="GPKG", use_arrow=True)
    t_gpkg = time.perf_counter() - t
    t = time.perf_counter()
    _write_csv(enterprises, out / "enterprises.csv")
    _write_csv(leases, out / "leases.csv")
    t_csv = time.perf_counter() - t
    (out / "dataset.toml").write_text(
        f'name = "synthetic {n_parcels} parcels (seed {seed})"\n'
        f'year = {year}\nevaluation_date = "{year + 1}-03-31"\n\n'
        '[parcels]\npath = "parcels.gpkg"\nlayer = "parcels"\n\n'
        '[enterprises]\npath = "enterprises.csv"\n\n'
        '[leases]\npath = "leases.csv"\n',
        encoding="utf-8",
    )
    meta: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "n_parcels": int(n_parcels),
        "seed": seed,
        "crs": crs,
        "year": year,
        "parcels": len(parcels),
        "enterprises": len(enterprises),
        "leases": len(leases),
        "parks": int(parcels["park"].nunique()),
        "counties": int(parcels["county"].nunique()),
        "seconds": {
            "frames": round(t_frames, 3),
            "gpkg": round(t_gpkg, 3),
            "csv": round(t_csv, 3),
            "total": round(time.perf_counter() - t0, 3),
        },
        "bytes": {p.name: p.stat().st_size for p in sorted(out.iterdir()) if p.is_file()},
    }
    (out / "bench_meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return meta


def cached_dataset(
    out_dir: Path | str,
    n_parcels: int,
    *,
    seed: int = 0,
    crs: str = "EPSG:4490",
    year: int = 2024,
    regenerate: bool = False,
) -> tuple[dict[str, object], bool]:
    """The dataset in ``out_dir`` if it was generated with the same parameters, else a fresh one.

    Returns its description and whether it came from the cache.
    """
    out = Path(out_dir)
    meta_path = out / "bench_meta.json"
    if not regenerate and meta_path.is_file() and (out / "dataset.toml").is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        want = {
            "generator_version": GENERATOR_VERSION,
            "n_parcels": int(n_parcels),
            "seed": seed,
            "crs": crs,
            "year": year,
        }
        if all(meta.get(k) == v for k, v in want.items()):
            return meta, True
    return make_dataset(out, n_parcels, seed=seed, crs=crs, year=year), False


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Write a synthetic geo-eval dataset directory.")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("n_parcels", type=int)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--crs", default="EPSG:4490")
    ap.add_argument("--year", type=int, default=2024)
    a = ap.parse_args()
    print(
        json.dumps(
            make_dataset(a.out_dir, a.n_parcels, seed=a.seed, crs=a.crs, year=a.year), ensure_ascii=False, indent=2
        )
    )

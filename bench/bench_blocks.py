"""Benchmark of the renewal blocks (集中连片改造, :mod:`geo_eval.landuse.renewal`).

    python -m bench.bench_blocks [--n 300000] [--share 0.3] [--tolerance 15] [--repeat 3] [--compare]

Layout: ``--n`` parcels, the cells of blocks of 10 × 10 cells (1 000 m × 800 m, cells about
100 m × 80 m = 12 亩) on a jittered vertex lattice, so neighbouring cells share their edges exactly
(as in a cadastre; as in :mod:`bench.synthetic`). Between blocks run roads 12 m wide (every third
one 40 m): at the default 15 m tolerance a renewal block may cross a 12 m road but not a 40 m one.
About ``--share`` of the parcels are flagged, in clusters: a random rectangle of cells in most
blocks, plus 3 % scattered singles. Every parcel gets a main user, a grade and a per-mu tax.

Timed (best of ``--repeat``, seconds): the STRtree ``dwithin`` query plus connected components
(:func:`~geo_eval.landuse.renewal.contiguous_groups`), the outlines (:func:`~geo_eval.landuse.renewal.dissolve_groups`),
the whole :func:`~geo_eval.landuse.renewal.renewal_blocks` (with the attribute figures) and
:func:`~geo_eval.landuse.renewal.closed_outlines`. ``--compare`` also times the alternatives that were
not chosen: the ``touches`` and ``intersects`` predicates, ``union_all`` per group, geopandas
``dissolve`` (unary and coverage), and a round buffer of every flagged parcel. A Markdown table goes
to stdout.
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from collections.abc import Callable
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_eval.landuse.land import M2_PER_MU
from geo_eval.landuse.renewal import closed_outlines, contiguous_groups, dissolve_groups, renewal_blocks

COLS = ROWS = 10
BLOCK_W, BLOCK_H = 1000.0, 800.0
NARROW_ROAD, WIDE_ROAD = 12.0, 40.0
ORIGIN = (400_000.0, 3_800_000.0)  # EPSG:4549 (CGCS2000 3° GK, central meridian 120°E)
GRADES = np.array(["A", "B", "C", "D", "T"], dtype=object)


def make_parcels(n: int, *, share: float = 0.3, seed: int = 0) -> tuple[gpd.GeoDataFrame, np.ndarray]:
    """``n`` synthetic parcel results (``renewal_blocks`` columns) and the boolean candidate flag."""
    rng = np.random.default_rng(seed)
    cells = COLS * ROWS
    nb = math.ceil(n / cells)
    ncols = math.ceil(math.sqrt(nb))
    nrows = math.ceil(nb / ncols)
    road_x = np.where(np.arange(ncols) % 3 == 2, WIDE_ROAD, NARROW_ROAD)
    road_y = np.where(np.arange(nrows) % 3 == 2, WIDE_ROAD, NARROW_ROAD)
    ox = np.concatenate([[0.0], np.cumsum(BLOCK_W + road_x)])[:ncols] + ORIGIN[0]
    oy = np.concatenate([[0.0], np.cumsum(BLOCK_H + road_y)])[:nrows] + ORIGIN[1]
    b = np.arange(nb)
    bx0, by0 = ox[b % ncols], oy[b // ncols]
    w = rng.lognormal(0.0, 0.35, (nb, COLS))
    h = rng.lognormal(0.0, 0.35, (nb, ROWS))
    w *= BLOCK_W / w.sum(axis=1, keepdims=True)
    h *= BLOCK_H / h.sum(axis=1, keepdims=True)
    xs = np.concatenate([np.zeros((nb, 1)), np.cumsum(w, axis=1)], axis=1)
    ys = np.concatenate([np.zeros((nb, 1)), np.cumsum(h, axis=1)], axis=1)
    xs[:, -1], ys[:, -1] = BLOCK_W, BLOCK_H
    x = np.array(np.broadcast_to(xs[:, None, :], (nb, ROWS + 1, COLS + 1))) + bx0[:, None, None]
    y = np.array(np.broadcast_to(ys[:, :, None], (nb, ROWS + 1, COLS + 1))) + by0[:, None, None]
    amp = 0.15 * np.minimum(w.min(axis=1), h.min(axis=1))
    x[:, 1:-1, 1:-1] += rng.uniform(-1, 1, (nb, ROWS - 1, COLS - 1)) * amp[:, None, None]
    y[:, 1:-1, 1:-1] += rng.uniform(-1, 1, (nb, ROWS - 1, COLS - 1)) * amp[:, None, None]
    k = np.arange(n)
    bk, r, c = k // cells, (k % cells) // COLS, k % COLS
    rr = np.stack([r, r, r + 1, r + 1, r], axis=1)
    cc = np.stack([c, c + 1, c + 1, c, c], axis=1)
    rings = np.stack([x[bk[:, None], rr, cc], y[bk[:, None], rr, cc]], axis=2)
    geoms = shapely.polygons(rings)

    # Flags: a rectangle of 4–10 × 4–10 cells in a share of the blocks, plus 3 % scattered singles.
    hot_share = min(1.0, max(0.0, (share - 0.03) / 0.33))  # calibrated: 0.82 → about 30 %
    r0, c0 = rng.integers(0, ROWS - 3, nb), rng.integers(0, COLS - 3, nb)
    r1, c1 = np.minimum(ROWS, r0 + rng.integers(4, 11, nb)), np.minimum(COLS, c0 + rng.integers(4, 11, nb))
    hot = rng.random(nb) < hot_share
    flag = hot[bk] & (r >= r0[bk]) & (r < r1[bk]) & (c >= c0[bk]) & (c < c1[bk])
    flag |= rng.random(n) < 0.03

    area_m2 = shapely.area(geoms)
    ent = k // 2  # an enterprise holds two neighbouring cells
    main = np.char.add("91320700MA", np.char.zfill(ent.astype(str), 8)).astype(object)
    lessee = np.char.add("91320700LS", np.char.zfill(k.astype(str), 8)).astype(object)
    leased = rng.random(n) < 0.1
    users = np.where(leased, main + ";" + lessee, main)
    tax = rng.lognormal(0.0, 1.0, n)
    tax[rng.random(n) < 0.05] = np.nan
    ids = np.char.add("320706", np.char.zfill(k.astype(str), 13)).astype(object)
    parcels = gpd.GeoDataFrame(
        {
            "area_m2": area_m2,
            "area_mu": area_m2 / M2_PER_MU,
            "eval_area_m2": area_m2,
            "main_user": main,
            "users": users,
            "grade": GRADES[rng.integers(0, 5, n)],
            "tax_per_mu": tax,
        },
        geometry=geoms,
        crs="EPSG:4549",
        index=pd.Index(ids, name="parcel_id"),
    )
    return parcels, flag


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    best, result = math.inf, None
    for _ in range(max(1, repeat)):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def _groups_of(labels: np.ndarray, geoms: np.ndarray, fn: Callable[[np.ndarray], Any]) -> list[Any]:
    order = np.argsort(labels, kind="stable")
    s = labels[order]
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    g = geoms[order]
    return [fn(g[a:b]) for a, b in zip(starts, ends, strict=True)]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=300_000, help="parcels in the layout")
    ap.add_argument("--share", type=float, default=0.3, help="share of parcels flagged (about)")
    ap.add_argument("--tolerance", type=float, default=15.0, help="tolerance_m")
    ap.add_argument("--min-area", type=float, default=50.0, help="min_area_mu")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    ap.add_argument("--compare", action="store_true", help="also time the alternatives not chosen")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    parcels, flag = make_parcels(args.n, share=args.share)
    t_make = time.perf_counter() - t
    cand = parcels.loc[flag].sort_index()
    geoms = np.asarray(cand.geometry.array, dtype=object)

    rows: list[tuple[str, float | None, str]] = [("generate layout", t_make, f"{args.n:,} parcels")]
    t_tree, tree = _best(lambda: shapely.STRtree(geoms), args.repeat)
    t_query, pairs = _best(lambda: tree.query(geoms, predicate="dwithin", distance=args.tolerance), args.repeat)
    t_groups, labels = _best(lambda: contiguous_groups(geoms, args.tolerance), args.repeat)
    n_groups = int(labels.max()) + 1
    sizes = np.bincount(labels)
    rows += [
        ("STRtree build", t_tree, f"{len(geoms):,} flagged ({len(geoms) / args.n:.1%})"),
        ("dwithin query", t_query, f"{pairs.shape[1]:,} pairs (incl. self)"),
        (
            "**query + components** (`contiguous_groups`)",
            t_groups,
            f"{n_groups:,} groups, {(sizes == 1).sum():,} single, largest {sizes.max():,}",
        ),
    ]
    t_out, outlines = _best(lambda: dissolve_groups(geoms, labels, n_groups), args.repeat)
    multi = int((shapely.get_num_geometries(outlines) > 1).sum())
    rows.append(
        ("**dissolve** (`dissolve_groups`, coverage union)", t_out, f"{n_groups:,} outlines, {multi:,} multi-part")
    )
    flags = pd.Series(flag, index=parcels.index)
    t_all, res = _best(
        lambda: renewal_blocks(parcels, flags, tolerance_m=args.tolerance, min_area_mu=args.min_area), args.repeat
    )
    b = res.blocks
    n_block = int((b["kind"] == "连片改造区块").sum())
    tm = res.timings
    rows.append(
        (
            "`renewal_blocks` total",
            t_all,
            f"{n_block:,} 连片改造区块 ≥ {args.min_area:g} 亩; groups {tm['groups']:.2f} / outlines {tm['outlines']:.2f} / figures {tm['figures']:.2f} s",
        )
    )
    t_close, _ = _best(lambda: closed_outlines(b, gap_m=args.tolerance), args.repeat)
    rows.append(("`closed_outlines` (closing of multi-part blocks)", t_close, f"{multi:,} blocks closed"))
    member_area = np.bincount(labels, weights=shapely.area(geoms), minlength=n_groups)
    area_err = float(np.max(np.abs(shapely.area(outlines) - member_area) / member_area))
    rows.append(("check: outline area vs Σ member area", None, f"max relative difference {area_err:.1e}"))

    if args.compare:
        t_touch, _ = _best(lambda: tree.query(geoms, predicate="touches"), 1)
        t_inter, _ = _best(lambda: tree.query(geoms, predicate="intersects"), 1)
        t_union, _ = _best(lambda: _groups_of(labels, geoms, shapely.union_all), 1)
        frame = gpd.GeoDataFrame({"g": labels}, geometry=geoms, crs=cand.crs)
        t_gd, _ = _best(lambda: frame.dissolve("g"), 1)
        t_gdc, _ = _best(lambda: frame.dissolve("g", method="coverage"), 1)
        t_buf, _ = _best(lambda: shapely.buffer(geoms, args.tolerance / 2), 1)
        rows += [
            ("compare: `touches` query", t_touch, f"{t_touch / t_query:.1f}× dwithin"),
            ("compare: `intersects` query", t_inter, f"{t_inter / t_query:.1f}× dwithin"),
            ("compare: `union_all` per group", t_union, f"{t_union / t_out:.1f}× coverage union"),
            ("compare: geopandas `dissolve` (unary)", t_gd, f"{t_gd / t_out:.1f}× coverage union"),
            ("compare: geopandas `dissolve(method='coverage')`", t_gdc, f"{t_gdc / t_out:.1f}× coverage union"),
            ("compare: round buffer of every flagged parcel", t_buf, "not used"),
        ]

    print(f"## Renewal blocks: {args.n:,} parcels, tolerance {args.tolerance:g} m\n")
    print(
        f"{platform.machine()}, Python {platform.python_version()}, shapely {shapely.__version__} (GEOS {'.'.join(map(str, shapely.geos_version))}), best of {args.repeat}\n"
    )
    print("| step | seconds | notes |")
    print("|---|---:|---|")
    for name, sec, note in rows:
        print(f"| {name} | {'—' if sec is None else f'{sec:.3f}'} | {note} |")


if __name__ == "__main__":
    main()

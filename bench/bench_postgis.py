"""``python -m bench.bench_postgis``: the PostGIS backend at scale: parcels from a table, ``evaluate --db``
with its tile set, and the service reading everything from PostGIS under concurrent clients.

    python -m bench.bench_postgis [--n 1000000] [--clients 20] [--seconds 120] [--db URL]
                                  [--workers 1 2] [--load-clients 20 100] [--requests 4000] [--no-tiles]

1. A fresh database (default ``postgresql://postgres@127.0.0.1:5432/geo_eval_bench``, or ``--db`` /
   ``GEO_EVAL_BENCH_DATABASE_URL``; it is dropped and created again) with ``geo-eval db init``.
2. The synthetic dataset of :mod:`bench.synthetic` (cached in ``bench/data/<n>/``): its parcel layer
   is loaded into the table ``bench.parcels`` (:func:`geo_eval.db.parcels.import_parcels`, COPY).
3. The evaluation reads the parcels from that table (``[parcels] db``/``table``) and stores the run in the
   database (``run(…, db=…)`` = ``geo-eval evaluate … --db``), flags and blocks included, ranking
   workbooks left out as in ``make bench``. Stage times come from the manifest. Then the run's tiles are
   cut and stored in the database as ``geo-eval evaluate --db`` does after letting the evaluation go
   (:attr:`geo_eval.io.run.RunResult.tile_job`; ``--no-tiles``: none stored, every tile cut per request).
4. ``geo-eval serve --db`` serves the stored run (its OUT_DIR removed first, so everything comes from
   PostGIS): its first start (seconds until ``/health``, a tile, the widest park's map: the stored run read
   and its columnar copy written); then ``--clients`` concurrent httpx clients on loopback request the
   tiles that are always cut per request by ``ST_AsMVT``, each once: for every park the tile at the deepest
   zoom that still shows the whole park on the 高德 (GCJ-02) basemap (and without it under ``--no-tiles``).
5. For each ``--workers``: the service restarted (it maps the copy) and loaded as
   :mod:`bench.bench_tiles` loads a run served from files (the same request mix: overview tiles of zooms
   6–12, park tiles of zooms 13–19, GeoJSON by box, search; ``--load-clients``, wrk when installed), then
   every park's map, ranking and GeoJSON through each worker, and each worker's memory.

Prints a Markdown table and writes ``bench/out/postgis.md`` and ``bench/out/postgis.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_service import load_test, stop_service
from bench.bench_tiles import (
    Mix,
    add_client_option,
    attribute_mix,
    load_and_visit,
    parks_of,
    request_mix,
    serving_lines,
    start_and_open,
)

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/geo_eval_bench"
TABLE = "bench.parcels"


def fresh_database(url: str) -> None:
    """Drop and create the database of ``url`` (through the server's ``postgres`` database)."""
    import psycopg
    from psycopg import sql

    base, name = url.rsplit("/", 1)
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def whole_park_tiles(url: str, run_id: str) -> list[tuple[str, int, int, int]]:
    """For every park: the tile of the deepest zoom whose one tile holds the park's whole extent."""
    import psycopg

    from geo_eval.maps.tiles import lonlat_to_tile

    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT park, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM ("
            "  SELECT park, ST_Extent(ST_Transform(geom, 4326)) AS e FROM geo_eval.parcel_results"
            "  WHERE run_id = %s AND park IS NOT NULL GROUP BY park) q ORDER BY park",
            (run_id,),
        ).fetchall()
    out = []
    for park, w, s, e, n in rows:
        for z in range(18, -1, -1):
            a, b = lonlat_to_tile(w, n, z), lonlat_to_tile(e, s, z)
            if a == b:
                out.append((park, z, a[0], a[1]))
                break
    return out


def _rss_gb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, default=1_000_000, help="parcels")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=300.0, help="at most this long under load")
    ap.add_argument("--db", default=os.environ.get("GEO_EVAL_BENCH_DATABASE_URL", DEFAULT_URL))
    ap.add_argument("--scheme", default="lianyungang")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2], help="served under load with these workers")
    ap.add_argument("--load-clients", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--requests", type=int, default=4000)
    add_client_option(ap)
    ap.add_argument("--no-tiles", action="store_true", help="store no tile set: every tile cut by ST_AsMVT")
    a = ap.parse_args(argv)

    from bench.synthetic import cached_dataset
    from geo_eval.db.connection import redact_url
    from geo_eval.db.parcels import import_parcels
    from geo_eval.db.schema import init_schema
    from geo_eval.db.store import PostgresStore
    from geo_eval.io import writers
    from geo_eval.io.memory import release_memory
    from geo_eval.io.run import run
    from geo_eval.rating.scheme import load_scheme

    res: dict[str, Any] = {
        "n": a.n,
        "database": redact_url(a.db),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": "python -m bench.bench_postgis " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    src = DATA_DIR / str(a.n)
    print(f"dataset: {a.n} parcels …", file=sys.stderr)
    meta, _ = cached_dataset(src, a.n, seed=a.seed)
    res["dataset"] = {k: meta.get(k) for k in ("parcels", "enterprises", "leases", "parks", "counties")}
    fresh_database(a.db)
    init_schema(a.db)

    print("import into PostGIS …", file=sys.stderr)
    t = time.perf_counter()
    import_parcels(a.db, src / "parcels.gpkg", TABLE, layer="parcels")
    res["import_s"] = time.perf_counter() - t

    work = OUT_DIR / f"postgis_{a.n}"
    if work.exists():
        shutil.rmtree(work)
    ds = work / "dataset"
    ds.mkdir(parents=True)
    (ds / "dataset.toml").write_text(
        f'name = "synthetic {a.n} parcels from PostGIS"\nyear = 2024\nevaluation_date = "2025-03-31"\n'
        f'[parcels]\ndb = "{a.db}"\ntable = "{TABLE}"\n'
        f'[enterprises]\npath = "{(src / "enterprises.csv").as_posix()}"\n'
        f'[leases]\npath = "{(src / "leases.csv").as_posix()}"\n',
        encoding="utf-8",
    )
    writers.write_workbooks = lambda *args, **kwargs: []  # type: ignore[assignment]  # as make bench: aside
    print("evaluate --db …", file=sys.stderr)
    t = time.perf_counter()
    result = run(ds, load_scheme(a.scheme), work / "out", db=a.db, tiles=not a.no_tiles)
    res["evaluate_db_s"] = time.perf_counter() - t
    res["evaluate_peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    timings = result.manifest["timings_s"]
    assert isinstance(timings, dict)
    res["timings_s"] = timings
    res["database_timings_s"] = result.manifest.get("database_timings_s")
    assert result.stored is not None
    run_id = result.stored.run_id
    job = result.tile_job
    del result  # as the CLI: the evaluation let go before the tiles are cut
    if job is not None:
        release_memory()
        print("cut the tiles and store them …", file=sys.stderr)
        t = time.perf_counter()
        res["tile_job"] = job()
        res["tiles_cut_s"] = time.perf_counter() - t
        res["tiles_cut_peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
        res["tile_set"] = tile_set_size(a.db, run_id)
    mix = Mix(
        request_mix(work / "out", a.requests, run_id=run_id),
        *attribute_mix(work / "out", a.requests),
        parks_of(work / "out"),
    )
    shutil.rmtree(work / "out")  # the service must find everything in PostGIS

    store = PostgresStore(a.db)
    token = store.add_user("bench-reviewer", "reviewer")[1]
    store.close()
    tiles = whole_park_tiles(a.db, run_id)
    res["parks"] = len(tiles)
    res["zooms"] = sorted({z for _, z, _, _ in tiles})
    paths = [f"/api/tiles/{quote(p, safe='')}/{z}/{x}/{y}.pbf" for p, z, x, y in tiles]
    paths = [f"{p}?basemap=gaode" for p in paths] + (paths if a.no_tiles else [])
    random.Random(0).shuffle(paths)

    env = {"GEO_EVAL_DATABASE_URL": a.db}
    print("serve --db; reading the stored run …", file=sys.stderr)
    (proc, url), res["first_start"] = start_and_open(work / "data", 1, token, mix.tiles, biggest_park(tiles), env)
    try:
        res["service_peak_gb"] = _rss_gb(proc.pid)
        print(f"{len(paths)} whole-park tiles cut by ST_AsMVT, each once, {a.clients} clients …", file=sys.stderr)
        res["tiles"] = load_test(url, token, paths, clients=a.clients, max_seconds=a.seconds, warmup=[])
    finally:
        stop_service(proc)
    res["serving"] = []
    for w in a.workers:
        print(f"restart with {w} worker(s), under load …", file=sys.stderr)
        (proc, url), started = start_and_open(work / "data", w, token, mix.tiles, biggest_park(tiles), env)
        try:
            got = {"workers": w, "first_start": res["first_start"], **started}
            got |= load_and_visit(proc.pid, url, token, mix, w, a.load_clients, a.seconds, a.client)
        finally:
            stop_service(proc)
        res["serving"].append(got)
        print(table(res), file=sys.stderr)
    text = table(res)
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "postgis.md").write_text(text, encoding="utf-8")
    (OUT_DIR / "postgis.json").write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


def biggest_park(tiles: list[tuple[str, int, int, int]]) -> str:
    """The park whose whole-park tile is at the lowest zoom (the widest park)."""
    return min(tiles, key=lambda t: (t[1], t[0]))[0]


def tile_set_size(url: str, run_id: str) -> dict[str, int]:
    """The stored tile set of the run: its tiles, bytes and zooms."""
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT tiles, bytes, min_zoom, max_zoom FROM geo_eval.run_tile_sets WHERE run_id = %s", (run_id,)
        ).fetchone()
    return {} if row is None else dict(zip(("tiles", "bytes", "min_zoom", "max_zoom"), map(int, row), strict=True))


def table(res: dict[str, Any]) -> str:
    t = res["timings_s"]
    d = res.get("database_timings_s") or {}
    first = res["first_start"]
    rows = [
        ("parcels / enterprises / leases", "{parcels:,} / {enterprises:,} / {leases:,}".format(**res["dataset"])),
        ("import into PostGIS (`import_parcels`, COPY + GIST index)", f"{res['import_s']:.1f} s"),
        ("load + validate, parcels read from PostGIS", f"{t.get('load_validate', float('nan')):.1f} s"),
        ("`evaluate()` (land, indicators, scoring, parcel join)", f"{t.get('evaluate_total', float('nan')):.1f} s"),
        ("flags + blocks", f"{t.get('flags', 0) + t.get('blocks', 0):.1f} s"),
        ("files (csv, GeoPackages; no workbooks)", f"{sum(v for k, v in t.items() if k.startswith('write_')):.1f} s"),
        ("publish to PostGIS (one transaction, COPY)", f"{d.get('db_total', float('nan')):.1f} s"),
        (
            "  of which enterprises / parcels / flags, blocks, files",
            f"{d.get('db_enterprises', 0):.1f} / {d.get('db_parcels', 0):.1f} / {d.get('db_flags_blocks_files', 0):.1f} s",
        ),
        ("whole `evaluate --db` (wall)", f"{res['evaluate_db_s']:.1f} s (peak {res['evaluate_peak_gb']:.2f} GB)"),
    ]
    if "tiles_cut_s" in res:
        ts = res.get("tile_set") or {}
        rows.append(
            (
                "then the tiles cut and stored (`tile_job`, as `evaluate --db`)",
                f"{res['tiles_cut_s']:.1f} s ({res['tiles_cut_s'] / res['evaluate_db_s']:.2f}× the evaluation; "
                f"{ts.get('tiles', 0):,} tiles, {ts.get('bytes', 0) / 1024**2:.0f} MB, zooms "
                f"{ts.get('min_zoom', '?')}–{ts.get('max_zoom', '?')}; peak {res['tiles_cut_peak_gb']:.2f} GB)",
            )
        )
    rows.append(
        (
            "service's first start: /health, a tile, the widest park's map (reads the stored run, writes its copy)",
            f"{first['health_s']:.1f} s, {first['first_tile_s']:.1f} s, {first['park_map_s']:.1f} s "
            f"(peak RSS {res.get('service_peak_gb', float('nan')):.2f} GB)",
        )
    )
    if "tiles" in res:
        tiles = res["tiles"]
        rows += [
            (
                f"ST_AsMVT tiles, whole park (zoom {', '.join(map(str, res['zooms']))}), {res['parks']} parks, "
                + ("both basemaps" if tiles["n"] > res["parks"] else "高德 basemap"),
                f"{tiles['n']} requests, {tiles['clients']} clients",
            ),
            (
                "  latency p50 / p95 / p99 / max",
                f"{tiles['p50']:.0f} / **{tiles['p95']:.0f}** / {tiles['p99']:.0f} / {tiles['max']:.0f} ms",
            ),
            ("  throughput, mean tile size", f"{tiles['rps']:.1f} req/s, {tiles['mean_bytes'] / 1024:.0f} KB"),
            ("  statuses", ", ".join(f"{k}: {v}" for k, v in sorted(tiles["statuses"].items()))),
        ]
    lines = [
        f"# PostGIS backend, {res['n']:,} synthetic parcels ({res['machine']}; {res['database']})",
        "",
        f"Command: `{res.get('command', 'python -m bench.bench_postgis')}`.",
        "",
        "| measure | result |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in rows],
        "",
    ]
    for s in res.get("serving", []):
        lines += serving_lines(s, res["n"])
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

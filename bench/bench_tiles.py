"""``python -m bench.bench_tiles``: a run's tile archive, cut and served, at 100 000 and 1 000 000 parcels.

    python -m bench.bench_tiles [--n 100000 1000000] [--clients 20 100] [--workers 1 2] [--seconds 30]
                                [--requests 4000] [--load-n 1000000] [--scheme lianyungang]

For each ``--n``: the synthetic dataset of :mod:`bench.synthetic` (cached in ``bench/data/<n>/``) is
evaluated (``geo_eval.io.run.run``: flags, blocks, workbooks and report, as ``geo-eval evaluate``), then its
tiles are cut (``geo_eval.io.runtiles.build_run_tiles``, what ``geo-eval runs add`` does): time per step,
archive size, tile count and the largest tile per zoom.

For ``--load-n``: the run is registered in a fresh data directory and served by ``geo-eval serve --workers
W`` for each ``--workers``, twice: the first start reads the run's outputs and writes its columnar copy
(``api.runcopy``), the second (a restart) maps the copy; for each start, the seconds until ``/health``, the
first tile and the map page of a park answer. Then ``--clients`` concurrent clients on loopback (``--client``:
wrk's keep-alive connections, the default when the Debian package ``wrk`` is installed, or httpx tasks) request
a realistic mix of tiles (a reviewer's overview tiles of zooms 6–12 over the whole extent, park tiles of
zooms 13–19 of three parks, drawn at random with repeats, as several reviewers browsing; each naming its run,
``?run=``, as a map page's tile URLs do), until
``--requests`` requests or ``--seconds``; then, with the first ``--clients``, GeoJSON pages by box
(``/api/parcels?park=…&bbox=…&limit=1000``, a zoom-15 tile of one of three parks) and park search indexes
(``/api/maps/<park>/search.json``, any park); p50/p95/p99 and throughput as the clients measure them.
Finally the map page, a ranking page and a GeoJSON page of every park are asked through each worker, and
each worker's resident memory is read afterwards.

Writes ``bench/out/tiles.md`` and ``bench/out/tiles.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import random
import resource
import shutil
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_service import (
    free_port,
    load,
    start_service,
    stop_service,
    tiles_with_parcels,
)

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out"


def evaluate_and_cut(n: int, scheme: str) -> tuple[Path, dict[str, Any]]:
    """The dataset of ``n`` parcels evaluated (timed) and its tiles cut (timed)."""
    from bench.synthetic import cached_dataset
    from geo_eval.io.run import run
    from geo_eval.io.runtiles import build_run_tiles
    from geo_eval.rating.scheme import load_scheme
    from geo_eval.storage import run_record_from_out_dir

    src = DATA_DIR / str(n)
    cached_dataset(src, n)
    out = OUT_DIR / f"tiles_{n}" / "out"
    print(f"{n}: evaluate …", file=sys.stderr)
    t = time.perf_counter()
    run(src, load_scheme(scheme), out, overwrite=True)
    evaluate_s = time.perf_counter() - t
    print(f"{n}: cut the tiles …", file=sys.stderr)
    info = build_run_tiles(out, run_record_from_out_dir(out).run_id)
    with sqlite3.connect(info.path) as db:
        zooms = db.execute(
            "SELECT zoom_level, count(*), max(length(tile_data)), sum(length(tile_data)) FROM tiles GROUP BY 1"
        ).fetchall()
    res = {
        "n": n,
        "evaluate_s": evaluate_s,
        "tiles_s": info.seconds,
        "tiles_steps_s": info.steps,
        "ratio": info.seconds / evaluate_s,
        "archive_mb": info.bytes / 1e6,
        "tiles": info.tiles,
        "max_tile_kb": info.max_tile_bytes / 1e3,
        "zooms": [{"z": z, "tiles": c, "max_kb": m / 1e3, "mb": s / 1e6} for z, c, m, s in zooms],
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
    }
    return out, res


def request_mix(out: Path, count: int, seed: int = 0, run_id: str | None = None) -> list[str]:
    """Overview tiles of zooms 6–12 over every parcel and park tiles of zooms 13–19 of three parks, drawn at
    random with repeats (half and half); with ``run_id``, naming their run (``?run=``) as a map page's tile
    URLs do."""
    import pyogrio

    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", columns=["park"]).to_crs(4326)
    overview = [t for ts in tiles_with_parcels(parcels, tuple(range(6, 13))).values() for t in ts]
    parks = sorted(parcels["park"].dropna().unique())
    rng = random.Random(seed)
    chosen = rng.sample(parks, min(3, len(parks)))
    park_tiles: list[tuple[str, tuple[int, int, int]]] = []
    for park in chosen:
        rows = parcels.loc[parcels["park"] == park]
        for ts in tiles_with_parcels(rows, tuple(range(13, 20))).values():
            park_tiles += [(park, t) for t in ts]
    order = []
    for _ in range(count):
        if rng.random() < 0.5:
            z, x, y = rng.choice(overview)
            order.append(f"/api/tiles/{z}/{x}/{y}.pbf")
        else:
            park, (z, x, y) = rng.choice(park_tiles)
            order.append(f"/api/tiles/{quote(park, safe='')}/{z}/{x}/{y}.pbf")
    return order if run_id is None else [f"{path}?run={quote(run_id, safe='')}" for path in order]


def worker_memory_gb(pid: int) -> list[dict[str, float]]:
    """Each worker's resident memory (``rss``) and its parts, from ``/proc/<pid>/status``: ``anon``, the
    worker's own heap; ``file``, pages of mapped files (the run's columnar copy, the tile archives, the
    libraries), which the page cache shares with every other worker mapping them; ``pss``, the proportional
    set size from ``/proc/<pid>/smaps_rollup`` (the heap plus each shared page divided by the processes
    mapping it: what one more worker costs the machine)."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    fields = {"VmRSS:": "rss", "RssAnon:": "anon", "RssFile:": "file"}
    out = []
    for p in children or [pid]:
        got: dict[str, float] = {}
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            key = line.split(maxsplit=1)[0] if line else ""
            if key in fields:
                got[fields[key]] = int(line.split()[1]) / 1024**2
        rollup = Path(f"/proc/{p}/smaps_rollup")
        for line in rollup.read_text().splitlines() if rollup.is_file() else []:
            if line.startswith("Pss:"):
                got["pss"] = int(line.split()[1]) / 1024**2
        out.append(got)
    return out


class PeakMemory:
    """The workers' largest resident set seen while the block runs, sampled every ``every_s`` seconds."""

    def __init__(self, pid: int, every_s: float = 0.25) -> None:
        self.pid, self.every_s, self.peak_gb = pid, every_s, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self.every_s):
            with contextlib.suppress(OSError):  # a worker gone meanwhile
                self.peak_gb = max([self.peak_gb, *(m.get("rss", 0.0) for m in worker_memory_gb(self.pid))])


def attribute_mix(out: Path, count: int, seed: int = 1) -> tuple[list[str], list[str]]:
    """GeoJSON pages of parcels by box at park zoom (a random zoom-15 tile with parcels of one of three
    parks) and park search indexes, drawn at random with repeats."""
    import pyogrio

    from geo_eval.maps.tiles import tile_bounds

    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", columns=["park"]).to_crs(4326)
    parks = sorted(parcels["park"].dropna().unique())
    rng = random.Random(seed)
    boxes: list[str] = []
    for park in rng.sample(parks, min(3, len(parks))):
        rows = parcels.loc[parcels["park"] == park]
        for _, x, y in tiles_with_parcels(rows, (15,))[15]:
            w, s_, e, n = tile_bounds(15, x, y)
            boxes.append(f"/api/parcels?park={quote(park, safe='')}&bbox={w:.6f},{s_:.6f},{e:.6f},{n:.6f}&limit=1000")
    geojson = [rng.choice(boxes) for _ in range(count)]
    search = [f"/api/maps/{quote(rng.choice(parks), safe='')}/search.json" for _ in range(count)]
    return geojson, search


def parks_of(out: Path) -> list[str]:
    import pyogrio

    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", columns=["park"], read_geometry=False)
    return sorted(parcels["park"].dropna().unique())


def start_and_open(
    data: Path, workers: int, token: str, order: list[str], park: str, env: dict[str, str] | None = None
) -> tuple[Any, dict[str, float]]:
    """Start the service (``env``: more of its environment); seconds until /health, the first tile and the
    page of ``park`` answer."""
    import httpx

    port = free_port()
    data.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    env_extra = {"GEO_EVAL_WORKERS": str(workers), **(env or {})}
    proc = start_service(data, port, data / "server.log", env_extra=env_extra, timeout_s=900)
    url = f"http://127.0.0.1:{port}"
    res = {"health_s": time.perf_counter() - t}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=1800) as c:
        c.get(order[0]).raise_for_status()
        res["first_tile_s"] = time.perf_counter() - t
        c.get(f"/maps/{quote(park, safe='')}").raise_for_status()
        res["park_map_s"] = time.perf_counter() - t
    return (proc, url), res


def serve_and_load(
    out: Path, workers: int, clients: list[int], requests: int, seconds: float, client: str = "wrk"
) -> dict[str, Any]:
    """Register ``out`` in a fresh data directory, serve it with ``workers`` workers (once to build the run's
    columnar copy, then again as a restart reads it), load it."""
    from geo_eval.storage import open_store, run_record_from_out_dir

    data = OUT_DIR / f"tiles_serve_{workers}"
    if data.exists():
        shutil.rmtree(data)
    store = open_store(data)
    record = run_record_from_out_dir(out)
    store.add_run(record, actor="bench")
    token = store.add_user("bench-reviewer", "reviewer")[1]
    store.close()
    order = request_mix(out, requests, run_id=record.run_id)
    geojson, search = attribute_mix(out, requests)
    parks = parks_of(out)
    biggest = parks[0]
    (proc, url), first = start_and_open(data, workers, token, order, biggest)
    stop_service(proc)
    (proc, url), res = start_and_open(data, workers, token, order, biggest)
    res = {"workers": workers, "first_start": first, **res}
    try:
        res |= load_and_visit(
            proc.pid, url, token, Mix(order, geojson, search, parks), workers, clients, seconds, client
        )
    finally:
        stop_service(proc)
    return res


@dataclass(frozen=True)
class Mix:
    """What the clients ask for: tiles (:func:`request_mix`), GeoJSON pages and search indexes
    (:func:`attribute_mix`), and the parks whose pages are visited one after the other."""

    tiles: list[str]
    geojson: list[str]
    search: list[str]
    parks: list[str]


def load_and_visit(
    pid: int, url: str, token: str, mix: Mix, workers: int, clients: list[int], seconds: float, client: str
) -> dict[str, Any]:
    """The loads of a started service (tiles under each of ``clients``, then GeoJSON and search under the
    first), then every park's map, ranking and GeoJSON through each worker; each worker's memory."""
    import httpx

    res: dict[str, Any] = {}
    order = mix.tiles
    warm = sorted(set(order))[:: max(1, len(set(order)) // 50)]
    with PeakMemory(pid) as under_load:
        res["loads"] = [
            load(client, url, token, order, k, seconds, warm if i == 0 else []) for i, k in enumerate(clients)
        ]
        res["geojson"] = load(client, url, token, mix.geojson, clients[0], seconds, mix.geojson[:5])
        res["search"] = load(client, url, token, mix.search, clients[0], seconds, [])
    res["peak_rss_under_load_gb"] = under_load.peak_gb
    t = time.perf_counter()
    with (
        PeakMemory(pid) as every_park,
        httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=1800) as c,
    ):
        for park in mix.parks:  # every park's map, ranking and GeoJSON, asked once per worker
            for _ in range(workers):
                p = quote(park, safe="")
                for path in (f"/maps/{p}", f"/api/rankings?park={p}&limit=200", f"/api/parcels?park={p}&limit=500"):
                    # a new connection each time: the workers take turns accepting them (one keep-alive
                    # connection would stay with the worker that accepted it)
                    c.get(path, headers={"Connection": "close"}).raise_for_status()
    res["every_park_s"] = time.perf_counter() - t
    res["memory_gb"] = worker_memory_gb(pid)  # at once: a trim may be on its way
    res["rss_gb"] = [m["rss"] for m in res["memory_gb"]]
    res["peak_rss_every_park_gb"] = every_park.peak_gb
    time.sleep(6.0)  # a worker above GEO_EVAL_WORKER_RSS_MB gives mapped pages back at most every 5 s
    res["memory_after_6s_gb"] = worker_memory_gb(pid)
    return res


def serving_lines(s: dict[str, Any], n: int) -> list[str]:
    """The Markdown of one served configuration (:func:`serve_and_load`): its starts, loads and memory."""
    f = s["first_start"]
    lines = [
        "",
        f"Served at {n:,} parcels, {s['workers']} worker(s). First start (builds the run's columnar "
        f"copy): /health {f['health_s']:.1f} s, first tile {f['first_tile_s']:.1f} s, park map "
        f"{f['park_map_s']:.1f} s. Restart (reads the copy): /health {s['health_s']:.1f} s, first tile "
        f"{s['first_tile_s']:.1f} s, park map {s['park_map_s']:.1f} s. Every park's map, ranking and GeoJSON "
        f"through each worker: {s['every_park_s']:.0f} s; RSS per worker afterwards "
        + ", ".join(
            f"{m['rss']:.2f} GB (own heap {m.get('anon', 0):.2f}, mapped files {m.get('file', 0):.2f}, "
            f"PSS {m.get('pss', 0):.2f})"
            for m in s.get("memory_gb", [{"rss": g} for g in s["rss_gb"]])
        )
        + (
            f"; 6 s later {', '.join(format(m['rss'], '.2f') for m in s['memory_after_6s_gb'])} GB; largest RSS of a "
            f"worker sampled every 0.25 s: under load {s['peak_rss_under_load_gb']:.2f} GB, through every park "
            f"{s['peak_rss_every_park_gb']:.2f} GB"
            if "memory_after_6s_gb" in s
            else ""
        ),
        "",
        f"Load client: {s['loads'][0].get('client', 'httpx')}.",
        "",
        "| route | clients | requests | p50 ms | p95 ms | p99 ms | max ms | req/s | statuses |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    rows = [("tiles", ld) for ld in s["loads"]] + [("GeoJSON by box", s["geojson"]), ("search", s["search"])]
    for name, ld in rows:
        lines.append(
            f"| {name} | {ld['clients']} | {ld['n']} | {ld['p50']:.1f} | {ld['p95']:.1f} | {ld['p99']:.1f} | "
            f"{ld['max']:.0f} | {ld['rps']:.0f} | {ld['statuses']} |"
        )
    return lines


def table(res: dict[str, Any]) -> str:
    lines = [
        "## Tile archives (bench/bench_tiles.py)",
        "",
        f"Machine: {res['machine']}. Command: `{res['command']}`.",
        "",
        "| parcels | evaluate s | cut tiles s (read / inputs / tippecanoe / merge) | × evaluate | archive MB | tiles "
        "| largest KB | peak GB |",
        "|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for b in res["builds"]:
        st = b["tiles_steps_s"]
        steps = " / ".join(f"{st.get(k, 0):.0f}" for k in ("read", "inputs", "tippecanoe", "merge"))
        lines.append(
            f"| {b['n']:,} | {b['evaluate_s']:.1f} | {b['tiles_s']:.1f} ({steps}) | {b['ratio']:.2f} | "
            f"{b['archive_mb']:.0f} | {b['tiles']:,} | {b['max_tile_kb']:.0f} | {b['peak_gb']:.1f} |"
        )
    for b in res["builds"]:
        lines += ["", f"Largest tile per zoom at {b['n']:,} parcels (KB): "]
        lines.append(", ".join(f"z{z['z']} {z['max_kb']:.0f} ({z['tiles']} tiles)" for z in b["zooms"]))
    for s in res.get("serving", []):
        lines += serving_lines(s, res["load_n"])
    return "\n".join(lines) + "\n"


def add_client_option(ap: argparse.ArgumentParser) -> None:
    """``--client``: the load client of the request mixes."""
    ap.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load client: wrk (Debian package wrk; the default when installed) or httpx tasks in this process",
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--load-n", type=int, default=None, help="the size served under load (default: the largest --n)")
    ap.add_argument("--clients", type=int, nargs="+", default=[20, 100])
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--scheme", default="lianyungang")
    ap.add_argument("--no-load", action="store_true")
    add_client_option(ap)
    ap.add_argument("--reuse", action="store_true", help="serve the OUT_DIRs and archives of the last run as they are")
    a = ap.parse_args(argv)
    res: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "command": "python -m bench.bench_tiles " + " ".join(argv if argv is not None else sys.argv[1:]),
        "builds": [],
    }
    outs = {}
    for n in a.n:
        if a.reuse:
            outs[n] = OUT_DIR / f"tiles_{n}" / "out"
            continue
        outs[n], built = evaluate_and_cut(n, a.scheme)
        res["builds"].append(built)
        print(table(res), file=sys.stderr)
    if not a.no_load:
        res["load_n"] = a.load_n or max(a.n)
        res["serving"] = []
        for w in a.workers:
            res["serving"].append(serve_and_load(outs[res["load_n"]], w, a.clients, a.requests, a.seconds, a.client))
            print(table(res), file=sys.stderr)  # each configuration as it ends
    text = table(res)
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "tiles.md").write_text(text, encoding="utf-8")
    (OUT_DIR / "tiles.json").write_text(json.dumps(res, ensure_ascii=False, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

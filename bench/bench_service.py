"""``python -m bench.bench_service``: the service on one 20 000-parcel park, in headless Chromium and under load.

    python -m bench.bench_service [--parcels 20000] [--clients 20] [--requests 2000] [--seconds 60]
                                  [--browser-runs 5] [--no-browser] [--fresh] [--workers 1]

1. A synthetic dataset (:func:`bench.synthetic.make_frames`) whose parcels all lie in one park, so the park
   is far above the maps' vector-tile threshold; cached in ``bench/data/service_<n>/``.
2. Evaluated (flags and renewal blocks included), registered in a fresh data directory with a reviewer,
   and served by ``geo-eval serve`` on 127.0.0.1 (one uvicorn process, as ``make serve`` runs it;
   ``--workers N``: ``geo-eval serve --workers N``, each worker warmed up before the load).
3. **Time to first drawn parcel**: Debian's Chromium (``/usr/bin/chromium``, headless, through
   Playwright) signs in once, then opens ``/maps/<park>`` in fresh browser contexts (empty HTTP
   cache). The page's own clock gives ``geoEval.readyAt`` (map built), ``geoEval.firstTileAt`` (first
   vector tile of parcels drawn) and ``geoEval.tilesLoadedAt`` (every tile of the first view), in ms
   since navigation start. The first load after the server starts also builds the page and the tile
   source on the server; the next ``--browser-runs`` loads are warm.
4. **Latency under load**: ``--clients`` concurrent httpx clients on loopback, each request a random
   tile (zoom 14–16) of the park, or a GeoJSON page of the park's parcels in a random zoom-15 tile's
   box (``/api/parcels?park=…&bbox=…``), until ``--requests`` requests or ``--seconds`` have passed per
   route, after a warm-up. Latency is measured by the client, from sending to the last byte.

Prints a Markdown table and writes ``bench/out/service.md`` and ``bench/out/service.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pyogrio

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out"
PARK = "合成高新技术产业园"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GEO_EVAL = Path(sys.executable).with_name("geo-eval")
DATASET_VERSION = 1


# --- data -------------------------------------------------------------------------------------------------
def park_dataset(n: int, *, seed: int = 0, fresh: bool = False) -> Path:
    """A synthetic dataset of ``n`` parcels, all in :data:`PARK` (one county), cached by its parameters."""
    from bench.synthetic import GENERATOR_VERSION, make_frames

    root = DATA_DIR / f"service_{n}"
    meta = {"n": n, "seed": seed, "generator": GENERATOR_VERSION, "version": DATASET_VERSION, "park": PARK}
    meta_path = root / "service_meta.json"
    if not fresh and meta_path.is_file() and json.loads(meta_path.read_text(encoding="utf-8")) == meta:
        return root
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    parcels, enterprises, leases = make_frames(n, seed=seed)
    county = str(parcels["county"].iloc[0])
    parcels["park"] = PARK
    parcels["county"] = county
    enterprises["park"] = enterprises["park"].where(enterprises["park"].isna(), PARK)
    enterprises["county"] = county
    pyogrio.write_dataframe(parcels, root / "parcels.gpkg", layer="parcels", driver="GPKG", use_arrow=True)
    enterprises.to_csv(root / "enterprises.csv", index=False)
    leases.to_csv(root / "leases.csv", index=False)
    (root / "dataset.toml").write_text(
        f'name = "one synthetic park of {n} parcels (seed {seed})"\n'
        'year = 2024\nevaluation_date = "2025-03-31"\n\n'
        '[parcels]\npath = "parcels.gpkg"\nlayer = "parcels"\n\n'
        '[enterprises]\npath = "enterprises.csv"\n\n'
        '[leases]\npath = "leases.csv"\n',
        encoding="utf-8",
    )
    meta_path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    return root


def evaluate(dataset: Path, out: Path, scheme: str) -> float:
    """Evaluate ``dataset`` into ``out`` (flags on); returns the seconds it took."""
    from geo_eval.io.run import run
    from geo_eval.rating.scheme import load_scheme

    if out.exists():
        shutil.rmtree(out)
    t = time.perf_counter()
    run(dataset, load_scheme(scheme), out)
    return time.perf_counter() - t


# --- the service ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_service(
    data_dir: Path, port: int, log: Path, *, env_extra: dict[str, str] | None = None, timeout_s: float = 60
) -> subprocess.Popen[bytes]:
    """``geo-eval serve`` on 127.0.0.1:``port`` (``env_extra``: e.g. ``GEO_EVAL_DATABASE_URL``), once /health answers."""
    env = {
        **os.environ,
        "GEO_EVAL_DATA_DIR": str(data_dir),
        "GEO_EVAL_SECRET_KEY": secrets.token_urlsafe(48),
        "GEO_EVAL_DEMO": "0",
        **(env_extra or {}),
    }
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            [str(GEO_EVAL), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"geo-eval serve did not start:\n{log.read_text(errors='replace')}")
        time.sleep(0.2)


def warm_every_worker(url: str, token: str, paths: list[str], workers: int, tries: int = 400) -> None:
    """Ask ``paths`` over fresh connections until each of the ``workers`` worker processes (told apart by
    their ``X-Geo-Eval-Worker`` header) has answered them, so that none builds its caches under the load."""
    import httpx

    for path in paths:
        seen: set[str] = set()
        for _ in range(tries):
            r = httpx.get(url + path, headers={"Authorization": f"Bearer {token}"}, timeout=120)
            seen.add(r.headers.get("x-geo-eval-worker", ""))
            if len(seen) >= workers:
                break
        print(f"warm-up {path[:40]}…: {len(seen)} workers answered", file=sys.stderr)


def stop_service(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- the browser ------------------------------------------------------------------------------------------
def browser_times(url: str, user: str, token: str, runs: int) -> dict[str, Any]:
    """Time to first drawn parcel of the park map: the first load after start, then ``runs`` warm loads."""
    from playwright.sync_api import sync_playwright

    path = f"/maps/{quote(PARK, safe='')}"
    loads: list[dict[str, Any]] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        ctx = browser.new_context(viewport={"width": 1280, "height": 860})
        page = ctx.new_page()
        page.goto(f"{url}/login?next=/")
        page.fill("#name", user)
        page.fill("#token", token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        state = ctx.storage_state()
        ctx.close()
        for i in range(runs + 1):
            ctx = browser.new_context(viewport={"width": 1280, "height": 860}, storage_state=state)
            page = ctx.new_page()
            tiles: dict[str, int] = {}
            outside: list[str] = []

            def on_response(resp: Any, tiles: dict[str, int] = tiles) -> None:
                if "/api/tiles/" in resp.url:  # both tile layers ask for the same URLs: count each once
                    tiles[resp.url] = int(resp.headers.get("content-length") or 0)

            page.on("response", on_response)
            page.on("request", lambda req, o=outside: None if req.url.startswith(url) else o.append(req.url))
            t0 = time.perf_counter()
            response = page.goto(url + path)
            assert response is not None and response.status == 200, response
            page.wait_for_function("() => window.geoEval && geoEval.tilesLoadedAt > 0", timeout=120_000)
            wall = (time.perf_counter() - t0) * 1000
            marks = page.evaluate(
                "() => ({ready: geoEval.readyAt, first: geoEval.firstTileAt, all: geoEval.tilesLoadedAt,"
                " zoom: geoEval.map.getZoom(), html: document.documentElement.outerHTML.length})"
            )
            loads.append(
                {**marks, "wall_ms": wall, "tiles": len(tiles), "tile_bytes": sum(tiles.values()), "outside": outside}
            )
            ctx.close()
            print(
                f"  browser load {i}: map {marks['ready']:.0f} ms, first parcel tile {marks['first']:.0f} ms, "
                f"first view {marks['all']:.0f} ms ({len(tiles)} tiles, zoom {marks['zoom']})",
                file=sys.stderr,
            )
        browser.close()
    warm = loads[1:] or loads
    return {
        "cold": loads[0],
        "warm_median": {k: statistics.median(x[k] for x in warm) for k in ("ready", "first", "all", "wall_ms")},
        "warm_runs": len(loads) - 1,
        "tiles_first_view": loads[-1]["tiles"],
        "tile_bytes_first_view": loads[-1]["tile_bytes"],
        "page_chars": loads[-1]["html"],
        "zoom": loads[-1]["zoom"],
        "outside_requests": sorted({u for x in loads for u in x["outside"]}),
    }


# --- load ---------------------------------------------------------------------------------------------------
def tiles_with_parcels(parcels_4326: Any, zooms: tuple[int, ...]) -> dict[int, list[tuple[int, int, int]]]:
    """Every tile of ``zooms`` that holds a parcel's representative point."""
    from geo_eval.maps.tiles import lonlat_to_tile

    pts = parcels_4326.geometry.representative_point()
    xy = np.column_stack([pts.x.to_numpy(), pts.y.to_numpy()])
    out: dict[int, list[tuple[int, int, int]]] = {}
    for z in zooms:
        seen = {lonlat_to_tile(float(lon), float(lat), z) for lon, lat in xy}
        out[z] = sorted((z, x, y) for x, y in seen)
    return out


def percentiles(ms: list[float]) -> dict[str, float]:
    a = np.asarray(ms, dtype=float)
    return {
        "n": len(a),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


async def _load(url: str, token: str, order: list[str], *, clients: int, max_seconds: float) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sizes: list[int] = []
    issued = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"Authorization": f"Bearer {token}"}
    max_requests = len(order)
    start = time.perf_counter()
    deadline = start + max_seconds
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal issued
            while issued < max_requests and time.perf_counter() < deadline:
                path = order[issued]
                issued += 1
                t = time.perf_counter()
                r = await client.get(path)
                body = r.content
                latencies.append((time.perf_counter() - t) * 1000)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
                sizes.append(len(body))

        await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    return {
        **percentiles(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "statuses": statuses,
        "mean_bytes": float(np.mean(sizes)) if sizes else 0.0,
        "clients": clients,
    }


def load_test(
    url: str, token: str, order: list[str], *, clients: int, max_seconds: float, warmup: list[str]
) -> dict[str, Any]:
    """``order`` requested by ``clients`` concurrent clients (until done or ``max_seconds``), after ``warmup``."""
    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        for p in warmup:
            r = c.get(p)
            r.raise_for_status()
    return asyncio.run(_load(url, token, order, clients=clients, max_seconds=max_seconds))


WRK_SCRIPT = BENCH_DIR / "wrk_mix.lua"


def wrk_load(
    url: str, token: str, order: list[str], *, clients: int, seconds: float, warmup: list[str]
) -> dict[str, Any]:
    """``order`` requested in turn over ``clients`` keep-alive connections by wrk (C, two threads) for
    ``seconds``, after ``warmup`` (httpx): a load client that leaves the CPUs to the service, where the httpx
    clients of :func:`load_test` took as much CPU as the service itself. Same fields as :func:`load_test`
    (``mean_bytes`` with the response headers)."""
    import tempfile

    import httpx

    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as c:
        for p in warmup:
            c.get(p).raise_for_status()
    with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as f:
        f.write("\n".join(order) + "\n")
        f.flush()
        cmd = ["wrk", "-t", "2", "-c", str(clients), "-d", f"{seconds:g}s", "--timeout", "30s", "-s", str(WRK_SCRIPT)]
        done = subprocess.run([*cmd, url, "--", f.name, token], capture_output=True, text=True, check=True)
    line = next(x for x in done.stdout.splitlines() if x.startswith("WRKJSON "))
    r = json.loads(line.removeprefix("WRKJSON "))
    n = max(int(r["n"]), 1)
    return {
        "n": r["n"],
        "p50": r["p50"],
        "p95": r["p95"],
        "p99": r["p99"],
        "max": r["max"],
        "seconds": r["seconds"],
        "rps": r["n"] / r["seconds"],
        "statuses": {int(k): v for k, v in r["statuses"].items()},
        "errors": r["errors"],
        "mean_bytes": r["bytes"] / n,
        "clients": clients,
        "client": "wrk",
    }


def load(
    client: str, url: str, token: str, order: list[str], clients: int, seconds: float, warmup: list[str]
) -> dict[str, Any]:
    """``order`` under ``clients`` concurrent clients: wrk's connections, or httpx tasks (``client``)."""
    if client == "wrk":
        return wrk_load(url, token, order, clients=clients, seconds=seconds, warmup=warmup)
    return {**load_test(url, token, order, clients=clients, max_seconds=seconds, warmup=warmup), "client": "httpx"}


# --- report -------------------------------------------------------------------------------------------------
def table(res: dict[str, Any]) -> str:
    b = res.get("browser")
    t, g = res["tiles"], res["geojson"]
    lines = [
        f"## Service: one park of {res['parcels']:,} parcels (vector-tile map), {res['machine']}, "
        f"{res.get('workers', 1)} worker(s)",
        "",
        "| measure | value |",
        "|---|---|",
        f"| evaluation of the dataset (flags on) | {res['evaluate_s']:.1f} s |",
        "| tile archive (`geo-eval runs add`) | "
        + ("none: tiles cut per request |" if res.get("archive_s") is None else f"cut in {res['archive_s']:.1f} s |"),
    ]
    if b:
        c, w = b["cold"], b["warm_median"]
        lines += [
            f"| map page (HTML) | {b['page_chars'] / 1024:.0f} KB; first view at zoom {b['zoom']}: "
            f"{b['tiles_first_view']} distinct tiles, {b['tile_bytes_first_view'] / 1024:.0f} KB |",
            f"| first drawn parcel, first load after start (page and tile source built) | "
            f"{c['first']:.0f} ms (map ready {c['ready']:.0f} ms, first view {c['all']:.0f} ms) |",
            f"| **first drawn parcel, warm** (median of {b['warm_runs']} fresh browser contexts) | "
            f"**{w['first']:.0f} ms** (map ready {w['ready']:.0f} ms, first view {w['all']:.0f} ms) |",
            f"| requests outside the service | {len(b['outside_requests'])} |",
        ]
    routes = (
        ("tile route `/api/tiles/{park}/{z}/{x}/{y}.pbf`, z 14–16, each tile once", t),
        ("tile route, random tiles with repeats", res["tiles_cached"]),
        ("GeoJSON route `/api/parcels?park=…&bbox=…&limit=1000`, random z15-tile boxes", g),
    )
    for name, r in routes:
        lines.append(
            f"| {name}, {r['clients']} clients ({r.get('client', 'httpx')}) | **p95 {r['p95']:.0f} ms** (p50 {r['p50']:.0f}, p99 {r['p99']:.0f}, "
            f"max {r['max']:.0f}); {r['n']} requests in {r['seconds']:.1f} s = {r['rps']:.0f} req/s; "
            f"mean {r['mean_bytes'] / 1024:.1f} KB; status {r['statuses']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--parcels", type=int, default=20_000)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=2000, help="requests per route and pass (at most)")
    ap.add_argument("--seconds", type=float, default=60.0, help="seconds per route (at most)")
    ap.add_argument("--browser-runs", type=int, default=5, help="warm browser loads after the first")
    ap.add_argument("--no-browser", action="store_true")
    ap.add_argument("--fresh", action="store_true", help="regenerate the dataset")
    ap.add_argument("--scheme", default="lianyungang")
    ap.add_argument("--workers", type=int, default=1, help="geo-eval serve --workers N")
    ap.add_argument("--no-archive", action="store_true", help="register without cutting the tile archive")
    ap.add_argument(
        "--client",
        choices=["wrk", "httpx"],
        default="wrk" if shutil.which("wrk") else "httpx",
        help="load client for the repeated tiles and GeoJSON: wrk (Debian package wrk; the default when "
        "installed) or httpx tasks in this process. The tiles each requested once always use httpx (wrk repeats)",
    )
    a = ap.parse_args(argv)

    from geo_eval.maps.tiles import tile_bounds
    from geo_eval.storage import open_store, run_record_from_out_dir

    browser_ok = not a.no_browser and CHROMIUM.is_file()
    if not a.no_browser and not browser_ok:
        print(f"{CHROMIUM} is missing: the browser timing is skipped (apt-get install chromium)", file=sys.stderr)

    print(f"dataset: {a.parcels} parcels in one park", file=sys.stderr)
    dataset = park_dataset(a.parcels, fresh=a.fresh)
    work = OUT_DIR / f"service_{a.parcels}"
    out = work / "run"
    print("evaluating …", file=sys.stderr)
    evaluate_s = evaluate(dataset, out, a.scheme)
    data_dir = work / "data"
    if data_dir.exists():
        shutil.rmtree(data_dir)
    store = open_store(data_dir)
    record = store.add_run(run_record_from_out_dir(out), actor="bench")
    run_id = record.run_id
    user, token = "bench-reviewer", store.add_user("bench-reviewer", "reviewer")[1]
    store.close()
    archive_s = None
    if not a.no_archive:  # as `geo-eval runs add` does
        from geo_eval.io.runtiles import build_run_tiles

        print("cutting the tile archive …", file=sys.stderr)
        archive_s = build_run_tiles(out, run_id).seconds
        from api.rundata import prepare_copy

        print("writing the service's columnar copy …", file=sys.stderr)
        print(prepare_copy(data_dir, record)[1], file=sys.stderr)

    import geopandas as gpd

    parcels = gpd.read_file(out / "parcels.gpkg", layer="parcels").to_crs(4326)
    n_park = int((parcels["park"] == PARK).sum())
    tiles_by_zoom = tiles_with_parcels(parcels, (14, 15, 16))
    park = quote(PARK, safe="")
    tile_paths = [f"/api/tiles/{park}/{z}/{x}/{y}.pbf" for z in (14, 15, 16) for (_, x, y) in tiles_by_zoom[z]]
    boxes = [tile_bounds(*t) for t in tiles_by_zoom[15]]
    geojson_paths = [
        f"/api/parcels?park={park}&bbox={w:.6f},{s:.6f},{e:.6f},{n:.6f}&limit=1000" for w, s, e, n in boxes
    ]

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_service(data_dir, port, work / "server.log", env_extra={"GEO_EVAL_WORKERS": str(a.workers)})
    res: dict[str, Any] = {
        "parcels": n_park,
        "workers": a.workers,
        "evaluate_s": evaluate_s,
        "archive_s": archive_s,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    try:
        if browser_ok:
            print("browser …", file=sys.stderr)
            res["browser"] = browser_times(url, user, token, a.browser_runs)
        if a.workers > 1:
            warm_every_worker(url, token, [tile_paths[0], geojson_paths[0]], a.workers)
        rng = random.Random(0)
        once = rng.sample(tile_paths, min(a.requests, len(tile_paths)))
        repeated = [rng.choice(tile_paths) for _ in range(a.requests)]
        boxes_order = [rng.choice(geojson_paths) for _ in range(a.requests)]
        print(f"tile route: {len(once)} distinct tiles, each once …", file=sys.stderr)
        res["tiles"] = load_test(url, token, once, clients=a.clients, max_seconds=a.seconds, warmup=[tile_paths[0]])
        print(f"tile route: {len(repeated)} random tiles (served tiles cached) …", file=sys.stderr)
        res["tiles_cached"] = load(a.client, url, token, repeated, a.clients, a.seconds, [])
        print(f"GeoJSON route: {len(boxes_order)} random boxes of {len(geojson_paths)} …", file=sys.stderr)
        res["geojson"] = load(a.client, url, token, boxes_order, a.clients, a.seconds, [geojson_paths[0]])
    finally:
        stop_service(proc)
    text = table(res)
    print(text)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "service.md").write_text(text, encoding="utf-8")
    (OUT_DIR / "service.json").write_text(json.dumps(res, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m bench.bench_overview``: a province's overview map as a reviewer who sees every park uses it.

    python -m bench.bench_overview [--n 1000000] [--workers 1] [--repeat 3]

Takes the run that ``python -m bench.bench_tiles --n N`` evaluated and cut (``bench/out/tiles_<N>/out``),
registers it in a fresh data directory and serves it with ``geo-eval serve --workers W``. The first start
writes the run's columnar copy (timed apart); after a restart, each request the overview page makes as a
person opens it and works (the page, the review list's first page and counts, a filtered page, the next
pending flag, the review states, a parcel's popup, the renewal blocks of a park-zoom view, three searches)
is timed the first time (cold: what the first reviewer after a restart waits for) and then ``--repeat``
times (the median), with the size of its answer; then the worker's memory.

Writes ``bench/out/overview.md`` and ``bench/out/overview.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.bench_service import free_port, start_service, stop_service
from bench.bench_tiles import OUT_DIR, worker_memory_gb


def requests_of(parcel: str, flag: str, view: tuple[float, float, float, float], name: str) -> list[tuple[str, str]]:
    """What the overview asks, in the order a person's work asks it: (label, path)."""
    box = ",".join(f"{v:.6f}" for v in view)
    return [
        ("page /maps/", "/maps/"),
        ("review list, first page and counts", "/api/maps/queue.json?limit=200"),
        (
            "review list filtered (低效用地, 待复核, 高)",
            f"/api/maps/queue.json?kind=low_efficiency&state=pending&sev={quote('高')}&limit=200",
        ),
        ("next pending flag", f"/api/maps/queue.json?state=pending&after={quote(flag, safe='')}&limit=1"),
        ("review states (polled)", "/api/maps/reviews.json"),
        ("a parcel's popup (by code)", f"/api/maps/parcel.json?id={quote(parcel, safe='')}"),
        ("renewal blocks of a zoom-15 view", f"/api/maps/blocks.json?bbox={box}"),
        ("search: a parcel code", f"/api/maps/search.json?q={quote(parcel[-8:], safe='')}&limit=12"),
        ("search: an enterprise name", f"/api/maps/search.json?q={quote(name, safe='')}&limit=12"),
        ("search: nothing found", f"/api/maps/search.json?q={quote('不存在')}&limit=12"),
    ]


def sample_place(out: Path) -> tuple[str, tuple[float, float, float, float], str]:
    """A parcel of the run with an enterprise, the zoom-15 tile around it, a piece of its user's name."""
    import pyogrio

    from geo_eval.maps.tiles import lonlat_to_tile, tile_bounds

    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", columns=["parcel_id", "main_user_name"])
    row = parcels.loc[parcels["main_user_name"].notna()].iloc[len(parcels) // 3]
    point = parcels.loc[[row.name]].to_crs(4326).geometry.iloc[0].representative_point()
    x, y = lonlat_to_tile(point.x, point.y, 15)
    return str(row["parcel_id"]), tile_bounds(15, x, y), str(row["main_user_name"])[3:7]


def timed(client: Any, path: str) -> tuple[float, int]:
    t = time.perf_counter()
    r = client.get(path)
    r.raise_for_status()
    return (time.perf_counter() - t) * 1000, len(r.content)


def run(n: int, workers: int, repeat: int) -> dict[str, Any]:
    import httpx

    from geo_eval.storage import open_store, run_record_from_out_dir

    out = OUT_DIR / f"tiles_{n}" / "out"
    if not (out / "manifest.json").is_file():
        raise SystemExit(f"no run at {out}: python -m bench.bench_tiles --n {n} --no-load first")
    data = OUT_DIR / f"overview_{n}"
    shutil.rmtree(data, ignore_errors=True)
    store = open_store(data)
    store.add_run(run_record_from_out_dir(out), actor="bench")
    token = store.add_user("bench-reviewer", "reviewer")[1]
    store.close()
    parcel, view, name = sample_place(out)
    env = {"GEO_EVAL_WORKERS": str(workers)}
    res: dict[str, Any] = {"n": n, "workers": workers, "repeat": repeat, "rows": []}
    headers = {"Authorization": f"Bearer {token}"}
    t = time.perf_counter()
    proc = start_service(data, free_port(), data / "server.log", env_extra=env, timeout_s=900)
    port = proc.args[proc.args.index("--port") + 1]  # type: ignore[union-attr]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=1800) as c:
        c.get("/api/maps/queue.json?limit=0").raise_for_status()
    res["first_start_s"] = time.perf_counter() - t  # reads the run's outputs, writes the columnar copy
    stop_service(proc)
    t = time.perf_counter()
    proc = start_service(data, free_port(), data / "server.log", env_extra=env, timeout_s=900)
    res["restart_health_s"] = time.perf_counter() - t
    port = proc.args[proc.args.index("--port") + 1]  # type: ignore[union-attr]
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=1800) as c:
            flag = c.get("/api/maps/queue.json?state=pending&limit=10").json()["rows"][-1][0]  # a flag mid-list
            stop_service(proc)  # and start again: every request below is timed cold first
            proc = start_service(data, free_port(), data / "server.log", env_extra=env, timeout_s=900)
            c.base_url = f"http://127.0.0.1:{proc.args[proc.args.index('--port') + 1]}"  # type: ignore[union-attr]
            for label, path in requests_of(parcel, flag, view, name):
                cold, size = timed(c, path)
                warm = [timed(c, path)[0] for _ in range(repeat)]
                res["rows"].append(
                    {"request": label, "path": path, "cold_ms": cold, "warm_ms": statistics.median(warm), "bytes": size}
                )
                print(
                    f"{label}: {cold:.0f} ms cold, {statistics.median(warm):.1f} ms warm, {size / 1e3:.0f} KB",
                    file=sys.stderr,
                )
        res["memory"] = worker_memory_gb(proc.pid)
    finally:
        stop_service(proc)
    return res


def table(res: dict[str, Any]) -> str:
    lines = [
        "## A province's overview (bench/bench_overview.py)",
        "",
        f"Machine: {platform.machine()}, {len(__import__('os').sched_getaffinity(0))} CPUs, Python {platform.python_version()}. "
        f"Command: `python -m bench.bench_overview --n {res['n']} --workers {res['workers']}`. One reviewer who sees every park; "
        f"cold: the first request after a restart; warm: the median of {res['repeat']} more.",
        "",
        f"First start (reads the run, writes its copy): {res['first_start_s']:.1f} s; restart to /health: {res['restart_health_s']:.1f} s.",
        "",
        "| request | cold ms | warm ms | answer KB |",
        "|---|---:|---:|---:|",
    ]
    for r in res["rows"]:
        lines.append(f"| {r['request']} | {r['cold_ms']:.0f} | {r['warm_ms']:.1f} | {r['bytes'] / 1e3:.0f} |")
    mem = "; ".join(
        f"worker {i + 1}: RSS {m.get('rss', 0):.2f} GB, own {m.get('anon', 0):.2f} GB, PSS {m.get('pss', 0):.2f} GB"
        for i, m in enumerate(res.get("memory", []))
    )
    lines += ["", f"Memory afterwards: {mem}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    res = run(args.n, args.workers, args.repeat)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "overview.json").write_text(json.dumps(res, ensure_ascii=False, indent=1), encoding="utf-8")
    text = table(res)
    (OUT_DIR / "overview.md").write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

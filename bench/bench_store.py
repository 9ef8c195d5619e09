"""``python -m bench.bench_store``: the store with a run of 50 000 reviews, on SQLite and on PostgreSQL.

    python -m bench.bench_store [--reviews 50000] [--patches 200] [--db URL] [--backends sqlite,postgis]

1. The sample's 2025 run (``sample_parcels/2025``, evaluated once into ``bench/out/store/2025``) is
   registered in a fresh store of each backend: a new data directory (SQLite), and the database of
   ``--db`` (default ``GEO_EVAL_BENCH_DATABASE_URL`` or ``postgresql://postgres@127.0.0.1:5432/geo_eval_bench``,
   as :mod:`bench.bench_postgis`; the database is dropped and created again).
2. ``--reviews`` reviews of further flag ids of that run are written straight into its ``reviews`` table
   (one bulk insert, outside the store: the point is a run with that many reviews, not how they came).
3. **reads**: ``store.reviews(run)`` (every review of the run, as the flag list and the home page read
   them) and ``store.reviews(run, 500 flag ids)`` (a page of the flag list), the median of repeated calls.
4. **PATCH**: ``geo-eval serve`` on 127.0.0.1 (one uvicorn process); one reviewer's client sends
   ``PATCH /api/flags/{flag_id}`` back to back over ``--patches`` of the run's real flags, first each
   flag's first review (version 0: an insert), then a change of it (version 1: an update). Latency is
   measured by the client, from sending to the last byte.

Prints a Markdown table and writes ``bench/out/store.md`` and ``bench/out/store.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_service import OUT_DIR, free_port, percentiles, start_service, stop_service

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels" / "2025"
DEFAULT_URL = os.environ.get("GEO_EVAL_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/geo_eval_bench")
GEO_EVAL = Path(sys.executable).with_name("geo-eval")
PAGE = 500
"""Flag ids per ``reviews(run, flag_ids)`` call (a page of the flag list)."""


def sample_run(work: Path) -> Path:
    """The sample's 2025 OUT_DIR (evaluated once, then reused)."""
    out = work / "2025"
    if not (out / "manifest.json").is_file():
        cmd = [str(GEO_EVAL), "evaluate", str(SAMPLE), "--scheme", "lianyungang", "--out", str(out), "--overwrite"]
        subprocess.run(cmd, check=True, capture_output=True)
    return out


def flag_ids(out_dir: Path) -> list[str]:
    """The flag ids of a run, in ``flags.csv`` order."""
    with (out_dir / "flags.csv").open(encoding="utf-8-sig", newline="") as fh:
        return [row["flag_id"] for row in csv.DictReader(fh)]


def fresh_postgis(url: str) -> None:
    """Drop and create the database of ``url``, with the schema ``geo_eval`` at the current version."""
    from bench.bench_postgis import fresh_database
    from geo_eval.db import init_schema

    fresh_database(url)
    init_schema(url)


def review_rows(run_id: str, n: int) -> list[tuple[Any, ...]]:
    """``n`` reviews of made-up flag ids of ``run_id``, as rows of the ``reviews`` table."""
    at = "2026-01-01T00:00:00.000Z"
    return [(run_id, f"B{i:06d}:bench", "confirmed", f"批量意见 {i}", 1, "bench", at) for i in range(n)]


def bulk_reviews(backend: str, where: str, rows: list[tuple[Any, ...]]) -> None:
    """Write ``rows`` into the ``reviews`` table in one transaction (COPY on PostgreSQL)."""
    columns = "run_id, flag_id, status, comment, version, updated_by, updated_at"
    if backend == "sqlite":
        import sqlite3

        conn = sqlite3.connect(where)
        with conn:
            conn.executemany(f"INSERT INTO reviews ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.close()
        return
    from geo_eval.db import connect

    with connect(where) as conn, conn.cursor().copy(f"COPY geo_eval.reviews ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def median_s(call: Callable[[], object], repeat: int) -> float:
    """The median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        call()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def patches(url: str, token: str, run_id: str, ids: list[str]) -> dict[str, dict[str, float]]:
    """PATCH each flag twice (first review, then a change); the latencies (ms) of each pass."""
    import httpx

    passes: dict[str, dict[str, float]] = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        client.get("/api/flags", params={"run": run_id, "limit": 1})  # warm-up: the run loaded
        for name, version, status in (("first", 0, "confirmed"), ("change", 1, "site_visit")):
            latencies = []
            for fid in ids:
                t = time.perf_counter()
                r = client.patch(
                    f"/api/flags/{fid}", params={"run": run_id}, json={"status": status, "version": version}
                )
                latencies.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    raise RuntimeError(f"PATCH {fid} answered {r.status_code}: {r.text[:300]}")
            passes[name] = percentiles(latencies)
    return passes


def bench_backend(backend: str, out_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement on one backend."""
    from geo_eval.storage import open_store, run_record_from_out_dir

    data_dir = work / f"data-{backend}"
    shutil.rmtree(data_dir, ignore_errors=True)
    url = args.db if backend == "postgis" else None
    if url:
        fresh_postgis(url)
    store = open_store(data_dir, database_url=url)
    run_id = store.add_run(run_record_from_out_dir(out_dir), actor="bench").run_id
    token = store.add_user("bench-reviewer", "reviewer")[1]
    bulk_reviews(backend, url or str(getattr(store, "path", "")), review_rows(run_id, args.reviews))
    page = [f"B{i:06d}:bench" for i in range(0, args.reviews, max(1, args.reviews // PAGE))][:PAGE]
    result: dict[str, Any] = {
        "backend": backend,
        "reviews": len(store.reviews(run_id)),
        "reviews_all_s": median_s(lambda: store.reviews(run_id), args.repeat),
        "reviews_page_s": median_s(lambda: store.reviews(run_id, page), args.repeat * 4),
    }
    store.close()
    port = free_port()
    env = {"GEO_EVAL_DATABASE_URL": url} if url else {}
    proc = start_service(data_dir, port, work / f"server-{backend}.log", env_extra=env)
    try:
        result["patch"] = patches(f"http://127.0.0.1:{port}", token, run_id, flag_ids(out_dir)[: args.patches])
    finally:
        stop_service(proc)
    return result


def table(results: list[dict[str, Any]], reviews: int) -> str:
    """The Markdown table of the results."""
    from geo_eval import __version__

    lines = [
        f"a run with {reviews} reviews (geo-eval {__version__})",
        "",
        "| backend | reviews(run) ms | reviews(run, 500 ids) ms | PATCH first p50/p95 ms | PATCH change p50/p95 ms |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        first, change = r["patch"]["first"], r["patch"]["change"]
        lines.append(
            f"| {r['backend']} | {r['reviews_all_s'] * 1000:.0f} | {r['reviews_page_s'] * 1000:.1f} | "
            f"{first['p50']:.1f} / {first['p95']:.1f} | {change['p50']:.1f} / {change['p95']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--reviews", type=int, default=50_000)
    ap.add_argument("--patches", type=int, default=200, help="flags PATCHed (twice each)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--db", default=DEFAULT_URL)
    ap.add_argument("--backends", default="sqlite,postgis")
    args = ap.parse_args(argv)
    work = OUT_DIR / "store"
    work.mkdir(parents=True, exist_ok=True)
    out_dir = sample_run(work)
    results = [bench_backend(b, out_dir, work, args) for b in args.backends.split(",")]
    text = table(results, args.reviews)
    print(text)
    (OUT_DIR / "store.md").write_text(text + "\n", encoding="utf-8")
    (OUT_DIR / "store.json").write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return results


if __name__ == "__main__":
    main()

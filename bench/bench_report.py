"""The annual report at scale: ``report.html`` of a 1M-parcel run against the evaluation's own time.

    python -m bench.bench_report [--n 1000000] [--repeat 1] [--keep]

Evaluates the synthetic dataset of ``--n`` parcels (:mod:`bench.synthetic`, cached in ``bench/data/<n>/``)
twice as ``geo-eval evaluate`` does without its report: once as "last year", then again with
``--previous`` pointing at it, so that the report has every section (the transition matrix, the
changes per park and the maps of class change: the synthetic data is the same both years, so nothing
changes class, which costs the report the same). The second evaluation's time is the yardstick. Then
it times :func:`geo_eval.io.report.write_report` on that OUT_DIR, for the whole run and for its largest
park (what a park committee gets), split into reading the files and rendering, and the size of the HTML.
Prints a Markdown table and writes ``bench/out/report/<n>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd

from bench.synthetic import cached_dataset

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out" / "report"


def evaluate_twice(n: int, out: Path) -> float:
    """Evaluate the dataset as last year and again with ``--previous``; the seconds of the second run."""
    from geo_eval.io.run import run
    from geo_eval.rating.scheme import load_scheme

    data = DATA_DIR / str(n)
    cached_dataset(data, n)
    scheme = load_scheme("lianyungang")
    run(data, scheme, out / "previous", overwrite=True, report=False)
    t = time.perf_counter()
    run(data, scheme, out / "current", previous_dir=out / "previous", overwrite=True, report=False)
    return time.perf_counter() - t


def time_report(out_dir: Path, parks: tuple[str, ...], target: Path) -> dict[str, float]:
    """Seconds to read the run and to render it, and the size of the HTML (MB)."""
    from geo_eval.io.report import read_run
    from geo_eval.report.html import render

    t0 = time.perf_counter()
    run = read_run(out_dir, parks=parks)
    t1 = time.perf_counter()
    text = render(run, generated_at="bench")
    t2 = time.perf_counter()
    target.write_text(text, encoding="utf-8")
    return {"read_s": t1 - t0, "render_s": t2 - t1, "total_s": time.perf_counter() - t0, "mb": len(text) / 1e6}


def largest_park(out_dir: Path) -> str:
    parks = pd.read_csv(out_dir / "enterprises.csv", usecols=["park"], encoding="utf-8-sig")["park"]
    counts = parks.value_counts()
    return str(sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="parcels")
    ap.add_argument("--repeat", type=int, default=1, help="report runs; the fastest is reported")
    ap.add_argument("--keep", action="store_true", help="reuse the OUT_DIRs and evaluation time of the last run")
    args = ap.parse_args(argv)
    out = OUT_DIR / str(args.n)
    out.mkdir(parents=True, exist_ok=True)
    last = out / "results.json"
    if args.keep and last.is_file() and (out / "current" / "manifest.json").is_file():
        evaluate_s = float(json.loads(last.read_text(encoding="utf-8"))["evaluate_s"])
    else:
        evaluate_s = evaluate_twice(args.n, out)
    current = out / "current"
    park = largest_park(current)
    results: dict[str, Any] = {"n": args.n, "evaluate_s": evaluate_s, "park": park, "machine": platform.platform()}
    for label, parks in (("whole", ()), ("park", (park,))):
        runs = [time_report(current, parks, out / f"report-{label}.html") for _ in range(args.repeat)]
        results[label] = min(runs, key=lambda r: r["total_s"])
    (out / "results.json").write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"| {args.n:,} parcels | read (s) | render (s) | report (s) | share of evaluate | HTML (MB) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in ("whole", "park"):
        r = results[label]
        name = "whole run" if label == "whole" else f"one park ({park})"
        share = r["total_s"] / evaluate_s
        print(
            f"| {name} | {r['read_s']:.2f} | {r['render_s']:.2f} | {r['total_s']:.2f} | {share:.1%} | {r['mb']:.2f} |"
        )
    print(f"| evaluate with --previous, without report | | | {evaluate_s:.2f} | 100% | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

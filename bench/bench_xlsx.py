"""Ranking workbooks at scale: geo-eval's xlsx writer against the writers it could use.

    python -m bench.bench_xlsx [--n 1000000] [--writers geo_eval xlsxwriter rvgsrust rustpy jetxl]
                               [--repeat 1] [--parks 0] [--rebuild]

Evaluates the synthetic dataset of ``--n`` parcels (:mod:`bench.synthetic`, cached in
``bench/data/<n>/``) as ``geo-eval evaluate`` does (flags and renewal blocks on), builds the sheets
of its ranking workbooks with :func:`geo_eval.io.writers.workbook_plan` (at 1M: one workbook per
park, 225 of them) and caches them in ``bench/out/xlsx/<n>/workbooks.pkl``. Then each writer writes
every workbook (all of them, or the first ``--parks``) into ``bench/out/xlsx/<n>/<writer>/``;
the fastest of ``--repeat`` runs is reported. Every writer gets the same frames and writes the same
cells: a bold header row, numbers as numbers, text as text (never a formula), booleans as 是/否,
NaN and ±inf as empty cells, column widths from the text, the header row frozen, an autofilter and
the 说明 sheet:

- ``geo_eval``: what ``write_outputs`` does (:func:`geo_eval.io.writers.write_planned`: rustpy-xlsxwriter
  through :func:`geo_eval.io.xlsx.write_workbook`, two workbooks at a time), since issue 12 with each
  workbook's layout as well (number formats per column, panes frozen at the name column, print set-up),
  which the other candidates leave out;
- ``xlsxwriter``: xlsxwriter's public API in ``constant_memory`` mode, a ``write_number`` or
  ``write_string`` per cell (as the tests' reference for what a user sees; note that xlsxwriter's own
  ``write_string`` passes a text beginning with ``<r>`` and ending with ``</r>`` through unescaped, as
  rich-string markup, so it fails the hostile-text check);
- ``rvgsrust``: rvgsrust-xlsxwriter (rust_xlsxwriter), ``Worksheet.write_dataframe`` of an Arrow table;
- ``rustpy``: rustpy-xlsxwriter (rust_xlsxwriter), ``write_worksheets`` of the same Arrow tables, one
  workbook at a time;
- ``jetxl``: jetxl (its own Rust XML writer), ``write_sheets_arrow`` of the same Arrow tables.

The other Rust-backed packages are optional: ``pip install rvgsrust-xlsxwriter jetxl`` to time them
(rustpy-xlsxwriter is a dependency of geo-eval). Each writer's text escaping is checked first on a
small workbook of hostile texts (``<r><t>oops</r>``, ``=HYPERLINK(…)``, control characters) read back
with openpyxl; a writer that changes a text is timed all the same and the change reported beside its
time. Prints a Markdown table and writes ``bench/out/xlsx/<n>/results.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa

from bench.synthetic import cached_dataset

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / "data"
OUT_DIR = BENCH_DIR / "out" / "xlsx"
HOSTILE = [
    "<r><t>oops</r>",
    '=HYPERLINK("http://x","y")',
    "+1+1",
    "@SUM(A1)",
    "-2+3",
    "a\x07b",
    "_x0041_",
    "  两端空格 ",
    "x & y < z",
]

Workbooks = list[tuple[str, dict[str, pd.DataFrame], dict[str, list[str]], Any]]
"""The planned workbooks: file name, sheets, notes and (``geo_eval`` only) the layout (issue 12)."""
Writer = Callable[[Path, dict[str, pd.DataFrame], dict[str, list[str]]], None]


# --- the sheets ------------------------------------------------------------------------------------


def build_workbooks(n: int, *, rebuild: bool = False) -> tuple[Workbooks, dict[str, float]]:
    """The sheets of every ranking workbook of the ``n``-parcel run and the run's timings (s): its own
    computing (load + validate, ``evaluate``, flags, blocks), building the sheets alone, and the whole
    ``write_workbooks`` of the product (sheets and files, as ``write_outputs`` calls it)."""
    cache = OUT_DIR / str(n) / "workbooks.pkl"
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    if cache.is_file() and not rebuild:
        with cache.open("rb") as fh:
            got: tuple[Workbooks, dict[str, float]] = pickle.load(fh)
        return got
    from geo_eval.io.loaders import load_inputs
    from geo_eval.io.writers import workbook_plan, write_workbooks
    from geo_eval.pipeline import evaluate_inputs
    from geo_eval.rating.scheme import load_scheme

    data = DATA_DIR / str(n)
    cached_dataset(data, n)
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    inputs, _paths, _spec = load_inputs(data)
    scheme = load_scheme("lianyungang")
    seconds["load_validate"] = time.perf_counter() - t
    result = evaluate_inputs(inputs, scheme)  # what geo-eval evaluate computes (the synthetic data has no raster)
    ev, fr, blocks = result.evaluation, result.flag_result, result.renewal
    seconds.update(
        {k: ev.timings[v] for k, v in (("evaluate", "evaluate_total"), ("flags", "flags"), ("blocks", "blocks"))}
    )
    t = time.perf_counter()
    books = list(workbook_plan(ev, fr, blocks))
    seconds["sheets"] = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-", dir=OUT_DIR) as tmp:
        t = time.perf_counter()
        write_workbooks(ev, Path(tmp), fr, blocks)  # sheets built while the previous ones are written
        seconds["write_workbooks"] = time.perf_counter() - t
    cache.parent.mkdir(parents=True, exist_ok=True)
    with cache.open("wb") as fh:
        pickle.dump((books, seconds), fh, protocol=pickle.HIGHEST_PROTOCOL)
    return books, seconds


# --- shared by the candidates ----------------------------------------------------------------------


def _widths(df: pd.DataFrame) -> list[float]:
    from geo_eval.io.xlsx import sheet_cells

    return sheet_cells(df).widths


def _arrow(df: pd.DataFrame) -> pa.Table:
    from geo_eval.io.xlsx import sheet_cells

    cells = sheet_cells(df)
    if cells.numbers:
        raise ValueError("a column with numbers and texts: not in these sheets")
    return cells.table


def write_xlsxwriter(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    """xlsxwriter's public API, ``constant_memory``, one ``write_number``/``write_string`` per cell."""
    import xlsxwriter

    wb = xlsxwriter.Workbook(str(path), {"constant_memory": True, "nan_inf_to_errors": False})
    head = wb.add_format({"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "vcenter"})
    for name, df in sheets.items():
        ws = wb.add_worksheet(name)
        for j, c in enumerate(df.columns):
            ws.write_string(0, j, str(c), head)
        columns = [col.to_numpy(dtype=object) for _, col in df.items()]
        for i in range(len(df)):
            for j, column in enumerate(columns):
                v = column[i]
                if v is None or v is pd.NA or v is pd.NaT:
                    continue
                if isinstance(v, (bool, np.bool_)):
                    ws.write_string(i + 1, j, "是" if v else "否")
                elif isinstance(v, (int, float, np.integer, np.floating)):
                    if math.isfinite(v):
                        ws.write_number(i + 1, j, float(v))
                else:
                    ws.write_string(i + 1, j, str(v))
        for j, w in enumerate(_widths(df)):
            ws.set_column(j, j, w)
        ws.freeze_panes(1, 0)
        if len(df):
            ws.autofilter(0, 0, len(df), max(df.shape[1] - 1, 0))
    for name, lines in notes.items():
        ws = wb.add_worksheet(name)
        ws.set_column(0, 0, 120)
        for i, line in enumerate(lines):
            ws.write_string(i, 0, line)
    wb.close()


def write_rvgsrust(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    """rvgsrust-xlsxwriter: ``write_dataframe`` of each sheet's Arrow table, constant memory."""
    import rvgsrust_xlsxwriter as rv

    wb = rv.Workbook()
    head = wb.add_format().set_bold().set_background_color("#DDEBF7").set_border("thin").set_text_wrap()
    head.set_vertical_align("vcenter")
    for name, df in sheets.items():
        ws = wb.add_worksheet(name, constant_memory=True)
        ws.write_dataframe(0, 0, _arrow(df), header_format=head)
        for j, w in enumerate(_widths(df)):
            ws.set_column_width(j, w)
        ws.freeze_panes(1, 0)
        if len(df):
            ws.autofilter(0, 0, len(df), max(df.shape[1] - 1, 0))
    for name, lines in notes.items():
        ws = wb.add_worksheet(name, constant_memory=True)
        ws.set_column_width(0, 120)
        ws.write_dataframe(0, 0, pa.table({"line": pa.array(lines, pa.string())}), write_header=False)
    wb.close(str(path))


def write_rustpy(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    """rustpy-xlsxwriter: one ``write_worksheets`` call of the Arrow tables, one workbook at a time."""
    import rustpy_xlsxwriter as rp

    head = rp.Format().set_bold().set_background_color("#DDEBF7").set_border("thin").set_text_wrap()
    entries: list[tuple[str, Any]] = [(name, _arrow(df)) for name, df in sheets.items()]
    widths: dict[str, Any] = {name: _widths(df) for name, df in sheets.items()}
    for name, lines in notes.items():
        entries.append((name, pd.DataFrame({lines[0]: lines[1:]})))
        widths[name] = [120.0]
    rp.write_worksheets(
        entries,
        str(path),
        freeze_panes={name: {"row": 1, "col": 0} for name in sheets},
        header_format=dict.fromkeys(sheets, head),
        column_widths=widths,
        autofilter={name: bool(len(df)) for name, df in sheets.items()},
    )


def write_jetxl(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    """jetxl: one ``write_sheets_arrow`` call on two threads (its header style is its own)."""
    import jetxl

    specs: list[dict[str, Any]] = []
    for name, df in sheets.items():
        table = _arrow(df)
        specs.append(
            {
                "data": table,
                "name": name,
                "auto_filter": bool(len(df)),
                "freeze_rows": 1,
                "styled_headers": True,
                "column_widths": dict(zip(table.column_names, _widths(df), strict=True)),
            }
        )
    for name, lines in notes.items():
        specs.append({"data": pa.table({"l": lines}), "name": name, "write_header_row": False})
    jetxl.write_sheets_arrow(specs, str(path), 2)


def write_geo_eval(path: Path, sheets: dict[str, pd.DataFrame], notes: dict[str, list[str]]) -> None:
    from geo_eval.io.xlsx import write_workbook

    write_workbook(path, sheets, notes=notes)


def write_all_geo_eval(books: Workbooks, out: Path) -> None:
    """What ``write_outputs`` does with the planned workbooks (on its threads)."""
    from geo_eval.io.writers import write_planned

    write_planned(books, out)


WRITERS: dict[str, Writer] = {
    "geo_eval": write_geo_eval,  # timed through write_all_geo_eval
    "xlsxwriter": write_xlsxwriter,
    "rvgsrust": write_rvgsrust,
    "rustpy": write_rustpy,
    "jetxl": write_jetxl,
}


# --- checks and timing -----------------------------------------------------------------------------


class WriterFailed(Exception):
    """A writer that cannot write the small workbook of hostile texts."""


def text_problems(writer: Writer) -> list[str]:
    """Texts the writer does not give back exactly (or as text), read with openpyxl."""
    frame = pd.DataFrame({"文本": pd.Series(HOSTILE, dtype="string"), "数值": np.arange(len(HOSTILE), dtype=float)})
    with tempfile.TemporaryDirectory(prefix="bench-xlsx-") as tmp:
        path = Path(tmp) / "hostile.xlsx"
        try:
            writer(path, {"表": frame}, {"说明": ["一", "二"]})
        except (ValueError, TypeError, OSError, KeyError, RuntimeError) as exc:
            raise WriterFailed(f"{type(exc).__name__}: {exc}") from exc
        try:
            wb = openpyxl.load_workbook(path)
        except Exception as exc:  # whatever openpyxl raises, the workbook is broken
            return [f"the workbook does not open ({type(exc).__name__}: {exc})"]
        got = [(c.value, c.data_type) for (c,) in wb["表"].iter_rows(min_row=2, max_col=1)]
    bad = []
    for text, (value, kind) in zip(HOSTILE, got, strict=False):
        shown = value if not isinstance(value, str) else _unescape(value)
        if shown != text or kind != "s":
            bad.append(f"{text!r} → {value!r} ({kind})")
    if len(got) != len(HOSTILE):
        bad.append(f"{len(got)} rows instead of {len(HOSTILE)}")
    return bad


def _unescape(text: str) -> str:
    """openpyxl leaves OOXML's ``_xHHHH_`` escapes in the text: undo them as Excel does."""
    import re

    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m.group(1), 16)), text)


def time_writer(writer: Writer, books: Workbooks, out: Path, repeat: int) -> dict[str, float]:
    best = math.inf
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t = time.perf_counter()
        if writer is write_geo_eval:
            write_all_geo_eval(books, out)
        else:
            for name, sheets, notes, _layout in books:
                path = out / name
                path.parent.mkdir(exist_ok=True)
                writer(path, sheets, notes)
        best = min(best, time.perf_counter() - t)
    size = sum(p.stat().st_size for p in out.rglob("*.xlsx"))
    return {"seconds": best, "megabytes": size / 1e6}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="parcels of the synthetic dataset")
    ap.add_argument("--writers", nargs="+", default=list(WRITERS), choices=list(WRITERS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--parks", type=int, default=0, help="only the first this many workbooks (0: all)")
    ap.add_argument("--rebuild", action="store_true", help="recompute the sheets even when cached")
    args = ap.parse_args(argv)

    t = time.perf_counter()
    books, computing = build_workbooks(args.n, rebuild=args.rebuild)
    prepared = time.perf_counter() - t
    if args.parks:
        books = books[: args.parks]
    rows = sum(len(df) for _, sheets, *_ in books for df in sheets.values())
    cells = sum(df.size for _, sheets, *_ in books for df in sheets.values())
    print(f"{len(books)} workbooks, {rows:,} rows, {cells:,} cells (sheets ready in {prepared:.1f} s)")
    print("run (s): " + ", ".join(f"{k} {v:.2f}" for k, v in computing.items()))
    own = sum(computing.get(k, 0.0) for k in ("evaluate", "flags", "blocks"))
    if "write_workbooks" in computing:
        print(f"write_workbooks {computing['write_workbooks']:.2f} s against evaluate + flags + blocks {own:.2f} s")
    results: dict[str, Any] = {}
    for name in args.writers:
        try:
            bad = text_problems(WRITERS[name])
        except ImportError as exc:
            results[name] = {"skipped": f"not installed ({exc.name})"}
            continue
        except WriterFailed as exc:
            results[name] = {"skipped": f"fails: {exc}"}
            continue
        results[name] = time_writer(WRITERS[name], books, OUT_DIR / str(args.n) / name, args.repeat)
        results[name]["changes_texts"] = bad
        print(f"{name}: {results[name]['seconds']:.2f} s", flush=True)
    print()
    print(f"| writer | seconds (best of {args.repeat}) | MB written | texts read back with openpyxl |")
    print("|---|---:|---:|---|")
    for name, r in results.items():
        if "skipped" in r:
            print(f"| {name} | – | | {r['skipped']} |")
        else:
            texts = "changed: " + "; ".join(r["changes_texts"]) if r["changes_texts"] else "exact"
            print(f"| {name} | {r['seconds']:.2f} | {r['megabytes']:.1f} | {texts} |")
    record = {
        "n": args.n,
        "workbooks": len(books),
        "rows": rows,
        "cells": cells,
        "computing_s": computing,
        "results": results,
        "python": platform.python_version(),
    }
    (OUT_DIR / str(args.n)).mkdir(parents=True, exist_ok=True)
    (OUT_DIR / str(args.n) / "results.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

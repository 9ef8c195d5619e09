"""``geo-eval runs``: the registry of evaluation runs the service serves (under ``GEO_EVAL_DATA_DIR``, or in the
PostgreSQL database of ``--db`` / ``GEO_EVAL_DATABASE_URL``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from geo_eval.cli.options import DatabaseOpt, out, store_label, with_store
from geo_eval.io.runtiles import register_tiles, store_run_tiles
from geo_eval.maps.archive import TileArchiveError
from geo_eval.publication.status import RUN_STATUS_LABELS
from geo_eval.storage import DEFAULT_DATA_DIR, RunRecord, Store, run_record_from_out_dir
from geo_eval.storage.runs import out_dir_state

DataDirOpt = Annotated[
    Path,
    typer.Option("--data-dir", envvar="GEO_EVAL_DATA_DIR", help="服务的数据目录（环境变量 GEO_EVAL_DATA_DIR）"),
]

SupersedeOpt = Annotated[
    bool,
    typer.Option("--supersede", help="该年度已正式发布时，以本批次取代之（须用 --reason 说明理由；原批次仍可查阅）"),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="取代已发布批次的理由")]

CUTTING = "正在切割地图瓦片（每 10 万宗地约半分钟，100 万宗地约 4 分钟）……"
PREPARING = "正在为服务准备列式副本（100 万宗地约 1 分钟）……"

app = typer.Typer(help="评价批次：登记评价输出目录，供服务使用", no_args_is_help=True)


@app.command("add", help="登记一次评价的输出目录（geo-eval evaluate 的 --out），成为最新批次")
def add(
    out_dir: Annotated[Path, typer.Argument(help="评价输出目录（含 manifest.json）", file_okay=False)],
    supersede: SupersedeOpt = False,
    reason: ReasonOpt = "",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
    tiles: Annotated[
        bool,
        typer.Option(
            "--tiles/--no-tiles",
            help="登记后预先切割地图瓦片，并在数据目录中生成服务用的列式副本（默认；用 --db 时副本由各服务器首次读取时生成）",
        ),
    ] = True,
) -> None:
    """Register OUT_DIR as the latest run, then cut its map tiles into OUT_DIR/tiles.mbtiles and write the
    service's columnar copy of it under the data directory."""
    from api.rundata import prepare_copy

    def register(store: Store) -> RunRecord:
        found = run_record_from_out_dir(out_dir)
        rec = store.add_run(replace(found, supersede=supersede, supersede_reason=reason), actor="cli")
        if tiles:  # once registered (a refused run is not cut); the service picks the archive up when it appears
            out.print(CUTTING, markup=False)
            out.print(register_tiles(out_dir, rec.run_id)[1], markup=False)
            if not db:  # with a database each machine's service writes its own copy when it first reads the run
                out.print(PREPARING, markup=False)
                out.print(prepare_copy(data_dir, rec)[1], markup=False)
        return rec

    rec = with_store(data_dir, db, register)
    out.print(
        f"已登记评价批次 {rec.run_id}：{rec.year} 年度，{rec.scheme_title}，{rec.counts.get('enterprises')} 家企业；"
        f"{rec.status_line()}"
    )
    carried = rec.carryover.message(rec.run_id) if rec.carryover else ""
    if carried:
        out.print(carried, markup=False)
    typer.echo(rec.run_id)


@app.command("list", help="列出已登记的评价批次（最新的在前）")
def list_runs(data_dir: DataDirOpt = DEFAULT_DATA_DIR, db: DatabaseOpt = None) -> None:
    """List the registered runs."""
    runs = with_store(data_dir, db, lambda s: s.list_runs())
    t = Table(title=f"评价批次（{store_label(data_dir, db)}）")
    for c in ("批次", "年度", "版本", "状态", "方案", "企业", "宗地", "标记", "登记时间", "输出目录", "输出目录状态"):
        t.add_column(c)
    for r in runs:
        n = r.counts
        t.add_row(
            r.run_id,
            str(r.year),
            f"第 {r.version} 版",
            RUN_STATUS_LABELS.get(r.status, r.status)
            + (f"（{r.publicity_start} 至 {r.publicity_end}）" if r.status == "publicity" else "")
            + ("，已被取代" if r.superseded_by else ""),
            r.scheme,
            str(n.get("enterprises", "")),
            str(n.get("parcels", "")),
            str(n.get("flags", "")),
            r.registered_at,
            r.out_dir,
            out_dir_state(r),
        )
    out.print(t)


@app.command(
    "status",
    help="改变某年度评价结果的发布状态：--to publicity --start 2026-03-01 --end 2026-03-10（公示），--to final（正式发布）",
)
def status(
    year: Annotated[int, typer.Argument(help="评价年度（改变该年度当前批次，即最新登记的批次）")],
    to: Annotated[str, typer.Option("--to", help="publicity（公示中）或 final（已发布）")],
    start: Annotated[str, typer.Option("--start", help="公示开始日期（2026-03-01）")] = "",
    end: Annotated[str, typer.Option("--end", help="公示结束日期（2026-03-10）")] = "",
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """Move YEAR's current run to publicity or final."""
    rec = with_store(data_dir, db, lambda s: s.set_run_status(year, to, start=start, end=end, actor="cli"))
    out.print(f"评价批次 {rec.run_id}：{rec.status_line()}", markup=False)


@app.command(
    "tiles",
    help="为已登记的评价批次（重新）切割地图瓦片（OUT_DIR/tiles.mbtiles；存于数据库的批次同时存入数据库）。"
    "geo-eval runs add 和 evaluate --db 已自动切割，升级 geo-eval 后对此前登记的批次运行一次即可",
)
def tiles(
    out_dir: Annotated[Path, typer.Argument(help="评价输出目录（含 manifest.json）", file_okay=False)],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """Cut (again) the tile archive of a registered run, and store it in the database if the run is stored there."""

    def cut(store: Store) -> str:
        found = run_record_from_out_dir(out_dir)
        record = store.get_run(found.run_id)  # registered, else NotFoundError names it
        out.print(CUTTING, markup=False)
        if record.stored and hasattr(store, "transaction"):
            ok, message = store_run_tiles(store, record, out_dir)
        else:
            info, message = register_tiles(out_dir, record.run_id)
            ok = info is not None
        if not ok:
            raise TileArchiveError(message)
        return message

    out.print(with_store(data_dir, db, cut), markup=False)

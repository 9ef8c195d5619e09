"""``geo-eval objections``: the objections of a year in publicity — list, record, export the corrections."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import pyogrio
import typer
from rich.table import Table

from geo_eval.cli.options import DatabaseOpt, err, out, with_store
from geo_eval.cli.runs import DataDirOpt
from geo_eval.io import csvout
from geo_eval.publication.exports import corrections_table
from geo_eval.publication.objections import Objection, clean_value, find_subject
from geo_eval.storage import DEFAULT_DATA_DIR, RunFilesError, RunRecord, Store

app = typer.Typer(help="公示期的异议：列出、登记，导出采纳异议的更正表", no_args_is_help=True)

PARCEL_COLUMNS = ["parcel_id", "holder_uscc", "holder_name", "park", "registered_area_m2", "users"]


@app.command("list", help="列出某年度的异议（最早的在前）")
def list_objections(
    year: Annotated[int, typer.Argument(help="评价年度")],
    status: Annotated[
        str | None, typer.Option("--status", help="open（待处理）、accepted（采纳）、rejected（不采纳）")
    ] = None,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """List the objections of YEAR."""
    found = with_store(data_dir, db, lambda s: s.list_objections(year=year, status=status))
    t = Table(title=f"{year} 年度异议（{len(found)} 条）")
    for c in ("编号", "园区", "企业", "宗地", "事项", "公示值", "主张值", "状态", "更正值", "登记人", "处理人"):
        t.add_column(c)
    for o in found:
        p = o.public()
        t.add_row(str(o.id), o.park, o.enterprise, o.parcel_id, p["field_label"], o.run_value, o.claimed_value,
                  p["status_label"], o.corrected_value, o.created_by, o.decided_by)  # fmt: skip
    out.print(t)


@app.command("add", help="登记一条异议（管理员代为登记书面异议）：该年度当前批次须为公示中")
def add(
    year: Annotated[int, typer.Argument(help="评价年度")],
    field: Annotated[
        str, typer.Option("--field", help="异议事项：tax、sales、registered_area_m2 等（与 corrections.csv 相同）")
    ],
    claimed: Annotated[str, typer.Option("--claimed", help="企业主张的值")],
    reason: Annotated[str, typer.Option("--reason", help="异议理由")],
    uscc: Annotated[str, typer.Option("--uscc", help="企业的统一社会信用代码")] = "",
    parcel_id: Annotated[str, typer.Option("--parcel", help="宗地代码（宗地数据的异议）")] = "",
    by: Annotated[str, typer.Option("--by", help="登记人（记入审计记录）")] = "cli",
    if_absent: Annotated[
        bool,
        typer.Option(
            "--if-absent", help="该年度已有同一企业／宗地、同一事项、同一主张值和理由的异议时不再登记（脚本可重复运行）"
        ),
    ] = False,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """Record an objection to a figure of YEAR's current run."""

    def record(store: Store) -> tuple[Objection, bool]:
        run = store.latest_run(year)
        enterprises, parcels = run_tables(run)
        s = find_subject(enterprises, parcels, uscc=uscc, parcel_id=parcel_id, field=field)
        draft = Objection(
            0, year, run.run_id, s.park, s.uscc, s.parcel_id, s.enterprise, field, s.run_value, claimed, reason
        )
        same = [o for o in store.list_objections(year=year) if _same(o, draft)] if if_absent else []
        if same:
            return same[0], False
        return store.add_objection(draft, run_id=run.run_id, actor=by), True

    o, new = with_store(data_dir, db, record)
    if not new:
        label = o.public()["field_label"]
        out.print(f"异议 {o.id} 已存在（{o.enterprise or o.parcel_id} 的{label}），未重复登记", markup=False)
        typer.echo(o.id)
        return
    out.print(
        f"已登记异议 {o.id}：{o.enterprise or o.parcel_id} 的{o.public()['field_label']}，公示值 {o.run_value or '（空）'}，主张值 {o.claimed_value}",
        markup=False,
    )
    typer.echo(o.id)


def _same(old: Objection, new: Objection) -> bool:
    """Whether ``old`` records what ``new`` would (the claim as the store writes it)."""
    keys = (new.uscc, new.parcel_id, new.field, clean_value(new.field, new.claimed_value, "主张值"), new.reason.strip())
    return (old.uscc, old.parcel_id, old.field, old.claimed_value, old.reason) == keys


def run_tables(run: RunRecord) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The enterprises and parcels (attributes only) of a run's OUT_DIR."""
    folder = Path(run.out_dir)
    try:
        enterprises = pd.read_csv(
            folder / "enterprises.csv",
            encoding="utf-8-sig",
            dtype={"uscc": str, "name": str, "park": str, "exempt_reason": str},
        )
        parcels = pyogrio.read_dataframe(
            folder / "parcels.gpkg", layer="parcels", columns=PARCEL_COLUMNS, read_geometry=False
        )
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        raise RunFilesError(f"读取评价批次 {run.run_id} 的输出目录 {folder} 失败：{exc}") from exc
    return enterprises, parcels


@app.command("export", help="导出某年度采纳异议的更正表 corrections.csv（供 geo-eval evaluate --corrections）")
def export(
    year: Annotated[int, typer.Argument(help="评价年度")],
    out_path: Annotated[Path, typer.Option("--out", help="输出文件（corrections.csv）", dir_okay=False)],
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
) -> None:
    """Write the accepted objections of YEAR as corrections.csv."""
    accepted = with_store(data_dir, db, lambda s: s.list_objections(year=year, status="accepted"))
    table = corrections_table(accepted)
    try:
        out_path.write_bytes(csvout.csv_bytes(table))
    except OSError as exc:
        err.print(f"[red]错误：无法写入 {out_path}：{exc}[/]")
        raise typer.Exit(2) from None
    out.print(f"已导出 {year} 年度采纳的异议 {len(table)} 条：{out_path}", markup=False)

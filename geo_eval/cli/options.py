"""Options shared by several commands, and console output helpers."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import pandas as pd
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from geo_eval.errors import GeoEvalError
from geo_eval.inputs.problems import FATAL

if TYPE_CHECKING:
    from geo_eval.storage import Store

T = TypeVar("T")

DatasetDir = Annotated[
    Path, typer.Argument(help="数据集目录（含 dataset.toml）", exists=True, file_okay=False, dir_okay=True)
]
SchemeOpt = Annotated[str, typer.Option("--scheme", help="评价方案：内置方案名（见 geo-eval schemes）或 TOML 文件路径")]
DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="GEO_EVAL_DATABASE_URL",
        show_default=False,
        help="PostgreSQL/PostGIS 数据库地址 postgresql://用户[:密码]@主机:5432/库名（环境变量 GEO_EVAL_DATABASE_URL，"
        "须先运行 geo-eval db init）；不指定则使用数据目录中的 SQLite 数据库",
    ),
]

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

MAX_LISTED = 20


def store_label(data_dir: Path, db: str | None) -> str:
    """Where a command's store is, for titles: the redacted database URL, else the data directory."""
    if db:
        from geo_eval.db.connection import redact_url

        return redact_url(db)
    return str(data_dir)


def with_store(data_dir: Path, db: str | None, action: Callable[[Store], T]) -> T:
    """``action`` on the store of ``--data-dir`` / ``--db`` (closed afterwards); a :class:`GeoEvalError`
    is printed in Chinese and the command exits with code 2."""
    from geo_eval.storage import open_store

    try:
        store = open_store(data_dir, database_url=db)
        try:
            return action(store)
        finally:
            store.close()
    except GeoEvalError as exc:
        err.print(f"[red]错误：{exc}[/]")
        raise typer.Exit(2) from None


def print_fatal(problems: pd.DataFrame, *, dataset: Path) -> None:
    """A short list of fatal problems on stderr."""
    fatal = problems.loc[problems["severity"] == FATAL]
    err.print(f"[bold red]数据有 {len(fatal)} 个致命问题，评价未进行：[/]")
    for r in fatal.head(MAX_LISTED).itertuples():
        err.print(f"  - {escape(problem_line(r))}")
    if len(fatal) > MAX_LISTED:
        err.print(
            f"  …… 另有 {len(fatal) - MAX_LISTED} 个，完整清单：geo-eval validate {dataset} --report 问题清单.csv"
        )


def problem_line(r: Any) -> str:
    """One problem of the report (a row of :meth:`Problems.frame`, from ``itertuples``) as a line:
    where, field, problem, value, what to do."""
    where = f"{r.file} 第{r.row}行" if str(r.row) else str(r.file)
    where += f" [{r.field}]" if str(r.field) else ""
    shown = f"（值：{r.value}）" if str(r.value) else ""
    return f"{where}：{r.problem}{shown}。{r.action}"


def grade_table(counts: dict[str, dict[str, int]], title: str) -> Table:
    """Counts per grade per unit as a rich table."""
    t = Table(title=title)
    t.add_column("县区/单元")
    for g in ("A", "B", "C", "D", "T"):
        t.add_column(f"{g}类", justify="right")
    for unit, c in counts.items():
        t.add_row(unit, *(str(c[g]) for g in ("A", "B", "C", "D", "T")))
    return t

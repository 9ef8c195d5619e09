"""The ``geo-eval`` command line: a thin layer over the library (one module per command)."""

from __future__ import annotations

import logging

import typer

from geo_eval.cli import db as _db
from geo_eval.cli import evaluate as _evaluate
from geo_eval.cli import objections as _objections
from geo_eval.cli import report as _report
from geo_eval.cli import runs as _runs
from geo_eval.cli import schemes as _schemes
from geo_eval.cli import serve as _serve
from geo_eval.cli import users as _users
from geo_eval.cli import validate as _validate

app = typer.Typer(
    name="geo-eval",
    help="亩均论英雄：工业用地亩均效益综合评价（geo-eval）",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("evaluate", help="评价一个年度的数据集，输出排名表、宗地图层和问题清单")(_evaluate.evaluate)
app.command("report", help="写出年度评价报告（HTML，可打印为 PDF）")(_report.report)
app.command("validate", help="只检查数据集，列出全部问题，不输出评价结果")(_validate.validate)
app.command("schemes", help="列出内置评价方案")(_schemes.schemes)
app.command(
    "serve",
    help="启动网页服务（地图、排名下载、标记复核），数据目录为 GEO_EVAL_DATA_DIR，数据库为 --db / GEO_EVAL_DATABASE_URL",
)(_serve.serve)
app.add_typer(_runs.app, name="runs", help="评价批次：登记评价输出目录，供服务使用")
app.add_typer(_users.app, name="users", help="用户与令牌")
app.add_typer(_objections.app, name="objections", help="公示期的异议：列出、登记，导出采纳异议的更正表 corrections.csv")
app.add_typer(_db.app, name="db", help="PostgreSQL/PostGIS 数据库：创建、升级和查看 geo-eval 的数据库结构")


def main() -> None:
    """Entry point of the ``geo-eval`` script."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()

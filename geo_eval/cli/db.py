"""``geo-eval db``: prepare a PostgreSQL/PostGIS database for geo-eval (``init``, ``upgrade``, ``status``).

The service and ``geo-eval runs`` / ``geo-eval users`` use such a database with ``--db`` or
``GEO_EVAL_DATABASE_URL``; they never create or change its structure themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape

from geo_eval.cli.options import err, out
from geo_eval.errors import GeoEvalError

DbUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="GEO_EVAL_DATABASE_URL",
        show_default=False,
        help="PostgreSQL/PostGIS 数据库地址 postgresql://用户[:密码]@主机:5432/库名（环境变量 GEO_EVAL_DATABASE_URL）",
    ),
]

app = typer.Typer(help="PostgreSQL/PostGIS 数据库：创建、升级和查看 geo-eval 的数据库结构", no_args_is_help=True)


def _fail(message: str) -> NoReturn:
    err.print(f"[red]错误：{escape(message)}[/]")
    raise typer.Exit(2)


def _url(db: str | None) -> str:
    if not db:
        _fail("请用 --db 或环境变量 GEO_EVAL_DATABASE_URL 指定数据库（postgresql://用户@主机:5432/库名）")
    return db


@app.command(
    "init", help="在数据库中创建 geo-eval 的数据库结构 geo_eval（缺少时先创建 PostGIS 扩展）；已是最新版本则不做改动"
)
def init(db: DbUrlOpt = None) -> None:
    """Create the postgis extension, the geo_eval schema and its tables."""
    from geo_eval.db.schema import init_schema

    try:
        result = init_schema(_url(db))
    except GeoEvalError as exc:
        _fail(str(exc))
    database, version = escape(result["database"]), result["schema_version"]
    if result["postgis_created"]:
        out.print(f"已在数据库 {database} 中创建 PostGIS 扩展（版本 {result['postgis_version']}）")
    if result["action"] == "created":
        out.print(f"已创建数据库结构 geo_eval（版本 {version}）：{database}")
    else:
        out.print(f"数据库结构 geo_eval 已是最新版本（版本 {version}），未做改动：{database}")


@app.command("upgrade", help="把数据库结构 geo_eval 升级到本程序的版本（一个事务，失败则不做任何改动）")
def upgrade(db: DbUrlOpt = None) -> None:
    """Apply the missing migrations."""
    from geo_eval.db.schema import upgrade_schema

    try:
        result = upgrade_schema(_url(db))
    except GeoEvalError as exc:
        _fail(str(exc))
    database, version = escape(result["database"]), result["schema_version"]
    if result["action"] == "upgraded":
        out.print(f"已将数据库结构 geo_eval 从版本 {result['from_version']} 升级到版本 {version}：{database}")
    else:
        out.print(f"数据库结构 geo_eval 已是最新版本（版本 {version}），未做改动：{database}")


@app.command("status", help="显示数据库、PostGIS 版本和数据库结构版本；结构缺失或版本不符时退出码为 2")
def status(db: DbUrlOpt = None) -> None:
    """Show the database's versions; exit 2 unless the schema is what this tool needs."""
    from geo_eval.db.connection import connect, redact_url
    from geo_eval.db.schema import schema_status

    url = _url(db)
    try:
        with connect(url, autocommit=True) as conn:
            st = schema_status(conn, database=redact_url(url))
    except GeoEvalError as exc:
        _fail(str(exc))
    version = st["schema_version"]
    out.print(f"数据库：{escape(st['database'])}")
    out.print(f"PostgreSQL：{escape(str(st['postgresql_version']))}")
    out.print(f"PostGIS：{escape(st['postgis_version']) if st['postgis_version'] else '未安装'}")
    shown = f"版本 {version}" if version else "未创建"
    out.print(f"数据库结构 geo_eval：{shown}（本程序需要版本 {st['expected_schema_version']}）")
    if st["problem"]:
        _fail(st["problem"])
    out.print("状态：正常")


@app.command(
    "import-parcels",
    help="把宗地图层文件（GeoPackage、GeoJSON、Shapefile）导入数据库的一张新表（COPY 批量写入，带空间索引），"
    "供 dataset.toml 的 [parcels] db / table 读取",
)
def import_parcels(
    path: Annotated[Path, typer.Argument(help="宗地图层文件", exists=True, dir_okay=False)],
    table: Annotated[str, typer.Option("--table", help="目标表名（schema.table 或 table）")],
    db: DbUrlOpt = None,
    layer: Annotated[str | None, typer.Option("--layer", help="GeoPackage 中的图层名")] = None,
    replace: Annotated[bool, typer.Option("--replace", help="表已存在时替换")] = False,
) -> None:
    """Load a parcel file into a PostGIS table."""
    from geo_eval.db.connection import redact_url
    from geo_eval.db.parcels import import_parcels as load

    url = _url(db)
    try:
        n = load(url, path, table, layer=layer, replace=replace)
    except GeoEvalError as exc:
        _fail(str(exc))
    out.print(f"已导入 {n} 宗地到 {escape(redact_url(url))} 表 {escape(table)}")

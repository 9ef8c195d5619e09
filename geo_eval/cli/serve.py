"""``geo-eval serve``: the web service (``api/``) over the runs and reviews under ``GEO_EVAL_DATA_DIR`` (or in
the PostgreSQL database of ``--db`` / ``GEO_EVAL_DATABASE_URL``).

The library never imports FastAPI: this command checks the settings (pydantic-settings only) and hands
``api.main:create_app_from_env`` to uvicorn by name, with the timeouts and limits of
:func:`api.server.uvicorn_options` (request headers within ``GEO_EVAL_HEADER_TIMEOUT_S``).

``--workers N`` (``GEO_EVAL_WORKERS``) runs N worker processes with uvicorn's own multi-process mode on
one listening socket; each worker builds its own application from the environment, which this command
completes first (:func:`api.server.worker_environment`: the one session key of all workers, also in demo
mode). What the workers share is in the store; what each keeps in memory is a cache (README,
“多进程与多台服务器”).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from geo_eval.cli.options import DatabaseOpt, err, out, store_label
from geo_eval.cli.runs import DataDirOpt
from geo_eval.errors import GeoEvalError
from geo_eval.storage import DEFAULT_DATA_DIR, open_store

APP_FACTORY = "api.main:create_app_from_env"


def serve(
    host: Annotated[str, typer.Option("--host", help="监听地址")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="端口", min=1, max=65535)] = 8000,
    data_dir: DataDirOpt = DEFAULT_DATA_DIR,
    db: DatabaseOpt = None,
    log_level: Annotated[str, typer.Option("--log-level", help="uvicorn 日志级别")] = "info",
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            help="工作进程数（多个进程共用同一存储；缓存各进程独立）",
            min=1,
            envvar="GEO_EVAL_WORKERS",
        ),
    ] = 1,
) -> None:
    """Serve the registered runs over HTTP until Ctrl-C."""
    from pydantic import ValidationError

    from api.settings import Settings

    os.environ["GEO_EVAL_DATA_DIR"] = str(data_dir)
    os.environ["GEO_EVAL_WORKERS"] = str(workers)
    if db:  # the application factory reads the settings from the environment
        os.environ["GEO_EVAL_DATABASE_URL"] = db
    try:
        settings = Settings()
    except ValidationError as exc:
        for e in exc.errors():
            err.print(f"[red]错误：{e['msg'].removeprefix('Value error, ')}[/]")
        raise typer.Exit(2) from None
    try:
        store = open_store(settings.data_dir, database_url=settings.database())
        runs = store.list_runs()
        store.close()
    except GeoEvalError as exc:
        err.print(f"[red]错误：{exc}[/]")
        raise typer.Exit(2) from None
    if not runs:
        err.print("[yellow]注意：还没有登记评价批次（geo-eval runs add OUT_DIR），接口将返回 404。[/]")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    mode = "（演示模式）" if settings.demo else ""
    where = f"  数据库：{store_label(settings.data_dir, url)}" if (url := settings.database()) else ""
    procs = f"  工作进程：{workers} 个" if workers > 1 else ""
    out.print(f"服务地址{mode}：http://{shown}:{port}/  数据目录：{settings.data_dir}{where}{procs}  （Ctrl-C 停止）")

    import uvicorn

    from api.server import uvicorn_options, worker_environment

    if workers > 1:  # the workers read their settings from the environment they inherit
        os.environ.update(worker_environment(settings, workers))
    options = uvicorn_options(settings, workers=workers)
    uvicorn.run(APP_FACTORY, factory=True, host=host, port=port, log_level=log_level, **options)

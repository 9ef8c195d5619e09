"""Service settings from the environment (prefix ``GEO_EVAL_``), validated once by ``create_app``.

========================  ===========================================================================
``GEO_EVAL_DATA_DIR``     where the database (users, run registry, reviews, audit) and the runs
                          started through the API live (default ``data``)
``GEO_EVAL_DATABASE_URL`` a PostgreSQL/PostGIS database (``postgresql://user[:password]@host:5432/db``,
                          prepared with ``geo-eval db init``) that then holds the users, run registry,
                          reviews and audit instead of the SQLite file in the data directory; the
                          password never appears in logs or messages
``GEO_EVAL_SECRET_KEY``   signs the browser session cookies; at least 32 characters and not a
                          placeholder, or the service refuses to start (except in demo mode)
``GEO_EVAL_DEMO``         demo mode: a placeholder secret is replaced by a random one per process
                          (``geo-eval serve --workers N`` makes it once and gives it to every worker)
``GEO_EVAL_COOKIE_SECURE`` send the session cookie only over HTTPS (default true; browsers accept
                          secure cookies from http://localhost and http://127.0.0.1 too)
``GEO_EVAL_TIANDITU_KEY`` 天地图 key for the maps' optional 天地图 basemap (``?basemap=tianditu``)
``GEO_EVAL_MAP_TILE_THRESHOLD`` above this many parcels a map draws them from vector tiles
                          (default ``geo_eval.maps.TILE_THRESHOLD``, 5000)
``GEO_EVAL_REVIEW_POLL_S`` how often a map page asks for review states (seconds, default 10, at most 30)
``GEO_EVAL_MAP_ATTRIBUTION`` the maps' attribution line (the bureau that publishes the data)
``GEO_EVAL_PARKS_LAYER``  park outlines for the maps (a GeoPackage with a ``park``/``园区`` column);
                          default: a ``parks.gpkg`` beside the run's dataset or its layers, else the
                          union of each park's parcels
``GEO_EVAL_DATASETS_DIR`` the only directory whose datasets (and scheme TOML files) ``POST /api/runs``
                          evaluates; paths outside it, ``..`` and symbolic links leading out are refused
                          (403). Unset: the service refuses to evaluate, except in demo mode
``GEO_EVAL_MAX_BODY_BYTES`` the largest request body accepted (default 1048576, 1 MiB); a larger one is
                          refused with 413 before it is parsed (``api.guards.BodyLimit``)
``GEO_EVAL_HEADER_TIMEOUT_S`` ``geo-eval serve`` closes a connection that has not sent a request's complete
                          headers within this many seconds (default 10; ``api.server``)
``GEO_EVAL_WORKERS``      worker processes of ``geo-eval serve`` (default 1, as ``--workers``); with more
                          than one, every answer names its worker in ``X-Geo-Eval-Worker`` (its pid)
``GEO_EVAL_LOGIN_MAX_FAILURES`` failed sign-ins (``POST /login``) per user name and per client address
                          within ``GEO_EVAL_LOGIN_WINDOW_S`` (default 5 in 300 s) that lock that name or
                          address for ``GEO_EVAL_LOGIN_LOCKOUT_S`` (default 300 s): 429 with the time to wait
========================  ===========================================================================
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from geo_eval.db.connection import INVALID_URL, is_database_url
from geo_eval.storage import DEFAULT_DATA_DIR

log = logging.getLogger(__name__)

PLACEHOLDER_SECRETS = frozenset(
    {
        "",
        "changethis",
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "secret-key",
        "placeholder",
        "demo",
        "test",
        "password",
        "xxx",
        "todo",
        "please-change-me",
    }
)
MIN_SECRET_LENGTH = 32


class InsecureSecretError(ValueError):
    """The secret key is empty, a placeholder or too short outside demo mode."""


class Settings(BaseSettings):
    """Everything the service reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="GEO_EVAL_", hide_input_in_errors=True, extra="ignore")

    data_dir: Path = Field(default=DEFAULT_DATA_DIR, description="数据目录：数据库与通过接口运行的评价结果")
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL/PostGIS 数据库地址（postgresql://用户[:密码]@主机:5432/库名，须先运行 geo-eval db init）；"
        "设置后用户、评价批次登记、复核与审计记录存于该数据库，而不是数据目录中的 SQLite 文件",
    )
    secret_key: SecretStr = Field(default=SecretStr("changethis"), description="会话签名密钥（至少 32 个字符）")
    demo: bool = Field(default=False, description="演示模式：允许占位密钥（每次启动随机生成）")
    datasets_dir: Path | None = Field(
        default=None,
        description="POST /api/runs 只评价此目录下的数据集（及方案文件）；未设置时拒绝评价（演示模式除外）",
    )
    max_body_bytes: int = Field(default=1024 * 1024, ge=1, description="请求内容的最大字节数（超过返回 413）")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="geo-eval serve：连接须在此秒数内发完请求头，否则断开"
    )
    login_max_failures: int = Field(default=5, ge=1, description="同一用户名或同一地址在时间窗内允许的登录失败次数")
    login_window_s: int = Field(default=300, gt=0, description="统计登录失败次数的时间窗（秒）")
    login_lockout_s: int = Field(default=300, gt=0, description="登录失败过多后锁定的时间（秒）")
    workers: int = Field(
        default=1, ge=1, description="geo-eval serve 的工作进程数（多于 1 个时每个回答带 X-Geo-Eval-Worker 头）"
    )
    worker_rss_mb: int = Field(
        default=900,
        ge=0,
        description="工作进程常驻内存超过此值（MB）时，交还已映射的运行副本和瓦片档案的内存页（这些页仍在系统页缓存中，"
        "各进程共用，再次读取无需读盘）；0 表示不交还",
    )
    session_max_age_s: int = Field(default=12 * 3600, gt=0, description="浏览器会话有效期（秒）")
    cookie_secure: bool = True
    run_cache_size: int = Field(default=4, ge=1, description="内存中缓存的评价批次数")
    page_limit: int = Field(default=1000, ge=1, description="GeoJSON 每页默认要素数")
    max_page_limit: int = Field(default=10000, ge=1, description="GeoJSON 每页最多要素数")
    tianditu_key: str | None = Field(default=None, description="天地图密钥（地图可选天地图底图）")
    map_tile_threshold: int | None = Field(
        default=None, ge=0, description="地块数超过此值时地图以矢量瓦片显示（默认 5000）"
    )
    map_province_parcels: int = Field(
        default=100_000,
        ge=0,
        description="地图的地块数超过此值时（省级总览）按大地图处理：复核清单由服务分页计数，连片区块按视野加载，"
        "页面不含地块几何",
    )
    parks_layer: Path | None = Field(default=None, description="园区边界图层（GeoPackage，含“园区”或 park 字段）")
    review_poll_s: float = Field(
        default=10.0, gt=0, le=30, description="地图页面询问复核状态的间隔（秒；其他复核人员的决定最迟在此间隔后显示）"
    )
    map_attribution: str = Field(
        default="宗地数据：自然资源局 · 评价：工业和信息化局",
        max_length=200,
        description="地图右下角的数据来源说明（如“宗地数据：连云港市自然资源和规划局”）",
    )

    @field_validator("database_url", mode="after")
    @classmethod
    def _check_database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None  # GEO_EVAL_DATABASE_URL= (empty) means the SQLite default
        if not is_database_url(value.get_secret_value()):
            raise ValueError(f"GEO_EVAL_DATABASE_URL {INVALID_URL}")
        return value

    def database(self) -> str | None:
        """The database URL in clear (for :func:`~geo_eval.storage.open_store`), or None for SQLite."""
        return None if self.database_url is None else self.database_url.get_secret_value().strip()

    @model_validator(mode="after")
    def _refuse_placeholder_secret(self) -> Self:
        value = self.secret_key.get_secret_value()
        weak = value.strip().lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH
        if weak and not self.demo:
            raise InsecureSecretError(
                f"GEO_EVAL_SECRET_KEY 为空、是占位值或短于 {MIN_SECRET_LENGTH} 个字符，服务拒绝启动。"
                "请设置随机密钥（例如 python -c 'import secrets; print(secrets.token_urlsafe(48))'），"
                "或以演示模式运行（GEO_EVAL_DEMO=1）"
            )
        if weak:
            log.warning("demo mode: GEO_EVAL_SECRET_KEY is a placeholder; using a random key for this process")
            self.secret_key = SecretStr(secrets.token_urlsafe(48))
        return self

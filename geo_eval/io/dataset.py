"""``dataset.toml``: which files hold one year's parcels, enterprises and leases."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator
from pyproj import CRS
from pyproj.exceptions import CRSError

from geo_eval.errors import DatasetError, InputFileError


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParcelSource(_Spec):
    """Where the cadastral parcels are: a file (``path``) or a PostGIS table or query (``db`` with
    ``table`` or ``sql``)."""

    path: str | None = None
    db: str | None = None
    """A PostgreSQL URL (``postgresql://用户@主机:5432/库名``) holding the parcels."""
    table: str | None = None
    """With ``db``: the parcel table, ``schema.table`` or ``table``."""
    sql: str | None = None
    """With ``db``: a query returning the parcels (one geometry column)."""
    geometry: str | None = None
    """With ``db``: the geometry column, when the table or query has several."""
    layer: str | None = None
    crs: str | None = None
    """The layer's CRS (e.g. ``"EPSG:4528"``): used when the file has none, and overrides a wrong one."""
    encoding: str | None = None
    """Attribute encoding of a Shapefile without ``.cpg`` (e.g. ``"GBK"``); detected when absent."""

    @field_validator("crs")
    @classmethod
    def _known_crs(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                CRS.from_user_input(v)
            except CRSError:
                raise ValueError(
                    f'无法识别的坐标系 {v!r}（应为 EPSG 代码，如 "EPSG:4528"，或 PROJ/WKT 定义）'
                ) from None
        return v

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.path is None) == (self.db is None):
            raise ValueError("须且只须给出 path（宗地文件）或 db（PostGIS 数据库地址）之一")
        if self.db is not None:
            if not self.db.startswith(("postgresql://", "postgres://")):
                raise ValueError("db 须是 postgresql:// 开头的数据库地址")
            if (self.table is None) == (self.sql is None):
                raise ValueError("使用 db 时须且只须给出 table（宗地表）或 sql（查询语句）之一")
        elif self.table is not None or self.sql is not None or self.geometry is not None:
            raise ValueError("table、sql、geometry 只用于 db（PostGIS）来源")
        return self


class TableSource(_Spec):
    """Where a table (xlsx or csv) is."""

    path: str
    sheet: str | None = None
    encoding: str | None = None


class LayerSources(_Spec):
    """Context layers for the land flags (paths relative to the dataset directory)."""

    builtup: str | None = None
    """A built-up raster (1 = built-up) for the suspected-idle rule, e.g. ``../../layers/builtup_10m.tif``."""
    parks: str | None = None
    """Park outlines for the maps (a vector layer with a ``park``/``园区`` column), e.g. ``../../layers/parks.gpkg``."""


class CorrectionsSource(_Spec):
    """The year's corrections table (``corrections.csv``), applied on top of the inputs."""

    path: str
    """Relative to the dataset directory, e.g. ``corrections.csv``."""


YEAR_MIN, YEAR_MAX = 2000, 2100
"""The evaluation years ``dataset.toml`` accepts."""


class DatasetSpec(_Spec):
    """The contents of ``dataset.toml``."""

    year: int
    evaluation_date: dt.date | None = None
    name: str = ""
    parcels: ParcelSource
    enterprises: TableSource
    leases: TableSource | None = None
    layers: LayerSources | None = None
    corrections: CorrectionsSource | None = None

    @field_validator("year", mode="before")
    @classmethod
    def _plausible_year(cls, v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool) and not YEAR_MIN <= v <= YEAR_MAX:
            raise ValueError(f"评价年度 {v} 不合理，应为 {YEAR_MIN}–{YEAR_MAX} 之间的四位年份（如 2025）")
        return v

    @field_validator("evaluation_date")
    @classmethod
    def _plausible_date(cls, v: dt.date | None) -> dt.date | None:
        if v is not None and not YEAR_MIN <= v.year <= YEAR_MAX + 1:
            raise ValueError(f"评价基准日 {v} 不合理，应在 {YEAR_MIN}–{YEAR_MAX + 1} 年之间")
        return v


def read_dataset_spec(dataset_dir: Path) -> DatasetSpec:
    """Read and check ``DATASET_DIR/dataset.toml``."""
    path = Path(dataset_dir) / "dataset.toml"
    if not path.is_file():
        raise InputFileError(
            f"找不到数据集说明文件 {path}（每个数据集目录需要一个 dataset.toml，格式见 docs/data-contract.md）"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path} 不是合法的 UTF-8 TOML 文件：{exc}") from exc
    try:
        spec = DatasetSpec.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  - {'.'.join(str(p) for p in e['loc']) or '(顶层)'}：{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise DatasetError(f"{path} 有 {len(lines)} 处问题：\n" + "\n".join(lines)) from None
    for label, src in (("parcels", spec.parcels), ("enterprises", spec.enterprises), ("leases", spec.leases)):
        if src is not None and src.path is not None and not (Path(dataset_dir) / src.path).exists():
            raise InputFileError(f"{path} 中 [{label}] 指定的文件 {src.path} 不存在")
    if spec.layers and spec.layers.builtup and not (Path(dataset_dir) / spec.layers.builtup).exists():
        raise InputFileError(f"{path} 中 [layers] builtup 指定的栅格 {spec.layers.builtup} 不存在")
    if spec.corrections and not (Path(dataset_dir) / spec.corrections.path).is_file():
        raise InputFileError(f"{path} 中 [corrections] 指定的更正文件 {spec.corrections.path} 不存在")
    if spec.layers and spec.layers.parks and not (Path(dataset_dir) / spec.layers.parks).exists():
        raise InputFileError(f"{path} 中 [layers] parks 指定的园区边界图层 {spec.layers.parks} 不存在")
    return spec

"""``dataset.toml``: which files hold one year's parcels, enterprises and leases."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from geo_eval.errors import DatasetError, InputFileError


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParcelSource(_Spec):
    """Where the cadastral parcels are."""

    path: str
    layer: str | None = None
    crs: str | None = None
    """The layer's CRS (e.g. ``"EPSG:4528"``): used when the file has none, and overrides a wrong one."""
    encoding: str | None = None
    """Attribute encoding of a Shapefile without ``.cpg`` (e.g. ``"GBK"``); detected when absent."""


class TableSource(_Spec):
    """Where a table (xlsx or csv) is."""

    path: str
    sheet: str | None = None
    encoding: str | None = None


class LayerSources(_Spec):
    """Context layers for the land flags (paths relative to the dataset directory)."""

    builtup: str | None = None
    """A built-up raster (1 = built-up) for the suspected-idle rule, e.g. ``../../layers/builtup_10m.tif``."""


class DatasetSpec(_Spec):
    """The contents of ``dataset.toml``."""

    year: int
    evaluation_date: dt.date | None = None
    name: str = ""
    parcels: ParcelSource
    enterprises: TableSource
    leases: TableSource | None = None
    layers: LayerSources | None = None


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
        lines = [f"  - {'.'.join(str(p) for p in e['loc']) or '(顶层)'}：{e['msg']}" for e in exc.errors()]
        raise DatasetError(f"{path} 有 {len(lines)} 处问题：\n" + "\n".join(lines)) from None
    for label, src in (("parcels", spec.parcels), ("enterprises", spec.enterprises), ("leases", spec.leases)):
        if src is not None and not (Path(dataset_dir) / src.path).exists():
            raise InputFileError(f"{path} 中 [{label}] 指定的文件 {src.path} 不存在")
    if spec.layers and spec.layers.builtup and not (Path(dataset_dir) / spec.layers.builtup).exists():
        raise InputFileError(f"{path} 中 [layers] builtup 指定的栅格 {spec.layers.builtup} 不存在")
    return spec

"""Loading one year's dataset directory and last year's results: the only place that opens inputs."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.inputs.fields import FIGURES
from geo_eval.inputs.problems import Problems
from geo_eval.inputs.table import Table
from geo_eval.inputs.validate import Inputs, validate_enterprises, validate_leases, validate_parcels
from geo_eval.io.dataset import DatasetSpec, TableSource, read_dataset_spec
from geo_eval.io.tables import read_table
from geo_eval.io.vector import read_parcel_layer


@dataclass(frozen=True)
class InputDigest:
    """An input that is not a file (a PostGIS table or query): its label and the sha256 of what was read."""

    label: str
    sha256: str


def load_inputs(dataset_dir: Path) -> tuple[Inputs, dict[str, Path | InputDigest], DatasetSpec]:
    """Read and validate ``DATASET_DIR``; every problem lands in ``inputs.problems``.

    Returns the inputs, the inputs' paths (or :class:`InputDigest` for a database source; for the
    manifest's hashes) and the dataset spec.
    """
    root = Path(dataset_dir)
    spec = read_dataset_spec(root)
    paths: dict[str, Path | InputDigest] = {"dataset": root / "dataset.toml"}

    if spec.parcels.db is not None:
        from geo_eval.db.parcels import ParcelQuery, read_parcel_table

        query = ParcelQuery(spec.parcels.db, spec.parcels.table, spec.parcels.sql, spec.parcels.geometry)
        ptable, geoms, digest = read_parcel_table(query)
        paths["parcels"] = InputDigest(query.label, digest)
    else:
        assert spec.parcels.path is not None
        ppath = root / spec.parcels.path
        paths["parcels"] = ppath
        ptable, geoms = read_parcel_layer(
            ppath, layer=spec.parcels.layer, encoding=spec.parcels.encoding, display=spec.parcels.path
        )
    epath = root / spec.enterprises.path
    paths["enterprises"] = epath
    etable = read_table(
        epath,
        "enterprises",
        sheet=spec.enterprises.sheet,
        encoding=spec.enterprises.encoding,
        display=_label(spec.enterprises, spec.leases),
    )
    ltable = None
    if spec.leases is not None:
        lpath = root / spec.leases.path
        paths["leases"] = lpath
        display = _label(spec.leases, spec.enterprises)
        ltable = read_table(lpath, "leases", sheet=spec.leases.sheet, encoding=spec.leases.encoding, display=display)
    inputs = validated_inputs(
        ptable, geoms, etable, ltable, year=spec.year, evaluation_date=spec.evaluation_date, crs=spec.parcels.crs
    )
    return inputs, paths, spec


def validated_inputs(
    parcels: Table,
    geometries: gpd.GeoSeries,
    enterprises: Table,
    leases: Table | None,
    *,
    year: int,
    evaluation_date: dt.date | None = None,
    crs: str | None = None,
) -> Inputs:
    """The loaded tables validated into :class:`~geo_eval.inputs.validate.Inputs` (every problem in its
    ``problems``; problems name each table by its ``file``). ``crs`` overrides the layer's CRS."""
    problems = Problems()
    files = {"parcels": parcels.file, "enterprises": enterprises.file}
    p = validate_parcels(parcels, geometries, problems, crs_override=crs)
    e = validate_enterprises(enterprises, problems)
    if leases is not None:
        files["leases"] = leases.file
        lz = validate_leases(leases, problems)
    else:
        lz = pd.DataFrame(columns=["lessee_uscc", "parcel_id", "leased_land_m2", "leased_floor_m2", "source_row"])
    return Inputs(
        parcels=p,
        enterprises=e,
        leases=lz,
        year=year,
        evaluation_date=evaluation_date,
        files=files,
        problems=problems,
    )


def _label(source: TableSource, other: TableSource | None) -> str:
    """How problem reports name a table: its path, with the sheet when the other table is in the same
    workbook (so that row numbers and keys say which sheet they are in)."""
    if other is not None and other.path == source.path:
        return f"{source.path}（工作表 {source.sheet or '第一个'}）"
    return source.path


_PREVIOUS_TEXT = ("uscc", "county", "park", "group", "grade")
"""Text columns of last year's ``enterprises.csv`` (read as text, never as numbers)."""


def read_previous(out_dir: Path) -> pd.DataFrame:
    """Last year's ``enterprises.csv`` from its output directory, indexed by USCC."""
    path = Path(out_dir) / "enterprises.csv"
    if not path.is_file():
        raise InputFileError(
            f"上年结果目录 {out_dir} 中没有 enterprises.csv（--previous 应指向上年 geo-eval 的输出目录）"
        )
    df = pd.read_csv(path, encoding="utf-8-sig", dtype=dict.fromkeys(_PREVIOUS_TEXT, str))
    return previous_frame(df, f"上年结果 {path}", hint="--previous 应指向上年 geo-eval 的输出目录")


def previous_frame(
    df: pd.DataFrame, source: str = "上年结果", *, hint: str = "应为上年的 enterprises.csv"
) -> pd.DataFrame:
    """Last year's ``enterprises.csv`` as read into a frame (its ``uscc`` a column or the index),
    typed and indexed by USCC as the evaluation and the flags read it; ``df`` is left as it is.

    ``source`` and ``hint`` name it in the error raised when a column the evaluation needs is missing.
    """
    if "uscc" not in df.columns and df.index.name == "uscc":
        df = df.reset_index()
    missing = [c for c in ("uscc", "county", "group", "grade", "land_mu", "score") if c not in df]
    if missing:
        raise DatasetError(f"{source} 缺少列 {'、'.join(missing)}：{hint}")
    df = df.copy(deep=False)
    for c in _PREVIOUS_TEXT:
        if c in df and df[c].dtype != "str":
            df[c] = df[c].astype("str")
    for c in (*FIGURES, "land_mu", "score"):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    df["group"] = df["group"].fillna("")
    return df.drop_duplicates("uscc").set_index("uscc")

"""Loading one year's dataset directory and last year's results: the only place that opens inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from geo_eval.errors import DatasetError, InputFileError
from geo_eval.fields import FIGURES
from geo_eval.io.dataset import DatasetSpec, TableSource, read_dataset_spec
from geo_eval.io.tables import read_table
from geo_eval.io.vector import read_parcel_layer
from geo_eval.problems import Problems
from geo_eval.validate import Inputs, validate_enterprises, validate_leases, validate_parcels


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
    problems = Problems()
    paths: dict[str, Path | InputDigest] = {"dataset": root / "dataset.toml"}
    files: dict[str, str] = {}

    if spec.parcels.db is not None:
        from geo_eval.db.parcels import ParcelQuery, read_parcel_table

        query = ParcelQuery(spec.parcels.db, spec.parcels.table, spec.parcels.sql, spec.parcels.geometry)
        ptable, geoms, digest = read_parcel_table(query)
        paths["parcels"] = InputDigest(query.label, digest)
        files["parcels"] = query.label
    else:
        assert spec.parcels.path is not None
        ppath = root / spec.parcels.path
        paths["parcels"] = ppath
        files["parcels"] = spec.parcels.path
        ptable, geoms = read_parcel_layer(
            ppath, layer=spec.parcels.layer, encoding=spec.parcels.encoding, display=spec.parcels.path
        )
    parcels = validate_parcels(ptable, geoms, problems, crs_override=spec.parcels.crs)

    epath = root / spec.enterprises.path
    paths["enterprises"] = epath
    files["enterprises"] = _label(spec.enterprises, spec.leases)
    etable = read_table(
        epath,
        "enterprises",
        sheet=spec.enterprises.sheet,
        encoding=spec.enterprises.encoding,
        display=files["enterprises"],
    )
    enterprises = validate_enterprises(etable, problems)

    if spec.leases is not None:
        lpath = root / spec.leases.path
        paths["leases"] = lpath
        files["leases"] = _label(spec.leases, spec.enterprises)
        ltable = read_table(
            lpath, "leases", sheet=spec.leases.sheet, encoding=spec.leases.encoding, display=files["leases"]
        )
        leases = validate_leases(ltable, problems)
    else:
        leases = pd.DataFrame(columns=["lessee_uscc", "parcel_id", "leased_land_m2", "leased_floor_m2", "source_row"])
    inputs = Inputs(
        parcels=parcels,
        enterprises=enterprises,
        leases=leases,
        year=spec.year,
        evaluation_date=spec.evaluation_date,
        files=files,
        problems=problems,
    )
    return inputs, paths, spec


def _label(source: TableSource, other: TableSource | None) -> str:
    """How problem reports name a table: its path, with the sheet when the other table is in the same
    workbook (so that row numbers and keys say which sheet they are in)."""
    if other is not None and other.path == source.path:
        return f"{source.path}（工作表 {source.sheet or '第一个'}）"
    return source.path


def read_previous(out_dir: Path) -> pd.DataFrame:
    """Last year's ``enterprises.csv`` from its output directory, indexed by USCC."""
    path = Path(out_dir) / "enterprises.csv"
    if not path.is_file():
        raise InputFileError(
            f"上年结果目录 {out_dir} 中没有 enterprises.csv（--previous 应指向上年 geo-eval 的输出目录）"
        )
    df = pd.read_csv(
        path, encoding="utf-8-sig", dtype={"uscc": str, "county": str, "park": str, "group": str, "grade": str}
    )
    missing = [c for c in ("uscc", "county", "group", "grade", "land_mu", "score") if c not in df]
    if missing:
        raise DatasetError(f"上年结果 {path} 缺少列 {'、'.join(missing)}：--previous 应指向上年 geo-eval 的输出目录")
    for c in (*FIGURES, "land_mu", "score"):
        if c in df:
            df[c] = pd.to_numeric(df[c], errors="coerce")
    df["group"] = df["group"].fillna("")
    return df.drop_duplicates("uscc").set_index("uscc")

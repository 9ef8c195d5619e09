"""Inputs that used to crash with a traceback: each is now a Chinese message naming the file (and the
row and field where there is one), exit code 2 and nothing written; ``POST /api/runs`` answers 422 with
the same message. Dates outside pandas' range are not fatal: they are reported and read as blank."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path

import catalogue
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.settings import Settings
from geo_eval.cli import app
from geo_eval.storage import open_store

runner = CliRunner()
SCHEME = "huaian-2024"


def set_toml(root: Path, pattern: str, replacement: str) -> None:
    toml = root / "dataset.toml"
    text, n = re.subn(pattern, replacement, toml.read_text(encoding="utf-8"), count=1, flags=re.M)
    assert n == 1, text
    toml.write_text(text, encoding="utf-8")


def with_parcel_crs(crs: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        catalogue.write_dataset(root)
        set_toml(root, r'^path = "parcels.gpkg"$', f'path = "parcels.gpkg"\ncrs = "{crs}"')
        return root

    return make


def with_year(year: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        catalogue.write_dataset(root)
        set_toml(root, r"^year = .*$", f"year = {year}")
        set_toml(root, r"^evaluation_date = .*$", 'evaluation_date = "2026-03-31"')
        return root

    return make


def labelled(crs: str) -> Callable[[Path], Path]:
    """The catalogue's Gauss-Krüger coordinates with another CRS written into the GeoPackage."""

    def make(root: Path) -> Path:
        p = catalogue.parcels().set_crs(crs, allow_override=True)
        return catalogue.write_dataset(root, parcels_gdf=p)

    return make


def header_only(root: Path) -> Path:
    return catalogue.write_dataset(root, enterprises_df=catalogue.enterprises().iloc[:0])


def no_parcels(root: Path) -> Path:
    return catalogue.write_dataset(root, parcels_gdf=catalogue.parcels().iloc[:0])


def infinite_coordinates(root: Path) -> Path:
    p = catalogue.parcels()
    x, y = catalogue.X0, catalogue.Y0
    p.loc[2, "geometry"] = shapely.Polygon([(x, y), (np.inf, y), (x + 50, y + 50), (x, y)])
    return catalogue.write_dataset(root, parcels_gdf=p)


def utf16_csv(root: Path) -> Path:
    catalogue.write_dataset(root)
    text = (root / "enterprises.csv").read_text(encoding="utf-8-sig")
    (root / "enterprises.csv").write_bytes(text.encode("utf-16"))
    return root


def binary_csv(root: Path) -> Path:
    catalogue.write_dataset(root)
    (root / "enterprises.csv").write_bytes(bytes(range(256)) * 40)
    return root


def not_a_workbook(root: Path) -> Path:
    catalogue.write_dataset(root, enterprises_name="enterprises.xlsx")
    (root / "enterprises.xlsx").write_bytes(b"PK\x03\x04 this is not a workbook")
    return root


# name → (dataset maker, words every message must contain)
FATAL_CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "header-only enterprise table": (header_only, ("enterprises.csv", "没有数据行")),
    "GK coordinates labelled EPSG:3857": (labelled("EPSG:3857"), ("parcels.gpkg", "EPSG:3857", "不在我国范围内")),
    "GK coordinates labelled EPSG:4326": (labelled("EPSG:4326"), ("parcels.gpkg", "EPSG:4326", "经纬度")),
    "crs EPSG:99999 in dataset.toml": (with_parcel_crs("EPSG:99999"), ("dataset.toml", "EPSG:99999", "无法识别")),
    "garbage proj string in dataset.toml": (with_parcel_crs("+proj=blah +foo"), ("dataset.toml", "+proj=blah")),
    "parcel layer with no features": (no_parcels, ("parcels.gpkg", "没有宗地")),
    "infinite coordinates": (infinite_coordinates, ("parcels.gpkg", "第3行", "geometry", "坐标")),
    "UTF-16 csv": (utf16_csv, ("enterprises.csv", "UTF-16")),
    "binary csv": (binary_csv, ("enterprises.csv", "编码")),
    "xlsx that is not a workbook": (not_a_workbook, ("enterprises.xlsx", "不是有效的 xlsx")),
    "year 1": (with_year("1"), ("dataset.toml", "year", "2000")),
    "year -1": (with_year("-1"), ("dataset.toml", "year", "2000")),
    "year of 20 digits": (with_year("12345678901234567890"), ("dataset.toml", "year", "2000")),
}


def service_message(body: dict) -> str:
    """What the service says about a refused dataset: the detail and every fatal problem listed."""
    parts = [body["detail"]]
    for p in body.get("problems", []):
        parts.append(f"{p['file']} 第{p['row']}行 [{p['field']}]：{p['problem']}。{p['action']}")
    return "\n".join(parts)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    base = tmp_path_factory.mktemp("svc")
    store = open_store(base / "data")
    token = store.add_user("admin", "admin", [])[1]
    store.close()
    app_ = create_app(Settings(data_dir=base / "data", secret_key="s" * 48, datasets_dir=base / "datasets"))
    with TestClient(app_) as client:
        yield client, {"Authorization": f"Bearer {token}"}, base / "datasets"


@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_bad_input_is_a_chinese_message_exit_2_and_nothing_written(tmp_path, case):
    make, words = FATAL_CASES[case]
    root = make(tmp_path / "ds")
    out = tmp_path / "out"
    for args in (["evaluate", str(root), "--scheme", SCHEME, "--out", str(out)], ["validate", str(root)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args[0], result.output, result.exception)
        assert isinstance(result.exception, SystemExit)  # no traceback
        assert "Traceback" not in result.output
        for w in words:
            assert w in result.output, (args[0], w, result.output)
        assert not out.exists()


@pytest.mark.parametrize("case", list(FATAL_CASES))
def test_service_answers_422_with_the_same_message(service, case):
    client, headers, datasets = service
    make, words = FATAL_CASES[case]
    root = make(datasets / re.sub(r"\W+", "_", case))
    cli = runner.invoke(app, ["validate", str(root)]).output
    r = client.post("/api/runs", json={"dataset_dir": str(root), "scheme": SCHEME}, headers=headers)
    assert r.status_code == 422, r.text
    body = r.json()
    said = service_message(body)
    for w in words:
        assert w in said, (w, said)
    # the service says what the command line says
    for text in [p["problem"] for p in body.get("problems", [])] or [body["detail"]]:
        assert text in cli, (text, cli)


def evaluate_ok(root: Path, out: Path) -> pd.DataFrame:
    result = runner.invoke(app, ["evaluate", str(root), "--scheme", SCHEME, "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    return pd.read_csv(out / "exceptions.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)


def idle_parcels(contract: str) -> pd.DataFrame:
    p = catalogue.parcels()
    p["contract_start_date"] = "2020-01-01"
    p["actual_start_date"] = "2020-06-01"
    p.loc[0, "contract_start_date"] = contract
    p.loc[0, "actual_start_date"] = None
    return p


def test_no_date_placeholder_in_contract_start_is_blank_with_a_note(tmp_path):
    exc = evaluate_ok(catalogue.write_dataset(tmp_path / "ds", parcels_gdf=idle_parcels("9999-12-31")), tmp_path / "o")
    hit = exc.loc[exc["code"] == "date_placeholder"]
    assert hit[["file", "row", "field", "value", "severity"]].values.tolist() == [
        ["parcels.gpkg", "1", "contract_start_date", "9999-12-31", "提示"]
    ]
    assert "无约定" in hit["action"].iloc[0] or "空值" in hit["action"].iloc[0]
    flags = pd.read_csv(tmp_path / "o" / "flags.csv", encoding="utf-8-sig", dtype=str)
    assert not flags.loc[flags["parcel_id"] == "P1", "flag"].str.startswith("idle").any()


@pytest.mark.parametrize("value", ["1600-01-01", "0001-01-01", "2999-06-30"])
def test_dates_outside_1900_2199_are_a_warning_and_blank(tmp_path, value):
    exc = evaluate_ok(catalogue.write_dataset(tmp_path / "ds", parcels_gdf=idle_parcels(value)), tmp_path / "o")
    hit = exc.loc[exc["code"] == "date_out_of_range"]
    assert hit[["file", "row", "field", "value", "severity"]].values.tolist() == [
        ["parcels.gpkg", "1", "contract_start_date", value, "警告"]
    ]


def test_out_of_range_dates_in_a_workbook_and_as_excel_serials(tmp_path):
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_name="enterprises.xlsx")
    wb = openpyxl.load_workbook(root / "enterprises.xlsx")
    ws = wb.active
    col = [c.value for c in ws[1]].index("production_start") + 1
    ws.cell(row=2, column=col, value=dt.datetime(9999, 12, 31))
    ws.cell(row=3, column=col, value=2958465)  # 9999-12-31 as an Excel serial number
    ws.cell(row=4, column=col, value=10_000_000)  # far beyond 2199
    wb.save(root / "enterprises.xlsx")
    exc = evaluate_ok(root, tmp_path / "o")
    got = exc.loc[exc["code"].isin(["date_placeholder", "date_out_of_range"]), ["row", "code", "severity"]]
    assert got.values.tolist() == [["4", "date_out_of_range", "警告"], ["2", "date_placeholder", "提示"],
                                   ["3", "date_placeholder", "提示"]]  # fmt: skip


def test_placeholder_in_a_csv_date_column_of_enterprises(tmp_path):
    e = catalogue.enterprises()
    e.loc[1, "production_start"] = "9999-12-31"
    e.loc[2, "production_start"] = "1600年1月1日"
    exc = evaluate_ok(catalogue.write_dataset(tmp_path / "ds", enterprises_df=e), tmp_path / "o")
    got = exc.loc[exc["code"].str.startswith("date_"), ["file", "row", "code"]].values.tolist()
    assert sorted(got) == [["enterprises.csv", "3", "date_placeholder"], ["enterprises.csv", "4", "date_out_of_range"]]

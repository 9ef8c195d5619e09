"""The problem report: infinite and absurd numbers, one pass that lists every problem (cross-table ones
too) with the record's key, truncated Shapefile field names, and a fatal unknown delay cause."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import catalogue
import numpy as np
import pandas as pd
import pytest
from shapely.affinity import translate
from typer.testing import CliRunner

from geo_eval.cli import app
from geo_eval.errors import DatasetError, InputFileError
from geo_eval.inputs.fields import PARCEL_FIELDS
from geo_eval.io import load_inputs
from geo_eval.io.run import FatalInputError, check_dataset, run
from geo_eval.rating.scheme import load_scheme, parse_scheme, preset_text

runner = CliRunner()
SCHEME = "huaian-2024"
COLUMNS = ["file", "row", "field", "value", "problem", "severity", "action", "code", "key"]


def evaluate_cli(root: Path, out: Path, *extra: str):
    return runner.invoke(app, ["evaluate", str(root), "--scheme", SCHEME, "--out", str(out), *extra])


def read_report(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)


def hits(df: pd.DataFrame, code: str) -> list[list[str]]:
    return df.loc[df["code"] == code, ["file", "row", "field", "severity", "key"]].astype(str).values.tolist()


# --- infinite and absurd numbers ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("table", "column", "value", "row", "key"),
    [
        ("enterprises", "tax", "inf", 2, catalogue.E[1]),
        ("enterprises", "sales", "-Infinity", 3, catalogue.E[2]),
        ("enterprises", "energy_tce", "1e400", 4, catalogue.E[3]),
        ("leases", "leased_land_m2", "inf", 2, f"{catalogue.E[3]}/P2"),
    ],
)
def test_infinite_numbers_are_fatal_and_name_the_row(tmp_path, table, column, value, row, key):
    frames = {"enterprises": catalogue.enterprises(), "leases": catalogue.leases()}
    df = frames[table]
    df[column] = df[column].astype(object)
    df.loc[row - 2, column] = value
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=frames["enterprises"], leases_df=frames["leases"])
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists()
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "not_finite") == [[f"{table}.csv", str(row), column, "致命", key]]
    assert "negative" not in set(report["code"])  # -inf is reported once, as not finite


def test_a_huge_number_times_its_header_unit_is_not_finite(tmp_path):
    e = catalogue.enterprises().rename(columns={"tax": "税收（亿元）"})
    e["税收（亿元）"] = e["税收（亿元）"].astype(float) / 1e4
    e.loc[1, "税收（亿元）"] = 1e305  # finite as written, infinite in 万元
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "not_finite") == [["enterprises.csv", "3", "税收（亿元）", "致命", catalogue.E[2]]]


def test_registered_area_infinite_is_fatal(tmp_path):
    p = catalogue.parcels()
    p.loc[3, "registered_area_m2"] = np.inf
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "not_finite") == [["parcels.gpkg", "4", "registered_area_m2", "致命", "P4"]]


def test_numbers_too_large_to_compute_with_are_fatal(tmp_path):
    e = catalogue.enterprises()
    e["tax"] = e["tax"].astype(float)
    e.loc[0, "tax"] = 1e308  # finite, but tax × area overflows: every benchmark and grade would shift
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists()
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "number_too_large") == [["enterprises.csv", "2", "tax", "致命", catalogue.E[1]]]


@pytest.mark.parametrize("tax", [1e12, 6_000_000.0])  # absurd, or 600 万元 entered in 元
def test_implausible_tax_per_mu_is_a_warning_naming_the_row(tmp_path, tax):
    e = catalogue.enterprises()
    e["tax"] = e["tax"].astype(float)
    e.loc[0, "tax"] = tax  # E1 on 30 亩
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out" / "exceptions.csv")
    assert hits(report, "implausible_tax_per_mu") == [["enterprises.csv", "2", "亩均税收", "警告", catalogue.E[1]]]
    row = report.loc[report["code"] == "implausible_tax_per_mu"].iloc[0]
    assert "10000" in row["problem"]
    assert float(row["value"]) == pytest.approx(tax / 30)


def test_the_tax_per_mu_bound_is_a_scheme_setting(tmp_path):
    e = catalogue.enterprises()
    e["tax"] = e["tax"].astype(float)
    e.loc[0, "tax"] = 6_000  # 200 万元/亩
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    text = preset_text(SCHEME)
    low = parse_scheme(text + "\n[checks]\ntax_per_mu_above = 100\n")
    off = parse_scheme(text + "\n[checks]\ntax_per_mu_above = false\n")
    assert load_scheme(SCHEME).checks.tax_per_mu_above == 10_000
    assert off.checks.tax_per_mu_above is None
    assert hits(check_dataset(root, low).frame(), "implausible_tax_per_mu")[0][:2] == ["enterprises.csv", "2"]
    assert hits(check_dataset(root, load_scheme(SCHEME)).frame(), "implausible_tax_per_mu") == []
    e.loc[0, "tax"] = 1e12
    root = catalogue.write_dataset(tmp_path / "ds2", enterprises_df=e)
    assert hits(check_dataset(root, off).frame(), "implausible_tax_per_mu") == []


def test_parcels_outside_china_are_warnings_naming_the_row(tmp_path):
    p = catalogue.parcels()
    p.loc[6, "geometry"] = translate(p.loc[6, "geometry"], xoff=1e15, yoff=1e15)  # P7 far away
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out" / "exceptions.csv")
    assert hits(report, "outside_china") == [["parcels.gpkg", "7", "geometry", "警告", "P7"]]


def test_a_geographic_layer_with_one_parcel_off_the_map(tmp_path):
    p = catalogue.parcels().to_crs("EPSG:4490")
    p.loc[1, "geometry"] = translate(p.loc[1, "geometry"], xoff=-119.0)  # P2 near longitude 0
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "outside_china") == [["parcels.gpkg", "2", "geometry", "警告", "P2"]]
    lon, lat = (float(v) for v in report.loc[report["code"] == "outside_china", "value"].iloc[0].split(", "))
    assert abs(lon) < 1 and 34 < lat < 35


# --- one pass: every problem, the cross-table ones too, each with its key ----------------------------
def many_problems(root: Path, *, duplicate: bool) -> Path:
    e = catalogue.enterprises()
    e = pd.concat([e, e.iloc[[4]].assign(uscc=catalogue.make_uscc(99_999), name="无地公司")], ignore_index=True)
    if duplicate:
        e = pd.concat([e, e.iloc[[0]]], ignore_index=True)  # row 12 repeats E1
    p = catalogue.parcels()
    p.loc[4, "holder_uscc"] = catalogue.make_uscc(77_777)  # P5's holder is not an enterprise
    p["delay_cause"] = None
    p.loc[0, "delay_cause"] = "资金不足"  # not a cause of Art. 8
    leases = pd.concat(
        [
            catalogue.leases(),
            pd.DataFrame(
                {
                    "lessee_uscc": [catalogue.E[6], catalogue.make_uscc(88_888), catalogue.E[2]],
                    "parcel_id": ["P99", "P1", "P2"],
                    "leased_land_m2": [100.0, 200.0, 300.0],
                    "leased_floor_m2": [None, None, None],
                }
            ),
        ],
        ignore_index=True,
    )
    return catalogue.write_dataset(root, enterprises_df=e, parcels_gdf=p, leases_df=leases)


CROSS = {
    "holder_not_in_enterprises": [["parcels.gpkg", "5", "权利人统一社会信用代码", "警告", "P5"]],
    "lease_unknown_parcel": [["leases.csv", "4", "宗地代码", "警告", f"{catalogue.E[6]}/P99"]],
    "lease_unknown_lessee": [
        ["leases.csv", "5", "承租方统一社会信用代码", "警告", f"{catalogue.make_uscc(88_888)}/P1"]
    ],
    "lease_own_parcel": [["leases.csv", "6", "承租方统一社会信用代码", "警告", f"{catalogue.E[2]}/P2"]],
    "enterprise_no_land": [  # 庚公司 (E7) held only P5
        ["enterprises.csv", "8", "统一社会信用代码", "警告", catalogue.E[7]],
        ["enterprises.csv", "11", "统一社会信用代码", "警告", catalogue.make_uscc(99_999)],
    ],
    "bad_delay_cause": [["parcels.gpkg", "1", "政府原因延迟", "致命", "P1"]],
}


def test_a_failed_run_still_lists_every_problem_with_the_cross_checks(tmp_path):
    root = many_problems(tmp_path / "ds", duplicate=True)
    report_path = tmp_path / "问题清单.csv"
    result = runner.invoke(app, ["validate", str(root), "--scheme", SCHEME, "--report", str(report_path)])
    assert result.exit_code == 2, result.output
    report = read_report(report_path)
    assert list(report.columns) == COLUMNS
    dup = [catalogue.E[1], catalogue.E[1]]
    assert [r[1] for r in hits(report, "duplicate_key")] == ["2", "12"]
    assert [r[4] for r in hits(report, "duplicate_key")] == dup
    for code, expected in CROSS.items():
        assert hits(report, code) == expected, code
    # evaluate stops with the same list (the service's 422 carries it too)
    with pytest.raises(FatalInputError) as info:
        run(root, load_scheme(SCHEME), tmp_path / "out")
    same = info.value.frame.astype(str).reset_index(drop=True)
    assert same.equals(report.astype(str)), (same.to_string(), report.to_string())
    assert not (tmp_path / "out").exists()


def test_the_cross_checks_of_a_failed_run_are_those_of_the_next_run(tmp_path):
    scheme = load_scheme(SCHEME)
    first = check_dataset(many_problems(tmp_path / "a", duplicate=True), scheme).frame()
    second = check_dataset(many_problems(tmp_path / "b", duplicate=False), scheme).frame()
    for code in CROSS:
        assert hits(first, code) == hits(second, code), code


def test_exceptions_csv_names_the_record_of_every_row(tmp_path):
    e = catalogue.enterprises()
    e.loc[2, "name"] = None  # a warning on E3's row
    p = catalogue.parcels()
    p.loc[1, "county"] = None  # a warning on P2
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e, parcels_gdf=p)
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "out" / "exceptions.csv")
    assert list(report.columns) == COLUMNS
    whole_file = report["row"] == ""
    assert (report.loc[whole_file, "key"] == "").all()
    by_row = report.loc[~whole_file]
    assert (by_row["key"] != "").all(), by_row.to_string()
    ent = catalogue.enterprises()["uscc"].tolist()
    for r in by_row.itertuples():
        if r.file == "enterprises.csv":
            assert r.key == ent[int(r.row) - 2], r
        elif r.file == "parcels.gpkg":
            assert r.key == f"P{r.row}", r
    assert hits(report, "missing_value") == [
        ["enterprises.csv", "4", "name", "警告", catalogue.E[3]],
        ["parcels.gpkg", "2", "county", "警告", "P2"],
    ]


# --- Shapefile field names cut to 10 bytes -------------------------------------------------------------
def shapefile_dataset(root: Path, *, chinese: bool, encoding: str, parcels=None) -> Path:
    p = catalogue.parcels() if parcels is None else parcels
    p = p.assign(contract_start_date="2020-01-01", actual_start_date="2020-06-01", developed_ratio=0.5)
    if chinese:
        p = p.rename(columns={f.name: f.label for f in PARCEL_FIELDS})
    catalogue.write_dataset(root)
    with warnings.catch_warnings():  # geopandas and GDAL say what this test is about: names cut to 10 bytes
        warnings.filterwarnings("ignore", "Column names longer than 10 characters", UserWarning)
        warnings.filterwarnings("ignore", "Normalized/laundered field name", RuntimeWarning)
        warnings.filterwarnings("ignore", "Could not decode error message", RuntimeWarning)
        p.to_file(root / "parcels.shp", encoding=encoding)
    text = (root / "dataset.toml").read_text(encoding="utf-8").replace("parcels.gpkg", "parcels.shp")
    (root / "dataset.toml").write_text(text, encoding="utf-8")
    return root


def test_truncated_english_field_names_are_recognised(tmp_path):
    root = shapefile_dataset(tmp_path / "shp", chinese=False, encoding="UTF-8")
    inputs, _, _ = load_inputs(root)
    assert not inputs.problems.has_fatal
    info = inputs.problems.frame().query("code == 'truncated_header'")
    assert sorted(info["field"]) == [
        "actual_sta",
        "contract_s",
        "developed_",
        "floor_area",
        "footprint_",
        "holder_usc",
        "registered",
    ]
    assert set(info["severity"]) == {"提示"}
    row = info.loc[info["field"] == "holder_usc"].iloc[0]
    assert "holder_uscc" in row["problem"] and "10 字节" in row["problem"]
    gpkg = catalogue.write_dataset(tmp_path / "gpkg")
    assert evaluate_cli(root, tmp_path / "o1").exit_code == 0
    assert evaluate_cli(gpkg, tmp_path / "o2").exit_code == 0
    a = pd.read_csv(tmp_path / "o1" / "enterprises.csv", dtype=str)
    b = pd.read_csv(tmp_path / "o2" / "enterprises.csv", dtype=str)
    pd.testing.assert_frame_equal(a, b)


def test_truncated_gbk_chinese_headers_are_recognised(tmp_path):
    root = shapefile_dataset(tmp_path / "shp", chinese=True, encoding="GBK")
    inputs, _, _ = load_inputs(root)
    assert not inputs.problems.has_fatal, inputs.problems.frame().to_string()
    info = inputs.problems.frame().query("code == 'truncated_header'")
    assert sorted(info["field"]) == sorted(["权利人统一", "建筑基底面", "约定动工日", "实际动工日", "已开发面积"])
    assert inputs.parcels.loc["P1", "holder_uscc"] == catalogue.E[1]
    assert inputs.parcels.loc["P1", "footprint_area_m2"] == pytest.approx(10_000.0)
    assert inputs.parcels.loc["P1", "developed_ratio"] == pytest.approx(0.5)


def test_an_ambiguous_truncated_header_is_named(tmp_path):
    p = catalogue.parcels().rename(columns={"holder_uscc": "土地使用权人统一社会信用代码"})
    root = shapefile_dataset(tmp_path / "shp", chinese=False, encoding="GBK", parcels=p)
    with pytest.raises(DatasetError) as info:
        load_inputs(root)
    msg = str(info.value)
    assert "缺少必需的列 权利人统一社会信用代码（holder_uscc）" in msg
    assert re.search(r"“土地使用权”.*权利人统一社会信用代码（holder_uscc）.*权利人（holder_name）", msg), msg
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 2 and "土地使用权" in result.output


def test_ambiguous_optional_headers_are_warnings_naming_the_candidates(tmp_path):
    p = catalogue.parcels().assign(holder_name="某公司")
    # 土地使用权人 (an alias of holder_name) is cut to 土地使用权, also the start of 土地使用权人统一社会信用代码;
    # 登记面积（亩） is cut to 登记面积（: the unit is lost
    p = p.rename(columns={"holder_name": "土地使用权人", "registered_area_m2": "登记面积（亩）"})
    root = shapefile_dataset(tmp_path / "shp", chinese=False, encoding="GBK", parcels=p)
    inputs, _, _ = load_inputs(root)
    assert not inputs.problems.has_fatal
    warn = inputs.problems.frame().query("code == 'truncated_header_ambiguous'")
    assert sorted(warn["field"]) == ["土地使用权", "登记面积（"]
    assert set(warn["severity"]) == {"警告"}
    holder = warn.loc[warn["field"] == "土地使用权", "problem"].iloc[0]
    assert "权利人统一社会信用代码（holder_uscc）" in holder and "权利人（holder_name）" in holder
    assert "单位" in warn.loc[warn["field"] == "登记面积（", "problem"].iloc[0]
    assert inputs.parcels["holder_name"].isna().all()  # the column is left out, not guessed
    assert inputs.parcels["registered_area_m2"].isna().all()
    assert inputs.parcels.loc["P1", "holder_uscc"] == catalogue.E[1]  # holder_usc is unambiguous


def test_utf8_shapefile_with_cut_chinese_names_is_a_clear_error(tmp_path):
    root = shapefile_dataset(tmp_path / "shp", chinese=True, encoding="UTF-8")
    with pytest.raises(InputFileError) as info:
        load_inputs(root)
    assert "10 字节" in str(info.value) and "GeoPackage" in str(info.value)


# --- 政府原因延迟: an unknown code is fatal, as documented ---------------------------------------------------
def test_unknown_delay_cause_is_fatal(tmp_path):
    p = catalogue.parcels().assign(contract_start_date="2020-01-01", delay_cause=None)
    p.loc[2, "delay_cause"] = "资金不足"
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    result = evaluate_cli(root, tmp_path / "out")
    assert result.exit_code == 2, result.output
    assert "政府原因延迟" in result.output and "第3行" in result.output
    assert not (tmp_path / "out").exists()
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "bad_delay_cause") == [["parcels.gpkg", "3", "政府原因延迟", "致命", "P3"]]
    assert evaluate_cli(root, tmp_path / "out2", "--no-flags").exit_code == 0  # not read without the flags


def test_two_tables_in_one_workbook_are_told_apart(tmp_path):
    e = catalogue.enterprises()
    e.loc[1, "name"] = None  # a warning on row 3 of the enterprise sheet (E2)
    leases = catalogue.leases()
    leases.loc[1, "parcel_id"] = "P99"  # a warning on row 3 of the lease sheet
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e, enterprises_name="tables.xlsx")
    with pd.ExcelWriter(root / "tables.xlsx") as xl:
        e.to_excel(xl, sheet_name="企业", index=False)
        leases.to_excel(xl, sheet_name="租赁", index=False)
    text = (root / "dataset.toml").read_text(encoding="utf-8")
    text = text.replace('path = "tables.xlsx"', 'path = "tables.xlsx"\nsheet = "企业"')
    text = text.replace('path = "leases.csv"', 'path = "tables.xlsx"\nsheet = "租赁"')
    (root / "dataset.toml").write_text(text, encoding="utf-8")
    report = check_dataset(root, load_scheme(SCHEME)).frame()
    assert hits(report, "missing_value") == [["tables.xlsx（工作表 企业）", "3", "name", "警告", catalogue.E[2]]]
    assert hits(report, "lease_unknown_parcel") == [
        ["tables.xlsx（工作表 租赁）", "3", "宗地代码", "警告", f"{catalogue.E[5]}/P99"]
    ]

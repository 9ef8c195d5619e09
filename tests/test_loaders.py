"""Loaders across the formats bureaus send: GeoPackage, GeoJSON, Shapefile (UTF-8, GBK), xlsx, csv."""

from pathlib import Path

import catalogue
import openpyxl
import pandas as pd
import pytest

from geo_eval.inputs.fields import ENTERPRISE_FIELDS, PARCEL_FIELDS
from geo_eval.io import load_inputs
from geo_eval.io.tables import read_table
from geo_eval.io.vector import read_parcel_layer, shapefile_encoding

CHINESE_PARCEL_HEADERS = {f.name: f.label for f in PARCEL_FIELDS}
CHINESE_ENTERPRISE_HEADERS = {
    f.name: (f"{f.label}（{f.unit}）" if f.unit and f.kind in ("money", "number") else f.label)
    for f in ENTERPRISE_FIELDS
}


def _chinese_parcels():
    return catalogue.parcels().rename(columns=CHINESE_PARCEL_HEADERS)


@pytest.mark.parametrize("fmt", ["gpkg", "geojson", "shp-utf8", "shp-gbk"])
def test_parcel_layer_formats(tmp_path: Path, fmt: str):
    gdf = _chinese_parcels()
    if fmt == "gpkg":
        path = tmp_path / "parcels.gpkg"
        gdf.to_file(path, layer="parcels")
    elif fmt == "geojson":
        path = tmp_path / "parcels.geojson"
        gdf.to_file(path, driver="GeoJSON")
    else:
        # Shapefile field names are limited to 10 bytes: bureaus use short codes (ZDDM, QLRDM …) or short Chinese.
        short = gdf.rename(
            columns={
                "宗地代码": "ZDDM",
                "权利人统一社会信用代码": "QLRDM",
                "登记面积": "ZDMJ",
                "总建筑面积": "JZMJ",
                "建筑基底面积": "JZZDMJ",
                "土地用途": "TDYT",
            }
        )
        short = short[["ZDDM", "QLRDM", "县区", "园区", "TDYT", "ZDMJ", "JZMJ", "JZZDMJ", "geometry"]]
        path = tmp_path / "parcels.shp"
        enc = "GBK" if fmt == "shp-gbk" else "UTF-8"
        short.to_file(path, encoding=enc)
        path.with_suffix(".cpg").unlink(missing_ok=True)  # as bureaus send them: no .cpg
        if fmt == "shp-gbk":
            raw = path.with_suffix(".dbf").read_bytes()
            assert "海滨区".encode("gbk") in raw  # really GBK on disk
            assert shapefile_encoding(path) == "GB18030"
    table, geoms = read_parcel_layer(path)
    frame = table.frame.set_index("parcel_id")
    assert len(frame) == 8
    assert frame.loc["P1", "county"] == "海滨区"
    assert frame.loc["P1", "park"] == "海滨高新技术产业园"
    assert geoms.crs.to_epsg() == 4549
    assert geoms.area.round(3).tolist()[0] == 20_000.0


def test_xlsx_with_merged_title_row_and_units_in_headers(tmp_path: Path):
    e = catalogue.enterprises().rename(columns=CHINESE_ENTERPRISE_HEADERS)
    path = tmp_path / "enterprises.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "企业数据"
    ws.append(["2025年度海滨区工业企业资源集约利用综合评价基础数据表"])
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(e.columns))
    ws.append(list(e.columns))
    for row in e.itertuples(index=False):
        ws.append([None if pd.isna(v) else v for v in row])
    wb.save(path)
    t = read_table(path, "enterprises", sheet="企业数据")
    assert t.headers["tax"] == "税收（万元）"
    assert t.frame["source_row"].iloc[0] == 3  # title row 1, header row 2, data from row 3
    assert t.frame.loc[0, "name"] == "甲公司"
    assert float(t.frame.loc[0, "tax"]) == 600.0


def test_csv_in_gbk_with_yuan_units_is_converted_to_wan_yuan(tmp_path: Path):
    e = catalogue.enterprises()[["uscc", "name", "county", "tax", "sales"]].copy()
    e["tax"] = e["tax"] * 10_000  # in 元
    e.columns = ["统一社会信用代码", "企业名称", "县区", "税收(元)", "销售收入（万元）"]
    path = tmp_path / "enterprises.csv"
    e.to_csv(path, index=False, encoding="gbk")
    t = read_table(path, "enterprises")
    assert t.factors["tax"] == pytest.approx(1e-4)
    assert t.frame.loc[1, "name"] == "乙公司"
    assert t.frame["source_row"].iloc[0] == 2


def test_unknown_unit_in_header_is_a_clear_error(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("统一社会信用代码,企业名称,县区,税收（美元）\nX,甲,海滨区,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"e\.csv：列“税收（美元）”的单位“美元”无法识别"):
        read_table(path, "enterprises")


def test_missing_required_column_names_the_file_and_column(tmp_path: Path):
    path = tmp_path / "e.csv"
    path.write_text("统一社会信用代码,企业名称,县区\nX,甲,海滨区\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"e\.csv：缺少必需的列 税收（tax）"):
        read_table(path, "enterprises")


def test_load_inputs_from_xlsx_dataset(tmp_path: Path):
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_name="enterprises.xlsx")
    inputs, paths, spec = load_inputs(root)
    assert spec.year == 2025
    assert not inputs.problems.has_fatal
    assert len(inputs.enterprises) == 9 and len(inputs.parcels) == 8
    assert bool(inputs.enterprises.loc[catalogue.E[1], "above_scale"]) is True
    assert set(paths) == {"dataset", "parcels", "enterprises", "leases"}

"""One table of Chinese headers (geo_eval.report.labels): every output column of every file and download has exactly
one label there, and every workbook, download and popup shows the table's headers (and the documented ones)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import openpyxl
import pandas as pd
import pyogrio
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.settings import Settings
from geo_eval.maps import attributes
from geo_eval.report import labels
from geo_eval.report.labels import COLUMNS, IN_TABLE, TABLES, Label, header, label
from geo_eval.report.tables import FLAG_SHEET_COLUMNS, ranking_headers
from geo_eval.storage import open_store, run_record_from_out_dir

DOCS = Path(__file__).parents[1] / "docs" / "data-contract.md"
GEOMETRY = {"geom", "geometry"}
FILES = {  # file (layer) of OUT_DIR → its table in geo_eval.report.labels
    "enterprises.csv": "enterprises",
    "benchmarks.csv": "benchmarks",
    "exceptions.csv": "problems",
    "flags.csv": "flags",
    "parcels.gpkg:parcels": "parcels",
    "parcels.gpkg:flags": "flags",
    "renewal_blocks.gpkg:renewal_blocks": "blocks",
    "policies.csv": "policies",
}
# The columns of 疑似闲置／低效地块 as the workbook writes them: which columns and in what order is checked against
# the data contract (test_workbook_headers_are_those_the_data_contract_documents); here, that each shows its label.
FLAG_SHEET = list(FLAG_SHEET_COLUMNS)
REVIEW_COLUMNS = ["review_status_label", "review_comment", "reviewed_by", "reviewed_at_label", "review_version"]
CHECKLIST = [
    "seq",
    "parcel_id",
    "park",
    "county",
    "holder",
    "users",
    "area_mu",
    "flags",
    "review_states",
    "lon_cgcs2000",
    "lat_cgcs2000",
    "lon_gcj02",
    "lat_gcj02",
    "map_link",
    "site_result",
    "site_checker",
]


def file_columns(out: Path, name: str) -> list[str]:
    """The columns of an output file, or a GeoPackage layer's attribute columns."""
    if name.endswith(".csv"):
        return list(pd.read_csv(out / name, nrows=0, encoding="utf-8-sig").columns)
    path, layer = name.split(":")
    return [c for c in pyogrio.read_info(out / path, layer=layer)["fields"] if c not in GEOMETRY]


def sheet_headers(data: bytes | Path) -> dict[str, list[object]]:
    """The header row (first row) of every sheet of a workbook."""
    wb = openpyxl.load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data, read_only=True)
    return {ws.title: list(next(ws.iter_rows(max_row=1, values_only=True), ())) for ws in wb.worksheets}


def shown(columns: list[str], table: str) -> list[str]:
    return [label(c, table).header for c in columns]


def docs_section(title: str) -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index(f"### {title}")
    return text[start : text.index("\n### ", start + 1)]


# --- the table ---------------------------------------------------------------------------------------------------
def test_a_label_is_its_name_with_the_unit_in_full_width_brackets():
    assert Label("税收", "万元").header == "税收（万元）"
    assert Label("分类").header == "分类"
    assert header("tax") == "税收（万元）" and header("land_mu") == "评价用地（亩）"
    assert header("score_rnd_intensity") == "研发经费支出占比得分（分）"
    assert header("area_mu") == "面积（亩）" and header("area_mu", "flags") == "宗地面积（亩）"
    assert header("enterprises", "blocks") == "企业统一社会信用代码" and header("enterprises", "flags") == "使用企业"
    with pytest.raises(KeyError):
        label("no_such_column")
    with pytest.raises(KeyError):
        label("tax", "no_such_table")


def test_input_fields_take_their_label_and_unit_from_the_data_contract():
    from geo_eval.inputs.fields import ENTERPRISE_FIELDS, PARCEL_FIELDS

    for f in (*PARCEL_FIELDS, *ENTERPRISE_FIELDS):
        assert COLUMNS[f.name] == Label(f.label, f.unit), f.name


def test_the_exceptions_by_table_are_few_and_name_columns_of_the_table():
    assert set(IN_TABLE) <= set(TABLES)
    for table, own in IN_TABLE.items():
        for column, lab in own.items():
            assert column in COLUMNS and COLUMNS[column] != lab, (table, column)
    assert sum(len(own) for own in IN_TABLE.values()) == 7


def test_a_column_labelled_twice_differently_is_refused_when_the_table_is_built():
    with pytest.raises(ValueError, match="labelled twice"):
        labels._merge({"x": Label("甲")}, {"x": Label("乙")})
    assert labels._merge({"x": Label("甲")}, {"x": Label("甲")}) == {"x": Label("甲")}


# --- every file of a run -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("year", [2024, 2025])
@pytest.mark.parametrize("name", list(FILES))
def test_every_column_of_every_output_file_has_exactly_one_label(sample_runs, year, name):
    columns = file_columns(sample_runs[year], name)
    assert len(columns) >= 8
    headers = shown(columns, FILES[name])  # KeyError: a column without a label
    assert len(set(headers)) == len(headers), "two columns of one file under the same Chinese header"


@pytest.mark.parametrize("year", [2024, 2025])
def test_rankings_xlsx_headers_are_the_tables(sample_runs, year):
    out = sample_runs[year]
    got = sheet_headers(out / "rankings.xlsx")
    columns = file_columns(out, "enterprises.csv")
    if year == 2024:  # no --previous: the comparison columns of enterprises.csv are empty, the sheets leave them out
        columns = [c for c in columns if c not in {"prev_grade", "prev_score", "grade_change"}]
    columns.remove("corrected_fields")  # evaluated without corrections: empty, and the sheets leave it out
    columns.append("rank_scope")  # 排名范围: beside each rank (park workbooks also give park_rank)
    ranking = list(ranking_headers(columns).values())
    assert ranking == [header(c, "enterprises") for c in ranking_headers(columns)]
    assert ranking[:4] == ["排名", "排名范围", "企业名称", "统一社会信用代码"]
    ranking_sheets = [
        s
        for s in got
        if s not in ("用地面积公示", "园区汇总", "基准值", "疑似闲置／低效地块", "连片改造区块", "说明")
        and not s.startswith("差别化政策·")  # the agency sheets: tests/test_policies.py
    ]
    assert len(ranking_sheets) == 3  # 规上企业, 规下企业（…）, 不参评企业（T类）
    for sheet in ranking_sheets:
        assert got[sheet] == ranking
    land = ["uscc", "name", "county", "park", "owned_parcels", "owned_m2", "leased_out_m2", "leased_parcels"]
    land += ["leased_in_m2", "land_m2", "land_mu", "grade"]
    assert got["用地面积公示"] == shown(land, "enterprises")
    summary = ["county", "park", "n_enterprises", "land_mu", "tax", "sales", "tax_per_mu"]
    assert got["园区汇总"] == shown(summary + [f"n_grade_{g}" for g in "ABCDT"], "enterprises")
    bench = ["unit", "group_label", "indicator", "benchmark", "minimum", "basis", "n"]
    assert got["基准值"] == shown(bench, "benchmarks")
    assert got["疑似闲置／低效地块"] == shown(FLAG_SHEET, "flags")
    assert got["连片改造区块"] == shown(file_columns(out, "renewal_blocks.gpkg:renewal_blocks"), "blocks")


@pytest.mark.parametrize("year", [2024, 2025])
def test_the_workbooks_flag_sheet_names_rules_in_chinese_like_the_download(sample_runs, year):
    wb = openpyxl.load_workbook(sample_runs[year] / "rankings.xlsx", read_only=True)
    rows = list(wb["疑似闲置／低效地块"].iter_rows(values_only=True))
    sheet = pd.DataFrame(rows[1:], columns=rows[0])
    flags = pd.read_csv(sample_runs[year] / "flags.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    candidates = (flags["flag"] == "renewal_candidate").to_numpy()
    assert candidates.sum() > 100 and flags["evidence"][candidates].str.startswith("规则=low_efficiency.").any()
    cited = sheet["证据"][candidates]
    assert cited.str.startswith("规则=").all() and cited.str.contains("低效用地·").any()
    ids = r"low_efficiency\.|idle_legal\.|idle_suspected\.|renewal_candidate"
    assert not sheet.astype(str).apply(lambda col: col.str.contains(ids)).any().any()
    assert (sheet["证据"][~candidates].fillna("") == flags["evidence"][~candidates]).all()


def test_workbook_headers_are_those_the_data_contract_documents(sample_runs):
    got = sheet_headers(sample_runs[2025] / "rankings.xlsx")
    # the 连片改造区块 sheet: `column`（header） pairs of the renewal_blocks.gpkg table
    rows = [line.split(" | ")[0] for line in docs_section("renewal_blocks.gpkg").splitlines() if line.startswith("| `")]
    pairs = re.findall(r"`(\w+)`（((?:[^（）]|（[^（）]*）)+)）", "\n".join(rows))
    assert len(pairs) == 16
    assert got["连片改造区块"] == [h for _, h in pairs]
    assert all(header(c, "blocks") == h for c, h in pairs)
    # 疑似闲置／低效地块: the list of its columns (English paragraph, remarks in ASCII brackets left out)
    text = docs_section("rankings.xlsx")
    listed = re.sub(r" \([^)]*\)", "", text[text.index("`flags.csv`, columns ") + len("`flags.csv`, columns ") :])
    documented = [h.strip() for h in listed.split(". ")[0].split(",")]
    assert got["疑似闲置／低效地块"] == documented
    # 用地面积公示
    listed = text[text.index("“用地面积公示”的列：") + len("“用地面积公示”的列：") :].split("。")[0]
    assert got["用地面积公示"] == listed.replace("\n", "").split("、")
    # the first columns of a ranking sheet
    first = (
        text[text.index("排名表的列：") + len("排名表的列：") :].replace("\n", "").split("、方案指标")[0].split("、")
    )
    assert (
        got["规上企业"][: len(first)]
        == first
        == [
            "排名",
            "排名范围",
            "企业名称",
            "统一社会信用代码",
            "县区",
            "园区",
            "评价分组",
            "行业代码",
            "评价用地（亩）",
        ]
    )


# --- the service's downloads -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def service(sample_runs, tmp_path_factory) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    data_dir = tmp_path_factory.mktemp("labels") / "data"
    store = open_store(data_dir)
    store.add_run(run_record_from_out_dir(sample_runs[2025]), actor="test")
    token = store.add_user("admin", "admin", [])[1]
    store.close()
    app = create_app(Settings(data_dir=data_dir, secret_key="l" * 48))
    with TestClient(app) as client:
        yield client, {"Authorization": f"Bearer {token}"}, sample_runs[2025]


def get(service, route: str, fmt: str) -> bytes:
    client, auth, _ = service
    r = client.get(f"{route}?format={fmt}", headers=auth)
    assert r.status_code == 200, r.text
    return r.content


def csv_columns(data: bytes) -> list[str]:
    return list(pd.read_csv(io.BytesIO(data), nrows=0, encoding="utf-8-sig").columns)


def test_ranking_downloads_have_the_workbooks_headers(service):
    out = service[2]
    got = sheet_headers(get(service, "/api/rankings/download", "xlsx"))
    written = sheet_headers(out / "rankings.xlsx")
    for sheet in ("规上企业", "规下企业（用地3亩及以上）", "不参评企业（T类）"):
        assert got[sheet] == written[sheet]
    # the csv download is the same table (every group in one), under the same Chinese headers
    assert csv_columns(get(service, "/api/rankings/download", "csv")) == written["规上企业"]
    assert file_columns(out, "enterprises.csv")[:2] == ["uscc", "name"]  # the file keeps its keys
    assert got["疑似闲置／低效地块"] == shown(["flag_id", *FLAG_SHEET, *REVIEW_COLUMNS], "flags")


def test_flag_downloads_label_every_column(service):
    columns = csv_columns(get(service, "/api/flags/download", "csv"))
    assert columns[:6] == ["flag_id", "parcel_id", "flag", "flag_label", "rule_id", "rule_label"]
    assert {"review_status", "reviewed_at", "reviewed_at_label"} <= set(columns)
    heads = shown(columns, "flags")
    assert len(set(heads)) == len(heads)
    got = sheet_headers(get(service, "/api/flags/download", "xlsx"))
    assert got["疑似闲置／低效地块"] == shown(["flag_id", *FLAG_SHEET, *REVIEW_COLUMNS], "flags")


def test_checklist_downloads_have_the_tables_headers(service):
    want = shown(CHECKLIST, "checklist")
    assert want[:7] == ["序号", "宗地代码", "园区", "县区", "权利人", "使用企业", "面积（亩）"]
    assert csv_columns(get(service, "/api/flags/checklist", "csv")) == want
    assert sheet_headers(get(service, "/api/flags/checklist", "xlsx"))["现场核查清单"] == want


# --- the map popups ----------------------------------------------------------------------------------------------
def test_popup_labels_are_the_tables(sample_runs):
    out = sample_runs[2025]
    parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels")
    shown_columns = attributes.parcel_attributes(parcels).columns
    for column, text, _, _ in attributes.POPUP_FIELDS:
        assert column in shown_columns
        assert text == header(column, "parcels")
    blocks = set(file_columns(out, "renewal_blocks.gpkg:renewal_blocks")) | {"grade_mix"}
    for column, text, _, _ in attributes.BLOCK_FIELDS:
        assert column in blocks
        assert text == header(column, "blocks")

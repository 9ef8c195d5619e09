"""Corrections (issue 13): ``geo-eval evaluate DATASET --corrections corrections.csv`` on the sample.

Two accepted objections of 2025 are corrected: the 用地面积 of 连云港海滨汐鸿水产食品有限公司's only parcel
(37 779.46 → 45 000 m², so 67.5 亩 instead of the polygon's 56.5859) and the 税收 of 青松县岚烨重工有限公司
(914.25 → 1200 万元). Both enterprises use one parcel alone and lease nothing, and the scheme's 2025 benchmarks
come from 2024 (``--previous``), so a correction changes only its enterprise's figures and item scores; the
classes and ranks of the two cells are then worked out by hand with sample_parcels/hand_rating.py's rule.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from geo_eval.cli import app
from geo_eval.errors import DatasetError
from geo_eval.inputs.corrections import CORRECTION_COLUMNS, apply_corrections, correction_table
from geo_eval.io import load_inputs, read_previous
from geo_eval.pipeline import evaluate_inputs
from geo_eval.rating.scheme import load_scheme
from geo_eval.storage.runs import run_id_of

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels"
sys.path.insert(0, str(SAMPLE))
import hand_rating  # noqa: E402  (imports nothing from geo_eval)

MU = 2000 / 3
LAND_FIRM, LAND_PARCEL = "91320700521558042Y", "320799003001GB00031"  # 海滨区 规上, A at rank 56 of 283
TAX_FIRM = "913207981346492008"  # 青松县 规上, B at rank 32 of 151
MISMATCH_FIRM = "91320700MA1FNW486A"  # its tax is 2666.27, the correction says the run had 2000
HEADER = ",".join(CORRECTION_COLUMNS)
ROWS = [  # file rows 2–5
    f"C001,,{LAND_PARCEL},registered_area_m2,37779.46,45000,权证面积与登记不符,O-101,张三,2026-05-06",
    f"C002,{TAX_FIRM},,tax,914.25,1200,税务部门复核,O-102,李四,2026-05-07",
    f"C003,{MISMATCH_FIRM},,tax,2000,2500,税务部门复核,O-103,李四,2026-05-07",
    "C004,,320799003001GB99999,registered_area_m2,100,200,宗地代码有误,O-104,张三,2026-05-08",
]
LAND_CHANGES = {"owned_m2", "land_m2", "land_mu", "tax_per_mu", "revenue_per_mu"}
LAND_CHANGES |= {"score_tax_per_mu", "score_revenue_per_mu"}
TAX_CHANGES = {"tax", "tax_per_mu", "tax_per_energy", "score_tax_per_mu", "score_tax_per_energy"}
RESULT_CHANGES = {"score", "score_change", "grade", "grade_label", "rank", "grade_change", "corrected_fields"}


def write_corrections(path: Path, rows: list[str], *, header: str = HEADER, bom: bool = True) -> Path:
    path.write_text(("\ufeff" if bom else "") + header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype={"uscc": str}).set_index("uscc")


def exceptions(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "exceptions.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)


def evaluate(args: list[str]) -> None:
    r = CliRunner().invoke(app, ["evaluate", *args])
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def corrected(sample_runs, tmp_path_factory) -> Path:
    """The sample 2025 evaluated like ``sample_runs[2025]`` (with ``--previous``), with the four corrections."""
    base = tmp_path_factory.mktemp("corrected")
    path = write_corrections(base / "corrections.csv", ROWS)
    out = base / "2025"
    evaluate(
        [str(SAMPLE / "2025"), "--out", str(out), "--previous", str(sample_runs[2024]), "--corrections", str(path)]
    )
    return out


def benchmark(out: Path, county: str, indicator: str) -> float:
    b = pd.read_csv(out / "benchmarks.csv", encoding="utf-8-sig")
    hit = b.loc[(b["unit"] == county) & (b["group"] == "above_scale") & (b["indicator"] == indicator), "benchmark"]
    return float(hit.iloc[0])


def hand_figures(before: pd.DataFrame, out: Path) -> dict[str, dict[str, float]]:
    """The corrected enterprises' figures, worked out from the inputs and the benchmarks (weights of the scheme:
    亩均税收 40, 亩均销售收入 20, 单位能耗税收 10)."""
    land = before.loc[LAND_FIRM]
    mu = 45000 / MU  # 67.5 亩: the corrected area is the parcel's evaluated land
    tp, rp = land["tax"] / mu, land["sales"] / mu
    items = {"score_tax_per_mu": 40 * tp / benchmark(out, "海滨区", "tax_per_mu")}
    items["score_revenue_per_mu"] = 20 * rp / benchmark(out, "海滨区", "revenue_per_mu")
    first = {"land_m2": 45000.0, "land_mu": mu, "tax_per_mu": tp, "revenue_per_mu": rp, **items}
    first["score"] = land["score"] + sum(items[k] - land[k] for k in items)
    firm = before.loc[TAX_FIRM]
    tp, te = 1200 / (firm["land_m2"] / MU), 1200 / firm["energy_tce"]
    items = {"score_tax_per_mu": 40 * tp / benchmark(out, "青松县", "tax_per_mu")}
    items["score_tax_per_energy"] = 10 * te / benchmark(out, "青松县", "tax_per_energy")
    second = {"tax": 1200.0, "tax_per_mu": tp, "tax_per_energy": te, **items}
    second["score"] = firm["score"] + sum(items[k] - firm[k] for k in items)
    return {LAND_FIRM: first, TAX_FIRM: second}


def hand_classes(scores: pd.Series) -> pd.DataFrame:
    """Classes and ranks of one county's 规上 cell by hand_rating's rule (score high first, then USCC)."""
    firms = [SimpleNamespace(uscc=u) for u in scores.index]
    results = {u: hand_rating.Result(u, score=float(s)) for u, s in scores.items()}
    hand_rating._grade_cell(firms, results)  # type: ignore[arg-type]
    return pd.DataFrame({u: {"grade": r.grade, "rank": r.rank} for u, r in results.items()}).T


def test_exactly_the_corrected_figures_change_and_the_classes_follow_by_hand(sample_runs, corrected):
    before, after = enterprises(sample_runs[2025]), enterprises(corrected).loc[enterprises(sample_runs[2025]).index]
    want = hand_figures(before, corrected)
    # the figures of the two corrected enterprises, by hand (to the decimals enterprises.csv keeps)
    for uscc, figures in want.items():
        for col, value in figures.items():
            assert after.loc[uscc, col] == pytest.approx(value, abs=0.006 if col == "score" else 1e-4), (uscc, col)
    assert after.loc[LAND_FIRM, "score"] == pytest.approx(90.55, abs=0.006)  # 104.84 − (88.3588 × 10.9141/67.5)
    assert after.loc[TAX_FIRM, "score"] == pytest.approx(117.91, abs=0.006)  # 101.36 + 52.9519 × 285.75/914.25
    assert after.loc[LAND_FIRM, "corrected_fields"] == "registered_area_m2"
    assert after.loc[TAX_FIRM, "corrected_fields"] == "tax"
    assert after["corrected_fields"].notna().sum() == 2  # C003 and C004 were not applied
    # classes and ranks of both cells, by hand from the scores (the others' scores stay as they were)
    scores = before["score"].copy()
    scores[LAND_FIRM], scores[TAX_FIRM] = after.loc[LAND_FIRM, "score"], after.loc[TAX_FIRM, "score"]
    for county in ("海滨区", "青松县"):
        cell = before.index[(before["county"] == county) & (before["group"] == "above_scale")]
        hand = hand_classes(scores[cell])
        hand.loc[before.loc[cell, "veto"].notna().to_numpy(), "grade"] = "D"  # vetoes after the classes
        assert after.loc[cell, "grade"].tolist() == hand["grade"].tolist(), county
        assert after.loc[cell, "rank"].astype(int).tolist() == hand["rank"].astype(int).tolist(), county
    moved = {u: (before.loc[u, "grade"], after.loc[u, "grade"]) for u in before.index}
    moved = {u: g for u, g in moved.items() if g[0] != g[1]}
    assert moved == {
        LAND_FIRM: ("A", "B"),  # 90.55: below the 56th score of 海滨区
        "91320100MA2FQA2H5R": ("B", "A"),  # 104.25 moves up to the 56th place, the last A
        TAX_FIRM: ("B", "A"),  # 117.91: 16th of 151
        "91320700MA6E3NHWXX": ("A", "B"),  # pushed from the 30th place (the last A) to the 31st
    }
    labels = {"A": "优先发展类", "B": "鼓励提升类"}
    assert {u: after.loc[u, "grade_label"] for u in moved} == {u: labels[g[1]] for u, g in moved.items()}
    # nothing else changed: every other column of every enterprise is as in the run without corrections
    changed = {LAND_FIRM: LAND_CHANGES | RESULT_CHANGES, TAX_FIRM: TAX_CHANGES | RESULT_CHANGES}
    cells = before.index[before["group"] == "above_scale"]  # of the two counties: their classes are checked above
    for uscc in before.index:
        ranked = {"grade", "grade_label", "rank", "grade_change"} if uscc in cells else set()
        cols = [c for c in before.columns if c not in changed.get(uscc, ranked)]
        pd.testing.assert_series_equal(before.loc[uscc, cols], after.loc[uscc, cols], check_names=False)


def test_every_correction_is_in_exceptions_csv_with_file_row_field_and_id(corrected):
    exc = exceptions(corrected)
    rows = exc.loc[exc["code"].str.startswith("correction_")].set_index("row")
    assert (rows["file"].str.endswith("corrections.csv")).all() and sorted(rows.index) == ["2", "3", "4", "5"]
    assert rows.loc["2", ["code", "severity", "field", "key", "value"]].tolist() == [
        "correction_applied",
        "提示",
        "registered_area_m2",
        LAND_PARCEL,
        "37779.46 → 45000",
    ]
    assert rows.loc["2", "problem"] == "更正 C001（异议 O-101）：用地面积由 37779.46 改为 45000 平方米"
    assert rows.loc["3", ["code", "field", "key", "value"]].tolist() == [
        "correction_applied",
        "tax",
        TAX_FIRM,
        "914.25 → 1200",
    ]
    assert rows.loc["3", "problem"] == "更正 C002（异议 O-102）：税收由 914.25 改为 1200 万元"
    mismatch = rows.loc["4"]
    assert (mismatch["code"], mismatch["severity"], mismatch["field"], mismatch["key"]) == (
        "correction_run_value_mismatch",
        "警告",
        "tax",
        MISMATCH_FIRM,
    )
    assert "C003" in mismatch["problem"] and "2000" in mismatch["problem"] and "2666.27" in mismatch["problem"]
    assert mismatch["action"].startswith("该条更正未执行")
    unknown = rows.loc["5"]
    assert (unknown["code"], unknown["field"], unknown["key"]) == (
        "correction_unknown_key",
        "registered_area_m2",
        "320799003001GB99999",
    )
    assert "C004" in unknown["problem"] and "不在宗地图层中" in unknown["problem"]
    # the corrected area is 19 % above the polygon's: reported, and evaluated as corrected
    mism = exc.loc[(exc["code"] == "area_mismatch") & (exc["key"] == LAND_PARCEL)]
    assert mism["action"].tolist() == ["按更正后的登记面积评价；请核实图形"]


def test_the_manifest_records_the_corrections_and_the_run_id_changes(sample_runs, corrected):
    m = json.loads((corrected / "manifest.json").read_text(encoding="utf-8"))
    data = (corrected.parent / "corrections.csv").read_bytes()
    c = m["corrections"]
    assert (c["sha256"], c["count"], c["applied"], c["rejected"]) == (hashlib.sha256(data).hexdigest(), 4, 2, 2)
    assert c["path"].endswith("corrections.csv") and m["inputs"]["corrections"]["sha256"] == c["sha256"]
    plain = json.loads((sample_runs[2025] / "manifest.json").read_text(encoding="utf-8"))
    assert "corrections" not in plain and "corrections" not in plain["inputs"]
    assert run_id_of(m) != run_id_of(plain)
    assert m["counts"]["exceptions"]["提示"] == plain["counts"]["exceptions"]["提示"] + 2


def test_dataset_toml_corrections_path_works_as_the_option(sample_runs, corrected, tmp_path):
    ds = tmp_path / "dataset"
    ds.mkdir()
    spec = (SAMPLE / "2025" / "dataset.toml").read_text(encoding="utf-8")
    spec = spec.replace('path = "', f'path = "{(SAMPLE / "2025").as_posix()}/')
    spec = spec.replace('"../../layers/', f'"{(ROOT / "layers").as_posix()}/')
    (ds / "dataset.toml").write_text(spec + '[corrections]\npath = "更正.csv"\n', encoding="utf-8")
    (ds / "更正.csv").write_bytes((corrected.parent / "corrections.csv").read_bytes())
    out = tmp_path / "out"
    evaluate([str(ds), "--out", str(out), "--previous", str(sample_runs[2024])])
    assert (out / "enterprises.csv").read_bytes() == (corrected / "enterprises.csv").read_bytes()
    exc = exceptions(out)
    assert set(exc.loc[exc["code"].str.startswith("correction_"), "file"]) == {"更正.csv"}
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["corrections"]["path"] == "更正.csv" and (m["corrections"]["applied"], m["corrections"]["rejected"]) == (
        2,
        2,
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (("\ufeff" + HEADER.replace(",objection_id", "") + "\n").encode("utf-8"), "缺少列 objection_id"),
        (("\ufeff" + HEADER + ",备注\nC1,,,tax,1,2,,,,,x\n").encode("utf-8"), "有不认识的列 备注"),
        ((HEADER + "\nC1,,,tax,1,2,税务复核,,,\n").encode("gbk"), "不是 UTF-8 编码"),
        (b"", "是空文件"),
    ],
)
def test_a_malformed_corrections_file_stops_with_a_chinese_error_and_exit_code_2(tmp_path, content, message):
    path = tmp_path / "corrections.csv"
    path.write_bytes(content)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["evaluate", str(SAMPLE / "2025"), "--out", str(out), "--corrections", str(path)])
    assert r.exit_code == 2
    assert "错误：更正文件" in r.output and message in r.output and str(path) in r.output.replace("\n", "")
    assert "Traceback" not in r.output and not out.exists()


def test_a_missing_corrections_file_is_named(tmp_path):
    r = CliRunner().invoke(
        app, ["evaluate", str(SAMPLE / "2025"), "--out", str(tmp_path / "o"), "--corrections", str(tmp_path / "x.csv")]
    )
    assert r.exit_code == 2 and "找不到更正文件" in r.output and "Traceback" not in r.output


# --- the rules, on the sample's inputs (no files written) -------------------------------------------------
@pytest.fixture(scope="module")
def inputs():
    return load_inputs(SAMPLE / "2025")[0]


def table(rows: list[list[str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(CORRECTION_COLUMNS))


def row(cid: str, uscc: str, parcel: str, field: str, run: str, new: str, objection: str = "") -> list[str]:
    return [cid, uscc, parcel, field, run, new, "理由", objection, "张三", "2026-05-06"]


def test_every_bad_row_is_reported_with_its_row_field_and_id_and_not_applied(inputs):
    tax = inputs.enterprises.loc[TAX_FIRM, "tax"]
    rows = [
        row("", TAX_FIRM, "", "tax", "914.25", "1000"),  # 2: no id
        row("D1", TAX_FIRM, "", "sales", "", "1"),  # 3, 4: the same id twice
        row("D1", TAX_FIRM, "", "employees", "", "1"),
        row("E1", TAX_FIRM, "", "税收", "914.25", "1000"),  # 5: not a field name
        row("E2", TAX_FIRM, "", "registered_area_m2", "1", "2"),  # 6: a parcel field keyed by USCC
        row("E3", TAX_FIRM, LAND_PARCEL, "tax", "914.25", "1000"),  # 7: both keys
        row("E4", TAX_FIRM, "", "tax", "914.25", "一千"),  # 8: not a number
        row("E5", TAX_FIRM, "", "energy_tce", "551.84", "-3"),  # 9: negative
        row("E6", "", LAND_PARCEL, "holder_uscc", LAND_FIRM, "91320700521558042X"),  # 10: check digit
        row("E7", TAX_FIRM, "", "rnd", "290.32", "300"),  # 11, 12: two corrections of one figure
        row("E8", TAX_FIRM, "", "rnd", "290.32", "310"),
        row("E9", TAX_FIRM, "", "value_added", "三千", "3000"),  # 13: run_value not a number
        row("E10", TAX_FIRM, "", "tax", "914.2", "1000"),  # 14: within 0.01? no: 0.05 off
    ]
    c = apply_corrections(inputs, correction_table(table(rows), "更正.csv"))
    got = c.inputs.problems.frame()
    got = got.loc[got["file"] == "更正.csv"].set_index("row")
    assert list(c.applied["correction_id"]) == [] and c.summary["rejected"] == 13
    codes = {
        2: "correction_missing_id",
        3: "correction_duplicate_id",
        4: "correction_duplicate_id",
        5: "correction_unknown_field",
        6: "correction_bad_key",
        7: "correction_bad_key",
        8: "correction_bad_value",
        9: "correction_bad_value",
        10: "correction_bad_value",
        11: "correction_conflict",
        12: "correction_conflict",
        13: "correction_bad_value",
        14: "correction_run_value_mismatch",
    }
    assert got["code"].to_dict() == codes
    assert (got["severity"] == "警告").all() and got["action"].str.startswith("该条更正未执行").all()
    for r, cid in zip(range(3, 15), ["D1", "D1", *[f"E{i}" for i in range(1, 11)]], strict=True):
        assert got.loc[r, "problem"].startswith(f"更正 {cid}："), r
        assert got.loc[r, "field"] == rows[r - 2][3]
    assert "第18位校验码不正确" in got.loc[10, "problem"] and "为负数" in got.loc[9, "problem"]
    assert got.loc[14, "key"] == TAX_FIRM and "914.2，本次输入中为 914.25" in got.loc[14, "problem"]
    assert c.inputs.enterprises.loc[TAX_FIRM, "tax"] == tax  # nothing applied


def test_corrections_never_touch_the_inputs_and_numbers_match_within_a_cent(inputs):
    before = inputs.enterprises.copy(), inputs.parcels.drop(columns="geometry").copy()
    rows = [
        row("A1", TAX_FIRM, "", "tax", "914.255", "1000.5", "O-1"),  # 0.005 from the input: the same figure
        row("A2", "", LAND_PARCEL, "registered_area_m2", "37779.46", "45000"),
        row("A3", TAX_FIRM, "", "emission_t", "", "12"),  # empty run_value: the input had none
    ]
    c = apply_corrections(inputs, correction_table(table(rows)))
    assert list(c.applied["correction_id"]) == ["A1", "A2", "A3"]
    assert c.applied["before"].tolist() == ["914.25", "37779.46", ""]
    assert c.inputs.enterprises.loc[TAX_FIRM, ["tax", "emission_t"]].tolist() == [1000.5, 12.0]
    assert c.inputs.parcels.loc[LAND_PARCEL, "registered_area_m2"] == 45000.0
    pd.testing.assert_frame_equal(inputs.enterprises, before[0])
    pd.testing.assert_frame_equal(inputs.parcels.drop(columns="geometry"), before[1])
    assert not any(inputs.problems.frame()["code"].str.startswith("correction_"))


def t_firm(inputs) -> str:
    """An enterprise the sample makes T by its 不参评原因 (and by nothing else)."""
    e = inputs.enterprises
    reason = e["exempt_reason"].notna() & ~e["industry_code"].fillna("").str[1:3].isin(["44", "45", "46"])
    old = pd.to_datetime(e["production_start"]) < pd.Timestamp("2023-01-01")
    return str(e.index[(reason & old & e["above_scale"].fillna(False).astype(bool)).to_numpy()][0])


def test_exempt_reason_set_and_cleared_and_a_parcel_given_to_another_holder(inputs):
    scheme = load_scheme("lianyungang")
    exempt = t_firm(inputs)
    reason = inputs.enterprises.loc[exempt, "exempt_reason"]
    other = "91320799683820138E"  # 海滨区 规上, B; holds one parcel
    held = inputs.parcels.index[inputs.parcels["holder_uscc"] == TAX_FIRM]
    (parcel,) = held
    rows = [
        row("X1", exempt, "", "exempt_reason", f"  {reason} ", "", "O-9"),  # cleared: rated again
        row("X2", TAX_FIRM, "", "exempt_reason", "", "政府收储中"),  # set: T
        row("X3", "", parcel, "holder_uscc", TAX_FIRM.lower(), other),  # TAX_FIRM's parcel → other
    ]
    plain = evaluate_inputs(inputs, scheme, flags=False).enterprises.set_index("uscc")
    result = evaluate_inputs(inputs, scheme, flags=False, corrections=table(rows))
    e = result.enterprises.set_index("uscc")
    assert plain.loc[exempt, "grade"] == "T" and e.loc[exempt, "grade"] in {"A", "B", "C", "D"}
    assert e.loc[TAX_FIRM, "grade"] == "T" and e.loc[TAX_FIRM, "exempt_reason"] != ""
    # TAX_FIRM has no land left; the other holds both parcels now
    assert e.loc[TAX_FIRM, "land_m2"] == 0 and e.loc[other, "parcel_count"] == plain.loc[other, "parcel_count"] + 1
    land = plain.loc[other, "land_m2"] + plain.loc[TAX_FIRM, "land_m2"]
    assert e.loc[other, "land_m2"] == pytest.approx(land, abs=0.01)
    assert e.loc[exempt, "corrected_fields"] == "exempt_reason"
    assert e.loc[TAX_FIRM, "corrected_fields"] == "exempt_reason;holder_uscc"  # the holder before
    assert e.loc[other, "corrected_fields"] == "holder_uscc"  # the holder after
    assert (e["corrected_fields"] != "").sum() == 3 and result.corrections["applied"] == 3
    assert result.corrections["path"] == "corrections.csv"


def test_a_frame_with_other_columns_is_refused_by_name():
    with pytest.raises(DatasetError, match=r"更正文件 corrections\.csv 缺少列 decided_at"):
        correction_table(table([]).drop(columns="decided_at"))


def test_last_years_enterprises_csv_is_read_with_or_without_corrected_fields(sample_runs, tmp_path):
    with_column = read_previous(sample_runs[2025])
    old = tmp_path / "old"
    old.mkdir()
    e = pd.read_csv(sample_runs[2025] / "enterprises.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert "corrected_fields" in e.columns
    e.drop(columns="corrected_fields").to_csv(old / "enterprises.csv", index=False, encoding="utf-8-sig")
    without = read_previous(old)
    cols = ["county", "group", "grade", "land_mu", "score", "tax"]
    pd.testing.assert_frame_equal(with_column[cols], without[cols])


def test_a_corrected_run_stored_in_postgis_gives_enterprises_csv_back_byte_for_byte(pg_db, sample_runs, tmp_path):
    import psycopg

    from geo_eval.db.results import enterprises_csv
    from geo_eval.io.run import run

    path = write_corrections(tmp_path / "corrections.csv", ROWS[:2], bom=False)
    out = tmp_path / "out"
    result = run(SAMPLE / "2025", load_scheme("lianyungang"), out, db=pg_db, corrections=path, report=False)
    assert result.stored is not None
    with psycopg.connect(pg_db) as conn:
        layout = conn.execute("SELECT columns FROM geo_eval.runs WHERE run_id = %s", (result.stored.run_id,)).fetchone()
        assert layout is not None
        stored = enterprises_csv(conn, result.stored.run_id, layout[0]["enterprises"])
    assert stored == (out / "enterprises.csv").read_bytes()
    e = enterprises(out)
    assert e["corrected_fields"].dropna().to_dict() == {LAND_FIRM: "registered_area_m2", TAX_FIRM: "tax"}
    assert np.isclose(e.loc[LAND_FIRM, "land_mu"], 67.5)

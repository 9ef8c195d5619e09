"""End to end through the CLI, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import catalogue
import geopandas as gpd
import openpyxl
import pandas as pd
import pyogrio
import pytest
from typer.testing import CliRunner

from geo_eval.cli import app

runner = CliRunner()


def evaluate(root: Path, out: Path, *extra: str, scheme: str = "huaian-2024"):
    result = runner.invoke(app, ["evaluate", str(root), "--scheme", scheme, "--out", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result


def read_enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype={"uscc": str}).set_index("uscc")


def test_outputs_and_hand_checked_figures(catalogue_dir, tmp_path):
    out = tmp_path / "out"
    result = evaluate(catalogue_dir, out)
    assert "海滨区" in result.output
    steps = [line for line in result.output.splitlines() if line.startswith("正在")]  # each step as it starts
    assert [s.split("……")[0] for s in steps] == [
        "正在读取并校验输入数据",
        "正在评价、标记地块、划定连片改造区块",
        "正在写出结果文件（排名表、宗地图层、报告）",
    ] and all("已用" in s for s in steps)
    assert sorted(p.name for p in out.iterdir()) == [
        "benchmarks.csv",
        "enterprises.csv",
        "exceptions.csv",
        "flags.csv",
        "manifest.json",
        "parcels.gpkg",
        "policies.csv",  # the preset's [[policies]]
        "rankings.xlsx",
        "renewal_blocks.gpkg",
        "report.html",
    ]
    assert (out / "enterprises.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # BOM for Excel/WPS
    e = read_enterprises(out)
    E = catalogue.E
    for col in (
        "name",
        "county",
        "park",
        "group",
        "land_mu",
        "tax",
        "sales",
        "energy_tce",
        "tax_per_mu",
        "revenue_per_mu",
        "tax_per_energy",
        "score",
        "grade",
        "rank",
        "exempt_reason",
    ):
        assert col in e.columns
    assert e.loc[E[2], "land_mu"] == pytest.approx(10.5)
    assert e.loc[E[2], "tax_per_mu"] == pytest.approx(20.0)
    # No previous year: benchmark = 2 × this year's aggregate. 规上 (E1–E4): Σtax 1260 / Σland 63 亩 = 20 → 40;
    # Σsales/Σland = 200 → 400; Σtax/Σenergy = 1260/630 = 2 → 4. Every 规上 firm is exactly at the mean:
    # 45 × 20/40 + 35 × 200/400 + 20 × 2/4 = 50.
    assert e.loc[[E[1], E[2], E[3], E[4]], "score"].tolist() == [50.0] * 4
    # 规下 ≥ 3 亩 (E5 4.5 亩 lessee, E6 9 亩, E7 exactly 3 亩): Σtax 150 / Σland 16.5 = 9.0909 → k=2 → 18.1818
    bench = 2 * 150 / 16.5
    rev_bench = 2 * 1500 / 16.5
    energy_bench = 2 * 150 / 60
    e7 = 45 * 5 / bench + 35 * 50 / rev_bench + 20 * 1.5 / energy_bench
    assert e.loc[E[7], "score"] == pytest.approx(round(e7, 2))
    assert e.loc[E[7], "grade"] == "D"  # last of 3: floor(3 × 0.95) = 2 → position 3 is D
    assert e.loc[E[8], "grade"] == "T" and pd.isna(e.loc[E[8], "score"])  # 2.25 亩 规下: out of scope
    assert e.loc[E[9], "grade"] == "T" and "公用事业" in e.loc[E[9], "exempt_reason"]

    p = gpd.read_file(out / "parcels.gpkg", layer="parcels").set_index("parcel_id")
    for col in ("area_m2", "area_mu", "area_diff_pct", "grade", "tax_per_mu", "holder_uscc", "county", "park"):
        assert col in p.columns
    assert p.loc["P3", "area_mu"] == pytest.approx(22.5)
    # P3: E4 uses 12 000 m² (its whole land) → 360 万元; E5 uses 3 000 m² (its whole land) → 45 万元; / 22.5 亩
    assert p.loc["P3", "tax_per_mu"] == pytest.approx((360 + 45) / 22.5)
    assert p.loc["P3", "grade"] == e.loc[E[4], "grade"]
    assert pd.isna(p.loc["P8", "grade"])

    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert m["scheme"]["name"] == "huaian-2024" and len(m["scheme"]["sha256"]) == 64
    assert set(m["inputs"]) == {"dataset", "parcels", "enterprises", "leases"}
    assert m["grades"]["海滨区"]["T"] == 2
    assert any("未提供上年评价结果" in f for f in m["fallbacks"])


def test_rankings_workbook_is_for_people(catalogue_dir, tmp_path):
    out = tmp_path / "out"
    evaluate(catalogue_dir, out)
    wb = openpyxl.load_workbook(out / "rankings.xlsx")
    assert wb.sheetnames == [
        "规上企业",
        "规下企业（用地3亩及以上）",
        "不参评企业（T类）",
        "用地面积公示",
        "园区汇总",
        "基准值",
        "疑似闲置／低效地块",  # Excel forbids "/" in sheet names: a full-width slash
        "连片改造区块",
        "差别化政策·供电公司",  # one sheet per agency of the scheme's [[policies]]
        "差别化政策·水务",
        "差别化政策·燃气公司",
        "差别化政策·税务",
        "差别化政策·自然资源",
        "说明",
    ]
    ws = wb["规上企业"]
    headers = [c.value for c in ws[1]]
    assert headers[:4] == ["排名", "排名范围", "企业名称", "统一社会信用代码"]
    assert "亩均税收（万元/亩）" in headers and "税收（万元）" in headers and "评价用地（亩）" in headers
    assert ws.freeze_panes == "D2"  # the header row and the columns up to the name stay in view
    land_col = headers.index("评价用地（亩）") + 1
    assert isinstance(ws.cell(row=2, column=land_col).value, (int, float))  # numbers as numbers, not text
    land = wb["用地面积公示"]
    lh = [c.value for c in land[1]]
    rows = {r[0]: r for r in land.iter_rows(min_row=2, values_only=True)}
    assert rows[catalogue.E[2]][lh.index("出租土地面积（平方米）")] == pytest.approx(3000.0)
    assert rows[catalogue.E[5]][lh.index("承租宗地")] == "P3"


def test_same_inputs_give_byte_identical_tables(catalogue_dir, tmp_path):
    evaluate(catalogue_dir, tmp_path / "a")
    # again in another process with another string hash seed: no order may come from a set or a dict of hashes
    cmd = [sys.executable, "-m", "geo_eval", "evaluate", str(catalogue_dir), "--scheme", "huaian-2024"]
    env = {**os.environ, "PYTHONHASHSEED": "7"}
    proc = subprocess.run([*cmd, "--out", str(tmp_path / "b")], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    for name in ("enterprises.csv", "exceptions.csv", "benchmarks.csv", "flags.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert len(pd.read_csv(tmp_path / "a" / "flags.csv", encoding="utf-8-sig")) > 0
    for name, layer in (("renewal_blocks.gpkg", "renewal_blocks"), ("parcels.gpkg", "flags")):
        a = pyogrio.read_dataframe(tmp_path / "a" / name, layer=layer)
        b = pyogrio.read_dataframe(tmp_path / "b" / name, layer=layer)
        assert len(a) > 0, (name, layer)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert a.geometry.to_wkb().tolist() == b.geometry.to_wkb().tolist(), (name, layer)


def test_existing_output_is_not_overwritten_without_flag(catalogue_dir, tmp_path):
    out = tmp_path / "out"
    evaluate(catalogue_dir, out)
    (out / "keep.txt").write_text("x")
    result = runner.invoke(app, ["evaluate", str(catalogue_dir), "--out", str(out)])
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert (out / "keep.txt").exists()
    evaluate(catalogue_dir, out, "--overwrite")
    assert not (out / "keep.txt").exists()
    assert not list(tmp_path.glob(".out.*"))  # no temporary directories left behind


def test_previous_year_sets_benchmarks_and_compares(tmp_path):
    prev_root = catalogue.write_dataset(tmp_path / "2024", year=2024)
    evaluate(prev_root, tmp_path / "o2024")
    e = catalogue.enterprises()
    e.loc[0, "tax"] = 1200  # E1 doubles its tax
    cur_root = catalogue.write_dataset(tmp_path / "2025", enterprises_df=e, year=2025)
    evaluate(cur_root, tmp_path / "o2025", "--previous", str(tmp_path / "o2024"))
    cur = read_enterprises(tmp_path / "o2025")
    b = pd.read_csv(tmp_path / "o2025" / "benchmarks.csv", encoding="utf-8-sig")
    tax_b = b.loc[(b["group"] == "above_scale") & (b["indicator"] == "tax_per_mu"), "benchmark"].iloc[0]
    assert tax_b == pytest.approx(40.0)  # 2 × last year's 1260 / 63
    E1 = catalogue.E[1]
    # E1: 45 × 40/40 + 35 × 200/400 + 20 × 4/4 = 82.5
    assert cur.loc[E1, "score"] == pytest.approx(82.5)
    assert cur.loc[E1, "prev_score"] == pytest.approx(50.0)
    assert cur.loc[E1, "rank"] == 1
    # Last year all four 规上 tied at 50 across the C/D cut (position 4 of 4 is D), and a tie across
    # that cut is all D. This year: A = floor(4 × 0.2) = 0 places, so E1 is B although it ranks first.
    assert cur.loc[E1, "prev_grade"] == "D" and cur.loc[E1, "grade"] == "B"
    assert cur.loc[E1, "grade_change"] == "上升"
    assert cur.loc[catalogue.E[2], "grade"] == "D"  # the three still tied at 50 share positions 2–4
    m = json.loads((tmp_path / "o2025" / "manifest.json").read_text(encoding="utf-8"))
    assert m["fallbacks"] == []


def test_scheme_file_errors_are_listed(tmp_path, catalogue_dir):
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "x"\ntitle = "x"\n[[groups]]\nkey = "g"\nlabel = "g"\n'
        '  [[groups.indicators]]\n  key = "tax_per_acre"\n  weight = 60\n  benchmark = "fixed"\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["evaluate", str(catalogue_dir), "--scheme", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "未知指标 'tax_per_acre'" in result.output


def test_real_entry_point_runs(catalogue_dir, tmp_path):
    exe = Path(sys.executable).parent / "geo-eval"
    proc = subprocess.run([str(exe), "schemes"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and "huaian-2024" in proc.stdout and "lianyungang" in proc.stdout
    proc = subprocess.run(
        [str(exe), "evaluate", str(catalogue_dir), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "o" / "rankings.xlsx").exists()

"""Every bad-input case: reported in the exceptions with file, row and field; fatal ones stop the run."""

from pathlib import Path

import catalogue
import pandas as pd
import pytest
from shapely.geometry import Polygon
from typer.testing import CliRunner

from geo_eval.cli import app
from geo_eval.io import load_inputs
from geo_eval.rating.evaluate import evaluate
from geo_eval.rating.scheme import load_scheme

runner = CliRunner()


def problems_of(root: Path, *, run: bool = True) -> pd.DataFrame:
    inputs, _, _ = load_inputs(root)
    if run and not inputs.problems.has_fatal:
        return evaluate(inputs, load_scheme("huaian-2024")).problems.frame()
    return inputs.problems.frame()


def one(df: pd.DataFrame, code: str) -> pd.Series:
    hit = df.loc[df["code"] == code]
    assert len(hit) == 1, df[["file", "row", "field", "code", "problem"]].to_string()
    return hit.iloc[0]


def run_cli(root: Path, out: Path):
    return runner.invoke(app, ["evaluate", str(root), "--scheme", "huaian-2024", "--out", str(out)])


def test_invalid_uscc_check_is_a_warning_and_row_is_kept(tmp_path):
    e = catalogue.enterprises()
    bad = e.loc[0, "uscc"][:17] + ("0" if e.loc[0, "uscc"][17] != "0" else "1")
    e.loc[0, "uscc"] = bad
    p = catalogue.parcels()
    p.loc[0, "holder_uscc"] = bad
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e, parcels_gdf=p)
    df = problems_of(root)
    row = df.loc[(df["code"] == "uscc_invalid") & (df["file"] == "enterprises.csv")].iloc[0]
    assert (row["row"], row["field"], row["value"], row["severity"]) == (2, "uscc", bad, "警告")
    assert "校验码不正确" in row["problem"]
    result = run_cli(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out" / "enterprises.csv", dtype=str)
    assert bad in set(out["uscc"])


@pytest.mark.parametrize(
    ("table", "change", "code", "row", "field"),
    [
        (
            "enterprises",
            lambda e: e.assign(uscc=e["uscc"].where(e.index != 3, e.loc[1, "uscc"])),
            "duplicate_key",
            3,
            "uscc",
        ),
        ("enterprises", lambda e: e.assign(county=e["county"].where(e.index != 2, None)), "missing_value", 4, "county"),
        (
            "enterprises",
            lambda e: e.assign(tax=e["tax"].astype(object).where(e.index != 4, "约三百")),
            "not_a_number",
            6,
            "tax",
        ),
        ("enterprises", lambda e: e.assign(sales=e["sales"].where(e.index != 5, -10)), "negative", 7, "sales"),
        (
            "parcels",
            lambda p: p.assign(parcel_id=p["parcel_id"].where(p.index != 2, "P1")),
            "duplicate_key",
            3,
            "parcel_id",
        ),
        (
            "parcels",
            lambda p: p.assign(parcel_id=p["parcel_id"].where(p.index != 1, None)),
            "missing_value",
            2,
            "parcel_id",
        ),
    ],
)
def test_fatal_problems_stop_the_run_with_exit_code_2(tmp_path, table, change, code, row, field):
    e, p = catalogue.enterprises(), catalogue.parcels()
    if table == "enterprises":
        e = change(e)
    else:
        p = change(p)
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e, parcels_gdf=p)
    df = problems_of(root, run=False)
    fatal = df.loc[(df["code"] == code) & (df["severity"] == "致命")]
    assert row in set(fatal["row"]), df.to_string()
    assert set(fatal["field"]) == {field}
    result = run_cli(root, tmp_path / "out")
    assert result.exit_code == 2
    assert "致命问题" in result.output
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_duplicate_rows_are_both_listed(tmp_path):
    e = catalogue.enterprises()
    e.loc[3, "uscc"] = e.loc[1, "uscc"]
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    dup = problems_of(root, run=False).query("code == 'duplicate_key'")
    assert sorted(dup["row"]) == [3, 5]
    assert "第 3、5 行" in dup["problem"].iloc[0]


def test_self_intersecting_parcel_is_repaired_and_reported(tmp_path):
    p = catalogue.parcels()
    x0, y0 = catalogue.X0, catalogue.Y0
    # A bow-tie over P1's rectangle: make_valid splits it into two triangles of 5 000 m² each.
    p.loc[0, "geometry"] = Polygon([(x0, y0), (x0 + 200, y0 + 100), (x0 + 200, y0), (x0, y0 + 100)])
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    inputs, _, _ = load_inputs(root)
    r = one(inputs.problems.frame(), "geometry_repaired")
    assert (r["row"], r["field"], r["severity"]) == (1, "geometry", "警告")
    assert "make_valid" in r["action"]
    ev = evaluate(inputs, load_scheme("huaian-2024"))
    assert ev.parcels.loc["P1", "area_m2"] == pytest.approx(10_000.0)


def test_empty_geometry_is_fatal(tmp_path):
    p = catalogue.parcels()
    p.loc[4, "geometry"] = Polygon()
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    r = one(problems_of(root, run=False), "empty_geometry")
    assert (r["row"], r["severity"]) == (5, "致命")


@pytest.mark.filterwarnings("ignore:'crs' was not provided:UserWarning")
def test_no_crs_is_fatal_with_a_hint_and_dataset_crs_fixes_it(tmp_path):
    p = catalogue.parcels()
    p = p.set_geometry(p.geometry.translate(xoff=40_000_000)).set_crs(None, allow_override=True)
    root = catalogue.write_dataset(tmp_path / "ds", parcels_gdf=p)
    r = one(problems_of(root, run=False), "no_crs")
    assert r["severity"] == "致命"
    assert 'crs = "EPSG:4528"' in r["action"]  # the 8-digit easting reveals zone 40 with prefix
    toml = (root / "dataset.toml").read_text(encoding="utf-8")
    (root / "dataset.toml").write_text(
        toml.replace('path = "parcels.gpkg"', 'path = "parcels.gpkg"\ncrs = "EPSG:4528"'), encoding="utf-8"
    )
    inputs, _, _ = load_inputs(root)
    assert not inputs.problems.has_fatal
    ev = evaluate(inputs, load_scheme("huaian-2024"))
    assert ev.parcels.loc["P1", "area_m2"] == pytest.approx(20_000.0)


def test_parcel_of_unknown_enterprise_and_enterprise_without_land(tmp_path):
    e = catalogue.enterprises()
    e = e.loc[e["uscc"] != catalogue.E[7]]  # P5's holder disappears from the table
    extra = e.iloc[[0]].assign(uscc=catalogue.make_uscc(99_999), name="无地公司")
    e = pd.concat([e, extra], ignore_index=True)
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    df = problems_of(root)
    orphan = one(df, "holder_not_in_enterprises")
    assert (orphan["file"], orphan["row"], orphan["value"]) == ("parcels.gpkg", 5, catalogue.E[7])
    noland = one(df, "enterprise_no_land")
    assert (noland["file"], noland["row"], noland["severity"]) == ("enterprises.csv", 10, "警告")
    result = run_cli(root, tmp_path / "out")
    assert result.exit_code == 0, result.output
    out = pd.read_csv(tmp_path / "out" / "enterprises.csv", dtype=str).set_index("uscc")
    assert out.loc[catalogue.make_uscc(99_999), "grade"] == "T"
    assert "无评价用地" in out.loc[catalogue.make_uscc(99_999), "exempt_reason"]
    exc = pd.read_csv(tmp_path / "out" / "exceptions.csv", dtype=str)
    assert {"holder_not_in_enterprises", "enterprise_no_land"} <= set(exc["code"])


def test_lease_problems(tmp_path):
    leases = pd.concat(
        [
            catalogue.leases(),
            pd.DataFrame(
                [
                    {
                        "lessee_uscc": catalogue.E[6],
                        "parcel_id": "P99",
                        "leased_land_m2": 100.0,
                        "leased_floor_m2": None,
                    },
                    {"lessee_uscc": catalogue.E[6], "parcel_id": "P1", "leased_land_m2": None, "leased_floor_m2": None},
                ]
            ),
        ],
        ignore_index=True,
    )
    root = catalogue.write_dataset(tmp_path / "ds", leases_df=leases)
    df = problems_of(root)
    assert one(df, "lease_unknown_parcel")["row"] == 4
    assert one(df, "lease_no_area")["row"] == 5


def test_validate_command_lists_everything_and_writes_report(tmp_path):
    e = catalogue.enterprises()
    e.loc[2, "county"] = None
    e.loc[4, "tax"] = -1
    root = catalogue.write_dataset(tmp_path / "ds", enterprises_df=e)
    report = tmp_path / "report.csv"
    result = runner.invoke(app, ["validate", str(root), "--report", str(report)])
    assert result.exit_code == 2
    df = pd.read_csv(report, encoding="utf-8-sig", dtype=str)
    assert list(df.columns) == ["file", "row", "field", "value", "problem", "severity", "action", "code", "key"]
    assert {("4", "missing_value"), ("6", "negative")} <= set(zip(df["row"], df["code"], strict=True))

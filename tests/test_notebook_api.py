"""The notebook API: ``geo_eval.evaluate_frames`` on frames read as an analyst reads them, its ``Result``,
and a pure ``evaluate`` (README: 在 notebook 中使用)."""

from __future__ import annotations

import copy
import doctest
import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from pandas.testing import assert_frame_equal

import geo_eval
from geo_eval import FatalInputError, Raster, Result, evaluate, evaluate_frames, load_scheme
from geo_eval.inputs.fields import TABLE_FIELDS, normalize_header
from geo_eval.io import load_inputs

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels"
BUILTUP = ROOT / "layers" / "builtup_10m.tif"
LABELS = {"parcels": "parcels.gpkg", "enterprises": "enterprises.xlsx", "leases": "leases.csv"}
"""How the CLI's problem reports name the sample's files (their paths in dataset.toml)."""


def read_year(year: int, *, header: int | None = 1) -> dict[str, pd.DataFrame]:
    """The sample's files as a notebook reads them (the workbook's first row is its title)."""
    d = SAMPLE / str(year)
    return {
        "parcels": gpd.read_file(d / "parcels.gpkg"),
        "enterprises": pd.read_excel(d / "enterprises.xlsx", header=header),
        "leases": pd.read_csv(d / "leases.csv"),
    }


@pytest.fixture(scope="module")
def frames_2025() -> dict[str, pd.DataFrame]:
    return read_year(2025)


def as_cli(year: int, **kw: object) -> Result:
    """``evaluate_frames`` on the sample year as ``geo-eval evaluate`` evaluates its directory."""
    date = {2024: "2025-03-31", 2025: "2026-03-31"}[year]
    f = read_year(year, header=None)
    options: dict[str, object] = {"builtup": BUILTUP} if year == 2025 else {}
    options.update(kw)
    return evaluate_frames(
        f["parcels"],
        f["enterprises"],
        f["leases"],
        scheme="lianyungang",
        year=year,
        evaluation_date=date,
        files=LABELS,
        **options,  # type: ignore[arg-type]
    )


def english(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every contract header (units in brackets included) renamed to its English name."""
    by_label = {}
    for f in TABLE_FIELDS[table]:
        for h in (f.label, *f.aliases):
            by_label[normalize_header(h)[0]] = f.name
    out = frame.rename(columns=lambda c: by_label.get(normalize_header(c)[0], c))
    assert not set(out.columns) & set(frame.columns) - {"geometry"}, "every header should have been renamed"
    return out


def layer(path: Path, name: str | None = None) -> tuple[pd.DataFrame, list[bytes]]:
    df = pyogrio.read_dataframe(path, layer=name) if name else pyogrio.read_dataframe(path)
    return pd.DataFrame(df.drop(columns="geometry")), list(shapely.to_wkb(df.geometry.to_numpy()))


def cells(path: Path) -> list[tuple[str, list[tuple[object, ...]]]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    out = [(ws.title, [tuple(r) for r in ws.iter_rows(values_only=True)]) for ws in wb.worksheets]
    wb.close()
    return out


def manifest(out: Path) -> dict[str, object]:
    m = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for key in ("timings_s", "inputs", "dataset", "previous"):  # the CLI's paths; frames have none
        m.pop(key, None)
    return m


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    (tmp_path / "sample_parcels").symlink_to(SAMPLE)
    monkeypatch.chdir(tmp_path)
    result = doctest.testfile(str(ROOT / "README.md"), module_relative=False, globs={}, report=True)
    assert result.attempted >= 7 and result.failed == 0
    assert (tmp_path / "out" / "notebook-2025" / "flags.csv").is_file()


@pytest.mark.parametrize("year", [2024, 2025])
def test_write_is_what_geo_eval_evaluate_writes_byte_for_byte(year, sample_runs, tmp_path):
    cli = sample_runs[year]
    previous = pd.read_csv(sample_runs[2024] / "enterprises.csv") if year == 2025 else None
    result = as_cli(year, previous=previous)
    result.write(tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in cli.iterdir())
    for name in ("enterprises.csv", "flags.csv", "benchmarks.csv", "exceptions.csv", "policies.csv"):
        assert (out / name).read_bytes() == (cli / name).read_bytes(), name
    for file, name in (("parcels.gpkg", "parcels"), ("parcels.gpkg", "flags"), ("renewal_blocks.gpkg", None)):
        (attrs, wkb), (cli_attrs, cli_wkb) = layer(out / file, name), layer(cli / file, name)
        assert_frame_equal(attrs, cli_attrs)
        assert wkb == cli_wkb
    assert cells(out / "rankings.xlsx") == cells(cli / "rankings.xlsx")
    assert manifest(out) == manifest(cli)
    inputs = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    assert list(inputs) == (["builtup"] if year == 2025 else [])  # frames are no files; the raster is one


def test_the_tables_have_the_columns_and_rows_of_the_files(sample_runs):
    cli = sample_runs[2025]
    result = as_cli(2025, previous=pd.read_csv(sample_runs[2024] / "enterprises.csv"))
    csv = {n: pd.read_csv(cli / f"{n}.csv", encoding="utf-8-sig") for n in ("enterprises", "flags", "exceptions")}
    assert list(result.enterprises.columns) == list(csv["enterprises"].columns)
    assert result.enterprises["uscc"].tolist() == csv["enterprises"]["uscc"].tolist()
    assert list(result.flags.columns) == list(csv["flags"].columns) and len(result.flags) == len(csv["flags"]) == 558
    assert list(result.problems.columns) == list(csv["exceptions"].columns)
    assert result.problems["code"].tolist() == csv["exceptions"]["code"].tolist()
    assert_frame_equal(result.benchmarks.reset_index(drop=True), pd.read_csv(cli / "benchmarks.csv"), check_dtype=False)
    gpkg = gpd.read_file(cli / "parcels.gpkg", layer="parcels")
    assert list(result.parcels.columns) == list(gpkg.columns)
    assert result.parcels.crs == gpkg.crs and len(result.parcels) == 790
    assert result.parcels["parcel_id"].tolist() == gpkg["parcel_id"].tolist()
    policies = pd.read_csv(cli / "policies.csv", encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert result.policies is not None and list(result.policies.columns) == list(policies.columns)
    assert result.policies.astype(str).values.tolist() == policies.values.tolist()
    blocks = gpd.read_file(cli / "renewal_blocks.gpkg")
    assert list(result.blocks.columns) == list(blocks.columns)
    assert result.blocks["block_id"].tolist() == blocks["block_id"].tolist()


def test_english_and_chinese_headers_give_the_same_result(frames_2025):
    f = frames_2025
    chinese = evaluate_frames(f["parcels"], f["enterprises"], f["leases"], scheme="lianyungang", year=2025)
    en = {t: english(t, f[t]) for t in ("parcels", "enterprises", "leases")}
    assert "uscc" in en["enterprises"] and "tax" in en["enterprises"] and "holder_uscc" in en["parcels"]
    result = evaluate_frames(en["parcels"], en["enterprises"], en["leases"], scheme="lianyungang", year=2025)
    assert_frame_equal(result.enterprises, chinese.enterprises)
    assert_frame_equal(pd.DataFrame(result.parcels), pd.DataFrame(chinese.parcels))
    assert_frame_equal(result.flags, chinese.flags)
    assert_frame_equal(pd.DataFrame(result.blocks), pd.DataFrame(chinese.blocks))
    assert_frame_equal(result.benchmarks, chinese.benchmarks)
    # The problems are the same; a problem about a column names it by the header it was given.
    rest = [c for c in result.problems.columns if c != "field"]
    assert_frame_equal(result.problems[rest], chinese.problems[rest])
    renamed = result.problems["field"] != chinese.problems["field"]
    pairs = set(zip(chinese.problems.loc[renamed, "field"], result.problems.loc[renamed, "field"], strict=True))
    assert pairs == {
        ("统一社会信用代码", "uscc"),
        ("权利人统一社会信用代码", "holder_uscc"),
        ("承租方统一社会信用代码", "lessee_uscc"),
    }


def test_warnings_are_in_problems_with_file_row_and_key(frames_2025):
    f = frames_2025
    result = evaluate_frames(f["parcels"], f["enterprises"], f["leases"], scheme="lianyungang", year=2025)
    p = result.problems
    assert p["severity"].value_counts().to_dict() == {"警告": 40, "提示": 15}
    bad = p.loc[p["code"] == "uscc_invalid"].iloc[0]
    # The header is row 1 of the frame as read (header=1 dropped the title): the workbook's row 110.
    assert (bad["file"], bad["row"], bad["key"]) == ("enterprises", 109, "91320799583747197M")
    raw = read_year(2025, header=None)
    kept = evaluate_frames(raw["parcels"], raw["enterprises"], raw["leases"], scheme="lianyungang", year=2025)
    assert kept.problems.loc[kept.problems["code"] == "uscc_invalid", "row"].iloc[0] == 110


def test_fatal_problems_raise_one_error_that_lists_them_all(frames_2025):
    f = {k: v.copy() for k, v in frames_2025.items()}
    before = {k: v.copy() for k, v in f.items()}
    f["enterprises"].loc[4, "统一社会信用代码"] = None
    f["enterprises"].loc[7, "税收（万元）"] = -5.0
    f["parcels"].loc[2, "宗地代码"] = f["parcels"].loc[1, "宗地代码"]
    changed = {k: v.copy() for k, v in f.items()}
    with pytest.raises(FatalInputError) as info:
        evaluate_frames(f["parcels"], f["enterprises"], f["leases"], scheme="lianyungang", year=2025)
    report = info.value.frame
    fatal = report.loc[report["severity"] == "致命"]
    got = set(zip(fatal["file"], fatal["row"], fatal["code"], strict=True))
    assert got == {
        ("enterprises", 6, "missing_value"),
        ("enterprises", 9, "negative"),
        ("parcels", 2, "duplicate_key"),
        ("parcels", 3, "duplicate_key"),
    }
    assert "4 个致命问题" in str(info.value)
    # The warnings come with them, the cross-table ones included (computed on the keys without evaluating).
    warnings = report.loc[report["severity"] == "警告", "code"].value_counts().to_dict()
    assert warnings == {"uscc_invalid": 6, "holder_not_in_enterprises": 5, "geometry_repaired": 2}
    assert isinstance(info.value, geo_eval.DatasetError)
    for k in f:  # the frames are left as they were given
        assert_frame_equal(pd.DataFrame(f[k]), pd.DataFrame(changed[k]))
    assert not before["enterprises"].equals(f["enterprises"])


def test_missing_column_and_a_frame_without_geometry_are_clear_errors(frames_2025):
    f = frames_2025
    with pytest.raises(geo_eval.DatasetError, match="缺少必需的列 税收（tax）"):
        evaluate_frames(f["parcels"], f["enterprises"].drop(columns="税收（万元）"), scheme="lianyungang", year=2025)
    with pytest.raises(geo_eval.DatasetError, match="GeoDataFrame"):
        evaluate_frames(
            pd.DataFrame(f["parcels"].drop(columns="geometry")), f["enterprises"], scheme="lianyungang", year=2025
        )


def test_previous_as_result_or_as_its_enterprises_csv(sample_runs, frames_2025):
    f = frames_2025
    last = read_year(2024)
    r2024 = evaluate_frames(last["parcels"], last["enterprises"], last["leases"], scheme="lianyungang", year=2024)
    csv = pd.read_csv(sample_runs[2024] / "enterprises.csv")
    args = (f["parcels"], f["enterprises"], f["leases"])
    from_result = evaluate_frames(*args, scheme="lianyungang", year=2025, previous=r2024)
    from_csv = evaluate_frames(*args, scheme="lianyungang", year=2025, previous=csv)
    by_uscc = evaluate_frames(*args, scheme="lianyungang", year=2025, previous=csv.set_index("uscc"))
    alone = evaluate_frames(*args, scheme="lianyungang", year=2025)
    for other in (from_csv, by_uscc):
        assert_frame_equal(from_result.enterprises, other.enterprises)
        assert_frame_equal(from_result.benchmarks, other.benchmarks)
        assert_frame_equal(from_result.flags, other.flags)
    e = from_result.enterprises
    cli = pd.read_csv(sample_runs[2025] / "enterprises.csv", encoding="utf-8-sig")
    assert e["prev_grade"].notna().sum() == cli["prev_grade"].notna().sum() > 500
    assert e["grade_change"].replace("", None).value_counts().to_dict() == cli["grade_change"].value_counts().to_dict()
    assert not from_result.benchmarks.equals(alone.benchmarks)  # lianyungang's benchmarks are last year's
    assert any("上年" in n for n in alone.notes) and not any("上年" in n for n in from_result.notes)
    assert csv.equals(pd.read_csv(sample_runs[2024] / "enterprises.csv"))  # not modified


def test_builtup_as_path_raster_or_array(frames_2025):
    f = frames_2025
    args = (f["parcels"], f["enterprises"], f["leases"])
    with rasterio.open(BUILTUP) as ds:
        values, transform, crs, nodata = ds.read(1), ds.transform, ds.crs.to_wkt(), ds.nodata
    by_path = evaluate_frames(*args, scheme="lianyungang", year=2025, builtup=str(BUILTUP))
    by_array = evaluate_frames(*args, scheme="lianyungang", year=2025, builtup=(values, transform, crs, nodata))
    by_raster = evaluate_frames(
        *args,
        scheme="lianyungang",
        year=2025,
        builtup=Raster(values, transform, by_path.parcels.crs.from_wkt(crs), nodata),
    )
    without = evaluate_frames(*args, scheme="lianyungang", year=2025)
    for other in (by_array, by_raster):
        assert_frame_equal(pd.DataFrame(by_path.parcels), pd.DataFrame(other.parcels))
        assert_frame_equal(by_path.flags, other.flags)
    low = by_path.flags["rule_id"] == "idle_suspected.low_builtup"
    assert low.sum() == 38 and (without.flags["rule_id"] == "idle_suspected.low_builtup").sum() == 0
    fraction = by_path.parcels["builtup_fraction"]
    assert fraction.notna().all() and 0 < fraction.mean() < 1 and "builtup_fraction" not in without.parcels
    with pytest.raises(geo_eval.DatasetError, match="二维数组"):
        evaluate_frames(*args, scheme="lianyungang", year=2025, builtup=(values[None], transform, crs))


def test_scheme_by_name_path_or_object_and_flags_off(frames_2025):
    f = frames_2025
    args = (f["parcels"], f["enterprises"], f["leases"])
    path = ROOT / "geo_eval" / "rating" / "schemes" / "huaian-2024.toml"
    by_name = evaluate_frames(*args, scheme="huaian-2024", year=2025, flags=False)
    by_path = evaluate_frames(*args, scheme=path, year=2025, flags=False)
    by_object = evaluate_frames(*args, scheme=load_scheme("huaian-2024"), year=2025, flags=False)
    assert_frame_equal(by_name.enterprises, by_path.enterprises)
    assert_frame_equal(by_name.enterprises, by_object.enterprises)
    assert by_name.flags is None and by_name.blocks is None and by_name.scheme.name == "huaian-2024"
    assert "block_id" not in by_name.parcels and "plot_ratio" not in by_name.parcels


def test_evaluate_is_pure_two_schemes_on_the_same_inputs():
    inputs, _, _ = load_inputs(SAMPLE / "2025")
    frames = {k: copy.deepcopy(getattr(inputs, k)) for k in ("parcels", "enterprises", "leases")}
    loaded = inputs.problems.frame()
    first = evaluate(inputs, load_scheme("lianyungang"))
    n_first = first.problems.count()
    second = evaluate(inputs, load_scheme("huaian-2024"))
    again = evaluate(inputs, load_scheme("lianyungang"))
    assert_frame_equal(inputs.problems.frame(), loaded)  # nothing added to the inputs' report
    assert first.problems.count() == n_first == again.problems.count() > len(loaded)
    assert_frame_equal(first.problems.frame(), again.problems.frame())
    assert second.problems.count() != n_first  # each scheme its own report (different indicators)
    for k, frame in frames.items():
        assert_frame_equal(pd.DataFrame(getattr(inputs, k)), pd.DataFrame(frame))
    assert_frame_equal(first.enterprises, again.enterprises)


def test_evaluate_refuses_fatal_inputs_with_the_report_and_leaves_them_alone(frames_2025):
    f = frames_2025
    bad = f["enterprises"].copy()
    bad.loc[0, "统一社会信用代码"] = None
    with pytest.raises(FatalInputError):
        evaluate_frames(f["parcels"], bad, f["leases"], scheme="lianyungang", year=2025)
    from geo_eval.io.loaders import validated_inputs
    from geo_eval.io.tables import frame_table
    from geo_eval.io.vector import parcel_table

    attrs = pd.DataFrame(f["parcels"].drop(columns="geometry"))
    inputs = validated_inputs(
        parcel_table(attrs, "parcels"),
        f["parcels"].geometry,
        frame_table("enterprises", bad, "enterprises"),
        frame_table("leases", f["leases"], "leases"),
        year=2025,
    )
    n = inputs.problems.count()
    with pytest.raises(FatalInputError) as info:
        evaluate(inputs, load_scheme("lianyungang"))
    assert info.value.frame.loc[info.value.frame["severity"] == "致命", "code"].tolist() == ["missing_value"]
    assert inputs.problems.count() == n


def test_result_is_frozen_and_shows_its_size(frames_2025):
    f = frames_2025
    result = evaluate_frames(f["parcels"], f["enterprises"], f["leases"], scheme="lianyungang", year=2025)
    assert (
        repr(result) == "Result(year=2025, scheme='lianyungang', enterprises=602, parcels=790, flags=493, problems=55)"
    )
    with pytest.raises(AttributeError):
        result.evaluation = None  # type: ignore[misc]
    assert result.enterprises is result.enterprises  # computed once
    assert np.isclose(result.enterprises["land_mu"].sum(), result.evaluation.enterprises["land_mu"].sum(), rtol=1e-6)


def test_codes_read_as_numbers_stay_codes_and_blank_headers_are_skipped(frames_2025):
    f = frames_2025
    e = f["enterprises"]
    digits = e["行业代码"].str[1:].where(e.index != 3)  # with a blank, pandas reads such a column as floats
    as_text = e.assign(行业代码=digits)
    as_numbers = e.assign(行业代码=pd.to_numeric(digits))
    assert as_numbers["行业代码"].dtype == np.float64
    a = evaluate_frames(f["parcels"], as_text, f["leases"], scheme="lianyungang", year=2025, flags=False)
    b = evaluate_frames(f["parcels"], as_numbers, f["leases"], scheme="lianyungang", year=2025, flags=False)
    assert_frame_equal(a.enterprises, b.enterprises)
    assert_frame_equal(a.problems, b.problems)
    codes = b.enterprises.set_index("uscc")["industry_code"]
    assert codes[e.loc[0, "统一社会信用代码"]] == e.loc[0, "行业代码"][1:] and codes.isna().sum() == 1
    # A column whose header cell is blank (pandas: "Unnamed: n") is skipped, as the file reader skips it.
    blank = evaluate_frames(
        f["parcels"], as_text.assign(**{"Unnamed: 30": "x"}), f["leases"], scheme="lianyungang", year=2025, flags=False
    )
    assert_frame_equal(blank.problems, a.problems)
    named = evaluate_frames(
        f["parcels"], as_text.assign(备注="x"), f["leases"], scheme="lianyungang", year=2025, flags=False
    )
    extra = named.problems.loc[named.problems["code"] == "unknown_column", "field"].tolist()
    assert extra == ["备注"] and len(named.problems) == len(a.problems) + 1

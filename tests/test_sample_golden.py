"""The sample's golden files against a geo-eval run of the sample, by set equality and to 1e-6.

The golden files in sample_parcels/ come from the generator's own reasoning, never from geo-eval:
``expected_flags.csv`` (every parcel each rule must flag, both years), ``expected_scores.csv`` and
``expected_benchmarks.csv`` (land, benchmarks, scores, classes and ranks worked out by
sample_parcels/hand_rating.py, which imports nothing from geo_eval) and ``expected_enterprises.csv``
(the deliberate oddities). The generator itself must rewrite every committed file byte for byte.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyogrio
import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_parcels"
YEARS = (2024, 2025)


def expected_flags(year: int) -> pd.DataFrame:
    f = pd.read_csv(SAMPLE / "expected_flags.csv", dtype=str)
    return f.loc[f["year"] == str(year)]


def expected(year: int, flag: str, expect: str = "yes") -> set[str]:
    f = expected_flags(year)
    return set(f.loc[(f["flag"] == flag) & (f["expect"] == expect), "parcel_id"])


def run_flags(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "flags.csv", encoding="utf-8-sig", dtype=str)


def run_enterprises(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "enterprises.csv", encoding="utf-8-sig", dtype={"uscc": str}).set_index("uscc")


def run_parcels(out: Path) -> pd.DataFrame:
    return pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", read_geometry=False).set_index("parcel_id")


def run_blocks(out: Path) -> pd.DataFrame:
    return pyogrio.read_dataframe(out / "renewal_blocks.gpkg", read_geometry=False)


def flagged(out: Path, *rule_ids: str) -> set[str]:
    f = run_flags(out)
    return set(f.loc[f["rule_id"].isin(rule_ids), "parcel_id"])


def reported(out: Path, code: str) -> set[str]:
    """Parcels named by the run's exceptions.csv rows of ``code`` on the parcel layer (by source row)."""
    exc = pd.read_csv(out / "exceptions.csv", encoding="utf-8-sig", dtype=str)
    rows = exc.loc[(exc["code"] == code) & (exc["file"] == "parcels.gpkg"), "row"].astype(int)
    p = run_parcels(out)
    return set(p.index[p["source_row"].isin(rows)])


def groups_of(year: int) -> dict[str, frozenset[str]]:
    """Each expected 退二优二 candidate → its expected group (rows name the group by its first parcel)."""
    f = expected_flags(year)
    rows = f.loc[f["flag"] == "renewal_candidate"]
    first = rows["why"].str.extract(r"^区块 (\S+)：", expand=False)
    assert first.notna().all()
    members = rows.groupby(first)["parcel_id"].agg(frozenset)
    return {pid: members[g] for pid, g in zip(rows["parcel_id"], first, strict=True)}


def block_holding(out: Path, parcels: set[str]) -> set[str]:
    """The parcels of the one renewal block of the run that holds ``parcels`` (all of them)."""
    blocks = run_blocks(out)
    ids = blocks["parcel_ids"].str.split(";").map(set)
    holding = ids[ids.map(lambda s: bool(s & parcels))]
    assert len(holding) == 1, (sorted(parcels), holding.tolist())
    return holding.iloc[0]


def in_blocks(out: Path) -> set[str]:
    blocks = run_blocks(out)
    big = blocks.loc[blocks["kind"] == "连片改造区块", "parcel_ids"]
    return set(";".join(big).split(";"))


# expected_flags.csv rule → the parcels a run flags for it
IN_FLAGS_CSV = {
    "idle_1y": ("idle_legal.fee", "idle_legal.reclaim"),
    "idle_2y": ("idle_legal.reclaim",),
    "idle_exempt": ("idle_exempt",),
    "zero_output": ("idle_suspected.zero_output",),
    "low_builtup": ("idle_suspected.low_builtup",),
    "grade_d": ("low_efficiency.grade_d",),
    "low_tax_per_mu": ("low_efficiency.tax_per_mu_mean",),
    "low_plot_ratio": ("low_efficiency.plot_ratio",),
    "low_building_coefficient": ("low_efficiency.building_coefficient",),
    "zero_tax_2y": ("low_efficiency.zero_tax",),
    "mainly_leased_out": ("low_efficiency.leased_out",),
    "renewal_candidate": ("renewal_candidate",),
}
IN_EXCEPTIONS_CSV = {
    "invalid_geometry": "geometry_repaired",
    "area_mismatch": "area_mismatch",
    "no_holder": "parcel_no_holder",
    "holder_not_in_enterprises": "holder_not_in_enterprises",
}
IN_BLOCKS = ("renewal_block", "cluster_A", "cluster_B", "isolated_flagged")


def test_every_expected_flag_rule_is_checked():
    names = set(pd.read_csv(SAMPLE / "expected_flags.csv", dtype=str)["flag"])
    assert names == set(IN_FLAGS_CSV) | set(IN_EXCEPTIONS_CSV) | set(IN_BLOCKS)


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("rule", sorted(IN_FLAGS_CSV))
def test_flags_csv_has_exactly_the_expected_parcels(sample_runs, year, rule):
    got = flagged(sample_runs[year], *IN_FLAGS_CSV[rule])
    assert got == expected(year, rule)
    assert not got & expected(year, rule, "no")  # the boundary cases and counter-examples


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("rule", sorted(IN_EXCEPTIONS_CSV))
def test_exceptions_csv_names_exactly_the_expected_parcels(sample_runs, year, rule):
    assert reported(sample_runs[year], IN_EXCEPTIONS_CSV[rule]) == expected(year, rule)


@pytest.mark.parametrize("year", YEARS)
def test_parcels_nobody_in_the_enterprise_table_uses(sample_runs, year):
    # no holder, or a holder missing from the enterprise table (and no lessee on the parcel)
    want = expected(year, "no_holder") | expected(year, "holder_not_in_enterprises")
    assert flagged(sample_runs[year], "idle_suspected.no_enterprise") == want


@pytest.mark.parametrize("year", YEARS)
def test_renewal_blocks_are_the_expected_groups(sample_runs, year):
    out = sample_runs[year]
    blocks = run_blocks(out)
    got = {frozenset(ids.split(";")) for ids in blocks["parcel_ids"]}
    assert got == set(groups_of(year).values())
    assert in_blocks(out) == expected(year, "renewal_block")  # the groups of at least 50 亩


@pytest.mark.parametrize("year", YEARS)
@pytest.mark.parametrize("design", ["cluster_A", "cluster_B", "isolated_flagged"])
def test_designed_clusters_lie_in_their_expected_block(sample_runs, year, design):
    members = expected(year, design)
    group = groups_of(year)[min(members)]
    assert members <= group
    assert block_holding(sample_runs[year], members) == group


def test_the_isolated_plot_joins_a_block_through_ordinary_neighbours():
    # Designed with no deliberately flagged neighbour, it touches a parcel whose tax per 亩 is below 20 % of
    # the county's (low_tax_per_mu) and so forms a 连片改造区块 with it (and with the unassigned land it touches)
    for year in YEARS:
        (plot,) = expected(year, "isolated_flagged")
        assert len(groups_of(year)[plot]) == 3 and plot in expected(year, "renewal_block")


# --- scores, classes, ranks, benchmarks -------------------------------------------------------------------
def expected_scores(year: int) -> pd.DataFrame:
    s = pd.read_csv(SAMPLE / "expected_scores.csv", dtype={"uscc": str, "group": str, "note": str})
    return s.loc[s["year"] == year].set_index("uscc")


@pytest.mark.parametrize("year", YEARS)
def test_every_enterprise_is_rated_as_worked_out_by_hand(sample_runs, year):
    want = expected_scores(year)
    got = run_enterprises(sample_runs[year])
    assert set(got.index) == set(want.index)
    got = got.loc[want.index]
    assert got["group"].fillna("").tolist() == want["group"].fillna("").tolist()
    assert got["grade"].tolist() == want["grade"].tolist()
    assert got["rank"].astype("Int64").tolist() == want["rank"].astype("Int64").tolist()
    assert got["rank_of"].astype("Int64").tolist() == want["rank_of"].astype("Int64").tolist()
    assert got["score"].to_numpy() == pytest.approx(want["score"].to_numpy(), abs=1e-6, nan_ok=True)
    assert got["land_mu"].to_numpy() == pytest.approx(want["land_mu"].to_numpy(), abs=1e-4)  # 4 decimals


@pytest.mark.parametrize("year", YEARS)
def test_the_hand_cases_cover_every_class_and_rule(year):
    s = expected_scores(year)
    assert set(s["grade"]) == set("ABCDT")
    notes = ";".join(s["note"].fillna(""))
    cases = ["否决→D", "排放量空白", "加分", "得分为0，并列D", "T：公用事业", "T：投产不满2年", "T：规下不足3亩"]
    for case in cases + (["减分", "T：不参评原因"] if year == 2025 else ["T：不参评原因"]):  # 减分 only in 2025
        assert case in notes, case
    assert set(s["group"].dropna()) == {"above_scale", "below_scale"}


@pytest.mark.parametrize("year", YEARS)
def test_benchmarks_are_twice_the_expected_county_means(sample_runs, year):
    b = pd.read_csv(SAMPLE / "expected_benchmarks.csv", dtype={"year": int})
    want = b.loc[b["year"] == year].set_index(["county", "group", "indicator"])["benchmark"]
    got = pd.read_csv(sample_runs[year] / "benchmarks.csv", encoding="utf-8-sig")
    got = got.set_index(["unit", "group", "indicator"])["benchmark"]
    assert set(got.index) == set(want.index)
    # 2025 uses the 2024 results as published in enterprises.csv (land to 4 decimals): within 1e-6
    assert got.loc[want.index].to_numpy() == pytest.approx(want.to_numpy(), rel=1e-6)


# --- the deliberate enterprise oddities ----------------------------------------------------------------
def oddity(year: int, name: str) -> set[str]:
    e = pd.read_csv(SAMPLE / "expected_enterprises.csv", dtype=str)
    return set(e.loc[(e["year"] == str(year)) & (e["oddity"] == name), "uscc"])


@pytest.mark.parametrize("year", YEARS)
def test_enterprise_oddities_are_exactly_what_the_run_reports(sample_runs, year):
    out = sample_runs[year]
    e = run_enterprises(out)
    exc = pd.read_csv(out / "exceptions.csv", encoding="utf-8-sig", dtype=str)
    reason = e["exempt_reason"].fillna("")
    assert set(exc.loc[exc["code"] == "uscc_invalid", "value"]) == oddity(year, "invalid_uscc")
    assert set(exc.loc[exc["code"] == "holder_not_in_enterprises", "value"]) == oddity(
        year, "holder_not_in_enterprises"
    )
    assert set(e.index[reason.str.contains("公用事业")]) == oddity(year, "t_class_utility")
    assert set(e.index[reason.str.startswith("不参评：")]) == oddity(year, "exempt_reason")
    assert set(e.index[reason.str.startswith("投产不满2年")]) == oddity(year, "t_class_new_production") - oddity(
        year, "exempt_reason"
    )
    assert set(e.index[(e["owned_m2"] == 0) & (e["leased_in_m2"] > 0)]) == oddity(year, "lessee_only")
    assert set(e.index[reason.str.startswith("不在评价范围")]) == oddity(year, "small_below_3mu")
    vetoed = oddity(year, "safety_veto") | oddity(year, "environment_veto")
    assert set(e.index[e["veto"].notna()]) == vetoed - set(e.index[e["grade"] == "T"])
    assert set(e.index[e["bonus"].notna()]) == oddity(year, "bonus")
    assert set(e.index[e["penalty"].notna()]) == oddity(year, "penalty")


def test_enterprises_new_and_gone_in_2025(sample_runs):
    e24, e25 = run_enterprises(sample_runs[2024]), run_enterprises(sample_runs[2025])
    assert set(e25.index) - set(e24.index) == oddity(2025, "new_in_2025")
    assert set(e24.index) - set(e25.index) == oddity(2024, "gone_in_2025")
    assert set(e25.index[e25["grade_change"] == "新参评"]) <= oddity(2025, "new_in_2025")


# --- the generator -------------------------------------------------------------------------------------
def generated_files(root: Path) -> dict[str, str]:
    """sha256 of every file the generator writes, by path relative to ``root`` (its .py files excluded)."""
    out = {}
    for base in (root / "sample_parcels", root / "layers"):
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def test_regenerating_the_sample_rewrites_every_committed_file_byte_for_byte(tmp_path):
    env = {**os.environ, "PYTHONHASHSEED": "20260331"}  # not the seed of this process: no set order leaks out
    proc = subprocess.run(
        [sys.executable, str(SAMPLE / "make_sample.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    fresh = generated_files(tmp_path)
    assert {"sample_parcels/2025/enterprises.xlsx", "sample_parcels/expected_scores.csv"} <= set(fresh)
    committed = generated_files(ROOT)
    assert set(fresh) == set(committed)
    changed = sorted(name for name in fresh if fresh[name] != committed[name])
    assert changed == [], "make_sample.py does not reproduce these committed files: " + ", ".join(changed)


def test_the_readme_lists_the_committed_hashes():
    readme = (SAMPLE / "README.md").read_text(encoding="utf-8")
    listed = dict(re.findall(r"^\| `([^`]+)` \| [\d,]+ \| ([0-9a-f]{12}) \|$", readme, flags=re.MULTILINE))
    files = {k: v[:12] for k, v in generated_files(ROOT).items() if not k.endswith(".md")}
    assert listed == files


# --- determinism ---------------------------------------------------------------------------------------
def test_a_run_in_another_process_writes_the_same_results(sample_runs, tmp_path):
    # another PYTHONHASHSEED than this process's: an unsorted set of strings would change an order
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    out = tmp_path / "2025"
    cmd = [sys.executable, "-m", "geo_eval", "evaluate", str(SAMPLE / "2025"), "--out", str(out)]
    proc = subprocess.run(
        [*cmd, "--previous", str(sample_runs[2024])], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr
    first = sample_runs[2025]
    for name in ("flags.csv", "enterprises.csv", "benchmarks.csv", "exceptions.csv"):
        assert (out / name).read_bytes() == (first / name).read_bytes(), name
    for name, layer in (
        ("renewal_blocks.gpkg", "renewal_blocks"),
        ("parcels.gpkg", "parcels"),
        ("parcels.gpkg", "flags"),
    ):
        a = pyogrio.read_dataframe(first / name, layer=layer)
        b = pyogrio.read_dataframe(out / name, layer=layer)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert a.geometry.to_wkb().tolist() == b.geometry.to_wkb().tolist(), (name, layer)


def test_the_sample_keeps_its_design():
    # sample_parcels/check_sample.py: CRS, shared edges, counts, USCC checks, leases, the designed clusters
    # standing alone among the deliberately flagged parcels, the raster against the footprints, sizes
    proc = subprocess.run(
        [sys.executable, str(SAMPLE / "check_sample.py")], capture_output=True, text=True, check=False, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr
    assert proc.stdout.rstrip().endswith("all checks passed") and "FAIL " not in proc.stdout

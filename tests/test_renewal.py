"""Renewal blocks (集中连片改造) on a hand-drawn layout with hand-computed areas.

Every parcel is a rectangle (or a rectangle with one extra vertex) in EPSG:4549 with origin
``X0, Y0``, so areas are exact: width × height m², and 1 亩 = 2000/3 m² (20 000 m² = 30 亩).

==========  ==========================  ========  ======  ===============================================
id          rectangle (x, y from X0/Y0) m²        亩      role
==========  ==========================  ========  ======  ===============================================
A1          0–200 × 0–100               20 000    30      block 1; shares edges with A2 and A3
A2          200–300 × 0–100             10 000    15      block 1
A3          0–300 × 100–150             15 000    22.5    block 1; a vertex at (200, 100) so the three
                                                          form a clean coverage
A4          312–412 × 0–60              6 000     9       block 1 across a 12 m road from A2: joins at
                                                          15 m, not at 10 m
B1          0–300 × 1000–1200           60 000    90      block 2: the largest
B2          320–420 × 1000–1200         20 000    30      across a 20 m road from B1: separate at 15 m
T01, T02    2030–2130, 1900–2000        10 000    15      each; both touch the non-candidate N1
            × 0–100
N1          2000–2030 × 0–100           3 000     4.5     NOT a candidate: must not bridge T01 and T02
N2          −50–0 × 0–100               5 000     7.5     NOT a candidate, touches A1
Z1          3000–3040 × 3000–3050       2 000     3       isolated 零星地块
==========  ==========================  ========  ======  ===============================================

Expected blocks at 15 m, min_area_mu = 50 (area descending, then smallest parcel_id):
R0001 = B1 (90, rank 1), R0002 = A1–A4 (76.5, rank 2), R0003 = B2 (30), R0004 = T01 (15),
R0005 = T02 (15: tie, T01 < T02 although T02 lies first in the input), R0006 = Z1 (3).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Polygon, box

from geo_eval.errors import DatasetError
from geo_eval.landuse.land import M2_PER_MU
from geo_eval.landuse.renewal import (
    KIND_BLOCK,
    KIND_SCATTERED,
    closed_outlines,
    contiguous_groups,
    dissolve_groups,
    renewal_blocks,
)

X0, Y0 = 436_000.0, 3_830_000.0


def _box(x1: float, y1: float, x2: float, y2: float) -> Polygon:
    return box(X0 + x1, Y0 + y1, X0 + x2, Y0 + y2)


# id: (geometry, hand area in 亩, main_user, users, grade, tax_per_mu 万元/亩)
LAYOUT: dict[str, tuple[Polygon, float, str | None, str, str | None, float]] = {
    "A1": (_box(0, 0, 200, 100), 30.0, "E01", "E01;E02", "D", 2.0),
    "A2": (_box(200, 0, 300, 100), 15.0, "E03", "E03", "C", np.nan),
    "A3": (
        Polygon([(X0 + x, Y0 + y) for x, y in [(0, 100), (200, 100), (300, 100), (300, 150), (0, 150)]]),
        22.5,
        "E01",
        "E01",
        "D",
        0.4,
    ),
    "A4": (_box(312, 0, 412, 60), 9.0, None, "", None, 1.0),
    "B1": (_box(0, 1000, 300, 1200), 90.0, "E04", "E04", "B", 3.0),
    "B2": (_box(320, 1000, 420, 1200), 30.0, "E05", "E05", "D", 0.5),
    "T02": (_box(1900, 0, 2000, 100), 15.0, "E06", "E06", "D", 0.2),
    "N1": (_box(2000, 0, 2030, 100), 4.5, "E07", "E07", "A", 9.0),
    "T01": (_box(2030, 0, 2130, 100), 15.0, "E07", "E07", "A", 9.0),
    "N2": (_box(-50, 0, 0, 100), 7.5, "E08", "E08", "B", 1.0),
    "Z1": (_box(3000, 3000, 3040, 3050), 3.0, "E09", "E09", "T", np.nan),
}
CANDIDATES = ["A1", "A2", "A3", "A4", "B1", "B2", "T02", "T01", "Z1"]
NAMES = {f"E0{i}": name for i, name in enumerate("甲乙丙丁戊己庚辛壬", start=1)}


def layout() -> gpd.GeoDataFrame:
    """The layout as a parcel result frame (the columns of ``evaluate._parcel_results``)."""
    ids = list(LAYOUT)
    rows = [LAYOUT[i] for i in ids]
    area_mu = [r[1] for r in rows]
    return gpd.GeoDataFrame(
        {
            "area_m2": [a * M2_PER_MU for a in area_mu],
            "area_mu": area_mu,
            "eval_area_m2": [a * M2_PER_MU for a in area_mu],
            "main_user": pd.array([r[2] for r in rows], dtype=object),
            "main_user_name": pd.array([NAMES.get(r[2] or "") for r in rows], dtype=object),
            "users": [r[3] for r in rows],
            "grade": pd.array([r[4] for r in rows], dtype=object),
            "tax_per_mu": [r[5] for r in rows],
        },
        geometry=[r[0] for r in rows],
        crs="EPSG:4549",
        index=pd.Index(ids, name="parcel_id"),
    )


def enterprises() -> pd.DataFrame:
    return pd.DataFrame({"name": list(NAMES.values())}, index=pd.Index(list(NAMES), name="uscc"))


@pytest.fixture
def result():
    return renewal_blocks(layout(), CANDIDATES, min_area_mu=50.0, enterprises=enterprises())


def test_layout_areas_are_the_hand_areas():
    p = layout()
    np.testing.assert_allclose(p.area.to_numpy(), p["area_mu"].to_numpy() * M2_PER_MU, rtol=0, atol=1e-6)
    assert p.loc["A1", "area_mu"] == 20_000 / M2_PER_MU


def test_block_ids_members_and_areas(result):
    b = result.blocks
    assert list(b["block_id"]) == ["R0001", "R0002", "R0003", "R0004", "R0005", "R0006"]
    assert list(b.index) == list(b["block_id"])
    assert list(b["parcel_ids"]) == ["B1", "A1;A2;A3;A4", "B2", "T01", "T02", "Z1"]
    assert list(b["n_parcels"]) == [1, 4, 1, 1, 1, 1]
    np.testing.assert_allclose(b["area_mu"], [90.0, 76.5, 30.0, 15.0, 15.0, 3.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(b["area_m2"], [60_000, 51_000, 20_000, 10_000, 10_000, 2_000], rtol=0, atol=1e-6)


def test_membership_covers_every_candidate_and_nothing_else(result):
    m = result.membership
    assert list(m.index) == sorted(CANDIDATES)
    assert m.index.name == "parcel_id"
    assert m.to_dict() == {
        "A1": "R0002",
        "A2": "R0002",
        "A3": "R0002",
        "A4": "R0002",
        "B1": "R0001",
        "B2": "R0003",
        "T01": "R0004",
        "T02": "R0005",
        "Z1": "R0006",
    }


def test_kind_and_rank(result):
    b = result.blocks
    assert list(b["kind"]) == [KIND_BLOCK, KIND_BLOCK] + [KIND_SCATTERED] * 4
    assert b["kind"].iloc[0] == "连片改造区块" and b["kind"].iloc[-1] == "零星地块"
    assert b["rank_by_area"].iloc[:2].tolist() == [1, 2]
    assert b["rank_by_area"].iloc[2:].isna().all()
    assert str(b["rank_by_area"].dtype) == "Int64"


def test_min_area_threshold_is_inclusive():
    b = renewal_blocks(layout(), CANDIDATES, min_area_mu=76.5).blocks
    assert list(b["kind"].iloc[:3]) == [KIND_BLOCK, KIND_BLOCK, KIND_SCATTERED]


def test_road_narrower_than_tolerance_joins_wider_does_not():
    at10 = renewal_blocks(layout(), CANDIDATES, tolerance_m=10.0).membership
    assert at10["A4"] != at10["A1"]  # the 12 m road splits at 10 m
    assert at10["A1"] == at10["A2"] == at10["A3"]
    at15 = renewal_blocks(layout(), CANDIDATES, tolerance_m=15.0).membership
    assert at15["A4"] == at15["A1"]
    assert at15["B1"] != at15["B2"]  # the 20 m road
    at20 = renewal_blocks(layout(), CANDIDATES, tolerance_m=20.0).membership
    assert at20["B1"] == at20["B2"]  # distance ≤ tolerance links


def test_a_non_candidate_does_not_bridge_candidates():
    m = renewal_blocks(layout(), CANDIDATES).membership
    assert m["T01"] != m["T02"]
    with_n1 = renewal_blocks(layout(), [*CANDIDATES, "N1"]).membership
    assert with_n1["T01"] == with_n1["T02"] == with_n1["N1"]
    assert "N2" not in m.index  # touches A1 but is not flagged


def test_tax_figures(result):
    b = result.blocks.set_index("parcel_ids")
    # A1 2.0 × 30 + A2 unknown + A3 0.4 × 22.5 + A4 1.0 × 9 = 78 万元 over 61.5 亩 with known tax.
    assert b.loc["A1;A2;A3;A4", "tax_wan"] == pytest.approx(78.0, abs=1e-9)
    assert b.loc["A1;A2;A3;A4", "tax_area_mu"] == pytest.approx(61.5, abs=1e-9)
    assert b.loc["A1;A2;A3;A4", "tax_per_mu"] == pytest.approx(round(78.0 / 61.5, 4), abs=1e-12)
    assert b.loc["B1", "tax_wan"] == pytest.approx(270.0)
    assert b.loc["B1", "tax_per_mu"] == pytest.approx(3.0)
    assert np.isnan(b.loc["Z1", "tax_wan"]) and np.isnan(b.loc["Z1", "tax_per_mu"])
    assert b.loc["Z1", "tax_area_mu"] == 0.0


def test_tax_uses_the_area_the_per_mu_tax_was_computed_on():
    p = layout()
    p.loc["A4", "eval_area_m2"] = 6_600.0  # registered area 9.9 亩 used in the evaluation
    b = renewal_blocks(p, CANDIDATES).blocks.set_index("parcel_ids")
    assert b.loc["A1;A2;A3;A4", "tax_wan"] == pytest.approx(60.0 + 9.0 + 9.9)
    assert b.loc["A1;A2;A3;A4", "tax_area_mu"] == pytest.approx(30.0 + 22.5 + 9.9)
    assert b.loc["A1;A2;A3;A4", "area_mu"] == pytest.approx(76.5)  # the block area stays the drawn area


def test_enterprises_grades_and_main_user(result):
    b = result.blocks.set_index("parcel_ids")
    blk = b.loc["A1;A2;A3;A4"]
    assert blk["enterprises"] == "E01;E02;E03"
    assert blk["n_enterprises"] == 3
    assert blk["enterprise_names"] == "甲;乙;丙"
    assert blk["main_user"] == "E01"  # main user of 30 + 22.5 亩
    assert blk["main_user_name"] == "甲"
    assert blk["grades"] == "A:0;B:0;C:1;D:2;T:0;无:1"
    assert b.loc["Z1", "grades"] == "A:0;B:0;C:0;D:0;T:1;无:0"
    assert b.loc["T01", "enterprises"] == "E07"


def test_without_enterprises_names_come_from_the_parcels():
    b = renewal_blocks(layout(), CANDIDATES).blocks
    assert "enterprise_names" not in b.columns
    assert b.loc["R0002", "main_user_name"] == "甲"


def test_outline_area_equals_member_area(result):
    b = result.blocks
    np.testing.assert_allclose(b.area.to_numpy(), b["area_mu"].to_numpy() * M2_PER_MU, rtol=1e-12)
    assert shapely.is_valid(b.geometry.to_numpy()).all()
    assert b.crs.to_epsg() == 4549
    blk = b.loc["R0002", "geometry"]
    assert blk.geom_type == "MultiPolygon" and len(blk.geoms) == 2  # A1–A3 and A4 across the road
    assert sorted(g.area for g in blk.geoms) == pytest.approx([6_000.0, 45_000.0])
    a123 = max(blk.geoms, key=lambda g: g.area)
    assert len(a123.interiors) == 0
    assert a123.equals(_box(0, 0, 300, 150))  # the shared edges are gone


def test_closed_outlines_bridge_the_road_for_drawing(result):
    closed = closed_outlines(result.blocks, gap_m=15.0)
    assert list(closed.index) == list(result.blocks.index)
    blk = closed["R0002"]
    assert blk.geom_type == "Polygon"
    assert blk.covers(result.blocks.loc["R0002", "geometry"])
    # Most of the 12 m × 60 m of road between A2 and A4 is filled (round joins leave fillets).
    assert 51_000.0 + 0.9 * 12 * 60 < blk.area < 51_000.0 + 12 * 100
    assert closed["R0001"].equals(result.blocks.loc["R0001", "geometry"])  # one part: unchanged


def test_shuffled_input_gives_identical_output(result):
    p = layout()
    rng = np.random.default_rng(7)
    for _ in range(3):
        shuffled = p.iloc[rng.permutation(len(p))]
        cands = list(rng.permutation(CANDIDATES))
        other = renewal_blocks(shuffled, cands, min_area_mu=50.0, enterprises=enterprises().iloc[::-1])
        pd.testing.assert_frame_equal(
            pd.DataFrame(other.blocks.drop(columns="geometry")), pd.DataFrame(result.blocks.drop(columns="geometry"))
        )
        assert (
            shapely.to_wkb(other.blocks.geometry.to_numpy()) == shapely.to_wkb(result.blocks.geometry.to_numpy())
        ).all()
        pd.testing.assert_series_equal(other.membership, result.membership)


def test_boolean_series_and_duplicates_are_accepted(result):
    p = layout()
    mask = pd.Series(p.index.isin(CANDIDATES), index=p.index)
    by_mask = renewal_blocks(p, mask, min_area_mu=50.0, enterprises=enterprises())
    pd.testing.assert_series_equal(by_mask.membership, result.membership)
    dup = renewal_blocks(p, pd.Index([*CANDIDATES, "A1"]), min_area_mu=50.0, enterprises=enterprises())
    pd.testing.assert_series_equal(dup.membership, result.membership)


def test_no_candidates_gives_empty_blocks():
    r = renewal_blocks(layout(), [])
    assert len(r.blocks) == 0 and len(r.membership) == 0
    assert {"block_id", "kind", "area_mu", "tax_per_mu", "geometry"} <= set(r.blocks.columns)
    assert r.blocks.crs.to_epsg() == 4549


def test_geographic_crs_is_refused():
    with pytest.raises(ValueError, match="地理坐标"):
        renewal_blocks(layout().to_crs(4490), CANDIDATES)
    with pytest.raises(DatasetError, match="没有坐标参考系"):
        renewal_blocks(layout().set_crs(None, allow_override=True), CANDIDATES)


def test_units_other_than_metres_are_refused():
    with pytest.raises(DatasetError, match="不是米"):
        renewal_blocks(layout().to_crs("EPSG:2227"), CANDIDATES)  # US survey feet


def test_every_problem_is_reported_at_once():
    p = layout().drop(columns=["grade"]).to_crs(4490)
    with pytest.raises(DatasetError) as err:
        renewal_blocks(p, [*CANDIDATES, "X9"], tolerance_m=-1.0)
    msg = str(err.value)
    assert "地理坐标" in msg
    assert "grade" in msg
    assert "X9" in msg
    assert "tolerance_m" in msg


def test_candidate_without_geometry_is_refused():
    p = layout()
    p.loc["Z1", "geometry"] = None
    with pytest.raises(DatasetError, match="没有几何图形"):
        renewal_blocks(p, CANDIDATES)


def test_contiguous_groups_label_by_first_member():
    geoms = np.array([_box(0, 0, 10, 10), _box(100, 0, 110, 10), _box(10, 0, 20, 10), _box(125, 0, 130, 10)])
    assert contiguous_groups(geoms, 15.0).tolist() == [0, 1, 0, 1]
    assert contiguous_groups(geoms, 0.0).tolist() == [0, 1, 0, 2]


def test_dissolve_falls_back_when_parcels_are_not_a_clean_coverage():
    t_junction = _box(0, 100, 300, 150)  # A3 without the vertex at (200, 100): invalid coverage union
    overlap = [_box(1000, 0, 1100, 100), _box(1050, 0, 1150, 100)]  # invalid coverage union
    duplicate = [_box(2000, 0, 2100, 100), _box(2000, 0, 2100, 100)]  # GEOS raises
    geoms = np.array([LAYOUT["A1"][0], LAYOUT["A2"][0], t_junction, *overlap, *duplicate])
    out = dissolve_groups(geoms, np.array([0, 0, 0, 1, 1, 2, 2]))
    assert shapely.is_valid(out).all()
    assert out[0].equals(_box(0, 0, 300, 150))
    assert out[1].equals(_box(1000, 0, 1150, 100))
    assert out[2].equals(_box(2000, 0, 2100, 100))


def test_main_user_ties_go_to_the_smaller_uscc_and_odd_grades_are_listed():
    p = gpd.GeoDataFrame(
        {
            "area_mu": [15.0, 15.0],
            "main_user": ["E2", "E1"],
            "users": ["E2", "E1;E3"],
            "grade": ["X", None],
            "tax_per_mu": [np.nan, np.nan],
        },
        geometry=[_box(0, 0, 100, 100), _box(100, 0, 200, 100)],
        crs="EPSG:4549",
        index=pd.Index(["K2", "K1"], name="parcel_id"),
    )
    b = renewal_blocks(p, ["K1", "K2"]).blocks
    assert len(b) == 1
    row = b.iloc[0]
    assert row["main_user"] == "E1"
    assert row["enterprises"] == "E1;E2;E3"
    assert row["grades"] == "A:0;B:0;C:0;D:0;T:0;X:1;无:1"
    assert row["area_m2"] == pytest.approx(20_000.0)  # from area_mu without an area_m2 column
    assert np.isnan(row["tax_wan"]) and row["tax_area_mu"] == 0.0

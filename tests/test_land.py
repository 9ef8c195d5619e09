import catalogue
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from pyproj import CRS, Geod
from shapely.geometry import box

from geo_eval.landuse.crs import fix_prefix_mismatch, gk_epsg
from geo_eval.landuse.land import M2_PER_MU, evaluated_land, land_allocation, lease_land, measurement_crs, parcel_areas


def test_mu_is_two_thousand_thirds_m2():
    assert pytest.approx(666.6666667) == M2_PER_MU
    assert pytest.approx(30.0) == 20_000 / M2_PER_MU


def test_catalogue_areas_are_exact_in_gk_plane():
    p = catalogue.parcels().set_index("parcel_id")
    a = parcel_areas(p)
    assert a.loc["P1", "area_m2"] == pytest.approx(20_000.0)
    assert a.loc["P1", "area_mu"] == pytest.approx(30.0)
    assert a.loc["P3", "area_mu"] == pytest.approx(22.5)
    assert a.loc["P6", "area_mu"] == pytest.approx(2.25)
    assert (a["area_diff_pct"].abs() < 1e-9).all()


def test_areas_from_geographic_data_match_geodesic_area():
    """Parcels delivered in EPSG:4490 are measured in the GK zone of their longitude (zone 40)."""
    p = catalogue.parcels().set_index("parcel_id").to_crs(4490)
    assert measurement_crs(p).to_epsg() == gk_epsg(40)
    a = parcel_areas(p)
    geod = Geod(ellps="GRS80")
    for pid, geom in p.geometry.items():
        geodesic = abs(geod.geometry_area_perimeter(geom)[0])
        # GK distortion 64 km from the central meridian is ~5e-5; the two must agree to 0.05 %.
        assert a.loc[pid, "area_m2"] == pytest.approx(geodesic, rel=5e-4)
        # and both reproduce the hand-computed planar area to 0.01 %
        assert a.loc[pid, "area_m2"] == pytest.approx(catalogue.parcels().set_index("parcel_id").area[pid], rel=1e-4)


def test_web_mercator_input_is_not_measured_in_web_mercator():
    p = catalogue.parcels().set_index("parcel_id").to_crs(3857)
    assert p.area["P1"] > 20_000 * 1.4  # Web Mercator inflates ~1.48× at 34.6°N
    a = parcel_areas(p)
    assert a.loc["P1", "area_m2"] == pytest.approx(20_000.0, rel=1e-4)


def test_data_in_a_distant_zone_is_measured_in_its_own_zone():
    p = catalogue.parcels().set_index("parcel_id").to_crs(4548)  # 117°E zone, 3° west of the data
    assert measurement_crs(p).to_epsg() == 4549
    assert parcel_areas(p).loc["P1", "area_m2"] == pytest.approx(20_000.0, rel=1e-6)


def test_zone_choice_for_117e_data():
    g = gpd.GeoDataFrame(geometry=[box(117.0, 34.0, 117.001, 34.001)], crs=4490)
    assert measurement_crs(g).to_epsg() == 4548


def test_eight_digit_easting_means_prefixed_zone():
    fixed = fix_prefix_mismatch(CRS.from_epsg(4549), 40_436_000.0)
    assert fixed is not None and fixed.to_epsg() == 4528
    assert fix_prefix_mismatch(CRS.from_epsg(4528), 40_436_000.0) is None
    assert fix_prefix_mismatch(CRS.from_epsg(4528), 436_000.0).to_epsg() == 4549


def test_registered_area_difference_flagged_over_tolerance():
    p = catalogue.parcels().set_index("parcel_id")
    p.loc["P1", "registered_area_m2"] = 18_000.0  # computed 20 000: +11.11 %
    p.loc["P2", "registered_area_m2"] = 9_600.0  # computed 10 000: +4.17 %
    a = parcel_areas(p, tolerance_pct=5.0)
    assert a.loc["P1", "area_diff_pct"] == pytest.approx(100 * 2000 / 18000)
    assert bool(a.loc["P1", "area_mismatch"]) and not bool(a.loc["P2", "area_mismatch"])


def _land():
    p = catalogue.parcels().set_index("parcel_id")
    p = p.join(parcel_areas(p))
    leases = lease_land(catalogue.leases(), p)
    alloc = land_allocation(p[["holder_uscc", "area_m2"]], leases)
    return leases, alloc, evaluated_land(alloc)


def test_floor_lease_converts_by_plot_ratio():
    leases, _, _ = _land()
    floor = leases.loc[leases["parcel_id"] == "P3"].iloc[0]
    assert floor["plot_ratio"] == pytest.approx(2.0)  # 30 000 m² floor / 15 000 m² land
    assert floor["lease_land_m2"] == pytest.approx(3_000.0)  # 6 000 m² floor / 2.0
    assert floor["lease_basis"] == "厂房"


def test_evaluated_land_is_owned_minus_leased_out_plus_leased_in():
    _, _, land = _land()
    e = catalogue.E
    assert land.loc[e[2], "owned_m2"] == pytest.approx(10_000)
    assert land.loc[e[2], "leased_out_m2"] == pytest.approx(3_000)
    assert land.loc[e[2], "land_mu"] == pytest.approx(10.5)
    assert land.loc[e[3], "leased_in_m2"] == pytest.approx(3_000)
    assert land.loc[e[3], "land_mu"] == pytest.approx(4.5)
    assert land.loc[e[4], "land_mu"] == pytest.approx(18.0)
    assert land.loc[e[5], "land_mu"] == pytest.approx(4.5)
    # Land is conserved: evaluated land of all users = area of all held parcels.
    held = catalogue.parcels().set_index("parcel_id").area.drop("P8").sum()
    assert land["land_m2"].sum() == pytest.approx(held)


def test_leases_over_parcel_area_are_scaled_down():
    p = catalogue.parcels().set_index("parcel_id")
    p = p.join(parcel_areas(p))
    extra = pd.DataFrame(
        [
            {"lessee_uscc": catalogue.E[3], "parcel_id": "P2", "leased_land_m2": 8_000.0, "leased_floor_m2": np.nan},
            {"lessee_uscc": catalogue.E[5], "parcel_id": "P2", "leased_land_m2": 4_000.0, "leased_floor_m2": np.nan},
        ]
    )
    alloc = land_allocation(p[["holder_uscc", "area_m2"]], lease_land(extra, p))
    land = evaluated_land(alloc)
    assert land.loc[catalogue.E[2], "land_m2"] == pytest.approx(0.0)
    assert land.loc[catalogue.E[3], "land_m2"] == pytest.approx(10_000 * 8 / 12)
    assert land.loc[catalogue.E[5], "land_m2"] == pytest.approx(10_000 * 4 / 12)

"""Land: parcel areas, lease conversion and each enterprise's evaluated land.

Evaluated land of an enterprise = owned − leased out + leased in (domain.md §4). The steps are kept
as columns so that the land-area 公示 can show them.
"""

from __future__ import annotations

from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from geo_eval.inputs.keys import positions, take
from geo_eval.landuse.crs import area_crs, longitudes

M2_PER_MU = 2000.0 / 3.0
"""1 亩 = 10000/15 m² ≈ 666.667 m²."""

__all__ = [
    "M2_PER_MU",
    "evaluated_land",
    "land_allocation",
    "lease_land",
    "m2_to_mu",
    "parcel_areas",
]


def m2_to_mu(m2: pd.Series | float) -> pd.Series | float:
    """Square metres to 亩 (``m² × 15 / 10000``)."""
    return m2 / M2_PER_MU


def measurement_crs(parcels: gpd.GeoDataFrame) -> CRS:
    """The CGCS2000 3° Gauss-Krüger CRS areas of ``parcels`` are measured in."""
    crs = CRS.from_user_input(parcels.crs)
    b = parcels.geometry.bounds
    cx = ((b["minx"] + b["maxx"]) / 2).to_numpy()
    cy = ((b["miny"] + b["maxy"]) / 2).to_numpy()
    step = max(1, len(cx) // 1000)  # a sample is enough to choose the zone
    return area_crs(crs, longitudes(cx[::step], cy[::step], crs))


def to_plane(parcels: gpd.GeoDataFrame, crs: CRS | None = None) -> gpd.GeoSeries:
    """The parcels' geometries in the Gauss-Krüger plane ``crs`` (default: :func:`measurement_crs`)."""
    target = crs or measurement_crs(parcels)
    geom = parcels.geometry
    return geom if CRS.from_user_input(parcels.crs).equals(target) else geom.to_crs(target)


def parcel_areas(
    parcels: gpd.GeoDataFrame,
    *,
    crs: CRS | None = None,
    tolerance_pct: float = 5.0,
    plane: gpd.GeoSeries | None = None,
) -> pd.DataFrame:
    """Area of each parcel in the Gauss-Krüger plane, with the difference to the registered area.

    ``area_m2`` = planar area in ``crs`` (default: :func:`measurement_crs`);
    ``area_mu = area_m2 / (2000/3)``;
    ``area_diff_pct = (area_m2 − registered_area_m2) / registered_area_m2 × 100``;
    ``area_mismatch`` is true where ``|area_diff_pct| > tolerance_pct``.

    ``plane``: the geometries already projected (see :func:`to_plane`). Returns a frame on
    ``parcels``' index.
    """
    geom = plane if plane is not None else to_plane(parcels, crs)
    area = pd.Series(geom.area.to_numpy(), index=parcels.index, name="area_m2")
    out = pd.DataFrame({"area_m2": area, "area_mu": area / M2_PER_MU})
    if "registered_area_m2" in parcels:
        reg = pd.to_numeric(parcels["registered_area_m2"], errors="coerce").astype(float)
        reg = reg.where(reg > 0)
        out["area_diff_pct"] = (area - reg) / reg * 100.0
    else:
        out["area_diff_pct"] = np.nan
    out["area_mismatch"] = out["area_diff_pct"].abs() > tolerance_pct
    return out


def lease_land(
    leases: pd.DataFrame,
    parcels: pd.DataFrame,
    *,
    floor_conversion: Literal["plot_ratio", "floor_area"] = "plot_ratio",
) -> pd.DataFrame:
    """Land each lease counts for, with the conversion step visible.

    ``leases`` has ``lessee_uscc, parcel_id, leased_land_m2, leased_floor_m2``; ``parcels`` is
    indexed by ``parcel_id`` with ``area_m2`` and ``floor_area_m2``.

    - A land lease counts its ``leased_land_m2``.
    - A floor lease counts ``leased_floor_m2 / plot_ratio`` with
      ``plot_ratio = floor_area_m2 / area_m2`` of the parcel (``floor_conversion="plot_ratio"``),
      or the floor area itself (``"floor_area"``).

    Returns the leases with ``plot_ratio``, ``lease_basis`` (土地/厂房), ``lease_land_m2`` and
    ``parcel_pos`` (the parcel's position in ``parcels``, -1 when unknown); ``lease_land_m2`` is NaN
    where it cannot be computed (unknown parcel, no plot ratio).
    """
    out = leases.copy()
    pos = positions(parcels.index, out["parcel_id"])
    area = take(parcels["area_m2"].to_numpy(dtype=float), pos)
    if "floor_area_m2" in parcels:
        floor_total = take(parcels["floor_area_m2"].to_numpy(dtype=float), pos)
    else:
        floor_total = np.full(len(out), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        plot_ratio = pd.Series(floor_total / area, index=out.index)
    plot_ratio = plot_ratio.where(plot_ratio > 0)
    empty = pd.Series(np.nan, index=out.index)
    land = pd.to_numeric(out["leased_land_m2"], errors="coerce") if "leased_land_m2" in out else empty
    floor = pd.to_numeric(out["leased_floor_m2"], errors="coerce") if "leased_floor_m2" in out else empty
    by_land = land.notna() & (land > 0)
    converted = floor / plot_ratio if floor_conversion == "plot_ratio" else floor
    out["plot_ratio"] = plot_ratio
    out["lease_basis"] = np.where(by_land, "土地", np.where(floor.notna(), "厂房", ""))
    out["lease_land_m2"] = np.where(np.isnan(area), np.nan, np.where(by_land, land, converted))
    out["parcel_pos"] = pos
    return out


def land_allocation(parcels: pd.DataFrame, leases: pd.DataFrame) -> pd.DataFrame:
    """Who uses how much of each parcel: one row per (parcel, user).

    The holder keeps ``area_m2 − Σ leased land`` (never below 0); each lessee gets its lease land.
    Where leases add up to more than the parcel, they are scaled down to the parcel's area (the
    validator reports it). Columns: ``parcel_id, uscc, role`` (owner/lessee), ``land_m2``,
    ``leased_out_m2`` and ``parcel_pos`` (the row's parcel position in ``parcels``). ``leases`` from
    :func:`lease_land` carry ``parcel_pos``, which must refer to the same ``parcels`` rows.
    """
    area = parcels["area_m2"]
    n = len(area)
    lease_rows = leases.loc[leases["lease_land_m2"].notna() & (leases["lease_land_m2"] > 0)]
    if "parcel_pos" in lease_rows:
        lpos = lease_rows["parcel_pos"].to_numpy(dtype=np.int64)
    else:
        lpos = positions(area.index, lease_rows["parcel_id"])
    if (lpos < 0).any():  # leases not made by lease_land on these parcels: unknown parcels count nothing
        lease_rows, lpos = lease_rows.loc[lpos >= 0], lpos[lpos >= 0]
    lease_m2 = lease_rows["lease_land_m2"].to_numpy(dtype=float)
    area_m2 = area.to_numpy(dtype=float)
    leased_total = np.bincount(lpos, weights=lease_m2, minlength=n) if len(lpos) else np.zeros(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(leased_total > area_m2, area_m2 / np.where(leased_total > 0, leased_total, 1.0), 1.0)
    holder = parcels["holder_uscc"]
    held = np.flatnonzero(holder.notna().to_numpy())
    leased_out = leased_total * scale
    owners = pd.DataFrame(
        {
            "parcel_id": area.index.take(held).array,
            "uscc": holder.iloc[held].array,
            "role": "owner",
            "land_m2": np.clip(area_m2 - leased_out, 0.0, None)[held],
            "leased_out_m2": leased_out[held],
            "parcel_pos": held,
        }
    )
    lessees = pd.DataFrame(
        {
            "parcel_id": lease_rows["parcel_id"].array,
            "uscc": lease_rows["lessee_uscc"].array,
            "role": "lessee",
            "land_m2": lease_m2 * scale[lpos],
            "leased_out_m2": 0.0,
            "parcel_pos": lpos,
        }
    )
    return pd.concat([owners, lessees], ignore_index=True)


def evaluated_land(allocation: pd.DataFrame, enterprises: pd.Index | None = None) -> pd.DataFrame:
    """Evaluated land per enterprise from :func:`land_allocation`, indexed by USCC.

    ``owned_m2`` (parcels held), ``leased_out_m2``, ``leased_in_m2``,
    ``land_m2 = owned_m2 − leased_out_m2 + leased_in_m2``, ``land_mu = land_m2 / (2000/3)``,
    ``parcel_count`` (parcels held) and ``lease_count`` (leases taken).

    With ``enterprises`` (their USCC index) the rows are those enterprises in that order (zeros for an
    enterprise without land, nothing for users who are not among them), and ``allocation`` may carry
    ``ent_pos`` (each row's position in ``enterprises``, -1 for none); otherwise the rows are every
    user of ``allocation`` in USCC order.
    """
    a = allocation
    if enterprises is None:
        codes, uniques = pd.factorize(a["uscc"], sort=True)
        index = pd.Index(uniques, name="uscc")
    else:
        codes = a["ent_pos"].to_numpy(dtype=np.int64) if "ent_pos" in a else positions(enterprises, a["uscc"])
        index = enterprises
    n = len(index)
    known = codes >= 0
    c = codes[known]
    is_owner = (a["role"] == "owner").to_numpy()[known]
    land = a["land_m2"].to_numpy(dtype=float)[known]
    out_m2 = a["leased_out_m2"].to_numpy(dtype=float)[known]

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(c, weights=weights, minlength=n) if len(c) else np.zeros(n)

    out = pd.DataFrame(
        {
            "owned_m2": total(np.where(is_owner, land + out_m2, 0.0)),
            "leased_out_m2": total(np.where(is_owner, out_m2, 0.0)),
            "leased_in_m2": total(np.where(is_owner, 0.0, land)),
            "parcel_count": np.bincount(c[is_owner], minlength=n).astype(np.int64),
            "lease_count": np.bincount(c[~is_owner], minlength=n).astype(np.int64),
        },
        index=index,
    )
    out["land_m2"] = out["owned_m2"] - out["leased_out_m2"] + out["leased_in_m2"]
    out["land_mu"] = out["land_m2"] / M2_PER_MU
    out.index.name = "uscc"
    return out

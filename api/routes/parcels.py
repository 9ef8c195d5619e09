"""Parcels as GeoJSON (EPSG:4326) with the evaluation and flag evidence, a bbox filter and paging."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import APIRouter, Query
from fastapi.responses import Response

from api.deps import CurrentUser, ParkScopeDep, RunDep, SettingsDep, StoreDep, ensure_park
from api.errors import InvalidQuery
from api.geojson import BBOX_HELP, MEDIA_TYPE, feature, feature_collection, geojson_response, not_found, parse_bbox
from api.rundata import RunData, records
from api.settings import Settings
from geo_eval.storage import STATUS_LABELS, Store

router = APIRouter(prefix="/api/parcels", tags=["宗地与标记"])

GEOJSON_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {MEDIA_TYPE: {}}, "description": "GeoJSON（EPSG:4326）"}
}
BBox = Annotated[str | None, Query(description=BBOX_HELP, examples=["119.15,34.60,119.30,34.75"])]
Offset = Annotated[int, Query(ge=0, description="跳过的要素数")]
Limit = Annotated[
    int | None, Query(ge=1, description="每页要素数（默认 GEO_EVAL_PAGE_LIMIT，最多 GEO_EVAL_MAX_PAGE_LIMIT）")
]


def page_bounds(settings: Settings, limit: int | None) -> int:
    """The page size of a request, checked against the maximum."""
    n = settings.page_limit if limit is None else limit
    if n > settings.max_page_limit:
        raise InvalidQuery(f"limit 最大为 {settings.max_page_limit}")
    return n


def bbox_positions(data: RunData, bbox: str | None) -> np.ndarray | None:
    """Parcel rows in the bbox (None without a bbox); 422 for a malformed bbox."""
    try:
        box = parse_bbox(bbox)
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    return None if box is None else data.parcels_in_bbox(box)


def parcel_flags(data: RunData, store: Store, positions: np.ndarray) -> dict[int, list[dict[str, Any]]]:
    """The flags of some parcel rows with their review status, by parcel row."""
    fl = data.flags.loc[data.flags["parcel_pos"].isin(positions)]
    if fl.empty:
        return {}
    reviews = store.reviews(data.run_id, fl["flag_id"].astype(str))
    out: dict[int, list[dict[str, Any]]] = {}
    for fid, pos, flag, label in zip(fl["flag_id"], fl["parcel_pos"], fl["flag"], fl["flag_label"], strict=True):
        r = reviews.get(str(fid))
        status = r.status if r else "pending"
        out.setdefault(int(pos), []).append(
            {
                "flag_id": fid,
                "flag": flag,
                "flag_label": label,
                "review_status": status,
                "review_status_label": STATUS_LABELS[status],
            }
        )
    return out


@router.get(
    "",
    summary="宗地（GeoJSON，可按范围筛选、分页）",
    description="EPSG:4326 的 FeatureCollection；属性为 parcels.gpkg 的字段，`flags` 为该宗地的标记及复核状态。"
    "`numberMatched` 为符合条件的总数。园区管委会只能看到本园区的宗地；指定其他园区返回 403。",
    response_class=Response,
    responses=GEOJSON_RESPONSE,
)
def parcels(
    user: CurrentUser,
    data: RunDep,
    scope: ParkScopeDep,
    store: StoreDep,
    settings: SettingsDep,
    bbox: BBox = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    size = page_bounds(settings, limit)
    positions = np.flatnonzero(scope.mask(data.parcels["park"]))
    in_box = bbox_positions(data, bbox)
    if in_box is not None:
        positions = np.intersect1d(positions, in_box, assume_unique=True)
    page = positions[offset : offset + size]
    table = pd.DataFrame(data.parcels.drop(columns=data.parcels.geometry.name))
    props = records(table.iloc[page])
    flags = parcel_flags(data, store, page)
    features = [
        feature(str(p["parcel_id"]), data.parcel_geojson[pos], {**p, "flags": flags.get(int(pos), [])})
        for pos, p in zip(page, props, strict=True)
    ]
    return geojson_response(
        feature_collection(
            features,
            run_id=data.run_id,
            year=data.record.year,
            numberMatched=len(positions),
            offset=offset,
            limit=size,
        )
    )


@router.get(
    "/{parcel_id}",
    summary="单宗地（GeoJSON Feature）",
    description="宗地的全部字段、标记及复核状态、使用企业的排名行。",
    response_class=Response,
    responses=GEOJSON_RESPONSE,
)
def parcel(parcel_id: str, user: CurrentUser, data: RunDep, store: StoreDep) -> Response:
    pos = data.parcel_pos.get_indexer(pd.Index([parcel_id]))[0]
    if pos < 0:
        raise not_found("宗地", parcel_id)
    row = data.parcels.iloc[int(pos)]
    ensure_park(user, row["park"])
    props = records(pd.DataFrame(data.parcels.drop(columns=data.parcels.geometry.name)).iloc[[int(pos)]])[0]
    props["flags"] = parcel_flags(data, store, np.array([pos])).get(int(pos), [])
    users = [u for u in str(props.get("users") or "").replace(";", ",").split(",") if u.strip()]
    e = data.enterprises
    props["enterprise_rows"] = records(e.loc[e["uscc"].isin([u.strip() for u in users])])
    return geojson_response(feature(parcel_id, data.parcel_geojson[int(pos)], props))

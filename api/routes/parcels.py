"""Parcels as GeoJSON (EPSG:4326) with the evaluation and flag evidence, a bbox filter and paging.

A park committee sees a parcel of its park with every enterprise on it, but an enterprise registered in
another park only by name and USCC (:func:`enterprise_rows`), and not the parcel's figures made from
such an enterprise's data (:func:`hide_figures`: ``grade`` when it is the main user, ``tax_per_mu`` when
it is any user).
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import pyarrow as pa
from fastapi import APIRouter, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from api.deps import CurrentUser, ParkScopeDep, RunDep, SettingsDep, StoreDep, ensure_park
from api.errors import InvalidQuery
from api.geojson import (
    BBOX_HELP,
    MEDIA_TYPE,
    feature,
    feature_collection,
    feature_text,
    geojson_response,
    not_found,
    parse_bbox,
    properties_text,
)
from api.rundata import RunData, records
from api.settings import Settings
from geo_eval.storage import STATUS_LABELS, Review, Store, User

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


def page_response(data: RunData, features: list[str], *, matched: int, offset: int, limit: int) -> Response:
    """One page of GeoJSON features of the run: ``matched`` in all, this page from ``offset``, at most ``limit``."""
    members = {
        "run_id": data.run_id,
        "year": data.record.year,
        "numberMatched": matched,
        "offset": offset,
        "limit": limit,
    }
    return geojson_response(feature_collection(features, **members))


def bbox_positions(data: RunData, bbox: str | None, within: np.ndarray | None = None) -> np.ndarray | None:
    """Parcel rows in the bbox (None without a bbox), among the rows ``within`` when given (ascending); 422
    for a malformed bbox."""
    try:
        box = parse_bbox(bbox)
    except ValueError as exc:
        raise InvalidQuery(str(exc)) from None
    return None if box is None else data.parcels_in_bbox(box, within)


def enterprise_usccs(text: object) -> list[str]:
    """The USCCs of a ``users`` / ``enterprises`` field (``;`` or ``,`` separated).

    >>> enterprise_usccs("A1; B2,C3"), enterprise_usccs(None)
    (['A1', 'B2', 'C3'], [])
    """
    return [u.strip() for u in str(text or "").replace(";", ",").split(",") if u.strip()]


def enterprise_rows(user: User, data: RunData, usccs: list[str]) -> list[dict[str, Any]]:
    """The ranking rows of some enterprises; one of a park the user may not see is only its name and USCC."""
    e = data.enterprises
    return [
        row
        if user.may_see_park(row.get("park"))
        else {"uscc": row["uscc"], "name": row.get("name"), "restricted": True}
        for row in records(e.loc[e["uscc"].isin(usccs)])
    ]


HIDDEN_FIGURES = {"grade": "main_user", "tax_per_mu": "users"}
"""Parcel fields made from enterprise data, and the field naming whose: withheld (None) for a user who may not
see one of those enterprises' parks."""


def hide_figures(user: User, data: RunData, props: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``props`` (parcel properties) with :data:`HIDDEN_FIGURES` set to None where they come from an
    enterprise of a park ``user`` may not see (in place; returned)."""
    if user.sees_all_parks():
        return props
    named = {u for p in props for field in set(HIDDEN_FIGURES.values()) for u in enterprise_usccs(p.get(field))}
    e = data.enterprises
    found = e.loc[e["uscc"].isin(named), ["uscc", "park"]]
    hidden = {str(u) for u, park in zip(found["uscc"], found["park"], strict=True) if not user.may_see_park(park)}
    for p in props:
        for figure, field in HIDDEN_FIGURES.items():
            if figure in p and hidden.intersection(enterprise_usccs(p.get(field))):
                p[figure] = None
    return props


FlagColumns = tuple[list[Any], list[Any], list[Any], list[Any]]
"""Flag ids, parcel rows, kinds and labels of some flags."""


def page_flags(data: RunData, positions: np.ndarray) -> FlagColumns:
    """The flags of some parcel rows, column by column (a take of every column of the flags costs 2–3 ms a
    page, of these four about 0.4 ms)."""
    rows = data.flag_rows(positions)
    fl = data.flags
    ids, pos, kinds, labels = (fl[c].take(rows).tolist() for c in ("flag_id", "parcel_pos", "flag", "flag_label"))
    return ids, pos, kinds, labels


def parcel_flags(data: RunData, store: Store, positions: np.ndarray) -> dict[int, list[dict[str, Any]]]:
    """The flags of some parcel rows with their review status, by parcel row."""
    columns = page_flags(data, positions)
    if not columns[0]:
        return {}
    return flags_by_parcel(columns, store.reviews(data.run_id, [str(f) for f in columns[0]]))


async def parcel_flags_async(data: RunData, store: Store, positions: np.ndarray) -> dict[int, list[dict[str, Any]]]:
    """:func:`parcel_flags` for a coroutine: the store's query in the thread pool (PostgreSQL answers over the
    network), the rest on the event loop."""
    columns = page_flags(data, positions)
    if not columns[0]:
        return {}
    reviews = await run_in_threadpool(store.reviews, data.run_id, [str(f) for f in columns[0]])
    return flags_by_parcel(columns, reviews)


def flags_by_parcel(columns: FlagColumns, reviews: dict[str, Review]) -> dict[int, list[dict[str, Any]]]:
    """Each parcel row's flags with their review states (a flag never reviewed is 待复核)."""
    ids, pos_, flags_, labels = columns
    out: dict[int, list[dict[str, Any]]] = {}
    for fid, pos, flag, label in zip(ids, pos_, flags_, labels, strict=True):
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
async def parcels(
    user: CurrentUser,
    data: RunDep,
    scope: ParkScopeDep,
    store: StoreDep,
    settings: SettingsDep,
    bbox: BBox = None,
    limit: Limit = None,
    offset: Offset = 0,
) -> Response:
    # A coroutine: a page is a few ms of CPU, and run on the event loop it no longer waits its turn for the
    # interpreter among the thread pool's requests (at 1M parcels, 20 clients, one worker: p95 154 → 120 ms).
    size = page_bounds(settings, limit)
    positions = data.parcel_rows(scope.parks)
    in_box = bbox_positions(data, bbox, None if scope.parks is None else positions)
    if in_box is not None:
        positions = in_box
    page = positions[offset : offset + size]
    flags = await parcel_flags_async(data, store, page)
    if data.parcel_properties is not None and user.sees_all_parks():
        features = prepared_features(data, page, flags)
    else:
        props = hide_figures(user, data, records(data.parcel_table.iloc[page]))
        features = [
            feature(str(p["parcel_id"]), data.parcel_geojson[pos], {**p, "flags": flags.get(int(pos), [])})
            for pos, p in zip(page, props, strict=True)
        ]
    return page_response(data, features, matched=len(positions), offset=offset, limit=size)


def prepared_features(data: RunData, page: np.ndarray, flags: dict[int, list[dict[str, Any]]]) -> list[str]:
    """The features of some parcel rows from the run's prepared property texts (a user who sees every park:
    nothing to withhold), each with its flags appended: the same text as :func:`feature` makes."""
    assert data.parcel_properties is not None
    taken = pa.array(page, pa.int64())
    heads = data.parcel_properties.take(taken).to_pylist()
    ids = data.parcel_table["parcel_id"].take(page).tolist()
    geoms = data.geometry_texts(page)
    return [
        feature_text(str(pid), geom, f'{head},"flags":{properties_text(flags.get(pos, []))}}}')
        for pos, pid, geom, head in zip(page.tolist(), ids, geoms, heads, strict=True)
    ]


@router.get(
    "/{parcel_id}",
    summary="单宗地（GeoJSON Feature）",
    description="宗地的全部字段、标记及复核状态、使用企业的排名行。园区管委会对登记在其他园区的使用企业只能看到名称和统一社会信用代码"
    "（`restricted: true`），由这些企业数据得出的宗地字段（分类 grade、亩均税收 tax_per_mu）为 null。",
    response_class=Response,
    responses=GEOJSON_RESPONSE,
)
def parcel(parcel_id: str, user: CurrentUser, data: RunDep, store: StoreDep) -> Response:
    pos = data.parcel_position(parcel_id)
    if pos < 0:
        raise not_found("宗地", parcel_id)
    row = data.parcel_table.iloc[int(pos)]
    ensure_park(user, row["park"])
    props = hide_figures(user, data, records(data.parcel_table.iloc[[int(pos)]]))[0]
    props["flags"] = parcel_flags(data, store, np.array([pos])).get(int(pos), [])
    props["enterprise_rows"] = enterprise_rows(user, data, enterprise_usccs(props.get("users")))
    return geojson_response(feature(parcel_id, data.parcel_geojson[int(pos)], props))

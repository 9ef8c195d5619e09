"""The review list of a map served a page at a time, counted by the service (``queue.json``).

A park's page holds its whole review list (``flags.json``: a few thousand rows) and filters, counts and
pages it in the browser. A province's overview cannot: at 1M parcels its list is 600k flags and 157 MB.
There the page asks the service for the rows it shows, filtered by kind, state and severity, in the
list's order (severity, then area, largest first, then flag id), and for the counts per state and per
park. The order and the flags' kinds, severities and parks are made once per run and scope; the states
once per review version (the store's latest audit id), from the few reviewed flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from api.mapdata import MapCaches, MapScope, partial_source
from api.rundata import RunData
from geo_eval import maps
from geo_eval.maps.styles import SEVERITIES, STATUS_ORDER
from geo_eval.storage import Store

QUEUE_PAGE_MAX = 500
"""The most rows one ``queue.json`` answer holds."""
PENDING = STATUS_ORDER.index("pending")


@dataclass(frozen=True)
class QueueOrder:
    """The flags of a map in the review list's order, with what the list filters on (as codes)."""

    rows: np.ndarray
    """Row positions in :attr:`RunData.flags`, in the list's order."""
    ids: pa.Array
    """The flags' ids, in the list's order."""
    kinds: np.ndarray
    kind_names: list[str]
    severities: np.ndarray
    severity_names: list[str]
    parks: np.ndarray
    park_names: list[str]


def _codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    codes, names = pd.factorize(values.astype(str), sort=True)
    return codes.astype(np.int32), [str(n) for n in names]


def queue_order(data: RunData, caches: MapCaches, scope: MapScope) -> QueueOrder:
    """The map's flags sorted as the page sorts its list: severity (高, 中, 低, then others), area (亩, to
    two decimals, largest first; none as 0), flag id; made once per run and scope."""

    def build() -> QueueOrder:
        pos = data.flags["parcel_pos"].to_numpy(dtype=np.int64)
        west = data.parcel_geometries.columns[0]
        drawn = (pos >= 0) & np.isfinite(west[np.maximum(pos, 0)])  # as the whole list: parcels with a shape
        rows = np.flatnonzero(scope.flag_mask(data) & drawn)
        flags = data.flags.iloc[rows]
        pos = pos[rows]
        area = pd.to_numeric(data.parcel_table["area_mu"], errors="coerce").to_numpy(dtype=float)
        mu = np.round(area[pos], 2)
        sev = flags["severity"].astype(str)
        rank = sev.map({s: i for i, s in enumerate(SEVERITIES)}).fillna(len(SEVERITIES)).to_numpy(dtype=np.int32)
        ids = pa.array(flags.index.astype(str), pa.string())
        table = pa.table({"rank": rank, "area": np.nan_to_num(mu, nan=0.0), "id": ids})
        order = pc.sort_indices(table, [("rank", "ascending"), ("area", "descending"), ("id", "ascending")])
        order = order.to_numpy()
        kinds, kind_names = _codes(flags["flag"].iloc[order])
        sevs, sev_names = _codes(sev.iloc[order])
        parks, park_names = _codes(flags["park"].fillna("").iloc[order])
        return QueueOrder(rows[order], ids.take(order), kinds, kind_names, sevs, sev_names, parks, park_names)

    return caches.other.get(data, ("queue-order", scope.key), build)


def queue_states(order: QueueOrder, reviews: Mapping[str, str]) -> np.ndarray:
    """Each flag's state (an index into :data:`STATUS_ORDER`), from the reviewed flags' states (flag id →
    state); a flag never reviewed is 待复核."""
    states = np.full(len(order.ids), PENDING, dtype=np.int8)
    if not reviews:
        return states
    ids = list(reviews)
    codes = np.array([STATUS_ORDER.index(reviews[i]) if reviews[i] in STATUS_ORDER else PENDING for i in ids])
    at = pc.index_in(order.ids, value_set=pa.array(ids, pa.string()))
    hit = ~np.asarray(at.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    states[hit] = codes[np.asarray(at.filter(pa.array(hit)).to_numpy(), dtype=np.int64)]
    return states


def scope_states(data: RunData, store: Store, caches: MapCaches, scope: MapScope, version: int) -> np.ndarray:
    """:func:`queue_states` of a map, made once per review version."""
    order = queue_order(data, caches, scope)

    def build() -> np.ndarray:
        reviews = {fid: r.status for fid, r in store.reviews(data.run_id).items()}
        return queue_states(order, reviews)

    return caches.other.get(data, ("queue-states", scope.key, version), build)


@dataclass(frozen=True)
class QueueQuery:
    """What the list shows: filters (empty: any), where it starts, how many rows."""

    kind: str = ""
    state: str = ""
    severity: str = ""
    offset: int = 0
    limit: int = 200
    after: str | None = None
    """A flag id: the rows after it in the filtered list, wrapping round to its start ("下一条待复核")."""


def _match(order: QueueOrder, states: np.ndarray, q: QueueQuery) -> np.ndarray:
    """Positions in the list's order of the flags that match the filters."""
    mask = np.ones(len(order.rows), dtype=bool)
    for value, codes, names in (
        (q.kind, order.kinds, order.kind_names),
        (q.severity, order.severities, order.severity_names),
    ):
        if value:
            mask &= codes == (names.index(value) if value in names else -1)
    if q.state:
        mask &= states == (STATUS_ORDER.index(q.state) if q.state in STATUS_ORDER else -1)
    return np.flatnonzero(mask)


def _after(order: QueueOrder, matched: np.ndarray, flag_id: str) -> np.ndarray:
    """``matched`` from just after ``flag_id``'s place in the list, wrapping round (all of it if absent)."""
    at = int(pc.index(order.ids, pa.scalar(flag_id, pa.string())).as_py())
    if at < 0:
        return matched
    cut = int(np.searchsorted(matched, at, side="right"))
    return np.concatenate([matched[cut:], matched[:cut]])


def counts_by_state(states: np.ndarray) -> dict[str, int]:
    n = np.bincount(states, minlength=len(STATUS_ORDER))
    return {s: int(n[i]) for i, s in enumerate(STATUS_ORDER)}


def park_counts(order: QueueOrder, states: np.ndarray) -> list[list[Any]]:
    """``[park, {state: flags}]`` per park of the map, by name."""
    k = len(STATUS_ORDER)
    n = np.bincount(order.parks.astype(np.int64) * k + states, minlength=len(order.park_names) * k)
    return [
        [park, {s: int(n[p * k + i]) for i, s in enumerate(STATUS_ORDER)}] for p, park in enumerate(order.park_names)
    ]


def queue_rows(data: RunData, order: QueueOrder, picked: np.ndarray, basemap: str) -> list[list[object]]:
    """The review list's rows (:data:`~geo_eval.maps.FLAG_INDEX_COLUMNS`) of some places of the list, in
    that order: made from those flags' parcels only."""
    if not len(picked):
        return []
    rows = order.rows[picked]
    flags = data.flags.iloc[rows]
    pos = flags["parcel_pos"].to_numpy(dtype=np.int64)
    src = partial_source(data, pos[pos >= 0], basemap)
    made = maps.flag_index(flags.drop(columns=["parcel_pos"]), src, src)
    by_id = {r[0]: r for r in made}
    return [by_id[i] for i in flags.index.astype(str) if i in by_id]


def queue_answer(
    data: RunData, order: QueueOrder, states: np.ndarray, q: QueueQuery, basemap: str, *, scope_parks: bool
) -> dict[str, Any]:
    """The JSON answer of ``queue.json``: the page's rows, how many match, the counts per state and per park."""
    matched = _match(order, states, q)
    seq = _after(order, matched, q.after) if q.after else matched
    picked = seq[q.offset : q.offset + q.limit]
    return {
        "run_id": data.run_id,
        "total": len(matched),
        "offset": q.offset,
        "counts": counts_by_state(states),
        "parks": park_counts(order, states) if scope_parks else None,
        "columns": list(maps.FLAG_INDEX_COLUMNS),
        "rows": queue_rows(data, order, picked, basemap),
    }

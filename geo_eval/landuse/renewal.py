"""Renewal blocks (集中连片改造): adjacent 退二优二 candidate parcels grouped into contiguous blocks.

The 退二优二 action plan asks for contiguous redevelopment rather than parcel-by-parcel work
(domain.md §6). :func:`renewal_blocks` groups the flagged parcels that touch or lie within a
tolerance of each other, so that a road narrower than the tolerance does not split a block, and
reports one row per block: members, area, enterprises, grades, current tax and the merged outline.

Method, all vectorised (no Python loop over parcels or pairs of parcels):

1. candidates sorted by ``parcel_id`` (the order every later tie is broken in);
2. one ``shapely.STRtree`` over the candidate geometries, queried with all of them at once with
   ``predicate="dwithin", distance=tolerance_m``: the pairs within the tolerance;
3. ``scipy.sparse.csgraph.connected_components`` of that pair graph: the groups;
4. outlines: per group ``shapely.coverage_union_all`` (edge-sharing parcels, the normal cadastre),
   falling back to ``shapely.union_all`` for a group whose coverage union is invalid or loses or
   gains area (overlapping parcels, T-junctions without a shared vertex). Single-parcel groups keep
   their geometry.

Only candidates are in the tree: a parcel that is not a candidate never bridges two candidates.

Cost (``python -m bench.bench_blocks``, 2-core development machine shared with other jobs; best of
runs): 300 000 parcels with 90 000 flagged (6 564 groups): query + components 0.63 s, outlines
0.25 s, the whole function 1.4 s; 1 000 000 parcels with 302 000 flagged (21 587 groups): 2.8 s,
0.8 s and 4.7 s. The ``touches`` predicate is about 4× slower than ``dwithin``; ``union_all`` per
group (or geopandas ``dissolve``) about 10× slower than the coverage union.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS
from scipy.sparse import coo_array
from scipy.sparse.csgraph import connected_components
from shapely.errors import GEOSException

from geo_eval.errors import DatasetError
from geo_eval.landuse.land import M2_PER_MU
from geo_eval.report.labels import headers

__all__ = [
    "BLOCK_COLUMNS",
    "BLOCK_LABELS",
    "GRADE_KEYS",
    "KIND_BLOCK",
    "KIND_SCATTERED",
    "NO_GRADE",
    "RenewalBlocks",
    "closed_outlines",
    "contiguous_groups",
    "dissolve_groups",
    "renewal_blocks",
]

KIND_BLOCK = "连片改造区块"
"""A group whose total area reaches ``min_area_mu``."""
KIND_SCATTERED = "零星地块"
"""A group below ``min_area_mu`` (often a single parcel)."""

GRADE_KEYS = ("A", "B", "C", "D", "T")
"""Grades always listed in ``grades``, in this order (other values follow, sorted, then 无)."""
NO_GRADE = "无"
"""Label of member parcels without a graded main user (state land, vacant, not evaluated)."""

REQUIRED_COLUMNS = ("area_mu", "main_user", "users", "grade", "tax_per_mu")

BLOCK_COLUMNS: tuple[str, ...] = (
    "block_id",
    "kind",
    "rank_by_area",
    "n_parcels",
    "parcel_ids",
    "area_mu",
    "area_m2",
    "n_enterprises",
    "enterprises",
    "enterprise_names",
    "main_user",
    "main_user_name",
    "grades",
    "tax_wan",
    "tax_area_mu",
    "tax_per_mu",
)
"""The columns of :attr:`RenewalBlocks.blocks` (and the geometry), in order."""
BLOCK_LABELS = headers(BLOCK_COLUMNS, "blocks")
"""Chinese header of each column of :attr:`RenewalBlocks.blocks` (units in the header)."""


@dataclass(frozen=True)
class RenewalBlocks:
    """Result of :func:`renewal_blocks`.

    Attributes
    ----------
    blocks
        One row per group of candidates, indexed by ``block_id`` (also a column, for writers), in
        block order (area descending, then smallest ``parcel_id``). See :func:`renewal_blocks`.
    membership
        ``parcel_id`` → ``block_id`` for every candidate, sorted by ``parcel_id``.
    tolerance_m, min_area_mu
        The parameters the blocks were formed with.
    timings
        Seconds spent in ``validate``, ``groups`` (tree, query, components), ``outlines``
        (dissolve), ``figures`` (attributes) and ``total``; not part of the results (excluded from
        equality).
    """

    blocks: gpd.GeoDataFrame
    membership: pd.Series
    tolerance_m: float
    min_area_mu: float
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def contiguous_groups(geoms: np.ndarray, tolerance_m: float) -> np.ndarray:
    """Label of the connected group of each geometry; geometries within ``tolerance_m`` are linked.

    Two geometries are linked when ``distance(a, b) ≤ tolerance_m`` (touching: distance 0); a group
    is a connected component of the links. Labels are ``0 … k−1`` in order of each group's first
    geometry in ``geoms``.

    >>> from shapely import box
    >>> contiguous_groups(np.array([box(0, 0, 1, 1), box(30, 0, 31, 1), box(1, 0, 2, 1)]), 15.0)
    array([0, 1, 0], dtype=int32)
    """
    n = len(geoms)
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    tree = shapely.STRtree(geoms)
    pairs = tree.query(geoms, predicate="dwithin", distance=float(tolerance_m))
    graph = coo_array(
        (np.ones(pairs.shape[1], dtype=np.int8), (pairs[0], pairs[1])),
        shape=(n, n),
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    # connected_components numbers groups by their first node already; make that explicit.
    _, first = np.unique(labels, return_index=True)
    relabel = np.empty(len(first), dtype=np.int32)
    relabel[labels[np.sort(first)]] = np.arange(len(first), dtype=np.int32)
    return relabel[labels]


def dissolve_groups(geoms: np.ndarray, labels: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """The union of the geometries of each group: element ``g`` is the outline of group ``g``.

    Edge-sharing parcels (a valid polygonal coverage) are merged with ``shapely.coverage_union_all``,
    which only removes the shared edges; a group whose result is invalid, or whose area differs from
    the sum of its members' areas by more than 1e-7 relative, is merged again with
    ``shapely.union_all`` (overlapping parcels, or an edge met by a vertex the other side lacks).
    A group of one keeps its geometry. Members far apart give a MultiPolygon. Rings are oriented
    as in GeoJSON (exterior counter-clockwise, holes clockwise).

    >>> from shapely import box
    >>> out = dissolve_groups(np.array([box(0, 0, 1, 1), box(1, 0, 2, 1), box(5, 0, 6, 1)]), np.array([0, 0, 1]))
    >>> [(g.geom_type, g.area, len(g.exterior.coords)) for g in out]
    [('Polygon', 2.0, 7), ('Polygon', 1.0, 5)]
    """
    labels = np.asarray(labels)
    k = int(labels.max()) + 1 if n_groups is None and len(labels) else int(n_groups or 0)
    out = np.full(k, None, dtype=object)
    if not len(labels):
        return out
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    ordered = geoms[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], len(order)]
    group = sorted_labels[starts]
    single = ends - starts == 1
    out[group[single]] = ordered[starts[single]]
    multi_starts, multi_ends, multi_group = starts[~single], ends[~single], group[~single]
    merged = np.empty(len(multi_group), dtype=object)
    for i, (s, e) in enumerate(zip(multi_starts, multi_ends, strict=True)):
        try:
            merged[i] = shapely.coverage_union_all(ordered[s:e])
        except GEOSException:
            merged[i] = None
    if len(merged):
        member_area = np.add.reduceat(shapely.area(ordered), starts)[~single]
        area = shapely.area(merged)
        ok = (
            ~shapely.is_missing(merged)
            & shapely.is_valid(merged)
            & (np.abs(area - member_area) <= 1e-7 * np.maximum(member_area, 1.0))
        )
        for j in np.flatnonzero(~ok):
            merged[j] = shapely.union_all(ordered[multi_starts[j] : multi_ends[j]])
        out[multi_group] = merged
    return shapely.orient_polygons(out)


def closed_outlines(blocks: gpd.GeoDataFrame, *, gap_m: float = 15.0, quad_segs: int = 4) -> gpd.GeoSeries:
    """Outlines with the gaps between a block's parts closed (for maps), on ``blocks``' index.

    A morphological closing ``buffer(+gap_m/2)`` then ``buffer(−gap_m/2)`` (round joins), applied
    only to blocks of more than one part, then united with the exact outline so that nothing of a
    member is lost to the approximation of the arcs. It fills the roads between members, so its
    area is larger than the members' area: use it for drawing, not for figures. Parts further
    apart than ``gap_m`` stay separate; parts that only meet at a corner may too.

    Cost on the bench: 0.3 s for 814 multi-part blocks (300 000 parcels), 1.2 s for 2 637
    (1 000 000 parcels), most of it the final union; closing each parcel instead would need a
    buffer of every parcel, which is what this avoids.
    """
    geom = blocks.geometry
    arr = np.asarray(geom.array, dtype=object)
    out = arr.copy()
    multi = shapely.get_num_geometries(arr) > 1
    if multi.any() and gap_m > 0:
        half = gap_m / 2.0
        grown = shapely.buffer(arr[multi], half, quad_segs=quad_segs)
        closed = shapely.buffer(grown, -half, quad_segs=quad_segs)
        out[multi] = shapely.union(closed, arr[multi])
    return gpd.GeoSeries(out, index=blocks.index, crs=geom.crs, name=geom.name)


def renewal_blocks(
    parcels: gpd.GeoDataFrame,
    candidates: pd.Index | pd.Series | Sequence[str],
    *,
    tolerance_m: float = 15.0,
    min_area_mu: float = 50.0,
    enterprises: pd.DataFrame | None = None,
) -> RenewalBlocks:
    """Group adjacent 退二优二 candidate parcels into renewal blocks (集中连片改造).

    Parameters
    ----------
    parcels
        The parcel results, indexed by ``parcel_id``, in a projected CRS in metres (the CGCS2000
        Gauss-Krüger plane), with ``area_mu``, ``main_user``, ``users`` (``;``-joined USCCs),
        ``grade`` and ``tax_per_mu`` (万元/亩, NaN where unknown); ``area_m2`` and
        ``eval_area_m2`` are used when present.
    candidates
        The parcel ids flagged as 退二优二 candidates (duplicates ignored), or a boolean Series on
        ``parcels``' index.
    tolerance_m
        Candidates whose distance is at most this many metres are in the same block, so a road
        narrower than it does not split a block. 0 links touching parcels only.
    min_area_mu
        A group of at least this area (亩, compared on the published, rounded ``area_mu``) is a
        连片改造区块, a smaller one a 零星地块.
    enterprises
        Optional enterprise results indexed by USCC with ``name``: adds ``enterprise_names`` and
        ``main_user_name``.

    Returns
    -------
    RenewalBlocks
        ``blocks``, one row per group, ordered by ``area_mu`` descending then by the smallest
        member ``parcel_id``, with

        - ``block_id`` = ``"R0001"``, ``"R0002"``, … in that order (more digits beyond 9 999 blocks);
        - ``kind`` = 连片改造区块 when ``area_mu ≥ min_area_mu``, else 零星地块;
        - ``rank_by_area`` = 1, 2, … over the 连片改造区块 only (1 = largest; ties in that order),
          ``<NA>`` for a 零星地块;
        - ``n_parcels``, ``parcel_ids`` (sorted, ``;``-joined);
        - ``area_mu = round(Σ area_mu, 4)``; ``area_m2 = round(Σ area_m2, 2)`` (``area_mu × 2000/3``
          without ``area_m2``);
        - ``enterprises``: the sorted distinct USCCs of the members' ``users`` and ``main_user``,
          ``;``-joined, and ``n_enterprises``; ``enterprise_names`` in the same order (with
          ``enterprises``);
        - ``main_user``: the enterprise that is main user of the largest share of the block
          (Σ ``area_mu`` of the parcels it mainly uses; ties to the smaller USCC), and
          ``main_user_name`` (from ``enterprises``, else from ``parcels.main_user_name``);
        - ``grades``: member parcels per grade of their main user, ``"A:0;B:1;C:2;D:3;T:0;无:1"``
          (A–D and T always listed, other values sorted after them, 无 = no grade, always last);
        - ``tax_wan = Σ tax_per_mu × basis_mu`` over members with known tax, the current tax
          attributable to the block in 万元, where ``basis_mu`` is the area the parcel's tax per 亩
          was computed on: ``eval_area_m2 / (2000/3)`` when present, else ``area_mu``; NaN when no
          member has a known tax;
        - ``tax_area_mu = Σ basis_mu`` over the members with known tax, and
          ``tax_per_mu = tax_wan / tax_area_mu``: the block's 亩均税收 over the land whose tax is
          known (members without tax are left out, not counted as zero; ``tax_wan / area_mu`` is
          the figure that counts them as zero). Tax figures are rounded to 4 decimals;
        - geometry: the union of the member polygons (:func:`dissolve_groups`); a MultiPolygon
          where a road separates members. Its area equals the members' area for a clean
          cadastre. :func:`closed_outlines` closes the road gaps for drawing.

        ``membership``: ``parcel_id`` → ``block_id`` for every candidate.

    Raises
    ------
    DatasetError
        (a ``ValueError``) listing every problem at once: no or a geographic CRS, units other than
        metres, missing columns, duplicate parcel ids, unknown candidate ids, candidates without a
        geometry, a negative tolerance or minimum area, ``enterprises`` without ``name``.
    """
    t0 = time.perf_counter()
    pos = _validate(parcels, candidates, tolerance_m, min_area_mu, enterprises)
    columns = [c for c in (*REQUIRED_COLUMNS, "area_m2", "eval_area_m2", "main_user_name") if c in parcels.columns]
    members = parcels.iloc[pos, parcels.columns.get_indexer([*columns, parcels.geometry.name])]
    ids = members.index.to_numpy(dtype=object)
    geoms = np.asarray(members.geometry.array, dtype=object)
    t1 = time.perf_counter()

    labels = contiguous_groups(geoms, tolerance_m)
    t2 = time.perf_counter()

    area_mu = members["area_mu"].to_numpy(dtype=float)
    n_groups = int(labels.max()) + 1 if len(labels) else 0
    raw_area = np.bincount(labels, weights=area_mu, minlength=n_groups)
    _, first_member = np.unique(labels, return_index=True)  # ids are sorted: first = smallest id
    rounded = np.round(raw_area, 4)
    order = np.lexsort((first_member, -rounded))  # area descending, then smallest parcel_id
    block_of_group = np.empty(n_groups, dtype=np.int64)
    block_of_group[order] = np.arange(n_groups)
    block = block_of_group[labels]  # 0-based block number of each member, in block order
    width = max(4, len(str(n_groups)))
    block_ids = np.array([f"R{i + 1:0{width}d}" for i in range(n_groups)], dtype=object)

    outlines = dissolve_groups(geoms, labels, n_groups)[order]
    t3 = time.perf_counter()

    frame = _figures(members, ids, block, n_groups, rounded[order], min_area_mu, enterprises)
    frame.insert(0, "block_id", block_ids)
    frame.index = pd.Index(block_ids, dtype=object)
    blocks = gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(outlines, index=frame.index), crs=parcels.crs)
    membership = pd.Series(block_ids[block], index=pd.Index(ids, name="parcel_id"), name="block_id")
    t4 = time.perf_counter()
    return RenewalBlocks(
        blocks=blocks,
        membership=membership,
        tolerance_m=float(tolerance_m),
        min_area_mu=float(min_area_mu),
        timings={
            "validate": t1 - t0,
            "groups": t2 - t1,
            "outlines": t3 - t2,
            "figures": t4 - t3,
            "total": t4 - t0,
        },
    )


def _validate(
    parcels: gpd.GeoDataFrame,
    candidates: pd.Index | pd.Series | Sequence[str],
    tolerance_m: float,
    min_area_mu: float,
    enterprises: pd.DataFrame | None,
) -> np.ndarray:
    """Row positions of the candidates in ``parcels``, sorted by ``parcel_id``.

    Raises one :class:`DatasetError` that lists every problem with the inputs.
    """
    problems: list[str] = []
    if parcels.crs is None:
        problems.append("宗地图层没有坐标参考系：请使用 CGCS2000 高斯-克吕格投影坐标（米）")
    else:
        crs = CRS.from_user_input(parcels.crs)
        if not crs.is_projected:
            problems.append(
                f"宗地图层的坐标参考系 {crs.to_string()} 是地理坐标（经纬度），无法按米计算相邻距离："
                "请先转换为 CGCS2000 高斯-克吕格投影坐标（如 EPSG:4549）"
            )
        else:
            factor = crs.axis_info[0].unit_conversion_factor if crs.axis_info else 1.0
            if not math.isclose(factor, 1.0):
                problems.append(f"宗地图层的坐标单位不是米（{crs.axis_info[0].unit_name}）：请使用以米为单位的投影坐标")
    missing = [c for c in REQUIRED_COLUMNS if c not in parcels.columns]
    if missing:
        problems.append(f"宗地结果缺少字段：{'、'.join(missing)}")
    pos = np.zeros(0, dtype=np.int64)
    if not parcels.index.is_unique:
        dup = sorted({str(v) for v in parcels.index[parcels.index.duplicated()]})
        problems.append(f"宗地代码重复 {len(dup)} 个：{_examples(dup)}")
    elif isinstance(candidates, pd.Series) and pd.api.types.is_bool_dtype(candidates.dtype):
        same = candidates.index.equals(parcels.index)
        mask = candidates if same else candidates.reindex(parcels.index, fill_value=False)
        pos = np.flatnonzero(mask.fillna(False).to_numpy(dtype=bool))
    else:
        values = candidates.to_numpy(dtype=object) if isinstance(candidates, (pd.Index, pd.Series)) else candidates
        wanted = pd.unique(np.asarray(values, dtype=object))
        pos = parcels.index.get_indexer(wanted)
        if (pos < 0).any():
            unknown = sorted(map(str, wanted[pos < 0]))
            problems.append(f"候选宗地中有 {len(unknown)} 个不在宗地图层中：{_examples(unknown)}")
        pos = pos[pos >= 0]
    if len(pos):
        ids = parcels.index[pos].to_numpy(dtype=object)
        order = np.argsort(ids, kind="stable")
        pos, ids = pos[order], ids[order]
        g = np.asarray(parcels.geometry.array[pos], dtype=object)
        empty = shapely.is_missing(g) | shapely.is_empty(g)
        if empty.any():
            problems.append(f"候选宗地中有 {int(empty.sum())} 个没有几何图形：{_examples(list(map(str, ids[empty])))}")
    if not (math.isfinite(tolerance_m) and tolerance_m >= 0):
        problems.append(f"相邻容差 tolerance_m 应为不小于 0 的米数，当前为 {tolerance_m}")
    if not (math.isfinite(min_area_mu) and min_area_mu >= 0):
        problems.append(f"连片面积下限 min_area_mu 应为不小于 0 的亩数，当前为 {min_area_mu}")
    if enterprises is not None and "name" not in enterprises.columns:
        problems.append("企业结果缺少字段：name（企业名称）")
    if problems:
        raise DatasetError("无法划分连片改造区块：\n- " + "\n- ".join(problems))
    return pos


def _examples(values: Sequence[str], limit: int = 10) -> str:
    shown = "、".join(values[:limit])
    return shown + (f" 等 {len(values)} 个" if len(values) > limit else "")


def _figures(
    members: pd.DataFrame,
    ids: np.ndarray,
    block: np.ndarray,
    n_blocks: int,
    area_mu: np.ndarray,
    min_area_mu: float,
    enterprises: pd.DataFrame | None,
) -> pd.DataFrame:
    """The attribute columns of the blocks, one row per block number ``0 … n_blocks−1``.

    ``members`` and ``ids`` are sorted by ``parcel_id``; ``block`` is each member's block number.
    """
    pos = pd.RangeIndex(n_blocks)
    by_block = np.argsort(block, kind="stable")  # ids stay sorted within a block
    out = pd.DataFrame(index=pos)
    kind_block = area_mu >= min_area_mu
    out["kind"] = np.where(kind_block, KIND_BLOCK, KIND_SCATTERED).astype(object)
    out["rank_by_area"] = pd.Series(np.cumsum(kind_block), index=pos).where(kind_block).astype("Int64")
    out["n_parcels"] = np.bincount(block, minlength=n_blocks)
    out["parcel_ids"] = _join(block[by_block], ids[by_block], n_blocks)
    out["area_mu"] = area_mu
    area_each = members["area_mu"].to_numpy(dtype=float)
    m2 = members["area_m2"].to_numpy(dtype=float) if "area_m2" in members.columns else area_each * M2_PER_MU
    out["area_m2"] = np.round(np.bincount(block, weights=m2, minlength=n_blocks), 2)

    # Enterprises: every user of every member, and the main users. One split of all users at once:
    # parcel i contributes count(";") + 1 pieces (an empty "users" gives one empty piece).
    users = members["users"].fillna("").astype(str)
    pieces = ";".join(users.tolist()).split(";") if len(users) else []
    n_pieces = users.str.count(";").to_numpy(dtype=np.int64) + 1
    main_user = members["main_user"].to_numpy(dtype=object)
    all_block = np.concatenate([np.repeat(block, n_pieces), block])
    all_uscc = np.concatenate([np.asarray(pieces, dtype=object), main_user])
    given = pd.notna(all_uscc) & (all_uscc != "")
    code, uscc = pd.factorize(all_uscc[given], sort=True)  # code order = USCC order
    n_codes = max(len(uscc), 1)
    key = np.unique(all_block[given] * n_codes + code)  # distinct (block, USCC), sorted by both
    pb = key // n_codes
    pu = np.asarray(uscc, dtype=object)[key % n_codes]
    out["n_enterprises"] = np.bincount(pb, minlength=n_blocks)
    out["enterprises"] = _join(pb, pu, n_blocks)
    names = _names(members, enterprises)
    if enterprises is not None:
        mapped = pd.Series(pu, dtype=object).map(names)
        pn = mapped.where(mapped.notna(), "").astype(str).to_numpy(dtype=object)
        out["enterprise_names"] = _join(pb, pn, n_blocks)

    # Main user of the block: most area mainly used, ties to the smaller USCC.
    all_code = np.full(len(all_uscc), -1, dtype=np.int64)
    all_code[given] = code
    main_code = all_code[len(all_uscc) - len(block) :]  # the main users come last
    has_main = main_code >= 0
    main_key, main_inv = np.unique(block[has_main] * n_codes + main_code[has_main], return_inverse=True)
    used = np.bincount(main_inv, weights=area_each[has_main], minlength=len(main_key))
    ranked = np.lexsort((main_key % n_codes, -used, main_key // n_codes))  # block, area desc, USCC
    first = ranked[np.r_[True, np.diff(main_key[ranked] // n_codes) != 0]] if len(ranked) else ranked
    top = np.full(n_blocks, None, dtype=object)
    top[main_key[first] // n_codes] = np.asarray(uscc, dtype=object)[main_key[first] % n_codes]
    out["main_user"] = top
    top_name = pd.Series(top, dtype=object).map(names)
    out["main_user_name"] = top_name.where(top_name.notna(), None).to_numpy(dtype=object)

    out["grades"] = _grade_counts(members["grade"], block, n_blocks)

    # Tax: per-mu tax × the area it was computed on, over members whose tax is known.
    tax_per_mu = pd.to_numeric(members["tax_per_mu"], errors="coerce").to_numpy(dtype=float)
    basis = area_each
    if "eval_area_m2" in members.columns:
        evaluated = members["eval_area_m2"].to_numpy(dtype=float) / M2_PER_MU
        basis = np.where(np.isnan(evaluated), area_each, evaluated)
    known = ~np.isnan(tax_per_mu)
    tax = np.bincount(block[known], weights=tax_per_mu[known] * basis[known], minlength=n_blocks)
    tax_area = np.bincount(block[known], weights=basis[known], minlength=n_blocks)
    any_known = np.bincount(block[known], minlength=n_blocks) > 0
    tax = np.where(any_known, tax, np.nan)
    out["tax_wan"] = np.round(tax, 4)
    out["tax_area_mu"] = np.round(tax_area, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        out["tax_per_mu"] = np.round(np.where(tax_area > 0, tax / tax_area, np.nan), 4)
    return out


def _join(group: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """``";"``-joined ``values`` per group ``0 … n_groups−1`` (``group`` sorted; ``""`` if none).

    One ``str.join`` per group over slices of a list: no per-value Python work.
    """
    out = np.full(n_groups, "", dtype=object)
    if len(group):
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        ends = np.r_[starts[1:], len(group)]
        items = values.tolist()
        out[group[starts]] = [";".join(items[a:b]) for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return out


def _names(members: pd.DataFrame, enterprises: pd.DataFrame | None) -> pd.Series:
    """USCC → enterprise name, from ``enterprises`` or else from the parcels' main users."""
    if enterprises is not None:
        return enterprises["name"].loc[~enterprises.index.duplicated()]
    if "main_user_name" in members.columns:
        pairs = members[["main_user", "main_user_name"]].dropna().drop_duplicates("main_user")
        return pairs.set_index("main_user")["main_user_name"]
    return pd.Series(dtype=object)


def _grade_counts(grade: pd.Series, block: np.ndarray, n_blocks: int) -> np.ndarray:
    """``"A:0;B:1;C:2;D:3;T:0;无:1"`` per block: member parcels by the grade of their main user."""
    g = grade.to_numpy(dtype=object)
    g = np.where(pd.isna(g) | (g == ""), NO_GRADE, g)
    code, uniques = pd.factorize(g)
    seen = [str(v) for v in uniques]
    others = sorted(set(seen) - {*GRADE_KEYS, NO_GRADE})
    keys = [*GRADE_KEYS, *others, NO_GRADE]
    column = np.array([keys.index(v) for v in seen], dtype=np.int64)[code] if len(code) else code
    counts = np.bincount(block * len(keys) + column, minlength=n_blocks * len(keys)).reshape(n_blocks, len(keys))
    out = np.full(n_blocks, "", dtype=object)
    for j, key in enumerate(keys):
        part = np.char.add(f"{key}:", counts[:, j].astype(str)).astype(object)
        out = part if j == 0 else out + ";" + part
    return out

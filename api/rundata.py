"""A registered run's output files, read once and kept in memory per run id (the edge of the service).

:class:`RunCache` loads ``enterprises.csv``, ``parcels.gpkg`` (layers ``parcels`` and ``flags``) and
``renewal_blocks.gpkg`` of a run with pandas and pyogrio, reprojects the geometries to EPSG:4326 and
keeps the latest few runs. A run directory rewritten in place (``evaluate --overwrite``) is read again,
because entries are keyed by the manifest's modification time as well, and refused until registered
again (its ``manifest.json`` is no longer the one registered: :func:`geo_eval.storage.read_manifest`). With a PostGIS store, a run
stored in the database (``evaluate --db``) is read from its result tables instead
(:func:`load_stored_run_data`, keyed by when it was stored), so its OUT_DIR need not be on this server.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import mmap
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyogrio
import shapely

from api.geojson import properties_text
from api.parcelgeoms import ParcelGeometries
from api.runcopy import Columns, GeoJSONTexts, building, copy_dir, discard, read_copy, write_copy
from geo_eval import maps
from geo_eval.io import csvout
from geo_eval.landuse.flags import FLAG_COLUMNS
from geo_eval.maps import outlines
from geo_eval.storage import RunFilesError, RunRecord, read_manifest

log = logging.getLogger(__name__)

WGS84 = "EPSG:4326"
COORD_DECIMALS = 7  # about 1 cm

ENTERPRISE_TEXT_COLUMNS = frozenset(
    {
        "uscc",
        "name",
        "county",
        "park",
        "group",
        "group_label",
        "industry_code",
        "above_scale",
        "production_start",
        "grade",
        "grade_label",
        "veto",
        "exempt_reason",
        "prev_grade",
        "grade_change",
        "corrected_fields",
    }
)
ENTERPRISE_INT_COLUMNS = frozenset({"rank", "rank_of", "parcel_count", "lease_count"})


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts of plain Python values; missing and infinite values as None (valid JSON).

    >>> records(pd.DataFrame({"a": [1.5, float("nan"), float("inf")], "b": ["x", None, "z"]}))
    [{'a': 1.5, 'b': 'x'}, {'a': None, 'b': None}, {'a': None, 'b': 'z'}]
    >>> o = pd.Series([np.int64(2), None], dtype=object)
    >>> rows = records(pd.DataFrame({"n": pd.array([1, None], "Int64"), "o": o, "t": [True, False]}))
    >>> rows, [type(v).__name__ for v in rows[0].values()]
    ([{'n': 1, 'o': 2, 't': True}, {'n': None, 'o': None, 't': False}], ['int', 'int', 'bool'])
    """
    if df.empty:
        return []
    names = [str(c) for c in df.columns]
    columns = [_plain_values(df.iloc[:, j]) for j in range(df.shape[1])]
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


def _plain_values(s: pd.Series) -> list[Any]:
    """A column as plain Python values (numpy scalars unboxed), None where missing or, for floats, infinite."""
    if s.dtype.kind == "f":
        arr = s.to_numpy(dtype=np.float64, na_value=np.nan)
        values, missing = arr.tolist(), ~np.isfinite(arr)
    else:
        values, missing = s.astype(object).tolist(), s.isna().to_numpy(dtype=bool)
        if s.dtype == object:
            values = [v.item() if isinstance(v, np.generic) else v for v in values]
    for i in np.flatnonzero(missing).tolist():
        values[i] = None
    return values


def _typed_enterprises(text: pd.DataFrame) -> pd.DataFrame:
    """``enterprises.csv`` read as text → numbers where the column holds numbers, text elsewhere."""
    out: dict[str, pd.Series] = {}
    for c in text.columns:
        s = text[c]
        if c in ENTERPRISE_TEXT_COLUMNS:
            out[c] = _texts(s)
            continue
        try:
            num = pd.to_numeric(s.where(s != "", None))
        except (ValueError, TypeError):
            out[c] = _texts(s)
            continue
        out[c] = num.astype("Int64") if c in ENTERPRISE_INT_COLUMNS and num.dropna().mod(1).eq(0).all() else num
    return pd.DataFrame(out, index=text.index)


def _texts(s: pd.Series) -> pd.Series:
    """A column of texts as pandas' Arrow-backed strings, an empty text missing: kept in the run's columnar
    copy as Arrow data that every worker maps, not as a Python object per row (600k names and codes of a
    province's enterprises were 450 MB in each worker)."""
    return s.where(s != "", None).astype("str")


def _id_index(parcels: pd.DataFrame) -> pd.Index:
    return pd.Index(parcels["parcel_id"].astype(str).to_numpy(dtype=object))


def _keys(s: pd.Series) -> pd.Series:
    """A column of codes and names (parcel ids, parks, counties) as pandas' Arrow-backed strings, missing as
    missing: mapped from the run's columnar copy instead of one Python object per row in each worker."""
    return s.astype("str")


def policy_frame(content: bytes | mmap.mmap) -> pd.DataFrame:
    """``policies.csv`` as written (formula guard off): texts as texts (an empty field as None) and the
    ``value`` of a measure as its number, or its text (a scheme never gives a number as text).

    >>> policy_frame("\\ufeffuscc,park,value\\n1,,0.05\\n2,园,'=x\\n3,园,50\\n".encode()).to_dict("records")[1:]
    [{'uscc': '2', 'park': '园', 'value': '=x'}, {'uscc': '3', 'park': '园', 'value': 50}]
    """
    text = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, encoding="utf-8-sig").astype(object)
    text = text.apply(csvout.unguard).astype(object)
    out = text.where(text != "", None)
    if "value" in out.columns:  # a measure's few values, each read once
        out["value"] = out["value"].map({t: _number_or_text(t) for t in pd.unique(out["value"])})
    return out


def _number_or_text(text: object) -> object:
    """``"50"`` → 50, ``"0.05"`` → 0.05, another text as it is."""
    if not isinstance(text, str):
        return text
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def attributes(frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """A frame's columns other than its geometry, the columns themselves (``drop`` would join them into new
    blocks: 300 MB at 1M parcels)."""
    geometry = frame.geometry.name
    columns = {c: frame[c] for c in frame.columns if c != geometry}
    return pd.DataFrame(columns, index=frame.index, copy=False)


def _geometry_json(geoms: gpd.GeoSeries) -> GeoJSONTexts:
    """GeoJSON text of each geometry (coordinates rounded), None for a missing one; made a slice of rows
    at a time into one Arrow array (:func:`arrow_texts`)."""
    arr = np.asarray(geoms.array, dtype=object)

    def texts(start: int, stop: int) -> np.ndarray:
        rounded = shapely.transform(arr[start:stop], lambda c: np.round(c, COORD_DECIMALS))
        return np.asarray(shapely.to_geojson(rounded), dtype=object)

    return GeoJSONTexts(arrow_texts(len(arr), texts))


TEXT_CHUNK = 50_000
"""Rows turned into Python texts at a time before they become Arrow data (:func:`arrow_texts`)."""


def arrow_texts(
    n: int, make: Callable[[int, int], Sequence[Any] | np.ndarray], kind: pa.DataType | None = None
) -> pa.Array:
    """One Arrow array (large strings, or ``kind``) of ``n`` texts made by ``make(start, stop)`` for rows
    ``start``–``stop``, :data:`TEXT_CHUNK` rows at a time: never a Python object for every row of a run at
    once (1M parcels' texts were 1–3 GB as Python strings while the copy was made)."""
    kind = pa.large_string() if kind is None else kind
    parts = [pa.array(make(i, min(i + TEXT_CHUNK, n)), kind) for i in range(0, n, TEXT_CHUNK)]
    return pa.concat_arrays(parts) if parts else pa.array([], kind)


@dataclass
class RunData:
    """The outputs of one run, in memory; geometries in EPSG:4326. Frames keep the files' row order."""

    record: RunRecord
    manifest: dict[str, Any]
    enterprises: pd.DataFrame
    """``enterprises.csv`` with numbers as numbers."""
    parcel_table: pd.DataFrame
    """The attributes of layer ``parcels`` of ``parcels.gpkg`` (without the geometry: rows of it are read
    per request; :attr:`parcels` joins the geometries, :meth:`parcel_frame` those of some rows)."""
    parcel_geometries: ParcelGeometries
    """Each parcel row's geometry, made when asked for when the run was read from its columnar copy."""
    parcel_geojson: np.ndarray | GeoJSONTexts
    """GeoJSON geometry text per parcel row (``parcel_geojson[pos]``: a str, or None)."""
    flags: pd.DataFrame
    """Layer ``flags`` (one row per parcel and rule) with ``parcel_pos``, the parcel's row; indexed by flag id."""
    blocks: gpd.GeoDataFrame | None
    """``renewal_blocks.gpkg`` when the run made flags."""
    source: str = "files"
    """Where the data came from: ``files`` (the run's OUT_DIR) or ``postgis`` (the result tables)."""
    stamp: str = ""
    """What this copy was read from (OUT_DIR and its manifest's modification time, or when the run was
    stored in the database): the same in every worker that read the same outputs, so ETags agree."""
    policies_csv: bytes | mmap.mmap | None = None
    """The bytes of ``policies.csv`` (parsed on first use: :attr:`policies`); None when the run wrote none."""
    parcel_properties: pa.Array | None = None
    """Per parcel row, its GeoJSON properties (:func:`records` of :attr:`parcel_table`) as JSON text without
    the closing brace, when read from the run's columnar copy (:func:`property_texts`)."""
    stored_block_parks: pa.Array | None = None
    """:attr:`block_parks` as the run's columnar copy keeps it (made when the copy was written)."""
    stored_park_outlines: gpd.GeoDataFrame | None = None
    """Each park's outline made from its parcels (:func:`geo_eval.maps.outlines.park_outlines`, EPSG:4326)
    when the run's columnar copy was written: a province's overview draws 225 parks' outlines at once
    instead of uniting a million parcels (11 s) in each worker after each start."""
    search_rows: dict[str, pa.Array] = field(default_factory=dict)
    """The run's map search index per basemap kind, one JSON text per parcel row (:func:`search_rows`), when
    read from its columnar copy; a scope's index is then cut from it (:meth:`search_index`)."""

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @functools.cached_property
    def policies(self) -> pd.DataFrame | None:
        """``policies.csv`` (:func:`policy_frame`: numbers as numbers, missing as None); None when the run
        wrote none (its scheme has no ``[[policies]]``)."""
        return None if self.policies_csv is None else policy_frame(self.policies_csv)

    @functools.cached_property
    def parks(self) -> list[str]:
        """Every park named by an enterprise or a parcel, sorted."""
        parcel_parks = pd.unique(self.parcel_table["park"].dropna())
        names = set(pd.unique(self.enterprises["park"].dropna())) | set(parcel_parks)
        return sorted(str(n) for n in names)

    @functools.cached_property
    def parcels(self) -> gpd.GeoDataFrame:
        """Layer ``parcels`` with every geometry (made once, when first asked for: 1 s and 420 MB at 1M parcels
        read from the copy; the service's routes take :meth:`parcel_frame` of the rows they show)."""
        return gpd.GeoDataFrame(self.parcel_table, geometry=self.parcel_geometries.all(), crs=WGS84, copy=False)

    def parcel_frame(self, positions: np.ndarray) -> gpd.GeoDataFrame:
        """Some parcel rows with their geometries, in the order given (``parcels.iloc[positions]``)."""
        rows = np.asarray(positions, dtype=np.int64)
        geoms = self.parcel_geometries.take(rows)
        return gpd.GeoDataFrame(self.parcel_table.iloc[rows], geometry=geoms, crs=WGS84)

    def parcel_position(self, parcel_id: str) -> int:
        """The row of the parcel ``parcel_id`` (its first if repeated), -1 when the run has none: a scan of the
        ids (5 ms at 1M parcels) instead of a hash table of them in each worker (120 MB)."""
        ids = pa.array(self.parcel_table["parcel_id"].astype(str))
        return int(pc.index(ids, pa.scalar(parcel_id, ids.type)).as_py())

    def parcel_positions(self, parcel_ids: list[str]) -> np.ndarray:
        """The rows of many parcels at once (:meth:`parcel_position` of each, through a hash table made for
        this call)."""
        return np.asarray(_id_index(self.parcel_table).get_indexer(pd.Index(parcel_ids, dtype=object)))

    @functools.cached_property
    def _park_rows(self) -> dict[str, np.ndarray]:
        codes, parks = pd.factorize(self.parcel_table["park"])
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(parks) + 1))
        return {str(p): order[bounds[i] : bounds[i + 1]] for i, p in enumerate(parks)}

    def parcel_rows(self, parks: frozenset[str] | None) -> np.ndarray:
        """Row positions of the parcels of some parks (every parcel for None), ascending."""
        if parks is None:
            return np.arange(len(self.parcel_table))
        rows = [self._park_rows[p] for p in parks if p in self._park_rows]
        return np.sort(np.concatenate(rows)) if rows else np.zeros(0, dtype=np.int64)

    @functools.cached_property
    def _flags_by_parcel(self) -> tuple[np.ndarray, np.ndarray]:
        pos = self.flags["parcel_pos"].to_numpy(dtype=np.int64)
        order = np.argsort(pos, kind="stable")
        return pos[order], order

    def flag_rows(self, positions: np.ndarray) -> np.ndarray:
        """Row positions in :attr:`flags` of the flags of some parcel rows, in the flags' order."""
        sorted_pos, order = self._flags_by_parcel
        wanted = np.unique(np.asarray(positions, dtype=np.int64))
        lo = np.searchsorted(sorted_pos, wanted, side="left")
        hi = np.searchsorted(sorted_pos, wanted, side="right")
        picked = [order[a:b] for a, b in zip(lo, hi, strict=True) if b > a]
        return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)

    def geometry_texts(self, positions: np.ndarray) -> list[str | None]:
        """The GeoJSON geometry texts of some parcel rows."""
        texts = self.parcel_geojson
        return (texts if isinstance(texts, GeoJSONTexts) else GeoJSONTexts(texts)).take(positions)

    @functools.cached_property
    def block_parks(self) -> list[frozenset[str | None]] | None:
        """The parks of each renewal block's parcels (None for a parcel not in the run, or a block naming
        none); None when the run has no blocks with ``parcel_ids``. Made once: a park's map then finds its
        blocks without reading the province's."""
        if self.blocks is None or "parcel_ids" not in self.blocks.columns:
            return None
        if self.stored_block_parks is not None and len(self.stored_block_parks) == len(self.blocks):
            return [frozenset(parks) for parks in self.stored_block_parks.to_pylist()]
        members = [[p.strip() for p in str(v).split(";") if p.strip()] for v in self.blocks["parcel_ids"].fillna("")]
        pos = self.parcel_positions([p for parts in members for p in parts])
        parks = self.parcel_table["park"].to_numpy(dtype=object)
        named = [None if i < 0 else parks[i] for i in pos.tolist()]
        out, start = [], 0
        for parts in members:
            out.append(frozenset(named[start : start + len(parts)]) if parts else frozenset([None]))
            start += len(parts)
        return out

    def blocks_within(self, parks: frozenset[str]) -> np.ndarray:
        """Which renewal blocks have every parcel in one of ``parks`` (see :attr:`block_parks`)."""
        return np.fromiter((b <= parks for b in self.block_parks or []), dtype=bool)

    def search_index(self, positions: np.ndarray, kind: str) -> bytes | None:
        """The map search index (JSON) of some parcel rows, ascending, cut from :attr:`search_rows`; None when
        the run has none for ``kind``: the caller makes it (:func:`geo_eval.maps.search_index`)."""
        rows = self.search_rows.get(kind)
        if rows is None:
            return None
        picked = rows.take(pa.array(positions, pa.int64())) if len(positions) < len(rows) else rows
        return b"[" + b",".join(r for r in picked.to_pylist() if r) + b"]"

    def parcels_in_bbox(self, bbox: tuple[float, float, float, float], within: np.ndarray | None = None) -> np.ndarray:
        """Row positions of the parcels intersecting a lon/lat box, ascending; only among the rows ``within``
        (ascending, e.g. :meth:`parcel_rows` of a park) when given."""
        return self.parcel_geometries.in_box(bbox, within)


def load_run_data(record: RunRecord) -> RunData:
    """Read a run's outputs (raises :class:`~geo_eval.storage.RunFilesError` when they are missing)."""
    out = Path(record.out_dir)
    manifest = read_manifest(out, record=record)  # the OUT_DIR must still hold this run
    try:
        # through Arrow: a 1M run's enterprises, parcels and flags in 4 s instead of 20 s
        text = pd.read_csv(
            out / "enterprises.csv", dtype=str, keep_default_na=False, encoding="utf-8-sig", engine="pyarrow"
        )
        parcels = pyogrio.read_dataframe(out / "parcels.gpkg", layer="parcels", use_arrow=True)
        layers = {str(name) for name, _ in pyogrio.list_layers(out / "parcels.gpkg")}
        flags = (
            pd.DataFrame(
                pyogrio.read_dataframe(out / "parcels.gpkg", layer="flags", read_geometry=False, use_arrow=True)
            )
            if "flags" in layers
            else pd.DataFrame({c: pd.Series(dtype=object) for c in FLAG_COLUMNS})
        )
        blocks_path = out / "renewal_blocks.gpkg"
        blocks = pyogrio.read_dataframe(blocks_path) if blocks_path.is_file() else None
        policies_path = out / "policies.csv"
        policies = policies_path.read_bytes() if policies_path.is_file() else None
    except (OSError, ValueError, pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise RunFilesError(f"评价批次 {record.run_id} 的输出文件无法读取：{exc}") from exc
    if parcels.crs is not None and not parcels.empty:
        parcels = parcels.to_crs(WGS84)
    else:
        parcels = parcels.set_crs(WGS84, allow_override=True)
    if blocks is not None and blocks.crs is not None and not blocks.empty:
        blocks = blocks.to_crs(WGS84)
    return _run_data(record, manifest, text, parcels, flags, blocks, source="files", policies=policies)


def load_stored_run_data(store: Any, record: RunRecord) -> RunData:
    """Read a run stored in PostGIS (``evaluate --db``) from its result tables: the same :class:`RunData`
    as :func:`load_run_data` makes from the files, without needing the run's OUT_DIR."""
    from geo_eval.db.results import read_stored_run

    with store.connection() as conn:
        stored = read_stored_run(conn, record.run_id)
    text = pd.read_csv(io.BytesIO(stored.enterprises_csv), dtype=str, keep_default_na=False, encoding="utf-8-sig")
    flags = (
        stored.flags if len(stored.flags.columns) else pd.DataFrame({c: pd.Series(dtype=object) for c in FLAG_COLUMNS})
    )
    return _run_data(
        record,
        stored.manifest,
        text,
        stored.parcels,
        flags,
        stored.blocks,
        source="postgis",
        policies=stored.policies_csv,
    )


def _run_data(
    record: RunRecord,
    manifest: dict[str, Any],
    text: pd.DataFrame,
    parcels: gpd.GeoDataFrame,
    flags: pd.DataFrame,
    blocks: gpd.GeoDataFrame | None,
    *,
    source: str,
    policies: bytes | None = None,
) -> RunData:
    for c in ("parcel_id", "park", "county"):
        parcels[c] = _keys(parcels[c])
    text = text.apply(csvout.unguard)  # the csv's formula guard (a ' before =+-@) off: the values themselves
    data = RunData(
        record=record,
        manifest=manifest,
        enterprises=_typed_enterprises(text),
        parcel_table=attributes(parcels),
        parcel_geometries=ParcelGeometries.of(np.asarray(parcels.geometry.array, dtype=object)),
        parcel_geojson=_geometry_json(parcels.geometry),
        flags=flags,
        blocks=blocks,
        source=source,
        policies_csv=policies,
    )
    fl = data.flags
    for c in ("flag_id", "parcel_id", "park", "county", "flag"):
        fl[c] = _keys(fl[c])
    fl["parcel_pos"] = data.parcel_positions(fl["parcel_id"].astype(str).tolist())
    data.flags = fl.set_index("flag_id", drop=False)
    log.info(
        "run %s loaded from %s: %d enterprises, %d parcels, %d flags",
        record.run_id,
        source,
        len(text),
        len(parcels),
        len(fl),
    )
    return data


MAP_ENTERPRISE_COLUMNS = ("uscc", "name", "grade", "prev_grade", "grade_change")
"""What the maps take of the enterprises: names, and classes with last year's for the 分类变化 colouring."""
SEARCH_KINDS = ("none", "gaode")
"""The basemap kinds a map's coordinates come in (天地图 draws unshifted, like no basemap; 高德 in GCJ-02)."""


def map_enterprises(enterprises: pd.DataFrame) -> pd.DataFrame:
    """The columns of :data:`MAP_ENTERPRISE_COLUMNS` the enterprises have."""
    return pd.DataFrame(enterprises[[c for c in MAP_ENTERPRISE_COLUMNS if c in enterprises.columns]])


SEARCH_SOURCE_COLUMNS = ("parcel_id", "main_user", "users", "main_user_name", "holder_uscc", "holder_name")
"""The parcels' columns a row of the map search index is made from (:func:`geo_eval.maps.search_columns`)."""


def search_rows(parcels: gpd.GeoDataFrame, enterprises: pd.DataFrame, kinds: tuple[str, ...]) -> dict[str, pa.Array]:
    """Per basemap kind, the JSON text of each parcel row's row of the map search index (the rows of
    :func:`geo_eval.maps.search_table`; empty for a parcel without a geometry): a scope's index is ``[`` the
    rows of its parcels joined by ``,`` ``]``, the same bytes as the index made of the scope's parcels.
    The names are looked up once for the whole run; the rows are made :data:`TEXT_CHUNK` at a time."""
    columns = [c for c in SEARCH_SOURCE_COLUMNS if c in parcels.columns]
    names = maps.search_columns(pd.DataFrame({c: parcels[c] for c in columns}), None, map_enterprises(enterprises))
    geoms = np.asarray(parcels.geometry.array, dtype=object)
    ids = parcels["parcel_id"] if "parcel_id" in parcels.columns else None
    parts: dict[str, list[pa.Array]] = {kind: [] for kind in kinds}
    for start in range(0, len(parcels), TEXT_CHUNK):
        rows = pd.RangeIndex(start, min(start + TEXT_CHUNK, len(parcels)))
        source = {} if ids is None else {"parcel_id": ids.iloc[rows].astype(object).to_numpy()}
        plain = gpd.GeoDataFrame(source, geometry=geoms[rows], crs=parcels.crs, index=rows)
        heads: list[str] = []
        for kind in kinds:
            table = maps.search_table(plain, basemap=kind, attributes=names)  # type: ignore[arg-type]
            heads = heads or _json_heads(table)  # the texts are the same in every kind, only the boxes differ
            texts = np.full(len(rows), b"", dtype=object)
            texts[table.index.to_numpy() - start] = _json_rows(heads, table)
            parts[kind].append(pa.array(texts, pa.large_binary()))
    return {kind: pa.concat_arrays(p) if p else pa.array([], pa.large_binary()) for kind, p in parts.items()}


def _json_heads(table: pd.DataFrame) -> list[str]:
    """The start of each row of a search table as ``json.dumps`` writes it (``ensure_ascii=False``, no spaces):
    ``[`` and its three texts."""
    quote = json.encoder.encode_basestring  # the encoder json.dumps uses with ensure_ascii=False
    ids, names, codes = ([quote(v) for v in table[c].tolist()] for c in table.columns[:3])
    return [f"[{a},{b},{c}," for a, b, c in zip(ids, names, codes, strict=True)]


def _json_rows(heads: list[str], table: pd.DataFrame) -> list[bytes]:
    """The rows of a search table as ``json.dumps`` writes them: ``heads`` (:func:`_json_heads`) and the four
    numbers of the box (``float.__repr__``, as json's).

    >>> t = pd.DataFrame({"id": ['a"1'], "names": ["甲"], "usccs": [""], "w": [119.123456], "s": [-0.0], "e": [1e-7],
    ...                   "n": [34.0]})
    >>> print(_json_rows(_json_heads(t), t)[0].decode())
    ["a\\"1","甲","",119.123456,-0.0,1e-07,34.0]
    >>> _json_rows(_json_heads(t), t)[0].decode() == json.dumps(t.iloc[0].tolist(), ensure_ascii=False, separators=(",", ":"))
    True
    """
    boxes = (table[c].tolist() for c in table.columns[3:])
    return [f"{h}{w!r},{s!r},{e!r},{n!r}]".encode() for h, w, s, e, n in zip(heads, *boxes, strict=True)]


def property_texts(table: pd.DataFrame) -> pa.Array:
    """Each row of :attr:`RunData.parcel_table` as the ``properties`` of its GeoJSON feature would start:
    the JSON object of :func:`records` (as :func:`api.geojson.properties_text` writes it) without its closing
    brace, so that a page appends the parcel's flags (``,"flags":[…]}``)."""
    return arrow_texts(
        len(table), lambda start, stop: [properties_text(row)[:-1] for row in records(table.iloc[start:stop])]
    )


def _block_parks_array(parks: list[frozenset[str | None]] | None) -> pa.Array | None:
    """:attr:`RunData.block_parks` as an Arrow list array (each block's parks sorted, a missing park null)."""
    if parks is None:
        return None
    rows = [sorted(p, key=lambda v: (v is None, v or "")) for p in parks]
    return pa.array(rows, pa.large_list(pa.large_string()))


def _park_outlines(data: RunData) -> gpd.GeoDataFrame | None:
    """The parks' outlines from their parcels, or None (no park column; a geometry GEOS cannot unite)."""
    if "park" not in data.parcel_table.columns:
        return None
    try:
        return outlines.park_outlines(data.parcels, data.manifest.get("area_crs") or None)
    except (ValueError, shapely.errors.ShapelyError) as exc:
        log.warning("park outlines of run %s not made: %s", data.run_id, exc)
        return None


def columns_of(data: RunData) -> Columns:
    """The frames of ``data`` as its columnar copy keeps them, with the map search index of the whole run."""
    geojson = data.parcel_geojson
    return Columns(
        manifest=data.manifest,
        enterprises=data.enterprises,
        parcels=data.parcel_table,
        geometries=data.parcel_geometries,
        parcel_geojson=geojson if isinstance(geojson, GeoJSONTexts) else GeoJSONTexts(geojson),
        flags=data.flags,
        blocks=data.blocks,
        policies_csv=data.policies_csv,
        properties=property_texts(data.parcel_table) if len(data.parcel_table.columns) else None,
        block_parks=_block_parks_array(data.block_parks),
        search=search_rows(data.parcels, data.enterprises, SEARCH_KINDS),
        park_outlines=_park_outlines(data),
    )


def from_columns(record: RunRecord, c: Columns, *, source: str) -> RunData:
    """The :class:`RunData` of a run read from its columnar copy."""
    return RunData(
        record=record,
        manifest=c.manifest,
        enterprises=c.enterprises,
        parcel_table=c.parcels,
        parcel_geometries=c.geometries,
        parcel_geojson=c.parcel_geojson,
        flags=c.flags,
        blocks=c.blocks,
        source=source,
        policies_csv=c.policies_csv,
        parcel_properties=c.properties,
        stored_block_parks=c.block_parks,
        stored_park_outlines=c.park_outlines,
        search_rows=c.search,
    )


class RunCache:
    """The latest ``size`` runs in memory, loaded at most once each even under concurrent requests."""

    def __init__(self, size: int = 4, *, store: Any = None, copies: Path | None = None) -> None:
        """``store``: a PostGIS store; runs stored in it (``evaluate --db``) are read from its tables.
        ``copies``: where the columnar copies of the runs live (:mod:`api.runcopy`); without it every
        worker reads each run from its outputs into memory."""
        self.size = size
        self.store = store if hasattr(store, "connection") else None
        self.copies = copies
        self._items: OrderedDict[str, tuple[tuple[str, int], RunData]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def from_database(self, record: RunRecord) -> bool:
        """Whether the run is read from the database's result tables (else from its OUT_DIR)."""
        return self.store is not None and record.stored

    def stamp(self, record: RunRecord) -> str:
        """What the run's outputs are read from, as :attr:`RunData.stamp` says it (without reading them)."""
        stamp = self._stamp(record)
        return f"{stamp[0]}@{stamp[1]}"

    def _stamp(self, record: RunRecord) -> tuple[str, int]:
        if self.from_database(record):
            return "postgis:" + record.stored_at, 0
        try:
            st = (Path(record.out_dir) / "manifest.json").stat()
        except OSError as exc:
            raise RunFilesError(f"评价批次 {record.run_id} 的输出目录不存在或不完整，请重新评价或重新登记") from exc
        return record.out_dir, st.st_mtime_ns

    def _hit(self, run_id: str, stamp: tuple[str, int]) -> RunData | None:
        with self._lock:
            item = self._items.get(run_id)
            if item is not None and item[0] == stamp:
                self._items.move_to_end(run_id)
                return item[1]
            return None

    def get(self, record: RunRecord) -> RunData:
        """The data of a run, from memory or freshly read."""
        stamp = self._stamp(record)
        hit = self._hit(record.run_id, stamp)
        if hit is not None:
            return hit
        with self._lock:
            loading = self._loading.setdefault(record.run_id, threading.Lock())
        with loading:
            hit = self._hit(record.run_id, stamp)
            if hit is not None:
                return hit
            data = self._load(record, f"{stamp[0]}@{stamp[1]}")
            with self._lock:
                self._items[record.run_id] = (stamp, data)
                self._items.move_to_end(record.run_id)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return data

    def _load(self, record: RunRecord, stamp: str) -> RunData:
        """The run from its columnar copy, made first from its outputs when there is none yet."""
        source = "postgis" if self.from_database(record) else "files"
        target = None if self.copies is None else copy_dir(self.copies, record.run_id, stamp)
        if target is None:
            return self._read_outputs(record, stamp, source)
        columns = read_copy(target)
        if columns is None:
            with building(target):
                columns = read_copy(target)  # another worker may have written it meanwhile
                if columns is None:
                    discard(target)
                    data = self._read_outputs(record, stamp, source)
                    if not write_copy(target, columns_of(data)):
                        return data
                    del data  # read back below: every worker holds the same frames, mapped from the copy
                    columns = read_copy(target)
        if columns is None:
            return self._read_outputs(record, stamp, source)
        data = from_columns(record, columns, source=source)
        data.stamp = stamp
        log.info("run %s read from its columnar copy %s", record.run_id, target)
        return data

    def _read_outputs(self, record: RunRecord, stamp: str, source: str) -> RunData:
        data = load_stored_run_data(self.store, record) if source == "postgis" else load_run_data(record)
        data.stamp = stamp
        return data

    def clear(self) -> None:
        """Forget every loaded run."""
        with self._lock:
            self._items.clear()


def prepare_copy(data_dir: Path, record: RunRecord) -> tuple[bool, str]:
    """Write the columnar copy of a registered run under ``data_dir`` now, as the service would on its
    first read (``geo-eval runs add`` does, so that a service started afterwards answers in seconds);
    whether it is there, and a message for the user (a failure does not undo the registration)."""
    from api.app import RUN_COPIES

    root = data_dir / RUN_COPIES
    started = time.perf_counter()
    try:
        data = RunCache(1, copies=root).get(record)
    except RunFilesError as exc:
        return False, f"服务用的列式副本未能生成（服务首次读取该批次时再生成）：{exc}"
    target = copy_dir(root, record.run_id, data.stamp)
    if not target.is_dir():
        return False, f"服务用的列式副本未能写入 {root}（服务首次读取该批次时再生成）"
    return True, f"已生成服务用的列式副本：{target}（{time.perf_counter() - started:.1f} 秒）"

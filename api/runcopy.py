"""A columnar copy of a run as the service holds it: Arrow IPC files read through a memory map.

Reading a run from its outputs (``enterprises.csv``, ``parcels.gpkg``, or the PostGIS result tables) takes
about a minute at 1M parcels and leaves every text as a Python object (about 5 GB in each worker). The first
worker to read a run therefore writes what it made (:class:`~api.rundata.RunData`'s frames: the parcels with
their geometry in EPSG:4326 as WKB, their GeoJSON text, the flags, the enterprises)
as uncompressed Arrow IPC files, once per run and stamp, under ``<data_dir>/runcopies/``. Every later read,
in any worker or after a restart, maps those files: the texts stay in the file's pages (shared by every
worker through the page cache); only the geometries are built in memory, and ``policies.csv`` is parsed
when first asked for.

The copy is a cache: it is written to a temporary directory and renamed into place (two workers writing at
once both succeed, one copy stays), read only when its stamp matches the run's outputs, and a copy that
cannot be written or read is reported and skipped (the run is then read from its outputs as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as feather
import shapely

from api.parcelgeoms import ParcelGeometries

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: the workers may then each write the copy once
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

FORMAT = 12
"""Bumped when the files of a copy change; older copies are then ignored."""
GEOMETRY = "geometry"
"""Column of the parcels' file holding each geometry as WKB."""
FRAMES = ("parcels", "flags", "enterprises", "blocks")
"""The frames kept as Arrow files (``<name>.text.arrow`` and ``<name>.values.arrow``, the order of the columns
in ``<name>.arrow``); the parcels' geometries as WKB with their bounds (:func:`_write_parcel_geometries`), the
blocks' as :func:`_write_geometry` writes them; the GeoJSON texts in ``geojson.arrow``; ``policies.csv`` as written; the manifest and
the coordinate systems in ``frames.json`` (written last: a copy without it is not read); each parcel's GeoJSON
properties in ``properties.arrow`` (:attr:`Columns.properties`), each renewal block's parks in
``block_parks.arrow`` and each parcel's rows of the map's search index per
basemap kind in ``search.<kind>.arrow`` (:attr:`Columns.search`)."""


@dataclass(frozen=True)
class Columns:
    """The frames of a run as read from its copy (see :func:`read_copy`)."""

    manifest: dict[str, Any]
    enterprises: pd.DataFrame
    parcels: pd.DataFrame
    """The parcels' attributes (their geometries apart: :attr:`geometries`)."""
    geometries: ParcelGeometries
    parcel_geojson: GeoJSONTexts
    flags: pd.DataFrame
    blocks: gpd.GeoDataFrame | None
    policies_csv: bytes | mmap.mmap | None
    properties: pa.Array | None = None
    """The GeoJSON properties of each parcel row as JSON text without its closing brace (the rows of
    :func:`api.rundata.records` of the parcels; a page of parcels appends each one's flags and closes it)."""
    block_parks: pa.Array | None = None
    """Per renewal block, the parks of its parcels (:attr:`api.rundata.RunData.block_parks`)."""
    park_outlines: gpd.GeoDataFrame | None = None
    """Each park's outline made from its parcels (EPSG:4326; :mod:`geo_eval.maps.outlines`)."""
    search: dict[str, pa.Array] = field(default_factory=dict)
    """Basemap kind → the JSON text of each parcel row's row of the map's search index (empty for a parcel
    without one), so that a park's index is cut from the run's instead of made on its first request."""


class GeoJSONTexts:
    """The GeoJSON text of each parcel row, kept in an Arrow array; ``texts[pos]`` is a str or None."""

    def __init__(self, texts: pa.Array | pa.ChunkedArray | np.ndarray) -> None:
        self._texts = texts

    def __len__(self) -> int:
        return len(self._texts)

    def __getitem__(self, pos: int) -> str | None:
        value = self._texts[int(pos)]
        if isinstance(value, pa.Scalar):
            return value.as_py()  # type: ignore[no-any-return]
        return None if value is None else str(value)

    def take(self, positions: np.ndarray) -> list[str | None]:
        """The texts of some parcel rows at once."""
        if isinstance(self._texts, np.ndarray):
            return list(self._texts[np.asarray(positions, dtype=np.int64)])
        return self._texts.take(pa.array(positions, pa.int64())).to_pylist()  # type: ignore[no-any-return]

    def to_arrow(self) -> pa.Array | pa.ChunkedArray:
        """The texts as an Arrow array (for writing the copy)."""
        if isinstance(self._texts, np.ndarray):
            return pa.array(self._texts, pa.large_string())
        return self._texts


def copy_dir(root: Path, run_id: str, stamp: str) -> Path:
    """Where the copy of a run read from ``stamp`` lives under ``root``."""
    key = hashlib.sha256(f"{FORMAT}\n{stamp}".encode()).hexdigest()[:20]
    return root / _safe(run_id) / key


def tiles_file(root: Path, run_id: str, key: str) -> Path:
    """Where a server keeps its own copy of the tile set ``key`` of a run stored in PostGIS, beside the run's
    columnar copies under ``root``."""
    digest = hashlib.sha256(f"{FORMAT}\n{key}".encode()).hexdigest()[:20]
    return root / _safe(run_id) / f"tiles-{digest}.mbtiles"


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "_"


@contextlib.contextmanager
def building(target: Path) -> Iterator[None]:
    """Held while one process reads a run's outputs to write its copy at ``target``: the other workers
    wait for the copy instead of each reading the outputs too (a lock file beside it; none without fcntl)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fh = (target.parent / f".{target.name}.lock").open("a+b")
    except OSError:
        yield
        return
    with fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def discard(target: Path) -> None:
    """Remove a copy that cannot be read (it is then written again)."""
    if target.exists():
        log.warning("removing the columnar copy %s, which cannot be read", target)
        shutil.rmtree(target, ignore_errors=True)


def write_copy(target: Path, columns: Columns) -> bool:
    """Write ``columns`` as the copy at ``target`` (atomically), removing the run's copies of other stamps;
    whether a copy is there afterwards."""
    if target.is_dir():
        return True
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
    except OSError as exc:
        log.warning("the columnar copy of %s cannot be written: %s", target, exc)
        return False
    try:
        _write_frames(tmp, columns)
        os.rename(tmp, target)
    except OSError:  # another worker renamed its copy first (or the disk is full): keep what is there
        shutil.rmtree(tmp, ignore_errors=True)
    except (pa.ArrowException, ValueError, TypeError) as exc:
        log.warning("the columnar copy of %s cannot be written: %s", target, exc)
        shutil.rmtree(tmp, ignore_errors=True)
    for old in target.parent.iterdir():  # copies of the run's earlier outputs (a worker mapping one keeps it)
        if old.is_dir() and old.name != target.name and not old.name.startswith(".tmp-"):
            shutil.rmtree(old, ignore_errors=True)
    return target.is_dir()


def _write_frames(tmp: Path, c: Columns) -> None:
    _write_arrow(tmp / "parcels.arrow", c.parcels)
    _write_parcel_geometries(tmp, c.geometries)
    _write_table(pa.table({"geojson": c.parcel_geojson.to_arrow()}), tmp / "geojson.arrow")
    _write_arrow(tmp / "flags.arrow", c.flags.reset_index(drop=True))
    _write_arrow(tmp / "enterprises.arrow", c.enterprises)
    if c.blocks is not None:
        _write_geo(tmp / "blocks.arrow", c.blocks)
    if c.policies_csv is not None:
        (tmp / "policies.csv").write_bytes(c.policies_csv)
    if c.properties is not None:
        _write_table(pa.table({"properties": c.properties}), tmp / "properties.arrow")
    if c.block_parks is not None:
        _write_table(pa.table({"parks": c.block_parks}), tmp / "block_parks.arrow")
    for kind, rows in c.search.items():
        _write_table(pa.table({"row": rows}), tmp / f"search.{kind}.arrow")
    if c.park_outlines is not None:
        _write_geo(tmp / "park_outlines.arrow", c.park_outlines)
    about = {"format": FORMAT, "rows": len(c.parcels), "manifest": c.manifest}
    about["search"] = sorted(c.search)
    if c.blocks is not None:
        about["blocks_crs"] = _crs(c.blocks)
    if c.park_outlines is not None:
        about["park_outlines_crs"] = _crs(c.park_outlines)
    (tmp / "frames.json").write_text(json.dumps(about, ensure_ascii=False), encoding="utf-8")


def _crs(df: gpd.GeoDataFrame) -> str | None:
    return None if df.crs is None else df.crs.to_wkt()


def _write_geo(path: Path, df: gpd.GeoDataFrame) -> None:
    """A GeoDataFrame as :func:`_write_arrow` writes its attributes, and its geometries apart."""
    _write_arrow(path, pd.DataFrame(df.drop(columns=df.geometry.name)))
    _write_geometry(path.with_name(f"{path.stem}.geometry"), np.asarray(df.geometry.array, dtype=object))


def _read_geo(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    plain = _read_arrow(path)
    geometry = _read_geometry(path.with_name(f"{path.stem}.geometry"))
    return gpd.GeoDataFrame(plain, geometry=geometry, crs=crs, copy=False)  # no copy joining the blocks: 1.4 s at 1M


PARCEL_WKB = "parcels.wkb.arrow"
PARCEL_BOUNDS = "parcels.bounds.npy"


def _write_parcel_geometries(tmp: Path, geometries: ParcelGeometries) -> None:
    """The parcels' geometries as WKB (``parcels.wkb.arrow``, mapped when read: a request makes the few it
    needs) and their bounds column by column (``parcels.bounds.npy``, shape ``(4, n)``: the parcels in a box are
    found without them)."""
    wkb = pa.array(shapely.to_wkb(geometries.all()), pa.binary())
    _write_table(pa.table({GEOMETRY: wkb}), tmp / PARCEL_WKB)
    np.save(tmp / PARCEL_BOUNDS, np.ascontiguousarray(geometries.columns, dtype=np.float64), allow_pickle=False)


def _read_parcel_geometries(source: Path) -> ParcelGeometries:
    wkb = _one_chunk(_mapped(source / PARCEL_WKB).column(GEOMETRY))
    columns = np.load(source / PARCEL_BOUNDS, mmap_mode="r", allow_pickle=False)
    if columns.shape != (4, len(wkb)):
        raise ValueError(f"{source}: {len(wkb)} geometries but bounds of shape {columns.shape}")
    return ParcelGeometries.mapped(wkb, columns)


RAGGED_TYPES = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


def _write_geometry(stem: Path, geoms: np.ndarray) -> None:
    """Geometries all polygons or all multipolygons as shapely's ragged arrays (coordinates and offsets,
    ``<stem>.coords.npy``, ``<stem>.offsets<i>.npy``: read back without parsing), others as WKB
    (``<stem>.wkb.arrow``); ``<stem>.json`` says which."""
    types = shapely.get_type_id(geoms)
    about: dict[str, Any] = {"encoding": "wkb"}
    if len(geoms) and bool((types == types[0]).all()) and int(types[0]) in RAGGED_TYPES:
        kind, coords, offsets = shapely.to_ragged_array(geoms)
        np.save(_array(stem, "coords"), coords, allow_pickle=False)
        for i, offset in enumerate(offsets):
            np.save(_array(stem, f"offsets{i}"), offset, allow_pickle=False)
        about = {"encoding": "ragged", "type": int(kind), "offsets": len(offsets)}
    else:
        _write_table(pa.table({GEOMETRY: pa.array(shapely.to_wkb(geoms), pa.binary())}), _named(stem, "wkb.arrow"))
    _named(stem, "json").write_text(json.dumps(about), encoding="utf-8")


def _read_geometry(stem: Path) -> np.ndarray:
    about = json.loads(_named(stem, "json").read_text(encoding="utf-8"))
    if about["encoding"] == "ragged":
        offsets = tuple(np.load(_array(stem, f"offsets{i}"), allow_pickle=False) for i in range(about["offsets"]))
        coords = np.load(_array(stem, "coords"), allow_pickle=False)
        return shapely.from_ragged_array(shapely.GeometryType(about["type"]), coords, offsets)  # type: ignore[no-any-return]
    wkb = feather.read_table(_named(stem, "wkb.arrow"), memory_map=False).column(GEOMETRY)
    return shapely.from_wkb(wkb.to_numpy(zero_copy_only=False))  # type: ignore[no-any-return]


def _array(stem: Path, name: str) -> Path:
    return _named(stem, f"{name}.npy")


def _named(stem: Path, tail: str) -> Path:
    return stem.with_name(f"{stem.name}.{tail}")


def _write_arrow(path: Path, df: pd.DataFrame) -> None:
    """``df`` as two Arrow files: its texts (``<name>.text.arrow``, as large strings, which pandas keeps
    without a copy) and its other columns (``<name>.values.arrow``); ``<name>.arrow`` lists the columns in
    order and those held as Python objects (read back as objects, so the frame reads as it was made)."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    texts = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    values = [c for c in table.column_names if c not in texts]
    text = pa.Table.from_pandas(df[texts], preserve_index=False)
    large = pa.schema([f.with_type(pa.large_string()) for f in text.schema], metadata=text.schema.metadata)
    text = text.cast(large)
    objects = [str(c) for c in texts if df[c].dtype == object]
    for c in objects:  # each distinct text once: read back as one str object each (see _read_arrow)
        text = text.set_column(text.schema.get_field_index(c), c, text.column(c).dictionary_encode())
    _write_table(text, _part(path, "text"))
    _write_table(_with_nan(pa.Table.from_pandas(df[values], preserve_index=False), df), _part(path, "values"))
    about = {"columns": list(map(str, table.column_names)), "objects": objects}
    path.write_text(json.dumps(about, ensure_ascii=False), encoding="utf-8")


def _with_nan(table: pa.Table, df: pd.DataFrame) -> pa.Table:
    """``table`` with its float columns holding NaN where ``df`` has NaN, not Arrow nulls: a float column
    without nulls is read back as a view of the mapped file, with nulls it is copied into memory.

    >>> df = pd.DataFrame({"x": [1.0, float("nan")]})
    >>> _with_nan(pa.Table.from_pandas(df, preserve_index=False), df).column("x").null_count
    0
    """
    for i, name in enumerate(table.column_names):
        if pa.types.is_floating(table.schema.field(i).type) and df[name].dtype.kind == "f":
            table = table.set_column(i, table.schema.field(i), pa.array(df[name].to_numpy(), from_pandas=False))
    return table


def _write_table(table: pa.Table, path: Path) -> None:
    """One uncompressed record batch: a column read back is one Arrow chunk, so that taking a few rows of it
    does not first join its chunks (pyarrow's ``take`` on a chunked array). The chunks of a table read through
    Arrow (pyogrio's batches) are joined first: ``chunksize`` alone still writes a batch per chunk."""
    feather.write_feather(table.combine_chunks(), path, compression="uncompressed", chunksize=max(1, table.num_rows))


def _part(path: Path, kind: str) -> Path:
    return path.with_name(f"{path.stem}.{kind}.arrow")


def read_copy(source: Path) -> Columns | None:
    """The frames of the copy at ``source``, or None when there is none (or it cannot be read)."""
    if not (source / "frames.json").is_file():
        return None
    try:
        about = json.loads((source / "frames.json").read_text(encoding="utf-8"))
        if about.get("format") != FORMAT:
            return None
        policies = source / "policies.csv"
        blocks = source / "blocks.arrow"
        outlines = source / "park_outlines.arrow"
        flags = _read_arrow(source / "flags.arrow")
        return Columns(
            manifest=about["manifest"],
            enterprises=_read_arrow(source / "enterprises.arrow"),
            parcels=_read_arrow(source / "parcels.arrow"),
            geometries=_read_parcel_geometries(source),
            parcel_geojson=GeoJSONTexts(_mapped(source / "geojson.arrow").column("geojson")),
            flags=flags.set_index("flag_id", drop=False),
            blocks=_read_geo(blocks, about.get("blocks_crs")) if blocks.is_file() else None,
            policies_csv=_mapped_bytes(policies) if policies.is_file() else None,
            properties=(
                _one_chunk(_mapped(source / "properties.arrow").column("properties"))
                if (source / "properties.arrow").is_file()
                else None
            ),
            block_parks=(
                _one_chunk(_mapped(source / "block_parks.arrow").column("parks"))
                if (source / "block_parks.arrow").is_file()
                else None
            ),
            park_outlines=_read_geo(outlines, about.get("park_outlines_crs")) if outlines.is_file() else None,
            search={
                kind: _one_chunk(_mapped(source / f"search.{kind}.arrow").column("row"))
                for kind in about.get("search", [])
            },
        )
    except (OSError, pa.ArrowException, KeyError, ValueError) as exc:
        log.warning("the columnar copy %s cannot be read (%s): reading the run's outputs instead", source, exc)
        return None


def _mapped_bytes(path: Path) -> bytes | mmap.mmap:
    """The bytes of a file as a read-only memory map (read when used, shared through the page cache: the
    ``policies.csv`` of a province's run is 140 MB and parsed only when a policy table is asked for)."""
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return b""
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The array of a column written as one record batch, still mapped (joining chunks would copy it)."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _mapped(path: Path) -> pa.Table:
    return feather.read_table(path, memory_map=True)


def _read_arrow(path: Path) -> pd.DataFrame:
    """A frame written by :func:`_write_arrow`: the texts mapped from the file (their pages are read when
    used and shared by every worker), the other columns read into memory (numbers, flags, geometries), the
    columns that were Python objects made objects again (one str object per distinct text)."""
    about = json.loads(path.read_text(encoding="utf-8"))
    mapped = _mapped(_part(path, "text"))
    text = mapped.drop_columns(about["objects"]).to_pandas(split_blocks=True)
    for c in about["objects"]:
        text[c] = pd.Series(_objects(mapped.column(c)), index=text.index, dtype=object)
    values = _mapped(_part(path, "values")).to_pandas(split_blocks=True)
    return pd.concat([text, values], axis=1)[about["columns"]]


def _objects(column: pa.ChunkedArray) -> np.ndarray:
    """A dictionary-encoded text column as an object array, None where missing; one str per distinct text.

    >>> _objects(pa.chunked_array([pa.array(["a", None, "a", "b"]).dictionary_encode()])).tolist()
    ['a', None, 'a', 'b']
    """
    out: list[np.ndarray] = []
    for chunk in column.chunks:
        texts = np.array([*chunk.dictionary.to_pylist(), None], dtype=object)
        out.append(texts[chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)])
    return np.concatenate(out) if out else np.zeros(0, dtype=object)

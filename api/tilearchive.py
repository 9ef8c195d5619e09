"""Tiles served from a run's pre-built archive (``tiles.mbtiles``, :mod:`geo_eval.maps.archive`).

Each worker opens the archive of a run read-only (SQLite, shared by every thread behind a lock: a tile
is one primary-key read of a few microseconds) and keeps a few open. The archive holds every parcel of
the run; a map of some parks only (a park page, a committee's overview) gets the tile with the features
of other parks removed (:func:`only_parks`, on the protobuf message: the geometry bytes are kept as cut).
Zooms above the archive's are cut from its deepest tile (:func:`overzoom`).

The tiles of a run stored in PostGIS are read from the database until the server has its own copy of them:
the first worker to open them writes them as an MBTiles file beside the run's columnar copy (in the
background, once per machine; :func:`geo_eval.db.tiles.export_tile_set`), and every worker then reads that
file as it reads a run's ``tiles.mbtiles``: a tile is a read of the machine's disk instead of a query.

An archive is used only when its metadata names the run and the sha256 of the ``manifest.json`` now in
the run's OUT_DIR; otherwise (not built yet, or the OUT_DIR rewritten since) the route cuts tiles itself.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mapbox_vector_tile
import numpy as np
import shapely
from mapbox_vector_tile.Mapbox import vector_tile_pb2

from api.runcopy import building, tiles_file
from api.rundata import RunCache
from geo_eval.errors import GeoEvalError
from geo_eval.io.runtiles import ARCHIVE_FILE, manifest_sha256
from geo_eval.maps.archive import PARKS_KEY
from geo_eval.maps.tiles import TILE_EXTENT
from geo_eval.storage import RunRecord

if TYPE_CHECKING:
    from geo_eval.db.tiles import TileSet

log = logging.getLogger(__name__)

CUT_CACHE_BYTES = 32 * 1024 * 1024
"""Tiles cut from stored ones (scoped to parks, or over-zoomed) kept per archive and worker."""
ARCHIVE_MMAP_BYTES = 1 << 32
"""SQLite maps the archive instead of copying its pages into its own cache: a 260 KB tile is read in 0.25 ms
instead of 0.8 ms (1M parcels), and the workers of a machine share the file's pages."""
DECODED_PARENTS_BYTES = 16 * 1024 * 1024
"""Stored tiles kept decoded per archive and worker for cutting deeper zooms, up to this many bytes of the
stored tiles (decoded, a tile takes about ten times its size: a zoom-15 tile of 50 KB, 180 parcels, 0.5 MB).
Three parks' views at zooms 16–19 reach about 160 zoom-15 tiles at 1M parcels; 64 tiles thrashed."""
OVERZOOM_BUFFER = 64
"""Units drawn beyond each edge of an over-zoomed tile (as the route's own tiles)."""


class TileArchive:
    """A run's pre-built tiles: zooms ``min_zoom``–``max_zoom`` stored, deeper ones cut from ``max_zoom``;
    the parks the run names; the tiles cut from stored ones (scoped, over-zoomed) kept up to a byte budget."""

    min_zoom: int
    max_zoom: int
    parks: frozenset[str]

    def __init__(self, min_zoom: int, max_zoom: int, parks: Collection[str]) -> None:
        self.min_zoom, self.max_zoom, self.parks = min_zoom, max_zoom, frozenset(parks)
        self._cut: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._cut_bytes = 0
        self._cut_lock = threading.Lock()
        self._parents: OrderedDict[tuple[object, ...], tuple[list[DecodedLayer], int]] = OrderedDict()
        self._parents_bytes = 0

    def read(self, z: int, x: int, y: int) -> bytes:
        """The stored tile ``z/x/y`` (XYZ numbering), ``b""`` when there is none."""
        raise NotImplementedError

    def close(self) -> None:
        """Release what the archive holds open."""

    def tile(self, z: int, x: int, y: int, parks: Collection[str] | None = None) -> bytes:
        """Tile ``z/x/y``: stored, or cut from the deepest stored tile above it; with ``parks``, only
        their parcels. A stored tile of every park is read each time (a few microseconds); what has to be
        cut is kept (:data:`CUT_CACHE_BYTES` per archive)."""
        if z < self.min_zoom:
            return b""
        if parks is None and z <= self.max_zoom:
            return self.read(z, x, y)
        key = (z, x, y, None if parks is None else tuple(sorted(parks)))
        with self._cut_lock:
            if key in self._cut:
                self._cut.move_to_end(key)
                return self._cut[key]
        data = self._cut_tile(z, x, y, parks)
        with self._cut_lock:
            if key not in self._cut:
                self._cut[key] = data
                self._cut_bytes += len(data)
            while self._cut_bytes > CUT_CACHE_BYTES and len(self._cut) > 1:
                self._cut_bytes -= len(self._cut.popitem(last=False)[1])
        return data

    def _cut_tile(self, z: int, x: int, y: int, parks: Collection[str] | None) -> bytes:
        if z <= self.max_zoom:
            data = self.read(z, x, y)
            return data if parks is None else only_parks(data, parks)
        dz = z - self.max_zoom
        layers = self._decoded_parent(x >> dz, y >> dz, parks)
        return overzoom(layers, dz, x & ((1 << dz) - 1), y & ((1 << dz) - 1)) if layers else b""

    def _decoded_parent(self, x: int, y: int, parks: Collection[str] | None) -> list[DecodedLayer]:
        """The deepest stored tile ``x/y`` (of ``parks``) decoded, kept for its other children (a map view
        at zoom 17–19 asks for several children of the same few stored tiles)."""
        key = (x, y, None if parks is None else tuple(sorted(parks)))
        with self._cut_lock:
            if key in self._parents:
                self._parents.move_to_end(key)
                return self._parents[key][0]
        parent = self.read(self.max_zoom, x, y)
        if parks is not None:
            parent = only_parks(parent, parks)
        layers = decode_parent(parent) if parent else []
        with self._cut_lock:
            if key not in self._parents:
                self._parents[key] = (layers, len(parent))
                self._parents_bytes += len(parent)
            while self._parents_bytes > DECODED_PARENTS_BYTES and len(self._parents) > 1:
                self._parents_bytes -= self._parents.popitem(last=False)[1][1]
        return layers


class FileArchive(TileArchive):
    """The archive in a run's OUT_DIR (``tiles.mbtiles``), one read-only SQLite connection behind a lock."""

    def __init__(self, path: Path, meta: dict[str, str], conn: sqlite3.Connection) -> None:
        super().__init__(int(meta["minzoom"]), int(meta["maxzoom"]), json.loads(meta.get(PARKS_KEY, "[]")))
        self.path, self.conn = path, conn
        self.lock = threading.Lock()

    def read(self, z: int, x: int, y: int) -> bytes:
        row_tms = (1 << z) - 1 - y
        with self.lock:
            row = self.conn.execute(
                "SELECT tile_data FROM tiles WHERE zoom_level = ? AND tile_column = ? AND tile_row = ?", (z, x, row_tms)
            ).fetchone()
        return b"" if row is None else bytes(row[0])

    def close(self) -> None:
        self.conn.close()


class DatabaseArchive(TileArchive):
    """The tiles of a run stored in PostGIS (``geo_eval.run_tiles``), read through the store's pool until the
    server's own copy of them is there (:meth:`copy_locally`), then from that copy."""

    def __init__(self, store: Any, run_id: str, found: TileSet) -> None:
        super().__init__(found.min_zoom, found.max_zoom, found.parks)
        self.store, self.run_id, self.found = store, run_id, found
        self._local: FileArchive | None = None
        self._closed = False

    @property
    def local(self) -> FileArchive | None:
        """The server's own copy of the tiles, once it is there."""
        return self._local

    def read(self, z: int, x: int, y: int) -> bytes:
        local = self._local
        if local is not None:
            return local.read(z, x, y)
        from geo_eval.db.tiles import read_tile

        with self.store.connection() as conn:
            return read_tile(conn, self.run_id, z, x, y)

    def copy_locally(self, copies: Path, stored_at: str) -> threading.Thread:
        """Read the tiles from the machine's copy of them under ``copies`` (of the run as stored at
        ``stored_at``), written first when the machine has none, on a thread of its own (the tiles are read
        from the database meanwhile)."""
        from geo_eval.db.tiles import tile_set_key

        key = tile_set_key(stored_at, self.found.built_at)
        target = tiles_file(copies, self.run_id, key)
        thread = threading.Thread(target=self._copy, args=(target, key, stored_at), name="tile-set-copy", daemon=True)
        thread.start()
        return thread

    def _copy(self, target: Path, key: str, stored_at: str) -> None:
        from geo_eval.db.tiles import export_tile_set

        try:
            with building(target):  # one worker of the machine writes the copy, the others wait for it
                local = _open_local(target, self.run_id, key)
                if local is None:
                    with self.store.connection() as conn:
                        n = export_tile_set(conn, self.run_id, stored_at, target)
                    log.info("run %s: %d tiles copied from the database to %s", self.run_id, n, target)
                    local = _open_local(target, self.run_id, key)
        except (OSError, sqlite3.Error, GeoEvalError) as exc:
            log.warning("run %s: its tiles are read from the database (no copy on this server: %s)", self.run_id, exc)
            return
        if local is None:
            return
        if self._closed:
            local.close()
            return
        self._local = local
        for old in target.parent.glob("tiles-*.mbtiles"):  # copies of the run's earlier tile sets
            if old != target:
                old.unlink(missing_ok=True)

    def close(self) -> None:
        self._closed = True
        if self._local is not None:
            self._local.close()


def _open_local(path: Path, run_id: str, key: str) -> FileArchive | None:
    """The server's copy of a run's stored tiles at ``path`` when it is there and holds tile set ``key``."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA mmap_size = {ARCHIVE_MMAP_BYTES}")
        meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
    except sqlite3.Error:
        conn.close()
        path.unlink(missing_ok=True)  # unreadable: written again
        return None
    if meta.get("geo_eval_run_id") != run_id or meta.get("geo_eval_tile_set") != key:
        conn.close()
        path.unlink(missing_ok=True)
        return None
    return FileArchive(path, meta, conn)


def _open(path: Path, run_id: str, sha256: str) -> FileArchive | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        conn.execute(f"PRAGMA mmap_size = {ARCHIVE_MMAP_BYTES}")
        meta = dict(conn.execute("SELECT name, value FROM metadata").fetchall())
    except sqlite3.Error as exc:
        log.warning("tile archive %s unreadable (%s): tiles cut per request", path, exc)
        return None
    if meta.get("geo_eval_run_id") != run_id or meta.get("geo_eval_manifest_sha256") != sha256:
        log.warning("tile archive %s was cut from another run or manifest: tiles cut per request", path)
        conn.close()
        return None
    return FileArchive(path, meta, conn)


def _database_archive(store: Any, record: RunRecord, copies: Path | None) -> DatabaseArchive | None:
    """The tiles of a run stored in PostGIS, if it has them; with ``copies`` (where the service keeps its
    copies of runs), read from the server's own copy of them as soon as it is there."""
    from geo_eval.db.tiles import tile_set

    with store.connection() as conn:
        found = tile_set(conn, record.run_id, record.stored_at)
    if found is None:
        return None
    archive = DatabaseArchive(store, record.run_id, found)
    if copies is not None:
        archive.copy_locally(copies, record.stored_at)
    return archive


class ArchiveCache:
    """The archives of the latest few runs, opened at most once each per stamp of the run's outputs."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str, int], TileArchive | None] = OrderedDict()
        self._lock = threading.Lock()

    def get(
        self, record: RunRecord, stamp: str, *, stored: bool, store: Any = None, copies: Path | None = None
    ) -> TileArchive | None:
        """The pre-built tiles of a run: of a run stored in PostGIS (``stored``), its tile set in the database
        (``store``), copied to ``copies`` on first use; of a run read from its OUT_DIR, the archive there when
        it was cut from exactly these outputs. ``stamp``: what the run's outputs were read from
        (:meth:`api.rundata.RunCache.stamp`)."""
        if stored:
            if store is None or not hasattr(store, "connection"):
                return None
            return self._remember((record.run_id, stamp, 0), lambda: _database_archive(store, record, copies))
        out = Path(record.out_dir)
        path = out / ARCHIVE_FILE
        try:
            built = path.stat().st_mtime_ns
        except OSError:
            return None
        return self._remember((record.run_id, stamp, built), lambda: self._open_file(record, out, path))

    @staticmethod
    def _open_file(record: RunRecord, out: Path, path: Path) -> TileArchive | None:
        try:
            return _open(path, record.run_id, manifest_sha256(out))
        except OSError as exc:
            log.warning("run %s: manifest unreadable for its tile archive (%s)", record.run_id, exc)
            return None

    def _remember(self, key: tuple[str, str, int], make: Callable[[], TileArchive | None]) -> TileArchive | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        archive = make()
        with self._lock:
            self._items[key] = archive
            while len(self._items) > self.size:
                _, old = self._items.popitem(last=False)
                if old is not None:
                    old.close()
        return archive


_cache_lock = threading.Lock()


def tile_archives(state: object) -> ArchiveCache:
    """The app's archive cache (``app.state``), made on first use."""
    cache: ArchiveCache | None = getattr(state, "tile_archives", None)
    if cache is None:
        with _cache_lock:
            cache = getattr(state, "tile_archives", None)
            if cache is None:
                cache = ArchiveCache()
                state.tile_archives = cache  # type: ignore[attr-defined]
    return cache


def archive_of(request: Any, record: RunRecord, cache: RunCache, basemap_kind: str) -> tuple[TileArchive | None, str]:
    """The run's pre-built tiles for a map without the 高德 shift (None otherwise, or without one), and the
    stamp of the run's outputs (for ETags)."""
    stamp = cache.stamp(record)
    if basemap_kind != "none":
        return None, stamp
    state = request.app.state
    found = tile_archives(state).get(
        record, stamp, stored=cache.from_database(record), store=getattr(state, "store", None), copies=cache.copies
    )
    return found, stamp


# ---------------------------------------------------------------------------------------------
# Cutting stored tiles
# ---------------------------------------------------------------------------------------------


def only_parks(tile: bytes, parks: Collection[str]) -> bytes:
    """``tile`` with only the features whose ``park`` is one of ``parks`` (layers left empty dropped).

    Works on the protobuf message: kept features keep their geometry and tags byte for byte.
    """
    if not tile:
        return tile
    msg = vector_tile_pb2.tile()
    msg.ParseFromString(tile)
    allowed = set(parks)
    changed = False
    out = vector_tile_pb2.tile()
    for layer in msg.layers:
        keys = list(layer.keys)
        park_key = keys.index("park") if "park" in keys else -1
        ok_values = {i for i, v in enumerate(layer.values) if v.HasField("string_value") and v.string_value in allowed}
        keep = [f for f in layer.features if _park_value(f.tags, park_key) in ok_values]
        if len(keep) == len(layer.features):
            out.layers.append(layer)
            continue
        changed = True
        if keep:
            new = out.layers.add()
            new.CopyFrom(layer)
            del new.features[:]
            new.features.extend(keep)
    return out.SerializeToString() if changed else tile


def _park_value(tags: Collection[int], park_key: int) -> int:
    """The value index of the feature's ``park`` tag, -1 when it has none."""
    t = list(tags)
    for i in range(0, len(t) - 1, 2):
        if t[i] == park_key:
            return t[i + 1]
    return -1


@dataclass(frozen=True)
class DecodedLayer:
    """A layer of a stored tile decoded once for cutting its children: geometries, their bounds, features."""

    name: str
    geoms: np.ndarray
    bounds: np.ndarray
    features: list[dict[str, Any]]


def decode_parent(parent: bytes) -> list[DecodedLayer]:
    """The layers of ``parent`` with their features' geometries (tile units, y down) and bounds."""
    out = []
    for name, layer in mapbox_vector_tile.decode(parent, default_options={"y_coord_down": True}).items():
        feats = layer.get("features", [])
        if feats:
            geoms = np.asarray([shapely.geometry.shape(f["geometry"]) for f in feats], dtype=object)
            out.append(DecodedLayer(name, geoms, shapely.bounds(geoms), feats))
    return out


def overzoom(layers: list[DecodedLayer], dz: int, dx: int, dy: int, *, extent: int = TILE_EXTENT) -> bytes:
    """The child ``dz`` zooms below a stored tile (its layers, :func:`decode_parent`) at offset ``(dx, dy)``
    (in child tiles), cut from the features that reach it."""
    scale = float(1 << dz)
    lo, hi = -OVERZOOM_BUFFER, extent + OVERZOOM_BUFFER
    # the child's buffered square in the parent's units
    x0, x1 = (lo + dx * extent) / scale, (hi + dx * extent) / scale
    y0, y1 = (lo + dy * extent) / scale, (hi + dy * extent) / scale
    out = []
    for layer in layers:
        b = layer.bounds
        near = np.flatnonzero((b[:, 0] <= x1) & (b[:, 2] >= x0) & (b[:, 1] <= y1) & (b[:, 3] >= y0))
        if not len(near):
            continue
        shifted = shapely.transform(layer.geoms[near], lambda c: c * scale - np.array([dx * extent, dy * extent]))
        clipped = shapely.clip_by_rect(shifted, lo, lo, hi, hi)
        clipped = shapely.orient_polygons(shapely.transform(clipped, np.rint), exterior_cw=False)
        keep = ~shapely.is_empty(clipped)
        polygonal = np.isin(shapely.get_type_id(clipped), (3, 6))
        keep &= ~polygonal | (shapely.area(clipped) > 0)
        kept = []
        for g, i, k in zip(clipped, near, keep, strict=True):
            if k:
                f = layer.features[i]
                kept.append({"geometry": g, "properties": f["properties"], **({"id": f["id"]} if "id" in f else {})})
        if kept:
            out.append({"name": layer.name, "features": kept})
    if not out:
        return b""
    return bytes(
        mapbox_vector_tile.encode(
            out,
            default_options={
                "extents": extent,
                "y_coord_down": True,
                "quantize_bounds": None,
                "check_winding_order": False,
            },
        )
    )

"""The parcels' geometries of a run as the service holds them: made only for the rows a request needs.

A province's run has a million parcels; as shapely objects they take about 420 MB in each worker, and the
spatial index built over them as much again. The service needs few of them at once (a park's map, a page
of GeoJSON, one parcel's popup), so a run read from its columnar copy keeps its geometries as WKB in the
copy's memory-mapped file (shared by every worker through the page cache) and their bounding boxes as one
array; :meth:`ParcelGeometries.take` builds the geometries of some rows, and :meth:`ParcelGeometries.in_box`
finds the parcels in a box from the bounds before testing the few candidates exactly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import shapely

WKB_CHUNK = 200_000
"""Rows made into geometries at a time when every geometry is asked for (bounds, the whole frame)."""


class ParcelGeometries:
    """Each parcel row's geometry (None where missing), from WKB or from geometries already made."""

    def __init__(self, *, wkb: pa.Array | None = None, geoms: np.ndarray | None = None) -> None:
        if (wkb is None) == (geoms is None):
            raise ValueError("ParcelGeometries takes either wkb or geoms")
        self._wkb = wkb
        self._geoms = geoms
        self._columns: np.ndarray | None = None  # the bounds column by column, shape (4, n)

    @classmethod
    def of(cls, geoms: np.ndarray, bounds: np.ndarray | None = None) -> ParcelGeometries:
        """Geometries already made (a run read from its outputs); ``bounds`` as :attr:`bounds` says."""
        made = cls(geoms=np.asarray(geoms, dtype=object))
        made._columns = None if bounds is None else np.asarray(bounds).T
        return made

    @classmethod
    def mapped(cls, wkb: pa.Array, columns: np.ndarray) -> ParcelGeometries:
        """Geometries kept as WKB (one value per row, null where missing) with their bounds column by column
        (:attr:`columns`)."""
        made = cls(wkb=wkb)
        made._columns = columns
        return made

    def __len__(self) -> int:
        return len(self._geoms) if self._geoms is not None else len(self._wkb)  # type: ignore[arg-type]

    @property
    def in_memory(self) -> bool:
        """Whether every geometry is already made (else they are made when taken)."""
        return self._geoms is not None

    def take(self, positions: np.ndarray) -> np.ndarray:
        """The geometries of some parcel rows, in the order given, as an object array.

        >>> g = ParcelGeometries.mapped(pa.array(shapely.to_wkb([shapely.Point(1, 2), None])), np.zeros((2, 4)))
        >>> [None if v is None else v.wkt for v in g.take(np.array([1, 0]))]
        [None, 'POINT (1 2)']
        """
        rows = np.asarray(positions, dtype=np.int64)
        if self._geoms is not None:
            return self._geoms[rows]
        assert self._wkb is not None
        every = len(rows) == len(self._wkb) and bool((rows == np.arange(len(rows))).all())
        return _from_wkb(self._wkb if every else self._wkb.take(pa.array(rows, pa.int64())))

    def all(self) -> np.ndarray:
        """Every geometry (made at once; 1 s and 420 MB at 1M parcels when kept as WKB)."""
        if self._geoms is not None:
            return self._geoms
        assert self._wkb is not None
        return _from_wkb(self._wkb)

    @property
    def columns(self) -> np.ndarray:
        """``minx``, ``miny``, ``maxx``, ``maxy`` of the rows (NaN where there is no geometry), shape ``(4, n)``:
        each a contiguous column, so that a scan of a million rows reads 32 MB once."""
        if self._columns is None:
            parts = [shapely.bounds(self.take(np.arange(a, min(a + WKB_CHUNK, len(self))))) for a in _starts(len(self))]
            self._columns = np.ascontiguousarray((np.concatenate(parts) if parts else np.zeros((0, 4))).T)
        return self._columns

    @property
    def bounds(self) -> np.ndarray:
        """``(minx, miny, maxx, maxy)`` of each row, shape ``(n, 4)`` (a view of :attr:`columns`)."""
        return self.columns.T

    def in_box(self, box: tuple[float, float, float, float], within: np.ndarray | None = None) -> np.ndarray:
        """Row positions of the geometries intersecting a box, ascending, among the rows ``within`` (ascending;
        None: every row). The bounds select candidates; a candidate whose bounds lie inside the box is in it,
        the others are tested exactly (a parcel whose box overlaps without its shape is left out).

        >>> g = ParcelGeometries.of(np.array([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3), None]))
        >>> g.in_box((0.5, 0.5, 2.5, 2.5)).tolist(), g.in_box((1.5, 0, 1.9, 1)).tolist()
        ([0, 1], [])
        >>> g.in_box((-1, -1, 9, 9)).tolist(), g.in_box((-1, -1, 9, 9), within=np.array([1, 2])).tolist()
        ([0, 1], [1])
        """
        west, south, east, north = box
        rows = None if within is None else np.asarray(within, dtype=np.int64)
        minx, miny, maxx, maxy = self.columns if rows is None else self.columns[:, rows]
        with np.errstate(invalid="ignore"):  # NaN bounds of a missing geometry compare False
            near = (minx <= east) & (maxx >= west) & (miny <= north) & (maxy >= south)
            inside = near & (minx >= west) & (maxx <= east) & (miny >= south) & (maxy <= north)
        edge = np.flatnonzero(near & ~inside)
        candidates = edge if rows is None else rows[edge]
        hit = shapely.intersects(self.take(candidates), shapely.box(west, south, east, north)) if len(edge) else []
        found = np.flatnonzero(inside)
        found = found if rows is None else rows[found]
        return np.sort(np.concatenate([found, candidates[np.asarray(hit, dtype=bool)]])).astype(np.int64)


def _starts(n: int) -> range:
    return range(0, n, WKB_CHUNK)


def _from_wkb(wkb: pa.Array | pa.ChunkedArray) -> np.ndarray:
    values = wkb.to_numpy(zero_copy_only=False)
    return np.asarray(shapely.from_wkb(values), dtype=object)

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
        self._bounds: np.ndarray | None = None

    @classmethod
    def of(cls, geoms: np.ndarray, bounds: np.ndarray | None = None) -> ParcelGeometries:
        """Geometries already made (a run read from its outputs); ``bounds`` as :attr:`bounds` says."""
        made = cls(geoms=np.asarray(geoms, dtype=object))
        made._bounds = bounds
        return made

    @classmethod
    def mapped(cls, wkb: pa.Array, bounds: np.ndarray) -> ParcelGeometries:
        """Geometries kept as WKB (one value per row, null where missing) with their bounds."""
        made = cls(wkb=wkb)
        made._bounds = bounds
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
    def bounds(self) -> np.ndarray:
        """``(minx, miny, maxx, maxy)`` of each row (NaN where there is no geometry), shape ``(n, 4)``."""
        if self._bounds is None:
            parts = [shapely.bounds(self.take(np.arange(a, min(a + WKB_CHUNK, len(self))))) for a in _starts(len(self))]
            self._bounds = np.concatenate(parts) if parts else np.zeros((0, 4))
        return self._bounds

    def in_box(self, box: tuple[float, float, float, float]) -> np.ndarray:
        """Row positions of the geometries intersecting a box, ascending: the bounds select candidates, each
        candidate is then tested exactly (a parcel whose box overlaps without its shape is left out).

        >>> g = ParcelGeometries.of(np.array([shapely.box(0, 0, 1, 1), shapely.box(2, 2, 3, 3), None]))
        >>> g.in_box((0.5, 0.5, 2.5, 2.5)).tolist(), g.in_box((1.5, 0, 1.9, 1)).tolist()
        ([0, 1], [])
        """
        west, south, east, north = box
        b = self.bounds
        with np.errstate(invalid="ignore"):  # NaN bounds of a missing geometry compare False
            near = (b[:, 0] <= east) & (b[:, 2] >= west) & (b[:, 1] <= north) & (b[:, 3] >= south)
        candidates = np.flatnonzero(near)
        if not len(candidates):
            return candidates.astype(np.int64)
        hit = shapely.intersects(self.take(candidates), shapely.box(west, south, east, north))
        return candidates[np.asarray(hit, dtype=bool)].astype(np.int64)


def _starts(n: int) -> range:
    return range(0, n, WKB_CHUNK)


def _from_wkb(wkb: pa.Array | pa.ChunkedArray) -> np.ndarray:
    values = wkb.to_numpy(zero_copy_only=False)
    return np.asarray(shapely.from_wkb(values), dtype=object)

"""Publishing an evaluation run into PostGIS (``geo-eval evaluate … --db URL``).

One transaction holds everything: the run record (registered as the latest run, with an audit entry),
the enterprise results, the parcel results with their geometry (in the run's Gauss-Krüger plane, and
GCJ-02-shifted for 高德 basemaps), the flags, the renewal blocks and the output files (``enterprises.csv``,
``exceptions.csv``, ``benchmarks.csv``, ``flags.csv``, ``manifest.json``, ``policies.csv``). The rows go
in with ``COPY … FROM STDIN (FORMAT csv)``, the csv made by pyarrow in slices of :data:`COPY_ROWS` rows,
never row by row in Python, into a new table per result table; its indexes are then built in bulk and it
is attached as the run's partition (at a million parcels this halves the database's time against growing the
shared indexes row by row). Publishing the same run again (same run id: same inputs and scheme, whatever
the geo-eval version) swaps its partitions, at the very end, and keeps the reviews of its unchanged flags
(:class:`~geo_eval.storage.base.Carryover`).

The database and OUT_DIR change together or not at all (:class:`Publication`): the run is staged in the
transaction while its files sit in OUT_DIR's temporary directory, the transaction stays open while the
new OUT_DIR is swapped in (the old one kept aside) and commits only then; if the swap fails the
transaction rolls back, and if the commit fails the old OUT_DIR is put back (:mod:`geo_eval.io.outdir`).
The registry records the sha256 of the run's ``manifest.json`` so that what is left after a kill between
the swap and the commit is found out rather than served under the wrong run.

Every table keeps typed columns for SQL users (``uscc``, ``grade``, ``tax_per_mu``, ``reason`` …) and the
whole row as ``row_csv``: one csv line (text quoted, numbers in their shortest exact digits), whose column
names and kinds are in ``runs.columns`` (see :func:`row_csv`); the service reads the rows back from it. A
csv line costs the server one text value per row: jsonb (one parsed value per field) made publishing a
million parcels several times slower.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb

from geo_eval.db.store import PostgresStore, register_run
from geo_eval.inputs import keys
from geo_eval.io import csvout
from geo_eval.io.writers import enterprise_frame, parcel_layer_columns
from geo_eval.landuse.flags import FlagResult
from geo_eval.landuse.renewal import RenewalBlocks
from geo_eval.maps.gcj02 import shift_to_gcj02
from geo_eval.rating.evaluate import Evaluation
from geo_eval.storage.base import RunRecord
from geo_eval.storage.common import now
from geo_eval.storage.runs import run_record

log = logging.getLogger(__name__)

COPY_ROWS = 50_000
"""Rows per csv slice sent to COPY."""
RUN_FILES = ("exceptions.csv", "benchmarks.csv", "manifest.json", "policies.csv")
"""Output files kept as they are in ``geo_eval.run_files`` (those the run wrote: ``policies.csv`` only
with a scheme's ``[[policies]]``). ``enterprises.csv`` is its rows in
``enterprise_results.row_csv`` (byte for byte: :func:`geo_eval.db.results.enterprises_csv`), and
``flags.csv`` the rows of ``flags``."""
PARTITIONED = ("enterprise_results", "parcel_results", "flags", "renewal_blocks")
"""Result tables with one partition per run."""

Cursor = Any  # psycopg.Cursor[DictRow]


def srid_of(crs: str) -> int:
    """The EPSG code of a CRS string (the run's measuring plane, e.g. ``EPSG:4528``)."""
    from pyproj import CRS

    code = CRS.from_user_input(crs).to_epsg()
    if code is None:
        raise ValueError(f"坐标系 {crs} 没有 EPSG 代码，无法写入 PostGIS")
    return int(code)


def publish_run(
    store: PostgresStore,
    ev: Evaluation,
    *,
    manifest: dict[str, Any],
    files_dir: Path,
    out_dir: Path,
    flags: FlagResult | None = None,
    blocks: RenewalBlocks | None = None,
    actor: str = "cli",
) -> tuple[RunRecord, dict[str, float]]:
    """Store a run and its results in one transaction, committed at once; returns the stored record and
    timings (s). :func:`geo_eval.io.run.run` uses :class:`Publication` instead, to commit only once
    OUT_DIR is in place.

    ``files_dir`` holds the written output files (the temporary directory of
    :func:`geo_eval.io.writers.write_outputs`), ``out_dir`` is where they will be.
    """
    with Publication(store, ev, out_dir=out_dir, flags=flags, blocks=blocks, actor=actor) as publication:
        publication.stage(files_dir, manifest)
    assert publication.record is not None
    return publication.record, publication.timings


class Publication:
    """One run published in one transaction that is left open until the block ends.

    :meth:`stage` stores everything (the registration with its carry-over of reviews, results, partitions,
    files); leaving the ``with`` block commits, or rolls back when the block raised. ``record`` is the
    stored run and ``timings`` the seconds of each step (``db_commit``: partitions attached and the commit).
    """

    def __init__(
        self,
        store: PostgresStore,
        ev: Evaluation,
        *,
        out_dir: Path,
        flags: FlagResult | None = None,
        blocks: RenewalBlocks | None = None,
        actor: str = "cli",
        supersede: str = "",
    ) -> None:
        self.store, self.ev, self.out_dir = store, ev, Path(out_dir)
        self.flags, self.blocks, self.actor = flags, blocks, actor
        self.supersede = supersede
        """A reason: the run may replace the year's final (已发布) run (``geo-eval evaluate --supersede``)."""
        self.record: RunRecord | None = None
        self.timings: dict[str, float] = {}
        self._transaction = contextlib.ExitStack()

    def __enter__(self) -> Publication:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        t = time.perf_counter()
        self._transaction.__exit__(kind, exc, tb)  # commit, or roll back when the block raised
        if kind is None and self.record is not None:
            self.timings["db_commit"] = self.timings.get("db_commit", 0.0) + time.perf_counter() - t
            self.timings["db_total"] = sum(v for k, v in self.timings.items() if k in _STEPS)
            log.info("run %s published to %s", self.record.run_id, self.store.database)

    def stage(self, files_dir: Path, manifest: dict[str, Any]) -> RunRecord:
        """Store the run whose files are in ``files_dir`` (not committed yet); returns its record."""
        t = time.perf_counter()
        record = run_record(manifest, self.out_dir, files_dir=files_dir)  # with the flags' digests
        if self.supersede:
            record = replace(record, supersede=True, supersede_reason=self.supersede)
        self.timings["db_digests"] = time.perf_counter() - t
        cur = self._transaction.enter_context(self.store.transaction())
        self.record = _stage(
            cur,
            self.ev,
            record=record,
            manifest=manifest,
            files_dir=files_dir,
            flags=self.flags,
            blocks=self.blocks,
            actor=self.actor,
            timings=self.timings,
        )
        return self.record


_STEPS = (
    "db_digests",
    "db_register",
    "db_enterprises",
    "db_parcels",
    "db_flags_blocks_files",
    "db_indexes",
    "db_commit",
)
"""The consecutive steps of publishing (their sum is ``db_total``)."""


def _stage(
    cur: Cursor,
    ev: Evaluation,
    *,
    record: RunRecord,
    manifest: dict[str, Any],
    files_dir: Path,
    flags: FlagResult | None,
    blocks: RenewalBlocks | None,
    actor: str,
    timings: dict[str, float],
) -> RunRecord:
    """Everything :class:`Publication` stores, in the caller's transaction; returns the stored record."""
    srid = srid_of(ev.area_crs)
    stored_at = now()
    t = time.perf_counter()
    rec = register_run(cur, record, actor=actor, digests_in_flags=True)
    cur.execute("DELETE FROM geo_eval.run_files WHERE run_id = %s", (rec.run_id,))
    parts = {table: _new_partition(cur, table, rec.run_id, stored_at) for table in PARTITIONED}
    timings["db_register"] = time.perf_counter() - t
    columns: dict[str, dict[str, Any]] = {}
    t = time.perf_counter()
    columns["enterprises"] = _copy_enterprises(cur, parts["enterprise_results"], rec.run_id, ev, timings)
    timings["db_enterprises"] = time.perf_counter() - t
    t = time.perf_counter()
    columns["parcels"] = _copy_parcels(cur, parts["parcel_results"], rec.run_id, ev, srid, flags, blocks, timings)
    timings["db_parcels"] = time.perf_counter() - t
    t = time.perf_counter()
    if flags is not None:
        columns["flags"] = _copy_flags(cur, parts["flags"], rec.run_id, flags, record.flag_prints or {}, timings)
    if blocks is not None:
        columns["blocks"] = _copy_blocks(cur, parts["renewal_blocks"], rec.run_id, blocks, srid, timings)
    _copy_files(cur, rec.run_id, files_dir)
    timings["db_flags_blocks_files"] = time.perf_counter() - t
    t = time.perf_counter()
    for table, part in parts.items():
        _index_partition(cur, table, part)
    timings["db_indexes"] = time.perf_counter() - t
    t = time.perf_counter()
    for table, part in parts.items():  # the old partitions of a run published again go only now
        _attach_partition(cur, table, part, rec.run_id)
    cur.execute(
        "UPDATE geo_eval.runs SET stored_at = %s, srid = %s, manifest = %s, columns = %s WHERE run_id = %s",
        (stored_at, srid, Jsonb(manifest), Jsonb(columns), rec.run_id),
    )
    timings["db_commit"] = time.perf_counter() - t
    return replace(rec, stored_at=stored_at, srid=srid)


# --- partitions -------------------------------------------------------------------------------------


def _new_partition(cur: Cursor, table: str, run_id: str, stamp: str) -> str:
    """An empty table shaped like ``geo_eval.<table>`` (no indexes yet) for one run's rows."""
    name = f"{table}_{hashlib.sha1(f'{run_id}|{stamp}'.encode()).hexdigest()[:16]}"
    cur.execute(
        sql.SQL("CREATE TABLE geo_eval.{} (LIKE geo_eval.{} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            sql.Identifier(name), sql.Identifier(table)
        )
    )
    cur.execute(
        sql.SQL("ALTER TABLE geo_eval.{} ADD CHECK (run_id = {})").format(sql.Identifier(name), sql.Literal(run_id))
    )
    return name


def _index_partition(cur: Cursor, table: str, part: str) -> None:
    """Build, on the loaded partition, every index the parent table declares (bulk builds, faster than
    growing them row by row); attaching the partition then adopts them instead of building its own."""
    rows = cur.execute(
        "SELECT pg_get_indexdef(i.indexrelid) AS definition, i.indisprimary AS primary_key FROM pg_index i "
        "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = 'geo_eval' AND t.relname = %s",
        (table,),
    ).fetchall()
    for row in rows:
        definition, primary = (row["definition"], row["primary_key"]) if isinstance(row, dict) else row
        using = str(definition)[str(definition).index(" USING ") :]
        if primary:  # the partition's primary key (an index of the constraint, which attaching adopts)
            columns = using[using.index("(") :]
            cur.execute(
                sql.SQL("ALTER TABLE geo_eval.{} ADD PRIMARY KEY {}").format(
                    sql.Identifier(part),
                    sql.SQL(columns),  # type: ignore[arg-type]  # the server's own column list
                )
            )
            continue
        unique = str(definition).startswith("CREATE UNIQUE INDEX")
        cur.execute(
            sql.SQL("CREATE {}INDEX ON geo_eval.{}{}").format(
                sql.SQL("UNIQUE " if unique else ""),
                sql.Identifier(part),
                sql.SQL(using),  # type: ignore[arg-type]  # the server's own index definition
            )
        )


def _attach_partition(cur: Cursor, table: str, part: str, run_id: str) -> None:
    """Make ``part`` the partition of ``run_id`` in ``geo_eval.<table>``, dropping the run's previous one."""
    old = cur.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
        "WHERE n.nspname = 'geo_eval' AND p.relname = %s AND pg_get_expr(c.relpartbound, c.oid) = %s",
        (table, f"FOR VALUES IN ({sql.Literal(run_id).as_string(cur)})"),
    ).fetchall()
    for row in old:
        name = str(row["relname"] if isinstance(row, dict) else row[0])
        cur.execute(sql.SQL("DROP TABLE geo_eval.{}").format(sql.Identifier(name)))
    cur.execute(
        sql.SQL("ALTER TABLE geo_eval.{} ATTACH PARTITION geo_eval.{} FOR VALUES IN ({})").format(
            sql.Identifier(table), sql.Identifier(part), sql.Literal(run_id)
        )
    )


# --- COPY -------------------------------------------------------------------------------------------


def _arrow_column(s: pd.Series) -> pa.Array:
    """A column for COPY and ``row_csv``: numbers, booleans and text as they are (missing as null; NaN and
    ±inf as null), dates as ``YYYY-MM-DD`` (as parcels.gpkg writes them)."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.dt.strftime("%Y-%m-%d")
    values = s.array if isinstance(s.dtype, pd.api.extensions.ExtensionDtype) else s.to_numpy()
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed objects: as text
        arr = pa.array(s.astype("string").array, from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_floating(arr.type):
        arr = pc.if_else(pc.is_finite(arr), arr.cast(pa.float64()), pa.scalar(None, pa.float64()))
    elif pa.types.is_null(arr.type):
        arr = pa.nulls(len(arr), pa.large_string())
    elif not (pa.types.is_integer(arr.type) or pa.types.is_boolean(arr.type)):
        arr = arr.cast(pa.large_string())
    return arr


def kind_of(arr: pa.Array) -> str:
    """``float``, ``int``, ``bool`` or ``text``: how :mod:`geo_eval.db.results` reads the column back."""
    t = arr.type
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_boolean(t):
        return "bool"
    return "text"


class _Arrow:
    """A frame's columns as :func:`_arrow_column` makes them, each converted once."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self._cache: dict[object, pa.Array] = {}

    def __getitem__(self, column: object) -> pa.Array:
        if column not in self._cache:
            self._cache[column] = _arrow_column(self.frame[column])
        return self._cache[column]


def row_csv(frame: pd.DataFrame, arrow: _Arrow | None = None) -> tuple[pa.Array, dict[str, list[str]]]:
    """Each row of ``frame`` as one csv line (``row_csv``) and the table's ``columns`` and ``kinds``.

    Text is always quoted (so an empty text ``""`` differs from a missing value, which is empty), numbers
    are their shortest exact digits, booleans ``true``/``false``: read back by
    :func:`geo_eval.db.results.read_rows` to the same values, nulls included.

    >>> lines, layout = row_csv(pd.DataFrame({"a": [1.5, None], "b": ['x"y', ""], "c": [True, False]}))
    >>> lines.to_pylist(), layout["kinds"]
    (['1.5,"x""y",true', ',"",false'], ['float', 'text', 'bool'])
    """
    names = [str(c) for c in frame.columns]
    kinds: list[str] = []
    parts: list[pa.Array] = []
    arrow = arrow if arrow is not None else _Arrow(frame)
    for c in frame.columns:
        arr = arrow[c]
        kind = kind_of(arr)
        kinds.append(kind)
        if kind in ("float", "int"):
            parts.append(arr.cast(pa.large_string()))
        elif kind == "bool":
            parts.append(pc.if_else(arr, pa.scalar("true", pa.large_string()), pa.scalar("false", pa.large_string())))
        else:
            quote = pa.scalar('"', pa.large_string())
            empty = pa.scalar("", pa.large_string())
            parts.append(pc.binary_join_element_wise(quote, pc.replace_substring(arr, '"', '""'), quote, empty))
    sep = pa.scalar(",", pa.large_string())
    if not parts:
        lines = pa.array([""] * len(frame), type=pa.large_string())
    elif len(parts) == 1:
        lines = pc.fill_null(parts[0], pa.scalar("", pa.large_string()))
    else:
        lines = pc.binary_join_element_wise(*parts, sep, null_handling="replace", null_replacement="")
    return lines, {"columns": names, "kinds": kinds}


def _copy(
    cur: Cursor, table: str, columns: dict[str, pa.Array | pa.ChunkedArray], *, label: str, timings: dict[str, float]
) -> None:
    """``COPY geo_eval.<table> (columns) FROM STDIN (FORMAT csv)`` from Arrow columns of equal length; its
    seconds go to ``timings["db_copy_<label>"]`` (the rest of publishing is preparing the columns)."""
    start_time = time.perf_counter()
    t = pa.table(columns)
    stmt = sql.SQL("COPY geo_eval.{} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    )
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")
    with cur.copy(stmt) as copy:
        for start in range(0, t.num_rows, COPY_ROWS):
            buf = io.BytesIO()
            pacsv.write_csv(t.slice(start, COPY_ROWS), buf, options)
            copy.write(buf.getbuffer())
    key = f"db_copy_{label}"  # a table copied in slices: their seconds added up
    timings[key] = timings.get(key, 0.0) + time.perf_counter() - start_time


def _typed(frame: pd.DataFrame, name: str, kind: str = "text", arrow: _Arrow | None = None) -> pa.Array:
    """Column ``name`` of ``frame`` for a typed target column (all null when the frame has none)."""
    if name not in frame.columns:
        return pa.nulls(len(frame), {"text": pa.large_string(), "float": pa.float64(), "int": pa.int64()}[kind])
    s = frame[name]
    if kind == "float":
        v = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return pa.array(np.where(np.isfinite(v), v, np.nan), from_pandas=True)
    if kind == "int":
        return pa.array(pd.to_numeric(s, errors="coerce").astype("Int64").array).cast(pa.int64())
    return (arrow[name] if arrow is not None else _arrow_column(s)).cast(pa.large_string())


_HEX = np.frombuffer(b"".join(f"{i:02X}".encode() for i in range(256)), dtype=np.uint16)
"""Each byte value's two hex digits, as one uint16 (so a buffer is hex-encoded by one gather)."""


def _ewkb(geoms: np.ndarray, srid: int) -> pa.Array:
    """Hex EWKB with the SRID (what PostGIS reads from text), null for a missing geometry.

    Binary WKB from GEOS, hex-encoded in one NumPy gather over the whole buffer (3× faster than GEOS'
    own hex writer).

    >>> _ewkb(np.array([shapely.Point(1, 2), None], dtype=object), 4549).to_pylist()
    ['0101000020C5110000000000000000F03F0000000000000040', None]
    """
    binary = pa.array(shapely.to_wkb(shapely.set_srid(geoms, srid), include_srid=True), type=pa.large_binary())
    validity, offsets, data = binary.buffers()
    off = np.frombuffer(offsets, dtype=np.int64)[binary.offset : binary.offset + len(binary) + 1]
    raw = np.frombuffer(data, dtype=np.uint8)[off[0] : off[-1]] if data is not None else np.zeros(0, np.uint8)
    text = _HEX[raw].view(np.uint8)
    return pa.LargeStringArray.from_buffers(
        len(binary), pa.py_buffer((off - off[0]) * 2), pa.py_buffer(text), validity, binary.null_count
    )


def _head(run_id: str, n: int, *, first: int = 1) -> dict[str, pa.Array]:
    return {
        "run_id": pa.array(np.full(n, run_id, dtype=object), type=pa.large_string()),
        "row_no": pa.array(np.arange(first, first + n, dtype=np.int64)),
    }


def _copy_enterprises(
    cur: Cursor, table: str, run_id: str, ev: Evaluation, timings: dict[str, float]
) -> dict[str, Any]:
    """The enterprise results; ``row_csv`` holds each line of ``enterprises.csv`` exactly as written."""
    e = enterprise_frame(ev)
    lines = pa.concat_arrays(list(csvout.iter_rows(e))) if len(e) else pa.array([], type=pa.large_string())
    cols = _head(run_id, len(e))
    for target, source in (("uscc", "uscc"), ("name", "name"), ("county", "county"), ("park", "park")):
        cols[target] = _typed(e, source)
    cols["group_key"] = _typed(e, "group")
    cols["land_mu"] = _typed(e, "land_mu", "float")
    cols["tax"] = _typed(e, "tax", "float")
    cols["score"] = _typed(e, "score", "float")
    cols["grade"] = _typed(e, "grade")
    cols["rank"] = _typed(e, "rank", "int")
    cols["row_csv"] = lines
    _copy(cur, table, cols, label="enterprise_results", timings=timings)
    return {"columns": [str(c) for c in e.columns], "header": csvout.header_line(e), "format": "enterprises.csv"}


def _copy_parcels(
    cur: Cursor,
    table: str,
    run_id: str,
    ev: Evaluation,
    srid: int,
    flags: FlagResult | None,
    blocks: RenewalBlocks | None,
    timings: dict[str, float],
) -> dict[str, list[str]]:
    layer = parcel_layer_columns(ev, flags, blocks)
    attrs = pd.DataFrame(layer, copy=False)  # the columns as they are (no text inference)
    attrs.index = pd.RangeIndex(len(attrs))
    first = next(iter(layer))
    if first != "parcel_id":
        attrs = attrs.rename(columns={first: "parcel_id"})
    plane = ev.plane if ev.plane is not None else ev.parcels.geometry.to_crs(ev.area_crs)
    display = ev.parcels.geometry
    epsg = display.crs.to_epsg() if display.crs is not None else None
    if epsg == 4490:
        display = display.set_crs(4326, allow_override=True)
    elif epsg != 4326:
        display = display.to_crs(4326)
    arrow = _Arrow(attrs)
    n_flags = _flag_counts(attrs["parcel_id"], flags)
    layout: dict[str, list[str]] = {}
    for start in range(0, max(len(attrs), 1), PUBLISH_ROWS):  # a slice at a time: never every row's texts at once
        rows = slice(start, min(start + PUBLISH_ROWS, len(attrs)))
        part, view = attrs.iloc[rows], _Rows(arrow, rows)
        lines, layout = row_csv(part, view)
        cols = _head(run_id, len(part), first=start + 1)
        for c in ("parcel_id", "county", "park", "holder_uscc", "holder_name", "users", "main_user", "main_user_name"):
            cols[c] = _typed(part, c, arrow=view)
        cols["grade"] = _typed(part, "grade", arrow=view)
        for c in ("tax_per_mu", "area_m2", "area_mu"):
            cols[c] = _typed(part, c, "float")
        cols["block_id"] = _typed(part, "block_id", arrow=view)
        cols["n_flags"] = pa.array(n_flags[rows])
        cols["row_csv"] = lines
        cols["geom"] = _ewkb(np.asarray(plane.array[rows], dtype=object), srid)
        cols["geom_gcj02"] = _ewkb(np.asarray(shift_to_gcj02(display.iloc[rows]).array, dtype=object), 4326)
        _copy(cur, table, cols, label="parcel_results", timings=timings)
    return layout


PUBLISH_ROWS = 200_000
"""Parcel rows made into COPY columns (texts, hex EWKB in both planes) at a time: a province's million
parcels at once held about 2 GB of them beside the evaluation."""


class _Rows(_Arrow):
    """Rows ``rows`` of an :class:`_Arrow`'s columns (each column converted once, for the whole frame)."""

    def __init__(self, arrow: _Arrow, rows: slice) -> None:  # a view: no frame of its own
        self.arrow, self.rows = arrow, rows

    def __getitem__(self, column: object) -> pa.Array:
        start = self.rows.start
        return self.arrow[column].slice(start, self.rows.stop - start)


def _flag_counts(parcel_ids: pd.Series, flags: FlagResult | None) -> np.ndarray:
    """Flags per parcel (what the map tiles show as ``n_flags``)."""
    if flags is None or flags.flags.empty:
        return np.zeros(len(parcel_ids), dtype=np.int64)
    counts = flags.flags["parcel_id"].value_counts()
    return np.nan_to_num(keys.reindex(counts, pd.Index(parcel_ids)).to_numpy(dtype=float)).astype(np.int64)


def _copy_flags(
    cur: Cursor, table: str, run_id: str, flags: FlagResult, digests: Mapping[str, str], timings: dict[str, float]
) -> dict[str, list[str]]:
    """The flags, each with its content digest (``digest``: :func:`geo_eval.storage.runs.flag_prints`)."""
    f = flags.flags.reset_index(drop=True)
    arrow = _Arrow(f)
    lines, layout = row_csv(f, arrow)
    cols = _head(run_id, len(f))
    for c in ("flag_id", "parcel_id", "county", "park", "flag", "rule_id", "severity", "reason"):
        cols[c] = _typed(f, c, arrow=arrow)
    cols["value"] = _typed(f, "value", "float")
    cols["threshold"] = _typed(f, "threshold", "float")
    # the popup line of geo_eval.maps.parcel_attributes: 标记：原因 (or the label alone)
    label = f["flag_label"].astype(object).where(f["flag_label"].notna(), "").astype(str).str.strip()
    reason = f["reason"].astype(object).where(f["reason"].notna(), "").astype(str).str.strip()
    popup = np.where(reason != "", label + "：" + reason, label)
    cols["popup"] = pa.array(popup.astype(object), type=pa.large_string())
    cols["row_csv"] = lines
    cols["digest"] = pa.array([digests.get(i) for i in f["flag_id"].astype(str)], type=pa.large_string())
    _copy(cur, table, cols, label="flags", timings=timings)
    return layout


def _copy_blocks(
    cur: Cursor, table: str, run_id: str, blocks: RenewalBlocks, srid: int, timings: dict[str, float]
) -> dict[str, list[str]]:
    b = blocks.blocks.reset_index(drop=True)
    attrs = pd.DataFrame(b.drop(columns=b.geometry.name))
    lines, layout = row_csv(attrs)
    cols = _head(run_id, len(b))
    cols["block_id"] = _typed(attrs, "block_id")
    cols["kind"] = _typed(attrs, "kind")
    cols["area_mu"] = _typed(attrs, "area_mu", "float")
    cols["row_csv"] = lines
    cols["geom"] = _ewkb(np.asarray(b.geometry.array, dtype=object), srid)
    _copy(cur, table, cols, label="renewal_blocks", timings=timings)
    return layout


def _copy_files(cur: Cursor, run_id: str, files_dir: Path) -> None:
    for name in RUN_FILES:
        path = Path(files_dir) / name
        if not path.is_file():
            continue
        data = path.read_bytes()
        cur.execute(
            "INSERT INTO geo_eval.run_files (run_id, name, content, sha256) VALUES (%s, %s, %s, %s)",
            (run_id, name, data, hashlib.sha256(data).hexdigest()),
        )


def read_run_file(cur: Cursor, run_id: str, name: str) -> bytes | None:
    """An output file of a stored run (None if it was not stored)."""
    row = cur.execute(
        "SELECT content FROM geo_eval.run_files WHERE run_id = %s AND name = %s", (run_id, name)
    ).fetchone()
    if row is None:
        return None
    content = row["content"] if isinstance(row, dict) else row[0]
    return bytes(content)

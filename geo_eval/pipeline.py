"""One year's whole evaluation as one call, for notebooks and other programs.

:func:`evaluate_frames` takes the inputs as (Geo)DataFrames; :func:`evaluate_inputs` takes them
validated (:class:`~geo_eval.inputs.validate.Inputs`, as :func:`geo_eval.io.load_inputs` reads a dataset
directory). Both run the same steps — evaluation, raster evidence, land flags, renewal blocks — and
return a :class:`Result`, whose tables have the columns of the output files and whose
:meth:`Result.write` writes exactly what ``geo-eval evaluate`` writes (it calls this too, through
:func:`geo_eval.io.run.run`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from geo_eval.errors import DatasetError, FatalInputError
from geo_eval.inputs.corrections import CORRECTIONS_FILE, CorrectionTable, apply_corrections, correction_table
from geo_eval.inputs.problems import Problems
from geo_eval.inputs.validate import Inputs, cross_check_keys
from geo_eval.landuse.evidence import Raster, builtup_fraction
from geo_eval.landuse.flags import FlagResult, check_delay_causes, flag_parcels
from geo_eval.landuse.renewal import RenewalBlocks, renewal_blocks
from geo_eval.rating.evaluate import Evaluation, evaluate
from geo_eval.rating.scheme import Scheme, load_scheme

__all__ = ["BuiltUp", "Result", "evaluate_frames", "evaluate_inputs", "failed_checks"]

BuiltUp = str | Path | Raster | tuple[Any, ...]
"""A built-up raster: a file path, a :class:`~geo_eval.landuse.evidence.Raster`, or a tuple
``(values, transform, crs)`` or ``(values, transform, crs, nodata)`` (a 2-D array, an
``affine.Affine`` and anything pyproj reads as a CRS, e.g. ``"EPSG:4528"``)."""

FILE_LABELS = {"parcels": "parcels", "enterprises": "enterprises", "leases": "leases"}
"""How problems name tables handed over as frames (``file`` in ``Result.problems``), unless ``files=`` says."""


@dataclass(frozen=True, eq=False, repr=False)
class Result:
    """One year's evaluation with its flags and blocks.

    The tables have the columns of the files ``geo-eval evaluate`` writes: :attr:`enterprises`
    (``enterprises.csv``), :attr:`parcels` (``parcels.gpkg``, layer ``parcels``), :attr:`flags`
    (``flags.csv``), :attr:`blocks` (``renewal_blocks.gpkg``), :attr:`problems` (``exceptions.csv``),
    :attr:`benchmarks` (``benchmarks.csv``) and :attr:`policies` (``policies.csv``); :meth:`write` writes
    all of them, the workbooks and the manifest. :attr:`evaluation`, :attr:`flag_result` and
    :attr:`renewal` are the objects the core returned, for programs that want more than the files carry.
    """

    evaluation: Evaluation
    flag_result: FlagResult | None = None
    """``None`` when evaluated with ``flags=False`` (then :attr:`flags` and :attr:`blocks` are ``None``)."""
    renewal: RenewalBlocks | None = None
    sources: Mapping[str, object] = field(default_factory=dict)
    """The inputs that are files (paths) or database sources, hashed into the manifest by :meth:`write`."""
    corrections: Mapping[str, object] | None = None
    """With corrections: the manifest's ``corrections`` (``path``, ``sha256``, ``count``, ``applied``,
    ``rejected``); the applied list is ``evaluation``'s inputs' (``Result.problems``, code ``correction_applied``)."""

    @property
    def year(self) -> int:
        """The evaluation year."""
        return self.evaluation.year

    @property
    def scheme(self) -> Scheme:
        """The scheme evaluated with."""
        return self.evaluation.scheme

    @cached_property
    def enterprises(self) -> pd.DataFrame:
        """One row per enterprise, the columns of ``enterprises.csv`` in its order."""
        from geo_eval.io.writers import enterprise_frame

        return enterprise_frame(self.evaluation)

    @cached_property
    def parcels(self) -> gpd.GeoDataFrame:
        """One row per parcel: the attributes of ``parcels.gpkg`` layer ``parcels`` and the geometry."""
        from geo_eval.io.writers import parcel_layer_columns

        cols = parcel_layer_columns(self.evaluation, self.flag_result, self.renewal)
        p = self.evaluation.parcels
        frame = pd.DataFrame(cols, index=p.index).reset_index(drop=True)
        return gpd.GeoDataFrame(frame, geometry=p.geometry.to_numpy(), crs=p.crs)

    @property
    def flags(self) -> pd.DataFrame | None:
        """One row per parcel and flag (``flags.csv``)."""
        return None if self.flag_result is None else self.flag_result.flags

    @property
    def blocks(self) -> gpd.GeoDataFrame | None:
        """The renewal blocks and scattered plots (``renewal_blocks.gpkg``)."""
        return None if self.renewal is None else self.renewal.blocks.reset_index(drop=True)

    @cached_property
    def problems(self) -> pd.DataFrame:
        """Every problem found in the inputs, fatal first, then by file and row (``exceptions.csv``)."""
        return self.evaluation.problems.frame()

    @property
    def benchmarks(self) -> pd.DataFrame:
        """The benchmark value of each indicator per ranking unit and group (``benchmarks.csv``)."""
        return self.evaluation.benchmarks

    @cached_property
    def policies(self) -> pd.DataFrame | None:
        """One row per enterprise and differentiated-policy measure of its class (``policies.csv``);
        ``None`` when the scheme has no ``[[policies]]``."""
        from geo_eval.io.writers import policy_frame

        return policy_frame(self.evaluation)

    @property
    def notes(self) -> list[str]:
        """Fallbacks of the scoring and of the flag rules (``manifest.json``: ``fallbacks``, ``flags.notes``)."""
        return list(self.evaluation.notes) + (self.flag_result.notes if self.flag_result else [])

    def write(
        self,
        out_dir: str | Path,
        *,
        overwrite: bool = False,
        extra_manifest: dict[str, object] | None = None,
        before_commit: Callable[[Path, dict[str, object]], None] | None = None,
        report: bool = True,
    ) -> dict[str, object]:
        """Write every output into ``out_dir`` (all or nothing, as ``geo-eval evaluate``); returns the
        manifest. ``before_commit`` runs when the files are complete, before they replace ``out_dir``
        (see :func:`geo_eval.io.writers.write_outputs`); ``report=False``: no ``report.html``."""
        from geo_eval.io.writers import write_outputs

        extra = {"corrections": dict(self.corrections)} if self.corrections is not None else {}
        return write_outputs(
            self.evaluation,
            Path(out_dir),
            overwrite=overwrite,
            inputs=self.sources,
            flags=self.flag_result,
            blocks=self.renewal,
            extra_manifest={**extra, **(extra_manifest or {})},
            before_commit=before_commit,
            report=report,
        )

    def __repr__(self) -> str:
        ev = self.evaluation
        flags = "off" if self.flag_result is None else len(self.flag_result.flags)
        return (
            f"Result(year={ev.year}, scheme={ev.scheme.name!r}, enterprises={len(ev.enterprises)}, "
            f"parcels={len(ev.parcels)}, flags={flags}, problems={ev.problems.count()})"
        )


def failed_checks(inputs: Inputs, scheme: Scheme, *, flags: bool = True) -> Problems:
    """The problems of inputs with fatal problems, completed by the checks that need no evaluation.

    Such inputs are never evaluated, so the cross-checks an evaluation makes are run on the keys
    (:func:`~geo_eval.inputs.validate.cross_check_keys`), and with the flags the delay causes are checked
    (fatal too): one report lists everything a user has to fix. ``inputs`` are left as they are.
    """
    checked = dataclasses.replace(inputs, problems=inputs.problems.copy())
    cross_check_keys(checked)
    if flags and scheme.flags.idle.enabled:
        check_delay_causes(checked.parcels, checked.problems, checked.files.get("parcels", "parcels"))
    return checked.problems


def refuse_fatal(inputs: Inputs, scheme: Scheme, *, flags: bool = True) -> None:
    """Raise :class:`~geo_eval.errors.FatalInputError` with the whole report if the inputs have fatal problems."""
    if inputs.problems.has_fatal:
        raise FatalInputError(failed_checks(inputs, scheme, flags=flags).frame())


def evaluate_inputs(
    inputs: Inputs,
    scheme: Scheme,
    *,
    previous: pd.DataFrame | None = None,
    builtup: BuiltUp | None = None,
    flags: bool = True,
    sources: Mapping[str, object] | None = None,
    timings: Mapping[str, float] | None = None,
    corrections: CorrectionTable | pd.DataFrame | None = None,
) -> Result:
    """Evaluate validated inputs, then (unless ``flags=False``) read the built-up evidence, flag the
    parcels and group the renewal candidates into blocks.

    ``previous`` is last year's ``enterprises.csv`` as :func:`geo_eval.io.read_previous` gives it;
    ``sources`` the input files for the manifest; ``timings`` the seconds of earlier steps (loading),
    recorded with the evaluation's. ``corrections`` (a corrections table: :func:`geo_eval.io.read_corrections`,
    or a DataFrame with the columns of ``corrections.csv``) are applied on top of the inputs first
    (:func:`~geo_eval.inputs.corrections.apply_corrections`; ``inputs`` stay as they are). Raises
    :class:`~geo_eval.errors.FatalInputError`, carrying every problem, when the inputs have a fatal problem
    or the flags find one (an invalid delay cause).
    """
    refuse_fatal(inputs, scheme, flags=flags)
    sources = dict(sources or {})
    summary = None
    if corrections is not None:
        table = corrections if isinstance(corrections, CorrectionTable) else correction_table(corrections)
        corrected = apply_corrections(inputs, table)
        inputs, summary, sources["corrections"] = corrected.inputs, corrected.summary, table
    ev = evaluate(inputs, scheme, previous=previous)
    ev.timings.update(timings or {})
    if not flags:
        return Result(ev, sources=sources, corrections=summary)
    t = time.perf_counter()
    evidence = None if builtup is None else builtup_fraction(ev.parcels.geometry, _raster(builtup))
    ev.timings["builtup_zonal"] = time.perf_counter() - t
    t = time.perf_counter()
    fr = flag_parcels(ev, scheme.flags, evaluation_date=inputs.evaluation_date, previous=previous, builtup=evidence)
    ev.timings["flags"] = time.perf_counter() - t
    if ev.problems.has_fatal:
        raise FatalInputError(ev.problems.frame())
    t = time.perf_counter()
    blocks = _blocks(ev, fr, scheme)
    ev.timings["blocks"] = time.perf_counter() - t
    return Result(ev, fr, blocks, sources=sources, corrections=summary)


def _raster(builtup: BuiltUp) -> Raster:
    if isinstance(builtup, Raster):
        return builtup
    if isinstance(builtup, str | Path):
        from geo_eval.io.raster import read_raster

        return read_raster(builtup)
    if not isinstance(builtup, tuple) or len(builtup) not in (3, 4):
        raise DatasetError("builtup 应为栅格文件路径、Raster，或 (数组, 仿射变换, 坐标系[, 无数据值]) 元组")
    values, transform, crs, *nodata = builtup
    return Raster(np.asarray(values), transform, CRS.from_user_input(crs), nodata[0] if nodata else None)


def _blocks(ev: Evaluation, fr: FlagResult, scheme: Scheme) -> RenewalBlocks:
    """The renewal blocks of the flagged candidates, in the measuring plane."""
    cand = fr.flags.loc[fr.flags["flag"] == "renewal_candidate", "parcel_id"].unique()
    geoms = ev.plane if ev.plane is not None else ev.parcels.geometry.to_crs(ev.area_crs)
    plane = gpd.GeoDataFrame(ev.parcels.drop(columns=ev.parcels.geometry.name), geometry=geoms)
    return renewal_blocks(
        plane,
        pd.Index(cand),
        tolerance_m=scheme.flags.blocks.tolerance_m,
        min_area_mu=scheme.flags.blocks.min_area_mu,
        enterprises=ev.enterprises,
    )


def evaluate_frames(
    parcels: gpd.GeoDataFrame,
    enterprises: pd.DataFrame,
    leases: pd.DataFrame | None = None,
    *,
    scheme: Scheme | str | Path,
    year: int,
    evaluation_date: dt.date | str | None = None,
    previous: Result | pd.DataFrame | None = None,
    builtup: BuiltUp | None = None,
    flags: bool = True,
    files: Mapping[str, str] | None = None,
    corrections: pd.DataFrame | None = None,
) -> Result:
    """Evaluate one year from frames, as ``geo-eval evaluate`` evaluates a dataset directory.

    ``parcels`` is a GeoDataFrame with a CRS, ``enterprises`` and ``leases`` DataFrames; their columns
    may carry the data contract's Chinese headers, English names or aliases, with units in brackets
    (``税收（万元）``), as in the files. A frame read with ``header=None`` (a workbook's title rows
    kept) has its header row found as in a file. Problems name rows as a file would: a parcel by its
    position (first = 1); a table row by its line in a file whose first line is the header (first row
    = 2), or for a ``header=None`` frame by the workbook's row number; and tables by ``files``
    (default: ``parcels``, ``enterprises``, ``leases``).

    ``scheme`` is a :class:`~geo_eval.rating.scheme.Scheme`, a preset name or a TOML path; ``previous`` last
    year's :class:`Result` or its ``enterprises.csv`` as a DataFrame; ``builtup`` the built-up raster
    (see :data:`BuiltUp`); ``corrections`` a corrections table with the columns of ``corrections.csv``
    (:data:`~geo_eval.inputs.corrections.CORRECTION_COLUMNS`), applied on top of the frames (problems name it
    ``files["corrections"]``, default ``corrections.csv``). Warnings are in ``Result.problems``; fatal problems raise one
    :class:`~geo_eval.errors.FatalInputError` whose ``frame`` lists every problem. The frames are
    not modified.
    """
    from geo_eval.io.loaders import previous_frame, validated_inputs
    from geo_eval.io.tables import frame_table
    from geo_eval.io.vector import parcel_table

    labels = {**FILE_LABELS, **(files or {})}
    if not isinstance(parcels, gpd.GeoDataFrame):
        raise DatasetError(f"{labels['parcels']}：宗地应为带几何列的 GeoDataFrame（如 geopandas.read_file 所读）")
    pframe = _index_as_column("parcels", parcels)
    attrs = pd.DataFrame({c: pframe[c] for c in pframe.columns if c != pframe.geometry.name})
    ptable = parcel_table(attrs, labels["parcels"])
    geoms = gpd.GeoSeries(pframe.geometry.to_numpy(), crs=pframe.crs)
    etable = frame_table("enterprises", _index_as_column("enterprises", enterprises), labels["enterprises"])
    ltable = None if leases is None else frame_table("leases", _index_as_column("leases", leases), labels["leases"])
    date = dt.date.fromisoformat(evaluation_date) if isinstance(evaluation_date, str) else evaluation_date
    inputs = validated_inputs(ptable, geoms, etable, ltable, year=year, evaluation_date=date)
    sch = scheme if isinstance(scheme, Scheme) else load_scheme(scheme)
    prev = None
    if isinstance(previous, Result):
        prev = previous_frame(previous.enterprises, f"上年结果（{previous.year} 年）")
    elif previous is not None:
        prev = previous_frame(previous)
    sources: dict[str, object] = {"builtup": Path(builtup)} if isinstance(builtup, str | Path) else {}
    table = None if corrections is None else correction_table(corrections, labels.get("corrections", CORRECTIONS_FILE))
    return evaluate_inputs(inputs, sch, previous=prev, builtup=builtup, flags=flags, sources=sources, corrections=table)


def _index_as_column(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a named index that is a contract field (``set_index("uscc")``) back as a column."""
    from geo_eval.io.tables import map_headers

    name = frame.index.name
    if name is None or name in frame.columns or not map_headers(table, [name])[0]:
        return frame
    return frame.reset_index()

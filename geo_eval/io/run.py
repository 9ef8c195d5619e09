"""One evaluation run from a dataset directory to OUT_DIR: the CLI and the service both call this."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from geo_eval.errors import DatasetError, OutputExistsError
from geo_eval.evaluate import Evaluation, evaluate
from geo_eval.flags import FlagResult, check_delay_causes, flag_parcels
from geo_eval.io.loaders import load_inputs, read_previous
from geo_eval.io.outdir import kept_aside, tidy
from geo_eval.io.writers import write_outputs
from geo_eval.problems import FATAL, Problems
from geo_eval.renewal import RenewalBlocks, renewal_blocks
from geo_eval.scheme import Scheme
from geo_eval.storage.base import RunRecord
from geo_eval.validate import Inputs, cross_check_keys

if TYPE_CHECKING:
    from geo_eval.db.store import PostgresStore

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced (also written to OUT_DIR)."""

    evaluation: Evaluation
    flags: FlagResult | None
    blocks: RenewalBlocks | None
    manifest: dict[str, object]
    notes: list[str] = field(default_factory=list)
    stored: RunRecord | None = None
    """With ``db``: the run as registered and stored in the database."""
    tidied: list[str] = field(default_factory=list)
    """What was cleaned up after earlier runs into OUT_DIR that were killed (:func:`geo_eval.io.outdir.tidy`)."""


class FatalInputError(DatasetError):
    """The inputs have fatal problems; ``problems`` holds the full report frame."""

    def __init__(self, problems: pd.DataFrame) -> None:
        n = int((problems["severity"] == FATAL).sum())
        super().__init__(f"数据有 {n} 个致命问题，评价未进行", [problems])
        self.frame = problems


def _builtup(ev: Evaluation, path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    from geo_eval.evidence import builtup_fraction
    from geo_eval.io.raster import read_raster

    return builtup_fraction(ev.parcels.geometry, read_raster(path))


def failed_checks(inputs: Inputs, scheme: Scheme, *, flags: bool = True) -> Problems:
    """The problems of inputs with fatal problems, completed by the checks that need no evaluation.

    Such inputs are never evaluated, so the cross-checks an evaluation makes are run on the keys
    (:func:`~geo_eval.validate.cross_check_keys`), and with the flags the delay causes are checked
    (fatal too): one report lists everything a user has to fix.
    """
    cross_check_keys(inputs)
    if flags and scheme.flags.idle.enabled:
        check_delay_causes(inputs.parcels, inputs.problems, inputs.files.get("parcels", "parcels"))
    return inputs.problems


def check_dataset(dataset_dir: Path, scheme: Scheme, *, flags: bool = True) -> Problems:
    """Every problem of a dataset (loading, cross-checks, flag inputs) without writing anything."""
    inputs, _, spec = load_inputs(dataset_dir)
    if inputs.problems.has_fatal:
        return failed_checks(inputs, scheme, flags=flags)
    ev = evaluate(inputs, scheme)
    if flags:
        builtup = None
        if spec.layers and spec.layers.builtup:
            builtup = _builtup(ev, Path(dataset_dir) / spec.layers.builtup)
        flag_parcels(ev, scheme.flags, evaluation_date=spec.evaluation_date, builtup=builtup)
    return ev.problems


def run(
    dataset_dir: Path,
    scheme: Scheme,
    out_dir: Path,
    *,
    previous_dir: Path | None = None,
    overwrite: bool = False,
    flags: bool = True,
    db: str | None = None,
    actor: str = "cli",
) -> RunResult:
    """Load, validate, evaluate, flag and write; raises :class:`FatalInputError` on fatal problems.

    With ``db`` (a PostgreSQL URL) the run is also stored in that PostGIS database, in one transaction
    that commits once OUT_DIR is in place (:func:`_write_and_store`): a failure leaves neither.
    The database is checked (reachable, PostGIS, schema version) before anything is computed; ``actor``
    is who the registration's audit entry names. What killed runs left beside OUT_DIR is tidied first.
    """
    t0 = time.perf_counter()
    tidied = tidy(out_dir)
    if Path(out_dir).exists() and not overwrite:
        raise OutputExistsError(f"输出目录 {out_dir} 已存在；如要覆盖，请加 --overwrite")
    store = None
    if db is not None:
        from geo_eval.db.store import PostgresStore

        store = PostgresStore(db)
        store.status()  # fails now, with the one-line message, if the database is not usable
        store.close()  # reopened for publishing, after the evaluation
    inputs, paths, spec = load_inputs(dataset_dir)
    load_s = time.perf_counter() - t0
    if inputs.problems.has_fatal:
        raise FatalInputError(failed_checks(inputs, scheme, flags=flags).frame())
    prev = None
    if previous_dir is not None:
        prev = read_previous(previous_dir)
        paths["previous"] = Path(previous_dir) / "enterprises.csv"
    ev = evaluate(inputs, scheme, previous=prev)
    ev.timings["load_validate"] = load_s
    fr: FlagResult | None = None
    blocks: RenewalBlocks | None = None
    if flags:
        t = time.perf_counter()
        builtup_path = Path(dataset_dir) / spec.layers.builtup if spec.layers and spec.layers.builtup else None
        if builtup_path is not None:
            paths["builtup"] = builtup_path
        builtup = _builtup(ev, builtup_path)
        ev.timings["builtup_zonal"] = time.perf_counter() - t
        t = time.perf_counter()
        fr = flag_parcels(ev, scheme.flags, evaluation_date=spec.evaluation_date, previous=prev, builtup=builtup)
        ev.timings["flags"] = time.perf_counter() - t
        if ev.problems.has_fatal:
            raise FatalInputError(ev.problems.frame())
        t = time.perf_counter()
        cand = fr.flags.loc[fr.flags["flag"] == "renewal_candidate", "parcel_id"].unique()
        geoms = ev.plane if ev.plane is not None else ev.parcels.geometry.to_crs(ev.area_crs)
        plane = gpd.GeoDataFrame(ev.parcels.drop(columns=ev.parcels.geometry.name), geometry=geoms)
        blocks = renewal_blocks(
            plane,
            pd.Index(cand),
            tolerance_m=scheme.flags.blocks.tolerance_m,
            min_area_mu=scheme.flags.blocks.min_area_mu,
            enterprises=ev.enterprises,
        )
        ev.timings["blocks"] = time.perf_counter() - t
    extra: dict[str, object] = {"dataset": str(dataset_dir), "previous": str(previous_dir or "")}
    if store is not None:
        extra["database"] = store.database
    try:
        manifest, stored = _write_and_store(
            ev,
            Path(out_dir),
            overwrite=overwrite,
            inputs=paths,
            flags=fr,
            blocks=blocks,
            extra=extra,
            store=store,
            actor=actor,
        )
    finally:
        if store is not None:
            store.close()
    log.info("run finished in %.1f s", time.perf_counter() - t0)
    notes = list(ev.notes) + (fr.notes if fr else [])
    return RunResult(ev, fr, blocks, manifest, notes=notes, stored=stored, tidied=tidied)


def _write_and_store(
    ev: Evaluation,
    out_dir: Path,
    *,
    overwrite: bool,
    inputs: Mapping[str, object],
    flags: FlagResult | None,
    blocks: RenewalBlocks | None,
    extra: dict[str, object],
    store: PostgresStore | None,
    actor: str,
) -> tuple[dict[str, object], RunRecord | None]:
    """Write OUT_DIR and, with ``store``, publish the run there, so that both change or neither.

    The run is staged in one database transaction once its files are written (into OUT_DIR's temporary
    directory); the old OUT_DIR is then set aside and the new one renamed in place; the transaction
    commits after that, and only then is the old OUT_DIR deleted. A failing swap rolls the transaction
    back and puts the old OUT_DIR back; a failing commit puts it back too (:mod:`geo_eval.io.outdir`).
    """
    with contextlib.ExitStack() as stack:
        swap = stack.enter_context(kept_aside(out_dir))  # left last: after the commit
        publication = None
        if store is not None:
            from geo_eval.db.publish import Publication

            publication = stack.enter_context(
                Publication(store, ev, out_dir=out_dir, flags=flags, blocks=blocks, actor=actor)
            )

        def before_commit(files_dir: Path, manifest: dict[str, object]) -> None:
            if publication is not None:
                publication.stage(files_dir, manifest)
            swap.set_aside()  # the next step of write_outputs renames the new OUT_DIR in place

        manifest = write_outputs(
            ev,
            out_dir,
            overwrite=overwrite,
            inputs=inputs,
            flags=flags,
            blocks=blocks,
            extra_manifest=extra,
            before_commit=before_commit,
        )
    if publication is None:
        return manifest, None
    manifest["database_timings_s"] = {k: round(v, 3) for k, v in publication.timings.items()}
    return manifest, publication.record

"""One evaluation run from a dataset directory to OUT_DIR: the CLI and the service both call this.

Read the files (:func:`~geo_eval.io.loaders.load_inputs`), evaluate them
(:func:`geo_eval.pipeline.evaluate_inputs`, the steps :func:`geo_eval.evaluate_frames` runs too) and
write the result (:meth:`geo_eval.pipeline.Result.write`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from geo_eval.errors import FatalInputError, GeoEvalError, OutputExistsError
from geo_eval.inputs.corrections import CorrectionTable
from geo_eval.inputs.problems import Problems
from geo_eval.io.corrections import read_corrections
from geo_eval.io.dataset import DatasetSpec
from geo_eval.io.loaders import load_inputs, read_previous
from geo_eval.io.outdir import kept_aside, tidy
from geo_eval.io.runtiles import store_run_tiles
from geo_eval.landuse.evidence import builtup_fraction
from geo_eval.landuse.flags import FlagResult, flag_parcels
from geo_eval.landuse.renewal import RenewalBlocks
from geo_eval.pipeline import Result, evaluate_inputs, failed_checks, refuse_fatal
from geo_eval.rating.evaluate import Evaluation, evaluate
from geo_eval.rating.scheme import Scheme
from geo_eval.storage.base import RunRecord

__all__ = ["FatalInputError", "RunResult", "TileJob", "check_dataset", "failed_checks", "run"]

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
    tile_job: TileJob | None = None
    """With ``db`` and ``tiles``: the cutting of the run's map tiles, left to the caller (:class:`TileJob`)."""


@dataclass(frozen=True)
class TileJob:
    """The map tiles of a run just stored in PostGIS, cut from its OUT_DIR and stored beside it when called
    (:func:`geo_eval.io.runtiles.store_run_tiles`): after the caller has let go of the :class:`RunResult`,
    whose evaluation held beside the cut made a 1M-parcel ``evaluate --db`` peak at 9.2 GB instead of 5.7."""

    db: str
    record: RunRecord
    out_dir: Path

    def __call__(self, progress: Callable[[str], None] | None = None) -> str:
        """Cut and store the tiles; what became of them (cut and stored, or why not), for the user."""
        from geo_eval.db.store import PostgresStore

        if progress is not None:
            progress("正在切割地图瓦片并存入数据库（100 万宗地约需数分钟）……")
        try:
            store = PostgresStore(self.db)
        except GeoEvalError as exc:  # the run is stored; its tiles are then cut per request
            log.warning("tiles of run %s not cut: %s", self.record.run_id, exc)
            return f"地图瓦片未能存入数据库（服务将按需切割，较慢）：{exc}"
        try:
            return store_run_tiles(store, self.record, self.out_dir)[1]
        finally:
            store.close()


def check_dataset(dataset_dir: Path, scheme: Scheme, *, flags: bool = True) -> Problems:
    """Every problem of a dataset (loading, cross-checks, flag inputs) without writing anything."""
    inputs, _, spec = load_inputs(dataset_dir)
    if inputs.problems.has_fatal:
        return failed_checks(inputs, scheme, flags=flags)
    ev = evaluate(inputs, scheme)
    if flags:
        builtup = None
        if spec.layers and spec.layers.builtup:
            from geo_eval.io.raster import read_raster  # rasterio only when there is a raster

            builtup = builtup_fraction(ev.parcels.geometry, read_raster(Path(dataset_dir) / spec.layers.builtup))
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
    report: bool = True,
    corrections: Path | None = None,
    supersede: str = "",
    tiles: bool = False,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Load, validate, evaluate, flag and write; raises :class:`~geo_eval.errors.FatalInputError` on fatal problems.

    With ``db`` (a PostgreSQL URL) the run is also stored in that PostGIS database, in one transaction
    that commits once OUT_DIR is in place (:func:`_write_and_store`): a failure leaves neither.
    The database is checked (reachable, PostGIS, schema version) before anything is computed; ``actor``
    is who the registration's audit entry names. What killed runs left beside OUT_DIR is tidied first.
    ``report=False`` leaves out the annual report ``report.html``. ``corrections`` (a ``corrections.csv``; by
    default ``[corrections] path`` of ``dataset.toml``) are applied on top of the inputs, which stay as they are.
    ``supersede`` (a reason): with ``db``, the run may replace the year's final (已发布) run.
    ``tiles``: with ``db``, the result carries the cutting of the run's map tiles (:attr:`RunResult.tile_job`),
    which the caller runs once it has let go of the result (``geo-eval evaluate --db`` and the service's
    ``POST /api/runs`` do; :func:`geo_eval.io.runtiles.store_run_tiles`).
    ``progress`` is told, in words for the user, each step as it starts (a province's run takes minutes).
    """
    t0 = time.perf_counter()
    say = progress or (lambda _message: None)
    tidied = tidy(out_dir)
    if Path(out_dir).exists() and not overwrite:
        raise OutputExistsError(f"输出目录 {out_dir} 已存在；如要覆盖，请加 --overwrite")
    store = None
    if db is not None:
        from geo_eval.db.store import PostgresStore

        store = PostgresStore(db)
        store.status()  # fails now, with the one-line message, if the database is not usable
        store.close()  # reopened for publishing, after the evaluation
    say("正在读取并校验输入数据……")
    inputs, paths, spec = load_inputs(dataset_dir)
    load_s = time.perf_counter() - t0
    refuse_fatal(inputs, scheme, flags=flags)
    prev = None
    if previous_dir is not None:
        prev = read_previous(previous_dir)
        paths["previous"] = Path(previous_dir) / "enterprises.csv"
    builtup = None
    if flags and spec.layers and spec.layers.builtup:
        builtup = paths["builtup"] = Path(dataset_dir) / spec.layers.builtup
    table = _corrections(dataset_dir, spec, corrections)
    say("正在评价、标记地块、划定连片改造区块……" if flags else "正在评价……")
    result = evaluate_inputs(
        inputs,
        scheme,
        previous=prev,
        builtup=builtup,
        flags=flags,
        sources=paths,
        timings={"load_validate": load_s},
        corrections=table,
    )
    extra: dict[str, object] = {"dataset": str(dataset_dir), "previous": str(previous_dir or "")}
    if store is not None:
        extra["database"] = store.database
    files = "排名表、宗地图层、报告" if report else "排名表、宗地图层"
    say(f"正在写出结果文件（{files}）" + ("并存入数据库……" if store is not None else "……"))
    try:
        manifest, stored = _write_and_store(
            result,
            Path(out_dir),
            overwrite=overwrite,
            extra=extra,
            store=store,
            actor=actor,
            report=report,
            supersede=supersede,
        )
    finally:
        if store is not None:
            store.close()
    log.info("run finished in %.1f s", time.perf_counter() - t0)
    fr, blocks = result.flag_result, result.renewal
    job = TileJob(db, stored, Path(out_dir)) if tiles and db is not None and stored is not None else None
    return RunResult(
        result.evaluation, fr, blocks, manifest, notes=result.notes, stored=stored, tidied=tidied, tile_job=job
    )


def _corrections(dataset_dir: Path, spec: DatasetSpec, path: Path | None) -> CorrectionTable | None:
    """The corrections table given (``--corrections``), else the one ``dataset.toml`` names, else none."""
    if path is not None:
        return read_corrections(Path(path))
    if spec.corrections is None:
        return None
    return read_corrections(Path(dataset_dir) / spec.corrections.path, display=spec.corrections.path)


def _write_and_store(
    result: Result,
    out_dir: Path,
    *,
    overwrite: bool,
    extra: dict[str, object],
    store: PostgresStore | None,
    actor: str,
    report: bool = True,
    supersede: str = "",
) -> tuple[dict[str, object], RunRecord | None]:
    """Write OUT_DIR (:meth:`Result.write`) and, with ``store``, publish the run there, so that both
    change or neither.

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
                Publication(
                    store,
                    result.evaluation,
                    out_dir=out_dir,
                    flags=result.flag_result,
                    blocks=result.renewal,
                    actor=actor,
                    supersede=supersede,
                )
            )

        def before_commit(files_dir: Path, manifest: dict[str, object]) -> None:
            if publication is not None:
                publication.stage(files_dir, manifest)
            swap.set_aside()  # the next step of write_outputs renames the new OUT_DIR in place

        manifest = result.write(
            out_dir, overwrite=overwrite, extra_manifest=extra, before_commit=before_commit, report=report
        )
    if publication is None:
        return manifest, None
    manifest["database_timings_s"] = {k: round(v, 3) for k, v in publication.timings.items()}
    return manifest, publication.record

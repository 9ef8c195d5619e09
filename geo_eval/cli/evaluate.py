"""``geo-eval evaluate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from geo_eval.cli.options import DatasetDir, SchemeOpt, err, grade_table, out, print_fatal
from geo_eval.errors import GeoEvalError
from geo_eval.evaluate import evaluate as run_evaluation
from geo_eval.io import load_inputs, read_previous, write_outputs
from geo_eval.problems import FATAL, WARNING
from geo_eval.scheme import DEFAULT_SCHEME, load_scheme


def evaluate(
    dataset_dir: DatasetDir,
    out_dir: Annotated[Path, typer.Option("--out", help="输出目录")],
    scheme: SchemeOpt = DEFAULT_SCHEME,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="上年评价的输出目录（读取其 enterprises.csv）")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="输出目录已存在时覆盖")] = False,
) -> None:
    """Evaluate DATASET_DIR with a scheme and write every output into OUT_DIR."""
    try:
        t0 = time.perf_counter()
        sch = load_scheme(scheme)
        if out_dir.exists() and not overwrite:
            err.print(f"[red]输出目录 {out_dir} 已存在；如要覆盖，请加 --overwrite[/]")
            raise typer.Exit(2)
        t = time.perf_counter()
        inputs, paths, spec = load_inputs(dataset_dir)
        load_s = time.perf_counter() - t
        problems = inputs.problems.frame()
        if (problems["severity"] == FATAL).any():
            print_fatal(problems, dataset=dataset_dir)
            raise typer.Exit(2)
        prev = read_previous(previous) if previous is not None else None
        if previous is not None:
            paths["previous"] = previous / "enterprises.csv"
        elif sch.needs_previous:
            err.print(
                f"[yellow]注意：方案 {sch.name} 的基准值需要上年结果（--previous），未提供，改用本年均值，并记入 manifest.json。[/]"
            )
        ev = run_evaluation(inputs, sch, previous=prev)
        ev.timings["load_validate"] = load_s
        manifest = write_outputs(
            ev,
            out_dir,
            overwrite=overwrite,
            inputs=paths,
            extra_manifest={"dataset": str(dataset_dir), "previous": str(previous or "")},
        )
    except GeoEvalError as exc:
        err.print(f"[red]错误：{exc}[/]")
        raise typer.Exit(2) from None
    counts = manifest["grades"]
    assert isinstance(counts, dict)
    out.print(grade_table(counts, f"{spec.year}年度评价结果（方案：{sch.title}）"))
    exc_counts = ev.problems.frame()["severity"].value_counts()
    out.print(f"数据问题：警告 {int(exc_counts.get(WARNING, 0))} 条，详见 {out_dir / 'exceptions.csv'}")
    if ev.notes:
        out.print(f"基准值说明：{len(ev.notes)} 条（见 manifest.json 的 fallbacks）")
    out.print(
        f"输出目录：{out_dir}（enterprises.csv、parcels.gpkg、rankings.xlsx、exceptions.csv、benchmarks.csv、manifest.json）"
    )
    out.print(f"用时 {time.perf_counter() - t0:.1f} 秒")

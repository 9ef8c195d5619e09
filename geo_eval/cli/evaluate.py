"""``geo-eval evaluate``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo_eval.cli.options import DatasetDir, SchemeOpt, err, grade_table, out, print_fatal
from geo_eval.errors import GeoEvalError
from geo_eval.inputs.problems import WARNING
from geo_eval.io.memory import release_memory
from geo_eval.io.run import FatalInputError, RunResult, run
from geo_eval.rating.scheme import DEFAULT_SCHEME, Scheme, load_scheme


def evaluate(
    dataset_dir: DatasetDir,
    out_dir: Annotated[Path, typer.Option("--out", help="输出目录")],
    scheme: SchemeOpt = DEFAULT_SCHEME,
    previous: Annotated[
        Path | None, typer.Option("--previous", help="上年评价的输出目录（读取其 enterprises.csv）")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="输出目录已存在时覆盖")] = False,
    no_flags: Annotated[bool, typer.Option("--no-flags", help="不做闲置/低效地块标记和连片区块")] = False,
    no_report: Annotated[bool, typer.Option("--no-report", help="不写年度评价报告 report.html")] = False,
    corrections: Annotated[
        Path | None,
        typer.Option(
            "--corrections",
            show_default=False,
            help="更正表 corrections.csv：在输入数据之上执行已认定的更正（不改动输入文件）；"
            "缺省取 dataset.toml 中 [corrections] path",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar="GEO_EVAL_DATABASE_URL",
            show_default=False,
            help="同时把评价结果存入 PostgreSQL/PostGIS 数据库 postgresql://用户[:密码]@主机:5432/库名"
            "（环境变量 GEO_EVAL_DATABASE_URL；须先运行 geo-eval db init），并登记为最新批次",
        ),
    ] = None,
    supersede: Annotated[
        bool,
        typer.Option(
            "--supersede", help="与 --db 一起：该年度已正式发布时，以本次评价取代之（须用 --reason 说明理由）"
        ),
    ] = False,
    reason: Annotated[str, typer.Option("--reason", help="取代已发布批次的理由")] = "",
) -> None:
    """Evaluate DATASET_DIR with a scheme and write every output into OUT_DIR."""
    t0 = time.perf_counter()
    if supersede and not reason.strip():
        err.print("[red]错误：--supersede 须用 --reason 说明取代已发布批次的理由[/]")
        raise typer.Exit(2)
    try:
        sch = load_scheme(scheme)
        if previous is None and sch.needs_previous:
            err.print(
                f"[yellow]注意：方案 {sch.name} 的基准值需要上年结果（--previous），未提供，改用本年均值，并记入 manifest.json。[/]"
            )
        result = run(
            dataset_dir,
            sch,
            out_dir,
            previous_dir=previous,
            overwrite=overwrite,
            flags=not no_flags,
            db=db,
            report=not no_report,
            corrections=corrections,
            supersede=reason.strip() if supersede else "",
            tiles=True,
            progress=lambda step: err.print(
                f"{step}（已用 {time.perf_counter() - t0:.0f} 秒）", style="dim", markup=False
            ),
        )
    except FatalInputError as exc:
        print_fatal(exc.frame, dataset=dataset_dir)
        raise typer.Exit(2) from None
    except GeoEvalError as exc:
        err.print(f"[red]错误：{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    manifest = _print_result(result, sch, out_dir, report=not no_report)
    stored, job = result.stored, result.tile_job
    del result  # the evaluation is let go before the tiles are cut (a province's run: 9.2 → 5.7 GB at the peak)
    if job is not None:
        release_memory()
    if stored is not None:
        out.print(f"已存入数据库 {manifest.get('database')}：评价批次 {stored.run_id}（已登记为最新批次）")
        if job is not None:
            said = job(
                lambda step: err.print(f"{step}（已用 {time.perf_counter() - t0:.0f} 秒）", style="dim", markup=False)
            )
            out.print(said, markup=False)
        carried = stored.carryover.message(stored.run_id) if stored.carryover else ""
        if carried:
            out.print(carried, markup=False)
    out.print(f"用时 {time.perf_counter() - t0:.1f} 秒")


def _print_result(result: RunResult, sch: Scheme, out_dir: Path, *, report: bool) -> dict[str, object]:
    """What the run produced, for the user (the summary's frames go with this function's locals); the manifest."""
    ev, manifest = result.evaluation, result.manifest
    for note in result.tidied:  # what killed runs into OUT_DIR had left
        err.print(note, style="yellow", markup=False)
    counts = manifest["grades"]
    assert isinstance(counts, dict)
    out.print(grade_table(counts, f"{ev.year}年度评价结果（方案：{sch.title}）"))
    if result.flags is not None:
        f = result.flags.flags
        parcels = f.groupby("flag_label")["parcel_id"].nunique()
        out.print("地块标记：" + "，".join(f"{k} {v} 宗" for k, v in parcels.items()))
    if result.blocks is not None:
        b = result.blocks.blocks
        big = b.loc[b["kind"] == "连片改造区块"]
        out.print(f"连片改造区块：{len(big)} 个，共 {big['area_mu'].sum():.1f} 亩；零星地块 {len(b) - len(big)} 处")
    _print_policies(manifest, sch)
    _print_corrections(manifest)
    exc_counts = ev.problems.frame()["severity"].value_counts()
    out.print(f"数据问题：警告 {int(exc_counts.get(WARNING, 0))} 条，详见 {out_dir / 'exceptions.csv'}")
    if result.notes:
        out.print(f"说明：{len(result.notes)} 条（见 manifest.json 的 fallbacks 和 flags.notes）")
    listed = manifest.get("workbooks")
    books = [str(b) for b in listed] if isinstance(listed, list) else []
    workbooks = (
        "rankings.xlsx" if books == ["rankings.xlsx"] else f"rankings/（{len(books)} 个园区排名表）" if books else ""
    )
    files = "、".join(
        n
        for n in ("enterprises.csv", "parcels.gpkg", workbooks, "exceptions.csv", "benchmarks.csv", "manifest.json")
        if n
    )
    if result.flags is not None:
        files += "、flags.csv、renewal_blocks.gpkg"
    if sch.policies:
        files += "、policies.csv"
    if report:
        files += "、report.html（年度评价报告）"
    out.print(f"输出目录：{out_dir}（{files}）")
    return manifest


def _print_corrections(manifest: dict[str, object]) -> None:
    """How many corrections were applied, and a warning when some were not."""
    c = manifest.get("corrections")
    if not isinstance(c, dict):
        return
    out.print(f"更正：{c['path']} 共 {c['count']} 条，已执行 {c['applied']} 条", markup=False)
    if c["rejected"]:
        err.print(
            f"注意：{c['rejected']} 条更正未执行（与输入不符或填写有误），原因见 exceptions.csv（代码 correction_…）",
            style="yellow",
            markup=False,
        )


def _print_policies(manifest: dict[str, object], sch: Scheme) -> None:
    """The differentiated-policy lists: rows per agency, and a warning for template values."""
    counts = manifest.get("policies")
    if not sch.policies or not isinstance(counts, dict):
        return
    by_agency = counts.get("by_agency") or {}
    out.print("差别化政策清单：" + "，".join(f"{a} {n} 条" for a, n in by_agency.items()))
    templates = [p.label for p in sch.policies if p.is_template]
    if templates:
        err.print(
            f"注意：差别化政策措施 {'、'.join(templates)} 的标准为模板值，须由本市核定后写入方案（docs/schemes.md）。",
            style="yellow",
            markup=False,
        )

"""``geo-eval validate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo_eval.cli.options import MAX_LISTED, DatasetDir, SchemeOpt, err, out, print_fatal, problem_line
from geo_eval.errors import GeoEvalError
from geo_eval.inputs.problems import FATAL, INFO, WARNING
from geo_eval.io.run import check_dataset
from geo_eval.io.writers import write_csv
from geo_eval.rating.scheme import DEFAULT_SCHEME, load_scheme


def validate(
    dataset_dir: DatasetDir,
    scheme: SchemeOpt = DEFAULT_SCHEME,
    report: Annotated[Path | None, typer.Option("--report", help="把完整问题清单写入此 csv 文件")] = None,
) -> None:
    """Check DATASET_DIR and list every problem; exit code 2 when any is fatal."""
    try:
        # The cross-checks (leases, land, registered areas, flag inputs) run as in an evaluation.
        problems = check_dataset(dataset_dir, load_scheme(scheme)).frame()
    except GeoEvalError as exc:
        err.print(f"[red]错误：{escape(str(exc))}[/]")
        raise typer.Exit(2) from None
    if report is not None:
        write_csv(problems, report)
    counts = problems["severity"].value_counts()
    out.print(
        f"检查完成：致命 {int(counts.get(FATAL, 0))} 条，警告 {int(counts.get(WARNING, 0))} 条，"
        f"提示 {int(counts.get(INFO, 0))} 条" + (f"；完整清单见 {report}" if report else "")
    )
    if counts.get(FATAL, 0):
        print_fatal(problems, dataset=dataset_dir)
        raise typer.Exit(2)
    for r in problems.loc[problems["severity"] == WARNING].head(MAX_LISTED).itertuples():
        out.print(f"  - {escape(problem_line(r))}")

"""``geo-eval report``: the annual report of an evaluated OUT_DIR, as HTML and (with Chromium) PDF."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from geo_eval.cli.options import err, out
from geo_eval.errors import GeoEvalError


def report(
    out_dir: Annotated[
        Path, typer.Argument(help="geo-eval evaluate 的输出目录", exists=True, file_okay=False, dir_okay=True)
    ],
    previous: Annotated[
        Path | None,
        typer.Option("--previous", help="上年评价的输出目录（默认：评价时 --previous 指定的那个）", file_okay=False),
    ] = None,
    park: Annotated[str | None, typer.Option("--park", help="只写这个园区的报告（园区管委会用）")] = None,
    html_file: Annotated[
        Path | None, typer.Option("--out", help="报告文件（默认：输出目录中的 report.html 或 report-园区.html）")
    ] = None,
    pdf_file: Annotated[Path | None, typer.Option("--pdf", help="同时用 Chromium 打印为 PDF（A4）")] = None,
) -> None:
    """Write the annual report of OUT_DIR (HTML; with --pdf also a PDF)."""
    from geo_eval.io.pdf import print_pdf
    from geo_eval.io.report import write_report

    parks = (park,) if park else ()
    try:
        written = write_report(out_dir, out=html_file, previous_dir=previous, parks=parks)
        out.print(f"年度评价报告（HTML）：{written}", markup=False)
        if pdf_file is not None:
            out.print(f"年度评价报告（PDF）：{print_pdf(written, pdf_file)}", markup=False)
    except GeoEvalError as exc:
        err.print(f"[red]错误：{escape(str(exc))}[/]")
        raise typer.Exit(2) from None

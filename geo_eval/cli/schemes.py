"""``geo-eval schemes``."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from geo_eval.cli.options import out
from geo_eval.scheme import DEFAULT_SCHEME, load_scheme, preset_names, preset_text


def schemes(
    show: Annotated[str | None, typer.Option("--show", help="显示某个内置方案的 TOML 全文（可复制后修改）")] = None,
) -> None:
    """List the built-in schemes, or print one of them."""
    if show:
        out.print(preset_text(show), markup=False)
        return
    t = Table(title="内置评价方案（--scheme 名称，或 --scheme 路径/自定义.toml）")
    t.add_column("名称")
    t.add_column("标题")
    t.add_column("分组与指标")
    t.add_column("来源")
    for name in preset_names():
        s = load_scheme(name)
        groups = "；".join(f"{g.label}：" + "、".join(f"{i.key}×{i.weight:g}" for i in g.indicators) for g in s.groups)
        t.add_row(name + ("（默认）" if name == DEFAULT_SCHEME else ""), s.title, groups, s.source)
    out.print(t)

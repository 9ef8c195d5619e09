"""``geo-eval schemes``."""

from __future__ import annotations

from typing import Annotated

import typer

from geo_eval.cli.options import out
from geo_eval.rating.indicators import INDICATORS
from geo_eval.rating.scheme import DEFAULT_SCHEME, load_scheme, preset_names, preset_text


def schemes(
    show: Annotated[str | None, typer.Option("--show", help="显示某个内置方案的 TOML 全文（可复制后修改）")] = None,
) -> None:
    """List the built-in schemes, or print one of them."""
    if show:
        out.print(preset_text(show), markup=False)
        return
    out.print(
        "内置评价方案（用法：--scheme 名称；自定义方案：--scheme 路径/方案.toml；全文：geo-eval schemes --show 名称）"
    )
    for name in preset_names():
        s = load_scheme(name)
        default = "（默认）" if name == DEFAULT_SCHEME else ""
        out.print(f"\n[bold]{name}[/]{default}  {s.title}", markup=True)
        out.print(f"  来源：{s.source}", markup=False)
        for g in s.groups:
            items = "、".join(f"{INDICATORS[i.key].label}{i.weight:g}" for i in g.indicators)
            out.print(f"  {g.label}：{items}", markup=False)

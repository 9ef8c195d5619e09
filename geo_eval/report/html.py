"""The annual report as one self-contained HTML document: the nine sections of
:mod:`geo_eval.report.sections`, one style element, charts as inline SVG, nothing loaded from anywhere.

The page reads in any desktop browser (its Chinese text set in the reader's own fonts) and prints on A4:
each section starts on a new page, a table's header row repeats on every page it spans (``thead``),
rows and charts are not split. :func:`render` is deterministic: the same tables give the same document,
apart from the one line that says when it was generated (``generated_at``).
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass

from geo_eval import __version__
from geo_eval.report.annual import RunTables
from geo_eval.report.charts import Chart

e = html.escape

GENERATED_PREFIX = "报告生成时间："
"""The start of the one line that differs between two reports of the same run."""

STYLE = """
@page { size: A4; margin: 14mm 12mm 15mm 12mm; }
html { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei",
  "Heiti SC", "SimHei", sans-serif; font-size: 10.5pt; color: #1f2328; line-height: 1.55; }
body { margin: 0 auto; max-width: 190mm; padding: 8mm 6mm; background: #fff; }
h1 { font-size: 19pt; margin: 0 0 2mm; } h2 { font-size: 14pt; border-bottom: 2px solid #1f4e79; padding-bottom: 1mm; }
h3 { font-size: 11.5pt; margin: 5mm 0 2mm; }
.cover .sub { font-size: 12pt; color: #444; margin: 0 0 1mm; } .cover p { margin: 1mm 0; }
.generated, .note { color: #666; font-size: 9pt; }
nav.toc ol { columns: 2; padding-left: 6mm; } nav.toc a { color: #1f4e79; text-decoration: none; }
.links { margin: 3mm 0; } .links a { margin-right: 4mm; color: #1f4e79; }
table { border-collapse: collapse; width: 100%; margin: 2mm 0 4mm; font-size: 9pt; }
thead { display: table-header-group; } tr { break-inside: avoid; page-break-inside: avoid; }
th, td { border: 1px solid #c9d1d9; padding: 0.7mm 1.6mm; vertical-align: top; }
th { background: #eef3f8; font-weight: 600; text-align: center; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 700; background: #f6f8fa; } tr.county td { font-weight: 600; }
td.park { padding-left: 5mm; }
td.h0 { background: #fff; } td.h1 { background: #e3eef9; } td.h2 { background: #c5dbf0; }
td.h3 { background: #9dc0e4; } td.h4 { background: #6a9fd4; color: #fff; } td.h5 { background: #3b73b9; color: #fff; }
td.up { color: #1a7f37; } td.down { color: #cf222e; }
figure.chart { margin: 2mm 0 4mm; break-inside: avoid; page-break-inside: avoid; }
figure.chart svg { width: 100%; height: auto; }
figure.chart figcaption { font-size: 8.5pt; color: #555; }
svg.chart-svg * { stroke-linejoin: round; stroke-linecap: butt; }
svg.chart-svg text { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei",
  "WenQuanYi Micro Hei", sans-serif !important; }
ul.compact { margin: 1mm 0 3mm; padding-left: 6mm; }
@media print {
  body { max-width: none; padding: 0; }
  section.report { break-before: page; page-break-before: always; }
  .noprint { display: none; }
  a { color: inherit; text-decoration: none; }
}
"""


def csp_hash(text: str) -> str:
    """``'sha256-…'`` of an inline element's text, for a Content-Security-Policy."""
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


CSP = (
    f"default-src 'none'; style-src 'unsafe-inline'; style-src-elem {csp_hash(STYLE)}; style-src-attr 'unsafe-inline'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
)
"""The report's Content-Security-Policy: its own style element (by hash) and the charts' style attributes,
images only from inside the document; no script, nothing from anywhere else."""


@dataclass(frozen=True)
class Link:
    """A link shown above the report when the service serves it (not printed)."""

    text: str
    href: str


# --- formatting ----------------------------------------------------------------------------------------
def num(value: object, digits: int = 2) -> str:
    """A figure with thousands separators; ``—`` for a missing one.

    >>> num(1234.5678), num(float("nan")), num(None), num(3, 0)
    ('1,234.57', '—', '—', '3')
    """
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v:,.{digits}f}"


def count(value: object) -> str:
    """A count as an integer with thousands separators.

    >>> count(1192.0), count(float("nan"))
    ('1,192', '—')
    """
    return num(value, 0)


def share(value: object) -> str:
    """A share (0.2 → ``20.0%``)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v * 100:.1f}%"


def change(value: object) -> str:
    """A change in per cent with its sign (``+12.3%``)."""
    try:
        v = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "—"
    return "—" if not math.isfinite(v) else f"{v:+.1f}%"


def cell(text: str, cls: str = "") -> str:
    """A table cell of already escaped markup."""
    return f'<td class="{cls}">{text}</td>' if cls else f"<td>{text}</td>"


def table(
    key: str,
    head: Sequence[str] | str,
    rows: Sequence[Sequence[str] | str],
    *,
    numeric_from: int = 1,
    row_classes: Sequence[str] = (),
) -> str:
    """A table; ``head`` is a list of headers (escaped here) or ready ``<tr>`` markup; a row is a list of
    escaped cell texts (numeric from column ``numeric_from``) or ready ``<td>`` markup."""
    thead = head if isinstance(head, str) else "<tr>" + "".join(f"<th>{e(h)}</th>" for h in head) + "</tr>"
    body = []
    for i, r in enumerate(rows):
        cls = row_classes[i] if i < len(row_classes) and row_classes[i] else ""
        tds = r if isinstance(r, str) else "".join(cell(c, "num" if j >= numeric_from else "") for j, c in enumerate(r))
        body.append(f'<tr class="{cls}">{tds}</tr>' if cls else f"<tr>{tds}</tr>")
    return f'<table data-table="{e(key)}"><thead>{thead}</thead><tbody>{"".join(body)}</tbody></table>'


def figure(chart: Chart, caption: str = "") -> str:
    """A chart in a figure (its title and axis labels are in the SVG as text)."""
    cap = f"<figcaption>{e(caption)}</figcaption>" if caption else ""
    return (
        f'<figure class="chart" data-chart="{e(chart.key)}" data-title="{e(chart.title)}" '
        f'data-xlabel="{e(chart.xlabel)}" data-ylabel="{e(chart.ylabel)}">{chart.svg}{cap}</figure>'
    )


def section(number: int, title: str, body: str) -> str:
    return (
        f'<section class="report" id="s{number}"><h2>{e(SECTION_NUMBERS[number - 1])}、{e(title)}</h2>{body}</section>'
    )


SECTION_NUMBERS = ("一", "二", "三", "四", "五", "六", "七", "八", "九")


# --- the document ------------------------------------------------------------------------------------
def scope_label(run: RunTables) -> str:
    return "、".join(run.parks) if run.parks else "全部县区和园区"


def report_title(run: RunTables) -> str:
    return f"{run.year}年度工业企业资源集约利用综合评价报告"


def render(run: RunTables, *, generated_at: str, links: Sequence[Link] = (), status: str = "") -> str:
    """The whole report; ``generated_at`` (Beijing time) is the only text that changes between runs.

    ``status``: the run's publication status and version as the service knows it
    (:meth:`~geo_eval.storage.base.RunRecord.status_line`; "" for a report written from an OUT_DIR).
    """
    from geo_eval.report.sections import SECTIONS

    parts = [(number, title, build(run)) for number, (title, build) in enumerate(SECTIONS, start=1)]
    toc = "".join(f'<li><a href="#s{n}">{e(SECTION_NUMBERS[n - 1])}、{e(t)}</a></li>' for n, t, _ in parts)
    body = "".join(section(n, t, b) for n, t, b in parts)
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(report_title(run))}（{e(scope_label(run))}）</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'{_cover(run, links, status)}\n<p class="generated">{GENERATED_PREFIX}{e(generated_at)}（北京时间）</p>\n'
        f'<nav class="toc"><h2>目录</h2><ol>{toc}</ol></nav>\n{body}\n</body></html>\n'
    )


def _cover(run: RunTables, links: Sequence[Link], status: str = "") -> str:
    scheme = run.manifest.get("scheme") or {}
    title = scheme.get("title", "") if isinstance(scheme, dict) else ""
    bar = ""
    if links:
        bar = '<p class="links noprint">' + "".join(f'<a href="{e(x.href)}">{e(x.text)}</a>' for x in links) + "</p>"
    return (
        f'<header class="cover">{bar}<h1>{e(report_title(run))}</h1>'
        f'<p class="sub">范围：{e(scope_label(run))}</p>'
        + (f'<p class="status">发布状态：{e(status)}</p>' if status else "")
        + f"<p>评价方案：{e(str(title))}；geo-eval {e(str(run.manifest.get('version', __version__)))}</p></header>"
    )

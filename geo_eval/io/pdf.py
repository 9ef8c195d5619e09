"""Printing the report to PDF with a headless Chromium, when one is installed.

The HTML file is opened from disk (``file://``) by ``chromium --headless --print-to-pdf``: the report
loads nothing, so the browser makes no request; its own background networking is switched off and it
runs in a throwaway profile. A4 and the margins come from the report's ``@page`` rule.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from geo_eval.errors import GeoEvalError

CHROMIUM_ENV = "GEO_EVAL_CHROMIUM"
"""Path of the browser to print with, when it is not one of :data:`CANDIDATES` on the PATH."""
CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
TIMEOUT_S = 180


class PdfUnavailableError(GeoEvalError, RuntimeError):
    """No browser to print with, or printing failed."""


def find_chromium() -> str | None:
    """The browser to print with: ``GEO_EVAL_CHROMIUM``, else the first of :data:`CANDIDATES` found."""
    configured = os.environ.get(CHROMIUM_ENV, "").strip()
    if configured:
        return configured if Path(configured).is_file() else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def no_browser_message() -> str:
    return (
        "未找到 Chromium 浏览器，无法生成 PDF。请安装（Debian/Ubuntu：apt-get install chromium fonts-noto-cjk）"
        f"或用环境变量 {CHROMIUM_ENV} 指定浏览器路径；也可以在浏览器中打开 HTML 报告，用“打印 → 另存为 PDF”（A4）。"
    )


def print_pdf(html_path: Path, pdf_path: Path) -> Path:
    """Print ``html_path`` to ``pdf_path``; :class:`PdfUnavailableError` (a Chinese message) without a browser."""
    browser = find_chromium()
    if browser is None:
        raise PdfUnavailableError(no_browser_message())
    target = Path(pdf_path).resolve()
    with tempfile.TemporaryDirectory(prefix="geo-eval-pdf-") as profile:
        args = [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-extensions",
            "--disable-sync",
            "--no-first-run",
            "--no-default-browser-check",
            f"--user-data-dir={profile}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            Path(html_path).resolve().as_uri(),
        ]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PdfUnavailableError(f"用 {browser} 生成 PDF 失败：{exc}") from exc
    if done.returncode != 0 or not target.is_file() or target.stat().st_size == 0:
        tail = (done.stderr or "").strip().splitlines()[-3:]
        raise PdfUnavailableError(f"用 {browser} 生成 PDF 失败（退出码 {done.returncode}）：{' '.join(tail)}")
    return target


def pdf_bytes(html: str) -> bytes:
    """The PDF of a report given as text (the service's download)."""
    with tempfile.TemporaryDirectory(prefix="geo-eval-report-") as tmp:
        src = Path(tmp) / "report.html"
        src.write_text(html, encoding="utf-8")
        return print_pdf(src, Path(tmp) / "report.pdf").read_bytes()

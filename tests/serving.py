"""The real service for the tests that need one: ``geo-eval serve`` on a free port of 127.0.0.1, and the
Chromium the browser tests drive (Debian's ``/usr/bin/chromium``; ``playwright install`` is never run)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest

GEO_EVAL = Path(sys.executable).with_name("geo-eval")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REQUIRE_BROWSER = os.environ.get("GEO_EVAL_REQUIRE_BROWSER") == "1"


def browser_unavailable(reason: str) -> NoReturn:
    """Skip the browser tests for ``reason``; fail instead when ``GEO_EVAL_REQUIRE_BROWSER=1`` (``.ci/run``)."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason}; GEO_EVAL_REQUIRE_BROWSER=1 requires the browser tests to run", pytrace=False)
    pytest.skip(f"{reason}（.ci/run 会自动安装 chromium 并要求运行这些测试）", allow_module_level=True)


def playwright_api() -> Any:
    """Playwright's sync API, when Chromium and Playwright are there (else :func:`browser_unavailable`)."""
    if not CHROMIUM.is_file():
        browser_unavailable(
            "浏览器测试需要 Debian 的 Chromium（/usr/bin/chromium）：请以 root 运行 apt-get install chromium"
        )
    try:
        from playwright import sync_api
    except ImportError:  # pragma: no cover - the dev extra installs it
        browser_unavailable("浏览器测试需要 Playwright 的 Python 包：pip install -e '.[dev]'")
    return sync_api


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(env: dict[str, str], log: Path, *, args: Sequence[str] = (), cwd: Path | None = None) -> Iterator[str]:
    """``geo-eval serve`` (with ``args``) under ``env``, its output in ``log``: its URL once ``/health``
    answers (the test fails when it does not within 60 s); stopped afterwards."""
    port = free_port()
    with log.open("w") as fh:
        cmd = [str(GEO_EVAL), "serve", "--host", "127.0.0.1", "--port", str(port), *args]
        proc = subprocess.Popen(cmd, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=cwd)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, proc, log)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"geo-eval serve did not start:\n{log.read_text()}")
        time.sleep(0.2)


# --- helpers the browser tests share (tests/test_browser.py, tests/test_objection_pages.py) --------------
ROOT = Path(__file__).resolve().parents[1]


def sample_dataset(root: Path, year: int = 2025) -> Path:
    """The sample of ``year`` copied to ``root`` (its context layers referenced by absolute path)."""
    shutil.copytree(ROOT / "sample_parcels" / str(year), root)
    toml = (root / "dataset.toml").read_text(encoding="utf-8")
    (root / "dataset.toml").write_text(toml.replace('"../../layers/', f'"{(ROOT / "layers").as_posix()}/'), "utf-8")
    return root


def cli(*args: str, env: dict[str, str]) -> str:
    """``geo-eval ARGS`` under ``env`` (the test fails unless it succeeds); its standard output."""
    r = subprocess.run([str(GEO_EVAL), *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@dataclass
class Tab:
    """A browser tab (its own context) and what it saw: requests, dialogs, script errors."""

    page: Any
    requests: list[str]
    dialogs: list[str]
    errors: list[str]
    name: str

    def shot(self, label: str, folder: Path | None = None) -> Path | None:
        """A screenshot into ``folder``, else into ``GEO_EVAL_SCREENSHOTS`` when that is set."""
        target = folder or (
            Path(os.environ["GEO_EVAL_SCREENSHOTS"]) if os.environ.get("GEO_EVAL_SCREENSHOTS") else None
        )
        if target is None:
            return None
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=folder is not None)
        return path


def open_tab(browser: Any, name: str, viewport: dict[str, int]) -> Tab:
    """A new tab of ``viewport`` (a phone below 500 px wide: touch, mobile) that records what it saw."""
    phone = viewport["width"] < 500
    context = browser.new_context(
        viewport=viewport, locale="zh-CN", is_mobile=phone, has_touch=phone, accept_downloads=True
    )
    requests: list[str] = []
    dialogs: list[str] = []
    errors: list[str] = []
    context.on("request", lambda req: requests.append(req.url))
    page = context.new_page()
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return Tab(page, requests, dialogs, errors, name)


def check_tab(tab: Tab, base_url: str) -> None:
    """Nothing outside the service was requested, no dialog fired, no script failed."""
    outside = [u for u in tab.requests if not u.startswith((base_url + "/", "data:", "blob:"))]
    assert not outside, f"the page requested something outside the service: {outside[:5]}"
    assert not tab.dialogs, f"a dialog fired: {tab.dialogs}"
    assert not tab.errors, f"the page's script failed: {tab.errors}"


def sign_in_page(tab: Tab, base_url: str, name: str, token: str, path: str) -> None:
    """Open ``path``, which leads to the login page, and sign in there like a person."""
    page = tab.page
    page.goto(base_url + path)
    assert "/login?next=" in page.url
    page.fill("#name", name)
    page.fill("#token", token)
    with page.expect_navigation():
        page.click("button[type=submit]")

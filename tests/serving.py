"""The real service for the tests that need one: ``geo-eval serve`` on a free port of 127.0.0.1, and the
Chromium the browser tests drive (Debian's ``/usr/bin/chromium``; ``playwright install`` is never run)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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

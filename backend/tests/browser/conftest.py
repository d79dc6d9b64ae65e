"""The dashboard in a real browser: Debian's headless ``chromium`` driven by Playwright.

Nothing is downloaded: Playwright's own browser builds are never used, so without a
``chromium`` on PATH these tests skip (and ``CRYPTO_FAIL_ON_SKIP=1``, set by CI after it
installs the package, turns that skip into a failure).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, async_playwright

from tests.conftest import free_port

BACKEND = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# The demo data `make run` loads, with the forecasts and one small backtest on top.
PREPARE = (
    ("db", "upgrade"),
    ("seed",),
    ("predict", "BTC", "-H", "1h", "-H", "4h", "-H", "24h", "-H", "7d"),
    ("predict", "ETH", "LTC", "-H", "24h", "-H", "7d"),
    ("backtest", "BTC", "-H", "24h", "--windows", "10"),  # every default model, ~15 s
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: drives headless Chromium against a real server")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/browser/" in str(item.path):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    return path


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update(
        DEBUG="true",
        LOG_LEVEL="WARNING",
        DATABASE_URL=f"sqlite:///{workdir / 'dashboard.db'}",
        REDIS_URL="",
        PYTHONPATH=str(BACKEND),
    )
    return env


def _run(args: tuple[str, ...], env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"cryptopredict {' '.join(args)} failed:\n{done.stderr}"


def _wait_until_up(base: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"server exited during start-up:\n{log.read_text()}"
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start within 60 s")


@dataclass(frozen=True)
class Server:
    base: str

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.base + path, timeout=30)


@pytest.fixture(scope="module")
def server(chromium: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`cryptopredict serve` on a fresh SQLite file holding the demo data and forecasts."""
    workdir = tmp_path_factory.mktemp("dashboard")  # no .env here: only these variables apply
    env = _env(workdir)
    for args in PREPARE:
        _run(args, env, workdir)
    port = free_port()
    log = workdir / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "app", "serve", "--port", str(port)],
            env=env,
            cwd=workdir,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process, log)
        yield Server(base)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture(scope="module")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS

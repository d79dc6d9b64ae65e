"""SIGTERM while a slow request runs: the request completes, then the process exits cleanly.

A real ``cryptopredict serve`` process on a SQLite file holding the bundled demo data. The
request fits every default model for four horizons (seconds of CPU); SIGTERM is sent once
the server is busy with it, which the server's own CPU time shows.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx

from app.cli import upgrade_database
from app.database import Database
from app.services.seed import seed_demo_data
from tests.faults.conftest import app_server, cli_env
from tests.faults.support import create_write_key

HORIZONS = ["1h", "4h", "24h", "7d"]
BUSY_CPU_S = 0.3  # server CPU time beyond idle that means "fitting the request's models"
BUSY_DEADLINE_S = 30.0
REQUEST_DEADLINE_S = 120.0
EXIT_AFTER_RESPONSE_S = 10.0  # lifespan shutdown: close the cache, dispose of the engine
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (fields 14 and 15 of stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


async def prepare_database(url: str) -> str:
    """``db upgrade`` + ``seed``, in-process; returns a write key."""
    await asyncio.to_thread(upgrade_database, url)
    database = Database.from_url(url)
    try:
        async with database.unit_of_work() as session:
            report = await seed_demo_data(session)
        assert report.candles_inserted > 2000
        return await create_write_key(database)
    finally:
        await database.dispose()


async def test_sigterm_lets_the_request_finish_then_exits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    key = await prepare_database(url)
    body = {"symbols": ["BTC"], "horizons": HORIZONS}

    # Fits in the server's own threads: the test knows the request is under way by the
    # server process's CPU time, which fits in worker processes would not show.
    env = cli_env(DATABASE_URL=url, FORECAST_PROCESSES="0")
    with app_server(env, tmp_path) as server:
        pid = server.process.pid
        async with httpx.AsyncClient(base_url=server.base_url, timeout=REQUEST_DEADLINE_S) as http:
            idle_cpu = cpu_seconds(pid)
            sent_at = time.monotonic()
            request = asyncio.create_task(
                http.post("/api/v1/predictions", json=body, headers={"X-API-Key": key})
            )
            try:
                while cpu_seconds(pid) - idle_cpu < BUSY_CPU_S:
                    assert not request.done(), "the request ended before SIGTERM was sent"
                    assert time.monotonic() - sent_at < BUSY_DEADLINE_S, "server never got busy"
                    await asyncio.sleep(0.02)
                server.process.send_signal(signal.SIGTERM)
                terminated_at = time.monotonic()
                assert not request.done(), "the request ended before SIGTERM was sent"
                response = await asyncio.wait_for(request, REQUEST_DEADLINE_S)
            finally:
                request.cancel()
            answered_at = time.monotonic()
        returncode = await asyncio.to_thread(server.process.wait, EXIT_AFTER_RESPONSE_S)
        exited_at = time.monotonic()
        stderr = server.stderr()

    assert response.status_code == 200, response.text
    run = response.json()
    predicted = {(p["symbol"], p["horizon"]) for p in run["predictions"]}
    assert predicted == {("BTC", horizon) for horizon in HORIZONS}
    models = {p["model_name"] for p in run["predictions"]}
    assert run["stored"] == len(run["predictions"]) == len(models) * len(HORIZONS)
    # uvicorn shuts down gracefully, then re-raises SIGTERM so a supervisor sees why.
    assert returncode in (0, -signal.SIGTERM), (returncode, stderr)
    assert "Traceback" not in stderr, stderr
    assert "Finished server process" in stderr, stderr
    print(
        f"\n[sigterm] request sent, SIGTERM {terminated_at - sent_at:.2f} s later; 200 with "
        f"{len(run['predictions'])} predictions ({len(models)} models x {len(HORIZONS)} "
        f"horizons) {answered_at - terminated_at:.2f} s after SIGTERM; process exited "
        f"(code {returncode}) {exited_at - answered_at:.2f} s after the response, "
        f"{exited_at - terminated_at:.2f} s after SIGTERM"
    )

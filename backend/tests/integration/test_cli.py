"""The cryptopredict command line: migrations, seeding, serving, and its refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

BACKEND = Path(__file__).resolve().parents[2]


def _cli_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
    env.update({"DEBUG": "true", "LOG_LEVEL": "WARNING"})
    env.update(overrides)
    return env


def _cryptopredict(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "app", *args]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    # A directory with no .env, so only the variables given here apply.
    return tmp_path


def test_upgrade_then_seed_twice_on_a_fresh_sqlite_file(workdir: Path) -> None:
    url = f"sqlite:///{workdir / 'cli.db'}"
    env = _cli_env(DATABASE_URL=url, PYTHONPATH=str(BACKEND))
    upgraded = _cryptopredict("db", "upgrade", env=env, cwd=workdir)
    assert upgraded.returncode == 0, upgraded.stderr
    first = _cryptopredict("seed", env=env, cwd=workdir)
    assert first.returncode == 0, first.stderr
    assert "candles inserted: 0" not in first.stdout
    second = _cryptopredict("seed", env=env, cwd=workdir)
    assert second.returncode == 0, second.stderr
    assert "coins created: 0, candles inserted: 0" in second.stdout
    skipped = _cryptopredict("seed", "--if-empty", env=env, cwd=workdir)
    assert skipped.returncode == 0, skipped.stderr
    assert "demo data not loaded" in skipped.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [("DATABASE_POOL_SIZE", "-5"), ("DATABASE_URL", "nonsense://"), ("SECRET_KEY", "")],
)
def test_invalid_settings_exit_non_zero_with_one_line(workdir: Path, name: str, value: str) -> None:
    env = _cli_env(PYTHONPATH=str(BACKEND))
    env[name] = value
    if name == "SECRET_KEY":
        env["DEBUG"] = "false"
    result = _cryptopredict("serve", "--port", str(free_port()), env=env, cwd=workdir)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert name in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture
def server_without_database(workdir: Path) -> Iterator[str]:
    """A real uvicorn process whose database is a closed port."""
    port = free_port()
    env = _cli_env(
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{free_port()}/none",
        PYTHONPATH=str(BACKEND),
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(base, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        stderr = process.stderr.read().decode() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
    # uvicorn shuts down gracefully, then re-raises SIGTERM so supervisors see why it exited.
    assert process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in stderr


def _wait_until_up(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start-up"
        try:
            httpx.get(f"{base}/health", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("server did not start within 30 s")


def test_server_starts_and_reports_an_unreachable_database(server_without_database: str) -> None:
    assert httpx.get(f"{server_without_database}/health", timeout=5).status_code == 200
    response = httpx.get(f"{server_without_database}/health/db", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "unhealthy"
    assert httpx.get(f"{server_without_database}/docs", timeout=5).status_code == 200
    assert httpx.get(f"{server_without_database}/openapi.json", timeout=5).status_code == 200


@pytest.fixture
def seeded(workdir: Path) -> dict[str, str]:
    env = _cli_env(DATABASE_URL=f"sqlite:///{workdir / 'ingest.db'}", PYTHONPATH=str(BACKEND))
    for command in (("db", "upgrade"), ("seed",)):
        done = _cryptopredict(*command, env=env, cwd=workdir)
        assert done.returncode == 0, done.stderr
    return env


LTC_CSV = """timestamp,open,high,low,close,volume
2021-01-01,126.0,131.0,121.0,129.5,1000
2021-01-02,129.5,150.0,127.0,148.0,1200
2021-01-03,148.0,160.0,150.0,140.0,1100
"""  # the third row's low is above its close


def test_ingest_csv_refuses_bad_rows_then_skips_them(seeded: dict[str, str], workdir: Path) -> None:
    path = workdir / "ltc.csv"
    path.write_text(LTC_CSV)
    refused = _cryptopredict("ingest", "csv", str(path), "--symbol", "ltc", env=seeded, cwd=workdir)
    assert refused.returncode == 1
    assert refused.stderr.startswith("error: ltc.csv: line 4: low:")
    assert len(refused.stderr.strip().splitlines()) == 1

    args = ("ingest", "csv", str(path), "--symbol", "LTC", "--skip-invalid", "--json")
    imported = _cryptopredict(*args, env=seeded, cwd=workdir)
    assert imported.returncode == 0, imported.stderr
    result = json.loads(imported.stdout)
    assert (result["inserted"], result["timeframe"]) == (2, "1d")
    assert result["skipped"] == [
        {"row": 4, "field": "low", "message": "low is above min(open, close)"}
    ]
    again = _cryptopredict(*args, env=seeded, cwd=workdir)
    assert json.loads(again.stdout)["unchanged"] == 2


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("ingest", "csv", "missing.csv", "--symbol", "BTC"), 2, "no such file"),
        (("ingest", "csv", "{file}", "--symbol", "NOPE"), 1, "NOPE"),
        (("ingest", "csv", "{file}", "--symbol", "LTC", "--timeframe", "2h"), 2, "--timeframe"),
    ],
)
def test_ingest_csv_exits_with_one_line(
    seeded: dict[str, str], workdir: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    path = workdir / "ok.csv"
    path.write_text(LTC_CSV.replace("150.0,140.0,1100", "130.0,140.0,1100"))
    argv = [arg.replace("{file}", str(path)) for arg in args]
    result = _cryptopredict(*argv, env=seeded, cwd=workdir)
    assert result.returncode == code, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]
    assert "Traceback" not in result.stderr


def test_worker_refuses_an_unknown_queue(workdir: Path) -> None:
    env = _cli_env(REDIS_URL="redis://127.0.0.1:1/0", PYTHONPATH=str(BACKEND))
    result = _cryptopredict("worker", "--queue", "everything", env=env, cwd=workdir)
    assert result.returncode == 2
    assert "--queue" in result.stderr and "'scheduled', 'user', 'all'" in result.stderr


def _heartbeats(client: Any, pid: int) -> list[str]:
    """The queues whose heartbeat keys carry this process's id."""
    keys = [key.decode() for key in client.scan_iter(match="crypto:jobs*:worker:*")]
    return sorted(key.split(":worker:")[0] for key in keys if f":{pid}:" in key)


@pytest.fixture
def worker_env(workdir: Path, redis_url: str | None) -> dict[str, str]:
    """A worker's environment: the test Redis for its queues, a database it never needs."""
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the worker's queues live in Redis")
    database = f"sqlite:///{workdir / 'worker.db'}"
    return _cli_env(DATABASE_URL=database, REDIS_URL=redis_url, PYTHONPATH=str(BACKEND))


def test_worker_serves_both_queues_and_stops_on_sigterm(
    workdir: Path, worker_env: dict[str, str]
) -> None:
    import redis

    client = redis.Redis.from_url(worker_env["REDIS_URL"])
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "worker"],
        env=worker_env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while _heartbeats(client, process.pid) != ["crypto:jobs", "crypto:jobs:user"]:
            assert process.poll() is None, "the worker exited during start-up"
            assert time.monotonic() < deadline, "no heartbeat on both queues within 30 s"
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr = process.stderr.read().decode() if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        alive = _heartbeats(client, process.pid)
        client.close()
    assert "Traceback" not in stderr, stderr
    assert alive == []  # both Workers said goodbye


def test_worker_burst_serves_only_the_queue_asked_for(
    workdir: Path, worker_env: dict[str, str]
) -> None:
    env = {**worker_env, "LOG_LEVEL": "INFO", "LOG_FORMAT": "text"}
    result = _cryptopredict("worker", "--burst", "--queue", "user", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    output = result.stdout + result.stderr
    assert "serves the queues: user (crypto:jobs:user, 4 job slots)\n" in output
    assert output.count("Starting worker for") == 1  # one arq Worker: the user queue's

"""HTTP read benchmark: the real app's endpoints against a bare FastAPI floor, with wrk.

Starts two uvicorn servers (one worker each, same flags) on free loopback ports, the real
``app.main:app`` on a seeded scratch database and Redis, and ``bench/bare_app.py``; then runs
``wrk -t2 -c64 -d15s --latency`` (after a 3 s warm-up) one endpoint at a time:

  price     real /api/v1/cryptocurrencies/BTC/price         vs  bare pre-encoded bytes
  ohlcv500  real /ohlcv?limit=500 (cached after the first)  vs  bare pre-encoded bytes
  ohlcv1000 real /ohlcv?start=...&limit=1000 (uncached)     vs  bare asyncpg + orjson

Servers are pinned to CPU 0 and wrk to CPU 1 with taskset (PostgreSQL and Redis are system
services and float). Each pair runs in A-B-B-A order per round, so drift hits both sides.
Prints a JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from app.cli import upgrade_database

BENCH_DIR = Path(__file__).resolve().parent
SEED_CANDLES = 20_000
SEED = 7
SYMBOL = "BTC"
UVICORN_FLAGS = [
    "--workers",
    "1",
    "--loop",
    "uvloop",
    "--http",
    "httptools",
    "--no-access-log",
    "--log-level",
    "warning",
]
SERVER_CPU = "0"
WRK_CPU = "1"
# wrk's default 2 s timeout drops slow replies from the latency figures and calls them socket
# errors; a longer one keeps every reply in the percentiles. Errors then mean real failures.
WRK_TIMEOUT = 10
CACHE_OUTAGE_MARK = "cache redis unavailable"


def log(message: str) -> None:
    print(f"[read {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def http_get(url: str, timeout: float = 10.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


# ------------------------------------------------------------------ seeding


async def seed(url: str) -> tuple[int, datetime, datetime]:
    """BTC with SEED_CANDLES hourly candles ending at the last complete hour."""
    rng = random.Random(SEED)
    last = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    first = last - timedelta(hours=SEED_CANDLES - 1)
    now = datetime.now(UTC).replace(tzinfo=None)
    records = []
    price = 30_000.0
    for i in range(SEED_CANDLES):
        open_ = price
        close = open_ * math.exp(rng.gauss(0.0, 0.006))
        high = max(open_, close) * (1.0 + rng.expovariate(500.0))
        low = min(open_, close) * (1.0 - rng.expovariate(500.0))
        moment = (first + timedelta(hours=i)).replace(tzinfo=None)
        records.append(
            (
                moment,
                round(open_, 2),
                round(high, 2),
                round(low, 2),
                round(close, 2),
                round(rng.expovariate(1 / 800), 4),
                "bench",
                now,
            )
        )
        price = close
    conn = await common.connect(url)
    try:
        coin_id = await conn.fetchval(
            "INSERT INTO cryptocurrencies (symbol, name, coin_gecko_id, is_active, created_at, "
            "updated_at) VALUES ($1, 'Bitcoin', 'bitcoin', true, now(), now()) RETURNING id",
            SYMBOL,
        )
        await conn.copy_records_to_table(
            "market_data",
            records=[(coin_id, *r) for r in records],
            columns=[
                "cryptocurrency_id",
                "timestamp",
                "open_price",
                "high_price",
                "low_price",
                "close_price",
                "volume",
                "data_source",
                "created_at",
            ],
        )
        await conn.execute("VACUUM (ANALYZE) market_data")
    finally:
        await conn.close()
    return int(coin_id), first, last


def flush_redis() -> None:
    import redis

    client = redis.Redis.from_url(common.redis_url())
    try:
        client.flushdb()  # the bench's own database (db 14 by default)
    finally:
        client.close()


# ------------------------------------------------------------------ servers


class Server:
    def __init__(self, name: str, target: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        argv = [
            "taskset",
            "-c",
            SERVER_CPU,
            sys.executable,
            "-m",
            "uvicorn",
            target,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *UVICORN_FLAGS,
        ]
        self.command = common.shown_command(argv)
        # Closed by stop(); the server writes to it for its whole life.
        self.log_file = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )

    def wait_ready(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                status, _ = http_get(self.base + path, timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        self.log_file.seek(0)
        raise SystemExit(f"{self.name} server did not come up:\n{self.log_file.read().decode()}")

    def log_text(self) -> str:
        self.log_file.flush()
        return Path(self.log_file.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()


def real_settings(extra: tuple[str, ...] | list[str] = ()) -> dict[str, str]:
    """The real app's settings besides its database and Redis: the app's defaults, except
    DEBUG (as in development) and a read limit no benchmark reaches (common.RATE_LIMIT_READS),
    plus the NAME=VALUE pairs of --real-env (experiments)."""
    settings = {"DEBUG": "true", "RATE_LIMIT_READS": common.RATE_LIMIT_READS}
    return settings | dict(item.split("=", 1) for item in extra)


def base_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {k: os.environ[k] for k in keep if k in os.environ}


# ------------------------------------------------------------------ wrk

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    def grab(pattern: str, default: str | None = None) -> str:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            if default is None:
                raise ValueError(f"wrk output lacks {pattern!r}:\n{output}")
            return default
        return match.group(1)

    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return {
        "requests_per_s": float(grab(r"^Requests/sec:\s+([\d.]+)")),
        "requests": int(grab(r"^\s+(\d+) requests in")),
        "p50_ms": _ms(grab(r"^\s+50%\s+(\S+)")),
        "p99_ms": _ms(grab(r"^\s+99%\s+(\S+)")),
        "non_2xx": int(grab(r"Non-2xx or 3xx responses: (\d+)", "0")),
        "socket_errors": sum(int(x) for x in socket_errors.groups()) if socket_errors else 0,
    }


def wrk(url: str, seconds: int, connections: int, threads: int) -> dict[str, Any]:
    argv = [
        "taskset",
        "-c",
        WRK_CPU,
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}s",
        "--latency",
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True)
    return parse_wrk(done.stdout)


# ------------------------------------------------------------------ driver


def fetch_bodies(side: str, urls: dict[str, str]) -> dict[str, bytes]:
    """Each URL's body; a server that does not answer 200 ends the run."""
    bodies = {}
    for key, target in urls.items():
        status, body = http_get(target)
        if status != 200:
            raise SystemExit(f"{side} {key} answered {status}: {body[:300]!r}")
        bodies[key] = body
    return bodies


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not on PATH: apt-get install -y wrk")
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is not on PATH (util-linux)")
    name = common.scratch_name()
    url = asyncio.run(common.create_scratch_db(name))
    servers: list[Server] = []
    workdir = Path(tempfile.mkdtemp(prefix="bench-read-"))
    try:
        upgrade_database(url)
        coin_id, first, _ = asyncio.run(seed(url))
        flush_redis()
        log(f"scratch database {name} seeded with {SEED_CANDLES:,} hourly {SYMBOL} candles")

        # The real app, configured by environment only; cwd has no .env file.
        settings = real_settings(args.real_env)
        real_env = base_env() | {"DATABASE_URL": url, "REDIS_URL": common.redis_url()} | settings
        real = Server("real", "app.main:app", workdir, real_env)
        servers.append(real)
        real.wait_ready("/health")

        api = f"{real.base}/api/v1/cryptocurrencies/{SYMBOL}"
        start = (first + timedelta(hours=5000)).strftime("%Y-%m-%dT%H:%M:%SZ")
        real_urls = {
            "price": f"{api}/price",
            "ohlcv500": f"{api}/ohlcv?limit=500",
            "ohlcv1000": f"{api}/ohlcv?start={start}&limit=1000",
        }
        bodies = fetch_bodies("real", real_urls)
        (workdir / "price.json").write_bytes(bodies["price"])
        (workdir / "ohlcv500.json").write_bytes(bodies["ohlcv500"])

        bare_env = base_env() | {
            "PYTHONPATH": str(BENCH_DIR),
            "BARE_PRICE_FILE": str(workdir / "price.json"),
            "BARE_OHLCV500_FILE": str(workdir / "ohlcv500.json"),
            "BARE_DATABASE_URL": url,
            "BARE_COIN_ID": str(coin_id),
            "BARE_SYMBOL": SYMBOL,
        }
        bare = Server("bare", "bare_app:app", workdir, bare_env)
        servers.append(bare)
        bare.wait_ready("/bare/bytes/price")
        bare_urls = {
            "price": f"{bare.base}/bare/bytes/price",
            "ohlcv500": f"{bare.base}/bare/bytes/ohlcv500",
            "ohlcv1000": f"{bare.base}/bare/asyncpg/ohlcv1000?start={start}&limit=1000",
        }
        bare_bodies = fetch_bodies("bare", bare_urls)
        identical = {key: body == bodies[key] for key, body in bare_bodies.items()}
        log(f"servers up (real :{real.port}, bare :{bare.port}); bodies identical: {identical}")

        results: dict[str, dict[str, list[dict[str, Any]]]] = {}
        for key in args.only or ("price", "ohlcv500", "ohlcv1000"):
            results[key] = {"real": [], "bare": []}
            for _ in range(args.rounds):
                for side in ("real", "bare", "bare", "real"):
                    target = real_urls[key] if side == "real" else bare_urls[key]
                    wrk(target, args.warmup, args.connections, args.threads)
                    measured = wrk(target, args.duration, args.connections, args.threads)
                    results[key][side].append(measured)
                    log(
                        f"{key:9s} {side}: {measured['requests_per_s']:,.0f} req/s, "
                        f"p50 {measured['p50_ms']:.2f} ms, p99 {measured['p99_ms']:.2f} ms, "
                        f"non-2xx {measured['non_2xx']}, socket errors {measured['socket_errors']}"
                    )
        commands = {"real": real.command, "bare": bare.command}
        real_log = real.log_text()
        cache_outages = [line for line in real_log.splitlines() if CACHE_OUTAGE_MARK in line]
        if cache_outages:
            log(f"real server logged {len(cache_outages)} cache outage(s): {cache_outages[0]}")
    finally:
        for server in servers:
            server.stop()
        flush_redis()
        asyncio.run(common.drop_scratch_db(name))
        shutil.rmtree(workdir, ignore_errors=True)
        log(f"servers stopped, redis db flushed, scratch database {name} dropped")
    report = summarise(results, identical, commands, real_urls, bare_urls, args, start)
    report["real_settings"] = settings
    report["real_server_cache_outages"] = len(cache_outages)
    report["real_server_cache_outage_example"] = cache_outages[0] if cache_outages else None
    return report


def summarise(
    results: dict[str, dict[str, list[dict[str, Any]]]],
    identical: dict[str, bool],
    commands: dict[str, str],
    real_urls: dict[str, str],
    bare_urls: dict[str, str],
    args: argparse.Namespace,
    start: str,
) -> dict[str, Any]:
    targets = {"price": 0.6, "ohlcv500": 0.6, "ohlcv1000": 0.5}
    endpoints = {}
    for key, sides in results.items():
        entry: dict[str, Any] = {"target_ratio": targets[key], "body_identical": identical[key]}
        for side, runs in sides.items():
            entry[side] = {
                "runs": runs,
                "median_requests_per_s": common.median([r["requests_per_s"] for r in runs]),
                "median_p50_ms": common.median([r["p50_ms"] for r in runs]),
                "median_p99_ms": common.median([r["p99_ms"] for r in runs]),
                "non_2xx": sum(r["non_2xx"] for r in runs),
                "socket_errors": sum(r["socket_errors"] for r in runs),
                "url": (real_urls if side == "real" else bare_urls)[key].split("/", 3)[3],
            }
        entry["ratio"] = (
            entry["real"]["median_requests_per_s"] / entry["bare"]["median_requests_per_s"]
        )
        entry["met"] = entry["ratio"] >= targets[key]
        endpoints[key] = entry
    wrk_cmd = (
        f"taskset -c {WRK_CPU} wrk -t{args.threads} -c{args.connections} -d{args.duration}s "
        f"--timeout={WRK_TIMEOUT}s --latency URL  (after the same with -d{args.warmup}s as warm-up)"
    )
    return {
        "real_env_extra": args.real_env,
        "seed_candles": SEED_CANDLES,
        "start": start,
        "rounds": args.rounds,
        "order": "real, bare, bare, real per round",
        "server_cpu": SERVER_CPU,
        "wrk_cpu": WRK_CPU,
        "commands": commands | {"wrk": wrk_cmd},
        "endpoints": endpoints,
        "all_2xx": all(
            e[s]["non_2xx"] == 0 and e[s]["socket_errors"] == 0
            for e in endpoints.values()
            for s in ("real", "bare")
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per measured run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of warm-up per run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="A-B-B-A rounds per endpoint")
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    parser.add_argument(
        "--real-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra setting for the real app, for experiments (repeatable)",
    )
    parser.add_argument(
        "--only", choices=("price", "ohlcv500", "ohlcv1000"), action="append", help="endpoints"
    )
    args = parser.parse_args()
    if any("=" not in item for item in args.real_env):
        parser.error("--real-env takes NAME=VALUE")
    report = run(args)
    common.emit_report(report, args.output)


if __name__ == "__main__":
    main()

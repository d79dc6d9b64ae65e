"""Fairness run: one API key floods heavy work while another reads at a steady rate.

Starts the real ``app.main:app`` as bench/load.py does (one uvicorn worker pinned to CPU 0,
the bench Redis database, a seeded scratch PostgreSQL database: 20,000 hourly candles of BTC,
as bench/read.py seeds them, and of a second coin, as bench/forecast.py does), but with the
app's default limits: only ``DEBUG=true`` is set. One ``cryptopredict worker`` runs beside it
(pinned to CPU 1, with this script) so accepted backtests run on the job queue, as in
production. Two write keys are made with ``cryptopredict keys create``: a flooder and a polite
client. Then, from CPU 1:

  quiet  the polite key reads at a fixed rate (open loop, as bench/load.py: latency runs from
         each request's due time) over /price, /ohlcv?limit=500 and /coverage, in turn;
  flood  the same reads at the same rate while the flooder sends, all at once, 32 forecasts
         (default models), 16 uploads whose body trickles in a byte at a time (raw sockets),
         and 20 large backtests; a few seconds in, the polite key asks for one small forecast.

Every flood answer is recorded with its status, problem type and Retry-After. The targets
(0 polite errors, the polite read p99 under flood within 3x the quiet one, the polite
forecast accepted, the flooder refused with 429 and Retry-After, never 503) are reported, not
asserted: the exit status is 0 whether they are met or not. ``--kinds forecast`` (or upload,
backtest, comma-separated) floods with fewer kinds of work, to tell their effects apart.
Prints a JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import forecast
import load
import read
from run import code_fingerprint, git_state

from app.cli import upgrade_database
from app.config import Settings
from app.database import Database
from app.forecasting import DEFAULT_MODELS

CLI = Path(sys.executable).with_name("cryptopredict")
COINS = f"/api/v1/cryptocurrencies/{read.SYMBOL}"
SECOND_COIN = forecast.symbol_of(0)
POLITE_READS = ("price", "ohlcv500", "coverage")  # keys of bench/load.py's mix, in turn
POLITE_FORECAST = {"symbols": [read.SYMBOL], "horizons": ["1h"], "models": ["random_walk"]}
FLOOD_FORECAST = {"symbols": [read.SYMBOL, SECOND_COIN], "horizons": ["1h", "24h"]}
# Large and valid: with the 5 default models, 500 x 5 = 2,500 model-windows each (a key's
# budget holds two); it needs 200 + 499 + 1 closed candles and reads 2,000 + 499 + 1.
FLOOD_BACKTEST = {"horizon": "1h", "step": 1, "windows": 500}
FLOOD_COUNTS = {"forecast": 32, "upload": 16, "backtest": 20}
LIMITS = (
    "RATE_LIMIT_READS",
    "RATE_LIMIT_WRITES",
    "FORECASTS_PER_KEY",
    "FORECASTS_TOTAL",
    "INGESTS_PER_KEY",
    "INGESTS_TOTAL",
    "BACKTEST_BUDGET_PER_KEY",
    "BACKTEST_BUDGET_TOTAL",
    "REQUEST_BODY_TIMEOUT_S",
)
P99_FACTOR = 3.0


def log(message: str) -> None:
    print(f"[fairness {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ processes


class Worker(read.Server):
    """``cryptopredict worker`` on the load CPU, logged and stopped like the servers."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.name = "worker"
        argv = ["taskset", "-c", load.LOAD_CPU, str(CLI), "worker"]
        self.command = common.shown_command(argv)
        self.log_file = tempfile.NamedTemporaryFile(prefix="bench-worker-", suffix=".log")  # noqa: SIM115
        self.process = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT
        )


def make_key(name: str, cwd: Path, env: dict[str, str]) -> tuple[str, str]:
    """A write key from the app's own command line, and that command line."""
    argv = [str(CLI), "keys", "create", "--name", name, "--scope", "write", "--json"]
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)["key"], common.shown_command(argv)


def wait_for_worker(base: str, timeout: float = 30.0) -> None:
    """Until /health/detailed counts a live worker (its first heartbeat)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = httpx.get(f"{base}/health/detailed", timeout=5).json().get("jobs") or {}
        if jobs.get("workers"):
            return
        time.sleep(0.5)
    raise SystemExit(f"no worker seen by {base}/health/detailed within {timeout:g} s")


async def seed_second_coin(url: str) -> None:
    """The forecast bench's first coin, hourly candles ending where BTC's do."""
    database = Database.from_url(url)
    first = forecast.last_closed_open(datetime.now(UTC)) - timedelta(hours=read.SEED_CANDLES - 1)
    try:
        await forecast.load_data(database, url, 1, read.SEED_CANDLES, first)
    finally:
        await database.dispose()


# ------------------------------------------------------------------ polite reads


async def polite_reads(
    port: int, key: str, args: argparse.Namespace, seconds: float, warmup: float
) -> list[load.Outcome]:
    """Open loop: request i is due at t0 + i / rate; those due in the warm-up are not kept."""
    paths = {name: path for name, path, _ in load.MIX if name in POLITE_READS}
    raw = {
        name: (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
            "User-Agent: fairness-polite\r\n\r\n"
        ).encode()
        for name, path in paths.items()
    }
    generator = load.Generator("127.0.0.1", port, args.max_connections, args.timeout)
    await generator.warm(4)
    kept: list[load.Outcome] = []
    tasks: set[asyncio.Task[None]] = set()
    t0 = time.perf_counter() + 0.05
    skipped = round(warmup * args.rate)
    for i in range(skipped + round(seconds * args.rate)):
        due = t0 + i / args.rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        outcome = load.Outcome(POLITE_READS[i % len(POLITE_READS)], due)
        if i >= skipped:
            kept.append(outcome)
        tasks.add(asyncio.create_task(generator.request(raw[outcome.key], outcome)))
    await asyncio.wait(tasks, timeout=args.timeout + 5)
    generator.close()
    return kept


def phase_summary(outcomes: list[load.Outcome], seconds: float) -> dict[str, Any]:
    summary = load.summarise(outcomes, seconds)
    summary["endpoints"] = {
        name: {field: value for field, value in entry.items() if field != "share"}
        for name, entry in summary["endpoints"].items()
        if entry["requests"]
    }
    return summary


# ------------------------------------------------------------------ heavy requests


@dataclass
class Answer:
    kind: str
    status: int = 0  # 0: no HTTP answer, see error
    slug: str | None = None  # the problem document's type
    retry_after: str | None = None
    seconds: float = 0.0
    error: str | None = None
    backtest_id: str | None = None
    bytes_sent: int | None = None  # uploads: how much of the body went out


def read_answer(answer: Answer, status: int, headers: Mapping[str, str], body: bytes) -> None:
    answer.status = status
    answer.retry_after = headers.get("retry-after")
    if headers.get("content-type", "").startswith("application/problem+json"):
        answer.slug = str(json.loads(body).get("type", "")).rsplit("/", 1)[-1]
    elif status == 202:
        answer.backtest_id = json.loads(body)["id"]


async def post_json(
    client: httpx.AsyncClient, kind: str, path: str, key: str, body: dict[str, Any]
) -> Answer:
    answer = Answer(kind)
    started = time.perf_counter()
    try:
        response = await client.post(path, json=body, headers={"X-API-Key": key})
        read_answer(answer, response.status_code, response.headers, response.content)
    except httpx.HTTPError as error:
        answer.error = type(error).__name__
    answer.seconds = time.perf_counter() - started
    return answer


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    fields = (line.partition(":") for line in head[1:] if line)
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return int(head[0].split(" ", 2)[1]), headers, body


async def slow_upload(port: int, key: str, body: bytes, interval: float) -> Answer:
    """POST candles with an honest Content-Length, sending the body a byte per ``interval``
    and reading at the same time, so an early answer is seen before the socket closes."""
    answer = Answer("upload", bytes_sent=0)
    started = time.perf_counter()
    head = (
        f"POST /api/v1/cryptocurrencies/{SECOND_COIN}/ohlcv HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError as error:
        answer.error = type(error).__name__
        return answer
    reply = asyncio.create_task(read_response(reader))
    try:
        writer.write(head)
        for offset in range(len(body)):
            await asyncio.wait([reply], timeout=interval)
            if reply.done():
                break
            writer.write(body[offset : offset + 1])
            await writer.drain()
            answer.bytes_sent = offset + 1
    except OSError:
        pass  # the server closed the socket: its answer may still be in the reader
    try:
        read_answer(answer, *await asyncio.wait_for(reply, timeout=10))
    except (OSError, TimeoutError, asyncio.IncompleteReadError, ValueError) as error:
        answer.error = type(error).__name__
    finally:
        reply.cancel()
        writer.close()
    answer.seconds = time.perf_counter() - started
    return answer


def upload_body() -> bytes:
    """Three valid hourly candles, before the second coin's stored range."""
    candles = [
        {
            "timestamp": f"2020-01-01T0{hour}:00:00Z",
            "open": 100.0,
            "high": 101.0,
            "low": 99.0,
            "close": 100.5,
            "volume": 10.0,
        }
        for hour in range(3)
    ]
    return json.dumps({"candles": candles}).encode()


async def after(delay: float, work: Awaitable[Answer]) -> tuple[float, Answer]:
    await asyncio.sleep(delay)
    return delay, await work


async def flood(port: int, keys: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """The flooder's requests, all at once, and the polite reads and forecast meanwhile."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
    base = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=base, timeout=args.grace, limits=limits) as client:
        started = time.perf_counter()
        heavy: list[Awaitable[Answer]] = [
            slow_upload(port, keys["flooder"], upload_body(), args.trickle)
            for _ in range(args.counts["upload"])
        ]
        heavy += [
            post_json(client, "forecast", "/api/v1/predictions", keys["flooder"], FLOOD_FORECAST)
            for _ in range(args.counts["forecast"])
        ]
        heavy += [
            post_json(
                client,
                "backtest",
                "/api/v1/backtests",
                keys["flooder"],
                {"symbol": (read.SYMBOL, SECOND_COIN)[i % 2], **FLOOD_BACKTEST},
            )
            for i in range(args.counts["backtest"])
        ]
        tasks = [asyncio.create_task(work) for work in heavy]
        polite = asyncio.create_task(
            after(
                args.polite_forecast_at,
                post_json(client, "polite", "/api/v1/predictions", keys["polite"], POLITE_FORECAST),
            )
        )
        outcomes = await polite_reads(port, keys["polite"], args, args.flood, warmup=0.0)
        await asyncio.wait([*tasks, polite], timeout=args.grace)
        answers = [task.result() for task in tasks if task.done()]
        for task in [*tasks, polite]:
            task.cancel()
        forecast_at, polite_answer = (
            polite.result() if polite.done() else (0.0, Answer("polite", error="no answer"))
        )
        backtests = await backtests_now(client, keys["flooder"], answers)
    return {
        "reads": outcomes,
        "answers": answers,
        "polite": polite_answer,
        "polite_at": forecast_at,
        "backtests": backtests,
        "seconds": time.perf_counter() - started,
        "slowest_reads": [
            {"path": o.key, "due_s": o.due - started, "ms": o.latency_ms, "status": o.status}
            for o in sorted(outcomes, key=lambda o: o.latency_ms)[-5:]
        ],
    }


async def backtests_now(
    client: httpx.AsyncClient, key: str, answers: list[Answer]
) -> list[dict[str, Any]]:
    """The accepted backtests as the API reports them after the flood."""
    found = []
    for answer in answers:
        if answer.backtest_id:
            response = await client.get(
                f"/api/v1/backtests/{answer.backtest_id}", headers={"X-API-Key": key}
            )
            body = response.json()
            found.append({k: body.get(k) for k in ("symbol", "status", "windows_done")})
    return found


async def phases(
    port: int, keys: dict[str, str], args: argparse.Namespace
) -> tuple[list[load.Outcome], dict[str, Any]]:
    quiet = await polite_reads(port, keys["polite"], args, args.quiet, warmup=args.warmup)
    log(f"quiet phase done ({len(quiet)} reads); flooding for {args.flood:g} s")
    return quiet, await flood(port, keys, args)


# ------------------------------------------------------------------ report


def tally(answers: list[Answer], kind: str, sent: int) -> dict[str, Any]:
    mine = [answer for answer in answers if answer.kind == kind]
    refused = [answer for answer in mine if answer.status == 429]
    statuses = Counter(str(a.status) if a.status else f"no answer ({a.error})" for a in mine)
    entry = {
        "sent": sent,
        "unfinished": sent - len(mine),
        "statuses": dict(sorted(statuses.items())),
        "problems": dict(sorted(Counter(f"{a.status} {a.slug}" for a in mine if a.slug).items())),
        "retry_after": dict(sorted(Counter(a.retry_after for a in refused).items(), key=str)),
        "429": len(refused),
        "429_without_retry_after": sum(1 for answer in refused if not answer.retry_after),
        "503": sum(1 for answer in mine if answer.status == 503),
        "seconds_min": min((answer.seconds for answer in mine), default=None),
        "seconds_max": max((answer.seconds for answer in mine), default=None),
    }
    if kind == "upload":
        entry["bytes_sent_max"] = max((a.bytes_sent or 0 for a in mine), default=0)
    return entry


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    quiet, flooded, polite = report["quiet"], report["flood"], report["polite_forecast"]
    ratio = report["p99_ratio"]
    refused = sum(entry["429"] for entry in report["flooder"].values())
    bare = sum(entry["429_without_retry_after"] for entry in report["flooder"].values())
    busy = sum(entry["503"] for entry in report["flooder"].values())
    return [
        {
            "target": "polite reads: 0 errors",
            "measured": f"{quiet['errors']} quiet, {flooded['errors']} under the flood",
            "met": quiet["errors"] + flooded["errors"] == 0,
        },
        {
            "target": f"polite read p99 under the flood <= {P99_FACTOR:g}x the quiet p99",
            "measured": f"{flooded['p99_ms']:.1f} ms vs {quiet['p99_ms']:.1f} ms: {ratio:.2f}x",
            "met": ratio <= P99_FACTOR,
        },
        {
            "target": "the polite forecast is accepted (200)",
            "measured": f"{polite['status'] or polite['error']} in {polite['seconds']:.2f} s",
            "met": polite["status"] == 200,
        },
        {
            "target": "the flooder gets 429s, each with Retry-After",
            "measured": f"{refused} 429s, {bare} without Retry-After",
            "met": refused > 0 and bare == 0,
        },
        {"target": "the flooder gets no 503", "measured": f"{busy} 503s", "met": busy == 0},
    ]


def summarise(
    quiet: list[load.Outcome], flooded: dict[str, Any], args: argparse.Namespace
) -> dict[str, Any]:
    polite: Answer = flooded["polite"]
    report: dict[str, Any] = {
        "rate": args.rate,
        "quiet_s": args.quiet,
        "warmup_s": args.warmup,
        "flood_s": args.flood,
        "timeout_s": args.timeout,
        "trickle_s": args.trickle,
        "limits": {name: Settings.model_fields[name].default for name in LIMITS},
        "seed_candles": {read.SYMBOL: read.SEED_CANDLES, SECOND_COIN: read.SEED_CANDLES},
        "polite_paths": [path for name, path, _ in load.MIX if name in POLITE_READS],
        "polite_forecast_request": POLITE_FORECAST,
        "flood_requests": {
            "counts": args.counts,
            "forecast": FLOOD_FORECAST,
            "backtest": FLOOD_BACKTEST,
            "backtest_model_windows": FLOOD_BACKTEST["windows"] * len(DEFAULT_MODELS),
            "upload_bytes": len(upload_body()),
        },
        "default_models": list(DEFAULT_MODELS),
        "server_cpu": read.SERVER_CPU,
        "load_cpu": load.LOAD_CPU,
        "quiet": phase_summary(quiet, args.quiet),
        "flood": phase_summary(flooded["reads"], args.flood),
        "polite_forecast": {
            "status": polite.status,
            "problem": polite.slug,
            "error": polite.error,
            "seconds": polite.seconds,
            "sent_at_s": flooded["polite_at"],
        },
        "flooder": {
            kind: tally(flooded["answers"], kind, sent) for kind, sent in args.counts.items()
        },
        "backtests_after_flood": flooded["backtests"],
        "flood_seconds": flooded["seconds"],
        "slowest_flood_reads": flooded["slowest_reads"],
    }
    report["p99_ratio"] = report["flood"]["p99_ms"] / report["quiet"]["p99_ms"]
    report["targets"] = targets(report)
    return report


# ------------------------------------------------------------------ driver


def check_reads(base: str, key: str) -> None:
    """Every polite read answers 200 before the clock starts."""
    for name, path, _ in load.MIX:
        if name in POLITE_READS:
            response = httpx.get(base + path, headers={"X-API-Key": key}, timeout=10)
            if response.status_code != 200:
                raise SystemExit(f"{name} answered {response.status_code}: {response.text[:300]}")


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is not on PATH (util-linux)")
    started, load_before, code_before = time.monotonic(), os.getloadavg(), code_fingerprint()
    # A SIGTERM (a stopped make, a timeout) ends the run through its clean-up, not around it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    name = common.scratch_name()
    url = asyncio.run(common.create_scratch_db(name))
    workdir = Path(tempfile.mkdtemp(prefix="bench-fairness-"))
    processes: list[read.Server] = []
    try:
        upgrade_database(url)
        asyncio.run(read.seed(url))
        asyncio.run(seed_second_coin(url))
        read.flush_redis()
        # The app's defaults but DEBUG (no SECRET_KEY needed); cwd has no .env file.
        env = read.base_env() | {
            "DATABASE_URL": url,
            "REDIS_URL": common.redis_url(),
            "DEBUG": "true",
        }
        keys, key_commands = {}, []
        for who in ("flooder", "polite"):
            keys[who], command = make_key(f"bench-{who}", workdir, env)
            key_commands.append(command)
        server = read.Server("real", "app.main:app", workdir, env)
        processes.append(server)
        worker = Worker(workdir, env)
        processes.append(worker)
        server.wait_ready("/health")
        wait_for_worker(server.base)
        check_reads(server.base, keys["polite"])
        log(f"server :{server.port} and worker up; {read.SYMBOL}, {SECOND_COIN} seeded; keys made")
        os.sched_setaffinity(0, {int(load.LOAD_CPU)})
        import uvloop

        quiet, flooded = uvloop.run(phases(server.port, keys, args))
        errors = [line for line in server.log_text().splitlines() if "Traceback" in line]
        commands = {"server": server.command, "worker": worker.command, "keys": key_commands}
    finally:
        for process in processes:
            process.stop()
        read.flush_redis()
        asyncio.run(common.drop_scratch_db(name))
        shutil.rmtree(workdir, ignore_errors=True)
        log(f"server and worker stopped, redis db flushed, scratch database {name} dropped")
    report = summarise(quiet, flooded, args)
    return {
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "seconds": time.monotonic() - started,
        "nproc": os.cpu_count(),
        "load_before": load_before,
        "code": code_before,
        "code_changed": code_fingerprint() != code_before,
        "git": git_state(),
        "commands": commands,
        "server_tracebacks": len(errors),
        **report,
    }


# Every option is a positive number: (flag, type, default, help).
OPTIONS = (
    ("--rate", float, 5.0, "polite reads per second"),
    ("--quiet", float, 20.0, "measured quiet seconds"),
    ("--warmup", float, 3.0, "quiet seconds sent, not counted"),
    ("--flood", float, 35.0, "measured flood seconds (the body timeout is 30)"),
    ("--timeout", float, 10.0, "seconds a polite read may take before it is an error"),
    ("--max-connections", int, 64, "polite reads in flight at most"),
    ("--trickle", float, 0.5, "seconds between two bytes of a slow upload"),
    ("--polite-forecast-at", float, 3.0, "seconds into the flood"),
    ("--grace", float, 60.0, "seconds to wait for the flood's answers after the reads"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for flag, kind, default, text in OPTIONS:
        parser.add_argument(flag, type=kind, default=default, help=text)
    parser.add_argument(
        "--kinds",
        default=",".join(FLOOD_COUNTS),
        help="the flooder's kinds of work, comma-separated (fewer: to tell their effects apart)",
    )
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    args = parser.parse_args()
    if any(value <= 0 for value in vars(args).values() if isinstance(value, int | float)):
        parser.error("every number must be positive")
    kinds = set(args.kinds.split(","))
    if not kinds <= FLOOD_COUNTS.keys():
        parser.error(f"--kinds takes some of {', '.join(FLOOD_COUNTS)}")
    args.counts = {kind: n if kind in kinds else 0 for kind, n in FLOOD_COUNTS.items()}
    report = run(args)
    for target in report["targets"]:
        verdict = "met" if target["met"] else "NOT met"
        log(f"{target['target']}: {target['measured']} ({verdict})")
    common.emit_report(report, args.output)


if __name__ == "__main__":
    main()

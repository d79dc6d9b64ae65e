"""Load run: mixed reads at a fixed rate against the real app, open loop.

Starts the real ``app.main:app`` as bench/read.py does (the same seeded scratch database with
20,000 hourly BTC candles, the bench Redis database, one uvicorn worker with read.py's flags
pinned to CPU 0), adds a few stored predictions (the app's own ``make_predictions`` with the
two random-walk models, so ``/predictions/latest`` has something to answer), and sends
requests from CPU 1 on a fixed schedule:

  request i is due at t0 + i / rate, whatever happened to the requests before it (open loop),
  and its latency is measured from that due time to the end of its response,

so when the server (or the generator) falls behind, the queueing shows in the latencies
instead of quietly slowing the schedule down (no coordinated omission; wrk is closed-loop).
The generator is asyncio on uvloop with raw HTTP/1.1 keep-alive connections, one request in
flight per connection, opened as needed up to --max-connections. Endpoints follow a fixed
mix (a shuffled, repeated 20-slot pattern, so the proportions are exact). Requests due in
the warm-up are sent but not counted. Prints a JSON report.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import read

from app.cli import upgrade_database

API = f"/api/v1/cryptocurrencies/{read.SYMBOL}"
# (key, path, share of requests in twentieths): price 40%, cached page 25%, daily page 10%,
# coin 10%, coverage 5%, latest predictions 5%, health 5%.
MIX: tuple[tuple[str, str, int], ...] = (
    ("price", f"{API}/price", 8),
    ("ohlcv500", f"{API}/ohlcv?limit=500", 5),
    ("ohlcv1d", f"{API}/ohlcv?interval=1d&limit=100", 2),
    ("coin", API, 2),
    ("coverage", f"{API}/coverage", 1),
    ("predictions", f"/api/v1/predictions/latest?symbol={read.SYMBOL}", 1),
    ("health", "/health", 1),
)
MIX_SEED = 11
PREDICTION_MODELS = ("random_walk", "random_walk_drift")
PREDICTION_HORIZONS = ("1h", "24h")
LOAD_CPU = read.WRK_CPU


def log(message: str) -> None:
    print(f"[load {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def seed_predictions(url: str) -> int:
    """Stored forecasts for BTC from the app's own service (cheap models, in-memory cache)."""
    from app.cache import CacheManager
    from app.database import Database
    from app.schemas.predictions import PredictionRequest
    from app.services.predictions import make_predictions

    database = Database.from_url(url)
    cache = CacheManager()
    cache.configure(None)
    request = PredictionRequest.model_validate(
        {
            "symbols": [read.SYMBOL],
            "horizons": list(PREDICTION_HORIZONS),
            "models": list(PREDICTION_MODELS),
        }
    )
    try:
        run = await make_predictions(database, cache, request)
    finally:
        await cache.close()
        await database.dispose()
    return run.stored


# ------------------------------------------------------------------ HTTP/1.1 client


class ResponseError(Exception):
    """The connection broke or sent something that is not an HTTP/1.1 response."""


class Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self.transport: Any = None  # uvloop's TCPTransport is not an asyncio.Transport
        self.buffer = bytearray()
        self.waiter: asyncio.Future[int] | None = None
        self.closed = False
        self.reusable = True

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ResponseError(f"connection lost: {exc!r}"))

    def send(self, raw: bytes) -> asyncio.Future[int]:
        assert self.transport is not None and self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(raw)
        return self.waiter

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            status = self._parse()
        except (ValueError, IndexError) as error:
            self._finish(exception=ResponseError(f"bad response: {error}"))
            self.abort()
            return
        if status is not None:
            self._finish(status=status)

    def _finish(self, status: int = 0, exception: Exception | None = None) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if exception is not None:
            waiter.set_exception(exception)
        else:
            waiter.set_result(status)

    def _parse(self) -> int | None:
        """The status once a whole response is buffered (and consumed), else None."""
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buffer[:end]).split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length, chunked = self._headers(lines[1:])
        start = end + 4
        finished = self._chunked_end(start) if chunked else start + length
        if finished is None or len(self.buffer) < finished:
            return None
        del self.buffer[:finished]
        return status

    def _headers(self, lines: list[bytes]) -> tuple[int, bool]:
        """Content-Length and whether the body is chunked; notes Connection: close."""
        length, chunked = 0, False
        for line in lines:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection" and b"close" in value.lower():
                self.reusable = False
        return length, chunked

    def _chunked_end(self, position: int) -> int | None:
        """Where a chunked body ends, or None while it is still arriving."""
        while True:  # chunk-size CRLF data CRLF ... 0 CRLF CRLF (no trailers expected)
            line_end = self.buffer.find(b"\r\n", position)
            if line_end < 0:
                return None
            size = int(bytes(self.buffer[position:line_end]).split(b";")[0], 16)
            position = line_end + 2 + size + 2
            if len(self.buffer) < position:
                return None
            if size == 0:
                return position


@dataclass
class Outcome:
    key: str
    due: float
    sent: float = 0.0
    status: int = 0
    error: str | None = None
    latency_ms: float = 0.0


@dataclass
class Generator:
    host: str
    port: int
    max_connections: int
    timeout: float
    idle: list[Connection] = field(default_factory=list)
    opened: int = 0
    in_flight: int = 0
    peak_in_flight: int = 0

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.max_connections)

    async def connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(Connection, self.host, self.port)
        self.opened += 1
        return protocol

    async def request(self, raw: bytes, outcome: Outcome) -> None:
        async with self.slots:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            connection: Connection | None = None
            try:
                connection = self._idle_connection() or await self.connect()
                outcome.sent = time.perf_counter()
                async with asyncio.timeout(self.timeout):
                    outcome.status = await connection.send(raw)
            except TimeoutError:
                outcome.error = "timeout"
            except OSError:
                outcome.error = "connect"
            except ResponseError:
                outcome.error = "read"
            except Exception as error:  # a bug here must show as errors, not vanish
                outcome.error = f"client: {error!r}"
            finally:
                self.in_flight -= 1
            outcome.latency_ms = (time.perf_counter() - outcome.due) * 1000
            if connection is not None:
                self._put_back(connection, outcome)

    def _idle_connection(self) -> Connection | None:
        while self.idle:
            candidate = self.idle.pop()
            if not candidate.closed:
                return candidate
        return None

    def _put_back(self, connection: Connection, outcome: Outcome) -> None:
        if outcome.error is None and connection.reusable and not connection.closed:
            self.idle.append(connection)
        else:
            connection.abort()

    async def warm(self, count: int) -> None:
        self.idle += await asyncio.gather(*(self.connect() for _ in range(count)))

    def close(self) -> None:
        for connection in self.idle:
            connection.abort()
        self.idle.clear()


def mix_pattern() -> list[str]:
    pattern = [key for key, _, share in MIX for _ in range(share)]
    assert len(pattern) == 20
    random.Random(MIX_SEED).shuffle(pattern)
    return pattern


async def generate(
    host: str, port: int, rate: float, warmup: float, duration: float, args: argparse.Namespace
) -> tuple[list[Outcome], dict[str, Any]]:
    loop = asyncio.get_running_loop()
    requests = {
        key: f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: load\r\n\r\n".encode()
        for key, path, _ in MIX
    }
    pattern = mix_pattern()
    generator = Generator(host, port, args.max_connections, args.timeout)
    await generator.warm(args.connections)
    total = round((warmup + duration) * rate)
    first_counted = round(warmup * rate)
    outcomes: list[Outcome] = []
    tasks: set[asyncio.Task[None]] = set()
    # perf_counter, not loop.time(): uvloop's clock moves in whole milliseconds.
    clock = time.perf_counter
    t0 = clock() + 0.1
    started = clock()
    i = 0
    while i < total:
        now = clock()
        while i < total and t0 + i / rate <= now:
            outcome = Outcome(pattern[i % len(pattern)], t0 + i / rate)
            if i >= first_counted:
                outcomes.append(outcome)
            task = loop.create_task(generator.request(requests[outcome.key], outcome))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < total:
            await asyncio.sleep(max(0.0, t0 + i / rate - clock()))
    sending = clock() - started
    if tasks:
        await asyncio.wait(set(tasks), timeout=args.timeout + 5)
    generator.close()
    facts = {
        "connections_opened": generator.opened,
        "peak_in_flight": generator.peak_in_flight,
        "sending_seconds": sending,
        "unfinished": len(tasks),
    }
    return outcomes, facts


# ------------------------------------------------------------------ statistics


def percentile(ordered: list[float], q: float) -> float:
    """Nearest rank: the smallest value with at least q of the samples at or below it."""
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def latency_summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50_ms": percentile(ordered, 0.50),
        "p90_ms": percentile(ordered, 0.90),
        "p99_ms": percentile(ordered, 0.99),
        "max_ms": ordered[-1] if ordered else math.nan,
    }


def summarise(outcomes: list[Outcome], duration: float) -> dict[str, Any]:
    def block(items: list[Outcome]) -> dict[str, Any]:
        statuses = Counter(str(o.status) for o in items if o.error is None)
        errors = Counter(o.error for o in items if o.error is not None)
        non_2xx = sum(n for status, n in statuses.items() if not status.startswith("2"))
        return {
            "requests": len(items),
            "statuses": dict(sorted(statuses.items())),
            "socket_errors": dict(sorted(errors.items())),
            "non_2xx": non_2xx,
            "errors": non_2xx + sum(errors.values()),
            **latency_summary([o.latency_ms for o in items]),
        }

    sends = [o.sent for o in outcomes if o.sent]
    lags = sorted((o.sent - o.due) * 1000 for o in outcomes if o.sent)
    overall = block(outcomes)
    overall["achieved_rate"] = (
        (len(sends) - 1) / (max(sends) - min(sends)) if len(sends) > 1 else math.nan
    )
    overall["completed_per_s"] = (len(outcomes) - overall["errors"]) / duration
    overall["send_lag_ms"] = {
        "p50": percentile(lags, 0.50),
        "p99": percentile(lags, 0.99),
        "max": lags[-1] if lags else math.nan,
    }
    overall["endpoints"] = {
        key: block([o for o in outcomes if o.key == key]) | {"path": path, "share": share / 20}
        for key, path, share in MIX
    }
    return overall


# ------------------------------------------------------------------ driver


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("taskset") is None:
        raise SystemExit("taskset is not on PATH (util-linux)")
    name = common.scratch_name()
    url = asyncio.run(common.create_scratch_db(name))
    server: read.Server | None = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-load-"))
    try:
        upgrade_database(url)
        asyncio.run(read.seed(url))
        stored = asyncio.run(seed_predictions(url))
        read.flush_redis()
        log(
            f"scratch database {name} seeded with {read.SEED_CANDLES:,} hourly {read.SYMBOL} "
            f"candles and {stored} predictions"
        )
        settings = read.real_settings()  # the same as the read bench's real app
        real_env = read.base_env() | {"DATABASE_URL": url, "REDIS_URL": common.redis_url()}
        real_env |= settings
        server = read.Server("real", "app.main:app", workdir, real_env)
        server.wait_ready("/health")
        for key, path, _ in MIX:  # every endpoint answers 200 before the clock starts
            status, body = read.http_get(server.base + path)
            if status != 200:
                raise SystemExit(f"{key} answered {status}: {body[:300]!r}")
        log(f"server up on :{server.port}; {args.rate:g} req/s for {args.duration:g} s")
        os.sched_setaffinity(0, {int(LOAD_CPU)})
        import uvloop

        outcomes, facts = uvloop.run(
            generate("127.0.0.1", server.port, args.rate, args.warmup, args.duration, args)
        )
        command = server.command
        outages = [
            line for line in server.log_text().splitlines() if read.CACHE_OUTAGE_MARK in line
        ]
    finally:
        if server is not None:
            server.stop()
        read.flush_redis()
        asyncio.run(common.drop_scratch_db(name))
        shutil.rmtree(workdir, ignore_errors=True)
        log(f"server stopped, redis db flushed, scratch database {name} dropped")
    report = summarise(outcomes, args.duration)
    log(
        f"sent {report['requests']:,} at {report['achieved_rate']:,.0f} req/s: "
        f"{report['errors']} errors, p50 {report['p50_ms']:.2f} ms, p99 {report['p99_ms']:.2f} ms"
    )
    return {
        "rate": args.rate,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "timeout_s": args.timeout,
        "connections_prepared": args.connections,
        "max_connections": args.max_connections,
        "mix": [{"key": k, "path": p, "share": s / 20} for k, p, s in MIX],
        "seed_candles": read.SEED_CANDLES,
        "predictions_stored": stored,
        "prediction_models": list(PREDICTION_MODELS),
        "prediction_horizons": list(PREDICTION_HORIZONS),
        "real_settings": settings,
        "server_cpu": read.SERVER_CPU,
        "load_cpu": LOAD_CPU,
        "commands": {"real": command},
        "real_server_cache_outages": len(outages),
        **facts,
        **report,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds sent, not counted")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, seconds")
    parser.add_argument("--connections", type=int, default=16, help="opened before the start")
    parser.add_argument("--max-connections", type=int, default=256, help="in flight at most")
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    args = parser.parse_args()
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0:
        parser.error("--rate and --duration must be positive, --warmup not negative")
    report = run(args)
    common.emit_report(report, args.output)


if __name__ == "__main__":
    main()

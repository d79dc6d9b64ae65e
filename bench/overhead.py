"""Where a cached read's time goes: the real app's layers, in process, against a bare app.

The read benchmark (bench/read.py) compares whole servers under wrk. This one calls the ASGI
apps directly, in one process, so each layer of the real app can be switched off in turn and
its cost read as a difference: ``GET /api/v1/cryptocurrencies/BTC/price`` answered from the
near cache (no database, no Redis read), 16 requests at a time, on these variants:

- ``bare``: a FastAPI app with one route returning the same bytes (the floor, as in read.py);
- ``real``: the app as deployed by default (Redis for the cache and the rate limiter);
- ``real, no access log``: ``LOG_LEVEL=WARNING`` (no JSON line per request);
- ``real, no rate limit``: ``RATE_LIMIT_ENABLED=false``;
- ``real, neither``: both off;
- ``real, neither, no own middleware``: also without the request-id/metrics, body-size and
  read-access middleware: FastAPI's routing and the endpoint alone;
- ``real, memory``: no Redis at all (in-process cache and rate-limit counts).

Variants run round-robin, ``--reps`` times each; medians of µs per request (wall) and of the
process's CPU µs per request (which leaves out Redis's own work) are reported. Prints a JSON
report. The data is the bundled demo seed in a scratch SQLite file (the cached path never
reads it); the bench Redis database is flushed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
import uvloop
from fastapi import FastAPI, Response

from app.cache import CacheManager
from app.cli import upgrade_database
from app.config import Settings
from app.database import Database
from app.main import create_app
from app.services.seed import seed_demo_data

PATH = "/api/v1/cryptocurrencies/BTC/price"
OWN_MIDDLEWARE = ("RequestContextMiddleware", "BodyLimitMiddleware", "ReadAccessMiddleware")
VARIANTS: dict[str, dict[str, Any]] = {
    "bare": {},
    "real": {},
    "real, no access log": {"LOG_LEVEL": "WARNING"},
    "real, no rate limit": {"RATE_LIMIT_ENABLED": False},
    "real, neither": {"LOG_LEVEL": "WARNING", "RATE_LIMIT_ENABLED": False},
    "real, neither, no own middleware": {"LOG_LEVEL": "WARNING", "RATE_LIMIT_ENABLED": False},
    "real, memory": {"REDIS_URL": ""},
}
Asgi = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def log(message: str) -> None:
    print(f"[overhead {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bare_app(body: bytes) -> FastAPI:
    app = FastAPI()

    @app.get(PATH)
    async def price() -> Response:
        return Response(body, media_type="application/json")

    return app


def real_settings(database_url: str, overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {
        "DATABASE_URL": database_url,
        "REDIS_URL": common.redis_url(),
        "DEBUG": True,
        "RATE_LIMIT_READS": common.RATE_LIMIT_READS,
        "JOBS_ENABLED": False,
    }
    return Settings(_env_file=None, **(values | overrides))  # type: ignore[call-arg]


class Client:
    """Calls an ASGI app as a server would, counting statuses."""

    def __init__(self, app: Asgi) -> None:
        self.app = app
        self.statuses: dict[int, int] = {}
        self.body = b""

    async def get(self) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": PATH,
            "raw_path": PATH.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"bench")],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status = message["status"]
                self.statuses[status] = self.statuses.get(status, 0) + 1
            elif message["type"] == "http.response.body":
                self.body = message.get("body", b"")

        await self.app(scope, receive, send)


async def measure(client: Client, requests: int, concurrency: int) -> tuple[float, float]:
    """µs per request: wall time, and this process's CPU time."""
    batches = requests // concurrency
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(batches):
        await asyncio.gather(*(client.get() for _ in range(concurrency)))
    done = batches * concurrency
    return (
        (time.perf_counter() - wall) / done * 1e6,
        (time.process_time() - cpu) / done * 1e6,
    )


async def one_rep(name: str, url: str, body: bytes, args: argparse.Namespace) -> dict[str, Any]:
    if name == "bare":
        client = Client(bare_app(body))
        await measure(client, args.warmup, args.concurrency)
        wall, cpu = await measure(client, args.requests, args.concurrency)
        return {"wall_us": wall, "cpu_us": cpu, "statuses": client.statuses}
    settings = real_settings(url, VARIANTS[name])
    cache = CacheManager()
    cache.configure(settings.REDIS_URL or None, settings.REDIS_MAX_CONNECTIONS)
    app = create_app(settings, cache=cache)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(args.log_sink)
    if name.endswith("no own middleware"):
        app.user_middleware = [
            m for m in app.user_middleware if m.cls.__name__ not in OWN_MIDDLEWARE
        ]
    client = Client(app)
    try:
        async with app.router.lifespan_context(app):
            await measure(client, args.warmup, args.concurrency)
            wall, cpu = await measure(client, args.requests, args.concurrency)
    finally:
        await cache.close()
    if client.body != body:
        raise SystemExit(f"{name}: the body differs from the bare app's")
    return {"wall_us": wall, "cpu_us": cpu, "statuses": client.statuses}


async def seed(url: str) -> bytes:
    database = Database.from_url(url)
    try:
        async with database.unit_of_work() as session:
            await seed_demo_data(session)
    finally:
        await database.dispose()
    # The body every variant must return: the real app's own, read once.
    settings = real_settings(url, {"REDIS_URL": "", "LOG_LEVEL": "WARNING"})
    cache = CacheManager()
    cache.configure(None)
    app = create_app(settings, cache=cache)
    client = Client(app)
    async with app.router.lifespan_context(app):
        await client.get()
    await cache.close()
    if client.statuses != {200: 1}:
        raise SystemExit(f"the real app answered {client.statuses} for {PATH}")
    return client.body


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(common.redis_url()).flushdb()


def summarise(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    variants: dict[str, Any] = {}
    for name, reps in runs.items():
        statuses: dict[int, int] = {}
        for rep in reps:
            for status, count in rep["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        variants[name] = {
            "wall_us": statistics.median(r["wall_us"] for r in reps),
            "cpu_us": statistics.median(r["cpu_us"] for r in reps),
            "wall_us_each": [round(r["wall_us"], 1) for r in reps],
            "statuses": statuses,
        }
    bare = variants["bare"]["wall_us"]
    for entry in variants.values():
        entry["bare_over_variant"] = bare / entry["wall_us"]
    return {
        "path": PATH,
        "requests": args.requests,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "reps": args.reps,
        "variants": variants,
    }


async def run(url: str, args: argparse.Namespace) -> dict[str, Any]:
    flush_redis()
    body = await seed(url)
    log(f"seeded {url}; the price body is {len(body)} bytes")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    try:
        for rep in range(args.reps):
            for name in VARIANTS:
                runs[name].append(await one_rep(name, url, body, args))
            log(f"rep {rep + 1}/{args.reps} done")
    finally:
        flush_redis()
    return summarise(runs, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000, help="measured, per variant and rep")
    parser.add_argument("--warmup", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        open(os.devnull, "w") as sink,
    ):
        url = f"sqlite:///{Path(tmp) / 'overhead.db'}"
        upgrade_database(url)  # alembic runs its own event loop: before ours
        args.log_sink = sink  # the access log goes where a server's stderr would, not here
        report = uvloop.run(run(url, args))
    common.emit_report(report, args.output)


if __name__ == "__main__":
    main()

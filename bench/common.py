"""Helpers shared by the benchmarks: the scratch database, machine facts, statistics."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
BACKEND = ROOT / "backend"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_SCRATCH_DB = "bench_crypto"
# Never created, dropped or written by the bench, whatever the environment says.
PROTECTED_DATABASES = frozenset({"postgres", "root", "test", "template0", "template1"})
# The app's default read limit (600/minute per client) would answer a benchmark from one
# address with 429s: the HTTP benches run the real app with this limit instead. The limiter
# still runs on every /api/ request and costs what it costs; nothing comes near this count.
RATE_LIMIT_READS = "1000000/minute"


def repo_relative(argument: str) -> str:
    """``argument`` as the repository names it: a path inside the clone relative to its root.

    Reports are committed and read on other machines, where this clone's location means nothing.
    """
    try:
        return str(Path(argument).relative_to(ROOT))
    except ValueError:
        return argument


def shown_command(argv: Sequence[str]) -> str:
    """A command line for a report: shell-quoted, with repository paths made relative."""
    return shlex.join(repo_relative(argument) for argument in argv)


def emit_report(report: dict[str, Any], output: Path | None) -> None:
    """A bench's JSON report on stdout, and in ``output`` too when given (bench/run.py reads it)."""
    text = json.dumps(report, indent=2, default=str)
    if output:
        output.write_text(text + "\n")
    print(text)


def admin_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_ADMIN_URL


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def scratch_name() -> str:
    name = os.environ.get("BENCH_DB_NAME") or DEFAULT_SCRATCH_DB
    if name in PROTECTED_DATABASES or not re.fullmatch(r"bench_[a-z0-9_]{1,40}", name):
        raise SystemExit(f"refusing scratch database name {name!r}: use bench_<something>")
    return name


def scratch_url(name: str | None = None) -> str:
    """The admin URL pointed at the scratch database, as a plain postgresql:// URL."""
    url = make_url(admin_url()).set(drivername="postgresql", database=name or scratch_name())
    return url.render_as_string(hide_password=False)


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def connect(url: str) -> asyncpg.Connection:
    return await asyncpg.connect(_asyncpg_dsn(url))


async def create_scratch_db(name: str | None = None) -> str:
    """Drop (if left over) and create the scratch database; return its URL."""
    name = name or scratch_name()
    admin = await connect(admin_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return scratch_url(name)


async def drop_scratch_db(name: str | None = None) -> None:
    name = name or scratch_name()
    admin = await connect(admin_url())
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def command_output(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    return (
        (done.stdout or done.stderr).strip().splitlines()[0] if done.stdout or done.stderr else ""
    )


async def postgres_facts(url: str) -> dict[str, Any]:
    conn = await connect(url)
    try:
        facts: dict[str, Any] = {"version": await conn.fetchval("SELECT version()")}
        for setting in (
            "shared_buffers",
            "synchronous_commit",
            "fsync",
            "wal_level",
            "max_wal_size",
            "checkpoint_timeout",
        ):
            facts[setting] = await conn.fetchval(f"SHOW {setting}")
        return facts
    finally:
        await conn.close()

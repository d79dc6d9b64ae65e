"""What every command shares: settings, the database and cache, and one-line failures."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer
from rich.console import Console

from app.config import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from pydantic import BaseModel

    from app.cache import CacheManager
    from app.database import Database

T = TypeVar("T")
M = TypeVar("M", bound="BaseModel")

# Every command that reports a result can print it as JSON for scripts.
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

console = Console()


def fail(message: str, code: int = 1) -> NoReturn:
    # One plain line: Rich would wrap it to the terminal width.
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as error:
        fail(str(error), 2)


def open_database(settings: Settings) -> Database:
    from app.database import Database

    return Database.from_url(settings.DATABASE_URL, pool_size=1, max_overflow=0)


def _cache_for(settings: Settings) -> CacheManager:
    from app.cache import CacheManager

    cache = CacheManager()
    cache.configure(settings.REDIS_URL or None, settings.REDIS_MAX_CONNECTIONS)
    return cache


async def _run_with_services(
    settings: Settings, work: Callable[[Database, CacheManager], Awaitable[T]]
) -> T:
    database = open_database(settings)
    cache = _cache_for(settings)
    try:
        return await work(database, cache)
    finally:
        await cache.close()
        await database.dispose()


def run_guarded(settings: Settings, work: Callable[[Database, CacheManager], Awaitable[T]]) -> T:
    """Run ``work`` on a fresh database and cache; known failures become one line and exit 1."""
    from app.errors import AppError, is_connection_failure

    try:
        return asyncio.run(_run_with_services(settings, work))
    except AppError as error:
        fail(error.detail)
    except Exception as error:
        if is_connection_failure(error):
            fail("the database cannot be reached; check DATABASE_URL")
        raise


def parse_request(model: type[M], **fields: object) -> M:
    """Build a request schema, turning the first validation error into one line."""
    from pydantic import ValidationError

    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "input"
        fail(f"{where}: {first['msg']}", 2)


def print_json(payload: object) -> None:
    print(json.dumps(payload, default=str))

"""API keys: ``keys create``, ``keys list`` and ``keys revoke``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.render import keys_table
from app.cli.runtime import JsonFlag, console, fail, print_json, run_guarded, settings_or_exit

if TYPE_CHECKING:
    from app.cache import CacheManager
    from app.database import Database
    from app.models import ApiKey

keys_cli = typer.Typer(help="API keys for the write endpoints.", no_args_is_help=True)


@keys_cli.command("create")
def keys_create(
    name: Annotated[str, typer.Option("--name", "-n", help="Who or what the key is for.")],
    scope: Annotated[
        list[str] | None,
        typer.Option("--scope", "-s", help="read, write or admin; repeatable (default write)."),
    ] = None,
    expires_days: Annotated[
        int | None, typer.Option(min=1, help="Days until the key stops working.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create a key. It is printed once: only its hash is stored."""
    from datetime import timedelta

    from app.services.api_keys import KeyScope, create_key

    settings = settings_or_exit()
    try:
        scopes = [KeyScope(value) for value in scope or ["write"]]
    except ValueError:
        fail("--scope must be read, write or admin", 2)
    if not 1 <= len(name.strip()) <= 100:
        fail("--name must be 1 to 100 characters", 2)
    expires = timedelta(days=expires_days) if expires_days else None

    async def work(database: Database, _cache: CacheManager) -> tuple[str, str, list[str]]:
        async with database.unit_of_work() as session:
            row, key = await create_key(session, name.strip(), scopes, expires_in=expires)
            return row.prefix, key, list(row.scopes)

    prefix, key, stored = run_guarded(settings, work)
    if as_json:
        print_json({"prefix": prefix, "key": key, "scopes": stored})
        return
    console.print(
        f"key [bold]{prefix}[/bold] ({', '.join(stored)}); store it now, it is not shown again:"
    )
    print(key)


@keys_cli.command("revoke")
def keys_revoke(
    prefix: Annotated[str, typer.Argument(help="The key's prefix (the 8 characters after cp_).")],
) -> None:
    """Revoke a key at once (cached verifications are dropped too)."""
    from app.services.api_keys import revoke_key

    settings = settings_or_exit()

    async def work(database: Database, cache: CacheManager) -> None:
        async with database.unit_of_work() as session:
            await revoke_key(session, cache, prefix)

    run_guarded(settings, work)
    console.print(f"key {prefix} revoked")


@keys_cli.command("list")
def keys_list(
    as_json: JsonFlag = False,
) -> None:
    """Every key's prefix, name, scopes and state (never the key itself)."""
    from app.services.api_keys import list_keys

    settings = settings_or_exit()

    async def work(database: Database, _cache: CacheManager) -> list[dict[str, object]]:
        async with database.unit_of_work() as session:
            return [_summary(row) for row in await list_keys(session)]

    rows = run_guarded(settings, work)
    if as_json:
        print_json(rows)
        return
    console.print(keys_table(rows))


def _summary(row: ApiKey) -> dict[str, object]:
    """What ``keys list`` shows of a key: never its hash."""
    return {
        "prefix": row.prefix,
        "name": row.name,
        "scopes": list(row.scopes),
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
        "revoked": row.revoked_at is not None,
        "last_used_at": row.last_used_at.isoformat() if row.last_used_at else None,
    }

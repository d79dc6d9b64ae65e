"""The database's schema and contents: ``db upgrade`` and ``seed``."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from app.cli.render import seed_table
from app.cli.runtime import console, open_database, settings_or_exit
from app.config import BACKEND_DIR, Settings

db_cli = typer.Typer(help="Database schema commands.", no_args_is_help=True)


def upgrade_database(database_url: str, revision: str = "head") -> None:
    from alembic.config import Config

    from alembic import command

    config = Config(str(BACKEND_DIR / "alembic.ini"))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    command.upgrade(config, revision)


@db_cli.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    settings = settings_or_exit()
    upgrade_database(settings.DATABASE_URL, revision)
    console.print(f"database at revision [bold]{revision}[/bold]")


async def _seed(settings: Settings, *, if_empty: bool) -> None:
    from app.services.seed import seed_demo_data, stored_candles

    database = open_database(settings)
    try:
        async with database.unit_of_work() as session:
            stored = await stored_candles(session)
            if if_empty and stored:
                console.print(f"database already holds {stored} candles; demo data not loaded")
                return
            report = await seed_demo_data(session)
    finally:
        await database.dispose()
    console.print(seed_table(report))
    console.print(
        f"coins created: {report.coins_created}, candles inserted: {report.candles_inserted}"
    )
    for name, count in report.candles_skipped.items():
        console.print(f"skipped {count} inconsistent rows in {name}")


def seed(
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing when any candle is already stored.")
    ] = False,
) -> None:
    """Load the bundled real market history; running it twice changes nothing."""
    asyncio.run(_seed(settings_or_exit(), if_empty=if_empty))

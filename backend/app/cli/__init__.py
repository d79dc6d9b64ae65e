"""The ``cryptopredict`` command line: the command tree, one module per group of commands.

Commands import the database, the services and the forecasting stack inside their bodies, not
at the top of their modules, so that ``cryptopredict --help`` starts without loading them.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer

from app.cli import data, db, forecasts, keys, processes
from app.cli.db import upgrade_database

__all__ = ["main", "upgrade_database"]

cli = typer.Typer(help="Crypto prediction backend: data, forecasts, scores.", no_args_is_help=True)
# Help lists the commands in this order, then the groups.
for command in (
    db.seed,
    processes.serve,
    data.backfill,
    forecasts.predict,
    forecasts.score,
    forecasts.backtest,
    forecasts.leaderboard,
    processes.worker,
):
    cli.command()(command)
cli.add_typer(db.db_cli, name="db")
cli.add_typer(data.ingest_cli, name="ingest")
cli.add_typer(keys.keys_cli, name="keys")


def main(argv: Sequence[str] | None = None) -> None:
    cli(args=list(argv) if argv is not None else None, prog_name="cryptopredict")

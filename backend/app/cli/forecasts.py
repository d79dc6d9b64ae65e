"""Forecasts and how good they are: ``predict``, ``score``, ``backtest``, ``leaderboard``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import Progress

from app.cli.render import leaderboard_table, predictions_table
from app.cli.runtime import (
    JsonFlag,
    console,
    fail,
    parse_request,
    print_json,
    run_guarded,
    settings_or_exit,
)

if TYPE_CHECKING:
    from app.cache import CacheManager
    from app.database import Database
    from app.schemas.predictions import BacktestOut, Leaderboard, PredictionRun, ScoreReport

ModelNames = Annotated[
    list[str] | None, typer.Option("--model", "-m", help="Model name; repeatable.")
]


def predict(
    symbols: Annotated[list[str], typer.Argument(help="Coins to forecast, e.g. BTC ETH.")],
    horizon: Annotated[
        list[str] | None, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d; repeatable.")
    ] = None,
    model: ModelNames = None,
    as_json: JsonFlag = False,
) -> None:
    """Forecast from each coin's newest closed candle and store the predictions."""
    from app.schemas.predictions import PredictionRequest
    from app.services.predictions import make_predictions

    settings = settings_or_exit()
    request = parse_request(
        PredictionRequest, symbols=symbols, horizons=horizon or ["24h"], models=model
    )

    async def work(database: Database, cache: CacheManager) -> PredictionRun:
        with console.status("fitting models", spinner="dots") if not as_json else _quiet():
            return await make_predictions(database, cache, request)

    run = run_guarded(settings, work)
    if as_json:
        print_json(run.model_dump(mode="json"))
        return
    console.print(predictions_table(run))
    console.print("* champion: the model the latest backtest recommends for this horizon")
    for skipped in run.skipped:
        console.print(
            f"skipped {skipped.model} for {skipped.symbol} {skipped.horizon.value}: "
            f"{skipped.reason}",
            markup=False,
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    yield


def score(
    as_json: JsonFlag = False,
) -> None:
    """Fill actual price and error for every prediction whose target candle is stored."""
    from app.services.scoring import score_due

    settings = settings_or_exit()

    async def work(database: Database, cache: CacheManager) -> ScoreReport:
        async with database.unit_of_work() as session:
            return await score_due(session, cache)

    report = run_guarded(settings, work)
    if as_json:
        print_json(report.model_dump())
    else:
        console.print(f"scored: {report.scored}, waiting for their candle: {report.waiting}")


def backtest(
    symbol: Annotated[str, typer.Argument(help="Coin to backtest.")],
    horizon: Annotated[str, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d.")] = "24h",
    windows: Annotated[int, typer.Option(help="Forecast origins.")] = 30,
    step: Annotated[
        int | None, typer.Option(help="Candles between origins (default: the horizon).")
    ] = None,
    model: ModelNames = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk-forward backtest of the models against the random walk, stored for the
    leaderboard."""
    from app.schemas.predictions import BacktestRequest
    from app.services import backtest_runs, backtests

    settings = settings_or_exit()
    request = parse_request(
        BacktestRequest,
        symbol=symbol,
        horizon=horizon,
        windows=windows,
        step=step,
        models=model,
    )

    async def work(database: Database, cache: CacheManager) -> BacktestOut:
        async with database.unit_of_work() as session:
            accepted = await backtests.start(session, cache, request)
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task(f"backtesting {accepted.symbol}", total=accepted.windows)
            await backtest_runs.execute(
                database,
                cache,
                accepted.id,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        async with database.unit_of_work() as session:
            return await backtests.get(session, accepted.id)

    result = run_guarded(settings, work)
    if as_json:
        print_json(result.model_dump(mode="json"))
        return
    if result.status != "succeeded" or result.result is None:
        fail(f"backtest {result.id} {result.status}: {result.error}")
    console.print(
        f"backtest [bold]{result.id}[/bold]: {result.windows} windows, "
        f"{result.step} {result.timeframe.value} candles apart"
    )
    _print_leaderboard(result.result.get("leaderboard", []), result.result.get("champion"))


def _print_leaderboard(rows: Sequence[Mapping[str, object]], champion: object) -> None:
    console.print(leaderboard_table(rows, champion))
    console.print(f"* champion: {champion} (the random walk unless a model beats it significantly)")


def leaderboard(
    symbol: Annotated[str, typer.Argument(help="Coin.")],
    horizon: Annotated[str, typer.Option("--horizon", "-H", help="1h, 4h, 24h or 7d.")] = "24h",
    as_json: JsonFlag = False,
) -> None:
    """Models ranked by MAE relative to the random walk, from the latest backtest."""
    from app.market import Horizon
    from app.services.leaderboard import latest as latest_leaderboard

    settings = settings_or_exit()
    try:
        chosen = Horizon(horizon)
    except ValueError:
        fail(f"--horizon must be one of {', '.join(h.value for h in Horizon)}", 2)

    async def work(database: Database, cache: CacheManager) -> Leaderboard:
        async with database.unit_of_work() as session:
            return await latest_leaderboard(session, cache, symbol, chosen)

    board = run_guarded(settings, work)
    if as_json:
        print_json(board.model_dump(mode="json"))
        return
    console.print(
        f"{board.symbol} {board.horizon.value}: backtest {board.backtest_id}, "
        f"{board.windows} windows from {board.first_origin} to {board.last_origin}"
    )
    _print_leaderboard([row.model_dump() for row in board.rows], board.champion)

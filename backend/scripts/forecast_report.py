"""Backtest every model on the bundled real data and write the results to docs/FORECASTING.md.

    make forecast-report        # or: cd backend && .venv/bin/python scripts/forecast_report.py

It builds a fresh embedded database (SQLite in a temporary folder, so nothing of yours is
touched), loads the demo data exactly as `make run` does, runs the walk-forward backtests
listed in PLAN through the same service the API and CLI use, and replaces the section
between the report markers of docs/FORECASTING.md. The plan was fixed before the first run
and is not tuned on its results: every model sees the same windows as the random walk.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

BACKEND = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BACKEND))

from app.cache import CacheManager  # noqa: E402
from app.cli import upgrade_database  # noqa: E402
from app.database import Database  # noqa: E402
from app.market import Horizon  # noqa: E402
from app.schemas.predictions import BacktestRequest  # noqa: E402
from app.services import backtest_runs, backtests  # noqa: E402
from app.services.predictions import TOLERANCE  # noqa: E402
from app.services.seed import seed_demo_data  # noqa: E402

DOC = BACKEND.parent / "docs" / "FORECASTING.md"
START, END = "<!-- forecast-report:start -->", "<!-- forecast-report:end -->"


@dataclass(frozen=True)
class Run:
    symbol: str
    horizon: Horizon
    windows: int
    step: int


# BTC: 5,999 contiguous hourly candles (2019-02-09 to 2019-10-17). ETH and LTC: daily
# candles, of which the newest contiguous run is 291 days (a 12-day hole in March 2019 ends
# it; bridging it would invent two weeks of flat prices).
PLAN = (
    Run("BTC", Horizon.H1, windows=300, step=11),
    Run("BTC", Horizon.H4, windows=200, step=19),
    Run("BTC", Horizon.H24, windows=120, step=24),
    Run("BTC", Horizon.D7, windows=80, step=24),
    Run("ETH", Horizon.H24, windows=80, step=1),
    Run("ETH", Horizon.D7, windows=80, step=1),
    Run("LTC", Horizon.H24, windows=80, step=1),
    Run("LTC", Horizon.D7, windows=80, step=1),
)


def log(message: str) -> None:
    print(f"[report {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run_plan(url: str, plan: tuple[Run, ...]) -> list[dict[str, Any]]:
    database = Database.from_url(url, pool_size=1, max_overflow=0)
    cache = CacheManager()
    cache.configure(None)
    results = []
    try:
        async with database.unit_of_work() as session:
            report = await seed_demo_data(session)
        log(f"seeded {report.candles_inserted:,} candles: {', '.join(report.series_loaded)}")
        for run in plan:
            request = BacktestRequest(
                symbol=run.symbol, horizon=run.horizon, windows=run.windows, step=run.step
            )
            started = time.monotonic()
            async with database.unit_of_work() as session:
                accepted = await backtests.start(session, cache, request)
            await backtest_runs.execute(database, cache, accepted.id)
            async with database.unit_of_work() as session:
                done = await backtests.get(session, accepted.id)
            seconds = time.monotonic() - started
            if done.status != "succeeded":
                raise SystemExit(f"{run}: backtest {done.status}: {done.error}")
            log(f"{run.symbol} {run.horizon.value}: {run.windows} windows in {seconds:.0f}s")
            results.append({**done.model_dump(mode="json"), "seconds": seconds})
    finally:
        await database.dispose()
    return results


# ---------------------------------------------------------------- markdown


def _n(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "n/a"


def leaderboard_table(result: dict[str, Any]) -> list[str]:
    summary = result["result"]
    lines = [
        "| # | model | rel. MAE | MAE (USD) | RMSE | MAPE % | sMAPE % | MASE | dir. acc. "
        "| up share | cov. 80% | cov. 95% | DM stat | DM p | fit failures |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in summary["leaderboard"]:
        name = row["model"] + (" (champion)" if row["model"] == summary["champion"] else "")
        lines.append(
            f"| {row['rank']} | {name} | {_n(row['relative_mae'], '.3f')} | "
            f"{_n(row['mae'], ',.2f')} | {_n(row['rmse'], ',.2f')} | {_n(row['mape'], '.2f')} | "
            f"{_n(row['smape'], '.2f')} | {_n(row['mase'], '.3f')} | "
            f"{_n(row['directional_accuracy'], '.1%')} | {_n(row['up_share'], '.1%')} | "
            f"{_n(row['coverage_80'], '.1%')} | {_n(row['coverage_95'], '.1%')} | "
            f"{_n(row['dm_statistic'], '.2f')} | {_n(row['dm_p_value'], '.3f')} | "
            f"{row.get('fit_failures', 0)} |"
        )
    return lines


def pooled_calibration(results: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Per horizon and bucket: (count, sum of confidences, hits) over every coin and model."""
    pooled: dict[str, dict[str, list[float]]] = defaultdict(dict)
    for result in results:
        horizon = result["horizon"]
        for model in result["result"]["models"].values():
            for bucket in model["calibration"]:
                label = f"{bucket['lower']:.1f}-{bucket['upper']:.1f}"
                entry = pooled[horizon].setdefault(label, [0, 0.0, 0.0])
                count = bucket["count"]
                if count:
                    entry[0] += count
                    entry[1] += bucket["mean_confidence"] * count
                    entry[2] += bucket["hit_rate"] * count
    return pooled


def calibration_section(results: list[dict[str, Any]]) -> list[str]:
    pooled = pooled_calibration(results)
    labels = sorted({label for buckets in pooled.values() for label in buckets})
    lines = [
        "| horizon (tolerance) | " + " | ".join(f"confidence {label}" for label in labels) + " |",
        "|---|" + "---:|" * len(labels),
    ]
    for horizon in (h.value for h in Horizon):
        if horizon not in pooled:
            continue
        cells = []
        for label in labels:
            count, conf, hits = pooled[horizon].get(label, [0, 0.0, 0.0])
            cells.append(
                f"{conf / count:.2f} → **{hits / count:.2f}** (n={int(count)})" if count else "-"
            )
        tolerance = TOLERANCE[Horizon(horizon)]
        lines.append(f"| {horizon} (±{tolerance:.1%}) | " + " | ".join(cells) + " |")
    return lines


def per_model_calibration(result: dict[str, Any]) -> list[str]:
    models = result["result"]["models"]
    labels = [
        f"{b['lower']:.1f}-{b['upper']:.1f}" for b in next(iter(models.values()))["calibration"]
    ]
    lines = [
        "| model | scale | " + " | ".join(labels) + " |",
        "|---|---:|" + "---:|" * len(labels),
    ]
    for name, model in models.items():
        cells = [
            f"{b['mean_confidence']:.2f} → {b['hit_rate']:.2f} ({b['count']})"
            if b["count"]
            else "-"
            for b in model["calibration"]
        ]
        lines.append(f"| {name} | {_n(model['sigma_scale'], '.2f')} | " + " | ".join(cells) + " |")
    return lines


def per_model_section(results: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for result in results:
        if (result["symbol"], result["horizon"]) in (("BTC", "24h"), ("ETH", "24h")):
            lines += [
                f"Per model, {result['symbol']} {result['horizon']} (second-half windows; "
                "`scale` as later used for live predictions, fitted on all windows):",
                "",
                *per_model_calibration(result),
                "",
            ]
    return lines


def render(results: list[dict[str, Any]], facts: dict[str, Any]) -> str:
    lines = [
        START,
        "",
        "## Leaderboards on the bundled real data",
        "",
        f"Command: `{facts['command']}` ({facts['minutes']:.1f} minutes on {facts['machine']}; "
        f"finished {facts['finished']} UTC; {facts['versions']}).",
        "",
        "Each table is one walk-forward backtest through `POST /api/v1/backtests`' code path: "
        "rolling origins `step` candles apart, each model fitted only on the candles up to the "
        "origin (at most the newest 2,000, as for live predictions) and scored on the close "
        "`horizon` later. Every model is scored on the same windows as the random walk. "
        "Relative MAE < 1 beats the random walk; the Diebold-Mariano test (absolute errors, "
        "Harvey-Leybourne-Newbold correction, overlapping targets accounted for) says whether "
        "that is more than luck. Directional accuracy should be read against the up share "
        '(always saying "up" scores the up share). The champion is the random walk unless a '
        "model is better with p < 0.05.",
        "",
    ]
    for result in results:
        summary = result["result"]
        origins = summary["origins"]
        lines += [
            f"### {result['symbol']}, {result['horizon']} ahead",
            "",
            f"{result['windows']} windows, {result['step']} {result['timeframe']} candles apart, "
            f"origins {origins[0]} to {origins[-1]}; champion: **{summary['champion']}**.",
            "",
            *leaderboard_table(result),
            "",
        ]
    lines += [
        "## Calibration of the confidence score",
        "",
        "`confidence_score` is the probability the model gives to the actual price landing "
        "within the horizon's tolerance of its prediction. In each backtest the spread "
        "correction (`scale`) is fitted on the first half of the windows and the scores are "
        "checked on the second half only. Cells: mean confidence in the bucket → **observed "
        "hit rate** (windows). Pooled over coins and models, per horizon:",
        "",
        *calibration_section(results),
        "",
        *per_model_section(results),
        END,
    ]
    return "\n".join(lines)


def write_doc(section: str) -> None:
    text = DOC.read_text() if DOC.exists() else "# Forecasting\n\n"
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + section + after
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-doc", action="store_true", help="update docs/FORECASTING.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--only", help="run only this symbol (a quick look; implies no doc)")
    args = parser.parse_args()
    plan = tuple(run for run in PLAN if args.only in (None, run.symbol))
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="forecast-report-") as folder:
        url = f"sqlite:///{folder}/report.db"
        upgrade_database(url)
        results = asyncio.run(run_plan(url, plan))
    facts = {
        "command": "make forecast-report",
        "minutes": (time.monotonic() - started) / 60,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "versions": ", ".join(
            f"{name} {metadata.version(name)}" for name in ("statsforecast", "lightgbm", "numpy")
        ),
    }
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    if args.write_doc and args.only is None:
        write_doc(render(results, facts))
        log(f"wrote {DOC}")
    else:
        print(render(results, facts))


if __name__ == "__main__":
    main()

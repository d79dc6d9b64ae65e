"""Forecasting speed benchmark: the project's prediction path against the libraries' own APIs.

    make bench-forecast             # or: backend/.venv/bin/python bench/forecast.py --write-doc

One data set, generated once (seeded, deterministic) and loaded by binary COPY (untimed):
100 coins x 17,520 hourly candles (2 years), a geometric random walk per coin ending with the
last candle that closed before the run, so every candle counts as closed.

  ours      ``app.services.predictions.make_predictions`` with the default model set and
            horizon 24h, in chunks of 20 coins (``PredictionRequest``'s maximum), each chunk read in
            one unit of work and written in another (commits included; no connection is held
            while fitting), on a fresh in-process cache per run. It
            reads each coin's newest 2,000 closed candles, fits the five default models per coin
            and upserts one row per model. Timed end to end; its parts (candle read, fitting per
            model, lookups, upsert + read back, commit) are measured by thin wrappers installed
            by this script around the functions ``make_predictions`` calls.
  baseline  (1) ``StatsForecast([AutoETS, AutoTheta, Naive, RandomWalkWithDrift], freq="h",
            n_jobs=1).forecast(h=24, level=[80, 95])`` on a long frame holding, per coin, the
            same 2,000 log closes our models fit; (2) LightGBM called directly on the training
            matrix our ``lightgbm_returns`` model (code version 2, direct 24-step strategy)
            builds: features computed here with numpy, the model's two ``lightgbm.train`` calls
            (purged holdout, then all rows) with its parameters, one prediction per coin. The
            script refuses to run against another code version of that model: the replica
            would no longer be the same computation.
  context   the statsforecast batch on the full 2-year frame, if one coin's timing says the
            whole batch fits under --full-frame-cap seconds; skipped with a note otherwise.

Runs are interleaved (ours, baseline, ours, baseline, ...). Checks: coins x 5 prediction rows for
24h with no duplicate key, a rerun adds no row, the frame equals what the app reads, the feature
matrices are identical, and the stored point forecasts agree with the libraries' own.

Environment: BENCH_DATABASE_URL (admin connection, only to create and drop the scratch database),
BENCH_DB_NAME (default bench_crypto). Redis is not used (the cache is the in-process one).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import json
import math
import os
import platform
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from run import code_fingerprint, git_state

CODE_AT_START = code_fingerprint()  # before the app is imported: what this process runs

import lightgbm  # noqa: E402
import pandas as pd  # noqa: E402
from numpy.lib.stride_tricks import sliding_window_view  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession  # noqa: E402
from statsforecast import StatsForecast  # noqa: E402
from statsforecast.models import AutoETS, AutoTheta, Naive, RandomWalkWithDrift  # noqa: E402

import app.repositories.backtests as backtests_repo  # noqa: E402
import app.repositories.predictions as predictions_repo  # noqa: E402
import app.services.coins as coins_service  # noqa: E402
import app.services.predictions as service  # noqa: E402
from app.cache import CacheManager  # noqa: E402
from app.cli import upgrade_database  # noqa: E402
from app.database import Database  # noqa: E402
from app.forecasting import DEFAULT_MODELS, get_model  # noqa: E402
from app.forecasting.features import feature_matrix  # noqa: E402
from app.forecasting.models.gradient_boosting import (  # noqa: E402
    HOLDOUT_SHARE,
    PREDICT_PARAMS,
    LightGbmReturns,
)
from app.market import Horizon  # noqa: E402
from app.repositories import cryptocurrencies  # noqa: E402
from app.repositories.market_data_rows import COLUMNS  # noqa: E402
from app.schemas.predictions import PredictionRequest  # noqa: E402
from app.services.price_series import load_series  # noqa: E402

DOC = common.ROOT / "docs" / "FORECASTING.md"
START_MARKER = "<!-- forecast-bench:start -->"
END_MARKER = "<!-- forecast-bench:end -->"
SEED = 20_241_125
SOURCE = "bench"
HORIZON = Horizon.H24
STEPS = 24
LEVELS = [80, 95]
CHUNK = 20  # PredictionRequest.symbols allows at most 20
TARGET = 2.0  # ours end to end <= 2x the libraries' own
TRAIN = service.TRAIN_CANDLES
# The code version of lightgbm_returns that lgbm_direct_one replicates.
REPLICATED_LIGHTGBM_VERSION = "2"
LIBRARIES = ("statsforecast", "coreforecast", "lightgbm", "numpy", "pandas", "scipy")
TIMES = "\u00d7"  # the multiplication sign, in the markdown
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
# The statsforecast column standing for each of our models (point forecasts compared).
COUNTERPART = {
    "random_walk": "Naive",
    "random_walk_drift": "RWD",
    "auto_ets": "AutoETS",
    "auto_theta": "AutoTheta",
    "lightgbm_returns": "lightgbm_direct",
}


def log(message: str) -> None:
    print(f"[forecast {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ data


def symbol_of(k: int) -> str:
    return f"FC{k:03d}"


def last_closed_open(now: datetime) -> datetime:
    """Open time (naive UTC) of the newest hourly candle that closed before ``now``."""
    return now.replace(minute=0, second=0, microsecond=0, tzinfo=None) - timedelta(hours=1)


def generate_coin(k: int, hours: int) -> dict[str, np.ndarray]:
    """Seeded geometric random walk with valid OHLC: high >= max(open, close), low <= min."""
    rng = np.random.default_rng(SEED + k)
    sigma = rng.uniform(0.004, 0.015)  # hourly log-return volatility
    start = 10.0 ** rng.uniform(-1.0, 4.5)
    log_close = math.log(start) + np.cumsum(rng.normal(0.0, sigma, hours))
    close = np.exp(log_close)
    open_ = np.empty(hours)
    open_[0] = start
    open_[1:] = close[:-1]
    high = np.maximum(open_, close) * (1.0 + rng.exponential(sigma / 3.0, hours))
    low = np.minimum(open_, close) * (1.0 - np.minimum(rng.exponential(sigma / 3.0, hours), 0.5))
    volume = rng.exponential(1_000.0, hours)
    assert np.all(low > 0) and np.all(high >= np.maximum(open_, close))
    assert np.all(low <= np.minimum(open_, close))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


async def load_data(
    database: Database, url: str, coins: int, hours: int, first_open: datetime
) -> tuple[list[int], dict[int, np.ndarray]]:
    """Create the coins (the app's repository) and COPY their candles; return ids and closes."""
    async with database.unit_of_work() as session:
        ids = [
            (await cryptocurrencies.create(session, symbol=symbol_of(k), name=f"Bench coin {k}")).id
            for k in range(coins)
        ]
    stamps = [first_open + timedelta(hours=i) for i in range(hours)]
    created = datetime.now(UTC).replace(tzinfo=None)
    closes: dict[int, np.ndarray] = {}
    conn = await common.connect(url)
    try:
        for k, coin_id in enumerate(ids):
            data = generate_coin(k, hours)
            closes[coin_id] = data["close"]
            records = list(
                zip(
                    [coin_id] * hours,
                    stamps,
                    data["open"].tolist(),
                    data["high"].tolist(),
                    data["low"].tolist(),
                    data["close"].tolist(),
                    data["volume"].tolist(),
                    [None] * hours,
                    [SOURCE] * hours,
                    [created] * hours,
                    strict=True,
                )
            )
            await conn.copy_records_to_table("market_data", records=records, columns=list(COLUMNS))
        await conn.execute("VACUUM (ANALYZE) market_data")
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()
    return ids, closes


def long_frame(
    ids: list[int], closes: dict[int, np.ndarray], first_open: datetime, points: int
) -> pd.DataFrame:
    """(unique_id, ds, y): per coin its newest ``points`` log closes, oldest first."""
    hours = len(closes[ids[0]])
    ds = pd.date_range(first_open + timedelta(hours=hours - points), periods=points, freq="h")
    return pd.DataFrame(
        {
            "unique_id": np.repeat([symbol_of(k) for k in range(len(ids))], points),
            "ds": np.tile(ds.values, len(ids)),
            "y": np.concatenate([np.log(closes[cid][-points:]) for cid in ids]),
        }
    )


# ------------------------------------------------------------------ ours, with its parts


class Parts:
    """Wall seconds spent inside the functions make_predictions calls, summed per label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, label: str, seconds: float) -> None:
        self.seconds[label] += seconds
        self.calls[label] += 1


PARTS = Parts()


def _async_timed(label: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await func(*args, **kwargs)
        finally:
            PARTS.add(label, time.perf_counter() - started)

    return wrapper


def _forecast_one_timed(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(model: Any, closes: np.ndarray, steps: int) -> Any:
        started = time.perf_counter()
        try:
            return func(model, closes, steps)
        finally:
            PARTS.add(f"fit:{model.name}", time.perf_counter() - started)

    return wrapper


def _sync_timed(label: str, func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return func(*args, **kwargs)
        finally:
            PARTS.add(label, time.perf_counter() - started)

    return wrapper


def install_wrappers() -> None:
    """Time what make_predictions calls, where it looks the names up at call time."""
    service.load_series = _async_timed("read_candles", service.load_series)
    service.forecast_models = _sync_timed("fit", service.forecast_models)
    service._forecast_one = _forecast_one_timed(service._forecast_one)
    coins_service.get_coin = _async_timed("lookup_coin", coins_service.get_coin)
    backtests_repo.latest_succeeded = _async_timed(
        "lookup_calibration", backtests_repo.latest_succeeded
    )
    predictions_repo.upsert = _async_timed("write_upsert", predictions_repo.upsert)
    predictions_repo.by_keys = _async_timed("read_back", predictions_repo.by_keys)
    # Commits (two per call: the read's and the write's) + after-commit cache invalidation.
    AsyncSession.commit = _async_timed("commit", AsyncSession.commit)  # type: ignore[method-assign]


async def run_ours(database: Database, symbols: list[str]) -> dict[str, Any]:
    cache = CacheManager()
    cache.configure(None)  # in-process, fresh per run: every run does the same lookups
    PARTS.seconds.clear()
    PARTS.calls.clear()
    stored = made = 0
    skipped: list[Any] = []
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    for first in range(0, len(symbols), CHUNK):
        request = PredictionRequest(symbols=symbols[first : first + CHUNK], horizons=[HORIZON])
        result = await service.make_predictions(database, cache, request)
        stored += result.stored
        made += len(result.predictions)
        skipped += result.skipped
    seconds = time.perf_counter() - started
    cpu = time.process_time() - cpu
    await cache.close()
    parts = dict(PARTS.seconds)
    fit_models = {k.split(":", 1)[1]: v for k, v in parts.items() if k.startswith("fit:")}
    accounted = sum(
        parts.get(k, 0.0)
        for k in (
            "read_candles",
            "fit",
            "lookup_coin",
            "lookup_calibration",
            "write_upsert",
            "read_back",
            "commit",
        )
    )
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "read_candles": parts.get("read_candles", 0.0),
        "fit": parts.get("fit", 0.0),
        "fit_per_model": fit_models,
        "fit_outside_models": parts.get("fit", 0.0) - sum(fit_models.values()),
        "lookups": parts.get("lookup_coin", 0.0) + parts.get("lookup_calibration", 0.0),
        "write_upsert": parts.get("write_upsert", 0.0),
        "read_back": parts.get("read_back", 0.0),
        "commit": parts.get("commit", 0.0),
        "rest": seconds - accounted,
        "calls": dict(PARTS.calls),
        "stored": stored,
        "returned_predictions": made,
        "skipped": [s.model_dump(mode="json") for s in skipped],
    }


# ------------------------------------------------------------------ the libraries' own


def statsforecast_models() -> list[Any]:
    return [AutoETS(season_length=1), AutoTheta(season_length=1), Naive(), RandomWalkWithDrift()]


def statsforecast_batch(frame: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    gc.collect()
    started = time.perf_counter()
    sf = StatsForecast(models=statsforecast_models(), freq="h", n_jobs=1)
    result = sf.forecast(df=frame, h=STEPS, level=LEVELS)
    return time.perf_counter() - started, result


def lgbm_setup() -> dict[str, Any]:
    """The parameters our lightgbm_returns model trains with (read off a default instance)."""
    model = get_model("lightgbm_returns", max_train=TRAIN)
    if model.code_version != REPLICATED_LIGHTGBM_VERSION or not isinstance(model, LightGbmReturns):
        raise SystemExit(
            f"lightgbm_returns is at code version {model.code_version}; the LightGBM baseline "
            f"in bench/forecast.py replicates version {REPLICATED_LIGHTGBM_VERSION}: update "
            "lgbm_direct_one to the model's new computation first"
        )
    spec = model.spec
    return {
        "params": dict(model.params),
        "rounds": model.n_estimators,
        "names": list(spec.names),
        "lags": spec.lags,
        "vol": spec.volatility_window,
        "short": spec.short_window,
        "long": spec.long_window,
        "look_back": spec.returns_needed,
    }


def features_numpy(log_y: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    """Lagged returns, rolling std, two cumulative returns; rows without full look-back NaN."""
    n = log_y.shape[0]
    returns = np.full(n, np.nan)
    returns[1:] = np.diff(log_y)
    matrix = np.full((n, cfg["lags"] + 3), np.nan)
    for k in range(cfg["lags"]):
        matrix[k:, k] = returns[: n - k]
    w = cfg["vol"]
    matrix[w - 1 :, cfg["lags"]] = sliding_window_view(returns, w).std(axis=1, ddof=1)
    for col, s in ((cfg["lags"] + 1, cfg["short"]), (cfg["lags"] + 2, cfg["long"])):
        matrix[s:, col] = log_y[s:] - log_y[:-s]
    matrix[: cfg["look_back"]] = np.nan
    return matrix


def lgbm_direct_one(closes: np.ndarray, cfg: dict[str, Any]) -> float:
    """lightgbm_returns version 2 with LightGBM called directly; returns the h-step log mean.

    Direct strategy: the target of row t is log_y[t + h] - log_y[t]; a holdout model on the
    earliest rows (h rows purged before the latest 20 %) gives the spread, a model on all rows
    the point forecast from the newest row's features.
    """
    log_y = np.log(closes[-TRAIN:])
    features = features_numpy(log_y, cfg)
    start, last = cfg["look_back"], len(log_y) - STEPS
    x, y = features[start:last], log_y[start + STEPS :] - log_y[start:last]

    def train(xs: np.ndarray, ys: np.ndarray) -> Any:
        data = lightgbm.Dataset(xs, label=ys, feature_name=cfg["names"], params={"verbosity": -1})
        return lightgbm.train(cfg["params"], data, num_boost_round=cfg["rounds"])

    holdout = max(1, round(len(y) * HOLDOUT_SHARE))
    train_end = max(1, len(y) - holdout - STEPS)
    first = train(x[:train_end], y[:train_end])
    residuals = y[-holdout:] - first.predict(x[-holdout:], **PREDICT_PARAMS)
    _sigma_h = math.sqrt(float(np.mean(residuals**2)))  # computed, as the model does
    booster = train(x, y)
    return float(log_y[-1] + booster.predict(features[-1:], **PREDICT_PARAMS)[0])


def lgbm_direct(ids: list[int], closes: dict[int, np.ndarray], cfg: dict[str, Any]) -> Any:
    gc.collect()
    started = time.perf_counter()
    out = {cid: lgbm_direct_one(closes[cid], cfg) for cid in ids}
    return time.perf_counter() - started, out


def run_baseline(
    frame: pd.DataFrame, ids: list[int], closes: dict[int, np.ndarray], cfg: dict[str, Any]
) -> tuple[dict[str, Any], pd.DataFrame, dict[int, float]]:
    cpu = time.process_time()
    sf_seconds, sf_result = statsforecast_batch(frame)
    lgbm_seconds, lgbm_result = lgbm_direct(ids, closes, cfg)
    run = {
        "statsforecast": sf_seconds,
        "lightgbm": lgbm_seconds,
        "seconds": sf_seconds + lgbm_seconds,
        "cpu_seconds": time.process_time() - cpu,  # includes two gc.collect() calls
    }
    return run, sf_result, lgbm_result


# ------------------------------------------------------------------ checks


async def check_rows(url: str, coins: int) -> dict[str, Any]:
    conn = await common.connect(url)
    try:
        rows, distinct = await conn.fetchrow(
            "SELECT count(*), count(DISTINCT (cryptocurrency_id, model_name, horizon, "
            "target_timestamp)) FROM predictions WHERE horizon = $1",
            HORIZON.value,
        )
        per_model = dict(
            await conn.fetch(
                "SELECT model_name, count(*) FROM predictions WHERE horizon = $1 "
                "GROUP BY model_name ORDER BY model_name",
                HORIZON.value,
            )
        )
        other = await conn.fetchval(
            "SELECT count(*) FROM predictions WHERE horizon <> $1", HORIZON.value
        )
    finally:
        await conn.close()
    expected = coins * len(DEFAULT_MODELS)
    ok = (
        rows == expected
        and distinct == rows
        and other == 0
        and per_model == {m: coins for m in sorted(DEFAULT_MODELS)}
    )
    return {
        "rows": rows,
        "expected": expected,
        "duplicates": rows - distinct,
        "per_model": per_model,
        "other_horizons": other,
        "ok": ok,
    }


async def check_frame(
    database: Database, ids: list[int], frame: pd.DataFrame, now: datetime
) -> dict[str, Any]:
    """The frame's rows are exactly what the app's load_series reads (values and times)."""
    cache = CacheManager()
    cache.configure(None)
    mismatched: list[str] = []
    grouped = {uid: g for uid, g in frame.groupby("unique_id", sort=False)}
    async with database.unit_of_work() as session:
        for k, _cid in enumerate(ids):
            coin = await coins_service.get_coin(session, cache, symbol_of(k))
            series = await load_series(session, cache, coin, candles=TRAIN, now=now)
            part = grouped[symbol_of(k)]
            opens = pd.DatetimeIndex([o.replace(tzinfo=None) for o in series.opens])
            same = (
                series.filled == 0
                and len(series.closes) == len(part)
                and np.array_equal(np.log(series.closes), part["y"].to_numpy())
                and opens.equals(pd.DatetimeIndex(part["ds"]))
            )
            if not same:
                mismatched.append(symbol_of(k))
    await cache.close()
    return {"coins": len(ids), "mismatched": mismatched, "ok": not mismatched}


def check_features(ids: list[int], closes: dict[int, np.ndarray], cfg: dict[str, Any]) -> Any:
    """The bench's numpy features against the app's feature_matrix, bit for bit, all coins."""
    spec = get_model("lightgbm_returns", max_train=TRAIN).spec
    worst = 0.0
    identical = True
    for cid in ids:
        log_y = np.log(closes[cid][-TRAIN:])
        ours, mine = feature_matrix(log_y, spec), features_numpy(log_y, cfg)
        identical &= bool(np.array_equal(ours, mine, equal_nan=True))
        both = ~np.isnan(ours)
        worst = max(worst, float(np.max(np.abs(ours[both] - mine[both]), initial=0.0)))
    return {"identical": identical, "max_abs_difference": worst}


async def check_forecasts(
    url: str,
    ids: list[int],
    sf_result: pd.DataFrame,
    lgbm_result: dict[int, float],
) -> dict[str, Any]:
    """Our stored point forecasts (h=24) against the libraries' own, per model, all coins."""
    conn = await common.connect(url)
    try:
        stored = await conn.fetch(
            "SELECT cryptocurrency_id, model_name, predicted_price, lower_80, upper_80, "
            "lower_95, upper_95 FROM predictions WHERE horizon = $1",
            HORIZON.value,
        )
    finally:
        await conn.close()
    frame = sf_result.reset_index() if "unique_id" not in sf_result.columns else sf_result
    last = frame.groupby("unique_id", sort=False).tail(1).set_index("unique_id")
    symbol = {cid: symbol_of(k) for k, cid in enumerate(ids)}
    diffs: dict[str, list[float]] = defaultdict(list)
    bounds: list[float] = []
    for row in stored:
        column = COUNTERPART[row["model_name"]]
        if column == "lightgbm_direct":
            theirs = math.exp(lgbm_result[row["cryptocurrency_id"]])
        else:
            theirs = math.exp(float(last.loc[symbol[row["cryptocurrency_id"]], column]))
        diffs[row["model_name"]].append(abs(row["predicted_price"] / theirs - 1.0))
        if row["model_name"] == "auto_ets":
            for level in LEVELS:
                for side, name in (("lo", "lower"), ("hi", "upper")):
                    sf_bound = float(
                        last.loc[symbol[row["cryptocurrency_id"]], f"AutoETS-{side}-{level}"]
                    )
                    bounds.append(abs(row[f"{name}_{level}"] / math.exp(sf_bound) - 1.0))
    return {
        "max_relative_difference": {
            model: {"vs": COUNTERPART[model], "coins": len(values), "max": max(values)}
            for model, values in sorted(diffs.items())
        },
        "auto_ets_bounds_max_relative_difference": max(bounds) if bounds else None,
    }


# ------------------------------------------------------------------ full frame (context)


def full_frame_context(
    ids: list[int],
    closes: dict[int, np.ndarray],
    first_open: datetime,
    hours: int,
    cap: float,
) -> dict[str, Any]:
    if hours <= TRAIN:
        return {"status": "not applicable", "note": f"--hours {hours} <= {TRAIN}"}
    # One coin, each model in its own batch call, to estimate the whole run and say which
    # model the time goes to (the calls' sum is the four-model batch's time, give or take).
    one = long_frame(ids[:1], closes, first_open, hours)
    per_model: dict[str, float] = {}
    for model in statsforecast_models():
        gc.collect()
        started = time.perf_counter()
        StatsForecast(models=[model], freq="h", n_jobs=1).forecast(df=one, h=STEPS, level=LEVELS)
        per_model[str(model)] = time.perf_counter() - started
    probe = sum(per_model.values())
    estimate = probe * len(ids)
    entry: dict[str, Any] = {
        "points_per_coin": hours,
        "one_coin_seconds": probe,
        "one_coin_seconds_per_model": per_model,
        "estimated_seconds": estimate,
        "cap_seconds": cap,
    }
    if estimate > cap:
        entry["status"] = "skipped"
        log(
            f"full frame: one coin took {probe:.1f}s, so {len(ids)} coins would take about "
            f"{estimate / 60:.0f} min > cap {cap / 60:.0f} min: skipped"
        )
        return entry
    seconds, _ = statsforecast_batch(long_frame(ids, closes, first_open, hours))
    entry.update(status="measured", seconds=seconds)
    log(f"full frame: statsforecast batch on {len(ids)} x {hours} points in {seconds:.1f}s")
    return entry


# ------------------------------------------------------------------ driver


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def pandas_pin_warning() -> str | None:
    """statsforecast declares a pandas range; say so when the installed pandas is outside it."""
    wanted = [r for r in metadata.requires("statsforecast") or [] if r.startswith("pandas")]
    major = int(pd.__version__.split(".")[0])
    if any("<3" in r.replace(" ", "") for r in wanted) and major >= 3:
        return f"pandas {pd.__version__} is outside statsforecast's declared {', '.join(wanted)}"
    return None


def thread_facts() -> dict[str, Any]:
    facts: dict[str, Any] = {name: os.environ.get(name, "unset") for name in THREAD_VARS}
    try:
        from threadpoolctl import threadpool_info

        facts["threadpools"] = [
            {k: pool.get(k) for k in ("user_api", "internal_api", "num_threads")}
            for pool in threadpool_info()
        ]
    except ImportError:
        facts["threadpools"] = "threadpoolctl not installed"
    return facts


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cfg = lgbm_setup()  # refuses a model version the LightGBM baseline does not replicate
    name = common.scratch_name()
    url = await common.create_scratch_db(name)
    log(f"scratch database {name} created; migrating")
    database: Database | None = None
    try:
        await asyncio.to_thread(upgrade_database, url)
        database = Database.from_url(url, pool_size=5, max_overflow=0)
        now = datetime.now(UTC)
        last_open = last_closed_open(now)
        first_open = last_open - timedelta(hours=args.hours - 1)
        t0 = time.perf_counter()
        ids, closes = await load_data(database, url, args.coins, args.hours, first_open)
        log(
            f"loaded {args.coins} coins x {args.hours:,} hourly candles "
            f"({first_open:%Y-%m-%d %H:%M} .. {last_open:%Y-%m-%d %H:%M} UTC opens) "
            f"in {time.perf_counter() - t0:.1f}s"
        )
        symbols = [symbol_of(k) for k in range(args.coins)]
        window = min(args.hours, TRAIN)
        frame = long_frame(ids, closes, first_open, window)
        gc.collect()
        gc.freeze()  # the data set is long-lived; keep the cyclic GC off it during runs

        # Warm-up, untimed: first calls into both libraries and the app's path.
        service.forecast_models(closes[ids[0]][-window:], STEPS, DEFAULT_MODELS)
        statsforecast_batch(frame[frame["unique_id"] == symbols[0]])
        lgbm_direct_one(closes[ids[0]], cfg)
        install_wrappers()

        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "baseline": []}
        checks: list[dict[str, Any]] = []
        sf_result: pd.DataFrame | None = None
        lgbm_result: dict[int, float] = {}
        for rep in range(args.reps):
            result = await run_ours(database, symbols)
            result["kind"] = "insert" if rep == 0 else "rerun (replaces)"
            result["rows_after"] = await check_rows(url, args.coins)
            checks.append(result["rows_after"])
            runs["ours"].append(result)
            log(
                f"rep {rep + 1}: ours {result['seconds']:.1f}s (read {result['read_candles']:.1f}"
                f", fit {result['fit']:.1f}, write {result['write_upsert']:.2f}"
                f", commit {result['commit']:.2f}); stored {result['stored']}; "
                f"rows {result['rows_after']['rows']} ok={result['rows_after']['ok']}"
            )
            base, sf_result, lgbm_result = run_baseline(frame, ids, closes, cfg)
            runs["baseline"].append(base)
            log(
                f"rep {rep + 1}: baseline {base['seconds']:.1f}s (statsforecast "
                f"{base['statsforecast']:.1f}, lightgbm {base['lightgbm']:.1f}); "
                f"ratio {result['seconds'] / base['seconds']:.2f}"
            )
        rerun: dict[str, Any] | None = None
        if args.reps == 1:  # the rerun check needs a second run of ours
            rerun = await run_ours(database, symbols)
            rerun["rows_after"] = await check_rows(url, args.coins)
            log(f"extra rerun of ours: {rerun['seconds']:.1f}s (not in the medians)")
        first_rows = runs["ours"][0]["rows_after"]["rows"]
        later = [r["rows_after"]["rows"] for r in runs["ours"][1:]] + (
            [rerun["rows_after"]["rows"]] if rerun else []
        )
        assert sf_result is not None
        verification = {
            "rows_after_each_run": checks + ([rerun["rows_after"]] if rerun else []),
            "rerun_adds_no_rows": all(n == first_rows for n in later),
            "skipped_models": sorted({s["model"] for r in runs["ours"] for s in r["skipped"]}),
            "frame_matches_app_series": await check_frame(database, ids, frame, now),
            "features_match_app": check_features(ids, closes, cfg),
            "forecasts": await check_forecasts(url, ids, sf_result, lgbm_result),
        }
        verification["ok"] = (
            all(c["ok"] for c in verification["rows_after_each_run"])
            and verification["rerun_adds_no_rows"]
            and not verification["skipped_models"]
            and verification["frame_matches_app_series"]["ok"]
        )
        log(f"verification ok={verification['ok']}")
        full = full_frame_context(ids, closes, first_open, args.hours, args.full_frame_cap)
        facts = await common.postgres_facts(url)
    finally:
        if database is not None:
            await database.dispose()
        await common.drop_scratch_db(name)
        log(f"scratch database {name} dropped")
    return summarise(args, runs, verification, full, facts, first_open, last_open, window)


def summarise(
    args: argparse.Namespace,
    runs: dict[str, list[dict[str, Any]]],
    verification: dict[str, Any],
    full: dict[str, Any],
    facts: dict[str, Any],
    first_open: datetime,
    last_open: datetime,
    window: int,
) -> dict[str, Any]:
    ours, base = runs["ours"], runs["baseline"]
    med = common.median
    median_ours = {
        key: med([r[key] for r in ours])
        for key in (
            "seconds",
            "cpu_seconds",
            "read_candles",
            "fit",
            "fit_outside_models",
            "lookups",
            "write_upsert",
            "read_back",
            "commit",
            "rest",
        )
    }
    median_ours["fit_per_model"] = {
        m: med([r["fit_per_model"].get(m, 0.0) for r in ours]) for m in DEFAULT_MODELS
    }
    median_base = {
        key: med([r[key] for r in base])
        for key in ("seconds", "cpu_seconds", "statsforecast", "lightgbm")
    }
    fpm = median_ours["fit_per_model"]
    sf_like = sum(v for m, v in fpm.items() if m != "lightgbm_returns")
    ratio = median_ours["seconds"] / median_base["seconds"]
    return {
        "coins": args.coins,
        "hours": args.hours,
        "train_window": window,
        "horizon": HORIZON.value,
        "steps": STEPS,
        "models": list(DEFAULT_MODELS),
        "chunk": CHUNK,
        "seed": SEED,
        "first_open": first_open.isoformat(),
        "last_open": last_open.isoformat(),
        "reps": args.reps,
        "runs": runs,
        "median": {"ours": median_ours, "baseline": median_base},
        "ratio": ratio,
        "ratio_per_rep": [o["seconds"] / b["seconds"] for o, b in zip(ours, base, strict=True)],
        "cpu_ratio": median_ours["cpu_seconds"] / median_base["cpu_seconds"],
        "lightgbm_version": REPLICATED_LIGHTGBM_VERSION,
        "target": TARGET,
        "target_met": ratio <= TARGET,
        "like_for_like": {
            "fit_only_vs_baseline": median_ours["fit"] / median_base["seconds"],
            "statsforecast_models_vs_batch": sf_like / median_base["statsforecast"],
            "lightgbm_model_vs_direct": fpm["lightgbm_returns"] / median_base["lightgbm"],
        },
        "full_frame": full,
        "verification": verification,
        "postgres": facts,
    }


# ------------------------------------------------------------------ markdown


def _s(value: float) -> str:
    return f"{value:,.2f}"


def _each(values: list[float]) -> str:
    return ", ".join(f"{v:,.2f}" for v in values)


def render(report: dict[str, Any]) -> str:
    m, ours, base = report["machine"], report["runs"]["ours"], report["runs"]["baseline"]
    mo, mb = report["median"]["ours"], report["median"]["baseline"]
    lib = report["versions"]
    n = report["coins"]
    lf = report["like_for_like"]
    ver = report["verification"]
    code = report["code"]

    def row(label: str, median: float, values: list[float], share_of: float | None) -> str:
        share = f"{100 * median / share_of:.0f}%" if share_of else ""
        return f"| {label} | {_s(median)} | {_each(values)} | {share} |"

    per_model = [
        row(
            f"&nbsp;&nbsp;&nbsp;&nbsp;fit + predict `{name}`",
            mo["fit_per_model"][name],
            [r["fit_per_model"].get(name, 0.0) for r in ours],
            mo["seconds"],
        )
        for name in report["models"]
    ]
    full = report["full_frame"]
    if full["status"] == "measured":
        full_row = (
            f"| context: statsforecast batch on the full frame ({n} {TIMES} "
            f"{full['points_per_coin']:,} "
            f"log closes), one run | {_s(full['seconds'])} | {_s(full['seconds'])} | |"
        )
    elif full["status"] == "skipped":
        split = ", ".join(f"{k} {v:,.2f}" for k, v in full["one_coin_seconds_per_model"].items())
        full_row = (
            f"| context: statsforecast batch on the full frame ({n} {TIMES} "
            f"{full['points_per_coin']:,} "
            f"log closes) | skipped | one coin: {_s(full['one_coin_seconds'])} s ({split}), so "
            f"about {full['estimated_seconds'] / 60:.0f} min for {n} coins, over the "
            f"{full['cap_seconds'] / 60:.0f} min cap | |"
        )
    else:
        full_row = f"| context: full frame | {full['status']} | {full.get('note', '')} | |"
    met = "met" if report["target_met"] else "NOT met"
    fc = ver["forecasts"]["max_relative_difference"]
    rows_checks = "; ".join(
        f"run {i + 1}: {c['rows']} rows, {c['duplicates']} duplicates"
        + ("" if c["ok"] else " (FAILED)")
        for i, c in enumerate(ver["rows_after_each_run"])
    )
    changed = code["after"] != code["at_start"]
    pg = report["postgres"]["version"].split(" on ")[0]
    threads = report["threads"]
    pools = threads["threadpools"]
    pools_text = (
        ", ".join(f"{p['internal_api']} ({p['user_api']}): {p['num_threads']}" for p in pools)
        if isinstance(pools, list)
        else pools
    )
    warning = report.get("pandas_warning")
    kinds = ", ".join(f"run {i + 1} {r['kind']}" for i, r in enumerate(ours))
    lines = [
        f"## Speed: predictions for {n} coins",
        "",
        f"Last run: {report['finished']} (UTC), {report['minutes']:.1f} minutes in all (data "
        "generation and loading included). Generated by `bench/forecast.py --write-doc`; edit "
        "the script, not this section.",
        "",
        f"Command: `{report['command']}` (also `make bench-forecast`; `make bench` runs it after "
        "`bench/run.py`).",
        "",
        f"- Machine: {m['cpu']}, `nproc` = {m['nproc']} (`os.cpu_count()` = {m['cpu_count']}), "
        f"Linux {m['kernel']}; load average before the run "
        f"{', '.join(f'{x:.2f}' for x in m['load_before'])}. {pg}.",
        f"- Python {lib['python']}: statsforecast {lib['statsforecast']} (coreforecast "
        f"{lib['coreforecast']}), lightgbm {lib['lightgbm']}, numpy {lib['numpy']}, pandas "
        f"{lib['pandas']}, scipy {lib['scipy']}."
        + (f" **Warning: {warning}.**" if warning else ""),
        "- Threads, the same for both sides (one process): "
        + ", ".join(f"`{k}` {v}" for k, v in threads.items() if k != "threadpools")
        + f"; native pools: {pools_text}. statsforecast runs with `n_jobs=1` and LightGBM with "
        "`num_threads=1` on both sides.",
        f"- App code measured: sources hash `{code['at_start']}` ({code['git']})"
        + (
            f"; **the sources changed during the run** (now `{code['after']}`), but this "
            "process had imported them at the start"
            if changed
            else "; unchanged during the run"
        )
        + ".",
        "",
        f"Data: {n} coins {TIMES} {report['hours']:,} hourly candles (opens "
        f"{report['first_open']} .. "
        f"{report['last_open']} UTC, so the newest candle had closed when the run started), a "
        f"seeded geometric random walk per coin (seed {report['seed']} + coin index, valid "
        "OHLC), loaded by binary `COPY` (untimed). Every model fits the newest "
        f"{report['train_window']:,} closes of each coin; horizon {report['horizon']} "
        f"({report['steps']} hourly steps). Runs: {report['reps']} of each side, interleaved "
        f"(ours, baseline, ours, baseline, ...): {kinds}. Medians shown.",
        "",
        "| Side / part | seconds (median) | seconds, each run | share of ours |",
        "|---|---:|---|---:|",
        row(
            f"**ours, end to end**: `make_predictions` for {n} coins, default models, in "
            f"{math.ceil(n / report['chunk'])} request(s) of up to {report['chunk']} coins, "
            "each read in one unit of work and written in another (commits included)",
            mo["seconds"],
            [r["seconds"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;candle read (`load_series`: base timeframe, SQL, series building)",
            mo["read_candles"],
            [r["read_candles"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;model fitting (`forecast_models`, in a worker thread)",
            mo["fit"],
            [r["fit"] for r in ours],
            mo["seconds"],
        ),
        *per_model,
        row(
            "&nbsp;&nbsp;coin and calibration lookups",
            mo["lookups"],
            [r["lookups"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;DB write: prediction upsert",
            mo["write_upsert"],
            [r["write_upsert"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;read back of the stored rows (`by_keys`)",
            mo["read_back"],
            [r["read_back"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;commit (+ cache invalidation)",
            mo["commit"],
            [r["commit"] for r in ours],
            mo["seconds"],
        ),
        row(
            "&nbsp;&nbsp;rest (rows and response models, thread hand-offs, event loop)",
            mo["rest"],
            [r["rest"] for r in ours],
            mo["seconds"],
        ),
        row(
            f"baseline: statsforecast batch `forecast(h=24, level=[80, 95])`, 4 models, "
            f"{n} {TIMES} {report['train_window']:,} log closes",
            mb["statsforecast"],
            [r["statsforecast"] for r in base],
            None,
        ),
        row(
            f"baseline: LightGBM direct (features with numpy, 2 {TIMES} `lightgbm.train` and "
            "a holdout `predict`, 1 forecast `predict` per coin)",
            mb["lightgbm"],
            [r["lightgbm"] for r in base],
            None,
        ),
        row("**baseline total**", mb["seconds"], [r["seconds"] for r in base], None),
        full_row,
        "",
        f"- **Ratio ours / baseline (end to end): {report['ratio']:.2f}** (target ≤ "
        f"{report['target']:.1f}: **{met}**); per run: "
        + ", ".join(f"{x:.2f}" for x in report["ratio_per_rep"])
        + ".",
        f"- Like for like: our fitting alone / baseline = {lf['fit_only_vs_baseline']:.2f}; our "
        "four statsforecast-type models (`random_walk`, `random_walk_drift`, `auto_ets`, "
        f"`auto_theta`, fit + predict one series at a time) / the statsforecast batch = "
        f"{lf['statsforecast_models_vs_batch']:.2f}; our `lightgbm_returns` / LightGBM direct = "
        f"{lf['lightgbm_model_vs_direct']:.2f}.",
        f"- CPU time of the bench process, a check on noise from other jobs on the machine "
        f"(PostgreSQL's own work is not in it): ours {_s(mo['cpu_seconds'])} s "
        f"({_each([r['cpu_seconds'] for r in ours])}), baseline {_s(mb['cpu_seconds'])} s "
        f"({_each([r['cpu_seconds'] for r in base])}), ratio {report['cpu_ratio']:.2f}. Load "
        f"average after the run: {', '.join(f'{x:.2f}' for x in m['load_after'])}.",
        "",
        "Checks:",
        "",
        f"- `predictions` for {report['horizon']} after each run of ours: {rows_checks} "
        f"(expected {n} {TIMES} {len(report['models'])} = {n * len(report['models'])}, one per "
        f"coin and model); a rerun adds no rows: {'yes' if ver['rerun_adds_no_rows'] else 'NO'}; "
        f"models skipped: {', '.join(ver['skipped_models']) or 'none'}.",
        "- The baseline frame equals what the app reads (`load_series`: same 2,000 closes, "
        "bit for bit after `log`, same open times) for "
        + (
            f"all {ver['frame_matches_app_series']['coins']} coins."
            if ver["frame_matches_app_series"]["ok"]
            else f"NOT all coins: {', '.join(ver['frame_matches_app_series']['mismatched'])}."
        ),
        "- The LightGBM baseline's feature matrices equal the app's `feature_matrix`: "
        + (
            "identical, bit for bit, for every coin."
            if ver["features_match_app"]["identical"]
            else "NOT identical (max abs difference "
            f"{ver['features_match_app']['max_abs_difference']:.3g})."
        ),
        "- Stored point forecasts at h = 24 against the libraries' own, max relative difference "
        "over all coins: "
        + "; ".join(f"`{k}` vs {v['vs']} {v['max']:.2g}" for k, v in fc.items())
        + f". `auto_ets` bounds (80 %, 95 %) vs statsforecast's own: "
        f"{ver['forecasts']['auto_ets_bounds_max_relative_difference']:.2g}.",
        "",
        "What each side includes:",
        "",
        "- **Ours** is the plain end-to-end call: per request, `PredictionRequest` validation, "
        "coin lookup (fresh in-process cache per run, so every run does the same lookups), "
        "`load_series` (base timeframe from the newest candles, the newest 2,001 candles by "
        "SQL, closed-candle filter and gap bridging), the latest successful backtest (none "
        "here), `forecast_models` in a worker thread (each model validated, capped at 2,000 "
        "points, logged, fitted and asked for 24 steps at 80 % and 95 %), the `predictions` "
        "upsert, a read back of the stored rows, response models and the commit. The parts "
        "come from thin timing wrappers this script installs around those functions; "
        '"rest" is the end-to-end time minus the parts.',
        "- **Baseline** starts from data already in memory: the long frame (`unique_id`, "
        "`ds`, `y` = log close) is built before timing, and statsforecast forecasts all coins "
        "in one call (`Naive` and `RandomWalkWithDrift` stand for `random_walk` and "
        "`random_walk_drift`). statsforecast has no gradient-boosting model, so the "
        "`lightgbm_returns` part is LightGBM itself doing what that model (code version "
        f"{report['lightgbm_version']}, direct strategy: one model per horizon learns the "
        "24-step log return) does: features built with numpy here (checked equal to the "
        "app's), a holdout model on the earliest rows (24 rows purged before the latest "
        "20 %) and its residuals, the model on all rows, and its prediction from the newest "
        "row, with the model's parameters (`num_threads=1`, `deterministic=True`). "
        "The script refuses to run when the model's code version changes, since "
        "the replica would then measure something else. No database on this side.",
        "- The first run of ours inserts the rows, later runs replace them (the upsert's "
        "update path). Before the timed runs both sides are warmed up once on one coin.",
        "- Noise: the machine is small and shared; compare the ratio from the same run, "
        "not absolute seconds across runs.",
    ]
    return "\n".join(lines)


def check_markers() -> str:
    text = DOC.read_text() if DOC.exists() else ""
    if START_MARKER not in text or END_MARKER not in text.split(START_MARKER, 1)[-1]:
        raise SystemExit(f"{DOC} lacks the markers {START_MARKER} ... {END_MARKER} (in order)")
    return text


def write_doc(section: str) -> None:
    text = check_markers()  # read again: the file may have been edited during the run
    head, rest = text.split(START_MARKER, 1)
    _old, tail = rest.split(END_MARKER, 1)
    DOC.write_text(f"{head}{START_MARKER}\n{section}\n{END_MARKER}{tail}")
    log(f"wrote the section in {DOC}")


def command_line() -> str:
    return common.shown_command([sys.executable, "bench/forecast.py", *sys.argv[1:]])


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--coins", type=int, default=100)
    parser.add_argument("--hours", type=int, default=17_520, help="hourly candles per coin")
    parser.add_argument("--reps", type=int, default=2, help="interleaved runs of each side")
    parser.add_argument(
        "--full-frame-cap",
        type=float,
        default=600.0,
        help="skip the full-frame statsforecast run when one coin says it would take longer",
    )
    parser.add_argument("--output", type=Path, help="write the JSON report here too")
    parser.add_argument(
        "--write-doc", action="store_true", help="render the section into docs/FORECASTING.md"
    )
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    if not 1 <= args.coins <= 999:
        parser.error("--coins must be in 1..999")
    if args.hours < 300:
        parser.error("--hours must be at least 300 (the LightGBM model's history)")
    return args


def main() -> None:
    args = parse_args()
    if args.write_doc:
        check_markers()  # fail now, not after the run
    started = time.monotonic()
    warning = pandas_pin_warning()
    if warning:
        log(f"WARNING: {warning}")
    machine = {
        "cpu": common.cpu_model(),
        "nproc": common.command_output("nproc"),
        "cpu_count": os.cpu_count(),
        "kernel": platform.release(),
        "load_before": os.getloadavg(),
    }
    threads = thread_facts()
    report = asyncio.run(run(args))
    machine["load_after"] = os.getloadavg()
    report.update(
        command=command_line(),
        machine=machine,
        versions=versions(),
        threads=threads,
        pandas_warning=warning,
        code={"at_start": CODE_AT_START, "after": code_fingerprint(), "git": git_state()},
        finished=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        minutes=(time.monotonic() - started) / 60,
    )
    if report["code"]["after"] != CODE_AT_START:
        log("WARNING: backend/app changed during the run (this process ran the start version)")
    text = json.dumps(report, indent=2, default=str)
    if args.output:
        args.output.write_text(text + "\n")
    if args.write_doc:
        write_doc(render(report))
    print(text)
    log(
        f"ours {report['median']['ours']['seconds']:.1f}s, baseline "
        f"{report['median']['baseline']['seconds']:.1f}s, ratio {report['ratio']:.2f} "
        f"(target <= {TARGET}: {'met' if report['target_met'] else 'NOT met'}), "
        f"{report['minutes']:.1f} min in all"
    )


if __name__ == "__main__":
    main()

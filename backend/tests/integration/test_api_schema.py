"""Property-based tests of the whole OpenAPI schema with schemathesis.

Every operation in ``/openapi.json`` gets schemathesis' examples, coverage and fuzzing
phases, positive and negative data, ``MAX_EXAMPLES`` fuzzed cases (checked after the run; an
operation with no other input still varies the optional ``X-Request-ID`` header that every
operation takes), and every built-in check: no 5xx, every status code, content type and
header documented, bodies that match their schemas, schema-valid requests accepted, invalid
ones refused, writes that refuse a missing or made-up API key, ``Allow`` on 405.
``test_api_workflows`` then chains operations along the links schemathesis infers, for the
stateful checks. The runs are derandomized with a fixed seed and
no example database, so CI sees the same cases every time.

Schemathesis calls the ASGI app in-process, but on an event loop of its own (one thread for
the whole process). Database and Redis connections belong to the loop that opened them, so
the app cannot share the test's rolled-back transaction: it gets a scratch database of its
own (a second SQLite file, or a PostgreSQL database created beside ``TEST_DATABASE_URL`` and
dropped afterwards) and opens its own engine and cache connections there.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import numpy as np
import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis.python.asgi import shutdown_lifespans
from sqlalchemy import make_url, text, update
from starlette.types import Receive, Scope, Send

from app.cache import CacheManager
from app.cli import upgrade_database
from app.config import Settings
from app.database import Database, create_engine
from app.jobs.backtest_runner import BacktestRunner
from app.jobs.records import JobRecord, QueueStats
from app.main import create_app
from app.market import Candle, Horizon, Timeframe
from app.models import Backtest
from app.repositories import api_keys, market_data
from app.schemas.predictions import BacktestRequest, PredictionRequest
from app.services import backtest_runs, backtests, predictions
from app.services.api_keys import KEY_PATTERN, hash_key
from app.services.market_data import encode_cursor
from tests.conftest import is_sqlite, make_settings
from tests.integration.factories import make_coin

SEED = 20_240_601
MAX_EXAMPLES = 100
WORKFLOWS = 50
BTC_HOURS = 300  # enough for a 1h backtest (200 training candles), small enough to fit fast
ETH_DAYS = 60
CHEAP_MODELS = ["random_walk", "random_walk_drift"]
# A write-scope key, fixed so the configuration below can name it; it exists only in the
# scratch database. Schemathesis sends it wherever the schema asks for the key, except in the
# cases that test a missing or wrong key.
API_KEY = "cp_5eed0001_schemathesis-property-tests-seeded-writekey"
assert KEY_PATTERN.match(API_KEY)
BACKTEST_ID = "5eed" * 8
JOB_ID = "seeded-job"


# ------------------------------------------------------------------------ stand-ins


class RecordingRunner(BacktestRunner):
    """Records accepted backtests without computing them.

    Hundreds of accepted ``POST /backtests`` would otherwise pile up walk-forward fits on two
    cores; the computation itself is tested in test_predictions_api.py.
    """

    def __init__(self, database: Database, cache: CacheManager) -> None:
        super().__init__(database, cache)
        self.submitted: list[str] = []

    def submit(self, backtest_id: str) -> None:
        self.submitted.append(backtest_id)


class RecordingQueue:
    """A job queue that keeps the records and runs nothing.

    A ``backfill`` job would call CoinGecko (no network here) and ``make_predictions`` fits
    every model on every coin; the jobs are tested in test_jobs.py.
    """

    def __init__(self) -> None:
        seeded = JobRecord(
            id=JOB_ID,
            name="score_predictions",
            status="complete",
            tries=1,
            enqueued_at=datetime.now(UTC),
            result={"scored": 0, "waiting": 0},
            queue="local",
        )
        self.records: dict[str, JobRecord] = {JOB_ID: seeded}

    async def enqueue(
        self, name: str, kwargs: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord | None:
        if job_id is not None and job_id in self.records:
            return None
        record = JobRecord(
            id=job_id or f"local-{len(self.records) + 1}",
            name=name,
            arguments=kwargs,
            status="queued",
            enqueued_at=datetime.now(UTC),
            queue="local",
        )
        self.records[record.id] = record
        return record.model_copy()

    async def get(self, job_id: str) -> JobRecord | None:
        record = self.records.get(job_id)
        return record.model_copy() if record else None

    async def stats(self) -> QueueStats:
        waiting = sum(record.finished_at is None for record in self.records.values())
        return QueueStats(
            queue="local", reachable=True, jobs=waiting, oldest_job_age_s=None, workers=1
        )

    async def close(self) -> None:
        return None


# ------------------------------------------------------------------------ the app and its schema


def build_app(settings: Settings, cache: CacheManager) -> FastAPI:
    app = create_app(settings, cache=cache)
    app.state.backtests = RecordingRunner(app.state.database, cache)
    app.state.jobs = RecordingQueue()
    return app


def app_settings(database_url: str) -> Settings:
    return make_settings(
        DATABASE_URL=database_url,
        RATE_LIMIT_ENABLED=False,
        JOBS_ENABLED=False,  # the schedule would run forecasts in the background
    )


SYMBOLS = ["BTC", "ETH", "DOGE", "btc"]  # hourly, daily, no candles; any case


def _config() -> schemathesis.Config:
    # Half the symbols and ids are ones that exist, so valid requests reach past the 404.
    known = {"probability": 0.5}
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            # Generation speed on a busy CI machine is not what this test is about.
            "suppress-health-check": ["too_slow"],
            "auth": {"openapi": {"APIKeyHeader": {"api_key": API_KEY}}},
            "dictionaries": {
                "symbols": {"values": SYMBOLS},
                "backtests": {"values": [BACKTEST_ID]},
                "jobs": {"values": [JOB_ID]},
            },
            "parameters": {
                "path.symbol": {"dictionary": "symbols", **known},
                "query.symbol": {"dictionary": "symbols", **known},
                "body.symbol": {"dictionary": "symbols", **known},
                "body.symbols[*]": {"dictionary": "symbols", **known},
                "path.backtest_id": {"dictionary": "backtests", **known},
                "path.job_id": {"dictionary": "jobs", **known},
            },
            "generation": {
                "mode": "all",  # positive and negative data
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",  # no example database: the same cases on every machine
            },
        }
    )


class AppUnderTest:
    """The ASGI app schemathesis calls: forwards to the one the `api_app` fixture built.

    The schema has to exist at import time for pytest to collect a test per operation; the
    app it is served by needs the seeded database, which only a fixture can make.
    """

    def __init__(self) -> None:
        self.app: FastAPI | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.app is None:
            raise RuntimeError("no app yet: the api_app fixture builds it")
        await self.app(scope, receive, send)


APP_UNDER_TEST = AppUnderTest()
# The document of an app that connects nothing (engines and Redis pools connect on first use);
# `api_app` checks that the app under test serves the same one.
DOCUMENT = build_app(app_settings("sqlite:///:memory:"), CacheManager()).openapi()
# A copy: schemathesis adds the links it infers to the document it is given.
schema = schemathesis.openapi.from_dict(copy.deepcopy(DOCUMENT), config=_config())
schema.app = APP_UNDER_TEST


def _without_request_ids(document: dict[str, Any]) -> dict[str, Any]:
    """The document less the optional X-Request-ID header every operation takes.

    For the workflows only: with it, hypothesis found their data generation inconsistent from
    one run to the next (FlakyStrategyDefinition), as every response carries a new random
    id under the same name. The operations themselves are fuzzed with the header.
    """
    stripped = copy.deepcopy(document)
    for operations in stripped["paths"].values():
        for operation in operations.values():
            operation["parameters"] = [
                p for p in operation.get("parameters", []) if p["name"] != "X-Request-ID"
            ]
    return stripped


workflow_schema = schemathesis.openapi.from_dict(_without_request_ids(DOCUMENT), config=_config())
workflow_schema.app = APP_UNDER_TEST


# ------------------------------------------------------------------------ rules no schema holds
#
# A few rules of the API cannot be written in JSON Schema: a candle's high is at least its
# open, close and low, and its time is aligned and not in the future; a range ends after it
# starts; a cursor is one the endpoint handed out. The API documents them and answers 422 when
# they are broken. Schemathesis' positive cases (data the schema allows, which must be
# accepted) are made to keep them here; everything else about those cases, and every negative
# case, is left as generated.

INGEST = "/api/v1/cryptocurrencies/{symbol}/ohlcv"
STORED_FRAMES = {"BTC": Timeframe.H1, "ETH": Timeframe.D1}  # as seeded


def _positive(case: schemathesis.Case) -> bool:
    return case.meta is not None and case.meta.generation.mode.is_positive


def _prices(item: object) -> tuple[float, float, float, float, float]:
    """Open, high, low, close, volume from a generated candle, reordered to be consistent."""
    if isinstance(item, dict):
        raw = [item.get(name) for name in ("open", "high", "low", "close", "volume")]
    elif isinstance(item, list):
        raw = list(item[1:6])
    else:
        raw = []
    # The ccxt array form types its items only as numbers, so a zero price (refused: no
    # price) may be generated for it; the object form's schema already excludes zero.
    numbers = [abs(float(v)) if isinstance(v, int | float) and v else 1.0 for v in raw]
    numbers = [n if n < 1e300 else 1e300 for n in numbers + [1.0] * (5 - len(numbers))]
    low, open_, close, high = sorted(numbers[:4])
    return open_, high, low, close, numbers[4]


def keep_candle_rules(_context: schemathesis.HookContext, case: schemathesis.Case) -> Any:
    if not _positive(case):
        return case
    query = case.query or {}
    frame = Timeframe(query["timeframe"]) if "timeframe" in query else Timeframe.H1
    items = case.body["candles"] if isinstance(case.body, dict) else []
    # Without `timeframe` it is inferred from the spacing, which takes two rows.
    count = min(max(len(items), 1 if "timeframe" in query else 2), 48)
    items = (items or [{}]) * count
    last = frame.floor(datetime.now(UTC)) - frame.delta
    rows = []
    for i, item in enumerate(items[:count]):
        moment = last - (count - 1 - i) * frame.delta
        open_, high, low, close, volume = _prices(item)
        rows.append((moment, item, open_, high, low, close, volume))
    if case.media_type == "text/csv":
        lines = ["timestamp,open,high,low,close,volume"]
        lines += [
            f"{m.isoformat()},{o!r},{h!r},{lo!r},{c!r},{v!r}" for m, _, o, h, lo, c, v in rows
        ]
        case.body = "\n".join(lines) + "\n"
        return case
    candles: list[Any] = []
    for moment, item, *values in rows:
        ms = int(moment.timestamp() * 1000)
        if isinstance(item, list):
            candles.append([ms, *values])
        else:
            stamp: Any = ms if isinstance(item.get("timestamp"), int) else moment.isoformat()
            fields = ("open", "high", "low", "close", "volume")
            candles.append({"timestamp": stamp, **dict(zip(fields, values, strict=True))})
    case.body = {**case.body, "candles": candles}
    return case


def keep_range_rules(_context: schemathesis.HookContext, case: schemathesis.Case) -> Any:
    if not _positive(case) or not case.query:
        return case
    query = dict(case.query)
    if "start" in query and "end" in query:
        start, end = (datetime.fromisoformat(query[name]) for name in ("start", "end"))
        if end < start:
            query["start"], query["end"] = query["end"], query["start"]
    if "cursor" in query:
        symbol = str(case.path_parameters.get("symbol", "")).upper()
        frame = Timeframe(query.get("interval") or STORED_FRAMES.get(symbol, Timeframe.H1))
        query["cursor"] = encode_cursor(frame, datetime(2024, 1, 1, tzinfo=UTC))
    case.query = query
    return case


for _schema in (schema, workflow_schema):
    _schema.hook("map_case").apply_to(method="POST", path=INGEST)(keep_candle_rules)
    _schema.hook("map_case").apply_to(method="GET", path=INGEST)(keep_range_rules)


# ------------------------------------------------------------------------ data


def _walk(n: int, seed: int, start: float) -> np.ndarray:
    returns = np.random.default_rng(seed).normal(0.0, 0.01, size=n)
    return start * np.exp(np.cumsum(returns))


def _candles(last_open: datetime, closes: np.ndarray, frame: Timeframe) -> list[Candle]:
    first = last_open - (len(closes) - 1) * frame.delta
    out = []
    for i, close in enumerate(closes):
        open_ = float(closes[i - 1] if i else close)
        high, low = max(open_, close) * 1.001, min(open_, close) * 0.999
        out.append(Candle(first + i * frame.delta, open_, high, low, float(close), 3.5))
    return out


async def _seed(url: str) -> None:
    """Coins, candles, forecasts, a finished backtest and the API key."""
    engine = create_engine(url, pool_size=2, max_overflow=0)
    database = Database(engine)
    cache = CacheManager()  # in memory: the app's own cache starts empty anyway
    try:
        async with database.unit_of_work() as session:
            btc = await make_coin(session, symbol="BTC", name="Bitcoin", coin_gecko_id="bitcoin")
            eth = await make_coin(session, symbol="ETH", name="Ether", coin_gecko_id="ethereum")
            await make_coin(session, symbol="DOGE", name="Dogecoin", is_active=False)
            now_hour = Timeframe.H1.floor(datetime.now(UTC))
            yesterday = Timeframe.D1.floor(datetime.now(UTC)) - timedelta(days=1)
            hourly = _candles(now_hour, _walk(BTC_HOURS, 1, 42_000.0), Timeframe.H1)
            daily = _candles(yesterday, _walk(ETH_DAYS, 2, 2_300.0), Timeframe.D1)
            await market_data.insert_missing(session, btc.id, hourly, "seed")
            await market_data.insert_missing(session, eth.id, daily, "seed")
            await api_keys.create(
                session,
                prefix=API_KEY[3:11],
                key_hash=hash_key(API_KEY),
                name="schemathesis",
                scopes=["write"],
                expires_at=None,
            )
        async with database.unit_of_work() as session:
            request = BacktestRequest(
                symbol="BTC", horizon=Horizon.H1, models=CHEAP_MODELS, windows=5
            )
            accepted = await backtests.start(session, cache, request)
            # A known id, so cases can ask for a backtest that exists (see _config).
            await session.execute(
                update(Backtest).where(Backtest.id == accepted.id).values(id=BACKTEST_ID)
            )
        await backtest_runs.execute(database, cache, BACKTEST_ID)
        await predictions.make_predictions(
            database,
            cache,
            PredictionRequest(symbols=["BTC", "ETH"], horizons=[Horizon.H24], models=CHEAP_MODELS),
        )
    finally:
        await cache.close()
        await engine.dispose()


# ------------------------------------------------------------------------ fixtures


async def _admin(url: str, statement: str) -> None:
    engine = create_engine(url, pool_size=1, max_overflow=0)
    try:
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text(statement))
    finally:
        await engine.dispose()


async def _flush_cache(redis_url: str | None) -> None:
    """Other tests' cached rows (coins by symbol, say) must not answer for this database."""
    cache = CacheManager()
    cache.configure(redis_url)
    try:
        await cache.flush_all()
    finally:
        await cache.close()


@pytest.fixture(scope="module")
async def scratch_url(
    database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """An empty, migrated database of the suite's kind, for the app alone."""
    if is_sqlite(database_url):
        url = f"sqlite:///{tmp_path_factory.mktemp('api_schema') / 'api_schema.db'}"
        await asyncio.to_thread(upgrade_database, url)
        yield url
        return
    name = f"{make_url(database_url).database}_api_schema_{os.getpid()}"
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    await _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await _admin(database_url, f'CREATE DATABASE "{name}"')
    try:
        await asyncio.to_thread(upgrade_database, url)
        yield url
    finally:
        await _admin(database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
async def seeded(scratch_url: str, redis_url: str | None) -> AsyncIterator[None]:
    await _flush_cache(redis_url)
    await _seed(scratch_url)
    yield
    await _flush_cache(redis_url)


@pytest.fixture(scope="module")
def api_app(
    scratch_url: str, seeded: None, redis_url: str | None, request: pytest.FixtureRequest
) -> Iterator[FastAPI]:
    """The app on the seeded scratch database, with the suite's cache backend."""
    cache = CacheManager()
    cache.configure(redis_url)
    app = build_app(app_settings(scratch_url), cache)
    # The cases come from the document loaded at import time; it must be the one served.
    assert app.openapi() == DOCUMENT
    APP_UNDER_TEST.app = app
    try:
        yield app
    finally:
        # Schemathesis started the app's lifespan on its own loop on the first request;
        # this runs the shutdown there, closing the app's engine and Redis pool.
        shutdown_lifespans()
        APP_UNDER_TEST.app = None
        _report(request.config)


# ------------------------------------------------------------------------ reporting


def _write(config: pytest.Config, title: str, lines: list[str]) -> None:
    """Straight to the terminal, even from a teardown (whose output is captured otherwise)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        reporter.ensure_newline()
        reporter.write_sep("-", title)
        for line in lines:
            reporter.write_line(line)


def _report(config: pytest.Config) -> None:
    if not STATUSES:
        return
    total = sum(sum(counts.values()) for counts in STATUSES.values())
    lines = []
    for label, counts in sorted(STATUSES.items()):
        phases = " ".join(f"{name} {n}" for name, n in sorted(PHASES[label].items()))
        spread = " ".join(f"{status}x{n}" for status, n in sorted(counts.items()))
        lines.append(f"{sum(counts.values()):5d}  {label}  [{phases}]  {spread}")
    _write(config, f"schemathesis: {total} cases over {len(STATUSES)} operations", lines)


# ------------------------------------------------------------------------ the tests


# Per operation, how many cases got which status: printed after the run (see `api_app`).
STATUSES: defaultdict[str, Counter[int]] = defaultdict(Counter)
PHASES: defaultdict[str, Counter[str]] = defaultdict(Counter)


@schema.parametrize()
def test_api_conforms_to_its_schema(case: schemathesis.Case, api_app: FastAPI) -> None:
    # Every built-in check is on by default (max_response_time aside: it needs a limit, and
    # speed belongs in the benchmarks).
    response = case.call_and_validate()
    STATUSES[case.operation.label][response.status_code] += 1
    PHASES[case.operation.label][case.meta.phase.name.value if case.meta else "?"] += 1


def test_every_operation_was_fuzzed_at_least_max_examples_times(api_app: FastAPI) -> None:
    """Reads the counts `test_api_conforms_to_its_schema` left (it runs first, in this file)."""
    assert STATUSES, "run this file whole: the counts come from the test above"
    operations = {f"{m.upper()} {path}" for path, ops in DOCUMENT["paths"].items() for m in ops}
    assert set(STATUSES) == operations
    fuzzed = {label: PHASES[label]["fuzzing"] for label in operations}
    assert min(fuzzed.values()) >= MAX_EXAMPLES, fuzzed


# Links schemathesis infers from the schema (a coin it created is patched, a backtest or job
# it started is read back), so the stateful checks (use_after_free,
# ensure_resource_availability) run too.
STEPS: Counter[str] = Counter()


class APIWorkflow(workflow_schema.as_state_machine()):  # type: ignore[misc]
    def after_call(self, response: schemathesis.Response, case: schemathesis.Case) -> None:
        super().after_call(response, case)  # records it for the stateful checks
        STEPS[f"{case.operation.label} -> {response.status_code}"] += 1


def test_api_workflows(api_app: FastAPI, request: pytest.FixtureRequest) -> None:
    APIWorkflow.run(
        settings=hypothesis.settings(
            max_examples=WORKFLOWS,
            stateful_step_count=10,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=[hypothesis.HealthCheck.too_slow],
        )
    )
    lines = [f"{n:5d}  {step}" for step, n in sorted(STEPS.items())]
    _write(request.config, f"schemathesis workflows: {STEPS.total()} calls", lines)

"""FastAPI application entry point: ``uvicorn app.main:app``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from app import __version__
from app.api import cryptocurrencies, dashboard, health, jobs, market_data, meta, predictions
from app.api import metrics as metrics_api
from app.api.openapi import install_openapi
from app.cache import CacheManager, cache_manager
from app.config import SERVICE_NAME, Settings, get_settings
from app.database import Database
from app.errors import install_error_handlers
from app.jobs.backtest_runner import BacktestRunner
from app.jobs.local import LocalQueue, LocalScheduler
from app.jobs.records import JobQueue
from app.jobs.schedule import periodic_jobs
from app.jobs.tasks import JobContext
from app.jobs.worker import RedisQueue
from app.middleware.body_limit import BodyLimitMiddleware
from app.middleware.rate_limit import RateLimiter, RateLimitMiddleware
from app.middleware.read_access import ReadAccessMiddleware
from app.middleware.request_context import RequestContextMiddleware
from app.observability.logging import configure_logging
from app.observability.metrics import Metrics, StateCollector
from app.services import api_keys
from app.services.admission import Admission
from app.services.api_keys import KeyScope
from app.services.backtests import BacktestBudget
from app.services.fitting import ProcessFits

logger = logging.getLogger(__name__)

DESCRIPTION = (
    "Market data, price forecasts and their scores for cryptocurrencies. "
    "Errors are RFC 9457 problem documents (`application/problem+json`)."
)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Nothing connects here: the engine and the Redis pool connect on first use, so the
    # process starts (and /health answers) even when a dependency is down.
    cache: CacheManager = app.state.cache
    runner: BacktestRunner = app.state.backtests
    listener = asyncio.create_task(cache.listen_for_invalidations())
    sweeper = asyncio.create_task(_fail_abandoned(runner))
    scheduler = _start_local_schedule(app)
    yield
    if scheduler is not None:
        scheduler.cancel()
    await app.state.jobs.close()
    if app.state.fits is not None:
        app.state.fits.close()
    sweeper.cancel()
    await runner.close()
    listener.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await listener
    await cache.close()
    await app.state.database.dispose()


def _start_local_schedule(app: FastAPI) -> asyncio.Task[None] | None:
    """Without Redis there are no workers: this process runs the periodic jobs itself."""
    settings: Settings = app.state.settings
    queue = app.state.jobs
    if not isinstance(queue, LocalQueue) or not settings.JOBS_ENABLED:
        return None
    scheduler = LocalScheduler(queue, periodic_jobs(settings))
    return asyncio.create_task(scheduler.run())


def _job_queue(settings: Settings, database: Database, cache: CacheManager) -> JobQueue:
    if settings.queue_redis_url:
        return RedisQueue(settings.queue_redis_url)
    return LocalQueue(JobContext(database, cache, settings))


async def _fail_abandoned(runner: BacktestRunner) -> None:
    try:
        await runner.fail_abandoned()
    except Exception as error:  # the database may be down at start-up; the next start retries
        logger.warning("could not sweep abandoned backtests: %s", type(error).__name__)


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    cache: CacheManager | None = None,
) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL, settings.LOG_FORMAT)
    app = FastAPI(
        title=SERVICE_NAME,
        version=__version__,
        description=DESCRIPTION,
        debug=settings.DEBUG,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.database = database or Database.from_url(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
    )
    if cache is None:
        cache = cache_manager
        cache.configure(settings.REDIS_URL or None, settings.REDIS_MAX_CONNECTIONS)
    app.state.cache = cache
    app.state.jobs = _job_queue(settings, app.state.database, cache)
    workers = app.state.jobs if isinstance(app.state.jobs, RedisQueue) else None
    app.state.backtests = BacktestRunner(
        app.state.database, cache, workers, local_limit=settings.LOCAL_BACKTESTS
    )
    app.state.fits = (
        ProcessFits(settings.FORECAST_PROCESSES) if settings.FORECAST_PROCESSES else None
    )
    app.state.admission = {
        "forecasts": Admission("forecasts", settings.FORECASTS_PER_KEY, settings.FORECASTS_TOTAL),
        "ingests": Admission("ingests", settings.INGESTS_PER_KEY, settings.INGESTS_TOTAL),
    }
    app.state.backtest_budget = BacktestBudget(
        settings.BACKTEST_BUDGET_PER_KEY, settings.BACKTEST_BUDGET_TOTAL
    )
    # Middleware added last runs first: CORS wraps the rate limiter, so a 429 carries CORS
    # headers and the browser can read it; the limiter counts before the key check, so
    # guessing keys is limited too.
    # The middleware is handed the key service's checks, so it imports no service.
    app.add_middleware(
        ReadAccessMiddleware,
        check_key=api_keys.key_check(app.state.database, cache, KeyScope.READ),
        public_reads=settings.PUBLIC_READS,
    )
    if settings.RATE_LIMIT_ENABLED:
        limiter = RateLimiter(cache, settings.RATE_LIMIT_READS, settings.RATE_LIMIT_WRITES)
        app.add_middleware(
            RateLimitMiddleware,
            limiter=limiter,
            caller_key=partial(api_keys.caller_prefix, app.state.database, cache),
        )
    if settings.CORS_ORIGINS:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.CORS_ORIGINS,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Content-Type", "X-API-Key", "X-Request-ID"],
        )
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.MAX_REQUEST_BYTES,
        timeout_s=settings.REQUEST_BODY_TIMEOUT_S,
    )
    metrics = Metrics()
    metrics.registry.register(StateCollector(app.state))
    app.state.metrics = metrics
    # Added last, so it runs first: every response, even a 429 or a 500, gets its id.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    install_error_handlers(app)
    install_openapi(app, settings)
    # Routes are matched in order: the hot read endpoints go first.
    app.include_router(market_data.router)
    app.include_router(cryptocurrencies.router)
    app.include_router(predictions.router)
    app.include_router(meta.router)
    app.include_router(jobs.router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    app.include_router(dashboard.router)
    return app


def __getattr__(name: str) -> Any:
    # `uvicorn app.main:app` builds the app on first access, so importing this module for
    # tests or tooling never requires a production configuration.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)

"""Liveness and dependency health, in the shapes the spec documents."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from app import __version__
from app.api.deps import CacheDep, DatabaseDep, SettingsDep
from app.config import SERVICE_NAME
from app.jobs.records import JobQueue, QueueStats
from app.schemas import health as schema
from app.services.health import PROBE_TIMEOUT_S, probe_cache, probe_database

router = APIRouter(prefix="/health", tags=["health"])


def _unavailable(model: type[BaseModel]) -> dict[int | str, dict[str, Any]]:
    return {503: {"model": model, "description": "The dependency is down; the body says which."}}


def _now() -> datetime:
    return datetime.now(UTC)


def _status(connected: bool) -> schema.Status:
    return "healthy" if connected else "unhealthy"


@router.get("", response_model=schema.ServiceHealth)
async def health() -> schema.ServiceHealth:
    """Liveness: answers whenever the process does, whatever its dependencies say."""
    return schema.ServiceHealth(
        status="healthy", service=SERVICE_NAME, version=__version__, timestamp=_now()
    )


@router.get(
    "/db", response_model=schema.DatabaseHealth, responses=_unavailable(schema.DatabaseHealth)
)
async def database_health(database: DatabaseDep, response: Response) -> schema.DatabaseHealth:
    probe = await probe_database(database)
    if not probe.connected:
        response.status_code = 503
    return schema.DatabaseHealth(
        status=_status(probe.connected),
        database="connected" if probe.connected else "disconnected",
        latency_ms=probe.latency_ms,
        timestamp=_now(),
    )


@router.get("/cache", response_model=schema.CacheHealth, responses=_unavailable(schema.CacheHealth))
async def cache_health(cache: CacheDep, response: Response) -> schema.CacheHealth:
    probe = await probe_cache(cache)
    if not probe.connected:
        response.status_code = 503
    return schema.CacheHealth(
        status=_status(probe.connected),
        connected=probe.connected,
        latency_ms=probe.latency_ms,
        used_memory_mb=probe.used_memory_mb,
        connected_clients=probe.connected_clients,
        uptime_seconds=probe.uptime_seconds,
        timestamp=_now(),
    )


# What a queue with no worker holds up, besides the jobs already on it.
HELD_UP = {
    "scheduled": "scoring, the hourly forecasts and backfills do not run",
    "user": "so will every new backtest and job started over the API",
}


def _idle_detail(stats: QueueStats) -> str | None:
    """Which queue no worker was seen on in the last minute, and what waits on it."""
    idle = {kind: q for kind, q in (stats.queues or {}).items() if q.workers == 0}
    if len(idle) == 1:
        ((kind, queue),) = idle.items()
        return (
            f"no worker on the {kind} queue seen in the last minute: {queue.jobs} queued "
            f"job(s) wait; {HELD_UP[kind]} (start one: cryptopredict worker --queue {kind})"
        )
    if idle or stats.workers == 0:
        return (
            f"no worker seen in the last minute: {stats.jobs} queued job(s), the scheduled "
            "jobs and every new backtest wait (start one: cryptopredict worker)"
        )
    return None


async def _jobs_summary(queue: JobQueue) -> schema.JobsSummary:
    try:
        stats = await asyncio.wait_for(queue.stats(), PROBE_TIMEOUT_S)
    except TimeoutError:
        stats = QueueStats(
            queue="redis", reachable=False, jobs=None, oldest_job_age_s=None, workers=None
        )
    if not stats.reachable:
        detail: str | None = "the job queue (Redis) cannot be reached: scheduled jobs do not run"
    else:
        detail = _idle_detail(stats)
    return schema.JobsSummary(
        status="healthy" if detail is None else "degraded", detail=detail, **stats.model_dump()
    )


@router.get(
    "/detailed", response_model=schema.DetailedHealth, responses=_unavailable(schema.DetailedHealth)
)
async def detailed_health(
    request: Request,
    database: DatabaseDep,
    cache: CacheDep,
    settings: SettingsDep,
    response: Response,
) -> schema.DetailedHealth:
    db_probe = await probe_database(database)
    cache_probe = await probe_cache(cache)
    jobs = await _jobs_summary(request.app.state.jobs)
    overall: schema.Status = "healthy"
    if not cache_probe.connected or jobs.status != "healthy":
        overall = "degraded"
    if not db_probe.connected:
        overall = "unhealthy"
        response.status_code = 503
    return schema.DetailedHealth(
        status=overall,
        service=schema.ServiceInfo(
            name=SERVICE_NAME, version=__version__, environment=settings.ENVIRONMENT
        ),
        database=schema.DatabaseSummary(
            status=_status(db_probe.connected),
            connected=db_probe.connected,
            latency_ms=db_probe.latency_ms,
        ),
        cache=schema.CacheSummary(
            status=_status(cache_probe.connected),
            connected=cache_probe.connected,
            used_memory_mb=cache_probe.used_memory_mb,
        ),
        jobs=jobs,
        timestamp=_now(),
    )

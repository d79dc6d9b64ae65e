"""Jobs with Redis: arq workers (`cryptopredict worker`) and the queue the API enqueues on.

Any number of workers, on any machines, share the queue. Periodic jobs are arq cron jobs:
every worker schedules them, and arq's unique job id per run (``cron:<name>:<time>``) lets
exactly one of them run it. A job that fails on a transient error (the database restarting)
is retried with growing delays; delivery is at least once, and every job is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import secrets
import socket
import time
from datetime import UTC, datetime
from typing import Any

from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobDef, JobResult, JobStatus
from arq.worker import Function, func

from app.cache import CacheManager
from app.config import Settings, load_settings
from app.database import Database
from app.errors import ServiceUnavailable, is_connection_failure
from app.jobs.records import JobRecord, QueueStats
from app.jobs.schedule import JOB_TIMEOUT_S, MAX_TRIES, Periodic, periodic_jobs, retry_delay
from app.jobs.tasks import REDELIVERY_AWARE, TASKS, JobContext

logger = logging.getLogger(__name__)
QUEUE = "crypto:jobs"
KEEP_RESULTS_S = 24 * 3600
WORKER_KEY_PREFIX = f"{QUEUE}:worker:"
HEARTBEAT_S = 15
WORKER_SEEN_S = 60  # a worker whose heartbeat is older than this is not counted


def redis_settings(url: str) -> RedisSettings:
    # arq's defaults retry a dead Redis 5 times a second apart; the API must fail fast.
    return dataclasses.replace(RedisSettings.from_dsn(url), conn_timeout=1, conn_retries=0)


def _arq_job(name: str, **fixed: Any) -> Any:
    task = TASKS[name]

    async def run(ctx: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        if name in REDELIVERY_AWARE:
            kwargs["redelivered"] = ctx["job_try"] > 1
        try:
            return await task(ctx["job"], **{**fixed, **kwargs})
        except Exception as error:
            if is_connection_failure(error) and ctx["job_try"] < MAX_TRIES:
                raise Retry(defer=retry_delay(ctx["job_try"])) from error
            raise

    run.__qualname__ = run.__name__ = name
    return run


def _cron(job: Periodic) -> Any:
    return cron(
        _arq_job(job.name, **job.kwargs),
        name=job.label,
        minute=set(job.minutes),
        second=0,
        unique=True,
        max_tries=MAX_TRIES,
        keep_result=KEEP_RESULTS_S,
    )


def worker_key(name: str) -> str:
    return f"{WORKER_KEY_PREFIX}{name}"


async def _heartbeat(redis: ArqRedis, name: str) -> None:
    """Say every few seconds that this worker is alive: /health/detailed counts the keys, so
    a queue nobody works on is reported instead of filling up in silence."""
    while True:
        try:
            await redis.set(worker_key(name), datetime.now(UTC).isoformat(), ex=WORKER_SEEN_S)
        except Exception as error:  # Redis away for a moment: the next beat tries again
            logger.warning("worker heartbeat failed: %s", type(error).__name__)
        await asyncio.sleep(HEARTBEAT_S)


async def _startup(ctx: dict[str, Any]) -> None:
    if "job" not in ctx:  # tests hand in their own database and cache
        settings: Settings = ctx.get("settings") or load_settings()
        database = Database.from_url(
            settings.DATABASE_URL,
            pool_size=settings.DATABASE_POOL_SIZE,
            max_overflow=settings.DATABASE_MAX_OVERFLOW,
        )
        cache = CacheManager()
        cache.configure(settings.REDIS_URL, settings.REDIS_MAX_CONNECTIONS)
        ctx["job"], ctx["owns_job"] = JobContext(database, cache, settings), True
    ctx["worker_name"] = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    ctx["heartbeat"] = asyncio.create_task(_heartbeat(ctx["redis"], ctx["worker_name"]))


async def _shutdown(ctx: dict[str, Any]) -> None:
    heartbeat: asyncio.Task[None] | None = ctx.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        with contextlib.suppress(Exception):  # gone now, not in a minute
            await ctx["redis"].delete(worker_key(ctx["worker_name"]))
    job: JobContext | None = ctx.get("job")
    if job is not None and ctx.get("owns_job"):
        await job.cache.close()
        await job.database.dispose()


def worker_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for arq's Worker (and `run_worker`)."""
    functions: list[Function] = [
        func(_arq_job(name), name=name, max_tries=MAX_TRIES) for name in TASKS
    ]
    return {
        "functions": functions,
        "cron_jobs": [_cron(job) for job in periodic_jobs(settings)],
        "redis_settings": dataclasses.replace(
            redis_settings(settings.queue_redis_url), conn_retries=5
        ),
        "queue_name": QUEUE,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "ctx": {"settings": settings},
        "keep_result": KEEP_RESULTS_S,
        "job_timeout": JOB_TIMEOUT_S,
        "max_jobs": 4,
    }


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    moment: datetime = value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


STATUS = {
    JobStatus.queued: "queued",
    JobStatus.deferred: "deferred",
    JobStatus.in_progress: "in_progress",
}


class RedisQueue:
    """The API's side of the arq queue: enqueue, and read a job's status."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: ArqRedis | None = None

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            try:
                self._pool = await create_pool(redis_settings(self.url), default_queue_name=QUEUE)
            except Exception as error:
                logger.warning("job queue unavailable: %s", type(error).__name__)
                raise ServiceUnavailable("the job queue (Redis) cannot be reached") from None
        return self._pool

    async def enqueue(
        self, name: str, kwargs: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord | None:
        redis = await self._redis()
        try:
            job = await redis.enqueue_job(name, _job_id=job_id, **kwargs)
        except Exception as error:
            raise ServiceUnavailable("the job queue (Redis) cannot be reached") from error
        return None if job is None else await self.get(job.job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        redis = await self._redis()
        job = Job(job_id, redis, _queue_name=QUEUE)
        try:
            status = await job.status()
            if status is JobStatus.not_found:
                return None
            info = await (job.result_info() if status is JobStatus.complete else job.info())
        except Exception as error:
            raise ServiceUnavailable("the job queue (Redis) cannot be reached") from error
        return _record(job_id, status, info)

    async def stats(self) -> QueueStats:
        """Jobs queued or running, the oldest one's age, and the workers alive."""
        try:
            redis = await self._redis()
            jobs = await redis.zcard(QUEUE)
            oldest = await redis.zrange(QUEUE, 0, 0, withscores=True)
            workers = [key async for key in redis.scan_iter(match=f"{WORKER_KEY_PREFIX}*")]
        except Exception as error:
            logger.warning("job queue stats unavailable: %s", type(error).__name__)
            return QueueStats(
                queue="redis", reachable=False, jobs=None, oldest_job_age_s=None, workers=None
            )
        # A job's score is when it is due, in ms; a deferred one is not late yet.
        age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else None
        return QueueStats(
            queue="redis", reachable=True, jobs=jobs, oldest_job_age_s=age, workers=len(workers)
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


def _record(job_id: str, status: JobStatus, info: JobDef | None) -> JobRecord | None:
    if info is None:
        return None
    fields: dict[str, Any] = {
        "id": job_id,
        "name": info.function,
        "arguments": dict(info.kwargs),
        "tries": info.job_try or 0,
        "enqueued_at": _time(info.enqueue_time),
        "queue": "redis",
    }
    if isinstance(info, JobResult):
        fields["started_at"] = _time(info.start_time)
        fields["finished_at"] = _time(info.finish_time)
        if info.success:
            fields["status"], fields["result"] = "complete", info.result
        else:
            fields["status"] = "failed"
            fields["error"] = f"{type(info.result).__name__}: {info.result}"[:500]
    else:
        fields["status"] = STATUS.get(status, "queued")
    return JobRecord(**fields)

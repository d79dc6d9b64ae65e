"""Jobs with Redis: arq workers (`cryptopredict worker`) and the queues the API enqueues on.

Two queues (`queues`): the scheduled one, fed by the workers' cron, and the user one, fed by
the API. Any number of worker processes, on any machines, serve them (`worker_process`).
Periodic jobs are arq cron jobs: every worker of the scheduled queue schedules them, and
arq's unique job id per run (``cron:<name>:<time>``) lets exactly one of them run it. A job
that fails on a transient error (the database restarting) is retried with growing delays;
delivery is at least once, and every job is idempotent.
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
from typing import Any, cast

from arq import Retry, cron
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job, JobDef, JobResult, JobStatus
from arq.worker import Function, func

from app.config import Settings
from app.errors import ServiceUnavailable, is_connection_failure
from app.jobs.queues import QUEUES, USER, Queue, QueueKind
from app.jobs.records import JobRecord, QueueStats
from app.jobs.schedule import JOB_TIMEOUT_S, MAX_TRIES, Periodic, periodic_jobs, retry_delay
from app.jobs.tasks import REDELIVERY_AWARE, TASKS
from app.schemas.health import QueueSummary

logger = logging.getLogger(__name__)
KEEP_RESULTS_S = 24 * 3600
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


def worker_name() -> str:
    """One name per worker process: its heartbeat on each queue it serves carries it."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


async def _heartbeat(redis: ArqRedis, key: str) -> None:
    """Say every few seconds that this worker is alive: /health/detailed counts the keys, so
    a queue nobody works on is reported instead of filling up in silence."""
    while True:
        try:
            await redis.set(key, datetime.now(UTC).isoformat(), ex=WORKER_SEEN_S)
        except Exception as error:  # Redis away for a moment: the next beat tries again
            logger.warning("worker heartbeat failed: %s", type(error).__name__)
        await asyncio.sleep(HEARTBEAT_S)


async def _startup(ctx: dict[str, Any]) -> None:
    # The process hands in the queue served, its name and the JobContext its workers share.
    queue: Queue = ctx["queue"]
    ctx["heartbeat_key"] = f"{queue.worker_prefix}{ctx['worker_name']}"
    ctx["heartbeat"] = asyncio.create_task(_heartbeat(ctx["redis"], ctx["heartbeat_key"]))


async def _shutdown(ctx: dict[str, Any]) -> None:
    heartbeat: asyncio.Task[None] | None = ctx.pop("heartbeat", None)
    if heartbeat is not None:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        with contextlib.suppress(Exception):  # gone now, not in a minute
            await ctx["redis"].delete(ctx["heartbeat_key"])


def worker_options(settings: Settings, queue: Queue) -> dict[str, Any]:
    """Keyword arguments for the arq Worker serving ``queue``, less its ``ctx``.

    Every worker knows every task: a job that a version with one queue left on the
    scheduled queue still runs there.
    """
    functions: list[Function] = [
        func(_arq_job(name), name=name, max_tries=MAX_TRIES) for name in TASKS
    ]
    periodic = periodic_jobs(settings) if queue.cron else []
    return {
        "functions": functions,
        "cron_jobs": [_cron(job) for job in periodic],
        "redis_settings": dataclasses.replace(
            redis_settings(settings.queue_redis_url), conn_retries=5
        ),
        "queue_name": queue.name,
        "on_startup": _startup,
        "on_shutdown": _shutdown,
        "keep_result": KEEP_RESULTS_S,
        "job_timeout": JOB_TIMEOUT_S,
        "max_jobs": queue.max_jobs,
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
    """The API's side of the arq queues: enqueue user work, and read any job's status.

    Everything the API enqueues is user work, so it goes to the user queue; the scheduled
    queue is fed by the workers' cron. A job id is unique across both queues (arq keys a
    job by its id alone), so a job is looked up in both.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool: ArqRedis | None = None

    async def _redis(self) -> ArqRedis:
        if self._pool is None:
            try:
                self._pool = await create_pool(
                    redis_settings(self.url), default_queue_name=USER.name
                )
            except Exception as error:
                logger.warning("job queue unavailable: %s", type(error).__name__)
                raise ServiceUnavailable("the job queue (Redis) cannot be reached") from None
        return self._pool

    async def enqueue(
        self, name: str, kwargs: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord | None:
        redis = await self._redis()
        try:
            job = await redis.enqueue_job(name, _job_id=job_id, _queue_name=USER.name, **kwargs)
        except Exception as error:
            raise ServiceUnavailable("the job queue (Redis) cannot be reached") from error
        return None if job is None else await self.get(job.job_id)

    async def get(self, job_id: str) -> JobRecord | None:
        redis = await self._redis()
        try:
            found = await _find(redis, job_id)
        except Exception as error:
            raise ServiceUnavailable("the job queue (Redis) cannot be reached") from error
        return None if found is None else _record(job_id, *found)

    async def stats(self) -> QueueStats:
        """Per queue: jobs queued or running, the oldest one's age, and the workers alive."""
        try:
            redis = await self._redis()
            loads = {queue.kind: await _load(redis, queue) for queue in QUEUES}
        except Exception as error:
            logger.warning("job queue stats unavailable: %s", type(error).__name__)
            return QueueStats(
                queue="redis", reachable=False, jobs=None, oldest_job_age_s=None, workers=None
            )
        return _totals(loads)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None


async def _find(redis: ArqRedis, job_id: str) -> tuple[JobStatus, JobDef | None] | None:
    """A job's status and what arq knows of it, from whichever queue holds it."""
    for queue in QUEUES:  # a finished or running job is found on the first
        job = Job(job_id, redis, _queue_name=queue.name)
        status = await job.status()
        if status is not JobStatus.not_found:
            info = await (job.result_info() if status is JobStatus.complete else job.info())
            return status, info
    return None


Load = tuple[QueueSummary, set[bytes]]  # a queue's figures, and its workers' names


async def _load(redis: ArqRedis, queue: Queue) -> Load:
    jobs = await redis.zcard(queue.name)
    oldest = await redis.zrange(queue.name, 0, 0, withscores=True)
    prefix = queue.worker_prefix
    keys = [cast(bytes, key) async for key in redis.scan_iter(match=f"{prefix}*")]
    # A job's score is when it is due, in ms; a deferred one is not late yet.
    age = max(0.0, time.time() - oldest[0][1] / 1000) if oldest else None
    summary = QueueSummary(jobs=jobs, oldest_job_age_s=age, workers=len(keys))
    return summary, {key[len(prefix) :] for key in keys}


def _totals(loads: dict[QueueKind, Load]) -> QueueStats:
    """Both queues together; a process serving both counts as one worker."""
    queues = {kind: summary for kind, (summary, _) in loads.items()}
    ages = [q.oldest_job_age_s for q in queues.values() if q.oldest_job_age_s is not None]
    workers = set().union(*(names for _, names in loads.values()))
    return QueueStats(
        queue="redis",
        reachable=True,
        jobs=sum(q.jobs for q in queues.values()),
        oldest_job_age_s=max(ages, default=None),
        workers=len(workers),
        queues=queues,
    )


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

"""Two job queues: user work (backtests, jobs started over the API) cannot starve the
scheduled work (scoring, the hourly forecasts, backfills).

With one queue and one worker's four job slots, twenty accepted backtests held every slot
and the 5-minute scoring job waited behind them for hours. Real Redis, real arq Workers.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from arq.connections import ArqRedis, create_pool
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.config import Settings
from app.jobs import tasks
from app.jobs.queues import QUEUES, SCHEDULED, USER, Queue, Selection, selected
from app.jobs.schedule import periodic_jobs
from app.jobs.tasks import JobContext
from app.jobs.worker import RedisQueue, redis_settings, worker_options
from app.jobs.worker_process import WorkerProcess
from app.main import create_app
from tests.conftest import TransactionalDatabase, make_settings
from tests.integration.factories import run_queued_jobs
from tests.integration.test_backtest_jobs import REQUEST
from tests.integration.test_predictions_api import btc  # noqa: F401 (a fixture)

# arq 0.28 closes its Redis pool with redis-py 5's deprecated close(); not ours to change.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")


@pytest.fixture
def settings(redis_url: str | None) -> Settings:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the arq queues live in Redis")
    return make_settings(REDIS_URL=redis_url)


@pytest.fixture
async def arq_redis(settings: Settings) -> AsyncIterator[ArqRedis]:
    """A client of the queues' Redis, as the workers' cron uses it."""
    pool = await create_pool(redis_settings(settings.queue_redis_url))
    yield pool
    await pool.aclose()


@pytest.fixture
def job(
    settings: Settings, engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> JobContext:
    """The JobContext a worker process's Workers share: the test's database and cache."""
    return JobContext(TransactionalDatabase(engine, db_session), cache, settings)


@pytest.fixture
async def api(job: JobContext, write_key: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(job.settings, database=job.database, cache=job.cache)
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": write_key}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c
    await app.state.jobs.close()


@asynccontextmanager
async def _serving(job: JobContext, *queues: Queue) -> AsyncIterator[WorkerProcess]:
    """A worker process as `cryptopredict worker` runs it, less the cron, polling fast."""
    process = WorkerProcess(job.settings, queues, job, cron_jobs=[], poll_delay=0.05)
    running = asyncio.create_task(process.run())
    try:
        yield process
    finally:
        process.stop()  # what its SIGTERM handler does
        await running


async def _until(check: Callable[[], Awaitable[bool]], within_s: float = 10.0) -> float:
    """Seconds until ``check`` holds; fails after ``within_s``."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within_s, "condition not met in time"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def _status(queue: RedisQueue, job_id: str) -> str | None:
    record = await queue.get(job_id)
    return None if record is None else record.status


async def _enqueue_scheduled(arq_redis: ArqRedis, name: str) -> str:
    """What the workers' cron does at each run: the job, on the scheduled queue."""
    job_id = f"cron:{name}:test-{uuid.uuid4().hex}"
    assert await arq_redis.enqueue_job(name, _job_id=job_id, _queue_name=SCHEDULED.name)
    return job_id


# ------------------------------------------------------------------------- no starvation


async def test_a_flooded_user_queue_does_not_hold_up_the_scheduled_work(
    job: JobContext, arq_redis: ArqRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    release, started = asyncio.Event(), []

    async def hold(_ctx: JobContext, n: int) -> dict[str, Any]:
        """User work that keeps its slot until the test lets go (a long backtest)."""
        started.append(n)
        await release.wait()
        return {"held": n}

    async def user_slots_full() -> bool:
        return len(started) == USER.max_jobs

    monkeypatch.setitem(tasks.TASKS, "hold", hold)
    queue = RedisQueue(job.settings.queue_redis_url)
    flood = [await queue.enqueue("hold", {"n": n}) for n in range(USER.max_jobs + 3)]
    held = [record.id for record in flood if record is not None]
    try:
        async with _serving(job, *QUEUES):
            await _until(user_slots_full)
            scoring = await _enqueue_scheduled(arq_redis, "score_predictions")
            waited = await _until(lambda: _has_status(queue, [scoring], "complete"), within_s=5)
            assert waited < 5  # promptly: a poll or two, and an (empty) scoring run
            record = await queue.get(scoring)
            assert record is not None and record.result == {"scored": 0, "waiting": 0}
            # ... while the user queue is still full: its jobs keep their slots, the rest wait.
            assert len(started) == USER.max_jobs
            statuses = [await _status(queue, job_id) for job_id in held]
            assert statuses.count("in_progress") == USER.max_jobs
            assert statuses.count("queued") == 3
            release.set()
            await _until(lambda: _has_status(queue, held, "complete"))
    finally:
        release.set()
        await queue.close()


async def _has_status(queue: RedisQueue, job_ids: list[str], status: str) -> bool:
    return all([await _status(queue, job_id) == status for job_id in job_ids])


# ------------------------------------------------------------------- where jobs go, and are found


async def test_user_work_goes_to_the_user_queue_and_any_job_is_found(
    job: JobContext,
    api: httpx.AsyncClient,
    arq_redis: ArqRedis,
    btc: np.ndarray,  # noqa: F811
) -> None:
    started = await api.post("/api/v1/jobs", json={"name": "score_predictions"})
    assert started.status_code == 202, started.text
    backtest = await api.post("/api/v1/backtests", json=REQUEST)
    assert backtest.status_code == 202, backtest.text
    user_jobs = [started.json()["id"], f"backtest:{backtest.json()['id']}"]
    scheduled = await _enqueue_scheduled(arq_redis, "score_predictions")
    for job_id in user_jobs:
        assert await arq_redis.zscore(USER.name, job_id) is not None
        assert await arq_redis.zscore(SCHEDULED.name, job_id) is None
    assert await arq_redis.zscore(SCHEDULED.name, scheduled) is not None

    for job_id in [*user_jobs, scheduled]:  # queued, on either queue
        found = await api.get(f"/api/v1/jobs/{job_id}")
        assert (found.status_code, found.json()["status"]) == (200, "queued"), job_id
    # An id is one job across both queues: the API cannot start it again on the user queue.
    queue = RedisQueue(job.settings.queue_redis_url)
    assert await queue.enqueue("score_predictions", {}, job_id=scheduled) is None
    await queue.close()

    await run_queued_jobs(job.settings, job.database, job.cache)
    for job_id in [*user_jobs, scheduled]:
        done = (await api.get(f"/api/v1/jobs/{job_id}")).json()
        assert done["status"] == "complete", done
    assert (await api.get(f"/api/v1/jobs/cron:nothing:{uuid.uuid4().hex}")).status_code == 404


# --------------------------------------------------------------------------------- health


async def _jobs_health(api: httpx.AsyncClient) -> dict[str, Any]:
    response = await api.get("/health/detailed")
    assert response.status_code == 200, response.text
    jobs: dict[str, Any] = response.json()["jobs"]
    return jobs


async def _health_when(api: httpx.AsyncClient, scheduled: int, user: int) -> dict[str, Any]:
    """The jobs summary once the queues have these many workers."""
    jobs: dict[str, Any] = {}

    async def counted() -> bool:
        nonlocal jobs
        jobs = await _jobs_health(api)
        served = [jobs["queues"][kind]["workers"] for kind in ("scheduled", "user")]
        return served == [scheduled, user]

    await _until(counted)
    return jobs


async def test_health_counts_workers_per_queue_and_names_a_queue_nobody_serves(
    job: JobContext, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/v1/jobs", json={"name": "score_predictions"})).status_code == 202
    none = await _health_when(api, scheduled=0, user=0)
    assert none["status"] == "degraded" and none["workers"] == 0
    assert "no worker seen" in none["detail"]

    async with _serving(job, *selected("scheduled")):
        jobs = await _health_when(api, scheduled=1, user=0)
        assert (jobs["status"], jobs["workers"]) == ("degraded", 1)
        assert "no worker on the user queue" in jobs["detail"]
        assert "cryptopredict worker --queue user" in jobs["detail"]
        assert jobs["queues"]["user"]["jobs"] == 1  # the job started over the API waits there

    async with _serving(job, *selected("user")):
        async with _serving(job, *selected("scheduled")):  # two processes, two machines
            jobs = await _health_when(api, scheduled=1, user=1)
            assert (jobs["status"], jobs["workers"], jobs["detail"]) == ("healthy", 2, None)
        jobs = await _health_when(api, scheduled=0, user=1)
        assert (jobs["status"], jobs["workers"]) == ("degraded", 1)
        assert "no worker on the scheduled queue" in jobs["detail"]
        assert "scoring, the hourly forecasts and backfills do not run" in jobs["detail"]


# ------------------------------------------------------------------------- queue selection


async def test_the_worker_serves_the_queues_it_is_told(job: JobContext) -> None:
    assert selected("all") == (SCHEDULED, USER)
    assert selected("scheduled") == (SCHEDULED,) and selected("user") == (USER,)
    settings = make_settings(REDIS_URL="redis://q:6379/3", JOBS_BACKFILL_SYMBOLS="btc")
    labels = sorted(periodic.label for periodic in periodic_jobs(settings))
    cases: list[tuple[Selection, int]] = [("all", 2), ("scheduled", 1), ("user", 1)]
    for selection, served in cases:
        process = WorkerProcess(settings, selected(selection), job)
        assert len(process.workers) == served
        for worker in process.workers:
            kind = "scheduled" if worker.queue_name == SCHEDULED.name else "user"
            assert selection in ("all", kind)
            # Only the scheduled queue's workers enqueue the periodic jobs.
            crons = sorted(cron.name for cron in worker.cron_jobs)
            assert crons == (labels if kind == "scheduled" else [])
            assert worker.max_jobs == (2 if kind == "scheduled" else 4)
            assert set(tasks.TASKS) <= set(worker.functions)
            assert worker.ctx["job"] is job  # one database pool and cache for all
    # Each queue's slots are its own, and one user's flood cannot take the scheduled ones.
    assert SCHEDULED.name != USER.name and SCHEDULED.name == "crypto:jobs"
    options = worker_options(settings, USER)
    assert (options["queue_name"], options["max_jobs"]) == ("crypto:jobs:user", USER.max_jobs)

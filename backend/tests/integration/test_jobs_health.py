"""/health/detailed tells whether jobs can run: a queue nobody works on is not "healthy".

With Redis, accepted backtests and scheduled jobs wait in their queues for an arq worker.
With none running they used to wait for ever while the health check said "healthy".
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.jobs.queues import QUEUES
from app.jobs.tasks import JobContext
from app.jobs.worker import RedisQueue
from app.jobs.worker_process import WorkerProcess
from app.main import create_app
from tests.conftest import TransactionalDatabase, make_api_key, make_settings


async def _health(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/health/detailed")
    assert response.status_code == 200, response.text  # degraded is still 200
    body: dict[str, Any] = response.json()
    return body


async def _until(http: httpx.AsyncClient, status: str) -> dict[str, Any]:
    for _ in range(300):
        body = await _health(http)
        if body["jobs"]["status"] == status:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"jobs never became {status}: {body['jobs']}")


# arq 0.28 closes its Redis pool with redis-py 5's deprecated close(); not ours to change.
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_a_queue_without_workers_is_degraded_until_one_starts(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager, redis_url: str | None
) -> None:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the arq queue lives in Redis")
    settings = make_settings(REDIS_URL=redis_url)
    database = TransactionalDatabase(engine, db_session)
    app = create_app(settings, database=database, cache=cache)
    queue = app.state.jobs
    assert isinstance(queue, RedisQueue)
    key = await make_api_key(db_session, "write")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        job = await http.post(
            "/api/v1/jobs", json={"name": "score_predictions"}, headers={"X-API-Key": key}
        )
        assert job.status_code == 202, job.text
        body = await _health(http)
        assert body["status"] == "degraded"
        jobs = body["jobs"]
        assert (jobs["queue"], jobs["reachable"], jobs["workers"]) == ("redis", True, 0)
        assert jobs["jobs"] >= 1 and jobs["oldest_job_age_s"] >= 0
        assert jobs["queues"]["user"]["jobs"] >= 1  # a job started over the API is user work
        assert "no worker" in jobs["detail"] and "cryptopredict worker" in jobs["detail"]

        # A real worker process serving both queues, as `cryptopredict worker` runs it (the
        # test's database and cache).
        job_context = JobContext(database, cache, settings)
        process = WorkerProcess(settings, QUEUES, job_context, cron_jobs=[], poll_delay=0.05)
        running = asyncio.create_task(process.run())
        try:
            alive = await _until(http, "healthy")
            assert alive["status"] == "healthy" and alive["jobs"]["workers"] == 1
            served = {kind: queue["workers"] for kind, queue in alive["jobs"]["queues"].items()}
            assert served == {"scheduled": 1, "user": 1}  # one process, on both queues
            assert alive["jobs"]["detail"] is None
        finally:
            process.stop()
            await running
        # A worker that stopped is not counted: it says goodbye, not a minute later.
        gone = await _health(http)
        assert gone["jobs"]["workers"] == 0 and gone["status"] == "degraded"
    await queue.close()


async def test_an_unreachable_queue_is_degraded(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> None:
    # Port 1 on loopback: nothing listens there.
    settings = make_settings(JOBS_REDIS_URL="redis://127.0.0.1:1/0")
    app = create_app(settings, database=TransactionalDatabase(engine, db_session), cache=cache)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        body = await _health(http)
    assert body["status"] == "degraded"
    assert body["jobs"]["reachable"] is False and "cannot be reached" in body["jobs"]["detail"]
    await app.state.jobs.close()

"""Jobs: the same idempotent functions on arq workers (Redis) or in-process (no Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.jobs import tasks
from app.jobs.local import LocalQueue, LocalScheduler
from app.jobs.schedule import Periodic, periodic_jobs, retry_delay
from app.jobs.tasks import JobContext
from app.main import create_app
from app.market import Timeframe
from app.models import Prediction
from app.repositories import market_data
from tests.conftest import TransactionalDatabase, make_api_key, make_settings
from tests.integration.factories import make_coin, run_queued_jobs
from tests.integration.test_predictions_api import candles_ending, geometric_walk

JOBS = "/api/v1/jobs"


@pytest.fixture
def ctx(engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager) -> JobContext:
    return JobContext(TransactionalDatabase(engine, db_session), cache, make_settings())


@pytest.fixture
async def btc(db_session: AsyncSession) -> None:
    coin = await make_coin(db_session, symbol="BTC", name="Bitcoin")
    last = Timeframe.H1.floor(datetime.now(UTC)) - timedelta(hours=1)
    candles = candles_ending(last, geometric_walk(2300, seed=7), Timeframe.H1)
    await market_data.insert_missing(db_session, coin.id, candles, "test")


async def _predictions(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count(Prediction.id)))).scalar_one())


async def test_prediction_runs_are_idempotent(
    ctx: JobContext, btc: None, db_session: AsyncSession
) -> None:
    queue = LocalQueue(ctx)
    first = await queue.enqueue("make_predictions", {"horizons": ["1h", "4h"]})
    assert first is not None and first.status == "queued"
    await queue.wait()
    done = await queue.get(first.id)
    assert done is not None and done.status == "complete", done
    assert done.result == {"coins": 1, "stored": 10, "skipped": 0}
    again = await queue.enqueue("make_predictions", {"horizons": ["1h", "4h"]})
    assert again is not None
    await queue.wait()
    assert await _predictions(db_session) == 10  # replaced, not duplicated
    scored = await queue.enqueue("score_predictions", {})
    assert scored is not None
    await queue.wait()
    record = await queue.get(scored.id)
    assert record is not None and record.result == {"scored": 0, "waiting": 0}


async def test_transient_failures_are_retried_with_backoff(
    ctx: JobContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    async def flaky(_ctx: JobContext) -> dict[str, Any]:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("database restarting")
        return {"ok": True}

    async def broken(_ctx: JobContext) -> dict[str, Any]:
        raise ValueError("a bug, not an outage")

    monkeypatch.setitem(tasks.TASKS, "flaky", flaky)
    monkeypatch.setitem(tasks.TASKS, "broken", broken)
    delays: list[int] = []
    queue = LocalQueue(ctx, delay=lambda attempt: delays.append(attempt) or 0.0)
    flaky_job, broken_job = await queue.enqueue("flaky", {}), await queue.enqueue("broken", {})
    await queue.wait()
    assert flaky_job is not None and broken_job is not None
    recovered, failed = await queue.get(flaky_job.id), await queue.get(broken_job.id)
    assert recovered is not None and (recovered.status, recovered.tries) == ("complete", 3)
    assert delays == [1, 2]
    assert failed is not None and (failed.status, failed.tries) == ("failed", 1)
    assert failed.error == "ValueError: a bug, not an outage"
    assert [retry_delay(n) for n in (1, 2, 3, 4, 5)] == [5, 20, 80, 300, 300]


async def test_the_schedule_runs_each_periodic_job_once_per_run(ctx: JobContext) -> None:
    queue = LocalQueue(ctx)
    scheduler = LocalScheduler(queue, periodic_jobs(make_settings()))
    at_3 = datetime(2026, 1, 1, 10, 3, tzinfo=UTC)
    assert await scheduler.tick(datetime(2026, 1, 1, 10, 4, tzinfo=UTC)) == []
    started = await scheduler.tick(at_3)
    assert sorted(started) == ["cron:make_predictions:20260101T1003"]
    assert await scheduler.tick(at_3) == []  # the same run again: deduplicated by its id
    assert await scheduler.tick(at_3.replace(minute=7)) == ["cron:score_predictions:20260101T1007"]
    await queue.wait()
    job = Periodic("score_predictions", frozenset({2, 7}))
    assert job.next_after(at_3) == at_3.replace(minute=7)
    assert job.next_after(at_3.replace(minute=7, second=30)) == at_3.replace(hour=11, minute=2)


def test_backfill_jobs_follow_the_setting() -> None:
    jobs = periodic_jobs(make_settings(JOBS_BACKFILL_SYMBOLS="btc, eth"))
    backfills = [job for job in jobs if job.name == "backfill"]
    assert [job.label for job in backfills] == ["backfill:BTC", "backfill:ETH"]
    moment = datetime(2026, 1, 1, 0, 30, tzinfo=UTC)
    assert backfills[0].job_id(moment) != backfills[1].job_id(moment)


@pytest.fixture
async def local_api(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager
) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(
        make_settings(), database=TransactionalDatabase(engine, db_session), cache=cache
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http, app


async def test_jobs_api_starts_a_job_and_reports_it(
    local_api: tuple[httpx.AsyncClient, Any], db_session: AsyncSession
) -> None:
    http, app = local_api
    key = await make_api_key(db_session, "write")
    assert (await http.post(JOBS, json={"name": "score_predictions"})).status_code == 401
    bad = await http.post(JOBS, json={"name": "rm_rf"}, headers={"X-API-Key": key})
    assert bad.status_code == 422
    accepted = await http.post(JOBS, json={"name": "score_predictions"}, headers={"X-API-Key": key})
    assert accepted.status_code == 202, accepted.text
    assert accepted.json()["queue"] == "local"
    await app.state.jobs.wait()
    done = (await http.get(f"{JOBS}/{accepted.json()['id']}")).json()
    assert (done["status"], done["result"], done["tries"]) == (
        "complete",
        {"scored": 0, "waiting": 0},
        1,
    )
    assert (await http.get(f"{JOBS}/local-999")).status_code == 404


# arq 0.28 closes its Redis pool with redis-py 5's deprecated close(); not ours to change.
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_arq_workers_run_queued_jobs_once(
    engine: AsyncEngine, db_session: AsyncSession, cache: CacheManager, redis_url: str | None
) -> None:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the arq queue lives in Redis")
    from app.jobs.worker import RedisQueue

    settings = make_settings(REDIS_URL=redis_url)
    database = TransactionalDatabase(engine, db_session)
    app = create_app(settings, database=database, cache=cache)
    queue = app.state.jobs
    assert isinstance(queue, RedisQueue)
    key = await make_api_key(db_session, "write")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        accepted = await http.post(
            JOBS, json={"name": "score_predictions"}, headers={"X-API-Key": key}
        )
        assert accepted.status_code == 202, accepted.text
        job_id = accepted.json()["id"]
        assert accepted.json()["status"] == "queued" and accepted.json()["queue"] == "redis"

        await run_queued_jobs(settings, database, cache)
        done = (await http.get(f"{JOBS}/{job_id}")).json()
        assert (done["status"], done["result"]) == ("complete", {"scored": 0, "waiting": 0})

        # Periodic runs share one id per run: a second worker enqueueing it gets nothing.
        run_id = f"cron:score_predictions:test-{job_id}"
        assert await queue.enqueue("score_predictions", {}, job_id=run_id) is not None
        assert await queue.enqueue("score_predictions", {}, job_id=run_id) is None
    await queue.close()


def test_the_queue_can_live_in_its_own_redis() -> None:
    from app.jobs.queues import QUEUES
    from app.jobs.worker import RedisQueue, worker_options

    settings = make_settings(REDIS_URL="redis://cache:6379/0", JOBS_REDIS_URL="redis://q:6380/2")
    queue = create_app(settings).state.jobs
    assert isinstance(queue, RedisQueue) and queue.url == "redis://q:6380/2"
    for served in QUEUES:
        redis = worker_options(settings, served)["redis_settings"]
        assert (redis.host, redis.port, redis.database) == ("q", 6380, 2)

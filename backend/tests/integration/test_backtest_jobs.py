"""Backtests on the job queue: sent to the workers, delivered at least once, run exactly once."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.cache import CacheManager
from app.jobs import tasks
from app.jobs.backtest_runner import job_id
from app.jobs.tasks import JobContext
from app.main import create_app
from app.models import Backtest
from app.repositories import backtests as backtest_rows
from app.schemas.predictions import BacktestRequest
from app.services import backtest_runs, backtests
from tests.conftest import TransactionalDatabase, make_settings
from tests.integration.factories import run_queued_jobs
from tests.integration.test_predictions_api import btc  # noqa: F401 (a fixture)

WINDOWS = 6
REQUEST = {"symbol": "BTC", "horizon": "4h", "models": ["random_walk_drift"], "windows": WINDOWS}


@pytest.fixture
def database(engine: AsyncEngine, db_session: AsyncSession) -> TransactionalDatabase:
    return TransactionalDatabase(engine, db_session)


@pytest.fixture
def ctx(database: TransactionalDatabase, cache: CacheManager) -> JobContext:
    return JobContext(database, cache, make_settings())


@pytest.fixture
async def pending(db_session: AsyncSession, cache: CacheManager, btc: np.ndarray) -> str:  # noqa: F811
    accepted = await backtests.start(db_session, cache, BacktestRequest.model_validate(REQUEST))
    return accepted.id


async def _row(session: AsyncSession, backtest_id: str) -> Backtest:
    session.expire_all()
    statement = select(Backtest).where(Backtest.id == backtest_id)
    return (await session.execute(statement)).scalar_one()


async def _client(app: Any, key: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    headers = {"X-API-Key": key}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        yield c


# arq 0.28 closes its Redis pool with redis-py 5's deprecated close(); not ours to change.
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_with_a_queue_backtests_run_on_the_workers_not_in_the_api(
    database: TransactionalDatabase,
    cache: CacheManager,
    redis_url: str | None,
    write_key: str,
    btc: np.ndarray,  # noqa: F811
) -> None:
    if redis_url is None:
        pytest.skip("needs TEST_REDIS_URL: the arq queue lives in Redis")
    from app.jobs.worker import RedisQueue

    settings = make_settings(REDIS_URL=redis_url)
    app = create_app(settings, database=database, cache=cache)
    queue = app.state.jobs
    assert isinstance(queue, RedisQueue)
    async for http in _client(app, write_key):
        accepted = await http.post("/api/v1/backtests", json=REQUEST)
        assert accepted.status_code == 202, accepted.text
        backtest_id = accepted.json()["id"]
        assert app.state.backtests.running == 0  # nothing runs in the API process
        job = await queue.get(job_id(backtest_id))
        assert job is not None and (job.name, job.status) == ("run_backtest", "queued")
        # The same backtest is one job, however often it is sent.
        again = {"backtest_id": backtest_id}
        assert await queue.enqueue("run_backtest", again, job_id=job.id) is None

        await run_queued_jobs(settings, database, cache)

        done = (await http.get(f"/api/v1/backtests/{backtest_id}")).json()
        assert (done["status"], done["windows_done"]) == ("succeeded", WINDOWS), done["error"]
        record = await queue.get(job.id)
        assert record is not None and record.status == "complete"
        assert record.result == {"backtest_id": backtest_id, "status": "succeeded"}
        assert app.state.backtests.outcomes == {}
    await queue.close()


async def test_a_queue_that_cannot_be_reached_runs_the_backtest_in_the_api(
    database: TransactionalDatabase,
    cache: CacheManager,
    write_key: str,
    btc: np.ndarray,  # noqa: F811
) -> None:
    # Port 1 on loopback: nothing listens there, so the queue refuses at once.
    app = create_app(make_settings(JOBS_REDIS_URL="redis://127.0.0.1:1/0"), database=database)
    async for http in _client(app, write_key):
        accepted = await http.post("/api/v1/backtests", json=REQUEST)
        assert accepted.status_code == 202, accepted.text
        await app.state.backtests.wait()
        done = (await http.get(f"/api/v1/backtests/{accepted.json()['id']}")).json()
    assert done["status"] == "succeeded", done["error"]
    assert app.state.backtests.outcomes == {"finished": 1}
    await app.state.jobs.close()


async def test_a_redelivered_run_takes_over_the_row_its_stopped_worker_left_running(
    ctx: JobContext, db_session: AsyncSession, pending: str
) -> None:
    async with ctx.database.unit_of_work() as session:  # a worker claimed it, then died
        assert await backtest_rows.mark_running(session, pending, datetime.now(UTC))

    first = await tasks.run_backtest(ctx, pending)  # a stray duplicate: not its to run
    assert first["status"] == "already claimed or finished"
    assert (await _row(db_session, pending)).status == "running"

    redelivered = await tasks.run_backtest(ctx, pending, redelivered=True)
    assert redelivered == {"backtest_id": pending, "status": "succeeded"}
    row = await _row(db_session, pending)
    assert (row.status, row.windows_done) == ("succeeded", WINDOWS)
    # Delivered once more after it finished: nothing changes.
    finished_at = row.finished_at
    assert (await tasks.run_backtest(ctx, pending, redelivered=True))["status"] != "succeeded"
    assert (await _row(db_session, pending)).finished_at == finished_at


async def test_the_worker_tells_a_backtest_whether_it_is_a_redelivery(
    ctx: JobContext, db_session: AsyncSession, pending: str
) -> None:
    from app.jobs.worker import _arq_job

    async with ctx.database.unit_of_work() as session:
        assert await backtest_rows.mark_running(session, pending, datetime.now(UTC))
    job = _arq_job("run_backtest")
    first_try = await job({"job": ctx, "job_try": 1}, backtest_id=pending)
    assert first_try["status"] == "already claimed or finished"
    second_try = await job({"job": ctx, "job_try": 2}, backtest_id=pending)
    assert second_try["status"] == "succeeded"


class Gate:
    """A progress callback that holds the backtest's thread at its first window."""

    def __init__(self) -> None:
        self.reached, self.release = threading.Event(), threading.Event()
        self.windows: list[int] = []

    def __call__(self, done: int, _total: int) -> None:
        self.windows.append(done)
        if done == 1:
            self.reached.set()
            self.release.wait(30)


async def test_a_run_cancelled_by_shutdown_hands_its_row_back_for_the_next_delivery(
    ctx: JobContext, db_session: AsyncSession, pending: str
) -> None:
    gate = Gate()
    run = asyncio.create_task(
        backtest_runs.execute(ctx.database, ctx.cache, pending, progress=gate)
    )
    assert await asyncio.to_thread(gate.reached.wait, 30)
    run.cancel()  # what arq does to its jobs on SIGTERM
    with pytest.raises(asyncio.CancelledError):
        await run
    row = await _row(db_session, pending)
    assert (row.status, row.started_at, row.windows_done) == ("pending", None, 0)

    gate.release.set()  # the thread goes on to its next window, sees the stop and ends
    again = await tasks.run_backtest(ctx, pending, redelivered=True)
    assert again["status"] == "succeeded"
    assert gate.windows == [1]  # the cancelled run's thread computed nothing more


async def test_a_run_past_its_deadline_fails_with_the_reason(
    ctx: JobContext, db_session: AsyncSession, pending: str
) -> None:
    gate = Gate()
    try:
        status = await backtest_runs.execute(
            ctx.database, ctx.cache, pending, progress=gate, deadline_s=0.5
        )
    finally:
        gate.release.set()
    assert status == "failed"
    row = await _row(db_session, pending)
    assert (row.status, row.error) == ("failed", "stopped: it ran longer than 0.5 s")

"""Where an accepted backtest runs: on the workers' queue, or here in the background.

With a job queue (Redis) a backtest runs on the workers as the ``run_backtest`` job. Without
one, or while it cannot be reached, it runs in the process that accepted it: the backtest
is accepted already, so it runs somewhere.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter

from app.cache import CacheManager
from app.database import Database
from app.errors import ServiceUnavailable
from app.jobs.records import JobQueue
from app.services import backtest_runs

logger = logging.getLogger(__name__)

JOB_NAME = "run_backtest"


def job_id(backtest_id: str) -> str:
    """One queue job per backtest, however often its request is retried."""
    return f"backtest:{backtest_id}"


class BacktestRunner:
    """Sends accepted backtests to the workers' queue, or runs them here in the background."""

    def __init__(
        self,
        database: Database,
        cache: CacheManager,
        queue: JobQueue | None = None,
        *,
        local_limit: int = 1,
    ) -> None:
        self._database = database
        self._cache = cache
        self._queue = queue  # the workers' queue; None: run everything in this process
        self._tasks: set[asyncio.Task[None]] = set()
        # Backtests computing here at once; the others wait their turn. What waits is
        # bounded by the backtest budget, and the API keeps its threads for requests.
        self._slots = asyncio.Semaphore(local_limit)
        self._cancel = threading.Event()
        # Finished backtests by outcome, for the metrics endpoint.
        self.outcomes: Counter[str] = Counter()

    @property
    def running(self) -> int:
        return len(self._tasks)

    async def dispatch(self, backtest_id: str) -> None:
        """To the workers when there are some; here when not, or when their queue is away."""
        if self._queue is not None:
            try:
                await self._queue.enqueue(
                    JOB_NAME, {"backtest_id": backtest_id}, job_id=job_id(backtest_id)
                )
                return
            except ServiceUnavailable:
                logger.warning("job queue unavailable: backtest %s runs here", backtest_id)
        self.submit(backtest_id)

    def submit(self, backtest_id: str) -> None:
        """Run it in this process, in the background."""
        task = asyncio.create_task(self._run(backtest_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, backtest_id: str) -> None:
        try:
            async with self._slots:
                await backtest_runs.execute(
                    self._database, self._cache, backtest_id, cancel=self._cancel
                )
            self.outcomes["finished"] += 1
        except Exception:  # logged, not raised: nobody awaits a background task
            self.outcomes["crashed"] += 1
            logger.exception("backtest %s failed", backtest_id)
            await backtest_runs.fail(self._database, backtest_id, "internal error")

    async def wait(self) -> None:
        """Until every submitted backtest has finished (tests, the CLI)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Stop running backtests between windows; they are recorded as failed."""
        self._cancel.set()
        await self.wait()

    async def fail_abandoned(self) -> int:
        return await backtest_runs.fail_abandoned(self._database)

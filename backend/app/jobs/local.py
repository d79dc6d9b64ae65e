"""Jobs without Redis: the API process runs the job functions itself, on the same schedule.

Only for the embedded default (one process). Records are kept in memory (the newest 1,000),
so a job's status is lost with the process, as its work is not: every job is idempotent.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from app.errors import is_connection_failure
from app.jobs.records import JobRecord, QueueStats
from app.jobs.schedule import MAX_TRIES, Periodic, retry_delay
from app.jobs.tasks import TASKS, JobContext

logger = logging.getLogger(__name__)
KEPT_RECORDS = 1000


def _now() -> datetime:
    return datetime.now(UTC)


class LocalQueue:
    def __init__(self, ctx: JobContext, *, delay: Callable[[int], float] = retry_delay) -> None:
        self.ctx = ctx
        self._delay = delay
        self._records: OrderedDict[str, JobRecord] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._counter = 0

    async def enqueue(
        self, name: str, kwargs: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord | None:
        if job_id is not None and job_id in self._records:
            return None  # the same periodic run, or a client retrying its request
        self._counter += 1
        record = JobRecord(
            id=job_id or f"local-{self._counter}-{_now():%Y%m%dT%H%M%S}",
            name=name,
            arguments=kwargs,
            status="queued",
            enqueued_at=_now(),
            queue="local",
        )
        self._remember(record)
        task = asyncio.create_task(self._run(record))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return record.model_copy()

    def _remember(self, record: JobRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > KEPT_RECORDS:
            self._records.popitem(last=False)

    async def _run(self, record: JobRecord) -> None:
        task = TASKS[record.name]
        while True:
            record.tries += 1
            record.status, record.started_at = "in_progress", _now()
            try:
                record.result = await task(self.ctx, **record.arguments)
            except Exception as error:
                record.error = f"{type(error).__name__}: {error}"[:500]
                if is_connection_failure(error) and record.tries < MAX_TRIES:
                    record.status = "deferred"
                    logger.warning("job %s failed (try %d); retrying", record.id, record.tries)
                    await asyncio.sleep(self._delay(record.tries))
                    continue
                record.status, record.finished_at = "failed", _now()
                logger.exception("job %s failed", record.id)
                return
            record.status, record.finished_at, record.error = "complete", _now(), None
            return

    async def get(self, job_id: str) -> JobRecord | None:
        record = self._records.get(job_id)
        return record.model_copy() if record else None

    async def stats(self) -> QueueStats:
        """This process is the worker; its jobs are the ones not finished yet."""
        waiting = [r for r in self._records.values() if r.finished_at is None]
        due = [r.enqueued_at for r in waiting if r.enqueued_at is not None]
        oldest = (_now() - min(due)).total_seconds() if due else None
        return QueueStats(
            queue="local", reachable=True, jobs=len(waiting), oldest_job_age_s=oldest, workers=1
        )

    async def wait(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)


class LocalScheduler:
    """Enqueues each periodic job at its minutes, once per run (ids are per minute)."""

    def __init__(
        self,
        queue: LocalQueue,
        jobs: list[Periodic],
        *,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self.queue = queue
        self.jobs = jobs
        self.clock = clock

    async def tick(self, moment: datetime) -> list[str]:
        """Enqueue the jobs due at ``moment`` (a whole minute); return their ids."""
        started = []
        for job in self.jobs:
            if job.due(moment):
                record = await self.queue.enqueue(job.name, job.kwargs, job_id=job.job_id(moment))
                if record is not None:
                    started.append(record.id)
        return started

    async def run(self) -> None:
        if not self.jobs:
            return
        while True:
            now = self.clock()
            moment = min(job.next_after(now) for job in self.jobs)
            await asyncio.sleep(max(0.0, (moment - now).total_seconds()))
            try:
                await self.tick(moment)
            except Exception:  # one bad tick must not stop the schedule
                logger.exception("scheduling the jobs due at %s failed", moment)

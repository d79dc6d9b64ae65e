"""One worker process (`cryptopredict worker`): an arq Worker per queue it serves.

The Workers share one JobContext (one database pool, one cache), and each has its own job
slots, so user work never takes the scheduled queue's. arq handles signals for one Worker
only; here the process's SIGINT and SIGTERM stop them all: each cancels its running jobs,
which arq puts back on their queue for the next delivery.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from arq.worker import Worker

from app.cache import CacheManager
from app.config import Settings
from app.database import Database
from app.jobs.queues import Queue, Selection, selected
from app.jobs.tasks import JobContext
from app.jobs.worker import worker_name, worker_options

logger = logging.getLogger(__name__)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
SPARE_THREADS = 4  # for the event loop's own use of threads: DNS look-ups for connections


class WorkerProcess:
    """The Workers of ``queues``; ``run`` until a signal, or in burst mode until each
    queue is empty. ``overrides`` replace Worker options (tests: a shorter poll delay)."""

    def __init__(
        self,
        settings: Settings,
        queues: Sequence[Queue],
        job: JobContext,
        *,
        burst: bool = False,
        **overrides: Any,
    ) -> None:
        self.name = worker_name()
        self.queues = tuple(queues)
        self.workers = [
            Worker(
                **{**worker_options(settings, queue), **overrides},
                ctx={"job": job, "queue": queue, "worker_name": self.name},
                burst=burst,
                handle_signals=False,
            )
            for queue in queues
        ]

    async def run(self) -> None:
        served = ", ".join(f"{q.kind} ({q.name}, {q.max_jobs} job slots)" for q in self.queues)
        logger.info("worker %s serves the queues: %s", self.name, served)
        loop = asyncio.get_running_loop()
        for worker in self.workers:
            worker.main_task = asyncio.create_task(worker.main())  # what handle_sig cancels
        for signum in STOP_SIGNALS:
            loop.add_signal_handler(signum, self.stop, signum)
        try:
            await self._until_done()
        finally:
            for signum in STOP_SIGNALS:
                loop.remove_signal_handler(signum)
            for worker in self.workers:
                await _close(worker)

    def stop(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """Cancel every Worker's running jobs and its polling."""
        for worker in self.workers:
            worker.handle_sig(signum)

    async def _until_done(self) -> None:
        """Until every Worker has stopped; if one fails, the others are stopped too."""
        tasks = [worker.main_task for worker in self.workers if worker.main_task]
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        failures = [task.exception() for task in done if not task.cancelled()]
        for error in failures:
            if error is not None:
                self.stop()
                raise error


async def _close(worker: Worker) -> None:
    """Stop and close one Worker, whatever state it is in."""
    if worker.main_task is not None and not worker.main_task.done():
        worker.handle_sig(signal.SIGTERM)
    # arq's close() awaits the job tasks and re-raises a cancelled one's CancelledError:
    # await them here, each handing its job back, so it finds none.
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    await asyncio.gather(*filter(None, [worker.main_task]), return_exceptions=True)
    worker.tasks.clear()
    try:
        await worker.close()
    except Exception as error:  # Redis gone: the next worker still closes
        logger.warning("closing the worker of %s failed: %s", worker.queue_name, error)


def job_context(settings: Settings) -> JobContext:
    database = Database.from_url(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
    )
    cache = CacheManager()
    cache.configure(settings.REDIS_URL, settings.REDIS_MAX_CONNECTIONS)
    return JobContext(database, cache, settings)


async def serve(settings: Settings, selection: Selection, *, burst: bool = False) -> None:
    """What `cryptopredict worker` runs: the selected queues, with their own JobContext."""
    queues = selected(selection)
    # Model fits run in threads: one per job slot, so busy user slots cannot take the threads
    # the scheduled jobs need either (the default pool has as few as CPUs + 4).
    threads = sum(queue.max_jobs for queue in queues) + SPARE_THREADS
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(threads, "jobs"))
    job = job_context(settings)
    try:
        await WorkerProcess(settings, queues, job, burst=burst).run()
    finally:
        await job.cache.close()
        await job.database.dispose()

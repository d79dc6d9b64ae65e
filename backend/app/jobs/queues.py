"""The two job queues, so that user work can never starve the scheduled work.

Scheduled work (scoring, the hourly forecasts, backfills) is enqueued by the workers' own
cron; user work (backtests, jobs started with ``POST /api/v1/jobs``) by the API. Each queue
is an arq queue (a Redis sorted set) served by its own arq Worker with its own job slots, so
twenty accepted backtests fill the user queue's slots and the scoring job still runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

QueueKind = Literal["scheduled", "user"]
Selection = Literal["scheduled", "user", "all"]


@dataclass(frozen=True)
class Queue:
    kind: QueueKind
    name: str  # the arq queue: a sorted set of job ids by due time
    max_jobs: int  # this queue's job slots on each worker process
    cron: bool  # whether its workers enqueue the periodic jobs

    @property
    def worker_prefix(self) -> str:
        """Heartbeat keys of the workers serving this queue (``<prefix><worker name>``)."""
        return f"{self.name}:worker:"


# Two slots: few scheduled jobs are ever due at once (scoring every 5 minutes, the forecast
# run at :03, backfills at :30), and two let scoring run beside a forecast run or a backfill
# that takes minutes. The name is the one queue's of old, so jobs queued before stay found.
SCHEDULED = Queue("scheduled", "crypto:jobs", max_jobs=2, cron=True)
# Four slots, what the one shared queue had: backtests are CPU-bound (model fits in threads,
# up to 25 minutes each), so more slots on a machine would only slice its cores thinner; the
# backtest budget bounds how many wait.
USER = Queue("user", "crypto:jobs:user", max_jobs=4, cron=False)
QUEUES = (SCHEDULED, USER)


def selected(selection: Selection) -> tuple[Queue, ...]:
    """The queues ``cryptopredict worker --queue`` serves."""
    return tuple(queue for queue in QUEUES if selection in ("all", queue.kind))

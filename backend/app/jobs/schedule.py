"""When the periodic jobs run, shared by arq's cron and the in-process scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.config import Settings

# Transient failures (the database restarting, say) are retried with growing delays.
MAX_TRIES = 5
# The longest a job may run on a worker; a backtest stops itself a few minutes earlier, so
# it fails with a reason instead of being cut off.
JOB_TIMEOUT_S = 1800
BACKTEST_DEADLINE_S = JOB_TIMEOUT_S - 300


def retry_delay(attempt: int) -> float:
    """Seconds before try ``attempt + 1``: 5, 20, 80, 300, 300 ..."""
    return float(min(300, 5 * 4 ** (attempt - 1)))


@dataclass(frozen=True)
class Periodic:
    name: str  # also the task name
    minutes: frozenset[int]  # minutes of each hour it runs at
    kwargs: dict[str, Any] = field(default_factory=dict)

    def due(self, moment: datetime) -> bool:
        return moment.minute in self.minutes

    def next_after(self, moment: datetime) -> datetime:
        """The first whole minute after ``moment`` at which this job runs."""
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        while candidate.minute not in self.minutes:
            candidate += timedelta(minutes=1)
        return candidate

    @property
    def label(self) -> str:
        """The job's name with its arguments: backfill of BTC and of ETH are two jobs."""
        return ":".join([self.name, *(str(v) for _, v in sorted(self.kwargs.items()))])

    def job_id(self, moment: datetime) -> str:
        """The same id for the same run, whichever worker or process enqueues it."""
        return f"cron:{self.label}:{moment:%Y%m%dT%H%M}"


def periodic_jobs(settings: Settings) -> list[Periodic]:
    jobs = [
        # Targets are whole hours; scoring a few minutes after each catches them promptly.
        Periodic("score_predictions", frozenset(range(2, 60, 5))),
        # A new hourly candle closes at :00; the importer needs a moment to store it.
        Periodic("make_predictions", frozenset({3})),
    ]
    for symbol in settings.JOBS_BACKFILL_SYMBOLS:
        jobs.append(Periodic("backfill", frozenset({30}), {"symbol": symbol}))
    return jobs

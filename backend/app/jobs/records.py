"""What a job's status looks like, whichever queue ran it."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from app.jobs.queues import QueueKind
from app.schemas.health import QueueSummary

JobStatus = Literal["queued", "deferred", "in_progress", "complete", "failed"]


class JobRecord(BaseModel):
    id: str
    name: str
    status: JobStatus
    arguments: dict[str, Any] = Field(default_factory=dict)
    tries: int = Field(default=0, description="Attempts so far; transient failures are retried.")
    enqueued_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = Field(default=None, description="Why the last attempt failed.")
    queue: Literal["redis", "local"]


class QueueStats(BaseModel):
    """What /health/detailed says of the job queue."""

    queue: Literal["redis", "local"]
    reachable: bool
    jobs: int | None = Field(description="Jobs queued or running; null when unreachable.")
    oldest_job_age_s: float | None = Field(
        description="Seconds the oldest of them has been due; null when there are none."
    )
    workers: int | None = Field(
        description="Worker processes seen in the last minute (the API process without Redis)."
    )
    queues: dict[QueueKind, QueueSummary] | None = Field(
        default=None, description="Each queue on its own; null without Redis (one process)."
    )


class JobQueue(Protocol):
    async def enqueue(
        self, name: str, kwargs: dict[str, Any], *, job_id: str | None = None
    ) -> JobRecord | None:
        """The new job, or None when a job with ``job_id`` exists already."""
        ...

    async def get(self, job_id: str) -> JobRecord | None: ...

    async def stats(self) -> QueueStats: ...

    async def close(self) -> None: ...

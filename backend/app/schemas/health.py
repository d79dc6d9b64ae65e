"""Response shapes of the health endpoints, field for field as the spec shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Status = Literal["healthy", "degraded", "unhealthy"]


class ServiceHealth(BaseModel):
    status: Status = Field(description="`healthy` whenever the process can answer.")
    service: str
    version: str
    timestamp: datetime


class DatabaseHealth(BaseModel):
    status: Status
    database: Literal["connected", "disconnected"]
    latency_ms: float | None = Field(description="Round trip of `SELECT 1`; null when down.")
    timestamp: datetime


class CacheHealth(BaseModel):
    status: Status
    connected: bool
    latency_ms: float | None = Field(description="Round trip of PING; null when down.")
    used_memory_mb: float | None
    connected_clients: int | None
    uptime_seconds: int | None
    timestamp: datetime


class ServiceInfo(BaseModel):
    name: str
    version: str
    environment: str


class DatabaseSummary(BaseModel):
    status: Status
    connected: bool
    latency_ms: float | None


class CacheSummary(BaseModel):
    status: Status
    connected: bool
    used_memory_mb: float | None


class QueueSummary(BaseModel):
    jobs: int = Field(description="Jobs queued or running on this queue.")
    oldest_job_age_s: float | None = Field(
        description="Seconds the oldest of them has been due; null when there are none."
    )
    workers: int = Field(
        description="Worker processes serving this queue, seen in the last minute."
    )


class JobsSummary(BaseModel):
    status: Status = Field(
        description=(
            "`degraded` when the queue cannot be reached, or when either queue has no worker alive."
        )
    )
    queue: Literal["redis", "local"] = Field(
        description="`redis`: arq workers run the jobs; `local`: this API process does."
    )
    reachable: bool
    jobs: int | None = Field(description="Jobs queued or running.")
    oldest_job_age_s: float | None = Field(
        description="Seconds the oldest queued or running job has been due."
    )
    workers: int | None = Field(
        description="Worker processes seen in the last minute (one serving both queues is one)."
    )
    queues: dict[Literal["scheduled", "user"], QueueSummary] | None = Field(
        default=None,
        description=(
            "With Redis, each queue on its own: `scheduled` (scoring, the hourly forecasts, "
            "backfills; enqueued by the workers' cron) and `user` (backtests and jobs started "
            "with `POST /api/v1/jobs`). Each has its own worker slots, so user work cannot "
            "starve the scheduled work. Null without Redis (this process runs everything)."
        ),
    )
    detail: str | None = Field(
        default=None, description="Why the status is not `healthy`, naming the queue."
    )


class DetailedHealth(BaseModel):
    status: Status = Field(
        description=(
            "`unhealthy` (HTTP 503) when the database is down; `degraded` (HTTP 200) when the "
            "cache is down (reads then fall through to the database) or jobs cannot run (a "
            "queue with no worker, or the queue cannot be reached): `jobs.detail` says which."
        )
    )
    service: ServiceInfo
    database: DatabaseSummary
    cache: CacheSummary
    jobs: JobsSummary
    timestamp: datetime

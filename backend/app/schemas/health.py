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


class DetailedHealth(BaseModel):
    status: Status = Field(
        description=(
            "`unhealthy` (HTTP 503) when the database is down; `degraded` (HTTP 200) when only "
            "the cache is down, since reads then fall through to the database."
        )
    )
    service: ServiceInfo
    database: DatabaseSummary
    cache: CacheSummary
    timestamp: datetime

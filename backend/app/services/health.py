"""Probes behind the health endpoints, each bounded in time so a dead dependency answers fast."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from app.cache import CacheManager
from app.database import Database
from app.errors import is_connection_failure

PROBE_TIMEOUT_S = 2.0
logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DatabaseProbe:
    connected: bool
    latency_ms: float | None


@dataclass(frozen=True, slots=True)
class CacheProbe:
    connected: bool
    latency_ms: float | None
    used_memory_mb: float | None
    connected_clients: int | None
    uptime_seconds: int | None


async def probe_database(database: Database) -> DatabaseProbe:
    try:
        ping = await asyncio.wait_for(database.ping(), PROBE_TIMEOUT_S)
    except TimeoutError:
        logger.warning("database health probe timed out after %.1fs", PROBE_TIMEOUT_S)
        return DatabaseProbe(connected=False, latency_ms=None)
    except Exception as exc:
        if not is_connection_failure(exc):
            raise
        logger.warning("database health probe failed: %s", type(exc).__name__)
        return DatabaseProbe(connected=False, latency_ms=None)
    return DatabaseProbe(connected=True, latency_ms=round(ping.latency_ms, 2))


async def probe_cache(cache: CacheManager) -> CacheProbe:
    try:
        health = await asyncio.wait_for(cache.health(), PROBE_TIMEOUT_S)
    except TimeoutError:
        return CacheProbe(False, None, None, None, None)
    if not health.connected:
        return CacheProbe(False, None, None, None, None)
    return CacheProbe(
        connected=True,
        latency_ms=round(health.latency_ms, 2),
        used_memory_mb=round(health.used_memory_mb, 2),
        connected_clients=health.connected_clients,
        uptime_seconds=health.uptime_seconds,
    )

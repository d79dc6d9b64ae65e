"""Single flight: concurrent misses of one key share one backend read.

When a near copy expires under load, every request waiting on that key would otherwise go to
Redis at once. The first caller leads the read; the others wait on its future. The methods are
synchronous bookkeeping, so the manager's read path gains no extra await.
"""

from __future__ import annotations

import asyncio

Read = asyncio.Future[bytes | None]


class SingleFlight:
    """The reads under way, by key; a caller that finds one waits for it instead of reading."""

    def __init__(self) -> None:
        self._reads: dict[str, Read] = {}

    def in_flight(self, key: str) -> Read | None:
        return self._reads.get(key)

    def start(self, key: str) -> None:
        """Make the caller the leader of the read of ``key``; it must `land` or `fail` it."""
        self._reads[key] = asyncio.get_running_loop().create_future()

    def land(self, key: str, value: bytes | None) -> None:
        self._reads.pop(key).set_result(value)

    def fail(self, key: str, error: BaseException) -> None:
        read = self._reads.pop(key)
        read.set_exception(error)
        read.exception()  # retrieved here, so a read nobody awaited logs nothing

"""A short-lived in-process copy of hot cache entries, in front of Redis.

A Redis round trip per request halves the throughput of an endpoint that only returns
cached bytes (see docs/BENCHMARKS.md), so each process keeps what it read or wrote for at most
``ttl`` seconds (1 s by default). Writes made by this process update its copy at once; writes
made elsewhere reach it through a Redis pub/sub message naming the changed keys, and the
short lifetime bounds how stale a copy can be if such a message is lost (Redis down, a
reconnect in progress).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import orjson

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "crypto:invalidations"
RESUBSCRIBE_DELAY_S = 1.0


class NearCache:
    """Bounded LRU of bytes with a per-entry expiry; all methods are synchronous."""

    def __init__(
        self, ttl: float = 1.0, max_entries: int = 4096, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self._clock() >= entry[1]:
            del self._entries[key]
            return None
        return entry[0]

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self._entries[key] = (value, self._clock() + min(ttl, self.ttl))
        self._entries.move_to_end(key)
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, keys: Iterable[str]) -> None:
        for key in keys:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()


def invalidation_message(origin: str, keys: Iterable[str]) -> bytes:
    return orjson.dumps({"origin": origin, "keys": list(keys)})


def apply_invalidation(near: NearCache, origin: str, raw: bytes | str) -> list[str]:
    """Drop the keys another process changed; a malformed message empties the copy."""
    try:
        message = orjson.loads(raw)
        sender, keys = message["origin"], message["keys"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        near.clear()
        return []
    if sender == origin or not isinstance(keys, list):
        return []
    near.drop(str(key) for key in keys)
    return [str(key) for key in keys]


async def listen(pubsub_factory: Callable[[], object], near: NearCache, origin: str) -> None:
    """Apply invalidations until cancelled; after a lost connection, start from empty.

    ``pubsub_factory`` returns a redis.asyncio PubSub. Messages sent while the connection
    was down are gone, so the copy is cleared whenever listening (re)starts.
    """
    while True:
        pubsub = pubsub_factory()
        try:
            await pubsub.subscribe(INVALIDATION_CHANNEL)  # type: ignore[attr-defined]
            near.clear()
            async for message in pubsub.listen():  # type: ignore[attr-defined]
                if message.get("type") == "message":
                    apply_invalidation(near, origin, message["data"])
        except asyncio.CancelledError:
            raise
        except Exception as error:
            near.clear()
            logger.debug("cache invalidation listener lost its connection: %s", error)
            await asyncio.sleep(RESUBSCRIBE_DELAY_S)
        finally:
            await pubsub.aclose()  # type: ignore[attr-defined]

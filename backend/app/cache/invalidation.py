"""Telling other processes to drop their near copies: the pub/sub messages and the listener.

A write that changes data publishes the changed keys on one Redis channel; every process
listens and drops those keys from its `NearCache`. Messages carry the sender's origin so a
process ignores its own (its copy is already current). Pub/sub delivers at most once, so the
listener starts from an empty copy whenever it (re)subscribes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

import orjson

from app.cache.near import NearCache

logger = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "crypto:invalidations"
RESUBSCRIBE_DELAY_S = 1.0


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

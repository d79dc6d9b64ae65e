"""A revoke is final at once, even when a check of the same key runs at the same moment.

Two interleavings used to leave the revoked key cached as valid for a minute:
- the check's `last_used_at` update waited on the revoke's row lock and went ahead once the
  revoke committed;
- the check read the row before the revoke, and wrote its cache entry after the revoke had
  dropped it.
Both are reproduced here with real, separate transactions (PostgreSQL).
"""

from __future__ import annotations

import asyncio

import pytest

from app.cache import CacheManager
from app.database import Database
from app.errors import Unauthorized
from app.services.api_keys import (
    KeyScope,
    authenticate,
    create_key,
    revoke_key,
    verified_cache_key,
)
from tests.integration.live import MARK, live_database, wait_for_lock_waiters

__all__ = ["live_database"]  # the fixture, imported for pytest to find

ROUNDS = 20


async def _new_key(database: Database) -> tuple[str, str]:
    async with database.unit_of_work() as session:
        row, key = await create_key(session, MARK, [KeyScope.WRITE])
    return row.prefix, key


async def _refused_from_now_on(database: Database, cache: CacheManager, key: str) -> None:
    prefix = key.split("_")[1]
    cached = await cache.get(verified_cache_key(prefix))
    assert not (isinstance(cached, dict) and cached.get("valid")), "a revoked key stays cached"
    with pytest.raises(Unauthorized):
        await authenticate(database, cache, key, KeyScope.READ)


async def test_a_check_waiting_on_the_revokes_row_lock_is_refused(
    live_database: Database, cache: CacheManager
) -> None:
    for _ in range(ROUNDS):
        prefix, key = await _new_key(live_database)
        async with live_database.unit_of_work() as revoking:
            await revoke_key(revoking, cache, prefix)  # holds the row until it commits
            check = asyncio.create_task(authenticate(live_database, cache, key, KeyScope.WRITE))
            await wait_for_lock_waiters(live_database)  # the check's update waits on it
        # The revoke has committed and dropped the cache entry; the check now goes on.
        with pytest.raises(Unauthorized):
            await check
        await _refused_from_now_on(live_database, cache, key)


async def test_a_check_that_read_the_key_before_a_revoke_cannot_cache_it_after(
    live_database: Database, cache: CacheManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    remember = cache.set
    for _ in range(ROUNDS):
        prefix, key = await _new_key(live_database)

        async def revoke_then_set(name: str, value: object, ttl: int, *, _p: str = prefix) -> None:
            # The revoke lands between the check's read of the row and its cache write.
            async with live_database.unit_of_work() as revoking:
                await revoke_key(revoking, cache, _p)
            await remember(name, value, ttl)

        monkeypatch.setattr(cache, "set", revoke_then_set)
        # This check read the row before the revoke; it looks again after its cache write,
        # so what it learnt does not outlive the revoke, and it is refused itself.
        with pytest.raises(Unauthorized):
            await authenticate(live_database, cache, key, KeyScope.WRITE)
        monkeypatch.setattr(cache, "set", remember)
        await _refused_from_now_on(live_database, cache, key)

"""The in-process near copy: expiry, bounds, and invalidation messages."""

from __future__ import annotations

import asyncio

from app.cache import CacheManager, MemoryBackend
from app.cache.invalidation import apply_invalidation, invalidation_message
from app.cache.near import NearCache


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_after_the_shorter_of_the_two_ttls() -> None:
    clock = FakeClock()
    near = NearCache(ttl=1.0, clock=clock)
    near.put("crypto:a", b"1", ttl=300)
    near.put("crypto:b", b"2", ttl=0.5)
    clock.now += 0.6
    assert near.get("crypto:a") == b"1"
    assert near.get("crypto:b") is None
    clock.now += 0.5
    assert near.get("crypto:a") is None
    assert len(near) == 0


def test_least_recently_written_entry_is_evicted() -> None:
    near = NearCache(ttl=10, max_entries=2, clock=FakeClock())
    for key in ("crypto:a", "crypto:b", "crypto:c"):
        near.put(key, key.encode(), ttl=10)
    assert near.get("crypto:a") is None
    assert near.get("crypto:c") == b"crypto:c"


def test_invalidations_from_others_drop_keys_and_own_are_ignored() -> None:
    near = NearCache(ttl=10, clock=FakeClock())
    near.put("crypto:a", b"1", ttl=10)
    near.put("crypto:b", b"2", ttl=10)
    assert apply_invalidation(near, "me", invalidation_message("me", ["crypto:a"])) == []
    assert near.get("crypto:a") == b"1"
    dropped = apply_invalidation(near, "me", invalidation_message("other", ["crypto:a"]))
    assert dropped == ["crypto:a"]
    assert near.get("crypto:a") is None
    assert near.get("crypto:b") == b"2"


def test_a_malformed_message_empties_the_copy() -> None:
    near = NearCache(ttl=10, clock=FakeClock())
    near.put("crypto:a", b"1", ttl=10)
    apply_invalidation(near, "me", b"{not json")
    assert len(near) == 0


class SlowCountingBackend(MemoryBackend):
    """A memory store whose reads take a while and are counted, like a remote cache."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        await asyncio.sleep(0.05)
        return await super().get(key)


async def test_concurrent_misses_share_one_backend_read() -> None:
    backend = SlowCountingBackend()
    await backend.set("crypto:BTC:price", b"42", 300)
    manager = CacheManager(backend=backend)
    manager.near = NearCache(ttl=1.0)
    results = await asyncio.gather(*(manager.get_bytes("crypto:BTC:price") for _ in range(20)))
    assert results == [b"42"] * 20
    assert backend.reads == 1
    assert await manager.get_bytes("crypto:BTC:price") == b"42"  # now from the near copy
    assert backend.reads == 1
    assert manager.stats.near_hits == 1

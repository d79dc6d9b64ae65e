"""The in-process near copy: expiry, bounds, and invalidation messages."""

from __future__ import annotations

from app.near_cache import NearCache, apply_invalidation, invalidation_message


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

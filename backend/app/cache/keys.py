"""What a key and a lifetime may be: the `crypto:` namespace and the spec's TTL tiers.

Every key lives under the `crypto:` namespace (`cache_key("BTC", "price") ==
"crypto:BTC:price"`), so this project's keys can be told apart from anyone else's in a shared
Redis and flushed on their own. The checks here refuse a key or a TTL that would break that
promise before it reaches a backend.
"""

from __future__ import annotations

from enum import IntEnum

NAMESPACE = "crypto"
NAMESPACE_PREFIX = f"{NAMESPACE}:"


class CacheTTL(IntEnum):
    """Lifetimes in seconds, from the spec: prices go stale fast, metadata rarely changes."""

    PRICE = 300
    PREDICTION = 1800
    METADATA = 3600


def cache_key(*parts: str) -> str:
    """Build a namespaced key: `cache_key("BTC", "price") == "crypto:BTC:price"`.

    Callers upper-case symbols themselves; this function does not guess which part is one.
    """
    if not parts or any(not part for part in parts):
        raise ValueError(f"cache key parts must be non-empty strings, got {parts!r}")
    return NAMESPACE_PREFIX + ":".join(parts)


def require_namespaced(keys: tuple[str, ...]) -> None:
    # flush_all only removes `crypto:*`, so a key outside the namespace could never be
    # flushed; refuse it at the door rather than leave it to linger.
    for key in keys:
        if not key.startswith(NAMESPACE_PREFIX):
            raise ValueError(f"cache key {key!r} is outside the {NAMESPACE!r} namespace")


def require_positive_ttl(ttl: int) -> int:
    seconds = int(ttl)
    if seconds <= 0:
        raise ValueError(f"cache ttl must be a positive number of seconds, got {ttl!r}")
    return seconds

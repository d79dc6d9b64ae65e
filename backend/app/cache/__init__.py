"""The cache: one interface over Redis or an in-process store, that never stalls a request.

Three kinds of data are cached, each with its own lifetime (`CacheTTL`): latest prices,
recent predictions and cryptocurrency metadata, all under the `crypto:` namespace
(`cache_key("BTC", "price") == "crypto:BTC:price"`). The application talks to one object,
`from app.cache import cache_manager`; the modules behind it, from the bottom up:

- `keys`: the namespace, the TTL tiers and the checks on keys and lifetimes;
- `types`: the values the cache reports (`CacheInfo`, `CacheHealth`, `CacheStats`) and
  `CacheError`;
- `backend`, `memory`, `redis`: the backend contract and its two stores;
- `breaker`: the circuit breaker that stops calling a backend that keeps failing;
- `encoding`: the one JSON format every writer uses;
- `near`, `invalidation`, `single_flight`: the per-process copy in front of Redis, the
  pub/sub messages that keep it current, and the shared read behind a miss;
- `manager`: `CacheManager`, which puts them together, and the `cache_manager` instance.
"""

from app.cache.backend import BACKEND_ERRORS, CacheBackend
from app.cache.breaker import BreakerState, CircuitBreaker
from app.cache.encoding import encode_value
from app.cache.keys import NAMESPACE, CacheTTL, cache_key
from app.cache.manager import FLUSH_TIMEOUT_SECONDS, CacheManager, cache_manager
from app.cache.memory import MemoryBackend
from app.cache.redis import RedisBackend
from app.cache.types import CacheError, CacheHealth, CacheInfo, CacheStats

__all__ = [
    "BACKEND_ERRORS",
    "FLUSH_TIMEOUT_SECONDS",
    "NAMESPACE",
    "BreakerState",
    "CacheBackend",
    "CacheError",
    "CacheHealth",
    "CacheInfo",
    "CacheManager",
    "CacheStats",
    "CacheTTL",
    "CircuitBreaker",
    "MemoryBackend",
    "RedisBackend",
    "cache_key",
    "cache_manager",
    "encode_value",
]

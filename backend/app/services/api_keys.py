"""API keys: creation, revocation and the check behind every authenticated request.

A key looks like ``cp_<prefix>_<secret>``: the 8-hex-digit prefix finds the row (and is safe
to show and log), the whole key is compared by its SHA-256 hash. Keys are 256-bit random, so
a slow password hash would add latency and no safety. A verified key is cached for a minute
(revoking it drops that entry, and a check racing the revoke cannot put it back), so
authentication costs no database query per request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, cache_key
from app.database import Database, after_commit
from app.errors import AppError, Forbidden, NotFound, Unauthorized
from app.models import ApiKey
from app.repositories import api_keys

KEY_PATTERN = re.compile(r"^cp_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$")
VERIFIED_TTL_S = 60


class KeyScope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def allows(self, needed: KeyScope) -> bool:
        """admin includes write, write includes read."""
        order = (KeyScope.READ, KeyScope.WRITE, KeyScope.ADMIN)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the key's public prefix, its name and scopes."""

    prefix: str
    name: str
    scopes: tuple[KeyScope, ...]

    def allows(self, needed: KeyScope) -> bool:
        return any(scope.allows(needed) for scope in self.scopes)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def verified_cache_key(prefix: str) -> str:
    return cache_key("apikey", prefix)


async def create_key(
    session: AsyncSession,
    name: str,
    scopes: Sequence[KeyScope],
    *,
    expires_in: timedelta | None = None,
) -> tuple[ApiKey, str]:
    """A new key; the plain key is returned once and never stored."""
    prefix = secrets.token_hex(4)
    key = f"cp_{prefix}_{secrets.token_urlsafe(32)}"
    expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
    row = await api_keys.create(
        session,
        prefix=prefix,
        key_hash=hash_key(key),
        name=name,
        scopes=[scope.value for scope in sorted(set(scopes))],
        expires_at=expires_at,
    )
    return row, key


async def revoke_key(session: AsyncSession, cache: CacheManager, prefix: str) -> None:
    if not await api_keys.revoke(session, prefix, datetime.now(UTC)):
        raise NotFound(f"no active API key with prefix {prefix!r}")

    async def forget() -> None:  # other processes drop it through the invalidation channel
        await cache.delete(verified_cache_key(prefix))

    after_commit(session, forget)


async def list_keys(session: AsyncSession) -> Sequence[ApiKey]:
    """Every key in creation order: the rows only; no secret is stored to show."""
    return await api_keys.list_all(session)


def _usable(row: ApiKey, key: str, now: datetime) -> bool:
    if not hmac.compare_digest(row.key_hash, hash_key(key)):
        return False
    if row.revoked_at is not None:
        return False
    return row.expires_at is None or row.expires_at > now


async def _load(database: Database, prefix: str, key: str, now: datetime) -> dict[str, object]:
    async with database.unit_of_work() as session:
        row = await api_keys.by_prefix(session, prefix)
        if row is None or not _usable(row, key, now):
            return {"valid": False}
        if not await api_keys.touch(session, row.id, now):
            return {"valid": False}  # revoked while this check waited on the row
        expires = row.expires_at.isoformat() if row.expires_at else None
        return {
            "valid": True,
            "hash": row.key_hash,
            "name": row.name,
            "scopes": list(row.scopes),
            "expires_at": expires,
        }


async def verified_prefix(cache: CacheManager, key: str) -> str | None:
    """The prefix of ``key`` if `authenticate` verified this very key recently, else None.

    Answered from the cache alone (never the database): the rate limiter asks it for every
    request that sends a key, before anything else has looked at the key.
    """
    match = KEY_PATTERN.match(key)
    if match is None:
        return None
    record = await cache.get(verified_cache_key(match.group(1)))
    if isinstance(record, dict) and hmac.compare_digest(str(record.get("hash", "")), hash_key(key)):
        return match.group(1)
    return None


async def _remember(
    database: Database, cache: CacheManager, prefix: str, record: dict[str, object]
) -> dict[str, object]:
    """Cache a verified key, then look again: a revoke that committed after `_load` read the
    row may have dropped the cache entry before this write, and would be undone by it.

    Checking after the write closes that window: the revoke either committed before the
    check (seen here, the entry is dropped) or after it (its own drop comes later). One
    query per cache miss, so once a minute per key at most.
    """
    await cache.set(verified_cache_key(prefix), record, VERIFIED_TTL_S)
    async with database.unit_of_work() as session:
        active = await api_keys.is_active(session, prefix)
    if active:
        return record
    await cache.delete(verified_cache_key(prefix))
    return {"valid": False}


async def caller_prefix(database: Database, cache: CacheManager, key: str) -> str | None:
    """The prefix of ``key`` if it is a valid key (of any scope), else None.

    The rate limiter asks this before it counts a request, so a valid key is charged to its
    own allowance from its first request on, whatever its address has spent. A key verified
    within the minute is answered from the cache; otherwise the database is asked, as the
    key check would; a made-up key is None and so still counted by address.
    """
    prefix = await verified_prefix(cache, key)
    if prefix is not None or KEY_PATTERN.match(key) is None:
        return prefix
    try:
        principal = await authenticate(database, cache, key, KeyScope.READ)
    except AppError:
        return None
    return principal.prefix


def key_check(
    database: Database, cache: CacheManager, needed: KeyScope
) -> Callable[[str | None], Awaitable[Principal]]:
    """`authenticate` for one scope, as the read-access middleware calls it."""

    async def check(key: str | None) -> Principal:
        return await authenticate(database, cache, key, needed)

    return check


async def authenticate(
    database: Database, cache: CacheManager, key: str | None, needed: KeyScope
) -> Principal:
    """The caller behind ``key`` if it may do ``needed``; 401 or 403 otherwise."""
    if not key:
        raise Unauthorized("this operation needs an API key in the X-API-Key header")
    match = KEY_PATTERN.match(key)
    if match is None:
        raise Unauthorized("the X-API-Key header does not hold a valid API key")
    prefix, now = match.group(1), datetime.now(UTC)
    record = await cache.get(verified_cache_key(prefix))
    if record is None or not hmac.compare_digest(str(record.get("hash", "")), hash_key(key)):
        record = await _load(database, prefix, key, now)
        if record["valid"]:
            record = await _remember(database, cache, prefix, record)
    expires = record.get("expires_at")
    if not record["valid"] or (isinstance(expires, str) and datetime.fromisoformat(expires) <= now):
        raise Unauthorized("the API key is unknown, revoked or expired")
    principal = Principal(prefix, str(record["name"]), tuple(KeyScope(s) for s in record["scopes"]))
    if not principal.allows(needed):
        raise Forbidden(f"this API key lacks the {needed.value!r} scope")
    return principal

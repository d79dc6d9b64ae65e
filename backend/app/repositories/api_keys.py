"""Queries on the api_keys table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import ApiKey


async def create(
    session: AsyncSession,
    *,
    prefix: str,
    key_hash: str,
    name: str,
    scopes: Sequence[str],
    expires_at: datetime | None,
) -> ApiKey:
    key = ApiKey(
        prefix=prefix, key_hash=key_hash, name=name, scopes=list(scopes), expires_at=expires_at
    )
    session.add(key)
    await session.flush()
    return key


async def by_prefix(session: AsyncSession, prefix: str) -> ApiKey | None:
    # Fresh from the database: a revocation may have happened in this very session.
    statement = (
        select(ApiKey).where(ApiKey.prefix == prefix).execution_options(populate_existing=True)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def list_all(session: AsyncSession) -> Sequence[ApiKey]:
    return (await session.execute(select(ApiKey).order_by(ApiKey.id))).scalars().all()


async def revoke(session: AsyncSession, prefix: str, now: datetime) -> bool:
    """Revoke the key; False when no such key exists or it was revoked already."""
    statement = (
        update(ApiKey)
        .where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def touch(session: AsyncSession, key_id: int, now: datetime) -> bool:
    """Record a use of the key; False if it was revoked meanwhile.

    The revoked_at condition is what makes a revoke final: an UPDATE that waited on the
    revoke's row lock re-reads the row once the revoke commits (PostgreSQL's read committed
    re-check) and then matches nothing.
    """
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool((await session.execute(statement)).rowcount)  # type: ignore[attr-defined]


async def is_active(session: AsyncSession, prefix: str) -> bool:
    """Whether the key exists and is not revoked (expiry is checked by the caller)."""
    statement = select(ApiKey.id).where(ApiKey.prefix == prefix, ApiKey.revoked_at.is_(None))
    return (await session.execute(statement)).first() is not None

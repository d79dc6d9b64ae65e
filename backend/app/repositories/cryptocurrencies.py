"""Queries on the cryptocurrencies table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Cryptocurrency


class DuplicateSymbol(Exception):
    """A coin with this symbol is already stored."""


async def get_by_symbol(session: AsyncSession, symbol: str) -> Cryptocurrency | None:
    statement = select(Cryptocurrency).where(Cryptocurrency.symbol == symbol.upper())
    return (await session.execute(statement)).scalar_one_or_none()


async def list_all(session: AsyncSession) -> Sequence[Cryptocurrency]:
    statement = select(Cryptocurrency).order_by(Cryptocurrency.symbol)
    return (await session.execute(statement)).scalars().all()


async def create(session: AsyncSession, **fields: Any) -> Cryptocurrency:
    coin = Cryptocurrency(**fields)
    try:
        async with session.begin_nested():
            session.add(coin)
            await session.flush()
    except IntegrityError:
        raise DuplicateSymbol(fields.get("symbol")) from None
    return coin


async def update(session: AsyncSession, coin: Cryptocurrency, **fields: Any) -> Cryptocurrency:
    for name, value in fields.items():
        setattr(coin, name, value)
    await session.flush()
    await session.refresh(coin)
    return coin


async def get_or_create(
    session: AsyncSession, *, symbol: str, name: str, coin_gecko_id: str | None
) -> tuple[Cryptocurrency, bool]:
    """The coin with ``symbol``, created if missing; the flag says whether it was created."""
    existing = await get_by_symbol(session, symbol)
    if existing is not None:
        return existing, False
    coin = Cryptocurrency(symbol=symbol.upper(), name=name, coin_gecko_id=coin_gecko_id)
    session.add(coin)
    await session.flush()
    return coin, True


async def symbols_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, str]:
    statement = select(Cryptocurrency.id, Cryptocurrency.symbol).where(
        Cryptocurrency.id.in_(list(ids))
    )
    return {row[0]: row[1] for row in (await session.execute(statement)).all()}

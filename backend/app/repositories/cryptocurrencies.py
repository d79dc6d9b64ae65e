"""Queries on the cryptocurrencies table."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.models import Cryptocurrency


async def get_by_symbol(session: AsyncSession, symbol: str) -> Cryptocurrency | None:
    statement = select(Cryptocurrency).where(Cryptocurrency.symbol == symbol.upper())
    return (await session.execute(statement)).scalar_one_or_none()


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

"""Coin metadata: cache-aside reads (1 h tier), writes that invalidate after commit."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import CacheManager, CacheTTL, cache_key
from app.database import after_commit
from app.errors import Conflict, NotFound, invalid_field
from app.repositories import cryptocurrencies
from app.schemas.coins import CoinCreate, CoinOut, CoinPage, CoinUpdate

ALL_COINS_KEY = cache_key("coins", "all")


def coin_key(symbol: str) -> str:
    return cache_key(symbol.upper(), "meta")


async def get_coin(session: AsyncSession, cache: CacheManager, symbol: str) -> CoinOut:
    """The coin with ``symbol`` (any case), or NotFound."""
    cached = await cache.get(coin_key(symbol))
    if cached is not None:
        return CoinOut.model_validate(cached)
    coin = await cryptocurrencies.get_by_symbol(session, symbol)
    if coin is None:
        raise NotFound(f"no cryptocurrency with symbol {symbol.upper()!r}")
    out = CoinOut.model_validate(coin)
    await cache.set(coin_key(symbol), out.model_dump(mode="json"), CacheTTL.METADATA)
    return out


async def _all_coins(session: AsyncSession, cache: CacheManager) -> list[CoinOut]:
    cached = await cache.get(ALL_COINS_KEY)
    if cached is not None:
        return [CoinOut.model_validate(item) for item in cached]
    coins = [CoinOut.model_validate(c) for c in await cryptocurrencies.list_all(session)]
    payload = [coin.model_dump(mode="json") for coin in coins]
    await cache.set(ALL_COINS_KEY, payload, CacheTTL.METADATA)
    return coins


async def list_coins(
    session: AsyncSession,
    cache: CacheManager,
    *,
    is_active: bool | None,
    limit: int,
    offset: int,
) -> CoinPage:
    # The whole list is small and cached as one value; filtering happens here.
    coins = await _all_coins(session, cache)
    if is_active is not None:
        coins = [coin for coin in coins if coin.is_active == is_active]
    return CoinPage(
        items=coins[offset : offset + limit], total=len(coins), limit=limit, offset=offset
    )


def _invalidate_after_commit(session: AsyncSession, cache: CacheManager, symbol: str) -> None:
    async def invalidate() -> None:
        await cache.delete(ALL_COINS_KEY, coin_key(symbol))

    after_commit(session, invalidate)


async def create_coin(session: AsyncSession, cache: CacheManager, data: CoinCreate) -> CoinOut:
    try:
        coin = await cryptocurrencies.create(session, **data.model_dump())
    except cryptocurrencies.DuplicateSymbol:
        raise Conflict(f"a cryptocurrency with symbol {data.symbol!r} exists") from None
    _invalidate_after_commit(session, cache, data.symbol)
    return CoinOut.model_validate(coin)


async def update_coin(
    session: AsyncSession, cache: CacheManager, symbol: str, data: CoinUpdate
) -> CoinOut:
    coin = await cryptocurrencies.get_by_symbol(session, symbol)
    if coin is None:
        raise NotFound(f"no cryptocurrency with symbol {symbol.upper()!r}")
    changes = data.model_dump(exclude_unset=True)
    if "name" in changes and changes["name"] is None:
        raise invalid_field("body.name", "may not be null")
    if "is_active" in changes and changes["is_active"] is None:
        raise invalid_field("body.is_active", "may not be null")
    coin = await cryptocurrencies.update(session, coin, **changes)
    _invalidate_after_commit(session, cache, symbol)
    return CoinOut.model_validate(coin)

"""Coins: list, create, read and update tracked cryptocurrencies."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, status

from app.api.deps import (
    API_RESPONSES,
    AUTH_RESPONSES,
    BODY_RESPONSES,
    CacheDep,
    JsonBody,
    SessionDep,
    WriteAccess,
)
from app.errors import invalid_field
from app.schemas.coins import CoinCreate, CoinOut, CoinPage, CoinUpdate
from app.services import coins

router = APIRouter(
    prefix="/api/v1/cryptocurrencies",
    tags=["cryptocurrencies"],
    responses=API_RESPONSES,
)

SYMBOL_PATTERN = r"^[A-Za-z0-9]{1,10}$"
SYMBOL_DESCRIPTION = "Trading symbol, any case (`btc` and `BTC` are the same coin)."
SymbolPath = Annotated[str, Path(pattern=SYMBOL_PATTERN, description=SYMBOL_DESCRIPTION)]
# The same parameter as the OpenAPI document has it, for the hottest reads: they check the
# symbol themselves (`symbol_of`), since FastAPI's path-parameter validation cost about
# 30 µs a request there.
SYMBOL_PARAMETER: dict[str, Any] = {
    "name": "symbol",
    "in": "path",
    "required": True,
    "description": SYMBOL_DESCRIPTION,
    "schema": {
        "type": "string",
        "pattern": SYMBOL_PATTERN,
        "title": "Symbol",
        "description": SYMBOL_DESCRIPTION,
    },
}
_SYMBOL = re.compile(SYMBOL_PATTERN.strip("^$"))  # fullmatch: "$" would allow a final "\n"


def symbol_of(request: Request) -> str:
    """The path's symbol, checked as FastAPI checks SymbolPath (a 422 naming the field)."""
    symbol: str = request.path_params["symbol"]
    if _SYMBOL.fullmatch(symbol) is None:
        raise invalid_field("path.symbol", f"String should match pattern '{SYMBOL_PATTERN}'")
    return symbol


PROBLEM: dict[int | str, dict[str, Any]] = {
    404: {"description": "No coin with this symbol."},
    422: {"description": "A parameter or field is invalid; `errors` names it."},
}


@router.get("", response_model=CoinPage)
async def list_cryptocurrencies(
    session: SessionDep,
    cache: CacheDep,
    is_active: Annotated[bool | None, Query(description="Only active or inactive coins.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> CoinPage:
    return await coins.list_coins(session, cache, is_active=is_active, limit=limit, offset=offset)


@router.post(
    "",
    response_model=CoinOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        409: {"description": "The symbol is taken."},
        **PROBLEM,
        **AUTH_RESPONSES,
        **BODY_RESPONSES,
    },
    dependencies=[WriteAccess, JsonBody],
)
async def create_cryptocurrency(body: CoinCreate, session: SessionDep, cache: CacheDep) -> CoinOut:
    return await coins.create_coin(session, cache, body)


@router.get("/{symbol}", response_model=CoinOut, responses=PROBLEM)
async def get_cryptocurrency(symbol: SymbolPath, session: SessionDep, cache: CacheDep) -> CoinOut:
    return await coins.get_coin(session, cache, symbol)


@router.patch(
    "/{symbol}",
    response_model=CoinOut,
    responses={**PROBLEM, **AUTH_RESPONSES, **BODY_RESPONSES},
    dependencies=[WriteAccess, JsonBody],
)
async def update_cryptocurrency(
    symbol: SymbolPath, body: CoinUpdate, session: SessionDep, cache: CacheDep
) -> CoinOut:
    return await coins.update_coin(session, cache, symbol, body)

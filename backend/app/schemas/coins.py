"""Request and response models for coins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Symbol = Annotated[
    str,
    StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z0-9]{1,10}$"),
    Field(
        description="Trading symbol, 1-10 letters or digits; stored upper case.", examples=["BTC"]
    ),
]
CoinName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
GeckoId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[a-z0-9][a-z0-9-]{0,99}$"),
    Field(description="CoinGecko API id, e.g. `bitcoin`.", examples=["bitcoin"]),
]


class CoinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    name: CoinName
    coin_gecko_id: GeckoId | None = None
    is_active: bool = True


class CoinUpdate(BaseModel):
    """Only the fields present are changed; the symbol is the coin's identity and stays."""

    model_config = ConfigDict(extra="forbid")

    name: CoinName | None = None
    coin_gecko_id: GeckoId | None = None
    is_active: bool | None = None


class CoinOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    symbol: str
    name: str
    coin_gecko_id: str | None
    is_active: bool
    created_at: datetime
    updated_at: datetime


class CoinPage(BaseModel):
    items: list[CoinOut]
    total: int = Field(description="Coins matching the filter, across all pages.")
    limit: int
    offset: int

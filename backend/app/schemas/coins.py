"""Request and response models for coins."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints
from pydantic.json_schema import SkipJsonSchema

# Values are taken as sent, never trimmed: what the schema refuses (" BTC") is refused, so
# the documented pattern is the whole rule.
Symbol = Annotated[
    str,
    StringConstraints(to_upper=True, pattern=r"^[A-Za-z0-9]{1,10}$"),
    Field(
        description="Trading symbol, 1-10 letters or digits; stored upper case.", examples=["BTC"]
    ),
]
# Neither end blank, no control characters (PostgreSQL cannot store NUL in text). Spelled
# out rather than \S: regex engines disagree on what \s covers (Python's includes
# \x1c-\x1f, the Rust one pydantic uses does not).
_EDGE = r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_INNER = r"[^\x00-\x1f\x7f]"
CoinName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100, pattern=rf"^{_EDGE}({_INNER}*{_EDGE})?$"),
    Field(
        description="Display name: no control characters, no leading or trailing blanks.",
        examples=["Bitcoin"],
    ),
]
GeckoId = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,99}$"),
    Field(description="CoinGecko API id, e.g. `bitcoin`.", examples=["bitcoin"]),
]


class CoinCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: Symbol
    name: CoinName
    coin_gecko_id: GeckoId | None = None
    is_active: StrictBool = True


class CoinUpdate(BaseModel):
    """Only the fields present are changed; the symbol is the coin's identity and stays."""

    model_config = ConfigDict(extra="forbid")

    # Name and is_active may be left out but not cleared: null is not in their schema (the
    # service refuses it too); coin_gecko_id may be set to null to forget it.
    name: CoinName | SkipJsonSchema[None] = None
    coin_gecko_id: GeckoId | None = None
    is_active: StrictBool | SkipJsonSchema[None] = None


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

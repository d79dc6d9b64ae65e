"""How values become cache bytes: orjson, with the few types our data needs spelled out.

Kept apart from the manager so the one format every writer uses is defined in one place;
reading is plain `orjson.loads`, which needs no options.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson


def _encode_default(value: Any) -> Any:
    # Prices come out of SQL NUMERIC columns as Decimal, which orjson refuses; a string
    # keeps every digit, where a float would round.
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot cache a value of type {type(value).__name__}")


_ORJSON_OPTIONS = orjson.OPT_NAIVE_UTC | orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def encode_value(value: Any) -> bytes:
    """JSON bytes for the cache; naive datetimes are taken as UTC, Decimals become strings."""
    return orjson.dumps(value, default=_encode_default, option=_ORJSON_OPTIONS)

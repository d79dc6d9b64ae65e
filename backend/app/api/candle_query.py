"""Query parameters of GET /ohlcv, parsed by hand.

FastAPI's own parsing of these five optional parameters cost more per request than serving
a cached page (see docs/BENCHMARKS.md), so the endpoint reads ``request.query_params``
itself. The parameters are still documented in the OpenAPI schema (``PARAMETERS``) and
errors are the same 422 problem documents, naming ``query.<name>``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import QueryParams

from app.errors import InvalidInput, invalid_field
from app.market import EPOCH, QUERY_INTERVALS, Timeframe
from app.services.market_data import MAX_LIMIT, CandleQuery

DEFAULT_LIMIT = 500
LATEST = datetime(9000, 1, 1, tzinfo=UTC)  # far past any candle, far from datetime.max
_CURSOR = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_INTERVALS = {frame.value: frame for frame in QUERY_INTERVALS}

PARAMETERS: list[dict[str, Any]] = [
    {
        "name": "start",
        "in": "query",
        "required": False,
        "description": "Inclusive ISO 8601 time (UTC if no zone); rounded down to the interval.",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "end",
        "in": "query",
        "required": False,
        "description": "Exclusive ISO 8601 time; rounded up to the interval; not before "
        "`start` (equal to it: an empty range, so an empty page).",
        "schema": {"type": "string", "format": "date-time"},
    },
    {
        "name": "interval",
        "in": "query",
        "required": False,
        "description": "1h, 4h, 1d or 1w; default: the stored candle length.",
        "schema": {"type": "string", "enum": list(_INTERVALS)},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "Candles per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 500},
    },
    {
        "name": "cursor",
        "in": "query",
        "required": False,
        "description": "The `next_cursor` of the previous page, at the same interval.",
        "schema": {"type": "string", "pattern": _CURSOR.pattern, "maxLength": 64},
    },
]


def _invalid(name: str, message: str) -> InvalidInput:
    return invalid_field(f"query.{name}", message)


def _moment(params: QueryParams, name: str) -> datetime | None:
    """The time as sent, made aware (UTC when it names no zone), not converted yet."""
    raw = params.get(name)
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if len(raw) <= 40 else None
    except ValueError:
        moment = None
    if moment is None:
        raise _invalid(name, "must be an ISO 8601 date-time")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def stored_era(moment: datetime | None) -> datetime | None:
    """In UTC, within EPOCH..LATEST: no candle lies outside, and every time in it can be
    rounded to any interval (0001-01-01T00:00+05:00 is not even representable in UTC)."""
    if moment is None:
        return None
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:
        return EPOCH if moment.year == datetime.min.year else LATEST
    return min(max(utc, EPOCH), LATEST)


def _limit(params: QueryParams) -> int:
    raw = params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise _invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    value = int(raw)
    if not 1 <= value <= MAX_LIMIT:
        raise _invalid("limit", f"must be an integer from 1 to {MAX_LIMIT}")
    return value


def _interval(params: QueryParams) -> Timeframe | None:
    raw = params.get("interval")
    if raw is None:
        return None
    frame = _INTERVALS.get(raw)
    if frame is None:
        raise _invalid("interval", "must be one of 1h, 4h, 1d, 1w")
    return frame


def _cursor(params: QueryParams) -> str | None:
    raw = params.get("cursor")
    if raw is not None and not _CURSOR.match(raw):
        raise _invalid("cursor", "is not a cursor returned by this endpoint")
    return raw


def parse_candle_query(params: QueryParams) -> CandleQuery:
    interval = _interval(params)
    start, end = _moment(params, "start"), _moment(params, "end")
    if start is not None and end is not None and start > end:  # aware: compared in UTC
        raise _invalid("end", "must not be before start")
    return CandleQuery(
        interval=interval,
        start=stored_era(start),
        end=stored_era(end),
        limit=_limit(params),
        cursor=_cursor(params),
    )

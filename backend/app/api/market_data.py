"""Candles: ingest batches, query ranges (resampled), latest price, coverage and gaps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

import orjson
from fastapi import APIRouter, Query, Request, Response

from app.api import candle_query
from app.api.cryptocurrencies import PROBLEM, SYMBOL_PARAMETER, SymbolPath, symbol_of
from app.api.deps import (
    API_RESPONSES,
    AUTH_RESPONSES,
    CacheDep,
    Ingesting,
    SessionDep,
    WriteAccess,
    services_of,
)
from app.errors import (
    AppError,
    InvalidInput,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from app.ingestion.batch import (
    BatchRejected,
    BatchTooLarge,
    CandleBatch,
    RawRow,
    validate_batch,
)
from app.ingestion.csv_formats import rows_from_csv
from app.ingestion.fields import EARLIEST
from app.ingestion.json_rows import rows_from_json
from app.market import BASE_TIMEFRAMES, Timeframe
from app.schemas.market_data import CandlePage, Coverage, IngestResult, PriceOut
from app.services import coins
from app.services import market_data as service

# Routes are matched in the order they are declared: the hottest reads come first.
router = APIRouter(
    prefix="/api/v1/cryptocurrencies",
    tags=["market data"],
    responses=API_RESPONSES,
)

# The candle lengths a coin may store (BASE_TIMEFRAMES), as the schema names them.
StoredTimeframe = Literal["1m", "5m", "15m", "30m", "1h", "4h", "1d"]
assert set(get_args(StoredTimeframe)) == {frame.value for frame in BASE_TIMEFRAMES}
MAX_BODY_BYTES = 16 * 1024 * 1024
MAX_ROWS = 100_000
JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")


def _json_response(body: bytes) -> Response:
    return Response(body, media_type="application/json")


# Epoch integers the ingest reads as a time, by size (app.ingestion.fields), from 2009 on.
_FROM_2009_S = int(EARLIEST.timestamp())
EPOCH_INTEGERS = [
    {"type": "integer", "minimum": _FROM_2009_S * 10**unit, "maximum": 10**upper - 1}
    for unit, upper in ((0, 11), (3, 14), (6, 17))  # seconds, milliseconds, microseconds
]
# A price of 0 is an exchange's outage record, not a price: refused like a negative one.
PRICE = {"type": "number", "exclusiveMinimum": 0}

INGEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["candles"],
                "properties": {
                    "candles": {
                        "type": "array",
                        "minItems": 1,
                        "maxItems": MAX_ROWS,
                        "items": {
                            "oneOf": [
                                {
                                    "type": "object",
                                    "required": [
                                        "timestamp",
                                        "open",
                                        "high",
                                        "low",
                                        "close",
                                        "volume",
                                    ],
                                    "properties": {
                                        "timestamp": {
                                            "oneOf": [
                                                {"type": "string", "format": "date-time"},
                                                *EPOCH_INTEGERS,
                                            ],
                                            "description": "ISO 8601, or epoch seconds, "
                                            "milliseconds or microseconds (told apart by "
                                            "size); not before 2009-01-01",
                                        },
                                        "open": PRICE,
                                        "high": PRICE,
                                        "low": PRICE,
                                        "close": PRICE,
                                        "volume": {"type": "number", "minimum": 0},
                                    },
                                },
                                {
                                    "type": "array",
                                    "description": "ccxt: [ms, open, high, low, close, volume]",
                                    "minItems": 6,
                                    "maxItems": 6,
                                    "items": {"type": "number"},
                                },
                            ]
                        },
                    }
                },
            }
        },
        "text/csv": {
            "schema": {"type": "string"},
            "example": "timestamp,open,high,low,close,volume\n"
            "2024-01-01T00:00:00Z,42283.58,42554.57,42261.02,42475.23,1271.68\n",
        },
    },
}

INGEST_RESPONSES: dict[int | str, dict[str, Any]] = {
    **PROBLEM,
    408: {"description": "The body did not arrive whole within REQUEST_BODY_TIMEOUT_S."},
    409: {"description": "The batch's timeframe differs from the coin's stored candles."},
    413: {"description": "The body is larger than 16 MiB or has over 100,000 rows."},
    415: {"description": "Content-Type is neither application/json nor text/csv."},
    422: {"description": "A row breaks a rule; `errors` lists row, field and reason."},
}


async def _read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"the body may be at most {MAX_BODY_BYTES} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"the body may be at most {MAX_BODY_BYTES} bytes")
    return body


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _parse(media_type: str, body: bytes, max_rows: int) -> list[RawRow]:
    if not body.strip():
        raise _body_error("is empty")
    if media_type in CSV_TYPES:
        try:
            return rows_from_csv(body.decode("utf-8-sig"), max_rows=max_rows)
        except UnicodeDecodeError:
            raise _body_error("is not UTF-8 text") from None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _body_error("is not valid JSON (NaN and Infinity are not JSON numbers)") from None
    return rows_from_json(payload, max_rows=max_rows)


def _body_error(message: str) -> InvalidInput:
    error = {"row": None, "field": "body", "message": message}
    return InvalidInput(f"body {message}", errors=[error])


def rejected(error: BatchRejected) -> AppError:
    kind = PayloadTooLarge if isinstance(error, BatchTooLarge) else InvalidInput
    return kind(str(error), errors=error.as_dicts())


def validated_batch(
    media_type: str,
    body: bytes,
    timeframe: Timeframe | None,
    *,
    stored: Timeframe | None,
    max_rows: int,
) -> CandleBatch:
    """The body's candles, validated all or nothing; errors name the row and field.

    Without an explicit timeframe it is inferred from the spacing; a lone candle takes the
    coin's stored timeframe, since one row has no spacing.
    """
    try:
        rows = _parse(media_type, body, max_rows)
        if timeframe is None and len(rows) == 1:
            timeframe = stored
        return validate_batch(rows, timeframe=timeframe, now=datetime.now(UTC), max_rows=max_rows)
    except BatchRejected as error:
        raise rejected(error) from None


@router.get(
    "/{symbol}/price",
    response_model=PriceOut,
    responses=PROBLEM,
    openapi_extra={"parameters": [SYMBOL_PARAMETER]},
)
async def get_price(request: Request) -> Response:
    """Close of the newest stored candle (cached 5 minutes, refreshed on every ingest)."""
    symbol = symbol_of(request)
    database, cache = services_of(request)
    return _json_response(await service.price_for_request(database, cache, symbol))


@router.get(
    "/{symbol}/ohlcv",
    response_model=CandlePage,
    responses={
        **PROBLEM,
        409: {"description": "The interval is finer than, or no multiple of, the stored candles."},
    },
    openapi_extra={"parameters": [SYMBOL_PARAMETER, *candle_query.PARAMETERS]},
)
async def get_candles(request: Request) -> Response:
    """Ascending candles. Without `start`, the newest `limit` ones; with it, pages forward
    from `start` (follow `next_cursor`)."""
    symbol = symbol_of(request)
    query = candle_query.parse_candle_query(request.query_params)
    database, cache = services_of(request)
    return _json_response(await service.page_for_request(database, cache, symbol, query))


@router.get("/{symbol}/coverage", response_model=Coverage, responses=PROBLEM)
async def get_coverage(symbol: SymbolPath, session: SessionDep, cache: CacheDep) -> Coverage:
    """First and last candle, count, and every gap of missing candles."""
    coin = await coins.get_coin(session, cache, symbol)
    return await service.coverage(session, cache, coin)


@router.post(
    "/{symbol}/ohlcv",
    response_model=IngestResult,
    responses={**INGEST_RESPONSES, **AUTH_RESPONSES},
    openapi_extra={"requestBody": INGEST_BODY},
    dependencies=[WriteAccess, Ingesting],
)
async def ingest_candles(
    symbol: SymbolPath,
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    timeframe: Annotated[
        StoredTimeframe | None,
        Query(description="Candle length of the batch; inferred from the spacing if omitted."),
    ] = None,
    source: Annotated[
        str, Query(pattern=r"^[A-Za-z0-9_.:-]{1,50}$", description="Stored as data_source.")
    ] = "api",
) -> IngestResult:
    """Insert or update candles, all or nothing. Re-sending the same rows changes nothing."""
    media_type = _media_type(request)
    if media_type not in JSON_TYPES + CSV_TYPES:
        raise UnsupportedMediaType("send application/json or text/csv")
    # The whole body before the first query: a slow client must not hold a connection.
    body = await _read_body(request)
    coin = await coins.get_coin(session, cache, symbol)
    stored = await service.stored_timeframe(session, cache, coin)
    frame = Timeframe(timeframe) if timeframe is not None else None
    batch = validated_batch(media_type, body, frame, stored=stored, max_rows=MAX_ROWS)
    return await service.ingest(session, cache, coin, batch, source)

"""Split a JSON OHLCV body into raw rows for :func:`app.ingestion.batch.validate_batch`.

Pure: standard library plus :mod:`app.ingestion.batch`. Values stay as received (JSON
scalars): parsing, ordering and all the rules belong to ``validate_batch``.
"""

from __future__ import annotations

from app.ingestion.batch import CANDLE_FIELDS, RawRow, body_error, gc_paused, too_many_rows

__all__ = ["rows_from_json"]

_CCXT_ORDER = ", ".join(CANDLE_FIELDS)


def rows_from_json(payload: object, *, max_rows: int | None = None) -> list[RawRow]:
    """Rows of ``{"candles": [...]}`` or a bare list; row numbers are 0-based array indices.

    An item is an object with ``timestamp`` (or ``time``, or ``t``, in that order of
    preference) and ``open``, ``high``, ``low``, ``close``, ``volume``; or a ccxt array
    ``[ms, open, high, low, close, volume]``. Other keys are ignored. Anything else becomes a
    row with a ``problem``, reported by ``validate_batch`` with field "row".
    """
    items = payload.get("candles") if isinstance(payload, dict) else payload
    if not isinstance(items, list):
        raise body_error("expected a list of candles or an object with a candles list")
    if max_rows is not None and len(items) > max_rows:
        raise too_many_rows(max_rows)
    with gc_paused():
        return _json_rows(items)


def _json_rows(items: list[object]) -> list[RawRow]:
    rows: list[RawRow] = []
    append = rows.append
    for index, item in enumerate(items):
        if isinstance(item, dict):
            if "timestamp" in item:
                moment = item["timestamp"]
            else:
                moment = item["time"] if "time" in item else item.get("t")
            values = {
                "timestamp": moment,
                "open": item.get("open"),
                "high": item.get("high"),
                "low": item.get("low"),
                "close": item.get("close"),
                "volume": item.get("volume"),
            }
            append(RawRow(index, values))
        elif isinstance(item, list | tuple):
            if len(item) == 6:
                append(RawRow(index, dict(zip(CANDLE_FIELDS, item, strict=True))))
            else:
                problem = f"has {len(item)} values, expected 6: {_CCXT_ORDER}"
                append(RawRow(index, {}, problem))
        else:
            append(RawRow(index, {}, "is not an object or an array"))
    return rows

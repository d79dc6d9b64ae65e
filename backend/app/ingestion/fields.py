"""Read one received field: a price or volume, or a candle's open time.

Pure standard library. :mod:`app.ingestion.batch` applies these to every row of a batch. Errors
never carry the value received, so a caller may show them to anyone (a 422 that copies NaN back
cannot even be encoded).

Numbers: finite only (NaN, Infinity and ``1e400``, which overflows to infinity, are refused),
not negative, not booleans; ``-0.0`` is read as 0.

Timestamps (every accepted time becomes a tz-aware UTC candle-OPEN time):

* ISO 8601 strings, anything :meth:`datetime.fromisoformat` reads: ``2019-10-17T09:00:00Z``,
  ``2019-10-17 09:00:00+02:00`` (converted to UTC), ``2019-10-17`` (midnight). A time without an
  offset is taken as UTC. CryptoDataDownload's hourly ``2019-10-17 09-AM`` (12-hour clock,
  ``12-AM`` is midnight) is read too.
* Epoch numbers, as int, integral float or a string of ASCII digits; the unit is decided per
  value by its size: below 10**11 seconds, below 10**14 milliseconds, below 10**17
  microseconds (Binance's 2025 spot files). Every accepted time is at or after 2009-01-01, and
  in that range the three units cannot be confused: 10**11 seconds is the year 5138, 10**11 ms
  1973, 10**14 ms the year 5138 and 10**14 us 1973. A string of digits is always epoch time,
  never a compact ISO date such as ``20191017``.
* :class:`datetime` objects, from sources that build their rows themselves (naive ones are UTC).
* Refused: booleans, negative or non-finite numbers, epoch values of 10**17 and more, times
  before 2009 (there was no crypto market), and strings longer than 64 characters.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ["EARLIEST", "Invalid", "number", "price", "timestamp"]

EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)  # the Bitcoin genesis block is from 2009-01-03
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECONDS_FROM = 10**11
_MICROSECONDS_FROM = 10**14
_TOO_LARGE_FROM = 10**17  # microseconds from here on are after the year 5138
_MAX_TIME_TEXT = 64
_NOT_A_TIME = "is not an ISO 8601 time or epoch milliseconds"


class Invalid(Exception):
    """A value broke a rule; the message never contains the value."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def number(value: object) -> float:
    """A finite, non-negative float; raises :class:`Invalid`.

    The same acceptance as the batch's inlined fast path: float() minus booleans.
    """
    if isinstance(value, bool):  # float(True) would be 1.0
        raise Invalid("is a boolean, not a number")
    if value is None:
        raise Invalid("is missing")
    try:
        result = float(value)  # type: ignore[arg-type]
    except OverflowError:  # an int too large for a float
        raise Invalid("is not a finite number") from None
    except (TypeError, ValueError):
        blank = isinstance(value, str) and not value.strip()
        raise Invalid("is missing" if blank else "is not a number") from None
    if result - result != 0:  # NaN and both infinities (inf - inf is NaN)
        raise Invalid("is not a finite number")
    if result < 0:
        raise Invalid("is negative")
    return result + 0.0  # -0.0 + 0.0 is 0.0


def price(value: object) -> float:
    """A finite, positive float; raises :class:`Invalid`.

    Zero is refused like a negative: exchanges record an outage as a candle of zeros, and a
    forecast on log prices cannot use one. (Volume may be zero: nothing traded.)
    """
    result = number(value)
    if result == 0:
        raise Invalid("is zero, which is no price (an exchange outage record?)")
    return result


def timestamp(value: object) -> datetime:
    """A tz-aware UTC open time at or after 2009; raises :class:`Invalid`."""
    moment = _moment(value)
    if moment.tzinfo is not UTC:
        try:
            moment = moment.astimezone(UTC)
        except (OverflowError, ValueError):
            raise Invalid("is out of range") from None
    if moment < EARLIEST:
        raise Invalid("is before 2009")
    return moment


def _moment(value: object) -> datetime:
    """The time ``value`` names, in whatever zone it gives (UTC when it gives none)."""
    if isinstance(value, str):
        return _time_from_text(value)
    if isinstance(value, bool):  # before int: bool is an int
        raise Invalid("is a boolean, not a time")
    if isinstance(value, int | float):
        return _time_from_epoch(value)
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else _as_utc(value)
    raise Invalid("is missing" if value is None else _NOT_A_TIME)


def _as_utc(naive: datetime) -> datetime:
    # Positional arguments: datetime.replace(tzinfo=...) costs three times as much.
    return datetime(
        naive.year,
        naive.month,
        naive.day,
        naive.hour,
        naive.minute,
        naive.second,
        naive.microsecond,
        UTC,
    )


# CryptoDataDownload hourly files write "2019-10-17 09-AM"; on a 12-hour clock "12-AM" is
# midnight and "12-PM" noon. Read by table rather than strptime's %p, which follows the locale.
_TWELVE_HOUR = {
    f"{hour:02d}-{half}": f"T{hour % 12 + (12 if half == 'PM' else 0):02d}:00+00:00"
    for hour in range(1, 13)
    for half in ("AM", "PM")
}


def _time_from_text(text: str) -> datetime:
    if not text or text[0] <= " " or text[-1] <= " ":
        text = text.strip()
        if not text:
            raise Invalid("is missing")
    if len(text) > _MAX_TIME_TEXT:
        raise Invalid("is too long for a time")
    if text.isdigit() and text.isascii():
        return _time_from_digits(text)
    if len(text) == 16 and text[10] == " " and text[13] == "-":
        text = text[:10] + _TWELVE_HOUR.get(text[11:].upper(), text[10:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return _time_from_numeric_text(text)
    return moment if moment.tzinfo is not None else _as_utc(moment)


def _time_from_digits(text: str) -> datetime:
    """ASCII digits are always epoch time, never a compact ISO date such as 20191017."""
    digits = len(text)
    if digits == 13 and text[0] != "0":  # ms from 2001-09-09 to 2286: ccxt's usual
        seconds, fraction = divmod(int(text), 1000)
        if not fraction:
            return datetime.fromtimestamp(seconds, UTC)
    if digits > 17:
        raise Invalid("is out of range")
    return _time_from_whole(int(text))


def _time_from_numeric_text(text: str) -> datetime:
    """ "-5", "1.5e12", "NaN": numbers written as text, judged as numbers."""
    try:
        value = float(text)
    except ValueError:
        raise Invalid(_NOT_A_TIME) from None
    return _time_from_epoch(value)


def _time_from_epoch(value: float) -> datetime:
    if value - value != 0:
        raise Invalid("is not a finite number")
    if value < 0:
        raise Invalid("is negative")
    if isinstance(value, int):
        return _time_from_whole(value)
    if value.is_integer():
        return _time_from_whole(int(value))
    if value >= _TOO_LARGE_FROM:
        raise Invalid("is out of range")
    per_second = _per_second(value)
    return _EPOCH + timedelta(microseconds=value * (1_000_000 // per_second))


def _time_from_whole(value: int) -> datetime:
    """A non-negative whole epoch value in the unit its size gives."""
    if value < _MILLISECONDS_FROM:  # seconds
        return datetime.fromtimestamp(value, UTC)
    if value >= _TOO_LARGE_FROM:
        raise Invalid("is out of range")
    per_second = _per_second(value)
    seconds, fraction = divmod(value, per_second)
    if not fraction:  # the usual case, and the fastest way to an aware datetime
        return datetime.fromtimestamp(seconds, UTC)
    return _EPOCH + timedelta(seconds=seconds, microseconds=fraction * 1_000_000 // per_second)


def _per_second(value: float) -> int:
    if value >= _MICROSECONDS_FROM:
        return 1_000_000
    return 1000 if value >= _MILLISECONDS_FROM else 1

"""Process-wide logging: JSON lines (the default) or plain text, each with the request id.

Every record carries ``request_id`` (from the ``X-Request-ID`` the client sent, or one made
up for the request), so one request's lines can be found across processes. Nothing here logs
headers or bodies: API keys and client data never reach the logs.

A JSON line is one object: ``time``, ``level``, ``logger``, ``message``, ``request_id``, then
``exc_info`` / ``stack_info`` when the record has them, then every ``extra=`` field. Every
request writes one, so the formatter is kept cheap: orjson, and the time's text made once a
second.
"""

from __future__ import annotations

import contextvars
import logging
import sys
import time
from typing import Any, Literal

import orjson

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
LogFormat = Literal["json", "text"]

# What every LogRecord has (this Python's own list, e.g. taskName on 3.12+), what formatters
# add to it, and the fields a JSON line already has: the rest of a record's attributes are
# the caller's `extra=` fields.
_NOT_EXTRA = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", None, None).__dict__,
        "message",
        "asctime",
        "request_id",
    }
)
# How many attribute layouts a JSON formatter remembers (see JsonFormatter._extra_keys).
_LAYOUTS_KEPT = 256


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class _CachedTimeFormatter(logging.Formatter):
    """logging's default time text ("2024-01-02 03:04:05,678"), strftime'd once a second."""

    _second: tuple[int, str] = (-1, "")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        cached = self._second
        if cached[0] != second:
            # One tuple, swapped whole: threads that log at once never see a torn pair.
            cached = (second, time.strftime("%Y-%m-%d %H:%M:%S", self.converter(second)))
            self._second = cached
        return f"{cached[1]},{int(record.msecs):03d}"


class JsonFormatter(_CachedTimeFormatter):
    """One JSON object per record (see the module's docstring for its keys)."""

    def __init__(self) -> None:
        super().__init__()
        # Which of a record's attributes are `extra=` fields, by the record's attribute names
        # in order: the same few layouts (one per log call site's set of extras) come back
        # every line, and a tuple's lookup is cheaper than testing each of ~25 names.
        self._layouts: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def _extra_keys(self, fields: dict[Any, Any]) -> tuple[Any, ...]:
        layout = tuple(fields)
        keys = self._layouts.get(layout)
        if keys is None:
            # As python-json-logger did, names starting with "_" are private, not fields.
            keys = tuple(
                key
                for key in layout
                if key not in _NOT_EXTRA and not (isinstance(key, str) and key.startswith("_"))
            )
            if len(self._layouts) < _LAYOUTS_KEPT:  # extras named on the fly are not all kept
                self._layouts[layout] = keys
        return keys

    def format(self, record: logging.LogRecord) -> str:
        fields = record.__dict__
        # A dict logged as the message is spread into the line, as python-json-logger did.
        spread = record.msg if isinstance(record.msg, dict) else None
        line: dict[Any, Any] = {
            "time": self.formatTime(record, self.datefmt),
            "level": record.levelname,
            "logger": record.name,
            "message": "" if spread is not None else record.getMessage(),
            "request_id": fields.get("request_id"),
        }
        if spread is not None:
            line.update(spread)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exc_info"] = record.exc_text
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        for key in self._extra_keys(fields):
            line[key] = fields[key]
        try:
            return orjson.dumps(line, default=str).decode()
        except orjson.JSONEncodeError:
            # What `default=str` cannot save (dict keys that are not strings, integers over
            # 64 bits, nesting too deep, a __str__ that raises) costs that one value its JSON
            # form, never the line.
            safe = {str(key): _encodable(value) for key, value in line.items()}
            return orjson.dumps(safe, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def _encodable(value: object) -> object:
    try:
        orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        try:
            return str(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"
    return value


def _formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    return _CachedTimeFormatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")


def configure_logging(level: str, log_format: LogFormat = "json") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # uvicorn's own access log repeats what the request log line says, without the id.
    logging.getLogger("uvicorn.access").disabled = True
    # Every record would otherwise walk the stack for its caller's file, line and function,
    # and look up its thread's, process's and asyncio task's names: several microseconds a
    # line (one line per request) for fields neither format prints. Without the stack walk,
    # `stack_info=True` adds nothing to a record either; no code here asks for it.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    if sys.version_info >= (3, 12):
        logging.logAsyncioTasks = False

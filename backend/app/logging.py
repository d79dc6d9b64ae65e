"""Process-wide logging: JSON lines (the default) or plain text, each with the request id.

Every record carries ``request_id`` (from the ``X-Request-ID`` the client sent, or one made
up for the request), so one request's lines can be found across processes. Nothing here logs
headers or bodies: API keys and client data never reach the logs.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Literal

from pythonjsonlogger.json import JsonFormatter

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
LogFormat = Literal["json", "text"]


class RequestIdFilter(logging.Filter):
    """Adds the current request's id (or None outside a request) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def _formatter(log_format: LogFormat) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            timestamp=False,
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s")


def configure_logging(level: str, log_format: LogFormat = "json") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(_formatter(log_format))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # uvicorn's own access log repeats what the request log line says, without the id.
    logging.getLogger("uvicorn.access").disabled = True

"""Request context: each request's id, its one log line and its count in the metrics.

Outermost of the middleware, so every response, a 429 or a 500 included, carries its id
and is logged and counted once.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.logging import request_id_var
from app.observability.metrics import Metrics

logger = logging.getLogger("app.requests")
# Accepted from clients as is; anything else is replaced, so logs cannot be forged or flooded.
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _route_template(scope: Scope) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    # Unmatched paths share one label: raw paths would let clients mint label values.
    return str(path) if isinstance(path, str) else "unmatched"


# Made-up request ids: 16 random hex digits per process, then this process's count of ids in
# 16 more (32, as a uuid4's hex had). Unique across processes and restarts without a syscall
# per request; ids from one process are sequential, which is all log correlation needs.
_id_prefix = secrets.token_hex(8)
_id_count = itertools.count()


def _reset_request_ids() -> None:
    """A new prefix and count, for a forked child (which would repeat its parent's ids)."""
    global _id_prefix, _id_count
    _id_prefix = secrets.token_hex(8)
    _id_count = itertools.count()


os.register_at_fork(after_in_child=_reset_request_ids)


def _new_request_id() -> str:
    return f"{_id_prefix}{next(_id_count):016x}"


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = str(value.decode("latin-1"))
            if REQUEST_ID.match(candidate):
                return candidate
            break
    return _new_request_id()


class RequestContextMiddleware:
    """Outermost: gives each request its id, times it, logs it once, counts it."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - started
            self._record(scope, status, elapsed)
            request_id_var.reset(token)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route, method = _route_template(scope), scope["method"]
        self.metrics.record(method, route, status, elapsed)
        if not logger.isEnabledFor(logging.INFO):
            return  # LOG_LEVEL above INFO: skip building the line's fields
        logger.info(
            "%s %s %d %.1f ms",
            method,
            route,
            status,
            elapsed * 1000,
            extra={
                "method": method,
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(elapsed * 1000, 2),
            },
        )

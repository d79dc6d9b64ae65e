"""Request bodies: a size ceiling and a time limit for every endpoint, and JSON where JSON
is expected.

This is ASGI middleware because FastAPI reads a whole body before any dependency runs. The
body is read here, whole, before the app sees the request: a declared length over the limit
is refused before a byte is read, a body that passes the limit while it arrives is refused
then (413), and one that has not arrived whole within the time limit is refused (408). So a
client that trickles its body ties up a socket for a bounded time, and never a database
connection (no endpoint has run yet).
"""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import (
    AppError,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    problem_response,
)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class _TooLarge(Exception):
    pass


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 30.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                messages = await self._read(receive)
        except TimeoutError:
            late = RequestTimeout(f"the request body did not arrive within {self.timeout_s:g} s")
            await self._refuse(late, scope, receive, send)
            return
        except _TooLarge:
            await self._refuse(self._too_large(), scope, receive, send)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _read(self, receive: Receive) -> list[Message]:
        """The body's messages, as one; a disconnect is handed on as it came."""
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return [message]
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                raise _TooLarge
            more = message.get("more_body", False)
        return [{"type": "http.request", "body": b"".join(chunks)}]

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body may be at most {self.max_bytes} bytes")

    async def _refuse(self, error: AppError, scope: Scope, receive: Receive, send: Send) -> None:
        # A late body may still be on its way: that connection is not reused.
        headers = {"Connection": "close"} if isinstance(error, RequestTimeout) else None
        response = problem_response(
            error.status_code, error.title, error.detail, slug=error.slug, headers=headers
        )
        await response(scope, receive, send)


def _replay(messages: list[Message], then: Receive) -> Receive:
    """The messages already read, then the real channel (which reports the disconnect)."""
    pending = list(messages)

    async def receive() -> Message:
        return pending.pop(0) if pending else await then()

    return receive


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


async def require_json(request: Request) -> None:
    """415 for a body that is not JSON (FastAPI would try to validate it as JSON anyway)."""
    if not _has_body(request):
        return
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json" and not media_type.endswith("+json"):
        raise UnsupportedMediaType("send the body as application/json")

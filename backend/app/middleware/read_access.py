"""The key check for reads: every GET (and HEAD) under ``/api/`` needs the ``read`` scope.

Writes name their scope on the route (``api.deps.WriteAccess``), where FastAPI resolves it.
Reads all need the same scope, so one check in front of the router serves them all: as a
router-level dependency it cost about 80 µs a request in FastAPI's dependency resolution,
more than a cached read itself, even when reads are public and no key is sent. Here that
common case costs one header scan. A key that is sent is checked anyway, so a wrong key is
reported rather than ignored. The OpenAPI document still names the scope of each read
(``api.openapi.document_read_access``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import (
    AppError,
    app_error_response,
    database_unavailable_response,
    is_connection_failure,
)

# Given the X-API-Key header (None when absent), the verified caller; raises an AppError
# (401, 403) when the key may not read. `services.api_keys.key_check` builds one; the
# middleware only knows that it is awaited.
KeyCheck = Callable[[str | None], Awaitable[object]]

READ_METHODS = frozenset({"GET", "HEAD"})
API_PREFIX = "/api/"


def needs_read_access(scope: Scope) -> bool:
    return scope["method"] in READ_METHODS and scope["path"].startswith(API_PREFIX)


def api_key_of(scope: Scope) -> str | None:
    """The X-API-Key header; an empty one counts as none, as FastAPI's APIKeyHeader has it."""
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            return str(value.decode("latin-1")) or None
    return None


class ReadAccessMiddleware:
    """Lets a read through when reads are public and no key is sent, or its key may read.

    The verified caller is left in ``request.state.principal`` (None for a public read).
    """

    def __init__(self, app: ASGIApp, check_key: KeyCheck, public_reads: bool) -> None:
        self.app = app
        self.check_key = check_key
        self.public_reads = public_reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not needs_read_access(scope):
            await self.app(scope, receive, send)
            return
        key = api_key_of(scope)
        principal = None
        if key is not None or not self.public_reads:
            try:
                principal = await self.check_key(key)
            except AppError as error:
                await app_error_response(error)(scope, receive, send)
                return
            except Exception as error:  # the key's row is read from the database
                if not is_connection_failure(error):
                    raise  # the outermost handler answers 500
                await database_unavailable_response(error)(scope, receive, send)
                return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)

"""Error classes and the handlers that render them as RFC 9457 problem documents.

    AppError                  base: carries an HTTP status and a problem ``type`` slug
    ├── Unauthorized          401: no API key, or one that is unknown, revoked or expired
    ├── Forbidden             403: the key lacks the scope the operation needs
    ├── NotFound         404: a named resource does not exist
    ├── Conflict         409: the request contradicts stored state, or stored data
    │                              cannot serve it (too little history for a backtest)
    ├── InvalidInput     422: the body or query is wrong; ``errors`` point at fields
    ├── PayloadTooLarge       413: the body, or its row count, is over the limit
    ├── UnsupportedMediaType  415: the body is in a format the endpoint does not read
    └── ServiceUnavailable    503: a dependency (database) cannot be reached

Problem documents never contain the client's input or a stack trace: a validation error
names where the problem is (``body.candles[3].high``) and what rule failed, nothing more.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import fastapi.routing
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://cryptopredict.dev/problems/"
logger = logging.getLogger(__name__)


class AppError(Exception):
    status_code = 500
    slug = "internal-error"
    title = "Internal server error"

    def __init__(
        self,
        detail: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = list(errors or [])
        self.retry_after = retry_after  # seconds, sent as Retry-After when set


class Unauthorized(AppError):
    status_code = 401
    slug = "unauthorized"
    title = "Unauthorized"


class Forbidden(AppError):
    status_code = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(AppError):
    status_code = 404
    slug = "not-found"
    title = "Not found"


class Conflict(AppError):
    status_code = 409
    slug = "conflict"
    title = "Conflict"


class InvalidInput(AppError):
    status_code = 422
    slug = "invalid-input"
    title = "Invalid input"


def invalid_field(field: str, message: str) -> InvalidInput:
    """A 422 about one field (``query.limit``, ``body.name``), phrased without its value."""
    return InvalidInput(f"{field}: {message}", errors=[{"field": field, "message": message}])


def conflicting_field(field: str, message: str) -> Conflict:
    """A 409 about a well-formed field the stored data cannot serve (a horizon finer than the
    coin's candles, more backtest windows than its history holds): valid by the schema, so
    not a 422, and it may succeed once more data is stored."""
    return Conflict(f"{field}: {message}", errors=[{"field": field, "message": message}])


class PayloadTooLarge(AppError):
    status_code = 413
    slug = "payload-too-large"
    title = "Payload too large"


class RequestTimeout(AppError):
    status_code = 408
    slug = "request-timeout"
    title = "Request timeout"


class UnsupportedMediaType(AppError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class TooManyRequests(AppError):
    """This caller has as much heavy work in flight as it may; others are unaffected."""

    status_code = 429
    slug = "too-busy-for-this-key"
    title = "Too many requests"


class ServiceUnavailable(AppError):
    status_code = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class ServerBusy(ServiceUnavailable):
    """The server has as much heavy work in flight as it takes, from all callers together."""

    slug = "server-busy"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str | None = None,
    errors: Sequence[dict[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug if slug else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = list(errors)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _location(loc: Sequence[str | int]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def describe_validation_errors(raw: Sequence[Any]) -> list[dict[str, Any]]:
    """Field locations and messages only: pydantic's ``input`` and ``ctx`` are dropped."""
    return [{"field": _location(error["loc"]), "message": error["msg"]} for error in raw]


def app_error_response(exc: AppError) -> Response:
    headers: dict[str, str] = {}
    if exc.status_code == 401:  # RFC 9110: a 401 says how to authenticate.
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    return problem_response(
        exc.status_code,
        exc.title,
        exc.detail,
        slug=exc.slug,
        errors=exc.errors,
        headers=headers or None,
    )


async def _app_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return app_error_response(exc)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = describe_validation_errors(exc.errors())
    first = errors[0]["field"] if errors else "request"
    detail = f"{len(errors)} invalid field(s); first: {first}"
    return problem_response(422, "Invalid input", detail, slug="invalid-input", errors=errors)


# What FastAPI raises, as a 400, for a JSON body it cannot even decode (not UTF-8).
UNREADABLE_BODY = "There was an error parsing the body"


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == UNREADABLE_BODY:
        # Invalid input like any other malformed JSON body (FastAPI answers those with 422).
        error = invalid_field("body", "is not valid JSON in UTF-8")
        return problem_response(
            422, error.title, error.detail, slug=error.slug, errors=error.errors
        )
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette lists the methods of the first route whose path matched; a path served
        # by several routes (GET and POST /ohlcv) supports all of theirs.
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(
        exc.status_code, str(exc.detail), str(exc.detail), headers=headers or None
    )


def _allowed_methods(request: Request) -> list[str]:
    methods: set[str] = set()
    # FastAPI 0.165 keeps included routers as one route each; iter_route_contexts yields the
    # routes inside them, as they are matched.
    routes: Iterable[Any] = request.app.router.routes
    expand = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in expand(routes) if expand is not None else routes:
        match, _ = route.matches(request.scope)
        if match is not Match.NONE:
            methods |= getattr(route, "methods", None) or set()
    return sorted(methods)


# SQLSTATEs of a server that is there but takes no work now: 57P01 admin_shutdown, 57P02
# crash_shutdown, 57P03 cannot_connect_now ("the database system is shutting down", "is
# starting up", "is in recovery mode"); class 08 is connection_exception.
UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def _sqlstate(exc: BaseException) -> str | None:
    # SQLAlchemy's asyncpg adapter copies asyncpg's ``sqlstate`` onto the error it wraps.
    for error in (exc, getattr(exc, "orig", None)):
        code = getattr(error, "sqlstate", None)
        if isinstance(code, str):
            return code
    return None


def is_connection_failure(exc: BaseException) -> bool:
    """True for "the database is not there", false for a bad statement or constraint."""
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeoutError | OSError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    code = _sqlstate(exc)
    return code is not None and (code.startswith("08") or code in UNAVAILABLE_SQLSTATES)


async def _database_error(request: Request, exc: Exception) -> Response:
    if not is_connection_failure(exc):
        return await _unexpected(request, exc)
    return database_unavailable_response(exc)


def database_unavailable_response(exc: BaseException) -> Response:
    if isinstance(exc, PoolTimeoutError):
        # Reachable, but every pooled connection is in use: the fix is to wait, not to page
        # someone about a database that is down.
        return problem_response(
            503,
            "Service unavailable",
            "the database is busy (every connection is in use); retry shortly",
            slug="database-busy",
            headers={"Retry-After": "2"},
        )
    # A stopped server surfaces as a bare ConnectionRefusedError, not a SQLAlchemy error.
    logger.warning("database unavailable: %s", type(exc).__name__)
    return problem_response(
        503,
        "Service unavailable",
        "the database cannot be reached; retry shortly",
        slug="database-unavailable",
        headers={"Retry-After": "5"},
    )


async def _unexpected(_request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(500, "Internal server error", "an unexpected error occurred")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for error in (DBAPIError, PoolTimeoutError, OSError):
        app.add_exception_handler(error, _database_error)
    app.add_exception_handler(Exception, _unexpected)

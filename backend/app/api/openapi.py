"""The OpenAPI document as this app serves it.

FastAPI describes every response in the route's media type (application/json) and every
security dependency as required. Two corrections are made, once, on the generated document:

- An error response (4xx or 5xx) that does not describe a body of its own is an RFC 9457
  problem document: ``application/problem+json`` with the ``Problem`` schema. FastAPI's
  ``HTTPValidationError`` is never sent (validation errors are problems too), so it goes.
- Every operation documents the optional ``X-Request-ID`` header the service accepts on
  every request (``app.observability.metrics``): any value is accepted, a sane one is echoed back.
- Each operation's security names the scopes its key needs (``read``, ``write``,
  ``admin``). Writes declare theirs on the route; reads are checked before routing
  (``app.middleware.read_access``), so every read under ``/api/`` gets the ``read`` scope here. With
  ``PUBLIC_READS`` (the default) one that needs only ``read`` takes no key: its security
  lists the empty requirement beside the API key. A key that is sent is still checked, which
  is why such operations document 401 as well.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic.json_schema import models_json_schema

from app.api.deps import api_key_header
from app.config import Settings
from app.errors import PROBLEM_MEDIA_TYPE
from app.middleware.read_access import API_PREFIX, READ_METHODS
from app.schemas.problems import Problem
from app.services.api_keys import KeyScope

REF_TEMPLATE = "#/components/schemas/{model}"
PROBLEM_REF = {"$ref": REF_TEMPLATE.format(model="Problem")}
FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def install_openapi(app: FastAPI, settings: Settings) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()  # cached on the app: corrected once, in place
            document_problems(document)
            document_read_access(document)
            document_request_id(document)
            if settings.PUBLIC_READS:
                document_public_reads(document)
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _is_error(status: str) -> bool:
    return status[:1] in ("4", "5")


def _describes_own_body(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    return bool(schema) and not ref.endswith(tuple(f"/{n}" for n in FASTAPI_VALIDATION_SCHEMAS))


def document_problems(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            for status, response in operation.get("responses", {}).items():
                if _is_error(status) and not _describes_own_body(response):
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": dict(PROBLEM_REF)}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    _, definitions = models_json_schema([(Problem, "serialization")], ref_template=REF_TEMPLATE)
    schemas.update(definitions.get("$defs", {}))


REQUEST_ID_HEADER = {
    "name": "X-Request-ID",
    "in": "header",
    "required": False,
    "description": "Your id for this request, to find it in the service's logs. Echoed in "
    "the response's `X-Request-ID` when it is 1-128 of `A-Za-z0-9._:-`; any other value is "
    "replaced by a new id (never refused).",
    "schema": {"type": "string"},
}


def document_request_id(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            parameters = operation.setdefault("parameters", [])
            if not any(p.get("name") == REQUEST_ID_HEADER["name"] for p in parameters):
                parameters.append(dict(REQUEST_ID_HEADER))


def document_read_access(document: dict[str, Any]) -> None:
    scheme = api_key_header.scheme_name
    schemes = document.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes.setdefault(scheme, api_key_header.model.model_dump(by_alias=True, exclude_none=True))
    for path, operations in document.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for method, operation in operations.items():
            if method.upper() in READ_METHODS:
                operation.setdefault("security", [{scheme: [KeyScope.READ.value]}])


def document_public_reads(document: dict[str, Any]) -> None:
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            security = operation.get("security")
            if not security or {} in security:
                continue
            scopes = {
                scope for requirement in security for need in requirement.values() for scope in need
            }
            if scopes <= {KeyScope.READ.value}:
                operation["security"] = [{}, *security]

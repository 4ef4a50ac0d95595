"""The OpenAPI document at ``/openapi.json``: every status an operation can answer, with our body.

FastAPI documents a route's success response and a 422 for validation errors. We answer
validation errors with 400 (``errors.py`` maps them to ``InvalidInput``, code 10010), and
every error with the body ``{code, description, data, source}``. :func:`install_openapi`
replaces ``app.openapi`` with a generator that post-processes FastAPI's document once:

- the 422 responses and FastAPI's ``HTTPValidationError`` schemas are dropped;
- the statuses every operation of a kind can answer are added from what the route depends
  on (see :func:`generic_statuses`): 400 and 414 from the edge guard, 401 and 403 behind
  sign-in, 404 for a path with ids, 413 and 415 for a body, 503 when the database is busy;
- every 4xx/5xx response without content of its own gets the ``ErrorBody`` schema, so a
  route states a specific status (409, 410, 413, 429, ...) with one line in its
  ``responses=`` (a description only) and the body comes from here.

The fuzz test (``tests/test_openapi_fuzz.py``, schemathesis) fails on any status an operation
answers that its document does not list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

ERROR_SCHEMA_NAME = "ErrorBody"

ERROR_SCHEMA: dict[str, Any] = {
    "title": ERROR_SCHEMA_NAME,
    "type": "object",
    "description": "Every error answer of the API (Partner Center's error body).",
    "required": ["code", "description", "data", "source"],
    "properties": {
        "code": {
            "type": "integer",
            "description": "Stable error code: Partner Center's where it has one, else ours "
            "(docs/dev/errors.md).",
        },
        "description": {"type": "string", "description": "What went wrong, for people."},
        "data": {"type": "array", "items": {}, "description": "Details (fields, limits, ids)."},
        "source": {"type": "string", "description": "The parameter at fault, or PartnerCenter."},
        "errorName": {"type": "string", "description": "The error's stable name."},
    },
}

GENERIC_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid input (10010): `data` lists each `{field, message}`",
    401: "No valid bearer token or session (10401)",
    403: "The caller's roles do not allow this (10403)",
    404: "No such resource, or another tenant's (answered the same)",
    413: "The request body is larger than allowed",
    414: "The address is longer than allowed",
    415: "The body is not of the operation's media type (JSON or form)",
    503: "The service is busy or the database unreachable; retry after `Retry-After` seconds",
}


def _dependency_calls(dependant: Any) -> Iterator[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _dependency_calls(sub)


def generic_statuses(path: str, route: APIRoute) -> set[int]:
    """The error statuses ``route`` can answer by what it is, before its own rules.

    ``path`` is the route's full path. Read from the route itself: its path (``/v1``, ids in
    the path), whether it reads a body, and the dependencies it declares (the session, the
    signed-in user, the sandbox switch).
    """
    from partnercenter import deps

    calls = set(_dependency_calls(route.dependant))
    names = {getattr(c, "__name__", "") for c in calls}
    # The edge guard (edge.py) checks every request's address and headers (400, 414) and
    # every body's size and media type (413, 415) before any route runs.
    statuses: set[int] = {400, 414}
    if route.dependant.body_params or (route.methods or set()) & {"POST", "PUT", "PATCH"}:
        statuses.update({413, 415})
    if route.dependant.path_params or "sandbox_only" in names:
        statuses.add(404)
    # deps.require(action) depends on get_optional_actor directly, named require_<action>.
    signed_in = calls & {deps.get_current_user, deps.get_actor}
    if signed_in or any(name.startswith("require_") for name in names):
        statuses.update({401, 403})
    if deps.get_session in calls:
        statuses.add(503)
    return statuses


def _flatten(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """APIRoutes with their full path, including those of included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path_format, route
        elif hasattr(route, "original_router"):  # FastAPI's included-router node
            yield from _flatten(route.original_router.routes, prefix + route.include_context.prefix)


def _operation_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    found: dict[tuple[str, str], APIRoute] = {}
    for path, route in _flatten(list(app.routes)):
        for method in route.methods or ():
            found[(path, method.lower())] = route
    return found


def build_document(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document for ``app``, completed with every status and the error body."""
    doc = get_openapi(
        title=app.title,
        version=app.version,
        openapi_version=app.openapi_version,
        description=app.description,
        routes=app.routes,
    )
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas[ERROR_SCHEMA_NAME] = ERROR_SCHEMA
    error_content = {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}}
    }
    routes = _operation_routes(app)
    for path, operations in doc.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            route = routes.get((path, method))
            if route is not None:
                for code in sorted(generic_statuses(path, route)):
                    responses.setdefault(str(code), {"description": GENERIC_DESCRIPTIONS[code]})
            for status, response in responses.items():
                if status[:1] in {"4", "5"} and not response.get("content"):
                    # Outside /v1 a browser (or curl) is answered with the error page.
                    response["content"] = (
                        error_content if path.startswith("/v1") else error_content | _PAGE
                    )
            operation["responses"] = dict(sorted(responses.items()))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return doc


_PAGE: dict[str, Any] = {"text/html": {}}


def install_openapi(app: FastAPI) -> None:
    """Serve :func:`build_document`'s document (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

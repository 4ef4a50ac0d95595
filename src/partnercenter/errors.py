"""The base domain error, and the one place that turns errors into API bodies and pages.

Every area defines its errors in its own ``errors.py`` as subclasses of :class:`DomainError`
with a stable machine ``code`` (Partner Center's number where it has one) and an HTTP status.
The table of codes is in ``docs/dev/errors.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partnercenter.i18n import N_, Verbatim

log = logging.getLogger("partnercenter.errors")


class DomainError(Exception):
    """An error a service raises; carries a stable code and the HTTP status it maps to."""

    code: ClassVar[int] = 10000
    name: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    default_description: ClassVar[str] = N_("The request could not be completed.")

    def __init__(
        self, description: str | None = None, *, data: list[Any] | None = None, source: str = ""
    ) -> None:
        self.description = description or self.default_description
        self.data = data or []
        self.source = source
        super().__init__(self.description)

    def body(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "description": self.description,
            "data": self.data,
            "source": self.source or "PartnerCenter",
            "errorName": self.name,
        }


class InvalidInput(DomainError):
    code = 10010
    name = "invalid_input"
    status = 400
    default_description = N_("The input is invalid.")


class NotFound(DomainError):
    code = 10404
    name = "not_found"
    status = 404
    default_description = N_("The resource was not found.")


class Forbidden(DomainError):
    code = 10403
    name = "forbidden"
    status = 403
    default_description = N_("Your roles do not allow this action.")


class Unauthenticated(DomainError):
    code = 10401
    name = "unauthenticated"
    status = 401
    default_description = N_("Sign in first: no valid bearer token or session was given.")


class Conflict(DomainError):
    code = 10409
    name = "conflict"
    status = 409
    default_description = N_("The request conflicts with the current state.")


class TooManyRequests(DomainError):
    code = 10429
    name = "too_many_requests"
    status = 429
    default_description = N_("Too many requests; try again later.")

    def __init__(self, description: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class PayloadTooLarge(DomainError):
    code = 10813
    name = "payload_too_large"
    status = 413
    default_description = N_("The request body is larger than this service accepts.")


class UriTooLong(DomainError):
    code = 10814
    name = "uri_too_long"
    status = 414
    default_description = N_("The address (path and query) is longer than this service accepts.")


class HeaderFieldsTooLarge(DomainError):
    code = 10831
    name = "request_header_fields_too_large"
    status = 431
    default_description = N_("The request's headers are larger than this service accepts.")


class UnsupportedMediaType(DomainError):
    code = 10815
    name = "unsupported_media_type"
    status = 415
    default_description = N_(
        "The request body's Content-Type is not one this operation accepts "
        "(application/json, or a form where the operation takes one)."
    )


class MethodNotAllowed(DomainError):
    code = 10805
    name = "method_not_allowed"
    status = 405
    default_description = N_(
        "This method is not allowed here; the Allow header lists those that are."
    )


class ServiceBusy(DomainError):
    code = 10853
    name = "service_busy"
    status = 503
    default_description = N_("The service is busy. Try again in a moment.")

    def __init__(self, description: str | None = None, *, retry_after: int = 2) -> None:
        super().__init__(description)
        self.retry_after = retry_after


class CsrfFailed(DomainError):
    code = 10419
    name = "csrf_failed"
    status = 403
    default_description = N_(
        "The form has expired or did not come from this site. Reload the page."
    )


def wants_html(request: Request) -> bool:
    path = request.url.path
    if path.startswith("/v1") or path in {"/healthz", "/readyz", "/metrics"}:
        return False
    accept = request.headers.get("accept", "")
    if "text/html" in accept or request.method == "POST":
        return True
    # Outside the API a client that accepts anything (curl, scripts) gets the page too.
    return "application/json" not in accept and (accept == "" or "*/*" in accept)


def error_response(request: Request, status: int, body: dict[str, Any]) -> Response:
    """Our error body as JSON, or as a page for a browser."""
    headers: dict[str, str] = {}
    if wants_html(request):
        from partnercenter.web import render_error_page

        return render_error_page(request, status, body)
    return JSONResponse(body, status_code=status, headers=headers)


def json_syntax_error(problem: str, position: int, document: str | bytes) -> InvalidInput:
    """The error for a body that is not JSON, saying where: line and column (both from 1)
    and the character position (from 0) of ``position`` in ``document``, and the parser's
    ``problem`` (Python's ``json`` module's message, such as ``Expecting value``)."""
    text = document.decode("utf-8", "replace") if isinstance(document, bytes) else document
    position = max(0, min(position, len(text)))
    line = text.count("\n", 0, position) + 1
    column = position - (text.rfind("\n", 0, position) + 1) + 1
    description = N_(
        "The request body is not valid JSON: %(problem)s at line %(line)s, column %(column)s "
        "(character %(position)s).",
        problem=Verbatim(problem),
        line=line,
        column=column,
        position=position,
    )
    where = {"line": line, "column": column, "position": position}
    return InvalidInput(
        description,
        data=[{"field": "body", "message": str(description), **where}],
        source="body",
    )


def validation_error(exc: RequestValidationError) -> InvalidInput:
    """Our error for what FastAPI found wrong with a request's parameters or body.

    ``data`` lists every problem as ``{field, message}`` (``field`` is the dotted place,
    ``items.0.quantity``; the body itself is ``body``); the description states the first.
    A body that is not JSON says where it breaks (:func:`json_syntax_error`); a missing
    body says so instead of naming an empty field.
    """
    errors = list(exc.errors())
    for err in errors:
        if err.get("type") == "json_invalid":
            where = tuple(err.get("loc", ()))
            position = where[1] if len(where) > 1 and isinstance(where[1], int) else 0
            problem = str((err.get("ctx") or {}).get("error", "")) or "JSON decode error"
            return json_syntax_error(problem, position, exc.body or "")
    data: list[dict[str, Any]] = []
    for err in errors:
        if tuple(err.get("loc", ())) == ("body",) and err.get("type") == "missing":
            return InvalidInput(
                N_("The request body is missing: this operation takes a JSON body."),
                data=[{"field": "body", "message": "Field required"}],
                source="body",
            )
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        data.append({"field": loc, "message": err.get("msg", "")})
    if not data:
        return InvalidInput()
    first = data[0]
    description = f"Invalid input: {first['field']}: {first['message']}".replace(": : ", ": ")
    return InvalidInput(description, data=data)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the API's error body."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if wants_html(request) and isinstance(exc, Unauthenticated):
            from partnercenter.identity.views import signin_redirect

            return signin_redirect(request)
        response = error_response(request, exc.status, exc.body())
        if isinstance(exc, TooManyRequests | ServiceBusy):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthenticated) and not wants_html(request):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 400, validation_error(exc).body())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        mapping: dict[int, type[DomainError]] = {
            404: NotFound,
            401: Unauthenticated,
            403: Forbidden,
            409: Conflict,
            405: MethodNotAllowed,
            413: PayloadTooLarge,
            414: UriTooLong,
            431: HeaderFieldsTooLarge,
            415: UnsupportedMediaType,
        }
        error_cls = mapping.get(exc.status_code)
        if error_cls is not None:
            body = error_cls().body()
        else:
            body = {
                "code": 10000 + exc.status_code,
                "description": str(exc.detail),
                "data": [],
                "source": "PartnerCenter",
                "errorName": "http_error",
            }
        response = error_response(request, exc.status_code, body)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    _install_input_and_capacity_handlers(app, _domain)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", extra={"path": request.url.path})
        body = {
            "code": 10500,
            "description": "An unexpected error occurred. Quote the correlation id to support.",
            "data": [],
            "source": "PartnerCenter",
            "errorName": "internal_error",
        }
        if wants_html(request):
            from partnercenter.web import render_error_page

            return render_error_page(request, 500, body)
        return JSONResponse(body, status_code=500)


def _install_input_and_capacity_handlers(
    app: FastAPI, render: Callable[[Request, DomainError], Awaitable[Response]]
) -> None:
    """Errors that hostile input or a burst can provoke below the routes, answered as 4xx/503.

    Each is handled here (not re-raised), so the connection stays open: out-of-range numbers,
    text no database can store, a pool with no free connection, a SQLite write lock held too
    long. The log line names the error class only: driver messages can quote values.
    """
    from sqlalchemy import exc as sa

    from partnercenter.db import UnstorableText

    def bad_input(description: str) -> DomainError:
        return InvalidInput(description)

    async def overflow(request: Request, exc: Exception) -> Response:
        log.warning("input out of range", extra={"error": type(exc).__name__})
        return await render(request, bad_input(N_("A number in the request is out of range.")))

    async def unstorable(request: Request, exc: Exception) -> Response:
        log.warning("unstorable text refused", extra={"error": type(exc).__name__})
        return await render(
            request,
            bad_input(
                N_("Text may not contain NUL characters, control characters or lone surrogates.")
            ),
        )

    async def busy(request: Request, exc: Exception) -> Response:
        message = str(getattr(exc, "orig", "")).lower()
        if isinstance(exc, sa.OperationalError) and any(
            fault in message for fault in ("no such", "syntax error", "has no column")
        ):
            raise exc  # a fault of ours, not load: the generic 500 handler logs it
        log.warning("database busy", extra={"error": type(exc).__name__})
        return await render(request, ServiceBusy())

    async def data_error(request: Request, exc: Exception) -> Response:
        log.warning("database refused a value", extra={"error": type(exc).__name__})
        message = N_("A value in the request is out of range or too long.")
        return await render(request, bad_input(message))

    async def integrity(request: Request, exc: Exception) -> Response:
        log.warning("database integrity conflict", extra={"error": type(exc).__name__})
        return await render(request, Conflict())

    async def statement(request: Request, exc: Exception) -> Response:
        orig = getattr(exc, "orig", None)
        if isinstance(orig, UnstorableText | UnicodeError):
            return await unstorable(request, exc)
        if isinstance(orig, OverflowError | ValueError):
            return await overflow(request, exc)
        raise exc  # a fault of ours: the generic 500 handler logs it

    app.add_exception_handler(OverflowError, overflow)
    app.add_exception_handler(UnstorableText, unstorable)
    app.add_exception_handler(UnicodeError, unstorable)
    app.add_exception_handler(sa.TimeoutError, busy)
    app.add_exception_handler(sa.OperationalError, busy)
    app.add_exception_handler(sa.DataError, data_error)
    app.add_exception_handler(sa.IntegrityError, integrity)
    app.add_exception_handler(sa.StatementError, statement)


def html_error(status: int, body: dict[str, Any]) -> HTMLResponse:
    """A minimal page for when templates cannot be used."""
    from html import escape

    return HTMLResponse(
        f"<!doctype html><title>{status}</title><h1>{status}</h1>"
        f"<p>{escape(str(body.get('description', '')))}</p>",
        status_code=status,
    )

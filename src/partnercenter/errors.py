"""The base domain error, and the one place that turns errors into API bodies and pages.

Every area defines its errors in its own ``errors.py`` as subclasses of :class:`DomainError`
with a stable machine ``code`` (Partner Center's number where it has one) and an HTTP status.
The table of codes is in ``docs/dev/errors.md``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from partnercenter.i18n import N_

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


def _error_response(request: Request, status: int, body: dict[str, Any]) -> Response:
    headers: dict[str, str] = {}
    if wants_html(request):
        from partnercenter.web import render_error_page

        return render_error_page(request, status, body)
    return JSONResponse(body, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Map domain errors, validation errors and HTTP errors to the API's error body."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if wants_html(request) and isinstance(exc, Unauthenticated):
            from partnercenter.identity.views import signin_redirect

            return signin_redirect(request)
        response = _error_response(request, exc.status, exc.body())
        if isinstance(exc, TooManyRequests):
            response.headers["Retry-After"] = str(exc.retry_after)
        if isinstance(exc, Unauthenticated) and not wants_html(request):
            response.headers["WWW-Authenticate"] = "Bearer"
        return response

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        data = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            data.append({"field": loc, "message": err.get("msg", "")})
        first = data[0] if data else {"field": "", "message": "invalid"}
        description = f"Invalid input: {first['field']}: {first['message']}".replace(": : ", ": ")
        body = InvalidInput(description, data=data).body()
        return _error_response(request, 400, body)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        mapping: dict[int, type[DomainError]] = {
            404: NotFound,
            401: Unauthenticated,
            403: Forbidden,
            409: Conflict,
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
        response = _error_response(request, exc.status_code, body)
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

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


def html_error(status: int, body: dict[str, Any]) -> HTMLResponse:
    """A minimal page for when templates cannot be used."""
    from html import escape

    return HTMLResponse(
        f"<!doctype html><title>{status}</title><h1>{status}</h1>"
        f"<p>{escape(str(body.get('description', '')))}</p>",
        status_code=status,
    )

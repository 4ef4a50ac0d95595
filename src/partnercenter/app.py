"""create_app(): routers, error handlers and middleware; the composition root."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from partnercenter import compat, logs
from partnercenter.clock import Clock, SandboxClock, SystemClock
from partnercenter.config import Settings
from partnercenter.db import lazy_transactions, make_engine, make_session_factory
from partnercenter.edge import EdgeGuard
from partnercenter.errors import install_error_handlers
from partnercenter.jobs import runtime as job_runtime
from partnercenter.openapi import install_openapi

log = logging.getLogger("partnercenter.http")

REQUESTS = Counter(
    "partnercenter_http_requests_total", "HTTP requests", ["method", "route", "status"]
)
LATENCY = Histogram(
    "partnercenter_http_request_duration_seconds", "HTTP request latency", ["method", "route"]
)

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


def create_app(
    settings: Settings | None = None,
    *,
    session_factory: sessionmaker[Session] | None = None,
    clock: Clock | None = None,
    security_clock: Clock | None = None,
) -> FastAPI:
    """Build the application; tests pass their own session factory and clocks.

    ``clock`` is business time (30-day windows, month ends, cart expiry): the sandbox clock
    in sandbox mode. ``security_clock`` is what tokens, web sessions, copied links and sign-in
    throttles expire on: real time whenever the business clock is the sandbox's, so moving
    it signs nobody out; by default the same clock otherwise (a test's frozen clock drives
    both unless the test passes a second one).
    """
    settings = settings or Settings()
    if session_factory is None:
        engine = make_engine(settings.resolved_database_url, **settings.engine_options())
        session_factory = make_session_factory(engine)
    if clock is None:
        clock = SandboxClock() if settings.sandbox else SystemClock()
    logs.configure(json_lines=settings.log_json, secrets=settings.configured_secrets)
    jobs = job_runtime.for_app(settings, session_factory, clock)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    # FastAPIOffline: /docs (Swagger UI) and /redoc served from assets the package ships,
    # so the API docs work on a machine without internet (no CDN). Production serves no docs
    # and no /openapi.json unless PARTNERCENTER_DOCS_ENABLED=true (docs/dev/security.md);
    # FastAPIOffline needs an OpenAPI address, so then the plain FastAPI is built.
    details: dict[str, Any] = {
        "lifespan": lifespan,
        "title": "partnercenter",
        "version": "0.1.0",
        "description": "Partner Center for selling software through a reseller channel. "
        "Partner Center's own paths, fields and error codes where it has them.",
    }
    if settings.docs_visible:
        app = FastAPIOffline(**details)
    else:
        app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, **details)
    app.state.settings = settings
    app.state.session_factory = session_factory
    # A request's transaction begins at its first write: a read costs no BEGIN or ROLLBACK.
    app.state.request_session_factory = lazy_transactions(session_factory)
    app.state.clock = clock
    if security_clock is None:
        security_clock = SystemClock() if isinstance(clock, SandboxClock) else clock
    app.state.security_clock = security_clock
    app.state.jobs = jobs

    install_error_handlers(app)
    # Inside the correlation middleware below, so its refusals are logged and carry the id.
    app.add_middleware(EdgeGuard, fastapi_app=app)

    app.add_middleware(CorrelationAndMetrics)

    if settings.trusted_proxy_list:
        # Outermost: everything after it (throttles, activity log) sees the real client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    _include_routers(app)
    install_openapi(app)
    compat.install(app)
    static_dir = str(resources.files("partnercenter").joinpath("static"))
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app


def _strip_api_trailing_slash(scope: Any) -> None:
    """``PUT /v1/customers/{id}/carts/{cartId}/`` is the route without the slash.

    Partner Center accepts a trailing slash; a redirect (307) would make clients resend, and
    some drop the body or the method on the way. API paths are served as if it were absent.
    """
    path: str = scope.get("path", "")
    if path.startswith("/v1/") and path.endswith("/") and len(path) > 4:
        scope["path"] = path.rstrip("/")
        raw = scope.get("raw_path")
        if isinstance(raw, bytes) and raw.endswith(b"/"):
            scope["raw_path"] = raw.rstrip(b"/")


class CorrelationAndMetrics:
    """Correlation id, metrics, the access log line and the standard response headers.

    A plain ASGI middleware (not ``@app.middleware``, whose request/response wrapping costs a
    task group and a memory stream per request): messages pass through untouched but for the
    headers added to ``http.response.start``, so a file handed to the server (``pathsend``)
    stays zero-copy. The logged duration runs to the last byte sent.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        _strip_api_trailing_slash(scope)
        headers = Headers(scope=scope)
        given = headers.get("ms-correlationid")
        cid = given if given and _SAFE_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = cid
        request_id = headers.get("ms-requestid")
        extra: list[tuple[bytes, bytes]] = [(b"ms-correlationid", cid.encode())]
        # Partner Center answers with the request's MS-RequestId, as it does MS-CorrelationId.
        if request_id and _SAFE_ID.match(request_id):
            extra.append((b"ms-requestid", request_id.encode()))
        token = logs.correlation_id.set(cid)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                raw = list(message.get("headers", []))
                names = {k.lower() for k, _ in raw}
                ours = {k for k, _ in extra}
                raw = [(k, v) for k, v in raw if k.lower() not in ours]
                raw += extra
                if b"x-content-type-options" not in names:
                    raw.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": raw}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            route_name = getattr(route, "path", "unmatched")
            method = scope.get("method", "GET")
            REQUESTS.labels(method, route_name, str(status)).inc()
            LATENCY.labels(method, route_name).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": method,
                    "path": _loggable_path(scope.get("path", "")),
                    "status": status,
                    "durationMs": round(elapsed * 1000, 2),
                },
            )
            logs.correlation_id.reset(token)


def _loggable_path(path: str) -> str:
    """The request path for the access log, without the secret of a copied download link."""
    if path.startswith("/downloads/"):
        return "/downloads/[redacted]"
    return path


def _include_routers(app: FastAPI) -> None:
    from partnercenter.audit import api as audit_api
    from partnercenter.audit import views as audit_views
    from partnercenter.billing import api as billing_api
    from partnercenter.billing import views as billing_views
    from partnercenter.catalog import api as catalog_api
    from partnercenter.catalog import views as catalog_views
    from partnercenter.customers import api as customers_api
    from partnercenter.customers import views as customers_views
    from partnercenter.identity import api as identity_api
    from partnercenter.identity import views as identity_views
    from partnercenter.jobs import api as jobs_api
    from partnercenter.jobs import views as jobs_views
    from partnercenter.licensing import api as licensing_api
    from partnercenter.licensing import views as licensing_views
    from partnercenter.ops import api as ops_api
    from partnercenter.orders import api as orders_api
    from partnercenter.orders import cancellation_api, cancellation_views
    from partnercenter.orders import views as orders_views
    from partnercenter.support import api as support_api
    from partnercenter.support import views as support_views
    from partnercenter.webhooks import api as webhooks_api

    routers: list[Any] = [ops_api.router, identity_api.router, identity_views.router]
    routers += [customers_api.router, customers_views.router]
    routers += [catalog_api.router, catalog_views.router]
    routers += [orders_api.router, orders_views.router]
    routers += [audit_api.router, audit_views.router]
    routers += [cancellation_api.router, cancellation_views.router]
    routers += [billing_api.router, billing_views.router]
    routers += [licensing_api.router, licensing_api.public_router, licensing_views.router]
    routers += [support_api.router, support_views.router]
    routers += [jobs_api.router, jobs_views.router, webhooks_api.router]
    for router in routers:
        app.include_router(router)

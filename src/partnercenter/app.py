"""create_app(): routers, error handlers and middleware; the composition root."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from prometheus_client import Counter, Histogram
from sqlalchemy.orm import Session, sessionmaker
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from partnercenter import logs
from partnercenter.clock import Clock, SandboxClock, SystemClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
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
) -> FastAPI:
    """Build the application; tests pass their own session factory and clock."""
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
    # so the API docs work on a machine without internet (no CDN).
    app = FastAPIOffline(
        lifespan=lifespan,
        title="partnercenter",
        version="0.1.0",
        description="Partner Center for selling software through a reseller channel. "
        "Partner Center's own paths, fields and error codes where it has them.",
        # Off in production unless PARTNERCENTER_DOCS_ENABLED=true (docs/dev/security.md).
        docs_url="/docs" if settings.docs_visible else None,
        redoc_url="/redoc" if settings.docs_visible else None,
        openapi_url="/openapi.json" if settings.docs_visible else None,
    )
    app.state.settings = settings
    app.state.session_factory = session_factory
    app.state.clock = clock
    app.state.jobs = jobs

    install_error_handlers(app)
    # Inside the correlation middleware below, so its refusals are logged and carry the id.
    app.add_middleware(EdgeGuard, fastapi_app=app)

    @app.middleware("http")
    async def correlation_and_metrics(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        given = request.headers.get("ms-correlationid")
        cid = given if given and _SAFE_ID.match(given) else str(uuid.uuid4())
        request.state.correlation_id = cid
        token = logs.correlation_id.set(cid)
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            elapsed = time.perf_counter() - started
            route = request.scope.get("route")
            route_name = getattr(route, "path", "unmatched")
            REQUESTS.labels(request.method, route_name, str(status)).inc()
            LATENCY.labels(request.method, route_name).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": request.method,
                    "path": _loggable_path(request.url.path),
                    "status": status,
                    "durationMs": round(elapsed * 1000, 2),
                },
            )
            logs.correlation_id.reset(token)
        response.headers["MS-CorrelationId"] = cid
        # Partner Center answers with the request's MS-RequestId, as it does MS-CorrelationId.
        request_id = request.headers.get("ms-requestid")
        if request_id and _SAFE_ID.match(request_id):
            response.headers["MS-RequestId"] = request_id
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response

    if settings.trusted_proxy_list:
        # Outermost: everything after it (throttles, activity log) sees the real client.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxy_list)
    _include_routers(app)
    install_openapi(app)
    static_dir = str(resources.files("partnercenter").joinpath("static"))
    app.mount("/static", StaticFiles(directory=static_dir), name="static")
    return app


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
    from partnercenter.licensing import api as licensing_api
    from partnercenter.licensing import views as licensing_views
    from partnercenter.ops import api as ops_api
    from partnercenter.orders import api as orders_api
    from partnercenter.orders import cancellation_api, cancellation_views
    from partnercenter.orders import views as orders_views
    from partnercenter.support import api as support_api
    from partnercenter.support import views as support_views

    routers: list[Any] = [ops_api.router, identity_api.router, identity_views.router]
    routers += [customers_api.router, customers_views.router]
    routers += [catalog_api.router, catalog_views.router]
    routers += [orders_api.router, orders_views.router]
    routers += [audit_api.router, audit_views.router]
    routers += [cancellation_api.router, cancellation_views.router]
    routers += [billing_api.router, billing_views.router]
    routers += [licensing_api.router, licensing_api.public_router, licensing_views.router]
    routers += [support_api.router, support_views.router]
    routers += [jobs_api.router]
    for router in routers:
        app.include_router(router)

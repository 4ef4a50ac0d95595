"""The service of ``GET /v1/customers/{id}`` behind the thinnest ASGI app: the HTTP baseline.

``bench.request_overhead`` serves this beside ``partnercenter serve``, under the same server
(granian, one worker per core), so the two differ only in what the API adds: the bearer
token, user, tenant and roles, the permission check, the middleware (correlation id, access
log, metrics, edge checks, security headers), routing and the framework. Every request, to
any path: a session from the pool (as the server's requests get them,
``db.lazy_transactions``), ``customers.services.get_customer`` of the partner and customer
named by ``BENCH_PARTNER_ID`` and ``BENCH_CUSTOMER_ID``, the customer's JSON
(``customers.api.customer_out``), the session closed; the database work in a worker
thread, as an async server must run a blocking driver. No authentication: it is a bench, bound to
127.0.0.1, never part of the product.

    python -m granian --interface asgi --factory bench.bare_service:create
"""

from __future__ import annotations

import asyncio
import os
import uuid
from typing import Any

from partnercenter.customers import services as customers
from partnercenter.customers.api import customer_out
from partnercenter.db import lazy_transactions, make_engine, make_session_factory


def create() -> Any:
    """The ASGI app (factory); reads ``DATABASE_URL`` and the two ids from the environment."""
    # The sessions the server's requests get: on PostgreSQL a read sends no BEGIN.
    factory = lazy_transactions(make_session_factory(make_engine(os.environ["DATABASE_URL"])))
    partner = uuid.UUID(os.environ["BENCH_PARTNER_ID"])
    customer = uuid.UUID(os.environ["BENCH_CUSTOMER_ID"])

    def work() -> bytes:
        with factory() as session:
            tenant = customers.get_customer(session, partner_id=partner, customer_id=customer)
            body = customer_out(tenant).model_dump_json(by_alias=True).encode()
            session.rollback()
        return body

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = await asyncio.to_thread(work)
        headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app

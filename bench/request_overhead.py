"""What an authenticated API call costs beyond the service work it wraps, on PostgreSQL.

    .venv/bin/python -m bench.request_overhead [--requests 300] [--runs 5]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), one partner with an Admin agent
and a customer. ``partnercenter serve`` as it starts by default (granian, one worker per
core). In every round (``--runs``, interleaved), one client, one request after the other:

1. **trivial authenticated GET**: ``GET /v1/customers/{id}`` with a bearer token, over one
   kept-alive HTTP/1.1 connection (``http.client``): the token, user, tenant and roles
   resolved (one statement), the role checked, the customer read, its JSON written;
2. **the service over HTTP**: the same service work behind the thinnest ASGI app
   (``bench.bare_service``) under the same server (granian, one worker per core), over the
   same kind of connection: HTTP and the database work, without authentication, permission,
   middleware or framework;
3. **the service alone**: the same work without HTTP or authentication, in this process: a
   session from the pool (the server's kind, ``db.lazy_transactions``),
   ``customers.services.get_customer``, the customer's JSON (``customers.api.customer_out``),
   the session closed;
4. **GET /healthz** over the same kind of connection: HTTP and the middleware only, no
   database (for reference).

Prints the mean and p50 of each (ms) with min / median / max over the rounds, and two ratios
within each round, with the load average: authenticated GET / the service over HTTP (what
authentication and the framework add to the same work served the same way) and
authenticated GET / the service alone (HTTP included). The bench's own process runs the
client and the in-process service: both are as starved of CPU as the servers when the
machine is loaded. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy.orm import Session, sessionmaker

from bench.common import bearer, load_average, seeded_database, serve, spread, timed
from partnercenter.customers import services as customers
from partnercenter.customers.api import customer_out
from partnercenter.db import lazy_transactions, make_session_factory
from partnercenter.serving import default_workers

API = "trivial authenticated GET (HTTP)"
OVER_HTTP = "the service over HTTP (bare ASGI app, same server)"
ALONE = "the service alone (in process)"


def _bare_command(port: int) -> list[str]:
    """granian serving ``bench.bare_service`` as ``partnercenter serve`` serves the app."""
    return [
        sys.executable, "-m", "granian", "--interface", "asgi", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(default_workers()),
        "--log-level", "warning", "bench.bare_service:create",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with seeded_database(keys=1) as db, serve(db.url, db.data_dir, []) as base:
        ids = db.ids
        ids_env = {
            "BENCH_PARTNER_ID": str(ids["partner"]),
            "BENCH_CUSTOMER_ID": str(ids["customer"]),
        }
        bare = serve(db.url, db.data_dir, [], command=_bare_command, env=ids_env)
        factory = lazy_transactions(make_session_factory(db.engine))
        with httpx.Client(base_url=base) as client:
            auth = bearer(client)
        customer_path = f"/v1/customers/{ids['customer']}"
        with bare as bare_base:
            rounds, loads = _measure(base, bare_base, customer_path, auth, factory, ids, args)
    _report(rounds, loads, args)


def _connection(base: str) -> http.client.HTTPConnection:
    split = urlsplit(base)
    return http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)


def _measure(
    base: str,
    bare_base: str,
    customer_path: str,
    auth: dict[str, str],
    factory: sessionmaker[Session],
    ids: dict[str, Any],
    args: argparse.Namespace,
) -> tuple[list[dict[str, list[float]]], list[str]]:
    """Interleaved rounds of the four cases; each round's timings (ms) and the load averages."""
    conn, bare_conn = _connection(base), _connection(bare_base)
    rounds: list[dict[str, list[float]]] = []
    loads = [load_average()]

    def get(path: str, headers: dict[str, str], via: http.client.HTTPConnection = conn) -> None:
        via.request("GET", path, headers=headers)
        response = via.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status}")

    def service() -> None:
        with factory() as session:
            tenant = customers.get_customer(
                session, partner_id=ids["partner"], customer_id=ids["customer"]
            )
            customer_out(tenant).model_dump_json(by_alias=True)
            session.rollback()

    cases: dict[str, Callable[[], None]] = {
        API: lambda: get(customer_path, auth),
        OVER_HTTP: lambda: get("/customer", {}, bare_conn),
        ALONE: service,
        "GET /healthz (HTTP, no database)": lambda: get("/healthz", {}),
    }
    for _ in range(args.runs):
        rounds.append({name: timed(args.requests, call, warmup=10) for name, call in cases.items()})
        loads.append(load_average())
    conn.close()
    bare_conn.close()
    return rounds, loads


def _report(
    rounds: list[dict[str, list[float]]], loads: list[str], args: argparse.Namespace
) -> None:
    print(
        f"\n{args.requests} sequential calls per case per round, {args.runs} interleaved "
        f"rounds; load average (1/5/15 min) before and after each round: {'; '.join(loads)}\n"
    )
    print("| call | mean ms min / median / max | p50 ms min / median / max |")
    print("|---|---|---|")
    for name in rounds[0]:
        means = [statistics.fmean(r[name]) for r in rounds]
        p50 = [statistics.median(r[name]) for r in rounds]
        print(f"| {name} | {spread(means)} | {spread(p50)} |")
    print()
    for base in (OVER_HTTP, ALONE):
        by_mean = [statistics.fmean(r[API]) / statistics.fmean(r[base]) for r in rounds]
        by_p50 = [statistics.median(r[API]) / statistics.median(r[base]) for r in rounds]
        print(f"authenticated GET / {base}: mean {spread(by_mean)}; p50 {spread(by_p50)}")


if __name__ == "__main__":
    main()

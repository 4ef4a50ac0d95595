"""What an authenticated API call costs beyond the service work it wraps, on PostgreSQL.

    .venv/bin/python -m bench.request_overhead [--requests 300] [--runs 5]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), one partner with an Admin agent
and a customer. ``partnercenter serve`` as it starts by default (granian, one worker per
core). In every round (``--runs``, interleaved), one client, one request after the other:

1. **trivial authenticated GET**: ``GET /v1/customers/{id}`` with a bearer token, over one
   kept-alive HTTP/1.1 connection (``http.client``): the token, user, tenant and roles
   resolved (one statement), the role checked, the customer read, its JSON written;
2. **the service alone**: the same work without HTTP or authentication, in this process: a
   session from the pool, ``customers.services.get_customer``, the customer's JSON
   (``customers.api.customer_out``), the session closed;
3. **GET /healthz** over the same kind of connection: HTTP and the middleware only, no
   database (for reference).

Prints the mean and p50 of each (ms) with min / median / max over the rounds, and the ratios
authenticated GET / service alone, within each round, with the load average. The bench's
own process runs the client and the service: both are as starved of CPU as the server when
the machine is loaded. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from bench.common import bearer, load_average, seeded_database, serve, spread, timed
from partnercenter.customers import services as customers
from partnercenter.customers.api import customer_out
from partnercenter.db import make_session_factory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rounds: list[dict[str, list[float]]] = []
    loads = [load_average()]
    with seeded_database(keys=1) as db, serve(db.url, db.data_dir, []) as base:
        ids = db.ids
        factory = make_session_factory(db.engine)
        with httpx.Client(base_url=base) as client:
            auth = bearer(client)
        split = urlsplit(base)
        conn = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port)
        customer_path = f"/v1/customers/{ids['customer']}"

        def get(path: str, headers: dict[str, str]) -> None:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
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
            "trivial authenticated GET (HTTP)": lambda: get(customer_path, auth),
            "the service alone (in process)": service,
            "GET /healthz (HTTP, no database)": lambda: get("/healthz", {}),
        }
        for _ in range(args.runs):
            rounds.append(
                {name: timed(args.requests, call, warmup=10) for name, call in cases.items()}
            )
            loads.append(load_average())
        conn.close()
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
    api, alone, _ = list(rounds[0])
    by_mean = [statistics.fmean(r[api]) / statistics.fmean(r[alone]) for r in rounds]
    by_p50 = [statistics.median(r[api]) / statistics.median(r[alone]) for r in rounds]
    print(f"\nauthenticated GET / service alone: mean {spread(by_mean)}; p50 {spread(by_p50)}")


if __name__ == "__main__":
    main()

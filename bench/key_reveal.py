"""Get Key latency beside a trivial authenticated GET on the same server, and the service alone.

    .venv/bin/python -m bench.key_reveal [--requests 200] [--runs 3]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``), the demo catalog, a partner
whose Admin agent bought Windows Server 2022 Standard once (a key from inventory).
``partnercenter serve`` as it starts by default (granian, one worker per core). In every
round (``--runs``, interleaved), one client sends, one after the other:

1. ``--requests`` times ``GET /v1/customers/{id}`` (bearer token, roles, the customer: the
   trivial authenticated GET);
2. ``--requests`` times ``POST .../software/{item}/key`` (the key revealed, audited, committed);
3. the service alone, in this process: ``licensing.services.get_key`` in a session and
   committed, ``--requests`` times: the work the API call wraps, without HTTP or auth.

Prints p50 / p99 of each with min / median / max over the rounds, the ratios Get Key /
trivial GET and HTTP Get Key / service alone, and the load average. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.checkout import KEK, SECRET, SOFTWARE, scratch_database, seed, serve
from partnercenter import migrate
from partnercenter.config import Settings
from partnercenter.context import Actor
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.services import actor_for
from partnercenter.licensing import services as licensing


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}" for v in (min(values), statistics.median(values), max(values)))


def load_average() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(n: int, call: Any) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rounds: list[dict[str, list[float]]] = []
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        settings = Settings(
            data_dir=Path(tmp), database_url=url, secret_key=SECRET, key_encryption_key=KEK
        )
        ids = seed(engine, settings, keys=10)
        factory = make_session_factory(engine)
        with serve(url, Path(tmp), []) as base, httpx.Client(base_url=base, timeout=60) as c:
            token = c.post(
                "/v1/auth/token",
                data={
                    "grant_type": "password",
                    "username": "agent@bench.example",
                    "password": "bench-password-123",
                },
            ).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            customer = ids["customer"]
            cart = c.post(
                f"/v1/customers/{customer}/carts",
                json={"lineItems": [{"catalogItemId": SOFTWARE, "quantity": 1}]},
                headers=auth,
            ).json()["id"]
            c.post(f"/v1/customers/{customer}/carts/{cart}/checkout", headers=auth)
            items = c.get(f"/v1/customers/{customer}/software", headers=auth).json()["items"]
            item = items[0]["id"]
            key_url = f"/v1/customers/{customer}/software/{item}/key"
            assert c.post(key_url, json={}, headers=auth).status_code == 200
            with factory() as session:
                user = session.get(User, ids["user"])
                assert user is not None
                actor: Actor = actor_for(user)

            def service() -> None:
                with factory() as session:
                    tenant = session.get(Tenant, customer)
                    assert tenant is not None
                    licensing.get_key(
                        session, settings=settings, actor=actor, customer=tenant,
                        item_id=item, version=None, now=datetime.now(UTC),
                    )  # fmt: skip
                    session.commit()

            def trivial() -> None:
                assert c.get(f"/v1/customers/{customer}", headers=auth).status_code == 200

            def reveal() -> None:
                assert c.post(key_url, json={}, headers=auth).status_code == 200

            for _ in range(args.runs):
                rounds.append(
                    {
                        "trivial authenticated GET": timed(args.requests, trivial),
                        "Get Key (HTTP)": timed(args.requests, reveal),
                        "Get Key service alone": timed(args.requests, service),
                    }
                )
                loads.append(load_average())
        engine.dispose()
    print(
        f"\n{args.requests} sequential requests per kind per round, {args.runs} interleaved "
        f"rounds; load average (1/5/15 min) before and after each round: {'; '.join(loads)}\n"
    )
    print("| call | p50 ms min / median / max | p99 ms min / median / max |")
    print("|---|---|---|")
    for name in rounds[0]:
        p50 = [percentile(r[name], 50) for r in rounds]
        p99 = [percentile(r[name], 99) for r in rounds]
        print(f"| {name} | {spread(p50)} | {spread(p99)} |")
    key, get, alone = "Get Key (HTTP)", "trivial authenticated GET", "Get Key service alone"
    print()
    for label, a, b in (
        ("Get Key / trivial GET", key, get),
        ("Get Key HTTP / service alone", key, alone),
    ):
        r50 = [percentile(r[a], 50) / percentile(r[b], 50) for r in rounds]
        r99 = [percentile(r[a], 99) / percentile(r[b], 99) for r in rounds]
        print(f"{label}: p50 {spread(r50)}; p99 {spread(r99)}")


if __name__ == "__main__":
    main()

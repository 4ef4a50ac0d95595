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
from datetime import UTC, datetime

import httpx

from bench.checkout import SOFTWARE
from bench.common import bearer, load_average, percentile, seeded_database, serve, spread, timed
from partnercenter.context import Actor
from partnercenter.db import make_session_factory
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.services import actor_for
from partnercenter.licensing import services as licensing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rounds: list[dict[str, list[float]]] = []
    loads = [load_average()]
    with (
        seeded_database(keys=10) as db,
        serve(db.url, db.data_dir, []) as base,
        httpx.Client(base_url=base, timeout=60) as c,
    ):
        settings, ids = db.settings, db.ids
        factory = make_session_factory(db.engine)
        auth = bearer(c)
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

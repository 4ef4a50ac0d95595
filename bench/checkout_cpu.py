"""CPU time of one checkout in process, on PostgreSQL, as the API route runs it (no HTTP).

    .venv/bin/python -m bench.checkout_cpu [--orders 300] [--warmup 30] [--batches 5] [--profile]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``, as ``bench.checkout``), the
demo catalog, one partner with an Admin agent and a bearer token, one customer, and
``--orders`` 2-line carts (the same two lines as ``bench.checkout``) made beforehand, untimed.
Each checkout is what ``POST .../carts/{id}/checkout`` does on the server, one after the other
on one connection: a session from the pool, the bearer token resolved (the authentication
statement), ``orders.services.checkout`` with an ``MS-RequestId``, the response remembered
(``idempotency.remember``) and the commit.

Prints the process's CPU time (``time.process_time``: user + system of this process, so
PostgreSQL's own work is not in it) and the wall time per checkout, min / median / max over
``--batches`` batches, the statements per checkout, and the load average. ``--profile`` runs
the timed checkouts under ``cProfile`` (timed by CPU, not wall) as well and prints the 35
functions with the most cumulative CPU time (the CPU figures then include the profiler's);
``--stats FILE`` saves it for ``pstats``. Nothing is asserted; to compare two versions of the
code, run this script from each checkout in turn, several times.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.checkout import AZURE, KEK, SECRET, SOFTWARE, scratch_database, seed
from partnercenter import idempotency, migrate
from partnercenter.config import Settings
from partnercenter.context import RequestInfo
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.orders import services as orders


def spread(values: list[float]) -> str:
    """min / median / max."""
    return " / ".join(f"{v:.2f}" for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--orders", type=int, default=300, help="timed checkouts")
    parser.add_argument("--warmup", type=int, default=30, help="untimed checkouts first")
    parser.add_argument("--batches", type=int, default=5, help="the timed ones split in")
    parser.add_argument("--profile", action="store_true", help="print a cProfile as well")
    parser.add_argument("--stats", help="with --profile: also save the profile to this file")
    args = parser.parse_args()
    loads = [" / ".join(f"{x:.1f}" for x in os.getloadavg())]
    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        engine = make_engine(url, pool_size=2)
        migrate.upgrade(engine)
        settings = Settings(
            data_dir=Path(tmp), database_url=url, secret_key=SECRET, key_encryption_key=KEK
        )
        total = args.warmup + args.orders
        ids = seed(engine, settings, keys=total + 10)
        factory = make_session_factory(engine)
        now = datetime.now(UTC)
        with factory() as session:
            user = session.get(User, ids["user"])
            customer = session.get(Tenant, ids["customer"])
            assert user is not None and customer is not None
            secret, _ = identity.issue_token(session, user=user, now=now)
            actor = identity.actor_for(user)
            lines = [
                {"catalogItemId": SOFTWARE, "quantity": 1},
                {"catalogItemId": AZURE, "quantity": 2},
            ]
            carts = [
                orders.create_cart(session, actor=actor, customer=customer, lines=lines, now=now).id
                for _ in range(total)
            ]
            session.commit()

        statements = [0]

        @event.listens_for(engine, "before_cursor_execute")
        def count(*_: Any) -> None:
            statements[0] += 1

        info = RequestInfo("127.0.0.1", "bench", "bench-correlation")
        path = f"/v1/customers/{ids['customer']}/carts/{{}}/checkout"

        def one(cart_id: uuid.UUID) -> None:
            at = datetime.now(UTC)
            with factory() as session:
                actor = identity.resolve_token_actor(session, secret=secret, now=at)
                assert actor is not None
                key = idempotency.request_key(
                    tenant_id=actor.tenant_id,
                    request_id=str(uuid.uuid4()),
                    method="POST",
                    path=path.format(cart_id),
                    raw_body=b"",
                )
                assert key is not None
                result = orders.checkout(
                    session,
                    settings=settings,
                    actor=actor,
                    customer=ids["customer"],
                    cart_id=cart_id,
                    now=at,
                    request=info,
                )
                idempotency.remember(session, key, status_code=201, body=result, now=at)
                session.commit()

        for cart_id in carts[: args.warmup]:
            one(cart_id)
        timed = carts[args.warmup :]
        size = max(1, len(timed) // args.batches)
        cpu: list[float] = []
        wall: list[float] = []
        profiler = cProfile.Profile(time.process_time) if args.profile else None
        statements[0] = 0
        for start in range(0, len(timed), size):
            batch = timed[start : start + size]
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            for cart_id in batch:
                one(cart_id)
            if profiler:
                profiler.disable()
            cpu.append((time.process_time() - c0) * 1000 / len(batch))
            wall.append((time.perf_counter() - w0) * 1000 / len(batch))
        loads.append(" / ".join(f"{x:.1f}" for x in os.getloadavg()))
        engine.dispose()
    print(
        f"{len(timed)} timed checkouts (2 lines) in {len(cpu)} batches after {args.warmup} "
        f"untimed; load average (1/5/15 min) before / after: {'; '.join(loads)}"
    )
    print(f"CPU ms per checkout min / median / max: {spread(cpu)}")
    print(f"wall ms per checkout min / median / max: {spread(wall)}")
    print(
        f"statements per checkout (authentication, checkout, request id; BEGIN/COMMIT not "
        f"counted): {statements[0] / len(timed):.2f}"
    )
    if profiler:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        if args.stats:
            profiler.dump_stats(args.stats)


if __name__ == "__main__":
    main()

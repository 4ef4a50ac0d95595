"""CPU time of one checkout in process, on PostgreSQL, as the API route runs it (no HTTP).

    .venv/bin/python -m bench.checkout_cpu [--orders 300] [--warmup 30] [--batches 5] [--profile]
    .venv/bin/python -m bench.checkout_cpu --asgi [...]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``, as ``bench.checkout``), the
demo catalog, one partner with an Admin agent and a bearer token, one customer, and
``--orders`` 2-line carts (the same two lines as ``bench.checkout``) made beforehand, untimed.
Each checkout is what ``POST .../carts/{id}/checkout`` does on the server, one after the other
on one connection: a session from the pool, the bearer token resolved (the authentication
statement), ``orders.services.checkout`` with an ``MS-RequestId``, the response remembered
(``idempotency.remember``) and the commit.

``--asgi`` instead sends each checkout through the whole application (``create_app``) in this
process, as a server calls it: one ASGI ``POST .../checkout`` with the bearer token and an
``MS-RequestId``, on an asyncio loop, no sockets and no HTTP parsing (what the server itself
adds is not in it). The route then runs in the thread pool as under ``partnercenter serve``;
the access log goes to a temporary file. Each answer must be 201.

Prints the process's CPU time (``time.process_time``: user + system of this process, so
PostgreSQL's own work is not in it) and the wall time per checkout, min / median / max over
``--batches`` batches, the statements per checkout, and the load average. ``--profile`` runs
the timed checkouts under ``cProfile`` (timed by CPU, not wall) as well and prints the 35
functions with the most cumulative CPU time (the CPU figures then include the profiler's);
``--stats FILE`` saves it for ``pstats``; with ``--asgi`` the profile takes each thread's own
CPU time and covers the worker threads as well. Nothing is asserted; to compare two versions of the
code, run this script from each checkout in turn, several times.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio.to_thread
from sqlalchemy import event

from bench.checkout import AZURE, KEK, SECRET, SOFTWARE, scratch_database, seed
from partnercenter import idempotency, migrate
from partnercenter.app import create_app
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
    parser.add_argument("--top", type=int, default=35, help="with --profile: lines printed")
    parser.add_argument(
        "--asgi", action="store_true", help="through the whole application (ASGI, no sockets)"
    )
    args = parser.parse_args()
    loads = [" / ".join(f"{x:.1f}" for x in os.getloadavg())]
    with (
        tempfile.TemporaryDirectory() as tmp,
        scratch_database() as url,
        contextlib.ExitStack() as stack,
    ):
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

        def run(batch: list[uuid.UUID]) -> None:
            for cart_id in batch:
                one(cart_id)

        loop = asyncio.new_event_loop()
        if args.asgi:
            log = stack.enter_context(open(Path(tmp) / "access.log", "w"))
            with contextlib.redirect_stderr(log):
                app = create_app(settings, session_factory=factory)  # its log handler: the file
            headers = [
                (b"host", b"bench"),
                (b"authorization", f"Bearer {secret}".encode()),
                (b"content-length", b"0"),
            ]

            async def posts(batch: list[uuid.UUID]) -> None:
                for cart_id in batch:
                    await asgi_post(app, path.format(cart_id), headers, str(uuid.uuid4()))

            def run_asgi(batch: list[uuid.UUID]) -> None:
                # One task per batch, as a server's loop runs on: anyio's worker threads stop
                # when the task they were started from ends (once per batch, not per request).
                loop.run_until_complete(posts(batch))

            run = run_asgi
        run(carts[: args.warmup])
        timed = carts[args.warmup :]
        size = max(1, len(timed) // args.batches)
        cpu: list[float] = []
        wall: list[float] = []
        # Each thread's own CPU time: the event loop's profiler must not count, as time spent
        # waiting in epoll, the CPU of the worker thread that runs the route meanwhile.
        profiler = cProfile.Profile(time.thread_time) if args.profile else None
        worker_profiler = cProfile.Profile(time.thread_time)
        if args.profile and args.asgi:
            profile_worker_threads(worker_profiler)
        statements[0] = 0
        for start in range(0, len(timed), size):
            batch = timed[start : start + size]
            c0, w0 = time.process_time(), time.perf_counter()
            if profiler:
                profiler.enable()
            run(batch)
            if profiler:
                profiler.disable()
            cpu.append((time.process_time() - c0) * 1000 / len(batch))
            wall.append((time.perf_counter() - w0) * 1000 / len(batch))
        loads.append(" / ".join(f"{x:.1f}" for x in os.getloadavg()))
        loop.close()
        engine.dispose()
    print(
        f"{'ASGI, ' if args.asgi else ''}{len(timed)} timed checkouts (2 lines) in {len(cpu)} "
        f"batches after {args.warmup} untimed; load average (1/5/15 min) before / after: "
        f"{'; '.join(loads)}"
    )
    print(f"CPU ms per checkout min / median / max: {spread(cpu)}")
    print(f"wall ms per checkout min / median / max: {spread(wall)}")
    print(
        f"statements per checkout (authentication, checkout, request id; BEGIN/COMMIT not "
        f"counted): {statements[0] / len(timed):.2f}"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        if args.asgi:
            stats.add(worker_profiler)
        stats.sort_stats("cumulative").print_stats(args.top)
        if args.stats:
            stats.dump_stats(args.stats)


def profile_worker_threads(profiler: cProfile.Profile) -> None:
    """Profile what runs in anyio's worker threads (sync routes and dependencies) too.

    cProfile sees only the thread that enabled it: each call handed to a worker thread is
    wrapped to enable ``profiler`` there while it runs (one at a time: the bench sends one
    request after the other).
    """
    original = anyio.to_thread.run_sync

    async def run_sync(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        def profiled(*inner: Any) -> Any:
            profiler.enable()
            try:
                return func(*inner)
            finally:
                profiler.disable()

        return await original(profiled, *args, **kwargs)

    anyio.to_thread.run_sync = run_sync  # type: ignore[assignment]


async def asgi_post(
    app: Any, path: str, headers: list[tuple[bytes, bytes]], request_id: str
) -> None:
    """One ``POST path`` with no body through the ASGI ``app``; RuntimeError unless 201."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"ms-requestid", request_id.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    answer: list[Any] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)  # the client stays connected
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        answer.append(message)

    await app(scope, receive, send)
    status = answer[0]["status"] if answer else None
    if status != 201:
        body = b"".join(m.get("body", b"") for m in answer[1:])
        print(body.decode(errors="replace"), file=sys.stderr)
        raise RuntimeError(f"checkout answered {status}")


if __name__ == "__main__":
    main()

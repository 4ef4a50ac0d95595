"""Load and a hard fault on PostgreSQL: a live server killed with SIGKILL mid-load, restarted.

``partnercenter serve`` runs with two worker processes on a loopback port against a fresh
PostgreSQL database with the demo loaded. Client threads send checkouts (cart, then
checkout with an ``MS-RequestId``), cancellations of their own orders and downloads for a
bounded time; then the whole server (its process group) is killed with SIGKILL while
requests are in flight, and started again on the same port. A checkout whose answer was
lost is retried after the restart with the same ``MS-RequestId``, as a client would.

Afterwards no record is partial: every order has lines, each line its ``new`` charge and an
entitlement, every order its ``create_order`` activity record, every reserved key an order
line and entitlement that name it, every cancelled line its credit and record, every
ordered cart one order; ``partnercenter billing verify`` and ``audit verify`` pass. The
figures (requests, successes, answers by status, connection errors, time) are printed.
Bounded: ``LOAD_SECONDS`` of load before the kill and as many after the restart,
``THREADS`` clients.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.db import make_engine, make_session_factory
from partnercenter.demo import DEMO_PASSWORD
from partnercenter.identity.models import Tenant
from partnercenter.orders.models import (
    Cart,
    CartStatus,
    Charge,
    ChargeType,
    Entitlement,
    EntitlementStatus,
    LineStatus,
    Order,
    OrderLine,
)
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.jobs.live import wait_for
from tests.live import committed_postgres
from tests.support.conftest import free_port

pytestmark = pytest.mark.postgres_only

LOAD_SECONDS = float(os.environ.get("PARTNERCENTER_LOAD_SECONDS", "10"))
THREADS = int(os.environ.get("PARTNERCENTER_LOAD_THREADS", "6"))
AGENT = "admin.agent@fabrikam.example"
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


@dataclass
class Figures:
    requests: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    connection_errors: Counter[str] = field(default_factory=Counter)
    retried_checkouts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, kind: str, status: int | None) -> None:
        with self.lock:
            self.requests[kind] += 1
            if status is None:
                self.connection_errors[kind] += 1
            else:
                self.statuses[(kind, status)] += 1


class Server:
    """``partnercenter serve --workers 2`` in its own process group, restartable."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "partnercenter.cli.main", "serve"),
                *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "2"),
            ],
            env=self.env,
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        assert wait_for(self._ready, seconds=90), self.log.read_text()[-3000:]

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "partnercenter.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[Server, dict[str, str]]]:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url:
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "PARTNERCENTER_DATA_DIR": str(tmp_path / "data"),
            "PARTNERCENTER_SECRET_KEY": "load-secret-" + "s" * 40,
            "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
            "PARTNERCENTER_JOBS": "off",
            "PARTNERCENTER_LOG_JSON": "false",
        }
        loaded = _cli(env, "demo")
        assert loaded.returncode == 0, loaded.stderr
        live = Server(env, free_port(), tmp_path / "server.log")
        live.start()
        try:
            yield live, env
        finally:
            live.stop()


def _offers(client: httpx.Client, auth: dict[str, str], customer: str) -> list[str]:
    """Catalog item ids of the perpetual software sold to the customer, with keys."""
    found = []
    products = client.get(
        f"/v1/customers/{customer}/products",
        params={"targetView": "SoftwarePerpetual"},
        headers=auth,
    )
    assert products.status_code == 200, products.text
    for product in products.json()["items"][:2]:
        skus = client.get(
            f"/v1/products/{product['id']}/skus", params={"country": "US"}, headers=auth
        )
        for sku in skus.json()["items"][:2]:
            avails = client.get(
                f"/v1/products/{product['id']}/skus/{sku['id']}/availabilities",
                params={"country": "US"},
                headers=auth,
            )
            found += [a["catalogItemId"] for a in avails.json()["items"][:1]]
    assert found
    return found


class Client(threading.Thread):
    """One script client: buys, cancels some of what it bought, downloads what it owns."""

    def __init__(
        self,
        n: int,
        base: str,
        auth: dict[str, str],
        customer: str,
        offers: list[str],
        figures: Figures,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"client-{n}", daemon=True)
        self.random = random.Random(n)  # a load mix, not a secret
        self.http = httpx.Client(base_url=base, timeout=30)
        self.auth, self.customer, self.offers = auth, customer, offers
        self.figures, self.stop = figures, stop
        self.orders: list[str] = []
        self.lost_checkouts: list[tuple[str, str]] = []

    def send(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        try:
            answer = self.http.request(
                method, url, headers=self.auth | kwargs.pop("headers", {}), **kwargs
            )
        except httpx.HTTPError:
            self.figures.count(kind, None)
            self.stop.wait(0.5)  # the server is away: back off as a client would
            return None
        self.figures.count(kind, answer.status_code)
        return answer

    def checkout(self) -> None:
        base = f"/v1/customers/{self.customer}/carts"
        line = {"catalogItemId": self.random.choice(self.offers), "quantity": 1}
        cart = self.send("cart", "POST", base, json={"lineItems": [line]})
        if cart is None or cart.status_code != 201:
            return
        request_id = str(uuid.uuid4())
        url = f"{base}/{cart.json()['id']}/checkout"
        done = self.send("checkout", "POST", url, headers={"MS-RequestId": request_id})
        if done is None:
            self.lost_checkouts.append((url, request_id))
        elif done.status_code == 201:
            self.orders += [o["id"] for o in done.json()["orders"]]

    def cancel(self) -> None:
        order = self.orders.pop(self.random.randrange(len(self.orders)))
        self.send(
            "cancel",
            "PATCH",
            f"/v1/customers/{self.customer}/orders/{order}",
            json={"status": "cancelled"},
        )

    def download(self) -> None:
        software = self.send("software", "GET", f"/v1/customers/{self.customer}/software")
        if software is None or software.status_code != 200:
            return
        items = [
            i for i in software.json()["items"] if i.get("status") == "active" and i["versions"]
        ]
        if not items:
            return
        item = self.random.choice(items)
        version = item["versions"][0]
        self.send(
            "download",
            "GET",
            f"/v1/customers/{self.customer}/software/{item['id']}/download",
            params={
                "version": version["version"],
                "language": version["languages"][0],
                "bitness": version["bitness"][0],
            },
        )

    def run(self) -> None:
        while not self.stop.is_set():
            roll = self.random.random()
            if roll < 0.45:
                self.checkout()
            elif roll < 0.65 and self.orders:
                self.cancel()
            else:
                self.download()

    def retry_lost(self) -> None:
        for url, request_id in self.lost_checkouts:
            self.figures.retried_checkouts += 1
            self.send("checkout retry", "POST", url, headers={"MS-RequestId": request_id})


def _partial_records(url: str) -> dict[str, int]:
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        order_ids = set(s.execute(select(Order.id)).scalars())
        lines = list(s.execute(select(OrderLine)).scalars())
        new_charges = set(
            s.execute(
                select(Charge.order_line_id).where(Charge.charge_type == ChargeType.NEW)
            ).scalars()
        )
        cancel_charges = set(
            s.execute(
                select(Charge.order_line_id).where(Charge.charge_type == ChargeType.CANCEL)
            ).scalars()
        )
        entitlements = {e.order_line_id: e for e in s.execute(select(Entitlement)).scalars()}
        recorded = {
            (r.operation_type, r.details.get("orderId"))
            for r in s.execute(
                select(AuditRecord).where(
                    AuditRecord.operation_type.in_(["create_order", "cancel_order"])
                )
            ).scalars()
        }
        reserved = list(
            s.execute(select(ProductKey).where(ProductKey.status == KeyStatus.RESERVED)).scalars()
        )
        keyed = {e.product_key_id for e in entitlements.values() if e.product_key_id}
        line_ids = {str(line.id) for line in lines}
        ordered_carts = set(
            s.execute(select(Cart.id).where(Cart.status == CartStatus.ORDERED)).scalars()
        )
        orders_per_cart = dict(
            s.execute(select(Order.cart_id, func.count()).group_by(Order.cart_id)).tuples().all()
        )
        cancelled = [line for line in lines if line.status == LineStatus.CANCELLED]
        partial = {
            "orders without lines": len(order_ids - {line.order_id for line in lines}),
            "lines without their new charge": sum(1 for li in lines if li.id not in new_charges),
            "lines without an entitlement": sum(1 for li in lines if li.id not in entitlements),
            "orders without a create_order record": sum(
                1 for o in order_ids if ("create_order", str(o)) not in recorded
            ),
            "keys reserved without an order line": sum(
                1 for k in reserved if k.order_line_ref not in line_ids
            ),
            "keys reserved without an entitlement": sum(1 for k in reserved if k.id not in keyed),
            "cancelled lines without a credit": sum(
                1 for li in cancelled if li.id not in cancel_charges
            ),
            "cancelled lines without a cancel_order record": sum(
                1 for li in cancelled if ("cancel_order", str(li.order_id)) not in recorded
            ),
            "cancelled lines with an active entitlement": sum(
                1 for li in cancelled if entitlements[li.id].status != EntitlementStatus.CANCELLED
            ),
            "ordered carts without exactly one order": sum(
                1 for c in ordered_carts if orders_per_cart.get(c, 0) != 1
            ),
            "orders of a cart not ordered": sum(
                1 for c in orders_per_cart if c not in ordered_carts
            ),
        }
        totals = {
            "orders": len(order_ids),
            "lines": len(lines),
            "cancelled lines": len(cancelled),
            "keys reserved": len(reserved),
        }
    engine.dispose()
    return partial | {f"(total {k})": v for k, v in totals.items()}


def test_a_server_killed_under_load_and_restarted_leaves_no_partial_record(
    server: tuple[Server, dict[str, str]],
) -> None:
    live, env = server
    with httpx.Client(base_url=live.url, timeout=30) as setup:
        grant = setup.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": AGENT, "password": DEMO_PASSWORD},
        )
        assert grant.status_code == 200, grant.text
        auth = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        engine = make_engine(env["DATABASE_URL"])
        with make_session_factory(engine)() as s:
            customer = str(
                s.execute(select(Tenant.id).where(Tenant.name == "Contoso Ltd")).scalar_one()
            )
        engine.dispose()
        offers = _offers(setup, auth, customer)

    figures = Figures()
    stop = threading.Event()
    started = time.monotonic()
    clients = [Client(n, live.url, auth, customer, offers, figures, stop) for n in range(THREADS)]
    for c in clients:
        c.start()
    time.sleep(LOAD_SECONDS)
    live.kill()  # every worker, mid-request
    killed_at = time.monotonic() - started
    live.start()
    restarted_at = time.monotonic() - started
    time.sleep(LOAD_SECONDS)  # the same load on the restarted server
    stop.set()
    for c in clients:
        c.join(timeout=120)
        assert not c.is_alive()
    for c in clients:
        c.retry_lost()
    elapsed = time.monotonic() - started

    partial = _partial_records(env["DATABASE_URL"])
    billing = _cli(env, "billing", "verify")
    audit = _cli(env, "audit", "verify")
    total = sum(figures.requests.values())
    ok = sum(n for (_, status), n in figures.statuses.items() if status < 400)
    by_status: Counter[int] = Counter()
    for (_, status), n in figures.statuses.items():
        by_status[status] += n
    print(
        f"\nload and fault: {THREADS} clients, {elapsed:.1f} s (killed at {killed_at:.1f} s, "
        f"serving again at {restarted_at:.1f} s); {total} requests, {ok} succeeded; "
        f"answers by status {dict(sorted(by_status.items()))}; connection errors "
        f"{dict(figures.connection_errors)}; lost checkouts retried "
        f"{figures.retried_checkouts}\n  by kind and status: "
        f"{dict(sorted(figures.statuses.items()))}\n  records: {partial}\n"
        f"  billing verify: {billing.stdout.strip() or billing.stderr.strip()}\n"
        f"  audit verify: {audit.stdout.strip() or audit.stderr.strip()}"
    )
    assert {k: v for k, v in partial.items() if not k.startswith("(") and v} == {}
    assert partial["(total orders)"] > 0
    assert not [s for s in by_status if s >= 500], by_status
    assert billing.returncode == 0, billing.stdout + billing.stderr
    assert audit.returncode == 0, audit.stdout + audit.stderr

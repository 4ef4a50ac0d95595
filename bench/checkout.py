"""Orders per second through the HTTP API on PostgreSQL, beside the same writes in plain SQL.

    .venv/bin/python -m bench.checkout [--orders 200] [--clients 8] [--runs 5]
    .venv/bin/python -m bench.checkout --history 10000 [--orders 200] [--runs 5]
    .venv/bin/python -m bench.checkout --stock 1000,100000,1000000 [--runs 5]

One throwaway PostgreSQL database (``PARTNERCENTER_TEST_PG_URL``, default
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), the demo catalog, one partner:

1. **HTTP API, default server**: ``partnercenter serve`` as it starts by default (granian, one
   worker per core); ``--clients`` threads each check out their own carts with
   ``POST .../checkout`` and an ``MS-RequestId``: 2 lines per order (Windows Server 2022
   Standard with a product key from inventory, and an Azure reservation). Carts are created
   over the API beforehand, untimed.
2. **HTTP API, uvicorn 1 worker**: ``partnercenter serve --server uvicorn --workers 1``, the
   previous default, for comparison.
3. **plain SQL**: the same clients write the same rows per order with SQLAlchemy Core on one
   connection each, in one transaction: lock the cart, take a key (``FOR UPDATE SKIP
   LOCKED``), insert the order, 2 lines, 2 charges, the entitlement, the activity record
   (chain head locked and moved) and the idempotency row, mark the cart ordered.

The three are measured in turn in every round (``--runs`` rounds, interleaved, so a change of
the machine's load hits all of them); the ratios are taken within a round and printed as
min / median / max with the load average. Both paths serialise on the partner's activity-log
chain head, as the application does.

``--history N`` instead checks out, through the default server, for two customers of the
same partner in turn in every round: one with no orders, one with ``N`` prior orders (each
with a line and a charge, written in plain SQL beforehand); prints the orders/s of each and
their ratio within a round. A checkout reads nothing of the customer's history, so it
stays flat.

``--stock`` instead times one key reservation (``catalog.reserve_key``, rolled back) with that
many available keys of one SKU, interleaved across the sizes, and prints the plan PostgreSQL
chose: one probe of the partial index on available keys, flat whatever the stock.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, insert, select, text, update

# Other benches import the names given ``as`` themselves from here, where they were first
# written: the explicit re-export keeps them importable.
from bench.common import ADMIN_URL as ADMIN_URL
from bench.common import KEK as KEK
from bench.common import PASSWORD as PASSWORD
from bench.common import SECRET as SECRET
from bench.common import SERVER_PIDS as SERVER_PIDS
from bench.common import bearer, seeded_database
from bench.common import free_port as free_port
from bench.common import group_cpu_seconds as group_cpu_seconds
from bench.common import load_average as load_average
from bench.common import scratch_database as scratch_database
from bench.common import seed as seed
from bench.common import serve as serve
from bench.common import spread as spread
from partnercenter import migrate
from partnercenter.audit.models import AuditChainHead, AuditRecord
from partnercenter.catalog import demo as catalog_demo
from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.idempotency import IdempotencyKey
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant
from partnercenter.orders.models import Cart, Charge, Entitlement, Order, OrderLine
from partnercenter.permissions import TenantKind

SOFTWARE = "DG7GMGF0D7FV:0001:USD-PERP-OT"
AZURE = "DZH318Z0BQ3Q:00VQ:USD-P1Y-OT"


def run_clients(clients: int, jobs: list[Any], work: Callable[[list[Any]], None]) -> float:
    """Split ``jobs`` over ``clients`` threads; returns the wall time in seconds."""
    shares = [jobs[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        list(pool.map(work, shares))
    return time.perf_counter() - started


def prepare_carts(base: str, ids: dict[str, Any], orders: int) -> tuple[dict[str, str], list[str]]:
    """A bearer token and ``orders`` fresh 2-line carts, made over the API (untimed)."""
    with httpx.Client(base_url=base, timeout=60) as c:
        auth = bearer(c)
        body = {"lineItems": [{"catalogItemId": SOFTWARE, "quantity": 1},
                              {"catalogItemId": AZURE, "quantity": 2}]}  # fmt: skip
        carts = []
        for _ in range(orders):
            r = c.post(f"/v1/customers/{ids['customer']}/carts", json=body, headers=auth)
            r.raise_for_status()
            carts.append(r.json()["id"])
    return auth, carts


def http_rate(base: str, ids: dict[str, Any], orders: int, clients: int) -> float:
    auth, carts = prepare_carts(base, ids, orders)

    def work(share: list[str]) -> None:
        with httpx.Client(base_url=base, timeout=60) as client:
            for cart_id in share:
                r = client.post(
                    f"/v1/customers/{ids['customer']}/carts/{cart_id}/checkout",
                    headers={**auth, "MS-RequestId": str(uuid.uuid4())},
                )
                if r.status_code != 201:
                    raise RuntimeError(r.text)

    before = group_cpu_seconds(SERVER_PIDS[base])
    rate = orders / run_clients(clients, carts, work)
    CPU_MS_PER_ORDER.append((group_cpu_seconds(SERVER_PIDS[base]) - before) * 1000 / orders)
    return rate


CPU_MS_PER_ORDER: list[float] = []  # the server's CPU of the last http_rate calls


def sql_rate(engine: Engine, ids: dict[str, Any], orders: int, clients: int) -> float:
    """The checkout's writes without HTTP or the ORM: SQLAlchemy Core on plain connections."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        sku_pk = conn.execute(
            text(
                "SELECT id FROM catalog_skus WHERE product_id = 'DG7GMGF0D7FV' AND sku_id = '0001'"
            )
        ).scalar_one()
        carts = [uuid.uuid4() for _ in range(orders)]
        conn.execute(
            insert(Cart.__table__),
            [
                {"id": cid, "partner_id": ids["partner"], "customer_id": ids["customer"],
                 "created_by": ids["user"], "status": "active", "line_items": [],
                 "created_at": now, "updated_at": now, "expires_at": now + timedelta(days=7)}
                for cid in carts
            ],
        )  # fmt: skip
    chain = str(ids["partner"])
    line_tpl = {
        "catalog_item_id": SOFTWARE, "product_id": "DG7GMGF0D7FV", "sku_id": "0001",
        "availability_id": "USD-PERP-OT", "sku_pk": sku_pk, "product_type": "perpetual_software",
        "product_title": "Windows Server 2022", "sku_title": "Standard", "quantity": 1,
        "term_duration": None, "billing_cycle": "one_time", "currency": "USD",
        "unit_net_minor": 106900, "unit_tax_minor": 0, "unit_gross_minor": 106900,
        "net_minor": 106900, "tax_minor": 0, "gross_minor": 106900, "status": "active",
        "purchased_at": now, "cancellation_policy": {"windowDays": 30}, "cancelled_at": None,
    }  # fmt: skip

    def one(conn: Any, cart_id: uuid.UUID) -> None:
        conn.execute(
            select(Cart.__table__.c.id).where(Cart.__table__.c.id == cart_id).with_for_update()
        )
        key_id = conn.execute(
            select(ProductKey.__table__.c.id)
            .where(ProductKey.__table__.c.sku_pk == sku_pk,
                   ProductKey.__table__.c.version == "2022",
                   ProductKey.__table__.c.status == KeyStatus.AVAILABLE.value)
            .limit(1).with_for_update(skip_locked=True)
        ).scalar_one()  # fmt: skip
        order_id, l0, l1 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        conn.execute(
            update(ProductKey.__table__).where(ProductKey.__table__.c.id == key_id)
            .values(status="reserved", reserved_at=now, order_line_ref=str(l0))
        )  # fmt: skip
        conn.execute(insert(Order.__table__).values(
            id=order_id, partner_id=ids["partner"], customer_id=ids["customer"], cart_id=cart_id,
            created_by=ids["user"], status="completed", currency="USD", market="US",
            tax_included=False, net_minor=227500, tax_minor=0, gross_minor=227500, created_at=now,
        ))  # fmt: skip
        conn.execute(insert(OrderLine.__table__), [
            {**line_tpl, "id": l0, "order_id": order_id, "line_number": 0},
            {**line_tpl, "id": l1, "order_id": order_id, "line_number": 1,
             "catalog_item_id": AZURE, "quantity": 2},
        ])  # fmt: skip
        conn.execute(insert(Charge.__table__), [
            {"id": uuid.uuid4(), "partner_id": ids["partner"], "customer_id": ids["customer"],
             "order_id": order_id, "order_line_id": lid, "charge_type": "new", "currency": "USD",
             "net_minor": 1, "tax_minor": 0, "gross_minor": 1, "quantity": 1,
             "billing_month": now.strftime("%Y-%m"), "created_at": now}
            for lid in (l0, l1)
        ])  # fmt: skip
        conn.execute(insert(Entitlement.__table__).values(
            id=uuid.uuid4(), partner_id=ids["partner"], customer_id=ids["customer"],
            order_id=order_id, order_line_id=l0, product_id="DG7GMGF0D7FV", sku_pk=sku_pk,
            product_key_id=key_id, status="active", created_at=now,
        ))  # fmt: skip
        result = {"orders": [{"id": str(order_id)}], "orderErrors": []}
        conn.execute(
            update(Cart.__table__).where(Cart.__table__.c.id == cart_id)
            .values(status="ordered", checkout_result=result, updated_at=now)
        )  # fmt: skip
        conn.execute(text(
            "INSERT INTO audit_chain_heads (chain_key, seq, last_hash) VALUES (:k, 0, :h) "
            "ON CONFLICT DO NOTHING"), {"k": chain, "h": "0" * 64})  # fmt: skip
        head = conn.execute(
            select(AuditChainHead.__table__).where(AuditChainHead.__table__.c.chain_key == chain)
            .with_for_update()
        ).one()  # fmt: skip
        digest = hashlib.sha256(json.dumps(result).encode() + head.last_hash.encode()).hexdigest()
        conn.execute(insert(AuditRecord.__table__).values(
            id=uuid.uuid4(), tenant_id=ids["partner"], chain_key=chain, seq=head.seq + 1,
            occurred_at=now, user_id=ids["user"], user_principal_name="agent@bench.example",
            customer_id=ids["customer"], customer_name="Bench Customer", resource_type="order",
            operation_type="create_order", status="succeeded", details=result,
            prev_hash=head.last_hash, hash=digest,
        ))  # fmt: skip
        conn.execute(
            update(AuditChainHead.__table__).where(AuditChainHead.__table__.c.chain_key == chain)
            .values(seq=head.seq + 1, last_hash=digest)
        )  # fmt: skip
        conn.execute(insert(IdempotencyKey.__table__).values(
            id=uuid.uuid4(), tenant_id=ids["partner"], request_id=str(uuid.uuid4()),
            method_path="POST /bench", body_hash="0" * 64, status_code=201,
            response_body=result, created_at=now,
        ))  # fmt: skip

    def work(share: list[uuid.UUID]) -> None:
        with engine.connect() as conn:
            for cart_id in share:
                with conn.begin():
                    one(conn, cart_id)

    before = time.process_time()
    rate = orders / run_clients(clients, carts, work)
    CPU_MS_PER_ORDER.append((time.process_time() - before) * 1000 / orders)
    return rate


SERVERS = {
    "HTTP API, default serve (granian, 1 worker per core)": [],
    "HTTP API, uvicorn, 1 worker": ["--server", "uvicorn", "--workers", "1"],
}


def throughput(args: argparse.Namespace) -> None:
    rounds: list[dict[str, float]] = []
    cpu: dict[str, list[float]] = {}
    loads: list[str] = [load_average()]
    modes = len(SERVERS) + 1
    keys = modes * args.runs * args.orders + 10
    with seeded_database(keys, pool_size=args.clients + 4) as db:
        engine, ids = db.engine, db.ids
        with contextlib.ExitStack() as stack:
            bases = {
                name: stack.enter_context(serve(db.url, db.data_dir, extra))
                for name, extra in SERVERS.items()
            }
            for _ in range(args.runs):
                figures = {}
                for name, base in bases.items():
                    figures[name] = http_rate(base, ids, args.orders, args.clients)
                    cpu.setdefault(name, []).append(CPU_MS_PER_ORDER[-1])
                figures["plain SQL (SQLAlchemy Core)"] = sql_rate(
                    engine, ids, args.orders, args.clients
                )
                cpu.setdefault("plain SQL (SQLAlchemy Core)", []).append(CPU_MS_PER_ORDER[-1])
                rounds.append(figures)
                loads.append(load_average())
    plain = "plain SQL (SQLAlchemy Core)"
    print(f"\n{args.orders} orders per path per round, 2 lines, {args.clients} clients, "
          f"{args.runs} interleaved rounds; load average (1/5/15 min) before and after each "
          f"round: {'; '.join(loads)}\n")  # fmt: skip
    print("| path | orders/s min / median / max | ratio to plain SQL min / median / max "
          "| CPU ms per order, median |")  # fmt: skip
    print("|---|---|---|---:|")
    for name in rounds[0]:
        rates = [r[name] for r in rounds]
        ratios = [r[name] / r[plain] for r in rounds]
        print(f"| {name} | {spread(rates)} | {spread(ratios)} | "
              f"{statistics.median(cpu[name]):.1f} |")  # fmt: skip
    print(
        "\n(CPU: the server's processes for the API paths; the bench's own process, which "
        "runs the plain SQL, for plain SQL. PostgreSQL's own CPU is in neither.)"
    )
    default, uvicorn = list(SERVERS)
    gains = [r[default] / r[uvicorn] for r in rounds]
    print(f"\ndefault serve / uvicorn 1 worker: {spread(gains)}")


def stock(args: argparse.Namespace) -> None:
    """Time one key reservation at each stock level, interleaved; print the plan."""
    from sqlalchemy.orm import Session

    levels = [int(x) for x in args.stock.split(",")]
    samples: dict[int, list[float]] = {n: [] for n in levels}
    loads = [load_average()]
    with tempfile.TemporaryDirectory() as tmp, scratch_database() as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        settings = Settings(
            data_dir=Path(tmp), database_url=url, secret_key=SECRET, key_encryption_key=KEK
        )
        now = datetime.now(UTC)
        with make_session_factory(engine)() as session:
            catalog_demo.load(session, now=now, settings=settings)
            session.commit()
        with engine.begin() as conn:
            sku_pk = conn.execute(
                text("SELECT id FROM catalog_skus "
                     "WHERE product_id = 'DG7GMGF0D7FV' AND sku_id = '0001'")
            ).scalar_one()  # fmt: skip
            for n in levels:
                # One version per level; the keys' ciphertext is filler (never decrypted).
                conn.execute(
                    text(
                        "INSERT INTO catalog_product_keys (id, sku_pk, version, ciphertext, "
                        "fingerprint, status, generated, imported_at) "
                        "SELECT gen_random_uuid(), :sku, CAST(:version AS varchar), "
                        "'\\x00'::bytea, "
                        "md5(CAST(:version AS text) || i::text), 'available', false, "
                        "now() - (i || ' seconds')::interval FROM generate_series(1, :n) i"
                    ),
                    {"sku": sku_pk, "version": f"stock-{n}", "n": n},
                )
                conn.execute(text(
                    "UPDATE catalog_skus SET versions = CAST(CAST(versions AS jsonb) "
                    "|| to_jsonb(CAST(:v AS text)) AS json) "
                    "WHERE id = :sku"), {"v": f"stock-{n}", "sku": sku_pk})  # fmt: skip
            conn.execute(text("ANALYZE catalog_product_keys"))
        factory = make_session_factory(engine)
        for _ in range(args.runs):
            for n in levels:
                for _ in range(50):
                    with factory() as session:
                        started = time.perf_counter()
                        catalog.reserve_key(
                            session, settings=settings, product_id="DG7GMGF0D7FV",
                            sku_id="0001", version=f"stock-{n}", order_line_ref="bench", now=now,
                        )  # fmt: skip
                        samples[n].append((time.perf_counter() - started) * 1000)
                        session.rollback()
            loads.append(load_average())
        with Session(engine) as session:
            plan = session.execute(
                text("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) "
                     "UPDATE catalog_product_keys SET status = 'reserved' WHERE id = ("
                     "SELECT id FROM catalog_product_keys WHERE sku_pk = :sku "
                     "AND version = :v AND status = 'available' "
                     "ORDER BY imported_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)"),
                {"sku": sku_pk, "v": f"stock-{levels[-1]}"},
            ).scalars().all()  # fmt: skip
            session.rollback()
        engine.dispose()
    print(f"\nkey reservation, {args.runs} interleaved rounds of 50 per level; load average: "
          f"{'; '.join(loads)}\n")  # fmt: skip
    print("| available keys | ms per reservation min / median / max | median / smallest's |")
    print("|---:|---|---:|")
    base = statistics.median(samples[levels[0]])
    for n in levels:
        med = statistics.median(samples[n])
        print(f"| {n:,} | {spread(samples[n])} | {med / base:.2f} |")
    print(f"\nplan at {levels[-1]:,} keys:\n")
    for line in plan:
        print("    " + line)


def add_history(engine: Engine, ids: dict[str, Any], customer: uuid.UUID, orders: int) -> None:
    """``orders`` completed orders of one Azure line each, with its charge, for ``customer``."""
    params = {"p": ids["partner"], "c": customer, "u": ids["user"], "n": orders}
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO carts (id, partner_id, customer_id, created_by, status, line_items, "
            "created_at, updated_at, expires_at) SELECT md5('cart' || i)::uuid, :p, :c, :u, "
            "'ordered', '[]', now() - i * interval '1 hour', now() - i * interval '1 hour', "
            "now() FROM generate_series(1, :n) i"), params)  # fmt: skip
        conn.execute(text(
            "INSERT INTO orders (id, partner_id, customer_id, cart_id, billing_cycle, "
            "created_by, status, currency, market, tax_included, net_minor, tax_minor, "
            "gross_minor, created_at) SELECT md5('order' || i)::uuid, :p, :c, "
            "md5('cart' || i)::uuid, 'one_time', :u, 'completed', 'USD', 'US', false, 100, 0, "
            "100, now() - i * interval '1 hour' FROM generate_series(1, :n) i"),
            params)  # fmt: skip
        conn.execute(text(
            "INSERT INTO order_lines (id, order_id, line_number, catalog_item_id, product_id, "
            "sku_id, availability_id, sku_pk, product_type, product_title, sku_title, quantity, "
            "term_duration, billing_cycle, currency, unit_net_minor, unit_tax_minor, "
            "unit_gross_minor, net_minor, tax_minor, gross_minor, status, purchased_at, "
            "cancellation_policy) SELECT md5('line' || i)::uuid, md5('order' || i)::uuid, 0, "
            ":item, 'DZH318Z0BQ3Q', '00VQ', 'USD-P1Y-OT', (SELECT id FROM catalog_skus "
            "WHERE product_id = 'DZH318Z0BQ3Q' AND sku_id = '00VQ'), 'azure_reservation', "
            "'Azure reservation', 'VM', 1, 'P1Y', 'one_time', 'USD', 100, 0, 100, 100, 0, 100, "
            "'active', now() - i * interval '1 hour', '{}' FROM generate_series(1, :n) i"),
            {**params, "item": AZURE})  # fmt: skip
        conn.execute(text(
            "INSERT INTO charges (id, partner_id, customer_id, order_id, order_line_id, "
            "charge_type, currency, net_minor, tax_minor, gross_minor, quantity, billing_month, "
            "created_at) SELECT md5('charge' || i)::uuid, :p, :c, md5('order' || i)::uuid, "
            "md5('line' || i)::uuid, 'new', 'USD', 100, 0, 100, 1, "
            "to_char(now() - i * interval '1 hour', 'YYYY-MM'), now() - i * interval '1 hour' "
            "FROM generate_series(1, :n) i"), params)  # fmt: skip
        conn.execute(text("ANALYZE"))


def history(args: argparse.Namespace) -> None:
    """Checkout rate for a customer without orders and one with ``--history`` prior orders."""
    rounds: list[dict[str, float]] = []
    loads = [load_average()]
    fresh_name, old_name = "no prior orders", f"{args.history:,} prior orders"
    with seeded_database(2 * args.runs * args.orders + 10, pool_size=args.clients + 4) as db:
        engine, ids = db.engine, db.ids
        with make_session_factory(engine)() as session:
            partner = session.get(Tenant, ids["partner"])
            old = identity.create_tenant(
                session, kind=TenantKind.CUSTOMER, name="Bench Customer With History",
                country="US", domain="history.onmicrosoft.com", parent_id=ids["partner"],
                now=datetime.now(UTC),
            )  # fmt: skip
            assert partner is not None
            session.commit()
            old_id = old.id
        add_history(engine, ids, old_id, args.history)
        with serve(db.url, db.data_dir, []) as base:
            for _ in range(args.runs):
                rounds.append(
                    {
                        fresh_name: http_rate(base, ids, args.orders, args.clients),
                        old_name: http_rate(
                            base, {**ids, "customer": old_id}, args.orders, args.clients
                        ),
                    }
                )
                loads.append(load_average())
    print(f"\ncheckout through the default server, {args.orders} orders per customer per round, "
          f"{args.clients} clients, {args.runs} interleaved rounds; load average: "
          f"{'; '.join(loads)}\n")  # fmt: skip
    print("| customer | orders/s min / median / max |")
    print("|---|---|")
    for name in (fresh_name, old_name):
        print(f"| {name} | {spread([r[name] for r in rounds])} |")
    ratios = [r[old_name] / r[fresh_name] for r in rounds]
    print(f"\n{old_name} / no prior orders (same round): {spread(ratios)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # 200 orders: at 100 to 200 orders/s a round of 60 lasted under half a second, and one
    # scheduling hiccup moved its ratio by a third (docs/dev/performance.md).
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stock", default="", help="e.g. 1000,100000,1000000")
    parser.add_argument("--history", type=int, default=0, help="prior orders, e.g. 10000")
    args = parser.parse_args()
    if args.stock:
        stock(args)
    elif args.history:
        history(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()

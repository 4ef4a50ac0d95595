"""One checkout of a two-line cart runs a small, fixed number of SQL statements."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, text

from tests.orders.catalog_data import AZURE, WINDOWS
from tests.orders.conftest import Shop

# Steady state of a 2-line cart (one software line with a key, one Azure line), on both
# databases: token + user + tenant (with its webhook registration) + roles (1); the cart
# locked with its customer, the billing period held FOR SHARE and the catalog's version
# stamp (1); order, lines, charges, entitlements (4); key reserved (1); the audit record
# inserted from its chain's head (1) and the head advanced to it (1); cart marked ordered
# (1); MS-RequestId remembered (1). The catalog's items come from the process cache keyed on
# the stamp; the first checkout after a catalog change reads them and the tax rate (1 more).
# See docs/dev/orders.md.
MAX_CHECKOUT_STATEMENTS = 11
MAX_CHECKOUT_STATEMENTS_CATALOG_CHANGED = 12
PRICED_TABLES = re.compile(
    r"\bcatalog_(products|skus|availabilities|availability_markets|tax_rates)\b"
)


@contextmanager
def statements(connection: Connection) -> Iterator[list[str]]:
    """Every SQL statement the app sends, except the savepoints of the test's own transaction."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO")):
            seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", count)


def _cart(client: TestClient, shop: Shop) -> str:
    r = client.post(
        f"/v1/customers/{shop.us.id}/carts",
        json={
            "lineItems": [
                {"catalogItemId": WINDOWS, "quantity": 1},
                {"catalogItemId": AZURE, "quantity": 1},
            ]
        },
        headers=shop.headers,
    )
    assert r.status_code == 201, r.text
    cart_id: str = r.json()["id"]
    return cart_id


def test_checkout_of_two_lines_stays_under_the_statement_budget(
    client: TestClient, shop: Shop, connection: Connection
) -> None:
    # The month's first checkout also opens its billing period (two statements, once a month).
    first = _cart(client, shop)
    r = client.post(f"/v1/customers/{shop.us.id}/carts/{first}/checkout", headers=shop.headers)
    assert r.status_code == 201, r.text
    cart_id = _cart(client, shop)
    with statements(connection) as seen:
        r = client.post(
            f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout",
            headers={**shop.headers, "MS-RequestId": "q-1"},
        )
    assert r.status_code == 201, r.text
    assert len(seen) <= MAX_CHECKOUT_STATEMENTS, "\n".join(seen)
    # The catalog has not changed since the first checkout: its priced items come from the
    # process cache (the stamp is read with the cart), not from the database.
    assert [s for s in seen if PRICED_TABLES.search(s)] == []
    assert not [s for s in seen if s.lstrip().startswith("SELECT catalog_version")]
    # Key reservation takes the key in the statement that finds it (no read, then write).
    assert not [s for s in seen if s.lstrip().startswith("SELECT catalog_product_keys")]
    # MS-RequestId is remembered by its insert, not looked up first.
    assert not [s for s in seen if s.lstrip().startswith("SELECT idempotency_keys")]
    # The customer and the billing period come with the cart's lock, not on their own.
    assert not [s for s in seen if s.lstrip().startswith(("SELECT tenants", "SELECT billing"))]
    # The audit chain head is never read on its own: the record is inserted from it and one
    # update moves it (number and hash); on PostgreSQL both are one statement (WITH).
    assert not [s for s in seen if s.lstrip().startswith("SELECT audit_chain_heads")]
    assert len([s for s in seen if "UPDATE audit_chain_heads" in s]) == 1
    heads = [s for s in seen if "audit_chain_heads" in s]
    assert len(heads) == (1 if connection.dialect.name == "postgresql" else 2)
    # The partner's webhook registration came with authentication.
    assert not [s for s in seen if s.lstrip().startswith("SELECT webhook_registrations")]


def test_the_first_checkout_after_a_catalog_change_reads_the_catalog_once(
    client: TestClient, shop: Shop, connection: Connection
) -> None:
    first = _cart(client, shop)
    r = client.post(f"/v1/customers/{shop.us.id}/carts/{first}/checkout", headers=shop.headers)
    assert r.status_code == 201, r.text
    first_result = r.json()
    # Another node changes a price: the stamp changes with it, the cached items are not used.
    connection.execute(
        text("UPDATE catalog_availabilities SET list_price_minor = list_price_minor + 100")
    )
    cart_id = _cart(client, shop)
    with statements(connection) as seen:
        r = client.post(
            f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout",
            headers={**shop.headers, "MS-RequestId": "q-3"},
        )
    assert r.status_code == 201, r.text
    assert len(seen) <= MAX_CHECKOUT_STATEMENTS_CATALOG_CHANGED, "\n".join(seen)
    # The catalog is read once for the cart, not once per line; the tax rate comes with it.
    catalog_reads = [s for s in seen if "FROM catalog_products" in s]
    assert len(catalog_reads) == 1
    assert not [s for s in seen if "FROM catalog_tax_rates" in s and "catalog_products" not in s]
    assert not [s for s in seen if "FROM catalog_skus" in s and "catalog_products" not in s]
    assert not [s for s in seen if s.lstrip().startswith("SELECT catalog_version")]
    # Priced at the new price (one minor unit times 100 more per unit).
    before, after = (
        {
            line["offerId"]: Decimal(line["pricing"]["unitNet"])
            for order in body["orders"]
            for line in order["lineItems"]
        }
        for body in (first_result, r.json())
    )
    assert after == {offer: price + Decimal("1.00") for offer, price in before.items()}


def test_a_repeated_checkout_with_the_same_request_id_answers_the_first_result(
    client: TestClient, shop: Shop
) -> None:
    cart_id = _cart(client, shop)
    url = f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout"
    headers = {**shop.headers, "MS-RequestId": "q-2"}
    first = client.post(url, headers=headers)
    again = client.post(url, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()


def test_an_authenticated_call_resolves_token_user_tenant_and_roles_in_one_statement(
    client: TestClient, shop: Shop, connection: Connection
) -> None:
    with statements(connection) as seen:
        r = client.get(f"/v1/customers/{shop.us.id}/orders", headers=shop.headers)
    assert r.status_code == 200, r.text
    auth = [s for s in seen if "api_tokens" in s or "user_roles" in s or "FROM users" in s]
    assert len(auth) == 1, "\n".join(auth)
    # The tenant's webhook registration comes with it (the events of audited requests).
    assert "webhook_registrations" in auth[0] and "tenants" in auth[0]
    # Authentication, the customer and the page of orders.
    assert len(seen) <= 3, "\n".join(seen)


def test_key_reservation_is_one_probe_of_the_available_keys_index(
    client: TestClient, shop: Shop, connection: Connection
) -> None:
    if connection.dialect.name != "postgresql":
        pytest.skip("the plan is PostgreSQL's (SQLite serialises writers and has no planner stats)")
    # 20,000 more available keys of the version checkout takes, so the planner has a choice.
    connection.exec_driver_sql(
        "INSERT INTO catalog_product_keys (id, sku_pk, version, ciphertext, fingerprint, status, "
        "generated, imported_at) SELECT gen_random_uuid(), k.sku_pk, k.version, k.ciphertext, "
        "md5(i::text || 'plan'), 'available', false, now() - (i || ' seconds')::interval "
        "FROM (SELECT sku_pk, version, ciphertext FROM catalog_product_keys LIMIT 1) k, "
        "generate_series(1, 20000) i"
    )
    connection.exec_driver_sql("ANALYZE catalog_product_keys")
    cart_id = _cart(client, shop)
    with statements(connection) as seen, _parameters(connection) as params:
        r = client.post(
            f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout", headers=shop.headers
        )
    assert r.status_code == 201, r.text
    [reservation] = [s for s in seen if s.lstrip().startswith("UPDATE catalog_product_keys")]
    plan = "\n".join(
        row[0] for row in connection.exec_driver_sql("EXPLAIN " + reservation, params[reservation])
    )
    # The partial index on available keys, in the order keys are taken: its first entry is
    # the key, so nothing is sorted and nothing else is scanned.
    assert "ix_catalog_product_keys_available" in plan, plan
    assert "Sort" not in plan and "Seq Scan" not in plan, plan


@contextmanager
def _parameters(connection: Connection) -> Iterator[dict[str, Any]]:
    """The parameters each statement was sent with, by statement text."""
    seen: dict[str, Any] = {}

    def keep(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        seen[statement] = parameters

    event.listen(connection, "before_cursor_execute", keep)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", keep)

"""One checkout of a two-line cart runs a small, fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Connection, event

from tests.orders.catalog_data import AZURE, WINDOWS
from tests.orders.conftest import Shop

# Measured 31 (SQLite) / 32 (PostgreSQL) including the bearer-token and customer lookups (3),
# the billing month (3: the open period, held FOR SHARE against a racing close)
# and the test's savepoints (2); see docs/dev/orders.md. The bound catches a query creeping in.
MAX_CHECKOUT_STATEMENTS = 33


@contextmanager
def statements(connection: Connection) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        seen.append(statement)

    event.listen(connection, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(connection, "before_cursor_execute", count)


def test_checkout_of_two_lines_stays_under_the_statement_budget(
    client: TestClient, shop: Shop, connection: Connection
) -> None:
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
    cart_id = r.json()["id"]
    with statements(connection) as seen:
        r = client.post(
            f"/v1/customers/{shop.us.id}/carts/{cart_id}/checkout",
            headers={**shop.headers, "MS-RequestId": "q-1"},
        )
    assert r.status_code == 201, r.text
    assert len(seen) <= MAX_CHECKOUT_STATEMENTS

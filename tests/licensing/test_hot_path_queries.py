"""Key reveal and download run a small, fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from partnercenter.permissions import Role
from tests.factories import Factory
from tests.licensing.conftest import Purchase, Software
from tests.orders.test_checkout_queries import statements

FILE = {"version": "2024", "language": "en-US", "bitness": "x64"}
Headers = Callable[..., dict[str, str]]

# token + user + tenant (with its webhook registration) + roles (1); the purchase read FOR
# SHARE against a racing cancellation, with the customer (scoped to the caller's partner),
# the entitlement's key still encrypted, and the SKU's versions and files (1); the activity
# record inserted from its chain's head and the head advanced (PostgreSQL: 1, one statement
# with a data-modifying WITH; SQLite: 2). Then the commit: every reveal is on the log.
MAX_KEY_REVEAL_STATEMENTS = {"postgresql": 3, "sqlite": 4}
# The same without the key, plus the file's artifact row (1).
MAX_DOWNLOAD_STATEMENTS = {"postgresql": 4, "sqlite": 5}


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


def test_key_reveal_stays_under_the_statement_budget(
    client: TestClient, purchase: Purchase, auth_headers: Headers, connection: Connection
) -> None:
    headers = auth_headers(purchase.agent)
    # The first reveal reserves the version's key; the budget is for every later one.
    assert client.post(purchase.url("/key"), json={}, headers=headers).status_code == 200
    with statements(connection) as seen:
        r = client.post(purchase.url("/key"), json={}, headers=headers)
    assert r.status_code == 200, r.text
    assert len(seen) <= MAX_KEY_REVEAL_STATEMENTS[connection.dialect.name], "\n".join(seen)


def test_a_customers_own_key_reveal_stays_under_its_budget(
    client: TestClient,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
    connection: Connection,
) -> None:
    headers = auth_headers(factory.user(purchase.customer, Role.GLOBAL_ADMIN))
    assert client.post(purchase.url("/key"), json={}, headers=headers).status_code == 200
    with statements(connection) as seen:
        r = client.post(purchase.url("/key"), json={}, headers=headers)
    assert r.status_code == 200, r.text
    # One more than a partner's: the webhook registration of the customer's partner, whom
    # the event concerns (a partner's own comes with its authentication).
    budget = MAX_KEY_REVEAL_STATEMENTS[connection.dialect.name] + 1
    assert len(seen) <= budget, "\n".join(seen)


def test_download_stays_under_the_statement_budget(
    client: TestClient, purchase: Purchase, auth_headers: Headers, connection: Connection
) -> None:
    headers = auth_headers(purchase.agent)
    with statements(connection) as seen:
        r = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert r.status_code == 200, r.text
    assert len(seen) <= MAX_DOWNLOAD_STATEMENTS[connection.dialect.name], "\n".join(seen)

"""Key reveal and download run a small, fixed number of SQL statements."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from tests.licensing.conftest import Purchase, Software
from tests.orders.test_checkout_queries import statements

FILE = {"version": "2024", "language": "en-US", "bitness": "x64"}
Headers = Callable[..., dict[str, str]]

# token + user + tenant (with its webhook registration) + roles (1), customer (1), the
# purchase read FOR SHARE against a racing cancellation (1), the product with its SKUs and the
# files' versions (2), the line's keys (1), the audit record inserted from its chain's head
# and the head advanced (2), the key and SKU (1).
MAX_KEY_REVEAL_STATEMENTS = 9
# The same without the keys and the ciphertext, plus the file's artifact row (1).
MAX_DOWNLOAD_STATEMENTS = 8


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
    assert len(seen) <= MAX_KEY_REVEAL_STATEMENTS, "\n".join(seen)


def test_download_stays_under_the_statement_budget(
    client: TestClient, purchase: Purchase, auth_headers: Headers, connection: Connection
) -> None:
    headers = auth_headers(purchase.agent)
    with statements(connection) as seen:
        r = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert r.status_code == 200, r.text
    assert len(seen) <= MAX_DOWNLOAD_STATEMENTS, "\n".join(seen)

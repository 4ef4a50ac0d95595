"""A new user's first look at the demo: the first software item listed is a live purchase
they can Get Key on, in the API and on the partner's and the customer's pages; the cancelled
purchase is still listed, below the live ones."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter import demo
from partnercenter.billing import demo as billing_demo
from partnercenter.catalog import demo as catalog_demo
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.customers import demo as customers_demo
from partnercenter.identity.models import Tenant
from tests.web import page_csrf, sign_in

AGENT = "admin.agent@fabrikam.example"
CUSTOMER_ADMIN = "global.admin@contoso.example"


@pytest.fixture
def contoso(session: Session, settings: Settings, clock: FrozenClock) -> Tenant:
    """The demo as ``partnercenter demo`` loads it (tenants, catalog, customers, billing)."""
    now = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
    clock.set(now)
    demo.ensure_provider(
        session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=now
    )
    demo.load(session, now=now)
    catalog_demo.load(session, now=now, settings=settings)
    customers_demo.load(session, now=now, settings=settings)
    assert billing_demo.load(session, now=now, settings=settings) == "2026-10"
    session.commit()
    return session.execute(
        select(Tenant).where(Tenant.domain == "contoso.onmicrosoft.com")
    ).scalar_one()


def _bearer(client: TestClient, email: str) -> dict[str, str]:
    r = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": demo.DEMO_PASSWORD},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_the_api_lists_a_live_purchase_with_a_key_first_and_get_key_works_on_it(
    client: TestClient, contoso: Tenant
) -> None:
    headers = _bearer(client, AGENT)
    items = client.get(f"/v1/customers/{contoso.id}/software", headers=headers).json()["items"]
    statuses = [i["status"] for i in items]
    assert "cancelled" in statuses  # not hidden ...
    assert statuses == sorted(statuses, key=lambda s: s != "active")  # ... but after the live
    first = items[0]
    assert first["status"] == "active" and first["hasProductKey"] is True
    key = client.post(
        f"/v1/customers/{contoso.id}/software/{first['id']}/key", json={}, headers=headers
    )
    assert key.status_code == 200, key.text
    assert key.json()["itemId"] == first["id"] and key.json()["productKey"]
    # Each group is newest first.
    for status in ("active", "cancelled"):
        dates = [i["purchaseDate"] for i in items if i["status"] == status]
        assert dates == sorted(dates, reverse=True)


def test_the_partner_page_lists_the_live_purchase_first_and_gets_its_key(
    client: TestClient, contoso: Tenant
) -> None:
    browser = TestClient(client.app)
    assert sign_in(browser, AGENT, demo.DEMO_PASSWORD).status_code == 303
    base = f"/partner/customers/{contoso.id}/software"
    page = browser.get(base)
    assert page.status_code == 200
    rows = re.findall(
        r'data-item="([^"]+)">.*?data-testid="software-status">([^<]+)<', page.text, re.S
    )
    statuses = [status.strip() for _item, status in rows]
    assert statuses[0] == "Active" and "Cancelled" in statuses
    assert statuses == sorted(statuses, key=lambda s: s != "Active")
    first = rows[0][0]
    listed = client.get(f"/v1/customers/{contoso.id}/software", headers=_bearer(client, AGENT))
    version = listed.json()["items"][0]["versions"][0]
    assert listed.json()["items"][0]["id"] == first  # the page and the API agree
    choice = {
        "version": version["version"],
        "language": version["languages"][0],
        "bitness": version["bitness"][0],
    }
    revealed = browser.post(
        f"{base}/{first}/key",
        data={**choice, "csrf_token": page_csrf(browser, f"{base}?item={first}")},
    )  # the key is shown once, on the page the reveal leads to
    assert revealed.status_code == 200
    assert 'data-testid="product-key"' in revealed.text


def test_the_customer_admin_sees_the_live_purchase_first(
    client: TestClient, contoso: Tenant
) -> None:
    headers = _bearer(client, CUSTOMER_ADMIN)
    items = client.get(f"/v1/customers/{contoso.id}/software", headers=headers).json()["items"]
    assert items[0]["status"] == "active" and items[0]["hasProductKey"]
    browser = TestClient(client.app)
    assert sign_in(browser, CUSTOMER_ADMIN, demo.DEMO_PASSWORD).status_code == 303
    page = browser.get("/admin/billing/products/software")
    assert page.status_code == 200
    rows = re.findall(r'data-item="([^"]+)"', page.text)
    assert rows[0] == items[0]["id"]

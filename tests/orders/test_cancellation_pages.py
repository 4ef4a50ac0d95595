"""The cancel dialog as a page, without JavaScript: days, credit, acknowledgement, confirmation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.clock import FrozenClock
from partnercenter.identity import services as identity
from partnercenter.orders.models import (
    Charge,
    ChargeType,
    Entitlement,
    EntitlementStatus,
    Order,
    OrderStatus,
)
from partnercenter.permissions import Role
from tests.customers.web import csrf_of, sign_in
from tests.factories import Factory
from tests.orders.cancel_helpers import Buyer, set_support_limit
from tests.orders.catalog_data import AZURE, SUSE, WINDOWS
from tests.orders.conftest import Shop

BOUGHT = datetime(2026, 11, 2, 10, tzinfo=UTC)


@pytest.fixture
def buyer(shop: Shop, client: TestClient, session: Session, clock: FrozenClock) -> Buyer:
    secret, _ = identity.create_named_token(
        session, user=shop.agent, name="page tests", now=clock.now(), request=None, days=730
    )
    session.commit()
    return Buyer(client, {"Authorization": f"Bearer {secret}"})


def _order(session: Session, order_id: str) -> Order:
    session.expire_all()
    order = session.get(Order, uuid.UUID(order_id))
    assert order is not None
    return order


def _text(html: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</', html, re.S)
    assert found, f"no {testid} on the page"
    return " ".join(found.group(1).split())


def test_admin_agent_sees_days_and_credit_must_acknowledge_then_cancels(
    client: TestClient, shop: Shop, session: Session, clock: FrozenClock, buyer: Buyer
) -> None:
    order = buyer.buy(shop.us, (WINDOWS, 1))
    clock.set(datetime(2026, 11, 12, 10, tzinfo=UTC))  # day 10
    sign_in(client, session, shop.agent)
    url = f"/partner/customers/{shop.us.id}/cancel"
    page = client.get(url, params={"order": order["id"]})
    assert page.status_code == 200
    assert f'<option value="{order["id"]}" selected>' in page.text
    assert _text(page.text, "cancel-days") == (
        "20 days remain to cancel this order (until Dec 2, 2026, 10:00 AM UTC)."
    )
    assert _text(page.text, "cancel-credit").startswith(
        "Credit that will be issued: 972.50 USD (net 972.50 USD, tax 0.00 USD)"
    )
    assert "Important" in page.text and 'name="acknowledge"' in page.text
    # Submit without the acknowledgement: refused, with the message next to the checkbox.
    r = client.post(url, data={"order": order["id"], "csrf_token": csrf_of(page.text)})
    assert r.status_code == 400
    assert "Select the checkbox to acknowledge" in _text(r.text, "acknowledge-error")
    assert _order(session, order["id"]).status == OrderStatus.COMPLETED
    # With it: cancelled, and the confirmation says so.
    r = client.post(
        url,
        data={"order": order["id"], "acknowledge": "on", "csrf_token": csrf_of(r.text)},
    )
    assert r.status_code == 200, r.text
    assert "Your cancellation is confirmed" in r.text
    assert _text(r.text, "cancelled-order") == (
        f"Order {order['id']} was cancelled. Credit: 972.50 USD, on your next monthly invoice."
    )
    assert _order(session, order["id"]).status == OrderStatus.CANCELLED
    ent = session.execute(
        select(Entitlement).where(Entitlement.order_id == uuid.UUID(order["id"]))
    ).scalar_one()
    assert ent.status == EntitlementStatus.CANCELLED
    key = session.get(ProductKey, ent.product_key_id)
    assert key is not None and key.status == KeyStatus.REVOKED
    # Opening the dialog again: the order is cancelled and there is nothing to submit.
    again = client.get(url, params={"order": order["id"]})
    assert "cancel-already-cancelled" in again.text
    assert 'data-testid="cancel-submit"' not in again.text


def test_on_day_31_the_dialog_says_the_window_has_passed(
    client: TestClient, shop: Shop, session: Session, clock: FrozenClock, buyer: Buyer
) -> None:
    order = buyer.buy(shop.us, (WINDOWS, 1))
    clock.set(datetime(2026, 12, 3, 10, tzinfo=UTC))  # day 31
    sign_in(client, session, shop.agent)
    page = client.get(f"/partner/customers/{shop.us.id}/cancel", params={"order": order["id"]})
    assert page.status_code == 200
    assert _text(page.text, "cancel-window-passed") == (
        "The 30-day cancellation window has passed (it ended on Dec 2, 2026, 10:00 AM UTC): "
        "this order can no longer be cancelled."
    )
    assert 'data-testid="cancel-submit"' not in page.text
    # A hand-made POST is refused with Partner Center's message.
    r = client.post(
        f"/partner/customers/{shop.us.id}/cancel",
        data={"order": order["id"], "acknowledge": "on", "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 400
    assert "You have passed your 30-day cancellation window." in r.text
    assert _order(session, order["id"]).status == OrderStatus.COMPLETED


def test_the_order_number_list_holds_the_orders_of_that_purchase(
    client: TestClient, shop: Shop, session: Session, buyer: Buyer
) -> None:
    first = buyer.buy(shop.us, (WINDOWS, 1))
    second = buyer.buy(shop.us, (WINDOWS, 1))
    other = buyer.buy(shop.us, (AZURE, 1))
    sign_in(client, session, shop.agent)
    page = client.get(f"/partner/customers/{shop.us.id}/cancel", params={"order": first["id"]})
    select_html = re.search(r'<select name="order".*?</select>', page.text, re.S)
    assert select_html
    assert first["id"] in select_html.group(0) and second["id"] in select_html.group(0)
    assert other["id"] not in select_html.group(0)


def test_several_orders_of_the_customer_in_one_go(
    client: TestClient, shop: Shop, session: Session, buyer: Buyer
) -> None:
    first = buyer.buy(shop.us, (WINDOWS, 1))
    second = buyer.buy(shop.us, (AZURE, 2))
    plan = buyer.buy(shop.us, (SUSE, 1))
    sign_in(client, session, shop.agent)
    url = f"/partner/customers/{shop.us.id}/cancel"
    page = client.get(url, params={"order": first["id"]})
    assert f'data-testid="also-{second["id"]}"' in page.text
    assert f'data-testid="also-{plan["id"]}"' not in page.text  # a software plan never
    r = client.post(
        url,
        data={
            "order": first["id"],
            "also": [second["id"]],
            "acknowledge": "on",
            "csrf_token": csrf_of(page.text),
        },
    )
    assert r.status_code == 200, r.text
    assert r.text.count('data-testid="cancelled-order"') == 2
    assert _order(session, first["id"]).status == OrderStatus.CANCELLED
    assert _order(session, second["id"]).status == OrderStatus.CANCELLED
    credits = session.execute(
        select(Charge).where(Charge.charge_type == ChargeType.CANCEL)
    ).scalars()
    assert sorted(c.gross_minor for c in credits) == [-246_912, -97_250]


def test_above_the_limit_the_dialog_links_to_a_filled_support_request(
    client: TestClient, shop: Shop, session: Session, buyer: Buyer
) -> None:
    set_support_limit(session, "DG7GMGF0D3SJ", 50_000, "USD")
    session.commit()
    order = buyer.buy(shop.us, (WINDOWS, 1))
    sign_in(client, session, shop.agent)
    page = client.get(f"/partner/customers/{shop.us.id}/cancel", params={"order": order["id"]})
    link = re.search(r'href="([^"]+)" data-testid="support-request-link"', page.text)
    assert link
    assert link.group(1) == (
        f"/partner/support/new?topic=csp_refund&amp;customer={shop.us.domain}"
        f"&amp;order={order['id']}&amp;amount=972.50&amp;currency=USD"
    )
    assert 'data-testid="cancel-submit"' not in page.text


@pytest.mark.parametrize("role", [Role.GLOBAL_ADMIN, Role.SALES_AGENT, Role.HELPDESK_AGENT])
def test_other_roles_cannot_open_the_dialog(
    client: TestClient, shop: Shop, session: Session, factory: Factory, buyer: Buyer, role: Role
) -> None:
    order = buyer.buy(shop.us, (WINDOWS, 1))
    sign_in(client, session, factory.user(shop.partner, role))
    page = client.get(f"/partner/customers/{shop.us.id}/cancel", params={"order": order["id"]})
    assert page.status_code == 403


def test_the_dialog_speaks_spanish(
    client: TestClient, shop: Shop, session: Session, buyer: Buyer
) -> None:
    order = buyer.buy(shop.us, (WINDOWS, 1))
    sign_in(client, session, shop.agent)
    page = client.get(
        f"/partner/customers/{shop.us.id}/cancel",
        params={"order": order["id"]},
        headers={"Accept-Language": "es-ES"},
    )
    assert "Número de pedido" in page.text
    assert "Importante" in page.text
    assert _text(page.text, "cancel-days").startswith("Quedan 30 días para cancelar este pedido")


def test_software_page_and_order_history_offer_cancel_to_admin_agents_only(
    client: TestClient, shop: Shop, session: Session, factory: Factory, buyer: Buyer
) -> None:
    order = buyer.buy(shop.us, (WINDOWS, 1))
    cancel_url = f"/partner/customers/{shop.us.id}/cancel?order={order['id']}"
    sign_in(client, session, shop.agent)
    for tab in ("software", "orders"):
        page = client.get(f"/partner/customers/{shop.us.id}/{tab}")
        assert page.status_code == 200, tab
        assert f'href="{cancel_url}" data-testid="cancel-link"' in page.text, tab
    client.cookies.clear()
    sign_in(client, session, factory.user(shop.partner, Role.GLOBAL_ADMIN))
    for tab in ("software", "orders"):
        page = client.get(f"/partner/customers/{shop.us.id}/{tab}")
        assert page.status_code == 200, tab
        assert 'data-testid="cancel-link"' not in page.text, tab

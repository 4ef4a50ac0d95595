"""Add products and Order history pages: browse the market, cart, review totals, place order."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.orders.models import Order
from partnercenter.permissions import Role
from tests.customers.web import csrf_of, sign_in
from tests.factories import Factory
from tests.orders.catalog_data import AZURE, SUSE, SUSE_AU, WINDOWS, WINDOWS_AU
from tests.orders.conftest import Shop


def _add(client: TestClient, shop_customer: object, item: str, qty: int, cart: str = "") -> str:
    page = client.get(f"/partner/customers/{shop_customer}/add-products")
    r = client.post(
        f"/partner/customers/{shop_customer}/add-products/lines",
        data={
            "catalog_item_id": item,
            "quantity": str(qty),
            "cart_id": cart,
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    found = re.search(r"cart=([0-9a-f-]{36})", r.headers["location"])
    assert found
    return found.group(1)


def test_admin_agent_reviews_totals_and_places_an_order_in_australia(
    client: TestClient, shop: Shop, session: Session
) -> None:
    sign_in(client, session, shop.agent)
    url = f"/partner/customers/{shop.au.id}/add-products"
    page = client.get(url)
    assert page.status_code == 200
    assert f"offer-{WINDOWS_AU}" in page.text and f"offer-{SUSE_AU}" in page.text
    assert f"offer-{WINDOWS}" not in page.text  # the US offer is not on sale in AU
    cart = _add(client, shop.au.id, WINDOWS_AU, 1)
    assert _add(client, shop.au.id, SUSE_AU, 2, cart) == cart
    review = client.get(f"{url}?cart={cart}").text
    assert review.count('data-testid="cart-line"') == 2
    assert re.search(r'data-testid="total-net">\s*3,181.84 AUD<', review)
    assert re.search(r'data-testid="total-tax">\s*318.18 AUD<', review)
    assert re.search(r'data-testid="total-gross">\s*3,500.02 AUD<', review)
    assert "include tax" in review
    r = client.post(
        f"{url}/checkout",
        data={"cart_id": cart, "csrf_token": csrf_of(review)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    # The one-time Windows licence and the annual SUSE subscription: one order per billing
    # cycle, as Partner Center does for a mixed cart; together they make the cart's total.
    orders = session.execute(select(Order).order_by(Order.billing_cycle)).scalars().all()
    assert [(o.billing_cycle, len(o.lines)) for o in orders] == [("annual", 1), ("one_time", 1)]
    assert sum(o.gross_minor for o in orders) == 350002
    order = next(o for o in orders if f"order={o.id}" in r.headers["location"])
    history = client.get(r.headers["location"])
    assert history.status_code == 200
    assert all(str(o.id) in history.text for o in orders)
    assert history.text.count('data-testid="order-line"') == 2
    # Placing the same cart again (a double click) shows the same order, sells nothing more.
    again = client.post(
        f"{url}/checkout",
        data={"cart_id": cart, "csrf_token": csrf_of(review)},
        follow_redirects=False,
    )
    assert f"order={order.id}" in again.headers["location"]
    assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 2


def test_errors_stay_on_the_page_and_nothing_is_bought(
    client: TestClient, shop: Shop, session: Session
) -> None:
    sign_in(client, session, shop.agent)
    url = f"/partner/customers/{shop.us.id}/add-products"
    token = csrf_of(client.get(url).text)
    r = client.post(
        f"{url}/lines", data={"catalog_item_id": WINDOWS, "quantity": "50", "csrf_token": token}
    )
    assert r.status_code == 400 and "outside 1 to 10" in r.text
    r = client.post(
        f"{url}/lines", data={"catalog_item_id": WINDOWS_AU, "quantity": "1", "csrf_token": token}
    )
    assert r.status_code == 400 and "not available in market" in r.text
    no_csrf = client.post(f"{url}/lines", data={"catalog_item_id": WINDOWS, "quantity": "1"})
    assert no_csrf.status_code == 403
    cart = _add(client, shop.us.id, AZURE, 2)
    _add(client, shop.us.id, SUSE, 1, cart)
    review = client.get(f"{url}?cart={cart}").text
    assert "Prices exclude tax" in review
    assert session.execute(select(func.count()).select_from(Order)).scalar_one() == 0


def test_sales_agents_do_not_see_add_products_and_foreign_pages_are_404(
    client: TestClient, shop: Shop, session: Session, factory: Factory
) -> None:
    sign_in(client, session, factory.user(shop.partner, Role.SALES_AGENT))
    assert client.get(f"/partner/customers/{shop.us.id}/add-products").status_code == 403
    assert client.get(f"/partner/customers/{shop.us.id}/orders").status_code == 200
    foreign = factory.customer(factory.partner())
    session.commit()
    assert client.get(f"/partner/customers/{foreign.id}/orders").status_code == 404


def test_adding_to_an_expired_cart_starts_a_new_one(
    client: TestClient, shop: Shop, session: Session, clock: FrozenClock
) -> None:
    sign_in(client, session, shop.agent)
    old = _add(client, shop.us.id, WINDOWS, 1)
    clock.advance(days=8)
    sign_in(client, session, shop.agent)  # the first session has expired as well
    new = _add(client, shop.us.id, AZURE, 1, old)
    assert new != old
    review = client.get(f"/partner/customers/{shop.us.id}/add-products?cart={new}").text
    assert review.count('data-testid="cart-line"') == 1

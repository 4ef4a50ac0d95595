"""Buying for a customer in Chromium: find the customer by domain, add two products, check
the review totals, place the order and see it in Order history: a cart mixing a one-time
purchase and an annual subscription becomes one order per billing cycle, as in Partner Center."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from partnercenter import demo
from partnercenter.catalog import services as catalog
from partnercenter.db import make_session_factory
from partnercenter.i18n import format_money
from partnercenter.orders.services import total_of
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
SUBSCRIPTION = "DG7GMGF0FKZV:0001:AUD-P1Y-AN"  # Windows Server 2022 subscription, AUD


def _aud(amount: object) -> str:
    """An amount as the page writes it for an en-US reader (Babel): ``3,271.15 AUD``."""
    return format_money(amount, "AUD", "en")


def test_admin_agent_buys_two_products_for_a_customer_found_by_domain(
    page: Page, live_server: LiveServer
) -> None:
    with make_session_factory(live_server.engine)() as session:
        quotes = [
            catalog.quote(session, catalog_item_id=item, country="AU", quantity=qty)
            for item, qty in ((PERPETUAL, 2), (SUBSCRIPTION, 3))
        ]
    total = total_of([q.line_price for q in quotes], "AUD")

    page.goto(live_server.url + "/signin")
    page.locator("input[name=email]").fill("admin.agent@fabrikam.example")
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("form[action='/signin'] button[type=submit]").click()
    page.locator("nav.sidenav").get_by_role("link", name="Customers").click()

    page.get_by_test_id("customer-search").fill("wingtiptoys.onmicrosoft.com")
    page.get_by_role("button", name="Search").click()
    rows = page.get_by_test_id("customers").locator("tbody tr")
    expect(rows).to_have_count(1)
    rows.get_by_role("link", name="Wingtip Toys Pty").click()
    expect(page.get_by_test_id("customer-domain")).to_have_text("wingtiptoys.onmicrosoft.com")

    page.get_by_test_id("tab-add-products").click()
    page.get_by_test_id(f"qty-{PERPETUAL}").fill("2")
    page.get_by_test_id(f"add-{PERPETUAL}").click()
    expect(page.get_by_test_id("cart-line")).to_have_count(1)
    page.get_by_test_id(f"qty-{SUBSCRIPTION}").fill("3")
    page.get_by_test_id(f"add-{SUBSCRIPTION}").click()
    expect(page.get_by_test_id("cart-line")).to_have_count(2)

    for i, q in enumerate(quotes):
        line = page.get_by_test_id("cart-line").nth(i)
        expect(line.get_by_test_id("line-net")).to_have_text(_aud(q.line_price.net))
        expect(line.get_by_test_id("line-tax")).to_have_text(_aud(q.line_price.tax))
        expect(line.get_by_test_id("line-gross")).to_have_text(_aud(q.line_price.gross))
    expect(page.get_by_test_id("total-net")).to_have_text(_aud(total.net))
    expect(page.get_by_test_id("total-tax")).to_have_text(_aud(total.tax))
    expect(page.get_by_test_id("total-gross")).to_have_text(_aud(total.gross))
    expect(page.get_by_test_id("tax-note")).to_have_text("Prices in this market include tax.")
    assert total.net + total.tax == total.gross and total.tax > 0

    page.get_by_test_id("place-order").click()
    expect(page).to_have_url(re.compile(r"/orders\?order="))
    order_id = page.url.rsplit("order=", 1)[1]
    expect(page.get_by_test_id("order-placed")).to_contain_text(order_id)

    # One order per billing cycle: the perpetual licence and the annual subscription each
    # get their own order of one line, and their totals add up to the cart's.
    page.get_by_test_id("tab-orders").click()
    expect(page.locator(f"#order-{order_id}")).to_have_count(1)
    for q, item in zip(quotes, (PERPETUAL, SUBSCRIPTION), strict=True):
        # Newest first: other tests on this live server may have bought the same item before.
        order = page.get_by_test_id("order").filter(has_text=item).first
        expect(order.get_by_test_id("order-line")).to_have_count(1)
        expect(order.get_by_test_id("order-total")).to_have_text(_aud(q.line_price.gross))

"""Long, accented and hostile names in Chromium: a 200-character unbroken company name and
one with <script>, quotes and accents never widen a page (customers, activity log, orders,
billing, support on both sides) (desktop or phone; the screenshots and width checks of
the browser fixtures cover every page visited), are shown escaped, and are clipped with the
full name in a tooltip."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, api_client, sign_in, snap

pytestmark = pytest.mark.browser


def test_a_200_character_name_and_a_hostile_name_never_widen_a_page(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    suffix = uuid.uuid4().hex[:6]
    long_name = ("Ñ" + "W" * 193 + suffix)[:200]
    hostile = (
        f'<script>alert(1)</script><img src=x onerror="alert(1)"> "Ünïcödé" & \'Søn\' '
        f"Ñandú Łódź {suffix}"
    )
    page = open_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, live_server.url, "global.admin@fabrikam.example")
    customer_ids: list[str] = []
    for n, name in enumerate((long_name, hostile)):
        page.goto(live_server.url + "/partner/customers")
        form = page.get_by_test_id("add-customer")
        form.locator("input[name=company_name]").fill(name)
        form.locator("input[name=domain]").fill(f"long{n}{suffix}")
        form.locator("select[name=country]").select_option("ES")
        form.locator("button[type=submit]").click()
        expect(page.get_by_test_id("customer-name")).to_have_text(name)
        customer_ids.append(page.url.split("/partner/customers/", 1)[1].split("/")[0].split("?")[0])
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 1366, f"the customer's page is {width}px wide"
        snap(page, f"customer-page-{n}", phone=True)

    page.goto(live_server.url + "/partner/customers?q=" + suffix)
    link = page.get_by_test_id("customers").get_by_role("link", name=long_name)
    assert link.get_attribute("title") == long_name  # the tooltip carries the full name
    box = link.bounding_box()
    assert box is not None and box["width"] < 600  # clipped, not 200 characters wide
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    snap(page, "customers-with-long-names", phone=True)
    page.goto(live_server.url + "/partner/activity-log?customer=" + suffix)
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    snap(page, "activity-log-with-long-names", phone=True)

    # Orders, billing and support show the names too: buy for each customer, ask for a
    # refund of it, and look at every page that names them, at 1366 px and at 390 px.
    for customer_id in customer_ids:
        page.goto(f"{live_server.url}/partner/customers/{customer_id}/add-products")
        page.locator("button[data-testid^='add-']").first.click()
        page.get_by_test_id("place-order").click()
        expect(page).to_have_url(re.compile(r"/orders\?order="))
        order_id = page.url.rsplit("order=", 1)[1]
        _fits(page, "orders")
        snap(page, f"orders-{customer_id[:8]}", phone=True)
        filed = _refund(live_server.url, customer_id, order_id)
        page.goto(f"{live_server.url}/partner/support/{filed}")
        _fits(page, "support request")
        snap(page, f"support-request-{customer_id[:8]}", phone=True)
    for path in ("/partner/support", "/partner/billing/invoices", "/partner/activity-log"):
        page.goto(live_server.url + path)
        _fits(page, path)
        snap(page, path.strip("/").replace("/", "-") + "-with-long-names", phone=True)

    support = open_page()
    sign_in(support, live_server.url, "support@northwind.example")
    support.goto(live_server.url + "/provider/support")
    _fits(support, "provider support queue")
    snap(support, "provider-support-with-long-names", phone=True)
    support.goto(live_server.url + f"/provider/support/{filed}")
    _fits(support, "provider support request")
    snap(support, "provider-support-request-with-long-names", phone=True)
    assert not dialogs, "markup in a name ran as script"


def _fits(page: Page, what: str) -> None:
    """The page is no wider than the window (1366 px here; snap() checks 390 px)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1366, f"{what}: {width}px wide at 1366 px"


def _refund(url: str, customer_id: str, order_id: str) -> str:
    """A refund request for the order, filed through the API; returns its id."""
    with api_client(url, "admin.agent@fabrikam.example") as http:
        r = http.post(
            "/v1/servicerequests",
            json={
                "supportTopicId": "csp_refund",
                "severity": "minimal",
                "title": "Refund for the long name",
                "description": "Bought by mistake.",
                "refund": {
                    "customerTenantId": customer_id,
                    "orderId": order_id,
                    "reason": "Bought by mistake.",
                    "amountRequested": "1.00",
                },
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

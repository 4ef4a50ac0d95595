"""The cancel dialog in Chromium, with the clock moved to day 10 and day 31 of the window."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from partnercenter.clock import FrozenClock, SystemClock
from tests.browser.conftest import api_client, demo_live_app, sign_in
from tests.live import Live

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
CUSTOMER_DOMAIN = "wingtiptoys.onmicrosoft.com"
AGENT = "admin.agent@fabrikam.example"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(SystemClock().now())


@pytest.fixture
def server(backend: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Live]:
    """The app on a real socket with the demo loaded and a clock the test moves."""
    with demo_live_app(backend, tmp_path, clock) as live:
        yield live


def _buy(live: Live) -> tuple[str, list[tuple[str, str]]]:
    """Two orders of the perpetual product for Wingtip Toys; (customer, [(order, item)])."""
    with api_client(live.url, AGENT) as http:
        cid = http.get(f"/v1/customers/{CUSTOMER_DOMAIN}").json()["id"]
        bought = []
        for _ in range(2):
            cart = http.post(
                f"/v1/customers/{cid}/carts",
                json={"lineItems": [{"id": 0, "catalogItemId": PERPETUAL, "quantity": 1}]},
            )
            assert cart.status_code == 201, cart.text
            checkout = http.post(f"/v1/customers/{cid}/carts/{cart.json()['id']}/checkout")
            assert checkout.status_code == 201, checkout.text
            order_id = checkout.json()["orders"][0]["id"]
            items = http.get(f"/v1/customers/{cid}/software").json()["items"]
            [item] = [i for i in items if i["orderId"] == order_id]
            bought.append((order_id, item["id"]))
        return cid, bought


def test_admin_agent_cancels_on_day_10_and_sees_the_window_passed_on_day_31(
    server: Live, clock: FrozenClock, open_page: Callable[..., Page]
) -> None:
    cid, [(order_id, item_id), (later_order, _)] = _buy(server)
    clock.advance(days=10)
    page = open_page()
    sign_in(page, server.url, AGENT, "/partner")

    # A link copied before the cancellation.
    with api_client(server.url, AGENT) as http:
        [item] = [
            i
            for i in http.get(f"/v1/customers/{cid}/software").json()["items"]
            if i["id"] == item_id
        ]
        first = item["versions"][0]
        choice = {
            "version": first["version"],
            "language": first["languages"][0],
            "bitness": first["bitness"][0],
        }
        link = http.post(f"/v1/customers/{cid}/software/{item_id}/downloadlink", json=choice)
        assert link.status_code == 201, link.text
        # The link names the configured base URL; this server listens on its own port.
        link_uri = server.url + "/" + link.json()["uri"].split("/", 3)[3]
    assert httpx.get(link_uri, headers={"Range": "bytes=0-15"}).status_code == 206

    # Before: the key is there.
    page.goto(f"{server.url}/partner/customers/{cid}/software")
    row = page.locator(f"tr[data-item='{item_id}']")
    expect(row.get_by_test_id("software-status")).to_have_text("Active")
    row.get_by_test_id("get-keys-and-downloads").click()
    page.get_by_test_id("get-key").click()
    expect(page.get_by_test_id("key-dialog")).to_be_visible()

    # Cancel on the Software page opens the dialog: Order number of that purchase, days
    # remaining and the credit.
    page.goto(f"{server.url}/partner/customers/{cid}/software")
    page.locator(f"tr[data-item='{item_id}']").get_by_test_id("cancel-link").click()
    modal = page.locator("dialog#pc-dialog")
    expect(modal).to_be_visible()
    dialog = modal.get_by_test_id("cancel-dialog")
    expect(dialog.get_by_test_id("order-number")).to_have_value(order_id)
    expect(dialog.get_by_test_id("order-number").locator("option")).to_have_count(2)
    expect(dialog.get_by_test_id("cancel-days")).to_contain_text(
        "20 days remain to cancel this order"
    )
    expect(dialog.get_by_test_id("cancel-credit")).to_contain_text(
        re.compile(
            r"Credit that will be issued: [0-9,]+\.[0-9]{2} AUD"
            r" \(net [0-9,]+\.[0-9]{2} AUD, tax [0-9,]+\.[0-9]{2} AUD\)"
        )
    )
    expect(dialog.get_by_test_id("important")).to_contain_text("revoked at once")

    # Submit without the acknowledgement is refused, with the message next to the checkbox.
    dialog.get_by_test_id("cancel-submit").click()
    expect(page.get_by_test_id("acknowledge-error")).to_be_visible()
    expect(page.get_by_test_id("cancel-confirmation")).to_have_count(0)

    # With it: the confirmation.
    page.get_by_test_id("acknowledge").check()
    page.get_by_test_id("cancel-submit").click()
    expect(page.get_by_test_id("cancel-confirmation")).to_contain_text(
        "Your cancellation is confirmed"
    )
    expect(page.get_by_test_id("cancelled-order")).to_contain_text(f"Order {order_id}")

    # The item stays on the Software page, marked cancelled, with no key to get.
    page.goto(f"{server.url}/partner/customers/{cid}/software")
    row = page.locator(f"tr[data-item='{item_id}']")
    expect(row.get_by_test_id("software-status")).to_have_text("Cancelled")
    expect(row.get_by_test_id("get-keys-and-downloads")).to_have_count(0)

    # At once: the copied link answers 410 and Get Key is refused.
    gone = httpx.get(link_uri)
    assert gone.status_code == 410
    with api_client(server.url, AGENT) as http:
        key = http.post(f"/v1/customers/{cid}/software/{item_id}/key", json=choice)
        assert key.status_code == 410, key.text

    # Day 31: the other order's window has passed.
    clock.advance(days=21)
    page = open_page()
    sign_in(page, server.url, AGENT, "/partner")
    page.goto(f"{server.url}/partner/customers/{cid}/cancel?order={later_order}")
    expect(page.get_by_test_id("cancel-window-passed")).to_contain_text(
        "The 30-day cancellation window has passed"
    )
    expect(page.get_by_test_id("cancel-submit")).to_have_count(0)


def test_cancel_dialog_is_a_true_modal_keeping_focus_inside_and_closing_on_escape(
    server: Live, open_page: Callable[..., Page]
) -> None:
    cid, [(_order_id, item_id), _] = _buy(server)
    page = open_page()
    sign_in(page, server.url, AGENT, "/partner")
    page.goto(f"{server.url}/partner/customers/{cid}/software")
    link = page.locator(f"tr[data-item='{item_id}']").get_by_test_id("cancel-link")
    link.click()
    modal = page.locator("dialog#pc-dialog")
    expect(modal).to_be_visible()
    expect(modal.get_by_test_id("cancel-dialog")).to_be_visible()
    # Opened with showModal(): the page behind is inert and the dialog is in the top layer.
    assert modal.evaluate("d => d.matches(':modal')")
    # Tabbing through every control never leaves the dialog (the browser is the only other
    # stop a modal allows: focus sits on the document body or nowhere in the page).
    for _ in range(25):
        page.keyboard.press("Tab")
        inside = page.evaluate(
            "() => { const a = document.activeElement;"
            " return !a || a === document.body || !!a.closest('dialog#pc-dialog'); }"
        )
        assert inside
    page.keyboard.press("Escape")
    expect(modal).to_be_hidden()
    assert not modal.evaluate("d => d.open")

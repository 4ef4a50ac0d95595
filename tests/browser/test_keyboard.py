"""Keyboard only, in Chromium: sign in, find the customer, add a product, place the order,
Get Key and copy it, without a single mouse click. Every step reaches its control with Tab
(so it is in the tab order and focusable) and acts with Enter, Space or typing."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from partnercenter import demo
from tests.browser.conftest import LiveServer, snap

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
MAX_TABS = 400


def tab_to(page: Page, predicate: str, what: str) -> None:
    """Press Tab until the focused element satisfies ``predicate`` (a JS expression over
    ``el``); fail if it is never reached, i.e. cannot be reached by keyboard."""
    check = f"(() => {{ const el = document.activeElement; return !!el && ({predicate}); }})()"
    for _ in range(MAX_TABS):
        page.keyboard.press("Tab")
        if page.evaluate(check):
            return
    pytest.fail(f"{what} cannot be reached with the Tab key")


def go(page: Page, key: str = "Enter") -> None:
    """Press a key that follows a link or submits a form, and wait for the next page."""
    with page.expect_navigation():
        page.keyboard.press(key)


def by_testid(name: str) -> str:
    return f"el.dataset.testid === {name!r}"


def test_sign_in_buy_get_key_and_copy_it_by_keyboard_alone(
    page: Page, live_server: LiveServer
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(live_server.url + "/signin")
    tab_to(page, "el.name === 'email'", "the email field")
    page.keyboard.type("admin.agent@fabrikam.example")
    tab_to(page, "el.name === 'password'", "the password field")
    page.keyboard.type(demo.DEMO_PASSWORD)
    go(page)
    expect(page).to_have_url(re.compile(r"/partner$"))

    tab_to(page, "el.matches('nav.sidenav a') && el.textContent.trim() === 'Customers'", "menu")
    go(page)
    tab_to(page, by_testid("customer-search"), "the customer search box")
    page.keyboard.type("wingtiptoys")
    go(page)
    tab_to(page, "el.tagName === 'A' && el.textContent.trim() === 'Wingtip Toys Pty'", "row")
    go(page)
    expect(page.get_by_test_id("customer-name")).to_have_text("Wingtip Toys Pty")

    tab_to(page, by_testid("tab-add-products"), "the Add products tab")
    go(page)
    tab_to(page, by_testid("offer-search"), "the product search box")
    page.keyboard.type("2022 Standard")
    go(page)
    expect(page.get_by_test_id(f"add-{PERPETUAL}")).to_be_visible()
    tab_to(page, by_testid(f"qty-{PERPETUAL}"), "the quantity")
    page.keyboard.press("Control+A")
    page.keyboard.type("1")
    tab_to(page, by_testid(f"add-{PERPETUAL}"), "Add to cart")
    go(page)
    expect(page.get_by_test_id("cart-line")).to_have_count(1)
    tab_to(page, by_testid("place-order"), "Place order")
    go(page)
    expect(page).to_have_url(re.compile(r"/orders\?order="))
    order_id = page.url.rsplit("order=", 1)[1]

    tab_to(page, by_testid("tab-software"), "the Software tab")
    go(page)
    in_row = f"el.closest('tr') && el.closest('tr').textContent.includes({order_id!r})"
    tab_to(page, f"{by_testid('get-keys-and-downloads')} && {in_row}", "Get keys and downloads")
    go(page)
    tab_to(page, by_testid("get-key"), "Get Key")
    go(page)

    dialog = page.get_by_test_id("key-dialog")
    expect(dialog).to_be_visible()
    # The dialog is modal: focus starts on Copy and Tab never leaves the dialog.
    assert page.evaluate("document.activeElement.dataset.testid") == "copy-key"
    for _ in range(6):
        page.keyboard.press("Tab")
        inside = page.evaluate(
            "document.querySelector('[data-testid=key-dialog]').contains(document.activeElement)"
            " || document.activeElement === document.body"
        )
        assert inside, "focus left the modal dialog"
    tab_to(page, by_testid("copy-key"), "Copy")
    page.keyboard.press("Space")
    expect(page.get_by_test_id("toast")).to_be_visible()
    key = page.get_by_test_id("product-key").inner_text().strip()
    assert page.evaluate("navigator.clipboard.readText()") == key
    snap(page, "keyboard-key-copied")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()


def _sign_in_by_keyboard(page: Page, url: str) -> None:
    page.goto(url + "/signin")
    tab_to(page, "el.name === 'email'", "the email field")
    page.keyboard.type("admin.agent@fabrikam.example")
    tab_to(page, "el.name === 'password'", "the password field")
    page.keyboard.type(demo.DEMO_PASSWORD)
    go(page)
    expect(page).to_have_url(re.compile(r"/partner$"))


def _choose_by_keyboard(page: Page, testid: str, value: str) -> None:
    """With the select focused, Arrow Down until ``value`` is chosen (as a keyboard user does)."""
    tab_to(page, by_testid(testid), testid)
    for _ in range(12):
        if page.evaluate("document.activeElement.value") == value:
            return
        page.keyboard.press("ArrowDown")
    pytest.fail(f"{value} cannot be chosen in {testid} with the keyboard")


def test_cancel_a_purchase_and_report_a_problem_by_keyboard_alone(
    page: Page, live_server: LiveServer
) -> None:
    from tests.browser.test_dialogs import _buy

    cid, order_id = _buy(live_server.url)
    _sign_in_by_keyboard(page, live_server.url)

    # Cancel purchase: the link opens the modal dialog; the acknowledgement is a checkbox
    # ticked with Space; Submit with Enter.
    page.goto(f"{live_server.url}/partner/customers/{cid}/software")
    in_row = f"el.closest('tr') && el.closest('tr').textContent.includes({order_id!r})"
    tab_to(page, f"{by_testid('cancel-link')} && {in_row}", "Cancel purchase")
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#pc-dialog")
    expect(dialog.get_by_test_id("cancel-form")).to_be_visible()
    expect(dialog.get_by_test_id("order-number")).to_have_value(order_id)
    tab_to(page, by_testid("acknowledge"), "the acknowledgement")
    page.keyboard.press("Space")
    assert page.evaluate("document.activeElement.checked")
    tab_to(page, by_testid("cancel-submit"), "Submit")
    go(page)
    expect(page.get_by_test_id("cancel-confirmation")).to_contain_text(
        "Your cancellation is confirmed"
    )

    # Report a problem: from the support list, every field filled by keyboard.
    page.goto(f"{live_server.url}/partner/support")
    tab_to(page, by_testid("report-problem"), "Report a problem")
    go(page)
    _choose_by_keyboard(page, "topic", "orders")
    _choose_by_keyboard(page, "severity", "minimal")
    title = f"Typed without a mouse {order_id[:8]}"
    tab_to(page, by_testid("title"), "the title")
    page.keyboard.type(title)
    tab_to(page, by_testid("description"), "the description")
    page.keyboard.type("The order shows twice in the list.")
    for testid, text in (
        ("first-name", "Ana"),
        ("last-name", "García"),
        ("email", "ana@fabrikam.example"),
        ("phone", "+34 600 000 000"),
    ):
        tab_to(page, by_testid(testid), testid)
        page.keyboard.press("Control+A")  # it may be filled in from the account
        page.keyboard.type(text)
    tab_to(page, by_testid("submit"), "Submit")
    go(page)
    expect(page.locator("h1")).to_contain_text(title)
    snap(page, "keyboard-support-request-filed")

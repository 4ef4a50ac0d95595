"""Every dialog of the three portals is a true modal, in Chromium, by keyboard alone.

The dialogs: the cancel-purchase dialog (a page shown in a dialog), the Get Key dialog, and
the confirmations of Remove user, Revoke token, Close month, Approve refund and Reject
refund (forms marked ``data-confirm``). Each is opened with the keyboard and must be: opened
with ``showModal()`` (``:modal``, the page behind inert), centred in the window, keeping
focus inside while Tab is pressed, closed by Escape, and giving focus back to the control
that opened it. A confirmation confirmed does what its button says; dismissed, nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from partnercenter import demo
from tests.browser.conftest import LiveServer, api_client, sign_in, snap
from tests.browser.test_keyboard import go, tab_to

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
AGENT = "admin.agent@fabrikam.example"
GLOBAL_ADMIN = "global.admin@fabrikam.example"


def _mark_focus(page: Page) -> None:
    """Tag the focused element, to check later that focus came back to it."""
    page.evaluate("document.activeElement.setAttribute('data-opener', 'yes')")


def assert_true_modal(page: Page, dialog: Locator, name: str) -> None:
    """Modal, centred, focus kept inside, photographed and audited (desktop and phone)."""
    expect(dialog).to_be_visible()
    assert dialog.evaluate("d => d.tagName === 'DIALOG' && d.open && d.matches(':modal')"), name
    box = dialog.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    assert abs(box["x"] + box["width"] / 2 - size["width"] / 2) <= 2, f"{name}: not centred"
    if box["height"] < size["height"]:
        assert abs(box["y"] + box["height"] / 2 - size["height"] / 2) <= 2, f"{name}: not centred"
    # Focus is inside the dialog and Tab never takes it out (the browser's own chrome,
    # i.e. no element or the body, is the only other stop a modal allows).
    inside = (
        "(d) => { const a = document.activeElement;"
        " return !a || a === document.body || d.contains(a); }"
    )
    assert dialog.evaluate("(d) => d.contains(document.activeElement)"), f"{name}: focus outside"
    for _ in range(12):
        page.keyboard.press("Tab")
        assert dialog.evaluate(inside), f"{name}: Tab left the dialog"
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
        assert dialog.evaluate(inside), f"{name}: Shift+Tab left the dialog"
    snap(page, name, phone=True)


def assert_closes_on_escape_and_gives_focus_back(page: Page, dialog: Locator, name: str) -> None:
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    # The dialog's "close" event (which puts focus back) is a task queued after it hides.
    back = "document.activeElement && document.activeElement.getAttribute('data-opener') === 'yes'"
    try:
        page.wait_for_function(back, timeout=5_000)
    except PlaywrightTimeout:
        pytest.fail(f"{name}: focus did not return to the control that opened the dialog")
    page.evaluate("document.querySelector('[data-opener]').removeAttribute('data-opener')")


def _buy(url: str) -> tuple[str, str]:
    """One perpetual licence for Wingtip Toys through the API: (customer id, order id)."""
    with api_client(url, AGENT) as http:
        cid = http.get("/v1/customers/wingtiptoys.onmicrosoft.com").json()["id"]
        cart = http.post(
            f"/v1/customers/{cid}/carts",
            json={"lineItems": [{"id": 0, "catalogItemId": PERPETUAL, "quantity": 1}]},
        )
        assert cart.status_code == 201, cart.text
        checkout = http.post(f"/v1/customers/{cid}/carts/{cart.json()['id']}/checkout")
        assert checkout.status_code == 201, checkout.text
        return cid, checkout.json()["orders"][0]["id"]


def test_cancel_and_get_key_dialogs_are_modal_close_on_escape_and_give_focus_back(
    page: Page, live_server: LiveServer
) -> None:
    cid, order_id = _buy(live_server.url)
    sign_in(page, live_server.url, AGENT)
    page.goto(f"{live_server.url}/partner/customers/{cid}/software")
    in_row = f"el.closest('tr') && el.closest('tr').textContent.includes({order_id!r})"

    # Cancel purchase: a page shown in a modal dialog.
    tab_to(page, f"el.dataset.testid === 'cancel-link' && {in_row}", "Cancel purchase")
    _mark_focus(page)
    page.keyboard.press("Enter")
    dialog = page.locator("dialog#pc-dialog")
    expect(dialog.get_by_test_id("cancel-dialog")).to_be_visible()
    assert_true_modal(page, dialog, "cancel-dialog")
    assert_closes_on_escape_and_gives_focus_back(page, dialog, "cancel-dialog")

    # Get Key: shown after POST -> redirect -> GET; closing returns to Get Key.
    tab_to(page, f"el.dataset.testid === 'get-keys-and-downloads' && {in_row}", "Get keys")
    go(page)
    tab_to(page, "el.dataset.testid === 'get-key'", "Get Key")
    go(page)
    key = page.get_by_test_id("key-dialog")
    page.evaluate("document.querySelector('[data-testid=get-key]').dataset.opener = 'yes'")
    assert_true_modal(page, key, "key-dialog")
    assert_closes_on_escape_and_gives_focus_back(page, key, "key-dialog")


def test_remove_user_and_revoke_token_ask_in_a_modal_first(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    page = open_page()
    sign_in(page, live_server.url, GLOBAL_ADMIN)
    # A user to remove, made for this test.
    email = f"leaving-{uuid.uuid4().hex[:8]}@fabrikam.example"
    page.goto(live_server.url + "/partner/users")
    form = page.locator("form[action='/partner/users']")
    form.locator("input[name=email]").fill(email)
    form.locator("input[name=display_name]").fill("Leaving Soon")
    form.locator("input[name=password]").fill("a-long-password-1")
    form.locator("button[type=submit]").click()
    row = page.locator("tr", has_text=email)
    expect(row).to_contain_text("Active")

    remove = f"el.closest('tr') && el.closest('tr').textContent.includes({email!r})"
    danger = "el.tagName === 'BUTTON' && el.classList.contains('danger')"
    tab_to(page, f"{danger} && {remove}", "Remove")
    _mark_focus(page)
    page.keyboard.press("Enter")
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text("Leaving Soon")
    # The safe choice has focus: Cancel.
    assert page.evaluate("document.activeElement.dataset.testid") == "confirm-cancel"
    assert_true_modal(page, confirm, "remove-user-confirm")
    assert_closes_on_escape_and_gives_focus_back(page, confirm, "remove-user-confirm")
    expect(page.locator("tr", has_text=email)).to_contain_text("Active")  # nothing happened

    # Cancel by keyboard: nothing happens either; then confirm it.
    page.locator("tr", has_text=email).locator("button.danger").focus()
    page.keyboard.press("Enter")
    expect(confirm).to_be_visible()
    page.keyboard.press("Enter")  # on Cancel
    expect(confirm).to_have_count(0)
    expect(page.locator("tr", has_text=email)).to_contain_text("Active")
    page.locator("tr", has_text=email).locator("button.danger").focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("confirm-ok").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("tr", has_text=email)).to_contain_text("Removed")

    # Revoke a token made for this test.
    page.goto(live_server.url + "/account/tokens")
    name = f"dialog test {uuid.uuid4().hex[:6]}"
    page.locator("form[action='/account/tokens'] input[name=name]").fill(name)
    page.locator("form[action='/account/tokens'] button[type=submit]").click()
    expect(page.get_by_test_id("new-token")).to_be_visible()
    revoke = page.locator("tr", has_text=name).get_by_role("button", name="Revoke")
    revoke.focus()
    _mark_focus(page)
    page.keyboard.press("Enter")
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text(name)
    assert_true_modal(page, confirm, "revoke-token-confirm")
    assert_closes_on_escape_and_gives_focus_back(page, confirm, "revoke-token-confirm")
    expect(page.locator("tr", has_text=name)).not_to_contain_text("Revoked")
    revoke.click()
    with page.expect_navigation():
        confirm.get_by_test_id("confirm-ok").click()
    expect(page.locator("tr", has_text=name)).to_contain_text("Revoked")


def test_close_month_asks_in_a_modal_first_and_escape_closes_nothing(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    page = open_page("es-ES")
    sign_in(page, live_server.url, demo.PROVIDER_ADMIN_EMAIL)
    page.goto(live_server.url + "/provider/billing")
    before = page.get_by_test_id("periods").inner_text()
    tab_to(page, "el.closest('[data-testid=close-period]') && el.type === 'submit'", "Close")
    _mark_focus(page)
    page.keyboard.press("Enter")
    confirm = page.get_by_test_id("confirm-dialog")
    expect(confirm).to_contain_text("¿Cerrar el mes?")
    expect(confirm.get_by_test_id("confirm-cancel")).to_have_text("Cancelar")
    assert_true_modal(page, confirm, "close-month-confirm-es")
    assert_closes_on_escape_and_gives_focus_back(page, confirm, "close-month-confirm-es")
    assert page.url.endswith("/provider/billing")
    assert page.get_by_test_id("periods").inner_text() == before

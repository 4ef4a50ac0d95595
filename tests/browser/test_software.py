"""Software in Chromium: an Admin agent gets a key, downloads a file and checks its SHA-256,
copies a link and downloads through it signed out; the customer's Global admin sees the same
key in the Admin Center."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from partnercenter.catalog import services as catalog
from partnercenter.db import make_session_factory
from tests.browser.conftest import LiveServer, api_client, sign_in, snap

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
CUSTOMER_DOMAIN = "wingtiptoys.onmicrosoft.com"


def _buy(live_server: LiveServer) -> tuple[str, str, dict[str, str]]:
    """Buy the perpetual product for Wingtip Toys over the API; returns customer, item, file."""
    with api_client(live_server.url, "admin.agent@fabrikam.example") as http:
        customer = http.get(f"/v1/customers/{CUSTOMER_DOMAIN}").json()
        cid = customer["id"] if "id" in customer else customer["companyProfile"]["tenantId"]
        cart = http.post(
            f"/v1/customers/{cid}/carts",
            json={"lineItems": [{"id": 0, "catalogItemId": PERPETUAL, "quantity": 1}]},
        )
        assert cart.status_code == 201, cart.text
        checkout = http.post(f"/v1/customers/{cid}/carts/{cart.json()['id']}/checkout")
        assert checkout.status_code in (200, 201), checkout.text
        order_id = checkout.json()["orders"][0]["id"]
        items = http.get(f"/v1/customers/{cid}/software").json()["items"]
        [item] = [i for i in items if i["orderId"] == order_id]
        first = item["versions"][0]
        choice = {
            "version": first["version"],
            "language": first["languages"][0],
            "bitness": first["bitness"][0],
        }
        return cid, item["id"], choice


def _choose(page: Page, item_id: str, choice: dict[str, str]) -> None:
    row = page.locator(f"tr[data-item='{item_id}']")
    row.get_by_test_id("choose-version").select_option(choice["version"])
    row.get_by_test_id("choose-language").select_option(choice["language"])
    row.get_by_test_id("choose-bitness").select_option(choice["bitness"])
    row.get_by_test_id("get-keys-and-downloads").click()
    expect(page.get_by_test_id("keys-and-downloads")).to_be_visible()


def test_admin_agent_key_download_link_and_the_customers_admin_center(
    open_page: Callable[..., Page], live_server: LiveServer, tmp_path: Path
) -> None:
    cid, item_id, choice = _buy(live_server)
    with make_session_factory(live_server.engine)() as session:
        artifact = catalog.get_artifact(session, product_id="DG7GMGF0D7FV", sku_id="0001", **choice)
        expected_sha = artifact.sha256

    page = open_page()
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server.url, "admin.agent@fabrikam.example")
    page.goto(f"{live_server.url}/partner/customers/{cid}")
    page.get_by_test_id("tab-software").click()
    expect(page.locator(f"tr[data-item='{item_id}']")).to_contain_text("Active")
    _choose(page, item_id, choice)

    # Get Key: a centred modal dialog with the key; Copy copies it and says so.
    page.get_by_test_id("get-key").click()
    dialog = page.get_by_test_id("key-dialog")
    expect(dialog).to_be_visible()
    assert page.evaluate("document.querySelector('[data-testid=key-dialog]').matches(':modal')")
    box = dialog.bounding_box()
    assert box is not None
    assert abs((box["x"] + box["width"] / 2) - 1366 / 2) < 2  # centred in the window
    assert box["y"] > 0 and box["y"] + box["height"] < 900  # above the fold
    assert "reveal=" not in page.url  # the one-time id is gone from the address bar
    key = page.get_by_test_id("product-key").inner_text().strip()
    assert len(key) >= 5
    page.get_by_test_id("copy-key").click()
    expect(page.get_by_test_id("toast")).to_contain_text("Copied")
    snap(page, "get-key-dialog-copied")
    assert page.evaluate("navigator.clipboard.readText()") == key
    page.keyboard.press("Escape")  # keyboard-closable
    expect(dialog).to_be_hidden()

    # Reloading never reveals the key again.
    page.reload()
    expect(page.get_by_test_id("key-dialog")).to_have_count(0)
    assert key not in page.content()

    # Download is a button; the file's SHA-256 is the one the catalog recorded.
    _choose(page, item_id, choice)
    download_button = page.get_by_test_id("download")
    assert download_button.evaluate("el => getComputedStyle(el).borderTopStyle") == "solid"
    with page.expect_download() as info:
        download_button.click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == expected_sha

    # Copy Link: one click makes a signed link, copies it and says so.
    page.get_by_test_id("copy-link").click()
    expect(page.get_by_test_id("toast").last).to_contain_text("Link copied")
    snap(page, "copy-link-copied")
    link = page.evaluate("navigator.clipboard.readText()")
    assert link.startswith(live_server.url + "/downloads/")

    stranger = open_page()
    response = stranger.context.request.get(link)
    assert response.status == 200
    assert hashlib.sha256(response.body()).hexdigest() == expected_sha
    assert response.headers["x-checksum-sha256"] == expected_sha

    # The customer's Global admin sees the same key under Billing > Your products > Software.
    admin = open_page()
    sign_in(admin, live_server.url, "global.admin@wingtiptoys.example")
    admin.locator("nav.sidenav").get_by_role("link", name="Software").click()
    _choose(admin, item_id, choice)
    admin.get_by_test_id("get-key").click()
    expect(admin.get_by_test_id("product-key")).to_have_text(key)
    expect(admin.get_by_test_id("copy-link")).to_have_count(0)

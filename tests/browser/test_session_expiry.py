"""An expired session in Chromium: the form the user was filling posts, sign-in is asked
for, and after signing in again the browser is back on the form's page (never "Method Not
Allowed"), ready to do it again."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import update

from partnercenter import demo
from partnercenter.identity.models import User, WebSession
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"
AGENT = "admin.agent@fabrikam.example"


def _sign_in(page: Page) -> None:
    page.locator("input[name=email]").fill(AGENT)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("form[action='/signin'] button[type=submit]").click()


def test_signing_in_again_after_expiry_returns_to_the_form_page(
    page: Page, live_server: LiveServer
) -> None:
    page.goto(live_server.url + "/signin")
    _sign_in(page)
    page.goto(live_server.url + "/partner/customers?q=wingtiptoys")
    page.get_by_role("link", name="Wingtip Toys Pty").click()
    page.get_by_test_id("tab-add-products").click()
    add_products = page.url
    expect(page.get_by_test_id(f"add-{PERPETUAL}")).to_be_visible()

    with live_server.engine.begin() as conn:  # the agent's sessions end (by any clock)
        agent = conn.execute(User.__table__.select().where(User.email == AGENT)).first()
        assert agent is not None
        conn.execute(
            update(WebSession)
            .where(WebSession.user_id == agent.id)
            .values(expires_at=datetime(2000, 1, 1, tzinfo=UTC))
        )

    page.get_by_test_id(f"add-{PERPETUAL}").click()
    expect(page).to_have_url(re.compile(r"/signin\?next="))
    _sign_in(page)
    expect(page).to_have_url(add_products)
    assert "Method Not Allowed" not in page.content()
    page.get_by_test_id(f"add-{PERPETUAL}").click()  # and now it works
    expect(page.get_by_test_id("cart-line")).to_have_count(1)

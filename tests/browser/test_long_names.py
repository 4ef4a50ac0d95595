"""Long, accented and hostile names in Chromium: a 200-character unbroken company name and
one with markup never widen a page (desktop or phone; the screenshots and width checks of
the browser fixtures cover every page visited), are shown escaped, and are clipped with the
full name in a tooltip."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from partnercenter import demo
from tests.browser.conftest import LiveServer, snap

pytestmark = pytest.mark.browser


def _sign_in(page: Page, url: str, email: str) -> None:
    page.goto(url + "/signin")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("form[action='/signin'] button[type=submit]").click()


def test_a_200_character_name_and_a_hostile_name_never_widen_a_page(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    suffix = uuid.uuid4().hex[:6]
    long_name = ("Ñ" + "W" * 193 + suffix)[:200]
    hostile = f'<img src=x onerror="alert(1)"> Ünïcödé & Søn {suffix}'
    page = open_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    _sign_in(page, live_server.url, "global.admin@fabrikam.example")
    for n, name in enumerate((long_name, hostile)):
        page.goto(live_server.url + "/partner/customers")
        form = page.get_by_test_id("add-customer")
        form.locator("input[name=company_name]").fill(name)
        form.locator("input[name=domain]").fill(f"long{n}{suffix}")
        form.locator("select[name=country]").select_option("ES")
        form.locator("button[type=submit]").click()
        expect(page.get_by_test_id("customer-name")).to_have_text(name)
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
    assert not dialogs, "markup in a name ran as script"

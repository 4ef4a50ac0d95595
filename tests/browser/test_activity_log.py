"""The Activity log in Chromium: a Global admin picks a range, filters by a customer, sees
the Get Key an Admin agent made moments earlier, and exports the selection as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import LiveServer, sign_in
from tests.browser.test_software import _buy, _choose

pytestmark = pytest.mark.browser


def _filter_wingtip_keys_today(page: Page, base_url: str) -> Locator:
    """Apply today's Get Key filter for Wingtip Toys; the table's record rows."""
    today = datetime.now(UTC).date().isoformat()
    page.goto(f"{base_url}/partner/activity-log")
    page.locator("input[name=from]").fill(today)
    page.locator("input[name=to]").fill(today)
    page.locator("input[name=customer]").fill("wingtip")
    page.locator("select[name=action]").select_option("get_software_key")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_test_id("activity-records")).to_be_visible()
    return page.get_by_test_id("activity-records").locator("tbody tr[data-record-id]")


def test_global_admin_finds_the_get_key_record_and_exports_it(
    open_page: Callable[..., Page], live_server: LiveServer, tmp_path: Path
) -> None:
    # The live server is shared by the session's browser tests, and others reveal keys of
    # the same customer today: count what is there first, then find exactly one more.
    page = open_page()
    sign_in(page, live_server.url, "global.admin@fabrikam.example")
    page.locator("nav.sidenav").get_by_role("link", name="Activity log").click()
    before = _filter_wingtip_keys_today(page, live_server.url).count()

    cid, item_id, choice = _buy(live_server)
    agent = open_page()
    sign_in(agent, live_server.url, "admin.agent@fabrikam.example")
    agent.goto(f"{live_server.url}/partner/customers/{cid}")
    agent.get_by_test_id("tab-software").click()
    _choose(agent, item_id, choice)
    agent.get_by_test_id("get-key").click()
    expect(agent.get_by_test_id("key-dialog")).to_be_visible()
    # The Admin agent has no activity-log role: no menu entry, and the page refuses it.
    expect(agent.locator("nav.sidenav").get_by_role("link", name="Activity log")).to_have_count(0)
    refused = agent.goto(f"{live_server.url}/partner/activity-log")
    assert refused is not None and refused.status == 403

    rows = _filter_wingtip_keys_today(page, live_server.url)
    expect(rows).to_have_count(before + 1)
    newest = rows.first  # newest first: the Get Key just made
    expect(newest).to_contain_text("Get key")
    expect(newest).to_contain_text("admin.agent@fabrikam.example")
    expect(newest).to_contain_text("Wingtip Toys")
    expect(newest).to_contain_text(f"version {choice['version']}.")
    record_id = newest.get_attribute("data-record-id")
    shown = [rows.nth(i).get_attribute("data-record-id") for i in range(before + 1)]

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name.endswith(".csv")
    exported = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    # The export is the selection on the page, newest first.
    assert [r["id"] for r in exported] == shown
    assert exported[0]["id"] == record_id
    assert exported[0]["operationType"] == "get_software_key"
    assert exported[0]["customerId"] == cid
    assert exported[0]["userPrincipalName"] == "admin.agent@fabrikam.example"

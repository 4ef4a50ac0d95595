"""The Activity log in Chromium: a Global admin picks a range, filters by a customer, sees
the Get Key an Admin agent made moments earlier, and exports the selection as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer, sign_in
from tests.browser.test_software import _buy, _choose

pytestmark = pytest.mark.browser


def test_global_admin_finds_the_get_key_record_and_exports_it(
    open_page: Callable[..., Page], live_server: LiveServer, tmp_path: Path
) -> None:
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

    today = datetime.now(UTC).date().isoformat()
    page = open_page()
    sign_in(page, live_server.url, "global.admin@fabrikam.example")
    page.locator("nav.sidenav").get_by_role("link", name="Activity log").click()
    page.locator("input[name=from]").fill(today)
    page.locator("input[name=to]").fill(today)
    page.locator("input[name=customer]").fill("wingtip")
    page.locator("select[name=action]").select_option("get_software_key")
    page.get_by_role("button", name="Apply").click()
    rows = page.get_by_test_id("activity-records").locator("tbody tr[data-record-id]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Get key")
    expect(rows.first).to_contain_text("admin.agent@fabrikam.example")
    expect(rows.first).to_contain_text("Wingtip Toys")
    expect(rows.first).to_contain_text(f"version {choice['version']}.")
    record_id = rows.first.get_attribute("data-record-id")

    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    assert saved.name.endswith(".csv")
    exported = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [r["id"] for r in exported] == [record_id]
    assert exported[0]["operationType"] == "get_software_key"
    assert exported[0]["customerId"] == cid
    assert exported[0]["userPrincipalName"] == "admin.agent@fabrikam.example"

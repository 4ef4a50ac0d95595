"""Monthly invoice in Chromium: purchases and a cancellation in November, the provider closes
November from the console, the Billing admin opens the invoice and downloads PDF and CSV.

The clock is the server's injected clock, moved by the test the way the sandbox clock moves a
sandbox deployment. The PDF is rendered to an image with PDFium and the total is read back
from the rendered page's text layer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from playwright.sync_api import Page, expect

from partnercenter import demo
from partnercenter.clock import FrozenClock
from tests.browser.conftest import ARTIFACTS, api_client, demo_live_app, sign_in, snap
from tests.live import Live

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
CUSTOMER_DOMAIN = "wingtiptoys.onmicrosoft.com"
AGENT = "admin.agent@fabrikam.example"
BILLING_ADMIN = "billing.admin@fabrikam.example"
NOV_10 = datetime(2026, 11, 10, 9, 0, tzinfo=UTC)
NOV_12 = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOV_10)


@pytest.fixture
def server(backend: str, tmp_path: Path, clock: FrozenClock) -> Iterator[Live]:
    with demo_live_app(backend, tmp_path, clock) as live:
        yield live


def _buy_and_cancel(live: Live, clock: FrozenClock) -> None:
    """Two purchases on November 10, the first cancelled on November 12."""
    with api_client(live.url, AGENT) as http:
        cid = http.get(f"/v1/customers/{CUSTOMER_DOMAIN}").json()["id"]
        orders = []
        for quantity in (1, 1):
            cart = http.post(
                f"/v1/customers/{cid}/carts",
                json={"lineItems": [{"id": 0, "catalogItemId": PERPETUAL, "quantity": quantity}]},
            )
            assert cart.status_code == 201, cart.text
            checkout = http.post(f"/v1/customers/{cid}/carts/{cart.json()['id']}/checkout")
            assert checkout.status_code == 201, checkout.text
            orders.append(checkout.json()["orders"][0]["id"])
    clock.set(NOV_12)
    with api_client(live.url, AGENT) as http:
        r = http.patch(f"/v1/customers/{cid}/orders/{orders[0]}", json={"status": "cancelled"})
        assert r.status_code == 200, r.text


def test_billing_admin_reads_novembers_invoice_as_page_pdf_and_csv(
    server: Live, clock: FrozenClock, tmp_path: Path, open_page: Callable[..., Page]
) -> None:
    _buy_and_cancel(server, clock)
    clock.set(DEC_1)

    console = open_page()
    sign_in(console, server.url, demo.PROVIDER_ADMIN_EMAIL, "/provider")
    console.goto(server.url + "/provider/billing")
    close_form = console.get_by_test_id("close-period")
    expect(close_form.locator("input[name=month]")).to_have_value("2026-11")
    close_form.get_by_role("button", name="Close month").click()
    confirm = console.get_by_test_id("confirm-dialog")  # a modal asks first
    expect(confirm).to_contain_text("invoice of the month is issued")
    assert confirm.evaluate("d => d.matches(':modal')")
    snap(console, "close-month-confirm")
    confirm.get_by_test_id("confirm-ok").click()
    expect(console.get_by_test_id("close-result")).to_contain_text("November 2026")
    expect(console.locator("tr[data-month='2026-11']")).to_contain_text("Closed")

    page = open_page()
    sign_in(page, server.url, BILLING_ADMIN, "/partner")
    page.get_by_role("link", name="Billing").click()
    expect(page).to_have_url(server.url + "/partner/billing/invoices")
    invoices = page.get_by_test_id("invoices")
    # The demo's closed month is listed too: open November's invoice by its row.
    november = invoices.locator("tbody tr", has_text="November 2026")
    expect(november).to_have_count(1)
    november.locator("a[href^='/partner/billing/invoices/']").click()

    lines = page.get_by_test_id("invoice-lines")
    expect(lines.locator("tr[data-charge-type='new']")).to_have_count(2)
    expect(lines.locator("tr[data-charge-type='cancel']")).to_have_count(1)
    expect(lines.locator("tr[data-charge-type='cancel']")).to_contain_text("-")
    shown_total = page.get_by_test_id("invoice-total").inner_text()
    total = Decimal(re.sub(r"[^0-9.\-]", "", shown_total.split()[0]))
    assert total > 0
    # Every column of the lines is in view at desktop width: the table does not scroll
    # sideways inside its frame (the 36-character order id may break).
    assert page.viewport_size and page.viewport_size["width"] == 1366
    frame = page.locator(".table-wrap", has=lines)
    widths = frame.evaluate("f => [f.scrollWidth, f.clientWidth]")
    assert widths[0] <= widths[1], f"invoice lines overflow their frame: {widths}"

    with page.expect_download() as pdf_download:
        page.get_by_test_id("download-pdf").click()
    pdf_path = tmp_path / "invoice.pdf"
    pdf_download.value.save_as(pdf_path)
    with page.expect_download() as csv_download:
        page.get_by_test_id("download-csv").click()
    csv_path = tmp_path / "lineitems.csv"
    csv_download.value.save_as(csv_path)

    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert sorted(r["ChargeType"] for r in rows) == ["cancel", "new", "new"]
    assert sum(Decimal(r["TotalForCustomer"]) for r in rows) == total
    assert {r["Currency"] for r in rows} == {"AUD"}

    document = pdfium.PdfDocument(str(pdf_path))
    pdf_page = document[0]
    image = pdf_page.render(scale=2).to_pil()
    ARTIFACTS.mkdir(exist_ok=True)
    image.save(ARTIFACTS / f"invoice-{server.settings.database_url.split(':')[0]}.png")
    assert image.width > 1000 and image.height > 1500
    assert image.convert("L").getextrema()[0] < 64  # dark ink (text, rules) was drawn
    text = pdf_page.get_textpage().get_text_range()
    found = re.search(r"Total\s*([-0-9,.]+) AUD\s*$", text.strip())
    assert found, text
    assert Decimal(found.group(1).replace(",", "")) == total

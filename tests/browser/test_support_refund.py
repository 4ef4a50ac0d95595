"""A refund above the self-service limit, in Chromium: from the cancel dialog's link the
partner files the request with a file; provider support asks for information, then approves
part of it; the purchase is cancelled and the credit is among the partner's unbilled lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Page, expect

from partnercenter.catalog.models import Product
from partnercenter.clock import FrozenClock, SystemClock
from tests.browser.conftest import api_client, demo_live_app, sign_in
from tests.live import Live
from tests.support.conftest import Mailbox, free_port

pytestmark = pytest.mark.browser

PERPETUAL = "DG7GMGF0D7FV:0001:AUD-PERP-OT"  # Windows Server 2022 Standard, AUD
CUSTOMER_DOMAIN = "wingtiptoys.onmicrosoft.com"
AGENT = "admin.agent@fabrikam.example"
SUPPORT = "support@northwind.example"
GLOBAL_ADMIN = "global.admin@fabrikam.example"
PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


@pytest.fixture
def server(backend: str, tmp_path: Path) -> Iterator[Live]:
    """The app on a real socket with the demo loaded and a real SMTP server beside it."""
    with demo_live_app(backend, tmp_path, FrozenClock(SystemClock().now())) as live:
        yield live


@pytest.fixture
def mailbox(server: Live) -> Iterator[Mailbox]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    server.settings.smtp_host = "127.0.0.1"  # the running app reads this settings object
    server.settings.smtp_port = port
    try:
        yield box
    finally:
        controller.stop()


def _buy_above_the_limit(live: Live) -> tuple[str, str, str]:
    """Set a AUD 100.00 self-service limit, then buy; returns (customer, order, gross)."""
    with live.sessions() as session:
        product = session.get(Product, "DG7GMGF0D7FV")
        assert product is not None
        product.support_request_above_minor = 10_000
        product.support_request_above_currency = "AUD"
        session.commit()
    with api_client(live.url, AGENT) as http:
        cid = http.get(f"/v1/customers/{CUSTOMER_DOMAIN}").json()["id"]
        cart = http.post(
            f"/v1/customers/{cid}/carts",
            json={"lineItems": [{"id": 0, "catalogItemId": PERPETUAL, "quantity": 1}]},
        )
        assert cart.status_code == 201, cart.text
        checkout = http.post(f"/v1/customers/{cid}/carts/{cart.json()['id']}/checkout")
        assert checkout.status_code == 201, checkout.text
        order = checkout.json()["orders"][0]
        return cid, order["id"], order["totals"]["gross"]


def test_refund_from_the_cancel_dialog_to_a_credit_on_the_next_invoice(
    server: Live, mailbox: Mailbox, open_page: Callable[..., Page]
) -> None:
    cid, order_id, gross = _buy_above_the_limit(server)

    # The partner's Admin agent: the cancel dialog sends them to a customer support request.
    partner = open_page()
    sign_in(partner, server.url, AGENT, "/partner")
    partner.goto(f"{server.url}/partner/customers/{cid}/cancel?order={order_id}")
    expect(partner.get_by_test_id("cancel-submit")).to_have_count(0)
    partner.get_by_test_id("support-request-link").click()
    expect(partner).to_have_url(re.compile(r"/partner/support/new\?topic=csp_refund"))
    form = partner.get_by_test_id("support-form")
    expect(form.get_by_test_id("topic")).to_have_value("csp_refund")
    expect(form.get_by_test_id("customer")).to_have_value(CUSTOMER_DOMAIN)
    expect(form.get_by_test_id("order")).to_have_value(order_id)
    expect(form.get_by_test_id("amount")).to_have_value(gross)
    expect(form.get_by_test_id("cancel-purchase")).to_be_checked()

    # Submitting without the impact, reason and phone names each missing field.
    form.get_by_test_id("submit").click()
    expect(partner.get_by_test_id("error-severity")).to_be_visible()
    expect(partner.get_by_test_id("error-reason")).to_be_visible()
    expect(partner.get_by_test_id("error-phone")).to_be_visible()
    expect(partner.get_by_test_id("order")).to_have_value(order_id)

    form = partner.get_by_test_id("support-form")
    form.get_by_test_id("severity").select_option("moderate")
    form.get_by_test_id("reason").fill("The customer ordered Standard instead of Datacenter.")
    form.get_by_test_id("first-name").fill("Ana")
    form.get_by_test_id("last-name").fill("García")
    form.get_by_test_id("email").fill("ana@fabrikam.example")
    form.get_by_test_id("phone").fill("+61 2 5550 0100")
    form.get_by_test_id("files").set_input_files(
        files=[{"name": "customer-letter.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    form.get_by_test_id("submit").click()
    expect(partner.get_by_test_id("flash")).to_contain_text("Your support request was submitted.")
    expect(partner.get_by_test_id("files")).to_contain_text("customer-letter.pdf")
    expect(partner.get_by_test_id("status")).to_have_text("Open")
    request_url = partner.url.split("?")[0]
    request_id = request_url.rsplit("/", 1)[-1]

    # Provider support finds it in the queue and asks for more information.
    support = open_page()
    sign_in(support, server.url, SUPPORT, "/provider")
    support.goto(f"{server.url}/provider/support")
    support.get_by_test_id("queue").get_by_role(
        "link", name="Refund for a cancelled purchase"
    ).click()
    expect(support).to_have_url(f"{server.url}/provider/support/{request_id}")
    reply = support.get_by_test_id("reply-form")
    reply.get_by_test_id("note").fill("Please confirm which server the key was installed on.")
    reply.get_by_test_id("status-select").select_option("attention_needed")
    reply.get_by_test_id("send").click()
    expect(support.get_by_test_id("status")).to_have_text("Attention needed")

    # The partner sees the question and answers it.
    partner.goto(request_url)
    expect(partner.get_by_test_id("status")).to_have_text("Attention needed")
    expect(partner.get_by_test_id("conversation")).to_contain_text("which server the key")
    partner.get_by_test_id("note").fill("It was never installed.")
    partner.get_by_test_id("send").click()
    expect(partner.get_by_test_id("status")).to_have_text("In progress")

    # Support approves part of it.
    support.goto(f"{server.url}/provider/support/{request_id}")
    expect(support.get_by_test_id("conversation")).to_contain_text("It was never installed.")
    approve = support.get_by_test_id("approve-form")
    approve.get_by_test_id("amount-approved-input").fill("500.00")
    approve.get_by_test_id("approve").click()
    confirm = support.get_by_test_id("confirm-dialog")  # a modal asks first
    assert confirm.evaluate("d => d.matches(':modal')")
    confirm.get_by_test_id("confirm-ok").click()
    expect(support.get_by_test_id("refund-status")).to_have_text("Partially approved")
    expect(support.get_by_test_id("status")).to_have_text("Resolved")

    # The partner sees the decision; the purchase is cancelled.
    partner.goto(request_url)
    expect(partner.get_by_test_id("refund-status")).to_have_text("Partially approved")
    expect(partner.get_by_test_id("amount-approved")).to_have_text("500.00 AUD")
    partner.goto(f"{server.url}/partner/customers/{cid}/software")
    expect(partner.locator("body")).to_contain_text("Cancelled")

    # The Global admin sees the credit among the unbilled lines of the next invoice.
    admin = open_page()
    sign_in(admin, server.url, GLOBAL_ADMIN, "/partner")
    admin.goto(f"{server.url}/partner/billing/invoices")
    credit = admin.locator("tr[data-charge-type='customerCredit']")
    expect(credit).to_have_count(1)
    expect(credit).to_contain_text("-500.00 AUD")
    expect(credit).to_contain_text("Refund credit")

    # The contact was told of each change by mail.
    texts = [Mailbox.text(m) for m in mailbox.to("ana@fabrikam.example")]
    assert len(texts) >= 4
    assert any("which server the key" in t for t in texts)
    requested = f"{Decimal(gross):,.2f} AUD"  # the amount as the mail writes it: 1,799.13 AUD
    assert any(f"500.00 AUD of {requested}" in t for t in texts)

"""Support pages: the form the cancel dialog's link fills, messages beside each bad field,
files from the form, the partner's view of status and conversation, and the provider queue."""

from __future__ import annotations

import html as html_lib
import re
from collections.abc import Callable, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.orders.models import Charge, ChargeType
from partnercenter.support.models import SupportRequest
from tests import web
from tests.factories import PASSWORD
from tests.support.conftest import Desk, refund_body
from tests.support.test_attachments import EXE, PDF

Browser = Callable[[str], TestClient]


@pytest.fixture
def browser(app: FastAPI, session: Session, desk: Desk) -> Iterator[Browser]:
    """A signed-in page client per desk user (each with its own cookies)."""
    clients: list[TestClient] = []

    def open_as(who: str) -> TestClient:
        user = desk.user(who)
        session.commit()
        c = TestClient(app, base_url="http://testserver")
        c.__enter__()
        clients.append(c)
        r = web.sign_in(c, user.email, PASSWORD)
        assert r.status_code == 303, r.text
        return c

    yield open_as
    for c in clients:
        c.__exit__(None, None, None)


def form_data(desk: Desk, **changes: str) -> dict[str, str]:
    data = {
        "topic": "csp_refund",
        "severity": "moderate",
        "title": "Refund for the wrong edition",
        "description": "",
        "customer": "contoso.onmicrosoft.com",
        "order": desk.order["id"],
        "subscription": "",
        "reason": "Bought the wrong edition.",
        "amount": "500.00",
        "currency": "USD",
        "first_name": "Ana",
        "last_name": "García",
        "email": "ana@fabrikam.test",
        "phone": "+1 425 555 0100",
        "cancel_purchase": "1",
    }
    data.update(changes)
    return data


def test_the_cancel_dialog_link_opens_the_form_filled_in(browser: Browser, desk: Desk) -> None:
    c = browser("admin_agent")
    r = c.get(
        "/partner/support/new",
        params={
            "topic": "csp_refund",
            "customer": "contoso.onmicrosoft.com",
            "order": desk.order["id"],
            "amount": "1945.00",
            "currency": "USD",
        },
    )
    assert r.status_code == 200
    html = r.text
    assert '<option value="csp_refund" selected>' in html
    assert 'name="customer" value="contoso.onmicrosoft.com"' in html
    assert f'name="order" value="{desk.order["id"]}"' in html
    assert 'name="amount" value="1945.00"' in html
    assert "Amount requested (USD)" in html
    assert 'name="cancel_purchase" value="1" checked' in html
    assert "CSP Purchase/Refund on behalf of customers" in html


def test_bad_fields_get_a_message_beside_each_and_keep_what_was_typed(
    browser: Browser, desk: Desk, session: Session
) -> None:
    c = browser("helpdesk")
    token = web.page_csrf(c, "/partner/support/new")
    data = form_data(desk, title="", email="ana@", amount="99999.00", csrf_token=token)
    r = c.post("/partner/support/new", data=data)
    assert r.status_code == 400
    assert 'data-testid="error-title"' in r.text
    assert 'data-testid="error-email"' in r.text
    assert 'value="ana@"' in r.text
    # once the fields are right, the amount is checked against what was charged
    data = form_data(desk, amount="99999.00", csrf_token=token)
    r = c.post("/partner/support/new", data=data)
    assert r.status_code == 400
    assert 'data-testid="error-amount"' in r.text
    assert "more than can still be refunded" in r.text
    data = form_data(desk, customer="litware.onmicrosoft.com", csrf_token=token)
    r = c.post("/partner/support/new", data=data)
    assert r.status_code == 404
    assert 'data-testid="error-customer"' in r.text
    assert session.execute(select(SupportRequest)).first() is None


def test_a_disguised_file_is_named_beside_add_files(
    browser: Browser, desk: Desk, session: Session
) -> None:
    c = browser("admin_agent")
    token = web.page_csrf(c, "/partner/support/new")
    r = c.post(
        "/partner/support/new",
        data=form_data(desk, csrf_token=token),
        files=[("files", ("receipt.pdf", EXE, "application/pdf"))],
    )
    assert r.status_code == 400
    assert 'data-testid="error-files"' in r.text
    assert "receipt.pdf" in r.text
    assert session.execute(select(SupportRequest)).first() is None


def test_partner_files_with_a_file_support_asks_then_approves_part(
    browser: Browser, desk: Desk, session: Session
) -> None:
    partner = browser("admin_agent")
    token = web.page_csrf(partner, "/partner/support/new")
    r = partner.post(
        "/partner/support/new",
        data=form_data(desk, csrf_token=token),
        files=[("files", ("confirmation.pdf", PDF, "application/pdf"))],
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    detail = r.headers["location"].split("?")[0]
    rid = detail.rsplit("/", 1)[-1]
    page = partner.get(r.headers["location"]).text
    assert "confirmation.pdf" in page
    assert "Your support request was submitted." in page

    support = browser("support")
    queue = support.get("/provider/support").text
    assert f"/provider/support/{rid}" in queue
    page = support.get(f"/provider/support/{rid}")
    token = web.csrf_of(page.text)
    r = support.post(
        f"/provider/support/{rid}",
        data={
            "action": "reply",
            "note": "Which seat was never used?",
            "status": "attention_needed",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = partner.get(detail).text
    assert "Which seat was never used?" in page
    assert "Attention needed" in page
    r = partner.post(
        detail,
        data={"note": "The second one.", "csrf_token": web.csrf_of(page)},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = support.post(
        f"/provider/support/{rid}",
        data={"action": "approve", "amount_approved": "600.00", "csrf_token": token},
    )
    assert r.status_code == 400
    assert 'data-testid="error-amount_approved"' in r.text
    r = support.post(
        f"/provider/support/{rid}",
        data={"action": "approve", "amount_approved": "250.00", "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    page = partner.get(detail).text
    assert "Partially approved" in page
    assert "250.00 USD" in page
    assert "The second one." in page
    [credit] = session.execute(
        select(Charge).where(Charge.charge_type == ChargeType.CUSTOMER_CREDIT)
    ).scalars()
    assert credit.gross_minor == -25000


def test_queue_filters_and_roles(browser: Browser, desk: Desk, client: TestClient) -> None:
    body = {
        "supportTopicId": "account",
        "severity": "minimal",
        "title": "Cannot add a user",
        "description": "The form says the email is taken.",
        "primaryContact": {
            "firstName": "Ana",
            "lastName": "García",
            "email": "ana@fabrikam.test",
            "phoneNumber": "+34 600 000 000",
        },
    }
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("helpdesk"))
    assert r.status_code == 201
    support = browser("support")
    assert "Cannot add a user" in support.get("/provider/support?topic=account").text
    assert "Cannot add a user" not in support.get("/provider/support?topic=billing").text
    r = support.get("/provider/support?min_age=abc")
    assert r.status_code == 400
    assert 'data-testid="error-min_age"' in r.text
    sales = browser("sales")
    assert sales.get("/partner/support").status_code == 403
    assert sales.get("/partner/support/new").status_code == 403
    partner = browser("helpdesk")
    assert partner.get("/provider/support").status_code == 403
    assert "Cannot add a user" in partner.get("/partner/support").text
    other = browser("other_agent")
    assert "Cannot add a user" not in other.get("/partner/support").text


def test_spanish_form(browser: Browser, desk: Desk) -> None:
    c = browser("admin_agent")
    r = c.get("/partner/support/new", headers={"Accept-Language": "es-ES"})
    assert r.status_code == 200
    assert "Tipo de problema" in r.text
    assert "Compra/reembolso de CSP en nombre de clientes" in r.text
    assert "Impacto" in r.text


def test_a_product_that_can_never_be_cancelled_is_never_offered_for_cancellation(
    browser: Browser, desk: Desk, client: TestClient
) -> None:
    from tests.orders import catalog_data

    r = client.post(
        f"/v1/customers/{desk.customer.id}/carts",
        json={"lineItems": [{"catalogItemId": catalog_data.SUSE, "quantity": 1}]},
        headers=desk.h("admin_agent"),
    )
    assert r.status_code == 201, r.text
    r = client.post(
        f"/v1/customers/{desk.customer.id}/carts/{r.json()['id']}/checkout",
        headers=desk.h("admin_agent"),
    )
    suse = r.json()["orders"][0]["id"]
    c = browser("admin_agent")
    params = {"topic": "csp_refund", "customer": "contoso.onmicrosoft.com", "currency": "USD"}
    html = c.get("/partner/support/new", params={**params, "order": suse}).text
    assert 'name="cancel_purchase"' not in html
    assert 'data-testid="not-cancellable"' in html
    # A cancellable purchase still comes with the box ticked.
    html = c.get("/partner/support/new", params={**params, "order": desk.order["id"]}).text
    assert 'name="cancel_purchase" value="1" checked' in html


def _summary(page: str) -> str:
    """The refund summary's text on a request page, tags dropped, one line per fact."""
    found = re.search(r'<p data-testid="refund-summary">(.*?)</p>', page, re.S)
    assert found, "the page has no refund summary"
    text = re.sub(r"<br>\s*", "\n", found.group(1))
    return html_lib.unescape(re.sub(r"<[^>]+>", "", text))


def test_a_refund_summary_reads_in_the_readers_language_and_the_api_keeps_its_text(
    browser: Browser, desk: Desk, client: TestClient
) -> None:
    body = refund_body(
        desk,
        description="El cliente quería la edición Pro.\nAdjunto el pedido.",
        refund={"reason": "Edición equivocada.\nDos licencias.", "amountRequested": "1799.13"},
    )
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    # The API's description keeps the text stored when the request was filed.
    stored = client.get(f"/v1/servicerequests/{rid}", headers=desk.h("admin_agent")).json()
    assert stored["description"] == (
        f"Customer: Contoso ({desk.customer.id}, contoso.onmicrosoft.com)\n"
        f"Order ID: {desk.order['id']}\n"
        "Refund reason: Edición equivocada.\nDos licencias.\n"
        "Amount requested: USD 1799.13\n\n"
        "El cliente quería la edición Pro.\nAdjunto el pedido."
    )
    for who, path in (("admin_agent", "/partner/support"), ("support", "/provider/support")):
        c = browser(who)
        es = c.get(f"{path}/{rid}", headers={"Accept-Language": "es-ES"})
        assert es.status_code == 200
        assert _summary(es.text) == (
            f"Cliente: Contoso ({desk.customer.id}, contoso.onmicrosoft.com)\n"
            f"Id. de pedido: {desk.order['id']}\n"
            "Motivo del reembolso: Edición equivocada.\nDos licencias.\n"
            "Importe solicitado: 1.799,13 USD"
        )
        for english in (
            "Customer:",
            "Order ID:",
            "Refund reason:",
            "Amount requested:",
            "USD 1799.13",
        ):
            assert english not in es.text
        # What the person typed is shown verbatim, once.
        assert es.text.count("El cliente quería la edición Pro.\nAdjunto el pedido.") == 1
        en = c.get(f"{path}/{rid}", headers={"Accept-Language": "en"}).text
        assert _summary(en) == (
            f"Customer: Contoso ({desk.customer.id}, contoso.onmicrosoft.com)\n"
            f"Order ID: {desk.order['id']}\n"
            "Refund reason: Edición equivocada.\nDos licencias.\n"
            "Amount requested: 1,799.13 USD"
        )
        assert "El cliente quería la edición Pro.\nAdjunto el pedido." in en


def test_a_refund_filed_without_a_description_shows_only_the_summary(
    browser: Browser, desk: Desk, client: TestClient
) -> None:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    page = browser("admin_agent").get(
        f"/partner/support/{r.json()['id']}", headers={"Accept-Language": "es-ES"}
    )
    assert "Importe solicitado: 500,00 USD" in _summary(page.text)
    assert 'data-testid="written-description"' not in page.text

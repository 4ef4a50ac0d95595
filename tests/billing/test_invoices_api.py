"""The invoices API: list, detail, lines, CSV, PDF, unbilled lines; the provider's close."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role
from tests.billing.conftest import Ledger, Purchase
from tests.factories import Factory

Headers = Callable[..., dict[str, str]]

NOV_3 = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 16, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@dataclass
class Books:
    partner: Tenant
    contoso: Tenant
    fourth: Tenant
    billing_admin: User
    bought: Purchase
    sub: Purchase
    provider_admin: User
    auth: Headers

    @property
    def headers(self) -> dict[str, str]:
        """A fresh sign-in: tests move the clock past a token's lifetime."""
        return self.auth(self.billing_admin)

    @property
    def provider_headers(self) -> dict[str, str]:
        return self.auth(self.provider_admin)


@pytest.fixture
def books(factory: Factory, ledger: Ledger, clock: FrozenClock, auth_headers: Headers) -> Books:
    factory.provider()
    partner = factory.partner("Fabrikam Reseller")
    contoso = factory.customer(partner, name="Contoso", domain="contoso.onmicrosoft.com")
    fourth = factory.customer(partner, name="Fourth Coffee", country="DE")
    bought = ledger.purchase(partner, contoso, unit_net="249.00", quantity=2, at=NOV_3)
    sub = ledger.purchase(
        partner,
        fourth,
        unit_net="12.50",
        tax_rate="0.19",
        billing_cycle="monthly",
        term="P1Y",
        at=NOV_3,
        product_id="CFQ7TTC0LH18",
    )
    ledger.credit(bought, fraction="0.5", at=NOV_20, reason="cancel_within_window")
    admin = factory.user(partner, Role.BILLING_ADMIN)
    provider_admin = factory.provider_admin()
    return Books(
        partner,
        contoso,
        fourth,
        admin,
        bought,
        sub,
        provider_admin,
        auth_headers,
    )


def _close(client: TestClient, books: Books, clock: FrozenClock, month: str = "2026-11") -> Any:
    clock.set(DEC_1)
    r = client.post(f"/v1/billing/periods/{month}/close", headers=books.provider_headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_provider_admin_closes_a_month_over_the_api_once(
    client: TestClient, books: Books, clock: FrozenClock
) -> None:
    first = _close(client, books, clock)
    assert first["alreadyClosed"] is False and first["invoicesIssued"] == 1
    assert first["firstInvoiceNumber"] == "G000000001"
    assert {t["currencyCode"] for t in first["totals"]} == {"USD"}
    again = _close(client, books, clock)
    assert again["alreadyClosed"] is True and again["invoicesIssued"] == 1
    periods = client.get("/v1/billing/periods", headers=books.provider_headers).json()
    (nov,) = [p for p in periods["items"] if p["month"] == "2026-11"]
    assert nov["state"] == "closed" and nov["invoiceCount"] == 1


def test_close_is_refused_before_the_month_ends_and_to_partners(
    client: TestClient, books: Books, clock: FrozenClock
) -> None:
    clock.set(datetime(2026, 11, 30, 23, 0, tzinfo=UTC))
    r = client.post("/v1/billing/periods/2026-11/close", headers=books.provider_headers)
    assert r.status_code == 409 and r.json()["code"] == 12902
    r = client.post("/v1/billing/periods/2026-1/close", headers=books.provider_headers)
    assert r.status_code == 400 and r.json()["code"] == 12901
    r = client.post("/v1/billing/periods/2026-11/close", headers=books.headers)
    assert r.status_code == 403


def test_billing_admin_reads_invoices_with_lines(
    client: TestClient, books: Books, clock: FrozenClock
) -> None:
    _close(client, books, clock)
    listed = client.get("/v1/invoices", headers=books.headers).json(parse_float=Decimal)
    assert listed["totalCount"] == 1
    (inv,) = listed["items"]
    # 2 x 249.00 + 10 % = 547.80, a 50 % credit of -273.90, and 12.50 + 19 % = 14.88
    assert inv["totalAmount"] == Decimal("288.78") and inv["subtotal"] == Decimal("261.50")
    # Partner Center's invoice: the id is the number, amounts are numbers
    assert inv["id"] == inv["invoiceNumber"] and inv["totalCharges"] == Decimal("288.78")
    assert inv["paidAmount"] == 0 and inv["currencySymbol"] == "$"
    assert inv["pdfDownloadLink"] == f"/invoices/{inv['id']}/documents/statement"
    assert (
        client.get(f"/v1/invoices/{inv['invoiceId']}", headers=books.headers).json()["id"]
        == (inv["id"])
    )
    assert inv["documentType"] == "invoice" and inv["currencyCode"] == "USD"
    assert inv["billingPeriodStartDate"] == "2026-11-01T00:00:00Z"
    detail = client.get(f"/v1/invoices/{inv['id']}", headers=books.headers).json()
    assert detail["invoiceNumber"] == inv["invoiceNumber"]
    lines = client.get(f"/v1/invoices/{inv['id']}/lineitems", headers=books.headers).json(
        parse_float=Decimal
    )
    items = lines["items"]
    assert [(i["customerName"], i["chargeType"], i["totalForCustomer"]) for i in items] == [
        ("Contoso", "new", Decimal("547.80")),
        ("Contoso", "cancelImmediate", Decimal("-273.90")),
        ("Fourth Coffee", "new", Decimal("14.88")),
    ]
    documented = client.get(
        f"/v1/invoices/{inv['id']}/lineitems/OneTime/BillingLineItems?size=2&offset=1",
        headers=books.headers,
    ).json(parse_float=Decimal)
    assert documented["totalCount"] == 3
    assert [i["lineItemId"] for i in documented["items"]] == [i["lineItemId"] for i in items[1:]]
    credit = items[1]
    assert credit["creditReasonCode"] == "cancel_within_window"
    assert credit["reversedLineItemId"] == str(books.bought.charge.id)
    assert credit["orderId"] == str(books.bought.order.id) and credit["quantity"] == 2
    assert (
        credit["unitPrice"] == Decimal("-124.50")  # times 2: its subtotal
        and credit["customerDomainName"] == "contoso.onmicrosoft.com"
    )
    monthly = items[2]
    assert monthly["chargeStartDate"] == "2026-11-03T09:30:00Z"
    assert monthly["chargeEndDate"] == "2026-12-03T09:30:00Z"
    assert monthly["termAndBillingCycle"] == "1 Year - Monthly Payment"


def test_reconciliation_csv_has_partner_centers_columns_and_every_line(
    client: TestClient, books: Books, clock: FrozenClock
) -> None:
    _close(client, books, clock)
    (inv,) = client.get("/v1/invoices", headers=books.headers).json()["items"]
    r = client.get(f"/v1/invoices/{inv['id']}/lineitems.csv", headers=books.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    for column in (
        "PartnerId",
        "CustomerId",
        "CustomerName",
        "CustomerDomainName",
        "CustomerCountry",
        "InvoiceNumber",
        "OrderId",
        "OrderDate",
        "ProductId",
        "SkuId",
        "AvailabilityId",
        "SkuName",
        "ProductName",
        "ChargeType",
        "UnitPrice",
        "Quantity",
        "Subtotal",
        "TaxTotal",
        "TotalForCustomer",
        "Currency",
        "ChargeStartDate",
        "ChargeEndDate",
        "CreditReasonCode",
    ):
        assert column in rows[0], column
    assert len(rows) == 3
    assert {row["InvoiceNumber"] for row in rows} == {inv["invoiceNumber"]}
    assert sum(Decimal(row["TotalForCustomer"]) for row in rows) == Decimal(str(inv["totalAmount"]))
    assert [row["ChargeType"] for row in rows] == ["new", "cancel", "new"]
    assert rows[1]["CreditReasonCode"] == "cancel_within_window"
    assert rows[2]["CustomerCountry"] == "DE" and rows[2]["ProductId"] == "CFQ7TTC0LH18"


def test_statement_pdf_is_a_real_document_with_lines_by_customer_and_totals(
    client: TestClient, books: Books, clock: FrozenClock
) -> None:
    _close(client, books, clock)
    (inv,) = client.get("/v1/invoices", headers=books.headers).json()["items"]
    r = client.get(f"/v1/invoices/{inv['id']}/documents/statement", headers=books.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(r.content)).pages)
    for expected in (
        "Invoice",
        inv["invoiceNumber"],
        "Provider",
        "Fabrikam Reseller",
        "Contoso",
        "Fourth Coffee",
        "Cancellation credit",
        "Tax summary",
        "Total",
        "288.78 USD",
        "-273.90",
    ):
        assert expected in text, expected
    assert text.index("Contoso") < text.index("Fourth Coffee")


def test_statement_pdf_in_spanish(client: TestClient, books: Books, clock: FrozenClock) -> None:
    _close(client, books, clock)
    (inv,) = client.get("/v1/invoices", headers=books.headers).json()["items"]
    r = client.get(
        f"/v1/invoices/{inv['id']}/documents/statement",
        headers={**books.headers, "Accept-Language": "es-ES"},
    )
    text = PdfReader(io.BytesIO(r.content)).pages[0].extract_text()
    assert "Factura" in text and "Resumen de impuestos" in text


def test_unbilled_line_items_are_the_charges_not_yet_invoiced(
    client: TestClient, books: Books, clock: FrozenClock, ledger: Ledger, session: Session
) -> None:
    items = client.get("/v1/invoices/unbilled/lineitems", headers=books.headers).json()["items"]
    assert len(items) == 3 and {i["invoiceNumber"] for i in items} == {""}
    _close(client, books, clock)
    assert (
        client.get("/v1/invoices/unbilled/lineitems", headers=books.headers).json()["items"] == []
    )
    ledger.purchase(books.partner, books.contoso, unit_net="1.00", at=DEC_1)
    session.commit()
    (item,) = client.get("/v1/invoices/unbilled/lineitems", headers=books.headers).json(
        parse_float=Decimal
    )["items"]
    assert item["billingMonth"] == "2026-12" and item["totalForCustomer"] == Decimal("1.10")


def test_invoices_of_another_partner_answer_404_and_other_roles_403(
    client: TestClient,
    books: Books,
    clock: FrozenClock,
    factory: Factory,
    auth_headers: Headers,
) -> None:
    _close(client, books, clock)
    (inv,) = client.get("/v1/invoices", headers=books.headers).json()["items"]
    other = factory.partner("Other")
    stranger = auth_headers(factory.user(other, Role.GLOBAL_ADMIN))
    assert client.get("/v1/invoices", headers=stranger).json()["totalCount"] == 0
    for suffix in ("", "/lineitems", "/lineitems.csv", "/documents/statement"):
        r = client.get(f"/v1/invoices/{inv['id']}{suffix}", headers=stranger)
        assert r.status_code == 404 and r.json()["code"] == 12904, suffix
    assert client.get("/v1/invoices/not-a-guid", headers=stranger).status_code == 404
    agent = auth_headers(factory.user(books.partner, Role.ADMIN_AGENT))
    assert client.get("/v1/invoices", headers=agent).status_code == 403
    assert client.get(f"/v1/invoices/{inv['id']}", headers=agent).status_code == 403
    global_admin = auth_headers(factory.user(books.partner, Role.GLOBAL_ADMIN))
    assert client.get(f"/v1/invoices/{inv['id']}", headers=global_admin).status_code == 200


def test_next_month_charges_cycle_and_credit_land_on_the_next_invoice(
    client: TestClient, books: Books, clock: FrozenClock, ledger: Ledger, session: Session
) -> None:
    _close(client, books, clock)
    ledger.credit(
        books.sub, fraction="0.25", at=datetime(2026, 12, 10, tzinfo=UTC), reason="cancel_prorated"
    )
    session.commit()
    clock.set(datetime(2027, 1, 1, 0, 30, tzinfo=UTC))
    r = client.post("/v1/billing/periods/2026-12/close", headers=books.provider_headers)
    assert r.status_code == 200 and r.json()["cycleChargesCreated"] == 1
    invoices = client.get("/v1/invoices", headers=books.headers).json(parse_float=Decimal)["items"]
    dec = invoices[0]
    assert dec["billingMonth"] == "2026-12"
    items = client.get(f"/v1/invoices/{dec['id']}/lineitems", headers=books.headers).json()["items"]
    assert sorted(i["chargeType"] for i in items) == ["cancelImmediate", "cycleCharge"]
    assert dec["totalAmount"] == Decimal("14.88") - Decimal("3.72")

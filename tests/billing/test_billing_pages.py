"""Billing → Invoices for Billing and Global admins; Billing periods in the provider console."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.billing.views import chart_of
from partnercenter.clock import FrozenClock
from partnercenter.permissions import Role
from tests.billing.conftest import Ledger
from tests.factories import PASSWORD, Factory
from tests.web import csrf_of, sign_in

OCT_10 = datetime(2026, 10, 10, 10, 0, tzinfo=UTC)
NOV_5 = datetime(2026, 11, 5, 10, 0, tzinfo=UTC)
DEC_2 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _books(session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock) -> dict:  # type: ignore[type-arg]
    factory.provider()
    partner = factory.partner("Northwind Resale")
    contoso = factory.customer(partner, name="Contoso")
    bought = ledger.purchase(partner, contoso, unit_net="80.00", at=OCT_10)
    ledger.purchase(partner, contoso, unit_net="20.00", at=NOV_5)
    ledger.credit(bought, at=NOV_5, reason="cancel_within_window")
    billing.start_close(session, month="2026-10", now=DEC_2)
    billing.close_period(session, month="2026-10", now=DEC_2)
    billing.start_close(session, month="2026-11", now=DEC_2)
    billing.close_period(session, month="2026-11", now=DEC_2)
    ledger.purchase(partner, contoso, unit_net="5.00", at=DEC_2)
    clock.set(DEC_2)
    admin = factory.user(partner, Role.BILLING_ADMIN)
    agent = factory.user(partner, Role.ADMIN_AGENT)
    session.commit()
    return {"partner": partner, "admin": admin, "agent": agent}


def test_billing_admin_sees_invoices_chart_and_unbilled_lines(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    books = _books(session, factory, ledger, clock)
    assert sign_in(client, books["admin"].email, PASSWORD).status_code == 303
    page = client.get("/partner/billing/invoices")
    assert page.status_code == 200
    html = page.text
    assert "G000000001" in html and "G000000002" in html
    assert "Credit note" in html  # November: 22.00 bought, 88.00 credited
    bars = re.findall(r'<rect [^>]*data-month="(\d{4}-\d{2})" data-amount="([^"]+)"', html)
    assert len(bars) == 12 and bars[-1][0] == "2026-12"
    assert dict(bars)["2026-10"] == "88.00" and dict(bars)["2026-11"] == "-66.00"
    assert 'data-testid="unbilled-lines"' in html and "5.50 USD" in html
    # The unit price is the price of one, as written: 5.00 USD, not its minor units.
    units = re.findall(r'data-testid="unit-price">([^<]+)<', html)
    assert units == ["5.00 USD"], units
    assert 'href="/partner/billing/invoices"' in client.get("/partner").text


def test_invoice_page_shows_lines_with_charge_type_and_credit_reason(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    books = _books(session, factory, ledger, clock)
    sign_in(client, books["admin"].email, PASSWORD)
    (nov,) = [
        i
        for i in billing.list_invoices(session, partner_id=books["partner"].id)
        if i.billing_month == "2026-11"
    ]
    html = client.get(f"/partner/billing/invoices/{nov.id}").text
    assert 'data-charge-type="new"' in html and 'data-charge-type="cancel"' in html
    assert "Other" in html and "cancel_within_window" not in html and "Contoso" in html
    assert f"/v1/invoices/{nov.id}/documents/statement" in html
    pdf = client.get(f"/v1/invoices/{nov.id}/documents/statement")  # the page's link, by cookie
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    csv_file = client.get(f"/v1/invoices/{nov.id}/lineitems.csv")
    assert csv_file.status_code == 200 and "CreditReasonCode" in csv_file.text


def test_invoices_page_in_spanish(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    books = _books(session, factory, ledger, clock)
    sign_in(client, books["admin"].email, PASSWORD)
    html = client.get("/partner/billing/invoices", headers={"Accept-Language": "es-ES"}).text
    assert (
        "Facturas" in html
        and "Nota de crédito" in html
        and "Cargos y créditos sin facturar" in html
    )


def test_admin_agent_may_not_open_invoices(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    books = _books(session, factory, ledger, clock)
    sign_in(client, books["agent"].email, PASSWORD)
    assert client.get("/partner/billing/invoices").status_code == 403


def test_provider_closes_a_month_from_the_console(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    factory.provider()
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), at=NOV_5)
    admin = factory.provider_admin()
    clock.set(DEC_2)
    session.commit()
    sign_in(client, admin.email, PASSWORD)
    page = client.get("/provider/billing")
    assert page.status_code == 200 and 'value="2026-11"' in page.text
    assert "Open" in page.text and "110.00 USD" in page.text
    token = csrf_of(page.text)

    refused = client.post("/provider/billing/close", data={"month": "2026-11", "csrf_token": "x"})
    assert refused.status_code == 403

    closed = client.post("/provider/billing/close", data={"month": "2026-11", "csrf_token": token})
    assert closed.status_code == 200 and 'data-testid="close-result"' in closed.text
    assert "1 invoices issued" in closed.text and "Closed" in closed.text
    again = client.post("/provider/billing/close", data={"month": "2026-11", "csrf_token": token})
    assert "already closed" in again.text

    early = client.post("/provider/billing/close", data={"month": "2026-12", "csrf_token": token})
    assert early.status_code == 409 and "has not ended" in early.text


def test_chart_scales_bars_and_hangs_credits_below_the_baseline() -> None:
    from decimal import Decimal

    chart = chart_of(
        "USD",
        [("2026-10", Decimal("100.00")), ("2026-11", Decimal("-50.00")), ("2026-12", Decimal(0))],
    )
    up, down, empty = chart.bars
    assert up.y + up.height == chart.baseline and down.y == chart.baseline
    assert up.height == 2 * down.height and empty.height == 0
    # Axis ticks at round amounts and each month's value written on its bar.
    assert [t.label for t in chart.ticks] == ["-50", "0", "50", "100"]
    assert [b.value for b in chart.bars] == ["100.00", "-50.00", ""]
    assert chart.ticks[1].y == chart.baseline


def test_the_chart_shows_values_and_an_axis_and_the_list_pages_in_spanish(
    client: TestClient, session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    books = _books(session, factory, ledger, clock)
    # Two years of monthly invoices in another currency fill more than one page.
    from partnercenter.billing.models import DocumentType, Invoice

    for i in range(30):
        month = billing.shift_month("2024-01", i)
        session.add(
            Invoice(
                number=billing.format_number(100 + i),
                partner_id=books["partner"].id,
                billing_month=month,
                currency="EUR",
                document_type=DocumentType.INVOICE,
                net_minor=100_000 + i,
                tax_minor=0,
                gross_minor=100_000 + i,
                line_count=0,
                partner_name="Northwind Resale",
                partner_country="US",
                issued_at=DEC_2,
            )
        )
    session.commit()
    assert sign_in(client, books["admin"].email, PASSWORD).status_code == 303
    headers = {"Accept-Language": "es-ES"}
    first = client.get("/partner/billing/invoices", headers=headers).text
    assert 'data-testid="invoice-pages"' in first and "Página 1 de 2 (32 facturas)" in first
    assert len(re.findall(r'href="/partner/billing/invoices/[0-9a-f-]{36}"', first)) == 24
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = client.get("/partner/billing/invoices?page=2", headers=headers).text
    assert "Página 2 de 2" in second and 'rel="prev"' in second
    numbers = set(re.findall(r"G\d{9}", first)) & set(re.findall(r"G\d{9}", second))
    assert not numbers - {"G000000001", "G000000002"}  # no invoice on both pages
    # The USD chart: round ticks, values on the bars, Spanish months and numbers.
    assert re.search(r"data-testid=\"tick\">0,00<", first)
    assert re.search(r"data-testid=\"bar-value\">88,00<", first)
    assert ">oct<" in first.lower() and ">2026<" in first
    assert client.get("/partner/billing/invoices?page=abc", headers=headers).status_code == 200

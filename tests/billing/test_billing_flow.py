"""Two months of real purchases and cancellations across currencies and tax markets, closed,
re-closed, and every invoice line checked against the orders it comes from."""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.billing.models import DocumentType, Invoice, InvoiceLine
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity import services as identity
from partnercenter.money import from_minor
from partnercenter.orders.models import Charge, Order, OrderLine
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.orders import catalog_data
from tests.orders.cancel_helpers import SQL_MONTHLY_29, Buyer, add_cancellation_catalog

NOV_2 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
NOV_12 = datetime(2026, 11, 12, 15, 0, tzinfo=UTC)
NOV_20 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 0, 10, tzinfo=UTC)
DEC_5 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, 0, 10, tzinfo=UTC)


@pytest.fixture
def buyer(
    client: TestClient, session: Session, settings: Settings, factory: Factory, clock: FrozenClock
) -> tuple[Buyer, dict[str, object]]:
    clock.set(NOV_2)
    catalog_data.load(session, settings=settings, now=clock.now(), keys=10)
    add_cancellation_catalog(session, now=clock.now())
    partner = factory.partner("Fabrikam")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    secret, _ = identity.create_named_token(
        session, user=agent, name="billing flow", now=clock.now(), request=None, days=730
    )
    people = {
        "partner": partner,
        "us": factory.customer(partner, name="Contoso", country="US"),
        "au": factory.customer(partner, name="Wingtip", country="AU"),
        "br": factory.customer(partner, name="Litware", country="BR"),
    }
    session.commit()
    return Buyer(
        client,
        {"Authorization": f"Bearer {secret}"},
    ), people


def _close(session: Session, month: str, now: datetime) -> billing.CloseResult:
    billing.start_close(session, month=month, now=now)
    session.commit()
    result = billing.close_period(session, month=month, now=now)
    session.commit()
    return result


def test_two_months_of_orders_and_cancellations_are_invoiced_exactly(
    buyer: tuple[Buyer, dict[str, object]], session: Session, clock: FrozenClock
) -> None:
    shop, people = buyer
    us, au, br = people["us"], people["au"], people["br"]
    clock.set(NOV_2)
    windows_us = shop.buy(us, (catalog_data.WINDOWS, 2))  # type: ignore[arg-type]
    shop.buy(au, (catalog_data.WINDOWS_AU, 1))  # type: ignore[arg-type]  # AUD, tax inclusive
    shop.buy(br, (catalog_data.WINDOWS_BR, 1))  # type: ignore[arg-type]  # BRL, tax inclusive
    shop.buy(us, (SQL_MONTHLY_29, 3))  # type: ignore[arg-type]  # kept: charged monthly
    clock.set(NOV_12)
    r = shop.cancel(us, windows_us["id"])  # type: ignore[arg-type]
    assert r.status_code == 200, r.text

    clock.set(NOV_20)
    monthly = shop.buy(us, (SQL_MONTHLY_29, 1))  # type: ignore[arg-type]  # cancelled in December

    nov = _close(session, "2026-11", DEC_1)
    assert nov.invoices_issued == 3 and set(nov.totals) == {"USD", "AUD", "BRL"}

    clock.set(DEC_5)
    r = shop.cancel(us, monthly["id"])  # type: ignore[arg-type]
    assert r.status_code == 200, r.text
    dec = _close(session, "2026-12", JAN_1)
    # The kept subscription's December month; none for the one cancelled before its month began.
    assert dec.cycle_charges_created == 1
    again = _close(session, "2026-12", JAN_1)
    assert again.already_closed and again.invoices_issued == dec.invoices_issued

    # Every line against its charge and order line, by hand.
    lines = list(session.execute(select(InvoiceLine)).scalars())
    charges = {c.id: c for c in session.execute(select(Charge)).scalars()}
    assert set(charges) == {li.charge_id for li in lines}  # every charge billed, once
    for li in lines:
        charge = charges[li.charge_id]
        order_line = session.get(OrderLine, charge.order_line_id)
        order = session.get(Order, charge.order_id)
        assert order_line is not None and order is not None
        assert (li.net_minor, li.tax_minor, li.gross_minor) == (
            charge.net_minor,
            charge.tax_minor,
            charge.gross_minor,
        )
        assert li.invoice_month == charge.billing_month
        assert li.customer_id == order.customer_id and li.order_id == order.id
        assert li.product_id == order_line.product_id and li.sku_id == order_line.sku_id
        assert li.unit_price_minor == order_line.unit_net_minor
        assert li.charge_type == charge.charge_type.value
        if li.charge_type == "cancel":
            assert li.gross_minor < 0 and li.reverses_charge_id is not None
            assert li.credit_reason_code
    # Invoice totals are the sums of their lines, per partner, month and currency.
    sums: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for li in lines:
        s = sums[(li.invoice_month, li.currency)]
        s[0], s[1], s[2] = s[0] + li.net_minor, s[1] + li.tax_minor, s[2] + li.gross_minor
    invoices = list(session.execute(select(Invoice).order_by(Invoice.number)).scalars())
    assert [i.number for i in invoices] == [f"G{n:09d}" for n in range(1, len(invoices) + 1)]
    for inv in invoices:
        assert [inv.net_minor, inv.tax_minor, inv.gross_minor] == sums[
            (inv.billing_month, inv.currency)
        ]
        expected_type = DocumentType.CREDIT_NOTE if inv.gross_minor < 0 else DocumentType.INVOICE
        assert inv.document_type == expected_type
    # Tax-inclusive markets: the gross is the catalog price, the tax is inside it.
    (aud,) = [i for i in invoices if i.currency == "AUD"]
    assert from_minor(aud.gross_minor, "AUD") == Decimal("1100.00")
    assert aud.net_minor + aud.tax_minor == aud.gross_minor and aud.tax_minor > 0
    # November's Windows purchase for Contoso was cancelled in full within the month.
    (usd_nov,) = [i for i in invoices if (i.billing_month, i.currency) == ("2026-11", "USD")]
    usd_lines = [li for li in lines if li.invoice_month == "2026-11" and li.currency == "USD"]
    windows = [li for li in usd_lines if li.order_id == uuid.UUID(windows_us["id"])]  # type: ignore[arg-type]
    assert sum(li.gross_minor for li in windows) == 0 and len(windows) == 2
    assert usd_nov.gross_minor == sum(li.gross_minor for li in usd_lines)
    # December: the monthly subscription's December charge and its prorated credit.
    dec_lines = sorted(
        (li for li in lines if li.invoice_month == "2026-12"), key=lambda li: li.charge_type
    )
    assert [li.charge_type for li in dec_lines] == ["cancel", "cycleCharge"]
    assert 0 < -dec_lines[0].gross_minor < dec_lines[1].gross_minor
    report = billing.verify(session)
    assert report.ok, report.mismatches

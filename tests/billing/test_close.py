"""Closing a month: what is billed, numbering, idempotence, late charges, immutability."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.billing.errors import (
    EarlierPeriodOpen,
    InvalidBillingMonth,
    MonthNotEnded,
)
from partnercenter.billing.models import (
    BillingPeriod,
    DocumentType,
    Invoice,
    InvoiceLine,
    NumberSeries,
    PeriodState,
)
from partnercenter.clock import FrozenClock
from partnercenter.orders.models import Charge
from tests.billing.conftest import Ledger
from tests.factories import Factory

NOV_15 = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
DEC_1 = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
DEC_10 = datetime(2026, 12, 10, 9, 0, tzinfo=UTC)
JAN_1 = datetime(2027, 1, 1, 0, 1, tzinfo=UTC)


def close(session: Session, month: str, now: datetime) -> billing.CloseResult:
    billing.start_close(session, month=month, now=now)
    session.commit()
    result = billing.close_period(session, month=month, now=now)
    session.commit()
    return result


def invoices_of(session: Session, month: str) -> list[Invoice]:
    return list(
        session.execute(
            select(Invoice).where(Invoice.billing_month == month).order_by(Invoice.number)
        ).scalars()
    )


def test_close_issues_one_invoice_per_partner_and_currency_with_every_charge_and_credit(
    session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    fabrikam, tailspin = factory.partner("Fabrikam"), factory.partner("Tailspin")
    contoso = factory.customer(fabrikam, name="Contoso")
    litware = factory.customer(fabrikam, name="Litware", country="DE")
    wingtip = factory.customer(tailspin, name="Wingtip")
    bought = ledger.purchase(fabrikam, contoso, unit_net="100.00", quantity=2, at=NOV_15)
    ledger.purchase(fabrikam, litware, unit_net="40.00", currency="EUR", tax_rate="0.19")
    ledger.purchase(fabrikam, litware, unit_net="10.00", currency="EUR", tax_rate="0.19")
    ledger.purchase(tailspin, wingtip, unit_net="7.50")
    credit = ledger.credit(bought, fraction="0.5", at=NOV_15)

    result = close(session, "2026-11", DEC_1)

    assert result.invoices_issued == 3 and not result.already_closed
    issued = {(i.partner_id, i.currency): i for i in invoices_of(session, "2026-11")}
    usd = issued[(fabrikam.id, "USD")]
    # 2 x 100.00 + 10 % tax = 220.00, less half of it as a credit = 110.00
    assert (usd.net_minor, usd.tax_minor, usd.gross_minor) == (10000, 1000, 11000)
    assert usd.line_count == 2 and usd.document_type == DocumentType.INVOICE
    eur = issued[(fabrikam.id, "EUR")]
    assert (eur.net_minor, eur.tax_minor, eur.gross_minor) == (5000, 950, 5950)
    assert issued[(tailspin.id, "USD")].gross_minor == 825
    lines = billing.invoice_lines(session, invoice=usd)
    assert [(li.charge_type, li.gross_minor) for li in lines] == [
        ("new", 22000),
        ("cancel", -11000),
    ]
    credit_line = lines[1]
    assert credit_line.credit_reason_code == "cancel_within_window"
    assert credit_line.reverses_charge_id == bought.charge.id
    assert credit_line.charge_id == credit.id
    assert credit_line.customer_name == "Contoso"
    assert credit_line.order_id == bought.order.id and credit_line.quantity == 2
    assert credit_line.unit_price_minor == 10000
    assert session.get(BillingPeriod, "2026-11").state == PeriodState.CLOSED  # type: ignore[union-attr]


def test_invoice_whose_total_is_negative_is_a_credit_note(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    bought = ledger.purchase(partner, customer, at=NOV_15)
    close(session, "2026-11", DEC_1)
    ledger.credit(bought, at=DEC_10)

    result = close(session, "2026-12", JAN_1)

    (note,) = invoices_of(session, "2026-12")
    assert note.document_type == DocumentType.CREDIT_NOTE and result.credit_notes == 1
    assert note.gross_minor == -11000
    (line,) = billing.invoice_lines(session, invoice=note)
    assert line.charge_type == "cancel" and line.charge_month == "2026-12"


def test_closing_twice_issues_each_invoice_once(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), at=NOV_15)
    first = close(session, "2026-11", DEC_1)
    again = close(session, "2026-11", DEC_10)
    assert first.invoices_issued == 1 and again.already_closed
    assert again.invoices_issued == 1 and again.first_number == first.first_number
    assert session.execute(select(func.count()).select_from(Invoice)).scalar_one() == 1
    assert session.execute(select(func.count()).select_from(InvoiceLine)).scalar_one() == 1


def test_closing_a_month_that_has_not_ended_is_refused(session: Session) -> None:
    with pytest.raises(MonthNotEnded):
        billing.start_close(
            session, month="2026-11", now=datetime(2026, 11, 30, 23, 59, tzinfo=UTC)
        )
    with pytest.raises(MonthNotEnded):
        billing.close_period(session, month="2026-12", now=DEC_10)
    with pytest.raises(InvalidBillingMonth):
        billing.start_close(session, month="2026-13", now=DEC_10)


def test_earlier_month_with_charges_must_be_closed_first(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), at=NOV_15)
    with pytest.raises(EarlierPeriodOpen) as refused:
        billing.start_close(session, month="2026-12", now=JAN_1)
    assert refused.value.data == ["2026-11"]


def test_numbers_come_from_the_series_row_consecutively_without_gaps(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    # The series row says where to continue: no MAX(number) over the invoices is taken.
    session.add(NumberSeries(series=billing.INVOICE_SERIES, next_value=500))
    session.flush()
    partners = [factory.partner(f"P{i}") for i in range(3)]
    for p in partners:
        ledger.purchase(p, factory.customer(p), at=NOV_15)
    close(session, "2026-11", DEC_1)
    for p in partners[:2]:
        ledger.purchase(p, factory.customer(p), at=DEC_10)
    close(session, "2026-12", JAN_1)

    numbers = [
        i.number for i in session.execute(select(Invoice).order_by(Invoice.number)).scalars()
    ]
    assert numbers == [f"G{n:09d}" for n in range(500, 505)]
    assert session.get(NumberSeries, "G").next_value == 505  # type: ignore[union-attr]


def test_a_refused_close_leaves_no_gap_in_the_numbers(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), at=NOV_15)
    savepoint = session.begin_nested()
    billing.close_period(session, month="2026-11", now=DEC_1)
    savepoint.rollback()  # the run fails after numbering: its numbers are not used
    close(session, "2026-11", DEC_1)
    (invoice,) = invoices_of(session, "2026-11")
    assert invoice.number == "G000000001"


def test_charge_recorded_after_the_month_is_closing_goes_to_the_next_month(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    ledger.purchase(partner, customer, at=NOV_15)
    billing.start_close(session, month="2026-11", now=DEC_1)
    session.commit()
    # Recorded with a November time stamp, after the close began: it is December's.
    late = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    assert billing.open_billing_month(session, now=late) == "2026-12"
    straggler = ledger.purchase(partner, customer, at=late)
    assert straggler.charge.billing_month == "2026-12"
    billing.close_period(session, month="2026-11", now=DEC_1)
    (nov,) = invoices_of(session, "2026-11")
    assert nov.line_count == 1
    close(session, "2026-12", JAN_1)
    (dec,) = invoices_of(session, "2026-12")
    assert dec.line_count == 1


def test_charge_stamped_with_a_closed_month_is_billed_once_by_the_next_close(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    """A writer that raced the close with the old month is never lost, never billed twice."""
    partner = factory.partner()
    customer = factory.customer(partner)
    ledger.purchase(partner, customer, at=NOV_15)
    close(session, "2026-11", DEC_1)
    racer = ledger.purchase(partner, customer, at=NOV_15, month="2026-11")

    close(session, "2026-12", JAN_1)
    close(session, "2026-12", JAN_1)

    (dec,) = invoices_of(session, "2026-12")
    (line,) = billing.invoice_lines(session, invoice=dec)
    assert line.charge_id == racer.charge.id and line.charge_month == "2026-11"
    assert billing.verify(session).ok


def test_monthly_subscription_is_charged_once_for_each_month_of_its_term(
    session: Session, factory: Factory, ledger: Ledger, clock: FrozenClock
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    sub = ledger.purchase(
        partner, customer, unit_net="30.00", billing_cycle="monthly", term="P3M", at=NOV_15
    )
    close(session, "2026-11", DEC_1)
    dec = close(session, "2026-12", JAN_1)
    assert dec.cycle_charges_created == 1
    # Generating again for December (a retried close) adds nothing: unique per line and month.
    assert billing.generate_cycle_charges(session, month="2026-12", now=JAN_1) == 0
    close(session, "2027-01", datetime(2027, 2, 1, tzinfo=UTC))
    close(session, "2027-02", datetime(2027, 3, 1, tzinfo=UTC))  # after the term: nothing

    charges = session.execute(
        select(Charge.billing_month, Charge.charge_type)
        .where(Charge.order_line_id == sub.line.id)
        .order_by(Charge.billing_month)
    ).all()
    assert [(m, str(t)) for m, t in charges] == [
        ("2026-11", "new"),
        ("2026-12", "cycleCharge"),
        ("2027-01", "cycleCharge"),
    ]
    (dec_invoice,) = invoices_of(session, "2026-12")
    (line,) = billing.invoice_lines(session, invoice=dec_invoice)
    assert line.charge_type == "cycleCharge" and line.gross_minor == 3300
    start, end = billing.charge_period(line)
    assert start == datetime(2026, 12, 15, 12, 0, tzinfo=UTC)
    assert end == datetime(2027, 1, 15, 12, 0, tzinfo=UTC)
    assert invoices_of(session, "2027-02") == []
    assert billing.verify(session).ok


def test_cancelled_monthly_subscription_gets_no_later_month(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    """django-plans charged overlapping periods twice; a cancelled line is never charged again."""
    partner = factory.partner()
    customer = factory.customer(partner)
    sub = ledger.purchase(
        partner, customer, unit_net="30.00", billing_cycle="monthly", term="P1Y", at=NOV_15
    )
    ledger.credit(sub, fraction="0.5", at=datetime(2026, 11, 30, tzinfo=UTC))
    close(session, "2026-11", DEC_1)
    close(session, "2026-12", JAN_1)
    close(session, "2027-01", datetime(2027, 2, 1, tzinfo=UTC))
    charges = session.execute(
        select(Charge.charge_type).where(Charge.order_line_id == sub.line.id)
    ).scalars()
    assert sorted(str(t) for t in charges) == ["cancel", "new"]
    (nov,) = invoices_of(session, "2026-11")
    assert nov.gross_minor == 3300 - 1650
    assert invoices_of(session, "2026-12") == []


def test_cycle_charge_for_a_period_begun_before_the_cancellation_is_billed(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    sub = ledger.purchase(
        partner, customer, unit_net="30.00", billing_cycle="monthly", term="P1Y", at=NOV_15
    )
    close(session, "2026-11", DEC_1)
    ledger.credit(sub, fraction="0.5", at=datetime(2026, 12, 20, tzinfo=UTC))
    close(session, "2026-12", JAN_1)
    close(session, "2027-01", datetime(2027, 2, 1, tzinfo=UTC))
    (dec,) = invoices_of(session, "2026-12")
    assert sorted(li.charge_type for li in billing.invoice_lines(session, invoice=dec)) == [
        "cancel",
        "cycleCharge",
    ]
    assert invoices_of(session, "2027-01") == []


def test_issued_invoices_and_lines_refuse_update_and_delete(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), at=NOV_15)
    close(session, "2026-11", DEC_1)
    (invoice,) = invoices_of(session, "2026-11")
    statements = [
        update(Invoice).where(Invoice.id == invoice.id).values(gross_minor=1),
        update(InvoiceLine).values(gross_minor=1),
        text("DELETE FROM invoice_lines"),
        text("DELETE FROM invoices"),
    ]
    for statement in statements:
        savepoint = session.begin_nested()
        with pytest.raises(DBAPIError, match="immutable"):
            session.execute(statement)
        savepoint.rollback()
    session.expire_all()
    assert invoices_of(session, "2026-11")[0].gross_minor == 11000


def test_verify_finds_every_closed_month_equal_to_its_charges_and_credits(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partners = [factory.partner(f"V{i}") for i in range(3)]
    for i, p in enumerate(partners):
        c = factory.customer(p)
        bought = ledger.purchase(p, c, unit_net=f"{10 + i}.99", quantity=i + 1, at=NOV_15)
        ledger.purchase(p, c, unit_net="5.00", currency="EUR", at=NOV_15)
        if i:
            ledger.credit(bought, fraction="0.3", at=NOV_15)
    close(session, "2026-11", DEC_1)
    report = billing.verify(session)
    assert report.ok, report.mismatches
    assert report.months == ["2026-11"] and report.groups_checked == 6

    # A charge slipped into the closed month behind the close's back is found.
    ledger.purchase(partners[0], factory.customer(partners[0]), at=NOV_15, month="2026-11")
    report = billing.verify(session)
    assert not report.ok
    assert {m.kind for m in report.mismatches} == {"invoice_lines", "invoice_totals"}
    assert all(m.month == "2026-11" and m.partner_id == partners[0].id for m in report.mismatches)


def test_open_billing_month_is_the_month_of_now_until_it_closes(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    assert billing.open_billing_month(session, now=NOV_15) == "2026-11"
    assert session.get(BillingPeriod, "2026-11").state == PeriodState.OPEN  # type: ignore[union-attr]
    close(session, "2026-11", DEC_1)
    assert billing.open_billing_month(session, now=NOV_15) == "2026-12"
    assert billing.open_billing_month(session, now=DEC_10) == "2026-12"


def test_money_totals_are_decimal(session: Session, factory: Factory, ledger: Ledger) -> None:
    partner = factory.partner()
    ledger.purchase(partner, factory.customer(partner), unit_net="0.10", quantity=3, at=NOV_15)
    result = close(session, "2026-11", DEC_1)
    assert result.totals["USD"].gross == Decimal("0.33")
    assert result.to_json()["totals"][0]["totalAmount"] == "0.33"


def test_months_are_closed_in_order_so_no_month_misses_its_monthly_charges(
    session: Session, factory: Factory, ledger: Ledger
) -> None:
    partner = factory.partner()
    ledger.purchase(
        partner,
        factory.customer(partner),
        unit_net="30.00",
        billing_cycle="monthly",
        term="P1Y",
        at=NOV_15,
    )
    close(session, "2026-11", DEC_1)
    with pytest.raises(EarlierPeriodOpen) as refused:
        billing.start_close(session, month="2027-01", now=datetime(2027, 2, 1, tzinfo=UTC))
    assert refused.value.data == ["2026-12"]
    close(session, "2026-12", JAN_1)
    (dec,) = invoices_of(session, "2026-12")
    assert dec.gross_minor == 3300

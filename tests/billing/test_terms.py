"""Every term x billing cycle the catalog can express, walked across its whole term.

Purchases go through the API; the clock moves month by month from January 2026 to March
2029, every month is closed in order, and each line's charges on each month's invoice are
compared with figures worked out by hand below (tax: 10 % in the US and Japan on top of the
price, 10 % included in the price in Australia; rounding half-up once per amount).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.billing.models import Invoice, InvoiceLine
from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import BillingCycle, CreditRule, KeySource, ProductType
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity import services as identity
from partnercenter.money import from_minor, to_minor
from partnercenter.orders import cancellation
from partnercenter.orders.models import OrderLine
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory
from tests.orders.cancel_helpers import Buyer
from tests.orders.catalog_data import Offer, add_product

PRODUCT = "CFQ7TTC0TERM"
JAN_31 = datetime(2026, 1, 31, 10, 0, tzinfo=UTC)  # monthly periods end on 28 Feb, 31 Mar, ...
MAR_20 = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)


def _offers() -> list[Offer]:
    us, jp, au = ("US",), ("JP",), ("AU",)
    return [
        Offer("P1MM", us, "USD", 1_234, "P1M", BillingCycle.MONTHLY),
        Offer("P1YU", us, "USD", 60_000, "P1Y", BillingCycle.ONE_TIME),
        Offer("P1YM", us, "USD", 5_000, "P1Y", BillingCycle.MONTHLY),
        Offer("P1YA", us, "USD", 5_785, "P1Y", BillingCycle.ANNUAL),
        Offer("P3YU", us, "USD", 150_000, "P3Y", BillingCycle.ONE_TIME),
        Offer("P3YM", us, "USD", 4_500, "P3Y", BillingCycle.MONTHLY),
        Offer("P3YA", us, "USD", 5_785, "P3Y", BillingCycle.ANNUAL),
        Offer("JP3YA", jp, "JPY", 12_345, "P3Y", BillingCycle.ANNUAL),
        Offer("JP1YM", jp, "JPY", 999, "P1Y", BillingCycle.MONTHLY),
        Offer("AU3YA", au, "AUD", 10_249, "P3Y", BillingCycle.ANNUAL),
        Offer("AU3YM", au, "AUD", 10_249, "P3Y", BillingCycle.MONTHLY),
    ]


Amounts = tuple[str, str, str]  # net, tax, gross as written on the invoice


def _months(first: str, count: int) -> list[str]:
    return [billing.shift_month(first, i) for i in range(count)]


@dataclass
class Case:
    """One purchase, what happens to it, and its invoice figures month by month."""

    name: str
    offer: str
    market: str
    quantity: int
    bought: datetime
    expected: dict[str, Amounts]
    cancel_at: datetime | None = None
    cancel_by_support: bool = False
    order_id: str = ""
    line_id: uuid.UUID | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _every(months: list[str], amounts: Amounts) -> dict[str, Amounts]:
    return {m: amounts for m in months}


CASES = [
    # 2 x 57.85 a year over three years: 115.70 (+ 11.57 tax) at purchase and on each
    # anniversary month; 347.10 net over the term.
    Case(
        "P3Y annual",
        "P3YA",
        "US",
        2,
        MAR_20,
        _every(["2026-03", "2027-03", "2028-03"], ("115.70", "11.57", "127.27")),
    ),
    Case("P1Y annual", "P1YA", "US", 2, MAR_20, {"2026-03": ("115.70", "11.57", "127.27")}),
    Case("P1Y upfront", "P1YU", "US", 1, MAR_20, {"2026-03": ("600.00", "60.00", "660.00")}),
    Case("P3Y upfront", "P3YU", "US", 1, JAN_31, {"2026-01": ("1500.00", "150.00", "1650.00")}),
    # 3 x 50.00 a month for 12 months from 31 January (February's period starts on the 28th).
    Case(
        "P1Y monthly",
        "P1YM",
        "US",
        3,
        JAN_31,
        _every(_months("2026-01", 12), ("150.00", "15.00", "165.00")),
    ),
    Case(
        "P3Y monthly",
        "P3YM",
        "US",
        1,
        MAR_20,
        _every(_months("2026-03", 36), ("45.00", "4.50", "49.50")),
    ),
    # 12.34 x 10 % = 1.234 -> 1.23
    Case("P1M monthly", "P1MM", "US", 1, MAR_20, {"2026-03": ("12.34", "1.23", "13.57")}),
    # JPY, no decimals: 3 x 12,345 = 37,035; tax 3,703.5 -> 3,704.
    Case(
        "P3Y annual JPY",
        "JP3YA",
        "JP",
        3,
        JAN_31,
        _every(["2026-01", "2027-01", "2028-01"], ("37035", "3704", "40739")),
    ),
    # 2 x 999 = 1,998; tax 199.8 -> 200.
    Case(
        "P1Y monthly JPY",
        "JP1YM",
        "JP",
        2,
        MAR_20,
        _every(_months("2026-03", 12), ("1998", "200", "2198")),
    ),
    # AUD, tax included: 7 x 102.49 = 717.43 gross; tax 717.43 / 11 = 65.2209 -> 65.22.
    Case(
        "P3Y annual AUD",
        "AU3YA",
        "AU",
        7,
        MAR_20,
        _every(["2026-03", "2027-03", "2028-03"], ("652.21", "65.22", "717.43")),
    ),
    Case(
        "P3Y monthly AUD",
        "AU3YM",
        "AU",
        1,
        JAN_31,
        # 102.49 / 11 = 9.3173 -> 9.32 tax, 93.17 net
        _every(_months("2026-01", 36), ("93.17", "9.32", "102.49")),
    ),
    # Cancelled on day 10 of its first year (365 days): credit 355/365 of the year's charge,
    # 115.70 x 355/365 = 112.53, 11.57 x 355/365 = 11.25; no later year is billed.
    Case(
        "P3Y annual cancelled day 10",
        "P3YA",
        "US",
        2,
        MAR_20,
        {"2026-03": ("3.17", "0.32", "3.49")},
        cancel_at=datetime(2026, 3, 30, 9, 0, tzinfo=UTC),
    ),
    # Cancelled on 10 April in its first monthly period (20 Mar - 20 Apr, 31 days, 21 used):
    # credit 10/31 of 45.00 = 14.52 and of 4.50 = 1.45, on April's invoice; the period that
    # starts on 20 April is never billed.
    Case(
        "P3Y monthly cancelled in month 1",
        "P3YM",
        "US",
        1,
        MAR_20,
        {"2026-03": ("45.00", "4.50", "49.50"), "2026-04": ("-14.52", "-1.45", "-15.97")},
        cancel_at=datetime(2026, 4, 10, 9, 0, tzinfo=UTC),
    ),
    # Cancelled through an approved support request on 19 May 2027, in its second year (past
    # the window: the request's own refund credit, if any, is the support agent's to set; see
    # test_credits for the second year's prorated share): the third year is never billed.
    Case(
        "P3Y annual cancelled in year 2",
        "P3YA",
        "US",
        2,
        MAR_20,
        {
            "2026-03": ("115.70", "11.57", "127.27"),
            "2027-03": ("115.70", "11.57", "127.27"),
        },
        cancel_at=datetime(2027, 5, 19, 9, 0, tzinfo=UTC),
        cancel_by_support=True,
    ),
]


@pytest.fixture
def shop(
    client: TestClient, session: Session, settings: Settings, factory: Factory, clock: FrozenClock
) -> tuple[Buyer, dict[str, Any]]:
    clock.set(JAN_31)
    now = clock.now()
    add_product(
        session,
        now=now,
        product_id=PRODUCT,
        title="Windows Server 2025 Datacenter",
        product_type=ProductType.SERVER_SUBSCRIPTION,
        sku_id="0001",
        sku_title="16 core pack",
        key_source=KeySource.NONE,
        credit_rule=CreditRule.PRORATED,
        offers=_offers(),
    )
    for country in ("US", "JP", "AU"):
        catalog.set_tax_rate(session, country=country, percent=Decimal(10), now=now, actor=None)
    partner = factory.partner("Fabrikam")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    secret, _ = identity.create_named_token(
        session, user=agent, name="terms", now=now, request=None, days=730
    )
    people: dict[str, Any] = {
        "partner": partner,
        "US": factory.customer(partner, name="Contoso", country="US"),
        "JP": factory.customer(partner, name="株式会社ノースウィンド", country="JP"),
        "AU": factory.customer(partner, name="Wingtip Toys", country="AU"),
    }
    session.commit()
    return Buyer(client, {"Authorization": f"Bearer {secret}"}), people


def _close(session: Session, month: str) -> billing.CloseResult:
    at = billing.month_end(month).replace(minute=10)
    billing.start_close(session, month=month, now=at)
    session.commit()
    result = billing.close_period(session, month=month, now=at)
    session.commit()
    return result


def _walk(shop: Buyer, people: dict[str, Any], session: Session, clock: FrozenClock) -> None:
    """Buy, cancel and close every month from January 2026 to March 2029, in order."""
    events: list[tuple[datetime, str, Case]] = [(c.bought, "buy", c) for c in CASES]
    events += [(c.cancel_at, "cancel", c) for c in CASES if c.cancel_at is not None]
    events.sort(key=lambda e: (e[0], e[1]))
    for month in _months("2026-01", 39):
        for at, kind, case in events:
            if billing.month_of(at) != month:
                continue
            clock.set(at)
            customer = people[case.market]
            if kind == "buy":
                order = shop.buy(customer, (f"{PRODUCT}:0001:{case.offer}", case.quantity))
                case.order_id = order["id"]
                line = session.execute(
                    select(OrderLine).where(OrderLine.order_id == uuid.UUID(order["id"]))
                ).scalar_one()
                case.line_id = line.id
            elif case.cancel_by_support:
                cancellation.cancel_order(
                    session,
                    actor=None,
                    customer=customer,
                    order_id=uuid.UUID(case.order_id),
                    now=at,
                    support_request_id="approved-in-test",
                )
                session.commit()
            else:
                r = shop.cancel(customer, case.order_id)
                assert r.status_code == 200, r.text
            session.expire_all()
        _close(session, month)


def _figures(session: Session) -> dict[uuid.UUID, dict[str, list[int]]]:
    """Each order line's invoiced net, tax and gross per invoice month, in minor units."""
    found: dict[uuid.UUID, dict[str, list[int]]] = defaultdict(dict)
    for li in session.execute(select(InvoiceLine)).scalars():
        sums = found[li.order_line_id].setdefault(li.invoice_month, [0, 0, 0])
        sums[0] += li.net_minor
        sums[1] += li.tax_minor
        sums[2] += li.gross_minor
    return found


def test_every_term_and_cycle_is_billed_period_by_period_across_its_whole_term(
    shop: tuple[Buyer, dict[str, Any]], session: Session, clock: FrozenClock
) -> None:
    buyer, people = shop
    _walk(buyer, people, session, clock)
    found = _figures(session)
    currency_of = {"US": "USD", "JP": "JPY", "AU": "AUD"}
    expected_invoices: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for case in CASES:
        assert case.line_id is not None
        currency = currency_of[case.market]
        want = {
            month: [to_minor(Decimal(x), currency) for x in amounts]
            for month, amounts in case.expected.items()
        }
        assert found.get(case.line_id, {}) == want, case.name
        for month, sums in want.items():
            total = expected_invoices[(month, currency)]
            for i in range(3):
                total[i] += sums[i]
    # Every month's invoice, per currency, is the sum of the figures above, and no month
    # has an invoice the table does not expect.
    invoices = {
        (inv.billing_month, inv.currency): [inv.net_minor, inv.tax_minor, inv.gross_minor]
        for inv in session.execute(select(Invoice)).scalars()
    }
    assert invoices == dict(expected_invoices)
    assert billing.verify(session).ok


def test_the_annual_charge_of_a_later_year_covers_that_year(
    shop: tuple[Buyer, dict[str, Any]], session: Session, clock: FrozenClock
) -> None:
    buyer, people = shop
    _walk(buyer, people, session, clock)
    case = CASES[0]
    lines = list(
        session.execute(
            select(InvoiceLine)
            .where(InvoiceLine.order_line_id == case.line_id)
            .order_by(InvoiceLine.invoice_month)
        ).scalars()
    )
    periods = [billing.charge_period(li) for li in lines]
    assert [(s.date().isoformat(), e.date().isoformat()) for s, e in periods] == [
        ("2026-03-20", "2027-03-20"),
        ("2027-03-20", "2028-03-20"),
        ("2028-03-20", "2029-03-20"),
    ]
    assert [li.charge_type for li in lines] == ["new", "cycleCharge", "cycleCharge"]
    assert sum(from_minor(li.net_minor, "USD") for li in lines) == Decimal("347.10")


def test_later_charges_are_named_by_their_billing_cycle_on_the_invoice_page(
    shop: tuple[Buyer, dict[str, Any]],
    client: TestClient,
    session: Session,
    factory: Factory,
    clock: FrozenClock,
) -> None:
    """A multi-year term billed annually reads "Annual charge" ("Cargo anual") on each
    anniversary, one billed monthly "Monthly charge" ("Cargo mensual"), in English and Spanish."""
    from tests.web import sign_in

    buyer, people = shop
    _walk(buyer, people, session, clock)
    admin = factory.user(people["partner"], Role.GLOBAL_ADMIN)
    session.commit()
    assert sign_in(client, admin.email, PASSWORD).status_code == 303
    lines = session.execute(
        select(InvoiceLine, Invoice.id)
        .join(
            Invoice,
            (Invoice.partner_id == InvoiceLine.partner_id)
            & (Invoice.billing_month == InvoiceLine.invoice_month)
            & (Invoice.currency == InvoiceLine.currency),
        )
        .where(InvoiceLine.charge_type == "cycleCharge")
    ).all()
    cycles = {li.billing_cycle for li, _ in lines}
    assert cycles == {"monthly", "annual"}
    # A 1-year term billed annually is charged once, at purchase: later annual charges are the
    # 3-year terms' anniversaries; monthly ones come from 1-year and 3-year terms.
    assert {li.term_duration for li, _ in lines if li.billing_cycle == "annual"} == {"P3Y"}
    assert {li.term_duration for li, _ in lines if li.billing_cycle == "monthly"} == {"P1Y", "P3Y"}
    want = {
        "monthly": ("Monthly charge", "Cargo mensual"),
        "annual": ("Annual charge", "Cargo anual"),
    }
    pages: dict[tuple[uuid.UUID, str], str] = {}
    for li, invoice_id in lines:
        for n, lang in enumerate(("en", "es")):
            if (invoice_id, lang) not in pages:
                client.cookies.set("pc_lang", lang)
                r = client.get(f"/partner/billing/invoices/{invoice_id}")
                assert r.status_code == 200, r.text
                pages[(invoice_id, lang)] = r.text
            html = pages[(invoice_id, lang)]
            rows = [
                row
                for row in html.split('<tr data-charge-type="cycleCharge">')[1:]
                if str(li.order_id) in row.split("</tr>", 1)[0]
            ]
            assert rows, (li.order_id, lang)
            label_cell = rows[0].split("</td>", 2)[1]
            assert want[li.billing_cycle][n] in label_cell, (li.term_duration, li.billing_cycle)
            other = want["annual" if li.billing_cycle == "monthly" else "monthly"][n]
            assert other not in label_cell

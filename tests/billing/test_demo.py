"""The demo comes with a closed month: invoices in two currencies with charges, a
cancellation credit and a refund credit, visible on the partner's billing pages."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter import demo
from partnercenter.billing import demo as billing_demo
from partnercenter.billing import services as billing
from partnercenter.billing.models import Invoice, InvoiceLine
from partnercenter.catalog import demo as catalog_demo
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.customers import demo as customers_demo
from tests.web import sign_in


def _load(session: Session, settings: Settings, now: datetime) -> str | None:
    demo.ensure_provider(
        session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=now
    )
    demo.load(session, now=now)
    catalog_demo.load(session, now=now, settings=settings)
    customers_demo.load(session, now=now, settings=settings)
    month = billing_demo.load(session, now=now, settings=settings)
    session.commit()
    return month


def test_the_demo_has_a_closed_month_with_charges_and_both_kinds_of_credit(
    client: TestClient, session: Session, settings: Settings, clock: FrozenClock
) -> None:
    now = datetime(2026, 11, 29, 13, 0, tzinfo=UTC)
    clock.set(now)
    assert _load(session, settings, now) == "2026-10"
    invoices = list(session.execute(select(Invoice)).scalars())
    assert {i.currency for i in invoices} == {"USD", "AUD"}
    assert {i.billing_month for i in invoices} == {"2026-10"}
    kinds = {li.charge_type for li in session.execute(select(InvoiceLine)).scalars()}
    assert kinds == {"new", "cancel", "customerCredit"}
    assert billing.verify(session).ok
    # Loading it again changes nothing.
    assert _load(session, settings, now) is None
    assert len(list(session.execute(select(Invoice)).scalars())) == 2

    browser = TestClient(client.app)
    assert sign_in(browser, "global.admin@fabrikam.example", demo.DEMO_PASSWORD).status_code == 303
    page = browser.get("/partner/billing/invoices")
    assert page.status_code == 200
    for invoice in invoices:
        assert invoice.number in page.text
        detail = browser.get(f"/partner/billing/invoices/{invoice.id}")
        assert detail.status_code == 200 and invoice.number in detail.text

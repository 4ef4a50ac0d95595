"""The demo customers get billing profiles in their markets, once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter import demo
from partnercenter.clock import FrozenClock
from partnercenter.customers import demo as customers_demo
from partnercenter.identity.models import Tenant


def test_demo_customers_get_billing_profiles_idempotently(
    session: Session, clock: FrozenClock
) -> None:
    demo.load(session, now=clock.now())
    customers_demo.load(session, now=clock.now())
    litware = session.execute(
        select(Tenant).where(Tenant.domain == "litwarebr.onmicrosoft.com")
    ).scalar_one()
    assert litware.billing_profile is not None
    assert litware.billing_profile["defaultAddress"]["country"] == "BR"
    assert litware.billing_profile["companyName"] == "Litware Brasil"
    litware.billing_profile = {**litware.billing_profile, "email": "kept@litware.example"}
    customers_demo.load(session, now=clock.now())
    assert litware.billing_profile["email"] == "kept@litware.example"

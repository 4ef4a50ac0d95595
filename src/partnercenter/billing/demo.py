"""Demo billing history: last month's purchases, a cancellation and a refund, closed.

Run by ``partnercenter demo`` after the tenants, users and catalog, so every billing page has
a real invoice on first run: Fabrikam's customers bought SQL Server and SUSE last month in
USD and AUD (tax included), one purchase was cancelled two days later (a cancellation
credit), support approved a refund on another (a refund credit), and the month was closed.
Everything goes through the same services as the pages and the API, dated last month.
Idempotent: once the demo month has invoices (or anything else is in the way, such as an
earlier month left open), it does nothing.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.billing.models import Invoice
from partnercenter.config import Settings
from partnercenter.errors import DomainError
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.orders import cancellation
from partnercenter.orders import services as orders

log = logging.getLogger(__name__)

AGENT = "admin.agent@fabrikam.example"
SUPPORT = "support@northwind.example"
PROVIDER_ADMIN = "admin@northwind.example"
SQL_SERVER = "DG7GMGF0FLR2:0001"
SUSE = "DZH318Z0BQ4P:0001:USD-P1Y-OT"


def _user(session: Session, email: str) -> User | None:
    return session.execute(select(User).where(User.email == email)).scalar_one_or_none()


def _customer(session: Session, domain: str) -> Tenant | None:
    return session.execute(select(Tenant).where(Tenant.domain == domain)).scalar_one_or_none()


def load(session: Session, *, now: datetime, settings: Settings, **_: Any) -> str | None:
    """Record and close last month's demo billing; returns the month closed, or None."""
    month = billing.shift_month(billing.month_of(now), -1)
    period = billing.get_period(session, month)
    if period is not None and period.state.value != "open":
        return None
    if session.execute(select(Invoice.id).limit(1)).first() is not None:
        return None
    agent, support, admin = (_user(session, e) for e in (AGENT, SUPPORT, PROVIDER_ADMIN))
    contoso = _customer(session, "contoso.onmicrosoft.com")
    wingtip = _customer(session, "wingtiptoys.onmicrosoft.com")
    if not (agent and support and admin and contoso and wingtip):
        return None
    start = billing.month_start(month)
    bought = start + timedelta(days=2, hours=10)
    savepoint = session.begin_nested()
    try:
        _history(
            session,
            settings=settings,
            agent=identity.actor_for(agent),
            support=identity.actor_for(support),
            contoso=contoso,
            wingtip=wingtip,
            bought=bought,
        )
        billing.start_close(session, month=month, now=now, actor=identity.actor_for(admin))
        billing.close_period(session, month=month, now=now, actor=identity.actor_for(admin))
    except DomainError as exc:
        # Something of the deployment's own is in the way (e.g. an earlier month left open):
        # the demo leaves billing as it is.
        savepoint.rollback()
        log.warning("demo billing skipped: %s", exc.description)
        return None
    savepoint.commit()
    return month


def _buy(
    session: Session,
    *,
    settings: Settings,
    agent: Any,
    customer: Tenant,
    item: str,
    quantity: int,
    at: datetime,
) -> uuid.UUID:
    cart = orders.create_cart(
        session,
        actor=agent,
        customer=customer,
        lines=[{"catalogItemId": item, "quantity": quantity}],
        now=at,
    )
    result = orders.checkout(
        session, settings=settings, actor=agent, customer=customer, cart_id=cart.id, now=at
    )
    return uuid.UUID(result["orders"][0]["id"])


def _history(
    session: Session,
    *,
    settings: Settings,
    agent: Any,
    support: Any,
    contoso: Tenant,
    wingtip: Tenant,
    bought: datetime,
) -> None:
    from partnercenter.support import services as support_services

    # Contoso's newest live purchase is SQL Server (with a product key), bought last: the
    # first item of its Software list is one a new user can Get Key on.
    cancelled = _buy(
        session,
        settings=settings,
        agent=agent,
        customer=contoso,
        item=f"{SQL_SERVER}:USD-P1Y-AN",
        quantity=1,
        at=bought + timedelta(hours=1),
    )
    suse = _buy(
        session, settings=settings, agent=agent, customer=contoso, item=SUSE, quantity=1, at=bought
    )
    _buy(
        session,
        settings=settings,
        agent=agent,
        customer=contoso,
        item=f"{SQL_SERVER}:USD-P3Y-AN",
        quantity=2,
        at=bought + timedelta(hours=3),
    )
    _buy(
        session,
        settings=settings,
        agent=agent,
        customer=wingtip,
        item=f"{SQL_SERVER}:AUD-P1Y-AN",
        quantity=7,
        at=bought + timedelta(hours=2),
    )
    cancellation.cancel_order(
        session,
        actor=agent,
        customer=contoso,
        order_id=cancelled,
        now=bought + timedelta(days=2),
    )
    filed_at = bought + timedelta(days=7)
    req = support_services.file_request(
        session,
        actor=agent,
        data=support_services.NewRequest(
            topic_id=support_services.REFUND_TOPIC,
            severity="moderate",
            title="Refund for unused SUSE subscription days",
            description="The customer started the subscription a week late.",
            refund=support_services.RefundDetails(
                customer=contoso.domain or "",
                order_id=str(suse),
                reason="Service started a week after the purchase.",
                amount="25.00",
            ),
            contact=support_services.Contact("Admin", "Agent", AGENT, "+1 425 555 0100"),
        ),
        now=filed_at,
    )
    support_services.update_request(
        session,
        actor=support,
        request_id=req.id,
        changes=support_services.Changes(
            refund=support_services.RefundDecision(approve=True, reason="Approved as asked.")
        ),
        now=filed_at + timedelta(days=1),
    )

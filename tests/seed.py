"""A small committed world for tests against real servers: the test catalog, a provider with
its people, partner Fabrikam with an Admin agent, and Fabrikam's customer Contoso."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from partnercenter.config import Settings
from partnercenter.db import make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant
from partnercenter.permissions import Role, TenantKind
from tests.factories import PASSWORD
from tests.orders import catalog_data

AGENT = "agent@fabrikam.example"


def partner_world(
    session: Session,
    *,
    settings: Settings,
    now: datetime,
    keys: int,
    domain: str,
    provider_people: Sequence[tuple[str, Role]],
    partner_people: Sequence[tuple[str, Role]] = ((AGENT, Role.ADMIN_AGENT),),
) -> str:
    """Load and commit the world; returns Contoso's customer id.

    ``keys`` Windows Server keys are in inventory; every person signs in with
    ``tests.factories.PASSWORD``.
    """
    catalog_data.load(session, settings=settings, now=now, keys=keys)
    provider = identity.create_tenant(
        session, kind=TenantKind.PROVIDER, name="Provider", country="US", now=now
    )
    partner = identity.create_tenant(
        session, kind=TenantKind.PARTNER, name="Fabrikam", country="US", now=now
    )
    session.flush()  # the customer and users point at the tenants
    customer = identity.create_tenant(
        session,
        kind=TenantKind.CUSTOMER,
        name="Contoso",
        country="US",
        domain=domain,
        parent_id=partner.id,
        now=now,
    )
    people = [(provider, e, r) for e, r in provider_people]
    people += [(partner, e, r) for e, r in partner_people]
    add_people(session, people, now=now)
    session.commit()
    return str(customer.id)


def add_people(
    session: Session, people: Iterable[tuple[Tenant, str, Role]], *, now: datetime
) -> None:
    """Add a user per (tenant, email, role), named after the email's local part, each signing
    in with ``tests.factories.PASSWORD``; not committed."""
    for tenant, email, role in people:
        identity.create_user(
            session,
            tenant=tenant,
            email=email,
            display_name=email.split("@")[0],
            password=PASSWORD,
            roles=[role.value],
            now=now,
        )


def committed_partner(
    engine: Engine, name: str, people: Sequence[tuple[str, Role]], *, now: datetime
) -> None:
    """A partner tenant called ``name`` with ``people`` (email, role), committed on ``engine``."""
    with make_session_factory(engine)() as session:
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name=name, country="US", now=now
        )
        session.flush()  # the users point at the tenant
        add_people(session, [(partner, email, role) for email, role in people], now=now)
        session.commit()

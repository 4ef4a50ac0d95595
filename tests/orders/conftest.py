"""Order tests: a partner with an Admin agent, customers in several markets, a catalog."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.orders import catalog_data


@dataclass
class Shop:
    partner: Tenant
    agent: User
    us: Tenant
    au: Tenant
    br: Tenant
    ad: Tenant
    headers: dict[str, str]


@pytest.fixture
def shop(
    factory: Factory,
    session: Session,
    settings: Settings,
    clock: FrozenClock,
    auth_headers: Callable[..., dict[str, str]],
) -> Shop:
    catalog_data.load(session, settings=settings, now=clock.now())
    partner = factory.partner("Fabrikam")
    agent = factory.user(partner, Role.ADMIN_AGENT)
    return Shop(
        partner=partner,
        agent=agent,
        us=factory.customer(partner, name="Contoso", country="US"),
        au=factory.customer(partner, name="Wingtip", country="AU"),
        br=factory.customer(partner, name="Litware", country="BR"),
        ad=factory.customer(partner, name="Andorra Co", country="AD"),
        headers=auth_headers(agent),
    )

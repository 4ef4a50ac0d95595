"""Factories: tenants and users built through the real services."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role, TenantKind

PASSWORD = "correct-horse-battery"


class Factory:
    """Builds tenants and users in the test's transaction."""

    def __init__(self, session: Session, clock: FrozenClock) -> None:
        self.session = session
        self.clock = clock
        self._provider: Tenant | None = None

    def provider(self) -> Tenant:
        if self._provider is None:
            existing = identity.get_provider(self.session)
            self._provider = existing or identity.create_tenant(
                self.session,
                kind=TenantKind.PROVIDER,
                name="Provider",
                country="US",
                now=self.clock.now(),
            )
            self.session.flush()
        return self._provider

    def partner(self, name: str | None = None, country: str = "US") -> Tenant:
        t = identity.create_tenant(
            self.session,
            kind=TenantKind.PARTNER,
            name=name or f"Partner {uuid.uuid4().hex[:6]}",
            country=country,
            now=self.clock.now(),
        )
        self.session.flush()
        return t

    def customer(
        self,
        partner: Tenant,
        name: str | None = None,
        country: str = "US",
        domain: str | None = None,
    ) -> Tenant:
        suffix = uuid.uuid4().hex[:8]
        t = identity.create_tenant(
            self.session,
            kind=TenantKind.CUSTOMER,
            name=name or f"Customer {suffix}",
            country=country,
            domain=domain or f"cust{suffix}.onmicrosoft.com",
            parent_id=partner.id,
            now=self.clock.now(),
        )
        self.session.flush()
        return t

    def user(
        self, tenant: Tenant, *roles: Role, email: str | None = None, password: str = PASSWORD
    ) -> User:
        u = identity.create_user(
            self.session,
            tenant=tenant,
            email=email or f"u{uuid.uuid4().hex[:10]}@example.com",
            display_name="Test user",
            password=password,
            roles=[r.value for r in roles],
            now=self.clock.now(),
        )
        self.session.flush()
        return u

    def provider_admin(self) -> User:
        return self.user(self.provider(), Role.PROVIDER_ADMIN)


@pytest.fixture
def factory(session: Session, clock: FrozenClock) -> Factory:
    return Factory(session, clock)


def token_for(client: TestClient, user: User, password: str = PASSWORD) -> str:
    r = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": user.email, "password": password},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture
def auth_headers(client: TestClient, session: Session) -> Callable[[User], dict[str, str]]:
    """Bearer headers for a user (a real password-grant sign-in through the API)."""

    def make(user: User, **extra: Any) -> dict[str, str]:
        session.commit()  # make the user visible to the app's sessions (savepoint release)
        return {"Authorization": f"Bearer {token_for(client, user)}", **extra}

    return make

"""Every demo sign-in works, over the API and through the page, and lands in its portal."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter import demo
from partnercenter.clock import FrozenClock
from partnercenter.permissions import ROLE_LABELS, ROLES_BY_KIND, TenantKind
from tests.web import sign_in


def test_every_demo_user_signs_in_through_the_page_and_lands_in_its_portal(
    client: TestClient, session: Session, clock: FrozenClock
) -> None:
    demo.ensure_provider(
        session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=clock.now()
    )
    users = demo.load(session, now=clock.now())
    session.commit()
    # One user per role, per portal.
    by_portal: dict[str, set[str]] = {}
    for u in users:
        by_portal.setdefault(u.portal, set()).add(u.role.value)
    portals = {TenantKind.PROVIDER: "/provider", TenantKind.PARTNER: "/partner"}
    portals[TenantKind.CUSTOMER] = "/admin"
    for kind, portal in portals.items():
        assert by_portal[portal] == {r.value for r in ROLES_BY_KIND[kind]}

    first_of_portal = {u.portal: u for u in reversed(users)}.values()
    for u in first_of_portal:  # over the API (argon2 is slow on purpose: not all of them)
        grant = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": u.email, "password": demo.DEMO_PASSWORD},
        )
        assert grant.status_code == 200, u.email
        me = client.get(
            "/v1/users/me", headers={"Authorization": f"Bearer {grant.json()['access_token']}"}
        ).json()
        assert me["email"] == u.email and u.role.value in me["roles"]
        assert me["tenant"]["companyName"] == u.tenant

    for u in users:  # through the page, every one of them
        browser = TestClient(client.app)
        r = sign_in(browser, u.email, demo.DEMO_PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == u.portal, u.email
        home = browser.get(u.portal)
        assert home.status_code == 200 and u.tenant in home.text
        assert ROLE_LABELS[u.role] in home.text

"""Provider admins create partners; partners' Global admins manage their users."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.factories import Factory

Headers = Callable[..., dict[str, str]]


def test_provider_admin_creates_a_partner_and_its_first_global_admin(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    h = auth_headers(factory.provider_admin())
    r = client.post("/v1/partners", json={"companyName": "Adatum", "country": "gb"}, headers=h)
    assert r.status_code == 201, r.text
    partner = r.json()
    assert partner["country"] == "GB"
    u = client.post(
        f"/v1/partners/{partner['id']}/users",
        json={
            "email": "Ga@Adatum.example",
            "displayName": "GA",
            "password": "long-enough-pw",
            "roles": ["global_admin"],
        },
        headers=h,
    )
    assert u.status_code == 201, u.text
    assert u.json()["email"] == "ga@adatum.example"
    listed = client.get("/v1/partners", headers=h).json()
    assert any(p["companyName"] == "Adatum" for p in listed["items"])


def test_partner_global_admin_manages_roles_and_changes_are_audited(
    client: TestClient, factory: Factory, auth_headers: Headers, session: Session
) -> None:
    partner = factory.partner()
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    agent = factory.user(partner, Role.SALES_AGENT)
    h = auth_headers(ga)
    r = client.patch(
        f"/v1/partners/{partner.id}/users/{agent.id}",
        json={"roles": ["admin_agent", "sales_agent"]},
        headers=h,
    )
    assert r.status_code == 200
    assert sorted(r.json()["roles"]) == ["admin_agent", "sales_agent"]
    rec = session.execute(
        select(AuditRecord).where(AuditRecord.operation_type == "update_user_roles")
    ).scalar_one()
    assert rec.details["oldRoles"] == ["sales_agent"]
    assert rec.details["newRoles"] == ["admin_agent", "sales_agent"]
    assert rec.user_principal_name == ga.email


def test_roles_of_another_tenant_kind_are_refused(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    r = client.post(
        f"/v1/partners/{partner.id}/users",
        json={"email": "x@example.com", "password": "long-enough-pw", "roles": ["provider_admin"]},
        headers=h,
    )
    assert r.status_code == 400
    assert r.json()["code"] == 10414


def test_the_last_global_admin_cannot_be_demoted(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    r = client.patch(
        f"/v1/partners/{partner.id}/users/{ga.id}",
        json={"roles": ["admin_agent"]},
        headers=auth_headers(ga),
    )
    assert r.status_code == 409


def test_removed_user_can_no_longer_sign_in(
    client: TestClient, factory: Factory, auth_headers: Headers, session: Session
) -> None:
    partner = factory.partner()
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    agent = factory.user(partner, Role.ADMIN_AGENT)
    agent_headers = auth_headers(agent)
    r = client.delete(f"/v1/partners/{partner.id}/users/{agent.id}", headers=auth_headers(ga))
    assert r.status_code == 204
    assert client.get("/v1/users/me", headers=agent_headers).status_code == 401
    assert session.get(User, agent.id) is not None


def test_other_partner_roles_cannot_manage_users(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    assert client.get(f"/v1/partners/{partner.id}/users", headers=h).status_code == 403
    assert client.get("/v1/partners", headers=h).status_code == 403
    r = client.post("/v1/partners", json={"companyName": "X", "country": "US"}, headers=h)
    assert r.status_code == 403

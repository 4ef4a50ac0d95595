"""The provider's Partners page and a Global admin's User management page, through the forms."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.identity.models import Tenant, User, WebSession
from partnercenter.permissions import Role, TenantKind
from tests.factories import PASSWORD, Factory
from tests.web import csrf_of, sign_in


def _signed_in(client: TestClient, factory: Factory, user: User) -> None:
    factory.session.commit()  # make the factory's rows visible to the app's sessions
    r = sign_in(client, user.email, PASSWORD)
    assert r.status_code == 303, r.text


def _partner_form(**overrides: str) -> dict[str, str]:
    form = {
        "company_name": "Adatum Reseller",
        "country": "GB",
        "admin_email": "Ga@Adatum.example",
        "admin_name": "Grace Admin",
        "admin_password": "long-enough-password",
    }
    form.update(overrides)
    return form


def _ops(session: Session, operation: str) -> list[AuditRecord]:
    return list(
        session.execute(select(AuditRecord).where(AuditRecord.operation_type == operation))
        .scalars()
        .all()
    )


def test_provider_admin_creates_a_partner_and_its_first_global_admin(
    client: TestClient, factory: Factory, session: Session
) -> None:
    admin = factory.provider_admin()
    _signed_in(client, factory, admin)
    page = client.get("/provider/partners")
    assert page.status_code == 200 and "Create partner" in page.text
    r = client.post(
        "/provider/partners",
        data={**_partner_form(), "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/provider/partners?flash=created"
    partner = session.execute(select(Tenant).where(Tenant.name == "Adatum Reseller")).scalar_one()
    assert partner.kind == TenantKind.PARTNER and partner.country == "GB"
    ga = session.execute(select(User).where(User.email == "ga@adatum.example")).scalar_one()
    assert ga.tenant_id == partner.id and ga.roles == [Role.GLOBAL_ADMIN]
    [created_partner] = _ops(session, "create_partner")
    assert created_partner.tenant_id == admin.tenant_id
    assert created_partner.details["partnerId"] == str(partner.id)
    assert created_partner.user_principal_name == admin.email
    [created_user] = _ops(session, "create_user")
    assert created_user.tenant_id == partner.id
    assert created_user.details["newRoles"] == ["global_admin"]
    listing = client.get("/provider/partners?flash=created")
    assert "Adatum Reseller" in listing.text and str(partner.id) in listing.text
    # The new Global admin signs in and lands in the Partner Center.
    client.cookies.clear()
    signed = sign_in(client, "ga@adatum.example", "long-enough-password")
    assert signed.status_code == 303 and signed.headers["location"] == "/partner"
    assert "Grace Admin" in client.get("/partner").text


def test_partner_form_shows_validation_messages_and_creates_nothing(
    client: TestClient, factory: Factory, session: Session
) -> None:
    _signed_in(client, factory, factory.provider_admin())
    taken = factory.user(factory.partner("Existing"), Role.ADMIN_AGENT, email="taken@x.example")
    factory.session.commit()
    cases = [
        ({"company_name": "  "}, 400, "The company name is required."),
        ({"country": ""}, 400, "Choose the partner&#39;s country."),
        ({"country": "ZZ"}, 400, "is not an ISO 3166-1 alpha-2 country code."),
        ({"admin_email": "not-an-email"}, 400, "The email address is not valid."),
        ({"admin_password": "short"}, 400, "The password must have at least 10 characters."),
        ({"admin_email": taken.email}, 409, "A user with this email already exists."),
    ]
    before = session.execute(select(func.count()).select_from(Tenant)).scalar_one()
    for override, status, message in cases:
        token = csrf_of(client.get("/provider/partners").text)
        r = client.post(
            "/provider/partners", data={**_partner_form(**override), "csrf_token": token}
        )
        assert r.status_code == status, (override, r.status_code)
        assert message in r.text, (override, r.text)
        assert 'value="Adatum Reseller"' in r.text or override.get("company_name")
    after = session.execute(select(func.count()).select_from(Tenant)).scalar_one()
    assert after == before  # a partner without its Global admin is never left behind
    assert _ops(session, "create_partner") == []


def test_partner_form_messages_are_in_spanish(client: TestClient, factory: Factory) -> None:
    _signed_in(client, factory, factory.provider_admin())
    es = {"Accept-Language": "es-ES"}
    token = csrf_of(client.get("/provider/partners", headers=es).text)
    r = client.post(
        "/provider/partners",
        data={**_partner_form(admin_password="short"), "csrf_token": token},
        headers=es,
    )
    assert "La contraseña debe tener al menos 10 caracteres." in r.text
    assert "Primer administrador global" in r.text and "Reino Unido" in r.text


def test_partners_page_refuses_forged_forms_and_other_roles(
    client: TestClient, factory: Factory, session: Session
) -> None:
    support = factory.user(factory.provider(), Role.SUPPORT_AGENT)
    _signed_in(client, factory, factory.provider_admin())
    client.get("/provider/partners")
    forged = client.post("/provider/partners", data={**_partner_form(), "csrf_token": "x"})
    assert forged.status_code == 403
    assert _ops(session, "create_partner") == []
    client.cookies.clear()
    _signed_in(client, factory, support)
    assert client.get("/provider/partners").status_code == 403
    token = csrf_of(client.get("/provider").text)
    r = client.post("/provider/partners", data={**_partner_form(), "csrf_token": token})
    assert r.status_code == 403
    assert "partners" not in client.get("/provider").text.split("<main>")[0]
    client.cookies.clear()
    _signed_in(client, factory, factory.user(factory.partner(), Role.GLOBAL_ADMIN))
    assert client.get("/provider/partners").status_code == 403
    assert session.execute(select(Tenant).where(Tenant.name == "Adatum Reseller")).first() is None


def test_global_admin_adds_a_user_changes_roles_and_removes_it(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner("Fabrikam")
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    _signed_in(client, factory, ga)
    page = client.get("/partner/users")
    assert page.status_code == 200 and ga.email in page.text
    r = client.post(
        "/partner/users",
        data={
            "email": "new.agent@fabrikam.example",
            "display_name": "New Agent",
            "password": "long-enough-password",
            "roles": ["sales_agent"],
            "csrf_token": csrf_of(page.text),
        },
        follow_redirects=False,
    )
    assert r.status_code == 303
    agent = session.execute(
        select(User).where(User.email == "new.agent@fabrikam.example")
    ).scalar_one()
    assert agent.tenant_id == partner.id and agent.roles == [Role.SALES_AGENT]
    [created] = _ops(session, "create_user")
    assert created.tenant_id == partner.id and created.user_principal_name == ga.email

    # The agent signs in in another browser; later removal ends that session.
    other = TestClient(client.app)
    assert sign_in(other, agent.email, "long-enough-password").status_code == 303
    assert other.get("/partner", follow_redirects=False).status_code == 200

    token = csrf_of(client.get("/partner/users").text)
    r = client.post(
        f"/partner/users/{agent.id}/roles",
        data={"roles": ["admin_agent", "sales_agent"], "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.expire_all()
    assert sorted(session.get(User, agent.id).roles) == [Role.ADMIN_AGENT, Role.SALES_AGENT]  # type: ignore[union-attr]
    [changed] = _ops(session, "update_user_roles")
    assert changed.details["oldRoles"] == ["sales_agent"]
    assert changed.details["newRoles"] == ["admin_agent", "sales_agent"]
    assert changed.user_principal_name == ga.email

    r = client.post(
        f"/partner/users/{agent.id}/remove", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/partner/users?flash=removed"
    session.expire_all()
    removed = session.get(User, agent.id)
    assert removed is not None and removed.is_active is False
    open_sessions = session.execute(
        select(func.count())
        .select_from(WebSession)
        .where(WebSession.user_id == agent.id, WebSession.revoked_at.is_(None))
    ).scalar_one()
    assert open_sessions == 0
    gone = other.get("/partner", headers={"Accept": "text/html"}, follow_redirects=False)
    assert gone.status_code == 303 and gone.headers["location"] == "/signin?next=/partner"
    assert sign_in(other, agent.email, "long-enough-password").status_code == 401
    listing = client.get("/partner/users").text
    assert f"/partner/users/{agent.id}/remove" not in listing and "Removed" in listing


def test_user_page_errors_stay_on_the_page(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    ga = factory.user(partner, Role.GLOBAL_ADMIN)
    stranger = factory.user(factory.partner(), Role.ADMIN_AGENT)
    _signed_in(client, factory, ga)
    page = client.get("/partner/users").text
    assert f"/partner/users/{ga.id}/remove" not in page  # no button to remove oneself
    token = csrf_of(page)
    demote = client.post(f"/partner/users/{ga.id}/roles", data={"roles": [], "csrf_token": token})
    assert demote.status_code == 409
    assert "A tenant must keep at least one administrator." in demote.text
    self_remove = client.post(f"/partner/users/{ga.id}/remove", data={"csrf_token": token})
    assert (
        self_remove.status_code == 403 and "You cannot remove your own account." in self_remove.text
    )
    foreign = client.post(f"/partner/users/{stranger.id}/remove", data={"csrf_token": token})
    assert foreign.status_code == 404
    foreign_roles = client.post(
        f"/partner/users/{stranger.id}/roles", data={"roles": ["global_admin"], "csrf_token": token}
    )
    assert foreign_roles.status_code == 404
    session.expire_all()
    assert session.get(User, stranger.id).roles == [Role.ADMIN_AGENT]  # type: ignore[union-attr]
    assert session.get(User, ga.id).roles == [Role.GLOBAL_ADMIN]  # type: ignore[union-attr]
    duplicate = client.post(
        "/partner/users",
        data={"email": stranger.email, "password": "long-enough-password", "csrf_token": token},
    )
    assert (
        duplicate.status_code == 409 and "A user with this email already exists." in duplicate.text
    )


def test_only_the_global_admin_reaches_user_management(
    client: TestClient, factory: Factory
) -> None:
    partner = factory.partner()
    agent = factory.user(partner, Role.ADMIN_AGENT)
    _signed_in(client, factory, agent)
    assert client.get("/partner/users").status_code == 403
    assert "/partner/users" not in client.get("/partner").text
    token = csrf_of(client.get("/partner").text)
    r = client.post(
        "/partner/users",
        data={"email": "x@y.example", "password": "long-enough-password", "csrf_token": token},
    )
    assert r.status_code == 403

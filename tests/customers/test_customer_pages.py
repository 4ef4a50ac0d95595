"""The Customers pages: search, Add customer, the customer's page and its users."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role
from tests.customers.web import csrf_of, sign_in
from tests.factories import Factory


def test_search_box_finds_a_customer_by_name_guid_or_domain(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd", domain="contoso.onmicrosoft.com")
    factory.customer(partner, name="Wingtip Toys", domain="wingtip.onmicrosoft.com")
    factory.customer(factory.partner(), name="Contoso Foreign", domain="cf.onmicrosoft.com")
    sign_in(client, session, factory.user(partner, Role.ADMIN_AGENT))
    page = client.get("/partner/customers")
    assert page.status_code == 200
    assert "Contoso Ltd" in page.text and "Wingtip Toys" in page.text
    assert "Contoso Foreign" not in page.text
    for q in ("contoso", str(contoso.id), "contoso.onmicrosoft.com"):
        found = client.get("/partner/customers", params={"q": q}).text
        assert "Contoso Ltd" in found and "Wingtip Toys" not in found, q
    assert "Contoso Foreign" not in client.get("/partner/customers", params={"q": "cf."}).text


def test_search_finds_a_guid_prefix_and_a_domain_fragment(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd", domain="contoso.onmicrosoft.com")
    wingtip = factory.customer(partner, name="Wingtip Toys", domain="wingtip.onmicrosoft.com")
    foreign = factory.customer(factory.partner(), name="Contoso Foreign", domain="cf.example")
    sign_in(client, session, factory.user(partner, Role.ADMIN_AGENT))
    guid = str(contoso.id)
    prefixes = [guid[:8], guid[:13], guid[:13].upper(), guid.replace("-", "")[:10]]
    if str(wingtip.id)[:8] != guid[:8]:
        for q in prefixes:
            found = client.get("/partner/customers", params={"q": q}).text
            assert "Contoso Ltd" in found and "Wingtip Toys" not in found, q
    for q in ("toso.onmicro", "SOFT.COM"):  # a fragment from the middle, any case
        found = client.get("/partner/customers", params={"q": q}).text
        assert "Contoso Ltd" in found, q
    # Another partner's customer is never found, not even by its own GUID prefix.
    assert (
        "Contoso Foreign"
        not in client.get("/partner/customers", params={"q": str(foreign.id)[:8]}).text
    )
    # Wildcards in the search are text, not patterns.
    assert "Contoso Ltd" not in client.get("/partner/customers", params={"q": "%_"}).text


def test_add_customer_form_creates_the_customer_and_shows_its_page(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    sign_in(client, session, factory.user(partner, Role.GLOBAL_ADMIN))
    token = csrf_of(client.get("/partner/customers").text)
    r = client.post(
        "/partner/customers",
        data={
            "company_name": "Adatum Pty",
            "domain": "adatumau",
            "country": "AU",
            "email": "ap@adatum.example",
            "city": "Sydney",
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    tenant = session.execute(select(Tenant).where(Tenant.name == "Adatum Pty")).scalar_one()
    assert tenant.domain == "adatumau.onmicrosoft.com" and tenant.country == "AU"
    assert tenant.billing_profile is not None
    assert tenant.billing_profile["defaultAddress"]["city"] == "Sydney"
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "adatumau.onmicrosoft.com" in page.text
    assert f"/partner/customers/{tenant.id}/orders" in page.text
    assert f"/partner/customers/{tenant.id}/add-products" in page.text
    assert f"/partner/customers/{tenant.id}/software" in page.text
    dup = client.post(
        "/partner/customers",
        data={
            "company_name": "Again",
            "domain": "adatumau.onmicrosoft.com",
            "country": "AU",
            "csrf_token": token,
        },
    )
    assert dup.status_code == 409
    assert "already uses the domain" in dup.text


def test_add_customer_without_csrf_token_is_refused(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    sign_in(client, session, factory.user(partner, Role.GLOBAL_ADMIN))
    r = client.post(
        "/partner/customers",
        data={"company_name": "X", "domain": "x.onmicrosoft.com", "country": "US"},
    )
    assert r.status_code == 403
    assert session.execute(select(Tenant).where(Tenant.name == "X")).first() is None


def test_foreign_customer_page_is_404_and_roles_are_enforced(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    foreign = factory.customer(factory.partner())
    mine = factory.customer(partner)
    sign_in(client, session, factory.user(partner, Role.HELPDESK_AGENT))
    assert client.get(f"/partner/customers/{foreign.id}").status_code == 404
    assert client.get(f"/partner/customers/{foreign.id}/users").status_code == 404
    assert client.get("/partner/customers/nonsense").status_code == 404
    page = client.get(f"/partner/customers/{mine.id}")
    assert page.status_code == 200
    assert "/add-products" not in page.text  # Helpdesk agents cannot buy
    assert 'data-testid="add-customer"' not in client.get("/partner/customers").text


def test_customer_users_page_adds_a_user_and_changes_roles(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    sign_in(client, session, factory.user(partner, Role.ADMIN_AGENT))
    url = f"/partner/customers/{customer.id}/users"
    token = csrf_of(client.get(url).text)
    r = client.post(
        url,
        data={
            "email": "billing@cust.example",
            "display_name": "Bill",
            "password": "long-enough-pw",
            "roles": ["billing_admin"],
            "csrf_token": token,
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    added = session.execute(select(User).where(User.email == "billing@cust.example")).scalar_one()
    assert added.tenant_id == customer.id and added.roles == [Role.BILLING_ADMIN]
    r = client.post(
        f"{url}/{added.id}/roles",
        data={"roles": ["billing_admin", "global_admin"], "csrf_token": token},
        follow_redirects=False,
    )
    assert r.status_code == 303
    session.expire_all()
    assert set(session.get(User, added.id).roles) == {Role.BILLING_ADMIN, Role.GLOBAL_ADMIN}  # type: ignore[union-attr]
    assert "billing@cust.example" in client.get(url).text

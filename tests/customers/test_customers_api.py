"""Partners create, list and find their customers, and manage the customers' users."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.identity.models import Tenant
from partnercenter.permissions import Role
from tests.factories import Factory

Headers = Callable[..., dict[str, str]]


def body(
    name: str = "Adatum Corp", domain: str = "adatum.onmicrosoft.com", country: str = "us"
) -> dict[str, Any]:
    return {
        "companyProfile": {"domain": domain},
        "billingProfile": {
            "email": "billing@adatum.example",
            "culture": "en-US",
            "language": "en",
            "companyName": name,
            "defaultAddress": {"country": country, "city": "Redmond", "postalCode": "98052"},
        },
    }


def test_admin_agent_creates_a_customer_with_billing_profile_and_it_is_audited(
    client: TestClient, factory: Factory, auth_headers: Headers, session: Session
) -> None:
    partner = factory.partner()
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    r = client.post("/v1/customers", json=body(domain="Adatum.onmicrosoft.com"), headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["companyProfile"]["domain"] == "adatum.onmicrosoft.com"
    assert c["companyProfile"]["companyName"] == "Adatum Corp"
    assert c["market"] == "US"
    assert c["billingProfile"]["defaultAddress"] == {
        "country": "US",
        "city": "Redmond",
        "postalCode": "98052",
    }
    assert c["billingProfile"]["email"] == "billing@adatum.example"
    tenant = session.get(Tenant, uuid.UUID(c["id"]))
    assert tenant is not None and tenant.parent_id == partner.id
    rec = session.execute(
        select(AuditRecord).where(AuditRecord.operation_type == "create_customer")
    ).scalar_one()
    assert rec.customer_id == tenant.id
    assert rec.tenant_id == partner.id
    assert rec.customer_name == "Adatum Corp"


def test_a_given_tenant_guid_is_kept_and_a_bare_prefix_gets_onmicrosoft(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    h = auth_headers(factory.user(factory.partner(), Role.GLOBAL_ADMIN))
    tid = uuid.uuid4()
    b = body(domain="tailwind")
    b["companyProfile"]["tenantId"] = str(tid)
    r = client.post("/v1/customers", json=b, headers=h)
    assert r.status_code == 201, r.text
    assert r.json()["id"] == str(tid)
    assert r.json()["companyProfile"]["domain"] == "tailwind.onmicrosoft.com"


def test_bad_customer_input_is_refused_and_nothing_is_written(
    client: TestClient, factory: Factory, auth_headers: Headers, session: Session
) -> None:
    partner = factory.partner()
    factory.customer(partner, domain="taken.onmicrosoft.com")
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    before = session.execute(select(func.count()).select_from(Tenant)).scalar_one()
    cases = [
        (body(domain="bad domain!"), 400, 12002),
        (body(domain="-x.onmicrosoft.com"), 400, 12002),
        (body(domain="TAKEN.onmicrosoft.com"), 409, 12003),
        (body(country="zz"), 400, 10010),
        (body(name=" "), 400, 10010),
    ]
    for payload, status, code in cases:
        r = client.post("/v1/customers", json=payload, headers=h)
        assert r.status_code == status, (payload, r.text)
        assert r.json()["code"] == code
        assert r.json()["description"]
    r = client.post(
        "/v1/customers",
        content=b"{not json",
        headers={**h, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == 10010
    after = session.execute(select(func.count()).select_from(Tenant)).scalar_one()
    assert after == before


def test_customers_are_found_by_filter_name_guid_and_domain(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    contoso = factory.customer(partner, name="Contoso Ltd", domain="contoso.onmicrosoft.com")
    factory.customer(partner, name="Wingtip Toys", domain="wingtip.onmicrosoft.com")
    other = factory.customer(factory.partner(), name="Contoso Elsewhere", domain="contel.com")
    h = auth_headers(factory.user(partner, Role.SALES_AGENT))

    def names(params: dict[str, str]) -> list[str]:
        r = client.get("/v1/customers", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [c["companyProfile"]["companyName"] for c in r.json()["items"]]

    assert names({}) == ["Contoso Ltd", "Wingtip Toys"]
    flt = {"Field": "Domain", "Value": "CONT", "Operator": "starts_with"}
    assert names({"filter": json.dumps(flt)}) == ["Contoso Ltd"]
    flt = {"Field": "CompanyName", "Value": "wing", "Operator": "starts_with"}
    assert names({"filter": json.dumps(flt)}) == ["Wingtip Toys"]
    assert names({"domain": "contoso.onmicrosoft.com"}) == ["Contoso Ltd"]
    assert names({"tenantId": str(contoso.id)}) == ["Contoso Ltd"]
    assert names({"tenantId": str(other.id)}) == []
    assert names({"q": "toys"}) == ["Wingtip Toys"]
    assert names({"q": str(contoso.id)}) == ["Contoso Ltd"]
    assert names({"q": "wingtip.onmicrosoft.com"}) == ["Wingtip Toys"]
    for ref in (str(contoso.id), "contoso.onmicrosoft.com", "Contoso Ltd", "contoso ltd"):
        r = client.get(f"/v1/customers/{ref}", headers=h)
        assert r.status_code == 200 and r.json()["id"] == str(contoso.id), ref
    assert client.get("/v1/customers/Contoso Elsewhere", headers=h).status_code == 404
    r = client.get("/v1/customers", params={"filter": '{"Field": "Nope"}'}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == 12005
    r = client.get("/v1/customers", params={"filter": "not json"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == 12005


def test_customer_list_pages_with_continuation_token(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    for i in range(5):
        factory.customer(partner, name=f"Cust {i}")
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    first = client.get("/v1/customers", params={"size": 2}, headers=h).json()
    assert first["totalCount"] == 5 and len(first["items"]) == 2
    token = first["links"]["next"]["headers"][0]["value"]
    seen = [c["companyProfile"]["companyName"] for c in first["items"]]
    while token:
        page = client.get(
            "/v1/customers", params={"size": 2}, headers={**h, "MS-ContinuationToken": token}
        ).json()
        seen += [c["companyProfile"]["companyName"] for c in page["items"]]
        nxt = page["links"].get("next")
        token = nxt["headers"][0]["value"] if nxt else None
    assert seen == [f"Cust {i}" for i in range(5)]


def test_a_foreign_customer_answers_404_like_a_missing_one(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    foreign = factory.customer(factory.partner())
    mine = factory.customer(partner)
    foreign_user = factory.user(foreign, Role.USER)
    h = auth_headers(factory.user(partner, Role.GLOBAL_ADMIN))
    for path in (
        f"/v1/customers/{foreign.id}",
        f"/v1/customers/{uuid.uuid4()}",
        f"/v1/customers/{foreign.domain}",
        f"/v1/customers/{foreign.id}/users",
        f"/v1/customers/{mine.id}/users/{foreign_user.id}",
        f"/v1/customers/{mine.id}/users/{foreign_user.id}/directoryroles",
        "/v1/customers/not-a-guid",
    ):
        r = client.get(path, headers=h)
        assert r.status_code == 404, path
        assert r.json()["code"] in (12001, 10404)
    r = client.post(
        f"/v1/customers/{foreign.id}/users",
        json={"email": "x@foreign.example", "password": "long-enough-pw", "roles": ["user"]},
        headers=h,
    )
    assert r.status_code == 404
    assert client.get(f"/v1/customers/{mine.domain}", headers=h).json()["id"] == str(mine.id)


def test_roles_without_the_permission_get_403(
    client: TestClient, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    billing = auth_headers(factory.user(partner, Role.BILLING_ADMIN))
    assert client.get("/v1/customers", headers=billing).status_code == 403
    helpdesk = auth_headers(factory.user(partner, Role.HELPDESK_AGENT))
    assert client.get("/v1/customers", headers=helpdesk).status_code == 200
    assert client.post("/v1/customers", json=body(), headers=helpdesk).status_code == 403
    sales = auth_headers(factory.user(partner, Role.SALES_AGENT))
    r = client.post(
        f"/v1/customers/{customer.id}/users",
        json={"email": "x@c.example", "password": "long-enough-pw", "roles": ["user"]},
        headers=sales,
    )
    assert r.status_code == 403
    provider = auth_headers(factory.provider_admin())
    assert client.get("/v1/customers", headers=provider).status_code == 403
    cust_admin = auth_headers(factory.user(customer, Role.GLOBAL_ADMIN))
    assert client.get(f"/v1/customers/{customer.id}", headers=cust_admin).status_code == 403


def test_customer_users_and_directory_roles(
    client: TestClient, factory: Factory, auth_headers: Headers, session: Session
) -> None:
    partner = factory.partner()
    customer = factory.customer(partner)
    h = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    base = f"/v1/customers/{customer.id}/users"
    r = client.post(
        base,
        json={
            "email": "ga@cust.example",
            "displayName": "GA",
            "password": "long-enough-pw",
            "roles": ["global_admin"],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    ga = r.json()
    assert ga["tenantId"] == str(customer.id) and ga["roles"] == ["global_admin"]
    r = client.post(base, json={"email": "u@cust.example", "password": "long-enough-pw"}, headers=h)
    assert r.status_code == 201 and r.json()["roles"] == ["user"]
    uid = r.json()["id"]
    bad = client.post(
        base,
        json={"email": "z@cust.example", "password": "long-enough-pw", "roles": ["admin_agent"]},
        headers=h,
    )
    assert bad.status_code == 400 and bad.json()["code"] == 10414
    roles_url = f"{base}/{uid}/directoryroles"
    assert client.post(roles_url, json={"id": "billing_admin"}, headers=h).status_code == 201
    listed = client.get(roles_url, headers=h).json()["items"]
    assert sorted(x["id"] for x in listed) == ["billing_admin", "user"]
    assert {x["name"] for x in listed} == {"Billing admin", "User"}
    assert client.delete(f"{roles_url}/user", headers=h).status_code == 204
    assert [x["id"] for x in client.get(roles_url, headers=h).json()["items"]] == ["billing_admin"]
    users = client.get(base, headers=h).json()
    assert users["totalCount"] == 2
    recs = session.execute(
        select(AuditRecord.operation_type).where(AuditRecord.customer_id == customer.id)
    ).scalars()
    assert sorted(recs) == ["create_customer_user", "create_customer_user"]

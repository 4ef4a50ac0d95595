"""Software over the API: list, Get Key, Download, Copy Link, per role and tenant, audited."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog import services as catalog
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.licensing.conftest import Purchase, Software

Headers = Callable[..., dict[str, str]]
FILE = {"version": "2024", "language": "en-US", "bitness": "x64"}


def records(session: Session, operation: str) -> list[AuditRecord]:
    session.expire_all()
    return list(
        session.execute(
            select(AuditRecord)
            .where(AuditRecord.operation_type == operation)
            .order_by(AuditRecord.occurred_at, AuditRecord.seq)
        ).scalars()
    )


def count(session: Session, operation: str) -> int:
    session.expire_all()
    return int(
        session.execute(
            select(func.count()).where(AuditRecord.operation_type == operation)
        ).scalar_one()
    )


def reserved_key(session: Session, settings: Settings, purchase: Purchase) -> str:
    assert purchase.entitlement.product_key_id is not None
    return catalog.reveal_key(
        session, settings=settings, key_id=purchase.entitlement.product_key_id
    )


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


# --- the list ----------------------------------------------------------------------------


def test_admin_agent_lists_the_customers_software(
    client: TestClient, purchase: Purchase, auth_headers: Headers
) -> None:
    r = client.get(
        f"/v1/customers/{purchase.customer.id}/software", headers=auth_headers(purchase.agent)
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["totalCount"] == 1
    item = body["items"][0]
    assert item["id"] == purchase.item_id
    assert item["orderId"] == str(purchase.order.id)
    assert item["productName"] == "Windows Server Standard"
    assert item["status"] == "active"
    assert item["purchaseDate"].startswith("2026-11-02T10:00:00")
    assert item["versions"] == [
        {"version": "2024", "languages": ["en-US", "es-ES"], "bitness": ["x64"]},
        {"version": "2021", "languages": ["en-US"], "bitness": ["x86"]},
    ]


def test_list_and_entitlements_never_carry_a_key(
    client: TestClient,
    session: Session,
    settings: Settings,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    key = reserved_key(session, settings, purchase)
    headers = auth_headers(purchase.agent)
    listed = client.get(f"/v1/customers/{purchase.customer.id}/software", headers=headers)
    entitlements = client.get(
        f"/v1/customers/{purchase.customer.id}/entitlements?entitlementType=software",
        headers=headers,
    )
    assert entitlements.status_code == 200
    ent = entitlements.json()["items"][0]
    assert ent["entitlementType"] == "software"
    assert ent["referenceOrder"]["id"] == str(purchase.order.id)
    assert ent["fulfillmentState"] == "fulfilled"
    assert {a["type"] for a in ent["entitledArtifacts"]} == {"Key", "Download"}
    for response in (listed, entitlements):
        assert key not in response.text
        assert key.replace("-", "") not in response.text


@pytest.mark.parametrize(
    ("roles", "status"),
    [
        ((Role.GLOBAL_ADMIN,), 200),
        ((Role.SALES_AGENT,), 403),
        ((Role.HELPDESK_AGENT,), 403),
        ((Role.BILLING_ADMIN,), 403),
    ],
)
def test_who_sees_the_list(
    client: TestClient,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
    roles: tuple[Role, ...],
    status: int,
) -> None:
    user = factory.user(purchase.partner, *roles)
    r = client.get(f"/v1/customers/{purchase.customer.id}/software", headers=auth_headers(user))
    assert r.status_code == status


def test_another_partners_agent_gets_404_everywhere(
    client: TestClient, factory: Factory, purchase: Purchase, auth_headers: Headers
) -> None:
    stranger = factory.user(factory.partner(), Role.ADMIN_AGENT)
    headers = auth_headers(stranger)
    cid = purchase.customer.id
    assert client.get(f"/v1/customers/{cid}/software", headers=headers).status_code == 404
    assert client.post(purchase.url("/key"), json={}, headers=headers).status_code == 404
    assert client.get(purchase.url("/download"), params=FILE, headers=headers).status_code == 404
    assert client.post(purchase.url("/downloadlink"), json=FILE, headers=headers).status_code == 404


def test_another_partners_customer_is_not_found_before_its_purchase(
    client: TestClient,
    session: Session,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    # Get Key and Download read the customer with the purchase: a stranger's call answers
    # the customer's 404 (12001), as when the customer is looked up first, and records nothing.
    headers = auth_headers(factory.user(factory.partner(), Role.ADMIN_AGENT))
    for url in (purchase.url("/key"), purchase.url("/download")):
        for item in (purchase.item_id, "not-an-id", str(purchase.line.id)):
            path = url.replace(purchase.item_id, item)
            if url.endswith("/key"):
                r = client.post(path, json={}, headers=headers)
            else:
                r = client.get(path, params=FILE, headers=headers)
            assert (r.status_code, r.json()["code"]) == (404, 12001), (path, r.text)
    assert records(session, "get_software_key") == []
    assert records(session, "download_software") == []


def test_an_item_of_another_customer_is_not_found(
    client: TestClient, software: Software, purchase: Purchase, auth_headers: Headers
) -> None:
    other = software.purchase(partner=purchase.partner)
    r = client.post(
        f"/v1/customers/{purchase.customer.id}/software/{other.item_id}/key",
        json={},
        headers=auth_headers(purchase.agent),
    )
    assert r.status_code == 404
    assert r.json()["code"] == 16020


# --- Get Key -----------------------------------------------------------------------------


def test_admin_agent_gets_the_key_and_one_record_is_written(
    client: TestClient,
    session: Session,
    settings: Settings,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    headers = auth_headers(purchase.agent, **{"User-Agent": "pytest-agent/1.0"})
    r = client.post(purchase.url("/key"), json={"version": "2024"}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    assert r.json() == {
        "itemId": purchase.item_id,
        "version": "2024",
        "productKey": reserved_key(session, settings, purchase),
    }
    [record] = records(session, "get_software_key")
    assert record.user_id == purchase.agent.id
    assert record.tenant_id == purchase.partner.id
    assert record.customer_id == purchase.customer.id
    assert record.customer_name == purchase.customer.name
    assert record.resource_type == "software_key"
    assert record.client_address == "testclient"
    assert record.user_agent == "pytest-agent/1.0"
    assert record.details["orderId"] == str(purchase.order.id)
    assert record.details["productId"] == "DG7GMGF0TEST"
    assert record.details["version"] == "2024"
    assert r.json()["productKey"] not in str(record.details)


def test_an_older_version_gets_its_own_key_once(
    client: TestClient, session: Session, purchase: Purchase, auth_headers: Headers
) -> None:
    headers = auth_headers(purchase.agent)
    newest = client.post(purchase.url("/key"), json={}, headers=headers).json()
    first = client.post(purchase.url("/key"), json={"version": "2021"}, headers=headers).json()
    again = client.post(purchase.url("/key"), json={"version": "2021"}, headers=headers).json()
    assert newest["version"] == "2024"
    assert first["version"] == "2021"
    assert first["productKey"] != newest["productKey"]
    assert again["productKey"] == first["productKey"]
    assert count(session, "get_software_key") == 3
    assert [r.details["keyReserved"] for r in records(session, "get_software_key")] == [
        False,
        True,
        False,
    ]


def test_unknown_version_is_refused_and_nothing_recorded(
    client: TestClient, session: Session, purchase: Purchase, auth_headers: Headers
) -> None:
    r = client.post(
        purchase.url("/key"), json={"version": "1999"}, headers=auth_headers(purchase.agent)
    )
    assert r.status_code == 400
    assert r.json()["source"] == "version"
    assert count(session, "get_software_key") == 0


@pytest.mark.parametrize("role", [Role.GLOBAL_ADMIN, Role.SALES_AGENT, Role.BILLING_ADMIN])
def test_only_admin_agents_get_keys_downloads_and_links(
    client: TestClient,
    session: Session,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
    role: Role,
) -> None:
    headers = auth_headers(factory.user(purchase.partner, role))
    assert client.post(purchase.url("/key"), json={}, headers=headers).status_code == 403
    assert client.get(purchase.url("/download"), params=FILE, headers=headers).status_code == 403
    assert client.post(purchase.url("/downloadlink"), json=FILE, headers=headers).status_code == 403
    assert count(session, "get_software_key") == 0
    assert count(session, "download_software") == 0
    assert count(session, "get_software_download_link") == 0


def test_key_is_not_shown_when_the_record_cannot_be_written(
    client: TestClient,
    session: Session,
    settings: Settings,
    purchase: Purchase,
    auth_headers: Headers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from partnercenter.licensing import services

    key = reserved_key(session, settings, purchase)
    headers = auth_headers(purchase.agent)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("activity log unavailable")

    monkeypatch.setattr(services.audit, "record", broken)
    no_raise = TestClient(client.app, raise_server_exceptions=False)
    r = no_raise.post(purchase.url("/key"), json={}, headers=headers)
    assert r.status_code == 500
    assert key not in r.text


# --- Admin Center: the customer's own Global admin ---------------------------------------


def test_customer_global_admin_gets_the_same_key_for_its_own_tenant(
    client: TestClient,
    session: Session,
    settings: Settings,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    admin = factory.user(purchase.customer, Role.GLOBAL_ADMIN)
    headers = auth_headers(admin)
    listed = client.get(f"/v1/customers/{purchase.customer.id}/software", headers=headers)
    assert listed.status_code == 200 and listed.json()["totalCount"] == 1
    by_domain = client.get(f"/v1/customers/{purchase.customer.domain}/software", headers=headers)
    assert by_domain.status_code == 200
    r = client.post(purchase.url("/key"), json={}, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["productKey"] == reserved_key(session, settings, purchase)
    [record] = records(session, "get_software_key")
    assert record.tenant_id == purchase.customer.id
    assert record.user_id == admin.id
    download = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert download.status_code == 200
    # Customers never copy links: that is the partner's Admin agent's.
    assert client.post(purchase.url("/downloadlink"), json=FILE, headers=headers).status_code == 403


@pytest.mark.parametrize(("role", "list_status"), [(Role.BILLING_ADMIN, 200), (Role.USER, 403)])
def test_other_customer_roles_get_no_key_nor_download(
    client: TestClient,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
    role: Role,
    list_status: int,
) -> None:
    headers = auth_headers(factory.user(purchase.customer, role))
    cid = purchase.customer.id
    assert client.get(f"/v1/customers/{cid}/software", headers=headers).status_code == list_status
    assert client.post(purchase.url("/key"), json={}, headers=headers).status_code == 403
    assert client.get(purchase.url("/download"), params=FILE, headers=headers).status_code == 403


def test_a_customer_cannot_reach_another_customers_software(
    client: TestClient, software: Software, factory: Factory, auth_headers: Headers
) -> None:
    mine = software.purchase()
    theirs = software.purchase(partner=mine.partner)
    headers = auth_headers(factory.user(mine.customer, Role.GLOBAL_ADMIN))
    assert (
        client.get(f"/v1/customers/{theirs.customer.id}/software", headers=headers).status_code
        == 404
    )
    assert client.post(theirs.url("/key"), json={}, headers=headers).status_code == 404
    wrong_item = f"/v1/customers/{mine.customer.id}/software/{theirs.item_id}/key"
    assert client.post(wrong_item, json={}, headers=headers).status_code == 404


# --- Download ----------------------------------------------------------------------------


def test_download_streams_with_checksum_and_resumes(
    client: TestClient,
    session: Session,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    data = software.files[("2024", "en-US", "x64")]
    headers = auth_headers(purchase.agent)
    full = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert full.status_code == 200
    assert full.content == data
    assert full.headers["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    assert full.headers["content-length"] == str(len(data))
    assert "WindowsServer_2024_en-US_x64.iso" in full.headers["content-disposition"]
    etag = full.headers["etag"]

    first = client.get(
        purchase.url("/download"), params=FILE, headers={**headers, "Range": "bytes=0-99999"}
    )
    rest = client.get(
        purchase.url("/download"),
        params=FILE,
        headers={**headers, "Range": "bytes=100000-", "If-Range": etag},
    )
    assert (first.status_code, rest.status_code) == (206, 206)
    assert (
        hashlib.sha256(first.content + rest.content).hexdigest() == hashlib.sha256(data).hexdigest()
    )

    downloads = records(session, "download_software")
    assert len(downloads) == 3
    assert downloads[0].details == {
        **downloads[0].details,
        "version": "2024",
        "language": "en-US",
        "bitness": "x64",
        "sha256": hashlib.sha256(data).hexdigest(),
        "via": "direct",
    }
    assert {d.user_id for d in downloads} == {purchase.agent.id}


def test_download_of_a_combination_without_a_file(
    client: TestClient, session: Session, purchase: Purchase, auth_headers: Headers
) -> None:
    headers = auth_headers(purchase.agent)
    r = client.get(
        purchase.url("/download"),
        params={"version": "2021", "language": "es-ES", "bitness": "x86"},
        headers=headers,
    )
    assert r.status_code == 400
    assert r.json()["source"] == "language"
    assert count(session, "download_software") == 0


# --- Copy Link ---------------------------------------------------------------------------


def make_link(client: TestClient, purchase: Purchase, headers: dict[str, str], **extra: Any) -> Any:
    r = client.post(purchase.url("/downloadlink"), json={**FILE, **extra}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_copied_link_works_signed_out_and_both_sides_are_recorded(
    client: TestClient,
    session: Session,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    data = software.files[("2024", "en-US", "x64")]
    link = make_link(client, purchase, auth_headers(purchase.agent))
    assert link["uri"].startswith("http://127.0.0.1:8000/downloads/")
    assert link["expiresAt"] == "2026-11-03T10:00:00Z"
    assert link["sha256"] == hashlib.sha256(data).hexdigest()
    assert link["size"] == len(data)
    path = link["uri"].split("8000", 1)[1]

    anonymous = TestClient(client.app)
    got = anonymous.get(path, headers={"User-Agent": "curl/8"})
    assert got.status_code == 200
    assert got.content == data
    resumed = anonymous.get(path, headers={"Range": "bytes=-10"})
    assert (resumed.status_code, resumed.content) == (206, data[-10:])

    [made] = records(session, "get_software_download_link")
    assert made.user_id == purchase.agent.id
    assert made.details["linkId"] == link["id"]
    used = records(session, "download_software")
    assert len(used) == 2
    assert used[0].user_id is None
    assert used[0].tenant_id == purchase.partner.id
    assert used[0].customer_id == purchase.customer.id
    assert used[0].client_address == "testclient"
    assert used[0].user_agent == "curl/8"
    assert used[0].details["via"] == "copied_link"
    assert used[0].details["linkCreatedBy"] == purchase.agent.email
    assert used[0].details["linkId"] == link["id"]


def test_expired_link_answers_410_with_a_page(
    client: TestClient,
    session: Session,
    clock: FrozenClock,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    link = make_link(client, purchase, auth_headers(purchase.agent), expiresInMinutes=1)
    path = link["uri"].split("8000", 1)[1]
    clock.advance(seconds=59)
    assert client.get(path).status_code == 200
    clock.advance(seconds=1)
    r = client.get(path)
    assert r.status_code == 410
    assert r.headers["content-type"].startswith("text/html")
    assert "expired" in r.text
    assert count(session, "download_software") == 1


def test_tampered_link_answers_403(
    client: TestClient, session: Session, purchase: Purchase, auth_headers: Headers
) -> None:
    link = make_link(client, purchase, auth_headers(purchase.agent))
    path = link["uri"].split("8000", 1)[1]
    link_id, expiry, signature = path.removeprefix("/downloads/").split(".")
    for forged in (
        f"{link_id}.{int(expiry) + 3600}.{signature}",
        f"{link_id}.{expiry}.{signature[:-2]}AA",
        f"{'0' * 32}.{expiry}.{signature}",
        "garbage",
    ):
        r = client.get(f"/downloads/{forged}")
        assert r.status_code == 403, forged
        assert "not valid" in r.text
    assert count(session, "download_software") == 0


def test_link_lifetime_bounds(
    client: TestClient, purchase: Purchase, auth_headers: Headers
) -> None:
    headers = auth_headers(purchase.agent)
    for minutes in (0, 7 * 24 * 60 + 1):
        r = client.post(
            purchase.url("/downloadlink"),
            json={**FILE, "expiresInMinutes": minutes},
            headers=headers,
        )
        assert r.status_code == 400
        assert r.json()["code"] == 16012
    week = make_link(client, purchase, headers, expiresInMinutes=7 * 24 * 60)
    assert week["expiresAt"] == "2026-11-09T10:00:00Z"


# --- cancellation ------------------------------------------------------------------------


def test_cancelled_purchase_stops_keys_downloads_and_links_at_once(
    client: TestClient,
    session: Session,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    headers = auth_headers(purchase.agent)
    link = make_link(client, purchase, headers)
    path = link["uri"].split("8000", 1)[1]
    assert client.get(path).status_code == 200

    software.cancel(purchase)
    session.commit()

    gone = client.get(path)
    assert gone.status_code == 410
    assert "cancelled" in gone.text
    key = client.post(purchase.url("/key"), json={}, headers=headers)
    assert key.status_code == 410 and key.json()["code"] == 16021
    download = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert download.status_code == 410
    new_link = client.post(purchase.url("/downloadlink"), json=FILE, headers=headers)
    assert new_link.status_code == 410
    listed = client.get(f"/v1/customers/{purchase.customer.id}/software", headers=headers).json()
    assert listed["items"][0]["status"] == "cancelled"
    assert count(session, "download_software") == 1
    assert count(session, "get_software_key") == 0


def test_revocation_marks_links_and_keys(
    session: Session, software: Software, purchase: Purchase, clock: FrozenClock
) -> None:
    from partnercenter.catalog.models import KeyStatus
    from partnercenter.licensing import services
    from partnercenter.licensing.models import DownloadLink

    customer = purchase.customer
    actor_user: User = purchase.agent
    from partnercenter.identity import services as identity

    services.create_link(
        session,
        settings=software.settings,
        actor=identity.actor_for(actor_user),
        customer=customer,
        item_id=purchase.item_id,
        now=clock.now(),
        **FILE,
    )
    software.cancel(purchase)
    [link] = session.execute(select(DownloadLink)).scalars().all()
    assert link.revoked_at == clock.now() and link.revoked_reason == "cancelled"
    assert (
        catalog.key_status(session, key_id=purchase.entitlement.product_key_id) == KeyStatus.REVOKED
    )
    # Revoking twice changes nothing more.
    assert services.revoke_purchase(session, order_line_id=purchase.line.id, now=clock.now()) == 0

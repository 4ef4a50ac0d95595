"""The Software pages: Partner Center (customer → Software) and the Admin Center."""

from __future__ import annotations

import hashlib
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog import services as catalog
from partnercenter.config import Settings
from partnercenter.permissions import Role
from tests.customers.web import csrf_of, sign_in
from tests.factories import Factory
from tests.licensing.conftest import Purchase, Software

CHOICE = {"version": "2024", "language": "en-US", "bitness": "x64"}


def count(session: Session, operation: str) -> int:
    session.expire_all()
    return int(
        session.execute(
            select(func.count()).where(AuditRecord.operation_type == operation)
        ).scalar_one()
    )


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


def base(purchase: Purchase) -> str:
    return f"/partner/customers/{purchase.customer.id}/software"


def test_admin_agent_gets_key_download_and_link_from_the_page(
    client: TestClient,
    session: Session,
    settings: Settings,
    software: Software,
    purchase: Purchase,
) -> None:
    sign_in(client, session, purchase.agent)
    listing = client.get(base(purchase))
    assert listing.status_code == 200
    assert "Windows Server Standard" in listing.text
    assert str(purchase.order.id) in listing.text
    assert 'data-testid="get-key"' not in listing.text  # nothing chosen yet

    chosen = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    assert 'data-testid="get-key"' in chosen.text
    assert 'data-testid="copy-link"' in chosen.text
    token = csrf_of(chosen.text)

    key_page = client.post(
        f"{base(purchase)}/{purchase.item_id}/key", data={**CHOICE, "csrf_token": token}
    )
    assert key_page.status_code == 200
    assert key_page.headers["cache-control"] == "no-store"
    assert purchase.entitlement.product_key_id is not None
    key = catalog.reveal_key(session, settings=settings, key_id=purchase.entitlement.product_key_id)
    assert f'data-value="{key}"' in key_page.text
    assert count(session, "get_software_key") == 1

    data = software.files[("2024", "en-US", "x64")]
    download = client.get(f"{base(purchase)}/{purchase.item_id}/download", params=CHOICE)
    assert download.status_code == 200
    assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert count(session, "download_software") == 1

    link_page = client.post(
        f"{base(purchase)}/{purchase.item_id}/link", data={**CHOICE, "csrf_token": token}
    )
    assert link_page.status_code == 200
    uri = re.search(r'id="download-link" readonly value="([^"]+)"', link_page.text)
    assert uri is not None
    assert count(session, "get_software_download_link") == 1
    signed_out = TestClient(client.app)
    got = signed_out.get(uri.group(1).split("8000", 1)[1])
    assert got.status_code == 200 and got.content == data


def test_key_form_needs_the_csrf_token(
    client: TestClient, session: Session, purchase: Purchase
) -> None:
    sign_in(client, session, purchase.agent)
    r = client.post(f"{base(purchase)}/{purchase.item_id}/key", data={**CHOICE, "csrf_token": "x"})
    assert r.status_code == 403
    assert count(session, "get_software_key") == 0


def test_another_partners_agent_gets_no_key_from_the_page(
    client: TestClient, session: Session, factory: Factory, purchase: Purchase
) -> None:
    # The page's Get Key reads the customer with the purchase; another partner's customer
    # is a 404 whether or not the form's token is good, and nothing is recorded.
    sign_in(client, session, factory.user(factory.partner(), Role.ADMIN_AGENT))
    token = csrf_of(client.get("/partner/customers").text)
    for sent in (token, "x"):
        r = client.post(
            f"{base(purchase)}/{purchase.item_id}/key", data={**CHOICE, "csrf_token": sent}
        )
        assert r.status_code == 404
        assert 'data-testid="product-key"' not in r.text
    assert count(session, "get_software_key") == 0


def test_global_admin_sees_the_list_without_keys(
    client: TestClient, session: Session, factory: Factory, purchase: Purchase
) -> None:
    sign_in(client, session, factory.user(purchase.partner, Role.GLOBAL_ADMIN))
    page = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    assert page.status_code == 200
    assert 'data-testid="no-access"' in page.text
    assert 'data-testid="get-key"' not in page.text
    assert 'data-testid="download"' not in page.text
    token = csrf_of(page.text)
    refused = client.post(
        f"{base(purchase)}/{purchase.item_id}/key", data={**CHOICE, "csrf_token": token}
    )
    assert refused.status_code == 403
    assert (
        client.get(f"{base(purchase)}/{purchase.item_id}/download", params=CHOICE).status_code
        == 403
    )


def test_sales_agent_and_other_partners_are_refused(
    client: TestClient, session: Session, factory: Factory, purchase: Purchase
) -> None:
    sign_in(client, session, factory.user(purchase.partner, Role.SALES_AGENT))
    assert client.get(base(purchase)).status_code == 403
    other = TestClient(client.app)
    sign_in(other, session, factory.user(factory.partner(), Role.ADMIN_AGENT))
    assert other.get(base(purchase)).status_code == 404


def test_cancelled_purchase_shows_no_keys(
    client: TestClient, session: Session, software: Software, purchase: Purchase
) -> None:
    software.cancel(purchase)
    sign_in(client, session, purchase.agent)
    page = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    assert "Cancelled" in page.text
    assert 'data-testid="get-key"' not in page.text
    token = csrf_of(page.text)
    r = client.post(
        f"{base(purchase)}/{purchase.item_id}/key", data={**CHOICE, "csrf_token": token}
    )
    assert r.status_code == 410
    assert 'data-testid="product-key"' not in r.text


def test_customer_global_admin_gets_the_key_in_the_admin_center(
    client: TestClient,
    session: Session,
    settings: Settings,
    factory: Factory,
    purchase: Purchase,
) -> None:
    admin = factory.user(purchase.customer, Role.GLOBAL_ADMIN)
    sign_in(client, session, admin)
    page = client.get(
        "/admin/billing/products/software", params={"item": purchase.item_id, **CHOICE}
    )
    assert page.status_code == 200
    assert 'data-testid="copy-link"' not in page.text
    r = client.post(
        f"/admin/billing/products/software/{purchase.item_id}/key",
        data={**CHOICE, "csrf_token": csrf_of(page.text)},
    )
    assert r.status_code == 200
    assert purchase.entitlement.product_key_id is not None
    key = catalog.reveal_key(session, settings=settings, key_id=purchase.entitlement.product_key_id)
    assert key in r.text
    assert count(session, "get_software_key") == 1
    # Partners never use the Admin Center, customers never Partner Center.
    assert client.get(base(purchase)).status_code == 403


@pytest.mark.parametrize(("role", "status"), [(Role.BILLING_ADMIN, 200), (Role.USER, 403)])
def test_other_customer_roles_in_the_admin_center(
    client: TestClient,
    session: Session,
    factory: Factory,
    purchase: Purchase,
    role: Role,
    status: int,
) -> None:
    sign_in(client, session, factory.user(purchase.customer, role))
    page = client.get(
        "/admin/billing/products/software", params={"item": purchase.item_id, **CHOICE}
    )
    assert page.status_code == status
    if status == 200:
        assert 'data-testid="get-key"' not in page.text
        r = client.post(
            f"/admin/billing/products/software/{purchase.item_id}/key",
            data={**CHOICE, "csrf_token": csrf_of(page.text)},
        )
        assert r.status_code == 403


def test_spanish_page(client: TestClient, session: Session, purchase: Purchase) -> None:
    sign_in(client, session, purchase.agent)
    client.cookies.set("pc_lang", "es")
    page = client.get(
        base(purchase),
        params={"item": purchase.item_id, **CHOICE},
        headers={"Accept-Language": "es-ES"},
    )
    assert "Obtener claves y descargas" in page.text
    assert "Copiar vínculo" in page.text


def test_get_key_redirects_and_shows_the_key_once(
    client: TestClient, session: Session, settings: Settings, purchase: Purchase
) -> None:
    """POST → redirect → GET: reloading the page never reveals the key again."""
    sign_in(client, session, purchase.agent)
    chosen = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    posted = client.post(
        f"{base(purchase)}/{purchase.item_id}/key",
        data={**CHOICE, "csrf_token": csrf_of(chosen.text)},
        follow_redirects=False,
    )
    assert posted.status_code == 303
    target = posted.headers["location"]
    assert target.startswith(base(purchase) + "?") and "reveal=" in target
    assert purchase.entitlement.product_key_id is not None
    key = catalog.reveal_key(session, settings=settings, key_id=purchase.entitlement.product_key_id)
    assert key not in target

    shown = client.get(target)
    assert shown.status_code == 200
    assert shown.headers["cache-control"] == "no-store"
    assert 'data-testid="key-dialog"' in shown.text and f'data-value="{key}"' in shown.text

    reloaded = client.get(target)
    assert reloaded.status_code == 200
    assert key not in reloaded.text and 'data-testid="key-dialog"' not in reloaded.text
    assert 'data-testid="key-shown-once"' in reloaded.text
    assert count(session, "get_software_key") == 1


def test_a_reveal_id_is_good_only_for_the_browser_that_asked(
    client: TestClient, session: Session, settings: Settings, purchase: Purchase
) -> None:
    sign_in(client, session, purchase.agent)
    chosen = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    target = client.post(
        f"{base(purchase)}/{purchase.item_id}/key",
        data={**CHOICE, "csrf_token": csrf_of(chosen.text)},
        follow_redirects=False,
    ).headers["location"]
    assert purchase.entitlement.product_key_id is not None
    key = catalog.reveal_key(session, settings=settings, key_id=purchase.entitlement.product_key_id)
    other = TestClient(client.app)
    sign_in(other, session, purchase.agent)  # the same user, another browser session
    assert key not in other.get(target).text
    assert f'data-value="{key}"' in client.get(target).text
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        page = client.get(
            base(purchase), params={"item": purchase.item_id, **CHOICE, "reveal": bad}
        )
        assert page.status_code == 200 and key not in page.text


def test_copy_link_answers_the_page_script_with_the_link(
    client: TestClient, session: Session, purchase: Purchase
) -> None:
    sign_in(client, session, purchase.agent)
    chosen = client.get(base(purchase), params={"item": purchase.item_id, **CHOICE})
    r = client.post(
        f"{base(purchase)}/{purchase.item_id}/link",
        data={**CHOICE, "csrf_token": csrf_of(chosen.text)},
        headers={"Accept": "application/json"},
    )
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert "/downloads/" in body["uri"] and body["fileName"]
    assert count(session, "get_software_download_link") == 1


def test_cancel_purchase_is_not_offered_for_a_product_that_can_never_be_cancelled(
    client: TestClient, session: Session, purchase: Purchase
) -> None:
    """Software plans (SUSE, Red Hat) give no credit and can never be cancelled: the
    Software page offers no Cancel purchase for them, and their cancel page no Submit."""
    sign_in(client, session, purchase.agent)
    assert 'data-testid="cancel-link"' in client.get(base(purchase)).text
    # The policy the line was sold under (a software plan's: no credit, never cancellable).
    purchase.line.cancellation_policy = {
        **(purchase.line.cancellation_policy or {}),
        "creditRule": "none",
    }
    session.commit()
    page = client.get(base(purchase))
    assert page.status_code == 200 and 'data-testid="software-row"' in page.text
    assert 'data-testid="cancel-link"' not in page.text
    dialog = client.get(
        f"/partner/customers/{purchase.customer.id}/cancel", params={"order": purchase.order.id}
    )
    assert 'data-testid="cancel-submit"' not in dialog.text
    assert "software_plan" not in dialog.text and "perpetual_software" not in dialog.text

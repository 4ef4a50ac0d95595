"""Fifty identical checkouts at once over real HTTP on PostgreSQL: exactly one order."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.clock import FrozenClock
from partnercenter.idempotency import IdempotencyKey
from partnercenter.identity import services as identity
from partnercenter.orders.models import Charge, Entitlement, Order
from partnercenter.permissions import Role, TenantKind
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.factories import PASSWORD
from tests.live import Live, committed_postgres, live_app
from tests.orders import catalog_data
from tests.orders.catalog_data import AZURE, WINDOWS

pytestmark = pytest.mark.postgres_only
CONCURRENCY = 50


@pytest.fixture
def live(tmp_path: Path) -> Any:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url, live_app(url, tmp_path, FrozenClock(START)) as server:
        yield server


def _seed(live: Live) -> tuple[str, str]:
    """A partner with an Admin agent and a US customer, the test catalog; committed."""
    now = START
    with live.sessions() as session:
        catalog_data.load(session, settings=live.settings, now=now, keys=5)
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name="Fabrikam", country="US", now=now
        )
        session.flush()  # the customer and user point at the partner
        customer = identity.create_tenant(
            session,
            kind=TenantKind.CUSTOMER,
            name="Contoso",
            country="US",
            domain="contoso-live.onmicrosoft.com",
            parent_id=partner.id,
            now=now,
        )
        identity.create_user(
            session,
            tenant=partner,
            email="agent@fabrikam.example",
            display_name="Agent",
            password=PASSWORD,
            roles=[Role.ADMIN_AGENT.value],
            now=now,
        )
        session.commit()
        return str(customer.id), "agent@fabrikam.example"


def _count(live: Live, model: Any, *where: Any) -> int:
    with live.sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def test_fifty_identical_checkouts_at_once_create_one_order_and_reserve_one_key(
    live: Live,
) -> None:
    customer_id, email = _seed(live)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        token = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        cart = client.post(
            f"/v1/customers/{customer_id}/carts",
            json={
                "lineItems": [
                    {"catalogItemId": WINDOWS, "quantity": 1},
                    {"catalogItemId": AZURE, "quantity": 2},
                ]
            },
            headers=auth,
        )
        assert cart.status_code == 201, cart.text
        cart_id = cart.json()["id"]
    url = f"{live.url}/v1/customers/{customer_id}/carts/{cart_id}/checkout"
    headers = {**auth, "MS-RequestId": str(uuid.uuid4())}

    def fire(_: int) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as c:  # one connection per request: truly concurrent
            r = c.post(url, headers=headers)
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(fire, range(CONCURRENCY)))

    statuses = {status for status, _ in results}
    bodies = [body for _, body in results]
    assert statuses == {201}, [b for s, b in results if s != 201][:3]
    assert all(body == bodies[0] for body in bodies)
    assert len(bodies[0]["orders"]) == 1
    assert _count(live, Order) == 1
    assert _count(live, Charge) == 2
    assert _count(live, Entitlement) == 1
    assert _count(live, ProductKey, ProductKey.status == KeyStatus.RESERVED) == 1
    assert _count(live, IdempotencyKey) == 1
    assert _count(live, AuditRecord, AuditRecord.operation_type == "create_order") == 1

    # The same cart, now without a request id, from many clients at once: the first result.
    def plain(_: int) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as c:
            r = c.post(url, headers=auth)
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        again = list(pool.map(plain, range(20)))
    assert {s for s, _ in again} == {201}
    assert all(body == bodies[0] for _, body in again)
    assert _count(live, Order) == 1


def test_carts_racing_for_the_last_keys_never_sell_without_a_key(live: Live) -> None:
    customer_id, email = _seed(live)  # 5 keys in inventory
    with httpx.Client(base_url=live.url, timeout=60) as client:
        token = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": PASSWORD},
        ).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        carts = [
            client.post(
                f"/v1/customers/{customer_id}/carts",
                json={"lineItems": [{"catalogItemId": WINDOWS, "quantity": 1}]},
                headers=auth,
            ).json()["id"]
            for _ in range(10)
        ]

    def fire(cart_id: str) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as c:
            r = c.post(
                f"{live.url}/v1/customers/{customer_id}/carts/{cart_id}/checkout",
                headers={**auth, "MS-RequestId": str(uuid.uuid4())},
            )
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(fire, carts))
    sold = [body for status, body in results if status == 201]
    refused = [body for status, body in results if status != 201]
    assert len(sold) == 5
    assert {(b["code"]) for b in refused} == {13005}
    assert _count(live, Order) == 5
    assert _count(live, ProductKey, ProductKey.status == KeyStatus.RESERVED) == 5
    assert _count(live, Entitlement, Entitlement.product_key_id.is_not(None)) == 5
    assert _count(live, Charge) == 5

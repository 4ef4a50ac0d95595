"""Approvals racing each other over real HTTP on PostgreSQL: one approval, one credit."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.orders.models import Charge, ChargeType
from partnercenter.permissions import Role
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.factories import PASSWORD
from tests.live import Live, committed_postgres, live_app
from tests.orders.catalog_data import WINDOWS
from tests.seed import partner_world

pytestmark = pytest.mark.postgres_only
CONCURRENCY = 20


@pytest.fixture
def live(tmp_path: Path) -> Any:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url, live_app(url, tmp_path, FrozenClock(START)) as server:
        yield server


def _seed(live: Live) -> str:
    with live.sessions() as session:
        return partner_world(
            session,
            settings=live.settings,
            now=START,
            keys=5,
            domain="contoso-race.onmicrosoft.com",
            provider_people=[("support@provider.example", Role.SUPPORT_AGENT)],
        )


def _token(client: httpx.Client, email: str) -> dict[str, str]:
    r = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _count(live: Live, model: Any, *where: Any) -> int:
    with live.sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def test_approvals_racing_each_other_write_one_credit(live: Live) -> None:
    customer_id = _seed(live)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        agent = _token(client, "agent@fabrikam.example")
        support = _token(client, "support@provider.example")
        cart = client.post(
            f"/v1/customers/{customer_id}/carts",
            json={"lineItems": [{"catalogItemId": WINDOWS, "quantity": 1}]},
            headers=agent,
        ).json()["id"]
        order = client.post(
            f"/v1/customers/{customer_id}/carts/{cart}/checkout", headers=agent
        ).json()["orders"][0]
        ids = []
        for _ in range(2):  # two requests, each for the whole USD 972.50
            r = client.post(
                "/v1/servicerequests",
                json={
                    "supportTopicId": "csp_refund",
                    "severity": "moderate",
                    "title": "Refund",
                    "primaryContact": {
                        "firstName": "Ana",
                        "lastName": "García",
                        "email": "ana@fabrikam.example",
                        "phoneNumber": "+1 425 555 0100",
                    },
                    "refund": {
                        "customerTenantId": customer_id,
                        "orderId": order["id"],
                        "reason": "Wrong edition",
                        "amountRequested": "972.50",
                    },
                },
                headers=agent,
            )
            assert r.status_code == 201, r.text
            ids.append(r.json()["id"])

    def approve(i: int) -> tuple[int, Any]:
        with httpx.Client(timeout=60) as c:  # one connection per request: truly concurrent
            r = c.patch(
                f"{live.url}/v1/servicerequests/{ids[i % 2]}",
                json={"refund": {"decision": "approve"}},
                headers=support,
            )
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(approve, range(CONCURRENCY)))

    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 1, results[:4]
    # the other request's approvals see nothing left to credit; repeats see it decided
    assert set(statuses) <= {200, 400, 409}, results
    assert _count(live, Charge, Charge.charge_type == ChargeType.CUSTOMER_CREDIT) == 1
    with live.sessions() as session:
        total = session.execute(
            select(func.sum(Charge.gross_minor)).where(Charge.order_id.isnot(None))
        ).scalar_one()
    assert total == 0  # charged 972.50, credited 972.50: never more
    assert _count(live, AuditRecord, AuditRecord.operation_type == "approve_refund") == 1

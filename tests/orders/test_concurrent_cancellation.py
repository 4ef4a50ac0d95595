"""Cancellations racing each other and Get Key, over real HTTP on PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.orders.models import Charge, ChargeType, Order, OrderStatus
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.live import Live, committed_postgres, live_app
from tests.orders.catalog_data import AZURE, WINDOWS
from tests.orders.test_concurrent_checkout import _seed

pytestmark = pytest.mark.postgres_only
CONCURRENCY = 20


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def live(tmp_path: Path, clock: FrozenClock) -> Any:
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url, live_app(url, tmp_path, clock) as server:
        yield server


def _count(live: Live, model: Any, *where: Any) -> int:
    with live.sessions() as session:
        return int(
            session.execute(select(func.count()).select_from(model).where(*where)).scalar_one()
        )


def _sign_in(live: Live, email: str) -> dict[str, str]:
    from tests.factories import PASSWORD

    r = httpx.post(
        f"{live.url}/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _buy(live: Live, customer_id: str, auth: dict[str, str], *lines: tuple[str, int]) -> str:
    with httpx.Client(base_url=live.url, timeout=60) as client:
        cart = client.post(
            f"/v1/customers/{customer_id}/carts",
            json={"lineItems": [{"catalogItemId": i, "quantity": q} for i, q in lines]},
            headers=auth,
        )
        assert cart.status_code == 201, cart.text
        r = client.post(
            f"/v1/customers/{customer_id}/carts/{cart.json()['id']}/checkout", headers=auth
        )
        assert r.status_code == 201, r.text
        return str(r.json()["orders"][0]["id"])


def _fire(requests: list[tuple[str, str, dict[str, str], Any]]) -> list[tuple[int, Any]]:
    """Send every request at the same moment, each on its own connection."""
    barrier = threading.Barrier(len(requests))

    def one(spec: tuple[str, str, dict[str, str], Any]) -> tuple[int, Any]:
        method, url, headers, body = spec
        with httpx.Client(timeout=60) as c:
            req = c.build_request(method, url, headers=headers, json=body)
            barrier.wait()
            r = c.send(req)
            return r.status_code, r.json()

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(one, requests))


def test_twenty_concurrent_cancellations_give_one_cancellation_and_one_credit(
    live: Live, clock: FrozenClock
) -> None:
    customer_id, email = _seed(live)
    auth = _sign_in(live, email)
    order_id = _buy(live, customer_id, auth, (WINDOWS, 1), (AZURE, 2))
    clock.advance(days=3)
    auth = _sign_in(live, email)  # the first token expired as the clock moved
    url = f"{live.url}/v1/customers/{customer_id}/orders/{order_id}"
    results = _fire([("PATCH", url, auth, {"status": "cancelled"})] * CONCURRENCY)

    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (CONCURRENCY - 1), results[:3]
    refused = [body for status, body in results if status == 400]
    assert {body["code"] for body in refused} == {800061}
    assert _count(live, Charge, Charge.charge_type == ChargeType.CANCEL) == 2  # one per line
    assert _count(live, AuditRecord, AuditRecord.operation_type == "cancel_order") == 1
    assert _count(live, AuditRecord, AuditRecord.operation_type == "create_credit") == 1
    assert _count(live, Order, Order.status == OrderStatus.CANCELLED) == 1
    (winner,) = [body for status, body in results if status == 200]
    credited = winner["cancellation"]["credit"]["gross"]
    assert credited == "3421.33"  # 972.50 + 2 x 1,234.56 x 362/365, once
    with live.sessions() as session:
        total = session.execute(
            select(func.sum(Charge.gross_minor)).where(Charge.order_id == uuid.UUID(order_id))
        ).scalar_one()
    assert total == 97_250 + 246_912 - 342_133


def test_concurrent_batch_cancellations_of_the_same_orders_cancel_each_once(
    live: Live, clock: FrozenClock
) -> None:
    customer_id, email = _seed(live)
    auth = _sign_in(live, email)
    first = _buy(live, customer_id, auth, (WINDOWS, 1))
    second = _buy(live, customer_id, auth, (AZURE, 1))
    clock.advance(days=1)
    auth = _sign_in(live, email)  # the first token expired as the clock moved
    url = f"{live.url}/v1/customers/{customer_id}/orders:cancel"
    results = _fire(
        [("POST", url, auth, {"orderIds": [first, second]})] * 10
        + [("POST", url, auth, {"orderIds": [second, first]})] * 10
    )
    assert {status for status, _ in results} == {200}
    outcomes: dict[str, list[str]] = {first: [], second: []}
    for _, body in results:
        for item in body["items"]:
            outcomes[item["orderId"]].append(item["status"])
            if item["status"] == "failed":
                assert item["error"]["code"] == 800061
    assert sorted(outcomes[first]).count("cancelled") == 1
    assert sorted(outcomes[second]).count("cancelled") == 1
    assert _count(live, Charge, Charge.charge_type == ChargeType.CANCEL) == 2
    assert _count(live, AuditRecord, AuditRecord.operation_type == "cancel_order") == 2


def test_a_cancellation_racing_get_key_never_shows_a_key_after_it_committed(
    live: Live, clock: FrozenClock
) -> None:
    customer_id, email = _seed(live)
    auth = _sign_in(live, email)
    order_id = _buy(live, customer_id, auth, (WINDOWS, 1))
    clock.advance(days=2)
    auth = _sign_in(live, email)  # the first token expired as the clock moved
    items = httpx.get(f"{live.url}/v1/customers/{customer_id}/software", headers=auth).json()
    (item,) = [i for i in items["items"] if i["orderId"] == order_id]
    key_url = f"{live.url}/v1/customers/{customer_id}/software/{item['id']}/key"
    cancel_url = f"{live.url}/v1/customers/{customer_id}/orders/{order_id}"
    requests: list[tuple[str, str, dict[str, str], Any]] = [
        ("POST", key_url, auth, {"version": "2022"})
    ] * 15
    requests.insert(7, ("PATCH", cancel_url, auth, {"status": "cancelled"}))
    results = _fire(requests)
    assert results[7][0] == 200, results[7]
    keys = [r for i, r in enumerate(results) if i != 7]
    assert {status for status, _ in keys} <= {200, 410}
    # The activity log's chain is in commit order: no key was shown after the cancellation.
    with live.sessions() as session:
        chain = [
            row.operation_type
            for row in session.execute(
                select(AuditRecord)
                .where(
                    AuditRecord.operation_type.in_(["get_software_key", "cancel_order"]),
                )
                .order_by(AuditRecord.seq)
            ).scalars()
        ]
    shown = sum(1 for status, _ in keys if status == 200)
    assert chain.count("get_software_key") == shown
    assert chain.index("cancel_order") == shown, chain
    # And afterwards every Get Key is refused.
    clock.advance(seconds=1)
    after = httpx.post(key_url, headers=auth, json={"version": "2022"})
    assert after.status_code == 410


def test_twenty_concurrent_retries_with_one_request_id_all_get_the_first_answer(
    live: Live, clock: FrozenClock
) -> None:
    customer_id, email = _seed(live)
    auth = _sign_in(live, email)
    order_id = _buy(live, customer_id, auth, (WINDOWS, 1))
    clock.advance(days=1)
    auth = _sign_in(live, email)
    url = f"{live.url}/v1/customers/{customer_id}/orders/{order_id}"
    headers = {**auth, "MS-RequestId": str(uuid.uuid4())}
    results = _fire([("PATCH", url, headers, {"status": "cancelled"})] * CONCURRENCY)
    assert {status for status, _ in results} == {200}, results[:3]
    assert all(body == results[0][1] for _, body in results)
    assert _count(live, Charge, Charge.charge_type == ChargeType.CANCEL) == 1
    assert _count(live, AuditRecord, AuditRecord.operation_type == "cancel_order") == 1

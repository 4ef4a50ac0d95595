"""Two app nodes and one worker on one PostgreSQL database and one S3 store (moto server):
checkouts, Get Keys, cancellations, support mail and a month close spread over both nodes
at once, one node killed mid-way, and nothing lost or doubled afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from partnercenter.audit import services as audit
from partnercenter.billing import services as billing
from partnercenter.billing.models import PeriodState
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.orders.models import Order
from partnercenter.permissions import Role, TenantKind
from partnercenter.webhooks import services as webhooks
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE
from tests.factories import PASSWORD
from tests.jobs.live import file_request, wait_for
from tests.licensing.conftest import s3_endpoint  # noqa: F401 - fixture
from tests.live import committed_postgres
from tests.orders import catalog_data
from tests.support.conftest import Mailbox, free_port
from tests.webhooks.test_webhooks import Receiver, receiver  # noqa: F401 - fixture

pytestmark = pytest.mark.postgres_only
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="
SECRET = "two-nodes-secret-" + "s" * 40
PURCHASES = 12


def _seed(url: str, data_dir: Path) -> str:
    settings = Settings(
        data_dir=data_dir, database_url=url, secret_key=SECRET, key_encryption_key=KEK
    )
    now = datetime.now(UTC)
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        catalog_data.load(session, settings=settings, now=now, keys=PURCHASES + 5)
        provider = identity.create_tenant(
            session, kind=TenantKind.PROVIDER, name="Provider", country="US", now=now
        )
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name="Fabrikam", country="US", now=now
        )
        session.flush()  # the customer and users point at the tenants
        customer = identity.create_tenant(
            session,
            kind=TenantKind.CUSTOMER,
            name="Contoso",
            country="US",
            domain="contoso-nodes.onmicrosoft.com",
            parent_id=partner.id,
            now=now,
        )
        for tenant, email, role in (
            (partner, "agent@fabrikam.example", Role.ADMIN_AGENT),
            (provider, "admin@provider.example", Role.PROVIDER_ADMIN),
        ):
            identity.create_user(
                session,
                tenant=tenant,
                email=email,
                display_name=email,
                password=PASSWORD,
                roles=[role.value],
                now=now,
            )
        session.commit()
        customer_id = str(customer.id)
    engine.dispose()
    return customer_id


def _spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "partnercenter.cli.main", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a node and its server workers die together
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def deployment(tmp_path: Path, s3_endpoint: str) -> Iterator[dict[str, Any]]:  # noqa: F811
    if not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    box = Mailbox()
    smtp_port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    bucket = f"pc-nodes-{uuid.uuid4().hex[:10]}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with committed_postgres() as url:
            customer_id = _seed(url, tmp_path)
            env = {
                **os.environ,
                "DATABASE_URL": url,
                "PARTNERCENTER_DATA_DIR": str(tmp_path),
                "PARTNERCENTER_SECRET_KEY": SECRET,
                "PARTNERCENTER_KEY_ENCRYPTION_KEY": KEK,
                "PARTNERCENTER_SANDBOX": "true",
                "PARTNERCENTER_JOBS": "worker",
                "PARTNERCENTER_STORAGE_URL": f"s3://{bucket}/files",
                "PARTNERCENTER_S3_ENDPOINT_URL": s3_endpoint,
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "PARTNERCENTER_SMTP_HOST": "127.0.0.1",
                "PARTNERCENTER_SMTP_PORT": str(smtp_port),
                "PARTNERCENTER_MONTH_CLOSE_DAY": "1",
                "PARTNERCENTER_MONTH_CLOSE_HOUR": "2",
            }
            ports = [free_port(), free_port()]
            processes = [
                _spawn(["serve", "--port", str(p), "--workers", "1"], env, tmp_path / f"{p}.log")
                for p in ports
            ]
            processes.append(_spawn(["worker"], env, tmp_path / "worker.log"))
            bases = [f"http://127.0.0.1:{p}" for p in ports]
            for base in bases:
                assert wait_for(lambda b=base: _ready(b), seconds=240), (
                    tmp_path / f"{base.rsplit(':', 1)[1]}.log"
                ).read_text()[-3000:]
            yield {
                "url": url,
                "bases": bases,
                "nodes": processes[:2],
                "customer": customer_id,
                "mailbox": box,
            }
    finally:
        for p in processes:
            _stop(p)
        controller.stop()


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _token(base: str, email: str) -> dict[str, str]:
    r = httpx.post(
        f"{base}/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_two_nodes_and_a_worker_lose_and_double_nothing(
    deployment: dict[str, Any],
    receiver: Receiver,  # noqa: F811 - the fixture imported above
) -> None:
    bases: list[str] = deployment["bases"]
    customer = deployment["customer"]
    agent = _token(bases[0], "agent@fabrikam.example")  # a token from one node, used on both
    hook = {"WebhookUrl": receiver.url, "WebhookEvents": ["order-created", "invoice-ready"]}
    registered = httpx.post(
        f"{bases[1]}/v1/webhooks/registration", json=hook, headers=agent, timeout=60
    )
    assert registered.status_code == 201, registered.text
    secret = registered.json()["SigningSecret"]

    def buy(i: int) -> str:
        base = bases[i % 2]
        with httpx.Client(base_url=base, timeout=60, headers=agent) as c:
            cart = c.post(
                f"/v1/customers/{customer}/carts",
                json={"lineItems": [{"catalogItemId": catalog_data.WINDOWS, "quantity": 1}]},
            )
            assert cart.status_code == 201, cart.text
            request_id = {"MS-RequestId": f"checkout-{i}-{uuid.uuid4().hex[:8]}"}
            path = f"/v1/customers/{customer}/carts/{cart.json()['id']}/checkout"
            first = c.post(path, headers=request_id)
            assert first.status_code == 201, first.text
        # The client retries on the other node with the same MS-RequestId: same order.
        again = httpx.post(
            f"{bases[(i + 1) % 2]}{path}", headers={**agent, **request_id}, timeout=60
        )
        assert again.status_code == 201 and again.json() == first.json()
        return str(first.json()["orders"][0]["id"])

    with ThreadPoolExecutor(6) as pool:
        orders = list(pool.map(buy, range(PURCHASES)))
    assert len(set(orders)) == PURCHASES

    items = httpx.get(f"{bases[0]}/v1/customers/{customer}/software", headers=agent, timeout=60)
    software = items.json()["items"]
    assert len(software) == PURCHASES

    def get_key(i: int) -> str:
        item = software[i]
        r = httpx.post(
            f"{bases[i % 2]}/v1/customers/{customer}/software/{item['id']}/key",
            json={"version": item["versions"][0]["version"]},
            headers=agent,
            timeout=60,
        )
        assert r.status_code == 200, r.text
        return str(r.json()["productKey"])

    with ThreadPoolExecutor(6) as pool:
        first_keys = list(pool.map(get_key, range(6)))
        # One node dies mid-way; the rest goes to the other.
        os.killpg(deployment["nodes"][1].pid, signal.SIGKILL)  # server workers too
        deployment["nodes"][1].wait(timeout=10)
        assert not _ready(bases[1])
        bases[1] = bases[0]
        more_keys = list(pool.map(get_key, range(6, PURCHASES)))
    keys = first_keys + more_keys
    assert len(set(keys)) == PURCHASES  # each purchase its own key
    assert get_key(0) == keys[0]  # the same key again, never a second one

    cancelled = orders[:3]
    for order_id in cancelled:
        r = httpx.patch(
            f"{bases[0]}/v1/customers/{customer}/orders/{order_id}",
            json={"status": "cancelled"},
            headers=agent,
            timeout=60,
        )
        assert r.status_code == 200, r.text

    with httpx.Client(base_url=bases[0], timeout=60) as c:
        for n in range(3):
            file_request(c, agent, f"Node test {n}")
    box: Mailbox = deployment["mailbox"]
    assert wait_for(lambda: len(box.to("ana@fabrikam.example")) == 3, seconds=120)

    # The sandbox clock moves past the close day and hour: the worker closes November.
    admin = _token(bases[0], "admin@provider.example")
    moved = httpx.post(
        f"{bases[0]}/v1/sandbox/clock",
        json={"now": "2026-12-01T02:05:00Z"},
        headers=admin,
        timeout=60,
    )
    assert moved.status_code == 200, moved.text
    engine = make_engine(deployment["url"])
    sessions = make_session_factory(engine)

    def closed() -> bool:
        with sessions() as s:
            period = billing.get_period(s, "2026-11")
            return period is not None and period.state == PeriodState.CLOSED

    try:
        assert wait_for(closed, seconds=180)
        with sessions() as s:
            assert billing.verify(s).ok
            assert list(audit.verify(s)) == []
            assert s.execute(select(func.count()).select_from(Order)).scalar_one() == PURCHASES
            cancelled_count = s.execute(
                select(func.count()).select_from(Order).where(Order.status == "cancelled")
            ).scalar_one()
            assert cancelled_count == 3
        assert len(box.to("ana@fabrikam.example")) == 3  # each mail once
        # Webhooks: each order's event and the invoice run's, once each, correctly signed.
        assert wait_for(lambda: len(receiver.received) >= PURCHASES + 1, seconds=60)
        names = []
        for headers, raw in receiver.received:
            signature = headers["x-partnercenter-signature"]
            assert webhooks.verify_signature(secret, raw, signature, now=time.time())
            names.append(json.loads(raw)["EventName"])
        assert sorted(names) == ["invoice-ready"] + ["order-created"] * PURCHASES
    finally:
        engine.dispose()

"""Webhooks against a real local HTTP receiver: registration as in Partner Center, a test
event, events written with the change, signed with a timestamp, retried with back-off,
every attempt recorded, and never a product key in a body."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.permissions import Role
from partnercenter.webhooks import services as webhooks
from partnercenter.webhooks.models import WebhookDelivery
from tests.factories import Factory
from tests.licensing.conftest import Software, software  # noqa: F401 - fixture

Headers = Callable[..., dict[str, str]]


@dataclass
class Receiver:
    """A local HTTP server that keeps what it receives and answers ``status``."""

    url: str = ""
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            box.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(box.status)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/partnercenter"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box
    finally:
        server.shutdown()
        server.server_close()


def _register(client: TestClient, headers: dict[str, str], url: str, events: list[str]) -> str:
    r = client.post(
        "/v1/webhooks/registration",
        json={"WebhookUrl": url, "WebhookEvents": events},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    secret = r.json()["SigningSecret"]
    assert secret.startswith("whsec_")
    return str(secret)


def _verified(receiver: Receiver, secret: str) -> list[dict[str, Any]]:
    """The bodies whose signature checks out with ``secret`` (as a receiver would check)."""
    out = []
    for headers, body in receiver.received:
        sig = headers["x-partnercenter-signature"]
        assert webhooks.verify_signature(secret, body, sig, now=time.time())
        out.append(json.loads(body))
    return out


def test_registration_test_event_and_its_signature(
    client: TestClient,
    factory: Factory,
    auth_headers: Headers,
    receiver: Receiver,
) -> None:
    partner = factory.partner()
    admin = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    events = client.get("/v1/webhooks/registration/events", headers=admin).json()
    assert {"test-created", "customer-created", "invoice-ready", "product-key-revealed"} <= set(
        events
    )
    assert client.get("/v1/webhooks/registration", headers=admin).status_code == 404

    bad = client.post(
        "/v1/webhooks/registration",
        json={"WebhookUrl": "ftp://example.com/x", "WebhookEvents": ["test-created"]},
        headers=admin,
    )
    assert bad.status_code == 400 and bad.json()["source"] == "WebhookUrl"
    unknown = client.post(
        "/v1/webhooks/registration",
        json={"WebhookUrl": receiver.url, "WebhookEvents": ["no-such-event"]},
        headers=admin,
    )
    assert unknown.status_code == 400 and unknown.json()["data"] == ["no-such-event"]

    secret = _register(client, admin, receiver.url, ["test-created", "customer-created"])
    shown = client.get("/v1/webhooks/registration", headers=admin).json()
    assert shown["WebhookUrl"] == receiver.url and shown["SigningSecret"] is None

    r = client.post("/v1/webhooks/registration/validationEvents", headers=admin)
    assert r.status_code == 202
    correlation = r.json()["correlationId"]
    (body,) = _verified(receiver, secret)  # delivered after the response
    assert body["EventName"] == "test-created"
    assert body["ResourceUri"].endswith(f"/validationEvents/{correlation}")
    state = client.get(
        f"/v1/webhooks/registration/validationEvents/{correlation}", headers=admin
    ).json()
    assert state["status"] == "delivered" and state["lastStatusCode"] == 200

    # A replayed or tampered body is refused by the receiver's check.
    headers, raw = receiver.received[0]
    sig = headers["x-partnercenter-signature"]
    assert not webhooks.verify_signature(secret, raw, sig, now=time.time() + 301)
    assert not webhooks.verify_signature(secret, raw + b" ", sig, now=time.time())
    assert not webhooks.verify_signature("whsec_other", raw, sig, now=time.time())

    # Another partner sees no registration of this one's.
    other = auth_headers(factory.user(factory.partner(), Role.ADMIN_AGENT))
    assert client.get("/v1/webhooks/registration", headers=other).status_code == 404
    assert (
        client.get(
            f"/v1/webhooks/registration/validationEvents/{correlation}", headers=other
        ).status_code
        == 404
    )
    sales = auth_headers(factory.user(partner, Role.SALES_AGENT))
    assert client.get("/v1/webhooks/registration", headers=sales).status_code == 403


def test_a_failing_receiver_is_retried_with_back_off_and_every_attempt_is_listed(
    client: TestClient,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    factory: Factory,
    auth_headers: Headers,
    receiver: Receiver,
) -> None:
    partner = factory.partner()
    admin = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    secret = _register(client, admin, receiver.url, ["customer-created"])
    receiver.status = 500
    r = client.post(
        "/v1/customers",
        json={
            "companyProfile": {"domain": "wingtip-hooks.onmicrosoft.com"},
            "billingProfile": {
                "email": "it@wingtip.example",
                "companyName": "Wingtip Hooks",
                "defaultAddress": {
                    "country": "US",
                    "city": "Redmond",
                    "state": "WA",
                    "addressLine1": "1 Microsoft Way",
                    "postalCode": "98052",
                    "firstName": "Ana",
                    "lastName": "García",
                    "phoneNumber": "4255550100",
                },
            },
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    customer_id = r.json()["id"]

    assert webhooks.deliver_pending(session_factory, settings, now=clock.now()) == 0
    assert webhooks.deliver_pending(session_factory, settings, now=clock.now()) == 0  # backs off
    clock.advance(seconds=30)
    receiver.status = 204
    assert webhooks.deliver_pending(session_factory, settings, now=clock.now()) == 1
    assert webhooks.deliver_pending(session_factory, settings, now=clock.now()) == 0

    bodies = _verified(receiver, secret)
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same event, tried twice
    assert bodies[0]["EventName"] == "customer-created"
    assert bodies[0]["ResourceUri"] == f"/v1/customers/{customer_id}"
    (delivery,) = client.get("/v1/webhooks/deliveries", headers=admin).json()["items"]
    assert delivery["status"] == "delivered"
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 204]
    assert delivery["attempts"][0]["error"] == "HTTP 500"


def test_get_key_sends_an_event_that_never_carries_the_key(
    client: TestClient,
    session: Session,
    session_factory: sessionmaker[Session],
    settings: Settings,
    clock: FrozenClock,
    auth_headers: Headers,
    receiver: Receiver,
    software: Software,  # noqa: F811 - the fixture imported above
) -> None:
    purchase = software.purchase()
    admin = auth_headers(purchase.agent)
    secret = _register(client, admin, receiver.url, ["product-key-revealed"])
    r = client.post(purchase.url("/key"), json={"version": "2024"}, headers=admin)
    assert r.status_code == 200, r.text
    key = r.json()["productKey"]
    assert webhooks.deliver_pending(session_factory, settings, now=clock.now()) == 1
    (body,) = _verified(receiver, secret)
    assert body["EventName"] == "product-key-revealed"
    assert str(purchase.order.id) in body["ResourceUri"]
    raw = receiver.received[0][1].decode()
    assert key not in raw and key.replace("-", "") not in raw
    stored = session.execute(select(WebhookDelivery)).scalar_one()
    assert key not in json.dumps(stored.payload)


def test_no_registration_no_deliveries(
    client: TestClient, session: Session, factory: Factory, auth_headers: Headers
) -> None:
    partner = factory.partner()
    admin = auth_headers(factory.user(partner, Role.ADMIN_AGENT))
    assert (
        client.post("/v1/webhooks/registration/validationEvents", headers=admin).status_code == 404
    )
    assert session.execute(select(WebhookDelivery)).first() is None

"""Support tests: a partner with every filing role, provider support, a customer's order,
and a real SMTP server (aiosmtpd) on a free local port."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import Tenant, User
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.orders import catalog_data

Headers = Callable[..., dict[str, str]]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.recipients: list[list[str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(message_from_bytes(envelope.content))
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 Message accepted"

    @staticmethod
    def text(message: Message) -> str:
        payload = message.get_payload(decode=True)
        assert isinstance(payload, bytes)
        return payload.decode(message.get_content_charset() or "utf-8")

    def to(self, address: str) -> list[Message]:
        return [m for m, r in zip(self.messages, self.recipients, strict=True) if address in r]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # No SMTP server listens on this port unless a test starts one (see ``mailbox``).
    return Settings(
        data_dir=tmp_path,
        secret_key="t" * 48,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        log_json=False,
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        mail_from="Partner Center <support@partnercenter.test>",
    )


@pytest.fixture
def mailbox(settings: Settings) -> Iterator[Mailbox]:
    """A real SMTP server on the settings' port."""
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=settings.smtp_port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Desk:
    """The people and purchases of a support test; users are made on first use."""

    factory: Factory
    partner: Tenant
    provider: Tenant
    customer: Tenant
    other_partner: Tenant
    other_customer: Tenant
    sign_in: Headers
    order: dict[str, Any] = field(default_factory=dict)
    other_order: dict[str, Any] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)

    PEOPLE: ClassVar[dict[str, tuple[str, Role]]] = {
        "admin_agent": ("partner", Role.ADMIN_AGENT),
        "helpdesk": ("partner", Role.HELPDESK_AGENT),
        "global_admin": ("partner", Role.GLOBAL_ADMIN),
        "sales": ("partner", Role.SALES_AGENT),
        "billing_admin": ("partner", Role.BILLING_ADMIN),
        "support": ("provider", Role.SUPPORT_AGENT),
        "support2": ("provider", Role.SUPPORT_AGENT),
        "provider_admin": ("provider", Role.PROVIDER_ADMIN),
        "other_agent": ("other_partner", Role.ADMIN_AGENT),
    }

    def user(self, who: str) -> User:
        if who not in self.users:
            tenant_name, role = self.PEOPLE[who]
            tenant = getattr(self, tenant_name)
            email = f"{who}@{tenant.name.lower()}.test"
            self.users[who] = self.factory.user(tenant, role, email=email)
        return self.users[who]

    def h(self, who: str) -> dict[str, str]:
        """Bearer headers for one of the desk's users (signed in on first use)."""
        if who not in self.headers:
            self.headers[who] = self.sign_in(self.user(who))
        return self.headers[who]


def buy(client: TestClient, headers: dict[str, str], customer: Tenant, quantity: int = 1) -> Any:
    r = client.post(
        f"/v1/customers/{customer.id}/carts",
        json={"lineItems": [{"catalogItemId": catalog_data.WINDOWS, "quantity": quantity}]},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    r = client.post(f"/v1/customers/{customer.id}/carts/{r.json()['id']}/checkout", headers=headers)
    assert r.status_code == 201, r.text
    return r.json()["orders"][0]


@pytest.fixture
def desk(
    client: TestClient,
    factory: Factory,
    session: Session,
    settings: Settings,
    clock: FrozenClock,
    auth_headers: Headers,
) -> Desk:
    catalog_data.load(session, settings=settings, now=clock.now(), keys=6)
    partner = factory.partner("Fabrikam")
    other = factory.partner("Tailspin")
    d = Desk(
        factory=factory,
        partner=partner,
        provider=factory.provider(),
        customer=factory.customer(partner, name="Contoso", domain="contoso.onmicrosoft.com"),
        other_partner=other,
        other_customer=factory.customer(other, name="Litware", domain="litware.onmicrosoft.com"),
        sign_in=auth_headers,
    )
    d.order = buy(client, d.h("admin_agent"), d.customer, quantity=2)
    d.other_order = buy(client, d.h("other_agent"), d.other_customer)
    return d


def refund_body(desk: Desk, **changes: Any) -> dict[str, Any]:
    """A valid refund request for the desk's order; ``changes`` override fields."""
    refund = {
        "domain": "contoso.onmicrosoft.com",
        "orderId": desk.order["id"],
        "reason": "The customer bought the wrong edition.",
        "amountRequested": "500.00",
    }
    refund.update(changes.pop("refund", {}))
    body: dict[str, Any] = {
        "supportTopicId": "csp_refund",
        "severity": "moderate",
        "title": "Refund for the wrong edition",
        "description": "",
        "primaryContact": {
            "firstName": "Ana",
            "lastName": "García",
            "email": "ana@fabrikam.test",
            "phoneNumber": "+1 425 555 0100",
        },
        "refund": refund,
    }
    body.update(changes)
    return body

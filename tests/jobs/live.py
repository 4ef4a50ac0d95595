"""Seed data and helpers for the job runner tests (committed databases: ``tests.live``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import Engine

from partnercenter.identity import services as identity
from partnercenter.permissions import Role, TenantKind
from tests.conftest import START
from tests.factories import PASSWORD
from tests.seed import add_people

AGENT = "agent@fabrikam.example"


def seed(engine: Engine) -> None:
    """A provider with a Provider admin, a partner with an Admin agent."""
    from sqlalchemy.orm import Session

    with Session(engine) as session:
        provider = identity.create_tenant(
            session, kind=TenantKind.PROVIDER, name="Provider", country="US", now=START
        )
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name="Fabrikam", country="US", now=START
        )
        session.flush()  # users point at the tenants
        people = [
            (partner, AGENT, Role.ADMIN_AGENT),
            (provider, "admin@provider.example", Role.PROVIDER_ADMIN),
        ]
        add_people(session, people, now=START)
        session.commit()


def token(client: Any, email: str = AGENT) -> dict[str, str]:
    r = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def file_request(client: Any, headers: dict[str, str], title: str) -> str:
    r = client.post(
        "/v1/servicerequests",
        json={
            "supportTopicId": "other",
            "severity": "minimal",
            "title": title,
            "description": "Nothing is wrong; this checks the mail.",
            "primaryContact": {
                "firstName": "Ana",
                "lastName": "García",
                "email": "ana@fabrikam.example",
                "phoneNumber": "+1 425 555 0100",
            },
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def wait_for(check: Callable[[], bool], *, seconds: float = 30) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass; returns whether it held."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


__all__ = ["httpx"]

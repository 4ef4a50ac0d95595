"""The sandbox clock moves business time only; security lifetimes run on real time.

Moving the sandbox clock 60 days or two years ahead moves business time (30-day windows,
month ends, cart expiry: ``tests/test_ops.py``) but signs nobody out: the bearer token, the
browser session and a fresh copied link keep working, and a throttled sign-in stays
throttled. A lifetime that passes on the real-time clock still ends (an injected clock
stands for real time).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.app import create_app
from partnercenter.clock import FrozenClock, SandboxClock
from partnercenter.config import Settings
from partnercenter.identity.models import User
from tests.factories import PASSWORD, Factory
from tests.licensing.conftest import Purchase, Software
from tests.licensing.test_software_api import FILE
from tests.web import sign_in

Headers = Callable[..., dict[str, str]]
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path, secret_key="k" * 48, key_encryption_key=KEK, sandbox=True, log_json=False
    )


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    """Sandbox mode: the business clock is the sandbox's, lifetimes run on the system clock."""
    return create_app(settings, session_factory=session_factory, clock=SandboxClock())


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


def _named_token(client: TestClient, headers: dict[str, str]) -> dict[str, str]:
    made = client.post("/v1/users/me/tokens", json={"name": "clock mover"}, headers=headers)
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['token']}"}


def _advance(client: TestClient, admin: dict[str, str], days: int) -> None:
    moved = client.post("/v1/sandbox/clock", json={"advanceDays": days}, headers=admin)
    assert moved.status_code == 200, moved.text


@pytest.mark.parametrize("days", [60, 730], ids=["60-days", "2-years"])
def test_moving_the_sandbox_clock_signs_nobody_out_nor_expires_a_fresh_link(
    days: int,
    client: TestClient,
    session: Session,
    factory: Factory,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    admin = _named_token(client, auth_headers(factory.provider_admin()))
    agent = auth_headers(purchase.agent)  # a 60-minute password-grant token
    browser = TestClient(client.app)
    assert sign_in(browser, purchase.agent.email, PASSWORD).status_code == 303
    link = client.post(purchase.url("/downloadlink"), json=FILE, headers=agent).json()
    path = link["uri"].split("8000", 1)[1]

    _advance(client, admin, days)

    # Business time moved (tests/test_ops.py shows every rule reading it) ...
    business = client.get("/v1/sandbox/clock", headers=admin).json()
    assert business["offsetSeconds"] == pytest.approx(days * 86400, abs=120)
    # Security lifetimes did not.
    assert client.get("/v1/users/me", headers=agent).status_code == 200
    page = browser.get("/partner", follow_redirects=False)
    assert page.status_code == 200, page.headers.get("location")
    assert TestClient(client.app).get(path).status_code == 200
    fresh = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": purchase.agent.email, "password": PASSWORD},
    )
    assert fresh.status_code == 200
    assert fresh.json()["expires_in"] == 3600


def test_a_throttled_sign_in_stays_throttled_when_the_sandbox_clock_moves(
    client: TestClient, factory: Factory, session: Session, auth_headers: Headers
) -> None:
    admin = _named_token(client, auth_headers(factory.provider_admin()))
    victim: User = factory.user(factory.partner())
    session.commit()
    wrong = {"grant_type": "password", "username": victim.email, "password": "not-the-password"}
    for _ in range(5):
        assert client.post("/v1/auth/token", data=wrong).status_code == 401
    assert client.post("/v1/auth/token", data=wrong).status_code == 429
    _advance(client, admin, 60)
    right = {**wrong, "password": PASSWORD}
    assert client.post("/v1/auth/token", data=right).status_code == 429


def test_lifetimes_still_end_on_real_time(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    purchase: Purchase,
) -> None:
    real = FrozenClock(datetime.now(UTC))
    app = create_app(
        settings, session_factory=session_factory, clock=SandboxClock(), security_clock=real
    )
    session.commit()
    with TestClient(app) as client:
        grant = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": purchase.agent.email, "password": PASSWORD},
        )
        agent = {"Authorization": f"Bearer {grant.json()['access_token']}"}
        browser = TestClient(app)
        assert sign_in(browser, purchase.agent.email, PASSWORD).status_code == 303
        link = client.post(
            purchase.url("/downloadlink"), json={**FILE, "expiresInMinutes": 30}, headers=agent
        ).json()
        path = link["uri"].split("8000", 1)[1]

        real.advance(minutes=31)
        assert TestClient(app).get(path).status_code == 410
        assert client.get("/v1/users/me", headers=agent).status_code == 200
        real.advance(minutes=30)  # the token's 60 minutes are over
        assert client.get("/v1/users/me", headers=agent).status_code == 401
        real.advance(hours=12)  # and the session's 12 hours
        assert browser.get("/partner", follow_redirects=False).status_code == 303
        assert app.state.clock.now() - datetime.now(UTC) < timedelta(minutes=1)

"""Sign-in throttling: atomic under concurrency, keyed on the real client address, and a
documented way back in for a locked owner (docs/dev/security.md)."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnercenter.app import create_app
from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity import services as identity
from partnercenter.identity.models import SignInFailure
from partnercenter.permissions import Role, TenantKind
from tests.conftest import PG_REQUIRED, PG_SKIP_MESSAGE, START
from tests.factories import PASSWORD, Factory, token_for
from tests.live import Live, committed_database, live_server
from tests.test_cli import (
    _invoke,
    cli,  # noqa: F401 - the fixture
)

ATTEMPTS = 30


@pytest.fixture(params=["sqlite", "postgresql"])
def live(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "postgresql" and not PG_REQUIRED:
        pytest.skip(PG_SKIP_MESSAGE)
    with (
        committed_database(request.param, tmp_path) as url,
        live_server(url, tmp_path, FrozenClock(START)) as server,
    ):
        yield server


def _owner(live: Live) -> str:
    with live.sessions() as session:
        partner = identity.create_tenant(
            session, kind=TenantKind.PARTNER, name="Fabrikam", country="US", now=START
        )
        session.flush()  # the user points at the partner
        identity.create_user(
            session,
            tenant=partner,
            email="owner@fabrikam.example",
            display_name="Owner",
            password=PASSWORD,
            roles=[Role.GLOBAL_ADMIN.value],
            now=START,
        )
        session.commit()
    return "owner@fabrikam.example"


def test_thirty_parallel_wrong_passwords_check_at_most_the_limit(live: Live) -> None:
    email = _owner(live)
    limit = live.settings.sign_in_max_failures_per_account

    def attempt(i: int) -> httpx.Response:
        with httpx.Client(base_url=live.url, timeout=60) as client:
            return client.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": email, "password": f"wrong-{i}-pass"},
            )

    with ThreadPoolExecutor(max_workers=ATTEMPTS) as pool:
        answers = list(pool.map(attempt, range(ATTEMPTS)))
    statuses = Counter(r.status_code for r in answers)
    # Attempts on one account take turns while each is checked: one that waits past the pool
    # timeout (PostgreSQL) or the busy timeout (SQLite's one write lock) is told to come back
    # (503 with Retry-After). Never a 500, never more checks than the limit.
    assert set(statuses) <= {401, 429, 503}, statuses
    assert statuses[401] <= limit, statuses
    assert all(r.headers.get("retry-after") for r in answers if r.status_code in (429, 503))
    with live.sessions() as session:
        failures = session.execute(
            select(func.count()).select_from(SignInFailure).where(SignInFailure.email == email)
        ).scalar_one()
        checked = session.execute(
            select(func.count())
            .select_from(AuditRecord)
            .where(AuditRecord.operation_type == "sign_in_failed")
        ).scalar_one()
    assert failures == checked == statuses[401] <= limit


# --- the real client address --------------------------------------------------------------


def _app(
    settings: Settings, session_factory: sessionmaker[Session], clock: FrozenClock, proxies: str
) -> TestClient:
    configured = settings.model_copy(update={"trusted_proxies": proxies})
    return TestClient(create_app(configured, session_factory=session_factory, clock=clock))


def _failure_address(session: Session, email: str) -> str:
    return session.execute(
        select(SignInFailure.address).where(SignInFailure.email == email)
    ).scalar_one()


def _audited_address(session: Session, email: str) -> str | None:
    return session.execute(
        select(AuditRecord.client_address).where(
            AuditRecord.user_principal_name == email,
            AuditRecord.operation_type == "sign_in_failed",
        )
    ).scalar_one()


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        ("", "6.6.6.6", "testclient"),  # an untrusted peer's header is ignored
        ("testclient", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # rightmost untrusted
        ("testclient, 10.0.0.0/8", "6.6.6.6, 203.0.113.9, 10.1.2.3", "203.0.113.9"),
        ("testclient, 10.0.0.0/8, 203.0.113.0/24", "6.6.6.6, 203.0.113.9", "6.6.6.6"),
    ],
)
def test_the_throttle_and_the_activity_log_use_the_real_client_address(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FrozenClock,
    session: Session,
    proxies: str,
    forwarded: str,
    expected: str,
) -> None:
    email = f"nobody-{abs(hash(proxies)) % 10_000}@example.com"
    with _app(settings, session_factory, clock, proxies) as client:
        r = client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": "wrong-password-1"},
            headers={"X-Forwarded-For": forwarded},
        )
    assert r.status_code == 401
    assert _failure_address(session, email) == expected
    assert _audited_address(session, email) == expected


def test_a_spoofed_forwarded_for_does_not_escape_the_address_throttle(
    settings: Settings, session_factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    limit = settings.sign_in_max_failures_per_address
    with _app(settings, session_factory, clock, "") as client:
        answers = [
            client.post(
                "/v1/auth/token",
                data={"grant_type": "password", "username": f"u{i}@x.example", "password": "no"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            ).status_code
            for i in range(limit + 2)
        ]
    assert answers[:limit] == [401] * limit
    assert answers[limit:] == [429, 429]


# --- the way back in ---------------------------------------------------------------------


def _grant(client: TestClient, email: str, password: str) -> int:
    return client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    ).status_code


def test_a_locked_owner_gets_in_with_the_right_password_after_the_delay(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    owner = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    session.commit()
    for _ in range(5):
        assert _grant(client, owner.email, "not-my-password-1") == 401
    locked = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": owner.email, "password": PASSWORD},
    )
    assert locked.status_code == 429
    wait = int(locked.headers["retry-after"])
    assert 0 < wait <= 15 * 60 + 1
    clock.advance(seconds=wait)
    assert _grant(client, owner.email, PASSWORD) == 200


def test_an_administrators_new_password_unlocks_at_once(
    client: TestClient, factory: Factory, session: Session
) -> None:
    partner = factory.partner()
    owner = factory.user(partner, Role.GLOBAL_ADMIN)
    admin = factory.user(partner, Role.GLOBAL_ADMIN)
    session.commit()
    for _ in range(5):
        _grant(client, owner.email, "not-my-password-1")
    assert _grant(client, owner.email, PASSWORD) == 429
    auth = {"Authorization": f"Bearer {token_for(client, admin)}"}
    r = client.patch(
        f"/v1/partners/{partner.id}/users/{owner.id}",
        headers=auth,
        json={"password": "fresh-lantern-harbour-5"},
    )
    assert r.status_code == 200, r.text
    assert _grant(client, owner.email, "fresh-lantern-harbour-5") == 200


def test_the_unlock_command_clears_an_accounts_failures_and_says_so_on_the_log(
    cli: tuple[CliRunner, dict[str, str], str],  # noqa: F811
) -> None:
    _runner, _env, url = cli
    assert _invoke(cli, "db", "upgrade").exit_code == 0
    init = ("init", "--email", "owner@vendor.example", "--password", "steady-lantern-41")
    assert _invoke(cli, *init).exit_code == 0
    engine = make_engine(url)
    try:
        sessions = make_session_factory(engine)
        with sessions() as session:
            for _ in range(5):
                session.add(
                    SignInFailure(email="owner@vendor.example", address="192.0.2.1", at=START)
                )
            session.commit()
        r = _invoke(cli, "users", "unlock", "--email", "Owner@Vendor.example")
        assert r.exit_code == 0, r.output
        assert "5 failed sign-in(s) forgotten" in r.output
        with sessions() as session:
            left = session.execute(select(func.count()).select_from(SignInFailure)).scalar_one()
            unlocked = session.execute(
                select(func.count())
                .select_from(AuditRecord)
                .where(AuditRecord.operation_type == "sign_in_unlocked")
            ).scalar_one()
        assert (left, unlocked) == (0, 1)
    finally:
        engine.dispose()

"""Operations: health, readiness, metrics, structured logs and the sandbox clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import logs
from partnercenter.app import create_app
from partnercenter.clock import SandboxClock, SystemClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory

KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


def test_healthz_and_readyz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ok", "database": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 48, key_encryption_key=KEK)
    missing = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    app = create_app(settings, session_factory=make_session_factory(missing), clock=SystemClock())
    with TestClient(app) as c:
        r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["database"] == "unreachable"
    logs.configure(json_lines=False)


def test_metrics_are_prometheus_text_with_the_request_counter(client: TestClient) -> None:
    client.get("/healthz")
    client.get("/v1/users/me")  # a 401, counted under its route template
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert "# TYPE partnercenter_http_requests_total counter" in text
    assert 'partnercenter_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/users/me",status="401"' in text
    assert "partnercenter_http_request_duration_seconds_bucket" in text


def test_each_request_writes_a_json_log_line_with_its_request_id(
    session_factory: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 48, key_encryption_key=KEK)
    assert settings.log_json is True  # the default
    app = create_app(settings, session_factory=session_factory, clock=SystemClock())
    try:
        with TestClient(app) as c:
            r = c.get("/healthz", headers={"MS-CorrelationId": "walk-42"})
            generated = c.get("/readyz").headers["MS-CorrelationId"]
        lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line]
    finally:
        logs.configure(json_lines=False)
    assert r.headers["MS-CorrelationId"] == "walk-42"
    mine = [line for line in lines if line.get("requestId") == "walk-42"]
    assert mine and mine[0]["message"] == "request" and mine[0]["path"] == "/healthz"
    assert mine[0]["status"] == 200 and mine[0]["level"] == "info" and "time" in mine[0]
    assert any(line.get("requestId") == generated for line in lines)


def test_unsafe_correlation_ids_are_replaced(client: TestClient) -> None:
    r = client.get("/healthz", headers={"MS-CorrelationId": "bad id\nInjected: yes"})
    assert r.headers["MS-CorrelationId"] != "bad id\nInjected: yes"
    assert len(r.headers["MS-CorrelationId"]) == 36


# --- the sandbox clock ---------------------------------------------------------------------


def test_sandbox_clock_is_absent_when_sandbox_mode_is_off(
    client: TestClient, factory: Factory, auth_headers: Callable[..., dict[str, str]]
) -> None:
    provider_admin = auth_headers(factory.provider_admin())
    partner = auth_headers(factory.user(factory.partner(), Role.GLOBAL_ADMIN))
    for headers in (provider_admin, partner, {}):
        r = client.post("/v1/sandbox/clock", json={"advanceDays": 31}, headers=headers)
        assert r.status_code == 404, headers
        assert client.get("/v1/sandbox/clock", headers=headers).status_code == 404


@pytest.fixture
def sandbox(session_factory: sessionmaker[Session], session: Session, tmp_path: Path) -> TestClient:
    settings = Settings(
        data_dir=tmp_path, secret_key="k" * 48, key_encryption_key=KEK, sandbox=True, log_json=False
    )
    app = create_app(settings, session_factory=session_factory, clock=SandboxClock())
    return TestClient(app)


def _script_token(client: TestClient, email: str) -> dict[str, str]:
    """A named token (no expiry), so it survives moving the clock a month."""
    grant = client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": PASSWORD},
    )
    assert grant.status_code == 200, grant.text
    bearer = {"Authorization": f"Bearer {grant.json()['access_token']}"}
    named = client.post("/v1/users/me/tokens", json={"name": "sandbox script"}, headers=bearer)
    assert named.status_code == 201, named.text
    return {"Authorization": f"Bearer {named.json()['token']}"}


def _aware(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def test_provider_admin_moves_the_sandbox_clock_forward_and_every_rule_sees_it(
    sandbox: TestClient, factory: Factory
) -> None:
    admin = factory.provider_admin()
    factory.session.commit()
    h = _script_token(sandbox, admin.email)
    real = datetime.now(UTC)
    moved = sandbox.post("/v1/sandbox/clock", json={"advanceDays": 31}, headers=h)
    assert moved.status_code == 200, moved.text
    assert moved.json()["offsetSeconds"] == pytest.approx(31 * 86400, abs=60)
    # NowDep reads the moved clock; a token's lifetime stays on real time.
    read = sandbox.get("/v1/sandbox/clock", headers=h).json()
    assert timedelta(days=30, hours=23) < _aware(read["now"]) - real < timedelta(days=31, minutes=5)
    created = sandbox.post("/v1/users/me/tokens", json={"name": "after"}, headers=h).json()
    assert abs(_aware(created["createdAt"]) - real) < timedelta(minutes=5)
    # An absolute instant further ahead is accepted.
    target = (real + timedelta(days=45)).replace(microsecond=0)
    r = sandbox.post("/v1/sandbox/clock", json={"now": target.isoformat()}, headers=h)
    assert r.status_code == 200 and _aware(r.json()["now"]) == target


def test_sandbox_clock_never_moves_backwards(sandbox: TestClient, factory: Factory) -> None:
    admin = factory.provider_admin()
    factory.session.commit()
    h = _script_token(sandbox, admin.email)
    assert sandbox.post("/v1/sandbox/clock", json={"advanceDays": 10}, headers=h).status_code == 200
    back = (datetime.now(UTC) + timedelta(days=5)).isoformat()
    r = sandbox.post("/v1/sandbox/clock", json={"now": back}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == 10010
    negative = sandbox.post("/v1/sandbox/clock", json={"advanceDays": -1}, headers=h)
    assert negative.status_code == 400
    empty = sandbox.post("/v1/sandbox/clock", json={}, headers=h)
    assert empty.status_code == 400
    offset = sandbox.get("/v1/sandbox/clock", headers=h).json()["offsetSeconds"]
    assert offset == pytest.approx(10 * 86400, abs=60)


@pytest.mark.parametrize(
    "role", [Role.SUPPORT_AGENT, Role.GLOBAL_ADMIN, Role.ADMIN_AGENT], ids=lambda r: r.value
)
def test_only_provider_admins_move_the_sandbox_clock(
    sandbox: TestClient, factory: Factory, role: Role
) -> None:
    tenant = factory.provider() if role == Role.SUPPORT_AGENT else factory.partner()
    user = factory.user(tenant, role)
    factory.session.commit()
    h = _script_token(sandbox, user.email)
    assert sandbox.post("/v1/sandbox/clock", json={"advanceDays": 1}, headers=h).status_code == 403
    assert sandbox.get("/v1/sandbox/clock", headers=h).status_code == 403
    assert sandbox.post("/v1/sandbox/clock", json={"advanceDays": 1}).status_code == 401

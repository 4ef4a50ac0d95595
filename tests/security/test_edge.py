"""Sizes, media types, methods, security headers and the production-only switches."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.deps import SESSION_COOKIE
from partnercenter.identity.models import User, WebSession
from partnercenter.identity.services import _token_hash
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory, token_for
from tests.web import sign_in

MiB = 1024 * 1024


@pytest.fixture
def admin(factory: Factory, session: Session) -> User:
    user = factory.provider_admin()
    session.commit()
    return user


@pytest.fixture
def bearer(client: TestClient, admin: User) -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(client, admin)}"}


def test_a_body_over_the_limit_is_refused_with_413_before_it_is_read(
    client: TestClient, bearer: dict[str, str]
) -> None:
    big = b'{"companyName": "' + b"x" * (3 * MiB) + b'", "country": "US"}'
    r = client.post(
        "/v1/partners", content=big, headers={**bearer, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.json()["errorName"] == "payload_too_large"
    assert r.json()["data"] == [{"limitBytes": 2 * MiB}]


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(
    client: TestClient, bearer: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"companyName": "'
        for _ in range(5):
            yield b"x" * MiB
        yield b'"}'

    r = client.post(
        "/v1/partners", content=chunks(), headers={**bearer, "Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_the_limit_is_checked_before_authentication(client: TestClient) -> None:
    r = client.post(
        "/v1/partners",
        content=b"x" * (3 * MiB),
        headers={"Content-Type": "application/json", "Authorization": "Bearer not-a-token"},
    )
    assert r.status_code == 413


def test_unknown_fields_are_not_silently_accepted_in_a_big_body(
    client: TestClient, bearer: dict[str, str]
) -> None:
    body = '{"companyName": "Big", "country": "US", "padding": "' + "x" * (3 * MiB) + '"}'
    r = client.post(
        "/v1/partners", content=body, headers={**bearer, "Content-Type": "application/json"}
    )
    assert r.status_code == 413


def test_uploads_have_their_own_larger_limit(client: TestClient, bearer: dict[str, str]) -> None:
    # 3 MiB is over the body limit but under the upload limit: the route's own checks answer.
    r = client.post(
        "/v1/products/P/skus/S/artifacts",
        headers=bearer,
        data={"version": "1", "language": "en", "bitness": "x64"},
        files={"file": ("big.bin", b"\0" * (3 * MiB), "application/octet-stream")},
    )
    assert r.status_code == 404, r.text  # reached the route: the product does not exist


def test_an_upload_over_its_limit_is_refused_with_413(
    settings: Settings,
    session_factory: sessionmaker[Session],
    clock: FrozenClock,
    bearer: dict[str, str],
) -> None:
    settings.max_upload_bytes = 1 * MiB
    small = create_app(settings, session_factory=session_factory, clock=clock)
    with TestClient(small) as client:
        r = client.post(
            "/v1/products/P/skus/S/artifacts",
            headers=bearer,
            data={"version": "1", "language": "en", "bitness": "x64"},
            files={"file": ("big.bin", b"\0" * (2 * MiB), "application/octet-stream")},
        )
    assert r.status_code == 413
    assert r.json()["errorName"] == "payload_too_large"


def test_text_plain_to_a_json_operation_is_refused_with_415(
    client: TestClient, bearer: dict[str, str]
) -> None:
    r = client.post(
        "/v1/partners",
        content='{"companyName": "Plain", "country": "US"}',
        headers={**bearer, "Content-Type": "text/plain"},
    )
    assert r.status_code == 415
    assert r.json()["errorName"] == "unsupported_media_type"


def test_a_long_address_is_refused_with_414(client: TestClient) -> None:
    r = client.get("/v1/partners?q=" + "x" * 10_000)
    assert r.status_code == 414


def test_headers_over_the_limit_are_refused_with_431_and_our_body(client: TestClient) -> None:
    limit = 32 * 1024
    # Host, Accept, Accept-Encoding, Connection and User-Agent come with the test client.
    sent = {"Cookie": "c=" + "x" * limit}
    r = client.get("/v1/partners", headers=sent)
    assert r.status_code == 431
    assert r.json()["errorName"] == "request_header_fields_too_large"
    assert r.json()["code"] == 10831 and r.json()["data"] == [{"limitBytes": limit}]
    assert r.headers["connection"] == "close"
    under = client.get("/v1/partners", headers={"Cookie": "c=" + "x" * (limit - 1024)})
    assert under.status_code == 401  # reached the route


def test_options_answers_every_method_of_the_path(client: TestClient) -> None:
    r = client.options("/v1/partners")
    assert r.status_code == 204
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}


def test_a_wrong_method_answers_405_with_the_allow_of_every_route(client: TestClient) -> None:
    r = client.put("/v1/partners")
    assert r.status_code == 405
    assert set(r.headers["allow"].split(", ")) == {"GET", "POST", "OPTIONS"}
    assert r.json()["errorName"] == "method_not_allowed"
    r = client.delete("/static/app.js")
    assert r.status_code == 405
    assert "GET" in r.headers["allow"]


def _production(tmp_path: Path, **extra: object) -> Settings:
    return Settings(
        env="production",
        data_dir=tmp_path,
        database_url="sqlite:///unused.db",
        secret_key="p" * 48,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        log_json=False,
        **extra,  # type: ignore[arg-type]
    )


def test_production_responses_carry_hsts_csp_and_frame_protection(
    tmp_path: Path, session_factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    app = create_app(_production(tmp_path), session_factory=session_factory, clock=clock)
    with TestClient(app, base_url="https://testserver") as client:
        for path, accept in (
            ("/signin", "text/html"),
            ("/v1/users/me", "application/json"),
            ("/static/app.js", "*/*"),
            ("/healthz", "application/json"),
            ("/no-such-page", "text/html"),
        ):
            r = client.get(path, headers={"Accept": accept}, follow_redirects=False)
            assert r.status_code < 500, path
            assert r.headers["strict-transport-security"].startswith("max-age=63072000"), path
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"], path
            assert r.headers["x-frame-options"] == "DENY", path
            assert r.headers["x-content-type-options"] == "nosniff", path


def test_development_has_no_hsts(client: TestClient) -> None:
    r = client.get("/healthz")
    assert "strict-transport-security" not in r.headers
    assert r.headers["x-frame-options"] == "DENY"


def test_docs_and_metrics_are_closed_in_production(
    tmp_path: Path, session_factory: sessionmaker[Session], clock: FrozenClock
) -> None:
    app = create_app(_production(tmp_path), session_factory=session_factory, clock=clock)
    with TestClient(app) as client:
        for path in ("/docs", "/redoc", "/openapi.json", "/metrics"):
            assert client.get(path, headers={"Accept": "application/json"}).status_code == 404
    secured = _production(tmp_path, metrics_token="m" * 40, docs_enabled=True)
    app = create_app(secured, session_factory=session_factory, clock=clock)
    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/metrics").status_code == 401
        wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 40})
        assert wrong.status_code == 401
        right = client.get("/metrics", headers={"Authorization": "Bearer " + "m" * 40})
        assert right.status_code == 200
        assert "partnercenter_http_requests_total" in right.text


def test_docs_and_metrics_are_open_in_development(client: TestClient) -> None:
    for path in ("/docs", "/openapi.json", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_cookie_api_writes_need_the_csrf_header_and_bearer_tokens_do_not(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    session.commit()
    assert sign_in(client, user.email, PASSWORD).status_code == 303
    plain = client.post(
        "/v1/users/me/tokens",
        content='{"name": "from a page"}',
        headers={"Content-Type": "text/plain"},
    )
    assert plain.status_code in (403, 415)
    no_header = client.post("/v1/users/me/tokens", json={"name": "no header"})
    assert no_header.status_code == 403
    assert no_header.json()["errorName"] == "csrf_failed"
    ws = session.execute(
        select(WebSession).where(
            WebSession.token_hash == _token_hash(client.cookies[SESSION_COOKIE])
        )
    ).scalar_one()
    csrf = {"X-CSRF-Token": ws.csrf_token}
    with_header = client.post("/v1/users/me/tokens", json={"name": "with header"}, headers=csrf)
    assert with_header.status_code == 201
    foreign = client.post(
        "/v1/users/me/tokens",
        json={"name": "foreign"},
        headers={"X-CSRF-Token": ws.csrf_token, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403
    client.cookies.clear()
    bearer = {"Authorization": f"Bearer {token_for(client, user)}"}
    scripted = client.post("/v1/users/me/tokens", json={"name": "script"}, headers=bearer)
    assert scripted.status_code == 201

"""The pages against forged forms, stolen cookies and password guessing."""

from __future__ import annotations

from collections.abc import Iterator
from http.cookies import SimpleCookie

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.app import create_app
from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.deps import SESSION_COOKIE
from partnercenter.identity.models import ApiToken, User, WebSession
from partnercenter.permissions import Role, TenantKind
from partnercenter.web import PRE_SESSION_CSRF_COOKIE
from tests.factories import PASSWORD, Factory
from tests.test_route_walk import world  # noqa: F401 - the fixture, shared
from tests.web import csrf_of, page_csrf, sign_in

KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


def _count(session: Session, model: type, *where: object) -> int:
    return int(session.execute(select(func.count()).select_from(model).where(*where)).scalar_one())  # type: ignore[arg-type]


def _signed_in(client: TestClient, factory: Factory, *roles: Role) -> User:
    user = factory.user(factory.partner(), *(roles or (Role.GLOBAL_ADMIN,)))
    factory.session.commit()
    assert sign_in(client, user.email, PASSWORD).status_code == 303
    return user


def _set_cookie(response: object, name: str) -> dict[str, str | bool]:
    """The attributes of one Set-Cookie header, lower-cased."""
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            morsel = jar[name]
            return {
                "value": morsel.value,
                "httponly": bool(morsel["httponly"]),
                "secure": bool(morsel["secure"]),
                "samesite": str(morsel["samesite"]).lower(),
                "path": morsel["path"],
            }
    raise AssertionError(f"no Set-Cookie for {name}")


# --- CSRF ----------------------------------------------------------------------------------


def test_sign_in_form_without_or_with_a_wrong_token_is_refused(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    page_csrf(client)  # the browser has its pre-session token cookie
    for token in ("", "forged-token"):
        r = client.post(
            "/signin",
            data={"email": user.email, "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403
        assert SESSION_COOKIE not in r.headers.get("set-cookie", "")
    # A token from another browser does not fit this browser's cookie either.
    other = TestClient(client.app)
    foreign_token = page_csrf(other)
    r = client.post(
        "/signin",
        data={"email": user.email, "password": PASSWORD, "csrf_token": foreign_token},
        follow_redirects=False,
    )
    assert r.status_code == 403
    assert _count(session, WebSession, WebSession.user_id == user.id) == 0
    assert _count(session, AuditRecord, AuditRecord.operation_type == "sign_in_succeeded") == 0


def test_forged_sign_out_leaves_the_session_alone(client: TestClient, factory: Factory) -> None:
    _signed_in(client, factory)
    for token in ("", "forged-token"):
        r = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 403
    assert client.get("/partner", follow_redirects=False).status_code == 200


def test_forged_user_and_token_forms_change_nothing(
    client: TestClient, factory: Factory, session: Session
) -> None:
    me = _signed_in(client, factory, Role.GLOBAL_ADMIN)
    users_before = _count(session, User)
    for token in ("", "forged-token"):
        r = client.post(
            "/partner/users",
            data={
                "email": "planted@evil.example",
                "password": "long-enough-password",
                "roles": ["global_admin"],
                "csrf_token": token,
            },
        )
        assert r.status_code == 403
        r = client.post("/account/tokens", data={"name": "planted", "csrf_token": token})
        assert r.status_code == 403
    assert _count(session, User) == users_before
    assert _count(session, ApiToken, ApiToken.user_id == me.id) == 0


def test_a_cross_origin_post_is_refused_even_with_a_valid_token(
    client: TestClient, factory: Factory, session: Session
) -> None:
    me = _signed_in(client, factory)
    token = csrf_of(client.get("/account/tokens").text)
    evil = client.post(
        "/account/tokens",
        data={"name": "from-evil", "csrf_token": token},
        headers={"Origin": "https://evil.example"},
    )
    assert evil.status_code == 403
    assert _count(session, ApiToken, ApiToken.user_id == me.id) == 0
    same = client.post(
        "/account/tokens",
        data={"name": "from-here", "csrf_token": token},
        headers={"Origin": "http://testserver"},
    )
    assert same.status_code == 200 and 'data-testid="new-token"' in same.text
    assert _count(session, ApiToken, ApiToken.user_id == me.id) == 1


# --- cookies -------------------------------------------------------------------------------


def test_session_cookie_is_httponly_lax_and_not_secure_on_plain_http_in_development(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    first = client.get("/signin")
    pre = _set_cookie(first, PRE_SESSION_CSRF_COOKIE)
    assert pre["httponly"] and pre["samesite"] == "lax"
    r = sign_in(client, user.email, PASSWORD)
    cookie = _set_cookie(r, SESSION_COOKIE)
    assert cookie["httponly"] is True and cookie["samesite"] == "lax" and cookie["path"] == "/"
    assert cookie["secure"] is False
    # Only a hash of the cookie is stored.
    stored = session.execute(select(WebSession).where(WebSession.user_id == user.id)).scalar_one()
    assert cookie["value"] not in stored.token_hash


@pytest.fixture
def app_with(
    session_factory: sessionmaker[Session], clock: FrozenClock, tmp_path: object
) -> Iterator[object]:
    clients: list[TestClient] = []

    def make(**overrides: object) -> TestClient:
        base: dict[str, object] = {
            "data_dir": tmp_path,
            "secret_key": "k" * 48,
            "key_encryption_key": KEK,
            "log_json": False,
        }
        settings = Settings(**{**base, **overrides})  # type: ignore[arg-type]
        app = create_app(settings, session_factory=session_factory, clock=clock)
        # Secure cookies only travel over https, as in a browser.
        scheme = "https" if settings.secure_cookies else "http"
        c = TestClient(app, base_url=f"{scheme}://testserver")
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.mark.parametrize(
    "overrides",
    [
        {"base_url": "https://partners.example"},
        {"env": "production", "database_url": "postgresql+psycopg://db.example/pc"},
    ],
    ids=["https-base-url", "production"],
)
def test_session_cookie_is_secure_over_https_or_in_production(
    app_with: object, factory: Factory, overrides: dict[str, str]
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    client = app_with(**overrides)  # type: ignore[operator]
    first = client.get("/signin")
    assert _set_cookie(first, PRE_SESSION_CSRF_COOKIE)["secure"] is True
    r = sign_in(client, user.email, PASSWORD)
    assert r.status_code == 303
    cookie = _set_cookie(r, SESSION_COOKIE)
    assert cookie["secure"] is True and cookie["httponly"] is True and cookie["samesite"] == "lax"


@pytest.mark.parametrize("secret", [None, "", "changeme", "secret", "short-but-not-placeholder"])
def test_production_settings_refuse_placeholder_secrets(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="PARTNERCENTER_SECRET_KEY"):
        Settings(
            env="production",
            secret_key=secret,
            key_encryption_key=KEK,
            database_url="postgresql+psycopg://db.example/pc",
        )


def test_production_settings_need_every_secret_and_a_database() -> None:
    with pytest.raises(ValidationError, match="PARTNERCENTER_KEY_ENCRYPTION_KEY"):
        Settings(env="production", secret_key="s" * 40, key_encryption_key="changeme")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(env="production", secret_key="s" * 40, key_encryption_key=KEK)
    ok = Settings(
        env="production",
        secret_key="s" * 40,
        key_encryption_key=KEK,
        database_url="postgresql+psycopg://db.example/pc",
    )
    assert ok.secure_cookies is True


# --- sign-in and sign-out ------------------------------------------------------------------


def test_sign_in_page_slows_down_repeated_failures_and_records_them(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    for _ in range(5):
        r = sign_in(client, user.email, "wrong-password!")
        assert r.status_code == 401
        assert "The email or password is incorrect." in r.text
    blocked = sign_in(client, user.email, PASSWORD)
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    assert int(blocked.headers["Retry-After"]) > 0
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")
    failed = _count(
        session,
        AuditRecord,
        AuditRecord.operation_type == "sign_in_failed",
        AuditRecord.user_principal_name == user.email,
    )
    throttled = _count(session, AuditRecord, AuditRecord.operation_type == "sign_in_throttled")
    assert failed == 5 and throttled == 1
    clock.advance(minutes=16)
    assert sign_in(client, user.email, PASSWORD).status_code == 303


def test_sign_in_page_slows_down_one_address_guessing_many_accounts(
    app_with: object, factory: Factory
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    client = app_with(sign_in_max_failures_per_address=3)  # type: ignore[operator]
    for n in range(3):
        assert sign_in(client, f"guess{n}@example.com", "whatever-pw").status_code == 401
    assert sign_in(client, user.email, PASSWORD).status_code == 429


def test_unknown_account_gets_the_same_generic_error(client: TestClient, factory: Factory) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    factory.session.commit()
    wrong = sign_in(client, user.email, "wrong-password!")
    unknown = sign_in(client, "nobody@example.com", "wrong-password!")
    assert wrong.status_code == unknown.status_code == 401
    assert "The email or password is incorrect." in wrong.text
    assert "The email or password is incorrect." in unknown.text


def test_sign_out_revokes_the_session_server_side(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user = _signed_in(client, factory)
    stolen = client.cookies.get(SESSION_COOKIE)
    assert stolen
    token = csrf_of(client.get("/partner").text)
    r = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/signin"
    ws = session.execute(select(WebSession).where(WebSession.user_id == user.id)).scalar_one()
    session.refresh(ws)
    assert ws.revoked_at is not None
    replay = TestClient(client.app, cookies={SESSION_COOKIE: stolen})
    r = replay.get("/partner", headers={"Accept": "text/html"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/signin")


def test_pages_refuse_to_be_framed(client: TestClient) -> None:
    r = client.get("/signin")
    assert r.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


# --- every form of every area -------------------------------------------------------------


def _page_posts(app: object) -> list[object]:
    from tests.test_route_walk import collect_endpoints

    return [e for e in collect_endpoints(app) if e.method == "POST" and not e.is_api]  # type: ignore[arg-type]


def test_every_page_form_checks_its_csrf_token(app: object) -> None:
    import inspect

    posts = _page_posts(app)
    assert len(posts) >= 9
    unchecked = [
        str(e)
        for e in posts
        if "check_csrf(" not in inspect.getsource(e.route.endpoint)  # type: ignore[attr-defined]
    ]
    assert not unchecked, "POST pages that never call check_csrf: " + ", ".join(unchecked)


def test_forged_posts_to_every_page_are_refused(
    client: TestClient,
    app: object,
    world: object,  # noqa: F811 - the fixture imported above
) -> None:
    from tests.test_route_walk import World, fill_own

    w: World = world  # type: ignore[assignment]
    callers = [*w.all_roles.values(), w.callers[(TenantKind.PROVIDER, Role.PROVIDER_ADMIN)]]
    failures = []
    for endpoint in _page_posts(app):
        for caller in callers:
            path = fill_own(endpoint, w, caller)  # type: ignore[arg-type]
            client.cookies.set(SESSION_COOKIE, w.cookie[caller.id])
            for headers in ({}, {"Origin": "https://evil.example"}):
                r = client.post(
                    path,
                    data={"csrf_token": "forged"},
                    headers={"Accept": "text/html", **headers},
                    follow_redirects=False,
                )
                if not 400 <= r.status_code < 500:
                    failures.append(f"{endpoint} as {caller.email} {headers}: {r.status_code}")
            client.cookies.clear()
    assert not failures, "Forged forms that were not refused:\n" + "\n".join(failures)

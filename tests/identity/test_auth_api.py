"""Sign-in for scripts: password grant, bearer tokens, throttling, named tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory, token_for


def _grant(client: TestClient, email: str, password: str) -> object:
    return client.post(
        "/v1/auth/token",
        data={"grant_type": "password", "username": email, "password": password},
    )


def test_password_grant_returns_a_bearer_token_that_reads_me(
    client: TestClient, factory: Factory
) -> None:
    partner = factory.partner("Fabrikam")
    user = factory.user(partner, Role.ADMIN_AGENT, Role.BILLING_ADMIN)
    r = _grant(client, user.email, PASSWORD)
    assert r.status_code == 200  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    me = client.get("/v1/users/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == user.email
    assert me.json()["tenant"]["companyName"] == "Fabrikam"
    assert sorted(me.json()["roles"]) == ["admin_agent", "billing_admin"]


def test_wrong_password_and_unknown_user_get_the_same_generic_error(
    client: TestClient, factory: Factory
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    wrong = _grant(client, user.email, "not-the-password")
    unknown = _grant(client, "nobody@example.com", "whatever-password")
    assert wrong.status_code == unknown.status_code == 401  # type: ignore[attr-defined]
    assert wrong.json()["description"] == unknown.json()["description"]  # type: ignore[attr-defined]
    assert wrong.json()["code"] == 10411  # type: ignore[attr-defined]


def test_repeated_failures_are_slowed_down_and_recorded(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    for _ in range(5):
        assert _grant(client, user.email, "bad-password!").status_code == 401  # type: ignore[attr-defined]
    blocked = _grant(client, user.email, PASSWORD)
    assert blocked.status_code == 429  # type: ignore[attr-defined]
    assert int(blocked.headers["Retry-After"]) > 0  # type: ignore[attr-defined]
    failures = (
        session.execute(
            select(AuditRecord).where(
                AuditRecord.operation_type == "sign_in_failed",
                AuditRecord.user_principal_name == user.email,
            )
        )
        .scalars()
        .all()
    )
    assert len(failures) == 5
    assert all(f.status == "failed" and f.client_address for f in failures)
    clock.advance(minutes=16)
    assert _grant(client, user.email, PASSWORD).status_code == 200  # type: ignore[attr-defined]


def test_missing_or_bad_bearer_token_is_401(client: TestClient) -> None:
    assert client.get("/v1/users/me").status_code == 401
    r = client.get("/v1/users/me", headers={"Authorization": "Bearer pc_forged"})
    assert r.status_code == 401
    assert r.json()["code"] == 10401


def test_access_token_expires(client: TestClient, factory: Factory, clock: FrozenClock) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    token = token_for(client, user)
    clock.advance(minutes=61)
    assert (
        client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )


def test_named_token_is_shown_once_stored_hashed_and_revocable(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user = factory.user(factory.partner(), Role.SALES_AGENT)
    headers = {"Authorization": f"Bearer {token_for(client, user)}"}
    created = client.post("/v1/users/me/tokens", json={"name": "nightly sync"}, headers=headers)
    assert created.status_code == 201
    secret = created.json()["token"]
    listed = client.get("/v1/users/me/tokens", headers=headers).json()
    assert listed["totalCount"] == 1 and "token" not in listed["items"][0]
    from partnercenter.identity.models import ApiToken

    stored = session.execute(select(ApiToken).where(ApiToken.name == "nightly sync")).scalar_one()
    assert secret not in stored.token_hash and len(stored.token_hash) == 64
    script = {"Authorization": f"Bearer {secret}"}
    assert client.get("/v1/users/me", headers=script).status_code == 200
    token_id = created.json()["id"]
    assert client.delete(f"/v1/users/me/tokens/{token_id}", headers=headers).status_code == 204
    assert client.get("/v1/users/me", headers=script).status_code == 401
    ops = [r.operation_type for r in session.execute(select(AuditRecord)).scalars()]
    assert "create_api_token" in ops and "revoke_api_token" in ops


def test_correlation_id_is_echoed_and_generated(client: TestClient) -> None:
    r = client.get("/healthz", headers={"MS-CorrelationId": "abc-123"})
    assert r.headers["MS-CorrelationId"] == "abc-123"
    generated = client.get("/healthz").headers["MS-CorrelationId"]
    assert len(generated) == 36


def test_errors_have_the_partner_center_shape(client: TestClient) -> None:
    r = client.post("/v1/auth/token", data={"grant_type": "client_credentials"})
    assert r.status_code == 400
    body = r.json()
    assert set(body) >= {"code", "description", "data", "source"}
    assert (body["code"], body["errorName"]) == (10423, "unsupported_grant_type")


def test_an_actor_route_honours_expiry_revocation_roles_and_deactivation_at_once(
    client: TestClient, factory: Factory, session: Session, clock: FrozenClock
) -> None:
    """Routes that take the Actor (resolved without loading the user) apply the same rules
    as /v1/users/me, from the very next request; a named token's last use is recorded."""
    from sqlalchemy import delete

    from partnercenter.identity.models import ApiToken, User, UserRole

    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    session.commit()
    short = {"Authorization": f"Bearer {token_for(client, user)}"}
    assert client.get("/v1/customers", headers=short).status_code == 200

    created = client.post("/v1/users/me/tokens", json={"name": "sync"}, headers=short)
    named = {"Authorization": f"Bearer {created.json()['token']}"}
    assert client.get("/v1/customers", headers=named).status_code == 200
    session.expire_all()
    stored = session.execute(select(ApiToken).where(ApiToken.name == "sync")).scalar_one()
    # A read ends in a rollback: the last use is recorded with the next write that commits.
    other = client.post("/v1/users/me/tokens", json={"name": "other"}, headers=named)
    assert other.status_code == 201
    session.expire_all()
    assert stored.last_used_at is not None

    # The password-grant token expires after an hour (real time in production; the test's
    # clock stands for it here).
    clock.advance(minutes=61)
    assert client.get("/v1/customers", headers=short).status_code == 401
    assert client.get("/v1/customers", headers=named).status_code == 200

    # A role taken away: refused (403) at the next request.
    session.execute(delete(UserRole).where(UserRole.user_id == user.id))
    session.commit()
    assert client.get("/v1/customers", headers=named).status_code == 403

    # A deactivated user: 401 at the next request.
    session.add(UserRole(user_id=user.id, role=Role.ADMIN_AGENT))
    session.commit()
    assert client.get("/v1/customers", headers=named).status_code == 200
    found = session.get(User, user.id)
    assert found is not None
    found.is_active = False
    session.commit()
    assert client.get("/v1/customers", headers=named).status_code == 401

    # A revoked token: 401 at the next request.
    found.is_active = True
    session.commit()
    assert client.get("/v1/customers", headers=named).status_code == 200
    stored.revoked_at = stored.created_at
    session.commit()
    assert client.get("/v1/customers", headers=named).status_code == 401

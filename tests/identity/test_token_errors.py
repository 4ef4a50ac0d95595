"""The token endpoint's errors in OAuth's order (RFC 6749 §4.3.2, §5.2): the grant type is
judged before anything else, then the missing or repeated parameters, then the credentials."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory

TOKEN = "/v1/auth/token"


def _failed_sign_ins(session: Session, email: str) -> int:
    found = session.scalar(
        select(func.count())
        .select_from(AuditRecord)
        .where(
            AuditRecord.operation_type == "sign_in_failed",
            AuditRecord.user_principal_name == email,
        )
    )
    return found or 0


@pytest.mark.parametrize(
    "form",
    [
        {"grant_type": "bogus"},
        {"grant_type": "bogus", "username": "someone@example.com"},
        {"grant_type": "client_credentials", "password": "x"},
        {"grant_type": "authorization_code", "username": "a@example.com", "password": "b"},
        {"grant_type": "PASSWORD", "username": "a@example.com", "password": "b"},
    ],
)
def test_another_grant_type_answers_unsupported_grant_type_whatever_else_is_missing(
    client: TestClient, form: dict[str, str]
) -> None:
    r = client.post(TOKEN, data=form)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "unsupported_grant_type"
    assert body["errorName"] == "unsupported_grant_type" and body["code"] == 10423
    assert body["source"] == "grant_type"
    assert (
        body["error_description"]
        == body["description"]
        == ("Only grant_type=password is supported.")
    )


@pytest.mark.parametrize("form", [{}, {"username": "a@example.com", "password": "b"}])
def test_no_grant_type_is_an_invalid_request_about_the_grant_type(
    client: TestClient, form: dict[str, str]
) -> None:
    r = client.post(TOKEN, data=form)
    assert r.status_code == 400
    body = r.json()
    assert (body["error"], body["errorName"], body["code"]) == (
        "invalid_request",
        "invalid_request",
        10422,
    )
    assert body["source"] == "grant_type"
    assert body["description"] == "The grant_type parameter is missing; use grant_type=password."


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"grant_type": "password"}, "username"),
        ({"grant_type": "password", "password": "x"}, "username"),
        ({"grant_type": "password", "username": "", "password": "x"}, "username"),
        ({"grant_type": "password", "username": "a@example.com"}, "password"),
    ],
)
def test_a_password_grant_without_username_or_password_names_the_missing_one(
    client: TestClient, form: dict[str, str], missing: str
) -> None:
    r = client.post(TOKEN, data=form)
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_request" and body["source"] == missing
    assert body["description"].startswith(f"The {missing} parameter is missing")


@pytest.mark.parametrize("field", ["grant_type", "username", "password"])
def test_a_repeated_parameter_is_an_invalid_request(
    client: TestClient, factory: Factory, field: str
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    pairs = [("grant_type", "password"), ("username", user.email), ("password", PASSWORD)]
    pairs.append((field, dict(pairs)[field]))
    r = client.post(
        TOKEN,
        content="&".join(f"{k}={v}" for k, v in pairs).replace("@", "%40"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request" and r.json()["source"] == field
    assert r.json()["description"] == f"The {field} parameter is given more than once."


def test_the_grant_type_is_judged_before_the_credentials_are_tried(
    client: TestClient, factory: Factory, session: Session
) -> None:
    """A bad grant type with a wrong password is not a failed sign-in: nothing is recorded
    and the throttle does not count it."""
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    session.commit()

    for _ in range(8):
        r = client.post(
            TOKEN, data={"grant_type": "bogus", "username": user.email, "password": "wrong"}
        )
        assert r.json()["error"] == "unsupported_grant_type"
    assert _failed_sign_ins(session, user.email) == 0
    ok = client.post(
        TOKEN, data={"grant_type": "password", "username": user.email, "password": PASSWORD}
    )
    assert ok.status_code == 200


def test_wrong_credentials_carry_invalid_grant_beside_our_code(
    client: TestClient, factory: Factory
) -> None:
    user = factory.user(factory.partner(), Role.ADMIN_AGENT)
    r = client.post(
        TOKEN, data={"grant_type": "password", "username": user.email, "password": "wrong-one"}
    )
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == "invalid_grant"
    assert (body["code"], body["errorName"]) == (10411, "bad_credentials")
    assert (
        body["error_description"] == body["description"] == ("The email or password is incorrect.")
    )

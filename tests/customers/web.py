"""Signing in through the sign-in page and reading form tokens, for page tests."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.identity.models import User
from tests.factories import PASSWORD

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no form with a csrf_token"
    return match.group(1)


def sign_in(client: TestClient, session: Session, user: User) -> None:
    """Sign in through the real sign-in form; the client keeps the session cookie."""
    session.commit()  # make the user visible to the app's sessions (savepoint release)
    page = client.get("/signin")
    r = client.post(
        "/signin",
        data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text

"""Page tests sign in a factory-made user through the real sign-in form."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.identity.models import User
from tests import web
from tests.factories import PASSWORD

csrf_of = web.csrf_of


def sign_in(client: TestClient, session: Session, user: User) -> None:
    """Sign in; the client keeps the session cookie."""
    session.commit()  # make the user visible to the app's sessions (savepoint release)
    r = web.sign_in(client, user.email, PASSWORD)
    assert r.status_code == 303, r.text

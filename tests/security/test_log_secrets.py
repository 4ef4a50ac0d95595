"""No password hash, token, token hash, cookie or key reaches a log line, tracebacks included."""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.factories import PASSWORD, Factory, token_for
from tests.web import sign_in

SECRET_KEY = "production-signing-secret-" + "k" * 30
KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="


def _production(tmp_path: Path) -> Settings:
    return Settings(
        env="production",
        data_dir=tmp_path,
        database_url="sqlite:///unused.db",
        secret_key=SECRET_KEY,
        key_encryption_key=KEK,
        log_json=True,
    )


def test_a_run_that_provokes_errors_logs_no_secret(
    tmp_path: Path,
    factory: Factory,
    session: Session,
    session_factory: sessionmaker[Session],
    clock: FrozenClock,
    capfd: pytest.CaptureFixture[str],
) -> None:
    admin = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    session.commit()
    app = create_app(_production(tmp_path), session_factory=session_factory, clock=clock)
    secrets: list[str] = [admin.password_hash, SECRET_KEY, KEK]
    with TestClient(app, base_url="https://testserver") as client:
        token = token_for(client, admin)
        secrets += [token, hashlib.sha256(token.encode()).hexdigest()]
        auth = {"Authorization": f"Bearer {token}"}
        partner = f"/v1/partners/{admin.tenant_id}/users"
        # Hostile and oversized input everywhere a secret travels.
        client.post(
            partner,
            headers=auth,
            json={
                "email": "n@x.example",
                "displayName": "a\0b",
                "password": "a-fine-long-passphrase-9",
                "roles": ["global_admin"],
            },
        )
        client.post(
            partner,
            headers=auth,
            json={
                "email": "x" * 400 + "@x.example",
                "password": "another-fine-passphrase-8",
                "roles": ["global_admin"],
            },
        )
        client.post(
            partner,
            headers=auth,
            json={
                "email": admin.email,
                "password": "another-fine-passphrase-8",
                "roles": ["global_admin"],
            },
        )
        client.get("/v1/users/me", headers={"Authorization": f"Bearer {token}x"})
        client.get(f"/v1/customers/{uuid.uuid4()}%00", headers=auth)
        client.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": admin.email, "password": "wrong-" + token},
        )
        signed = sign_in(client, admin.email, PASSWORD)
        cookie = signed.cookies.get("pc_session") or client.cookies.get("pc_session")
        if cookie:
            secrets.append(cookie)
        client.post("/v1/users/me/tokens", json={"name": "x"})  # cookie without CSRF header
    # A database error carrying a password hash as a parameter, logged with its traceback.
    engine = make_engine(
        f"sqlite:///{tmp_path / 'errors.db'}", **_production(tmp_path).engine_options()
    )
    _provoke_integrity_error(engine, admin.password_hash)
    engine.dispose()
    logging.getLogger("partnercenter.http").error(
        "a message quoting %s and Bearer %s", admin.password_hash, token
    )
    out = capfd.readouterr()
    logged = out.out + out.err
    assert "unhandled error" in logged or "database" in logged or "request" in logged
    leaked = [s[:12] + "..." for s in secrets if s and s in logged]
    assert not leaked, f"secrets in the log: {leaked}"


def _provoke_integrity_error(engine: Engine, password_hash: str) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, secret TEXT NOT NULL UNIQUE)"))
    try:
        with engine.begin() as conn:
            for _ in range(2):
                conn.execute(text("INSERT INTO t (secret) VALUES (:s)"), {"s": password_hash})
    except IntegrityError as exc:
        assert password_hash not in str(exc)  # hide_parameters
        logging.getLogger("partnercenter.db").exception("integrity error")
        logging.getLogger("partnercenter.db").error("repr %r", exc.params)


def test_sql_parameters_are_hidden_in_production_even_when_asked(tmp_path: Path) -> None:
    settings = _production(tmp_path)
    settings.log_sql_parameters = True
    assert settings.engine_options()["hide_parameters"] is True
    dev = Settings(data_dir=tmp_path)
    assert dev.engine_options()["hide_parameters"] is True
    dev.log_sql_parameters = True
    assert dev.engine_options()["hide_parameters"] is False


def test_password_hashes_never_appear_in_user_answers(
    client: TestClient, factory: Factory, session: Session
) -> None:
    user: User = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    session.commit()
    auth = {"Authorization": f"Bearer {token_for(client, user)}"}
    r = client.get(f"/v1/partners/{user.tenant_id}/users", headers=auth)
    assert r.status_code == 200
    assert user.password_hash not in r.text

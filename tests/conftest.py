"""Test harness: every database test runs on SQLite and on PostgreSQL.

The PostgreSQL half runs whenever the server at PARTNERCENTER_TEST_PG_URL (default
127.0.0.1:5432, user postgres) answers. With CI=true (or PARTNERCENTER_TEST_PG=1) it must run
and fails if the server is unreachable; PARTNERCENTER_TEST_PG=0 skips it. The run's header
and its summary say which.
Each test runs inside a transaction that is rolled back at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import migrate
from partnercenter.app import create_app
from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.db import make_engine

PG_ADMIN_URL = os.environ.get(
    "PARTNERCENTER_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
_TRUE = {"1", "true", "yes"}
_PG_SETTING = os.environ.get("PARTNERCENTER_TEST_PG", "").lower()
PG_MANDATORY = os.environ.get("CI", "").lower() in _TRUE or _PG_SETTING in _TRUE
PG_SKIP_MESSAGE = (
    f"PostgreSQL tests skipped: no PostgreSQL server answered at "
    f"{PG_ADMIN_URL.rsplit('@', 1)[-1]} (PARTNERCENTER_TEST_PG_URL names another; "
    "CI=true or PARTNERCENTER_TEST_PG=1 makes it required)"
)


def _pg_reachable() -> bool:
    """Whether the test server answers within two seconds."""
    probe = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 2})
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        probe.dispose()


if PG_MANDATORY:
    PG_ENABLED = True
elif _PG_SETTING in {"0", "false", "no"}:
    PG_ENABLED = False
    PG_SKIP_MESSAGE = "PostgreSQL tests skipped: PARTNERCENTER_TEST_PG=0"
else:
    PG_ENABLED = _pg_reachable()


# The name the PostgreSQL-only tests import: true when the PostgreSQL half runs.
PG_REQUIRED = PG_ENABLED


def pytest_report_header() -> str:
    if PG_ENABLED:
        return f"PostgreSQL half: runs against {PG_ADMIN_URL.rsplit('@', 1)[-1]}"
    return PG_SKIP_MESSAGE


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not PG_ENABLED:
        terminalreporter.write_line(PG_SKIP_MESSAGE, yellow=True, bold=True)


START = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)

pytest_plugins = ["tests.factories"]


def _pg_database_url(name: str) -> str:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    return f"{base}/{name}"


def create_pg_database() -> tuple[str, Engine]:
    """Create a fresh database for this test run; returns its name and an admin engine."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"pc_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL did not answer (required with CI=true) at {PG_ADMIN_URL}: {exc}",
            pytrace=False,
        )
    return name, admin


def drop_pg_database(name: str, admin: Engine) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_ENABLED:
        pytest.skip(PG_SKIP_MESSAGE)
    return str(request.param)


@pytest.fixture(scope="session")
def engine(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A migrated database of the backend, shared by the session's tests."""
    if backend == "sqlite":
        path = tmp_path_factory.mktemp("db") / "test.db"
        eng = make_engine(f"sqlite:///{path}")
        migrate.upgrade(eng)
        yield eng
        eng.dispose()
        return
    name, admin = create_pg_database()
    eng = make_engine(_pg_database_url(name))
    try:
        migrate.upgrade(eng)
        yield eng
    finally:
        eng.dispose()
        drop_pg_database(name, admin)


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    trans = conn.begin()
    try:
        yield conn
    finally:
        trans.rollback()
        conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    """Sessions that join the test's transaction; their commits only release savepoints."""
    return sessionmaker(
        bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    s = session_factory()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path,
        secret_key="t" * 48,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        log_json=False,
    )


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session], clock: FrozenClock) -> FastAPI:
    return create_app(settings, session_factory=session_factory, clock=clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver") as c:
        yield c

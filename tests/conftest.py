"""Test harness: every database test runs on SQLite and on PostgreSQL.

With CI=true (or PARTNERCENTER_TEST_PG=1) the PostgreSQL half must run and fails if the
server is unreachable; otherwise it is skipped with a message saying how to enable it.
Each test runs inside a transaction that is rolled back at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

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
PG_REQUIRED = os.environ.get("CI", "").lower() in {"1", "true", "yes"} or os.environ.get(
    "PARTNERCENTER_TEST_PG", ""
).lower() in {"1", "true", "yes"}
PG_SKIP_MESSAGE = (
    "PostgreSQL tests skipped: set CI=true or PARTNERCENTER_TEST_PG=1 to run them against "
    "the server at 127.0.0.1:5432 (or PARTNERCENTER_TEST_PG_URL)"
)

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
            f"PostgreSQL is required (CI=true) but unreachable at {PG_ADMIN_URL}: {exc}",
            pytrace=False,
        )
    return name, admin


def drop_pg_database(name: str, admin: Engine) -> None:
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql" and not PG_REQUIRED:
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

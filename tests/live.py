"""Real servers for tests that need real connections: the app under uvicorn on a free
loopback port in a background thread, built the way production builds it, against a throwaway
database of either backend whose transactions really commit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import migrate
from partnercenter.app import create_app
from partnercenter.clock import Clock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from tests.conftest import _pg_database_url, create_pg_database, drop_pg_database

KEK = "q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM="
# Enough connections that every concurrent request of a race test holds its own.
MANY_CONNECTIONS = {"pool_size": 30, "max_overflow": 40}


@dataclass(frozen=True)
class Live:
    url: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


@contextmanager
def committed_postgres() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database (dropped afterwards); yields its URL."""
    name, admin = create_pg_database()
    url = _pg_database_url(name)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        engine.dispose()
        drop_pg_database(name, admin)


@contextmanager
def committed_database(backend: str, folder: Path, name: str = "live.db") -> Iterator[str]:
    """A fresh, migrated database of the backend (``sqlite`` or ``postgresql``); its URL."""
    if backend == "postgresql":
        with committed_postgres() as url:
            yield url
        return
    url = f"sqlite:///{folder / name}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    yield url


@contextmanager
def committed_pg_engine() -> Iterator[Engine]:
    """An engine on a fresh, migrated PostgreSQL database; the test is skipped without one."""
    import pytest

    from tests.conftest import PG_ENABLED, PG_SKIP_MESSAGE

    if not PG_ENABLED:
        pytest.skip(PG_SKIP_MESSAGE)
    with committed_postgres() as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


@contextmanager
def live_server(
    url: str,
    data_dir: Path,
    clock: Clock,
    *,
    pool: dict[str, int] | None = None,
    **settings: Any,
) -> Iterator[Live]:
    """The whole application under uvicorn on 127.0.0.1 (a free port), in a background thread.

    The engine takes the settings' pool options unless ``pool`` overrides them
    (``MANY_CONNECTIONS`` for race tests); ``settings`` override the test settings.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="live-server-secret-" + "s" * 32,
        key_encryption_key=KEK,
        log_json=False,
        **settings,
    )
    engine = make_engine(url, **(pool or config.engine_options()))
    sessions = make_session_factory(engine)
    app = create_app(config, session_factory=sessions, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", proxy_headers=False
        )
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        yield Live(f"http://127.0.0.1:{port}", config, engine, sessions)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        engine.dispose()


@contextmanager
def live_app(url: str, data_dir: Path, clock: Clock) -> Iterator[Live]:
    """:func:`live_server` with a connection for every concurrent request."""
    with live_server(url, data_dir, clock, pool=MANY_CONNECTIONS) as live:
        yield live

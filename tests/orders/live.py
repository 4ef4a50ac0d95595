"""A real server for concurrency tests: uvicorn on a free port in a thread, against a
throwaway PostgreSQL database whose transactions really commit."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from partnercenter import migrate
from partnercenter.app import create_app
from partnercenter.clock import Clock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory
from tests.conftest import _pg_database_url, create_pg_database, drop_pg_database


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
def live_app(url: str, data_dir: Path, clock: Clock) -> Iterator[Live]:
    """The whole application served by uvicorn on 127.0.0.1, in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="live-orders-secret-" + "s" * 32,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        log_json=False,
    )
    # Enough connections that every concurrent request holds its own.
    engine = make_engine(url, pool_size=30, max_overflow=40)
    sessions = make_session_factory(engine)
    app = create_app(settings, session_factory=sessions, clock=clock)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.05)
        yield Live(f"http://127.0.0.1:{port}", settings, engine, sessions)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        engine.dispose()

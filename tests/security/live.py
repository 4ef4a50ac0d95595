"""A live server for the burst and race tests: the app under uvicorn on a free loopback port,
built the way production builds it (engine options from the settings), against a throwaway
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


@dataclass(frozen=True)
class Live:
    url: str
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]


@contextmanager
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh migrated database (dropped afterwards); yields its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'live.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    name, admin = create_pg_database()
    url = _pg_database_url(name)
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        drop_pg_database(name, admin)


@contextmanager
def live_server(url: str, tmp_path: Path, clock: Clock, **settings: Any) -> Iterator[Live]:
    """The application under uvicorn on 127.0.0.1 (a free port), in a background thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = Settings(
        data_dir=tmp_path,
        database_url=url,
        secret_key="live-security-secret-" + "s" * 32,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        log_json=False,
        **settings,
    )
    engine = make_engine(url, **config.engine_options())
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

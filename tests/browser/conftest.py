"""Browser tests: the real app served by uvicorn on a free port, driven by Debian's Chromium.

One Chromium per test session (Playwright for Python, ``executable_path=/usr/bin/chromium``:
no browser download is possible here); a fresh browser context, so fresh cookies, per test.
The live server runs in a background thread against a freshly migrated database of each
backend (a SQLite file; with CI=true also a throwaway PostgreSQL database, dropped
afterwards), with the demo data loaded exactly as ``partnercenter demo`` loads it.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright
from sqlalchemy import Engine

from partnercenter import demo, migrate
from partnercenter.app import create_app
from partnercenter.cli.main import _extra_demo_loaders
from partnercenter.clock import SystemClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory, unit_of_work
from tests.conftest import PG_MANDATORY, _pg_database_url, create_pg_database, drop_pg_database

CHROMIUM = os.environ.get("PARTNERCENTER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass(frozen=True)
class LiveServer:
    url: str
    backend: str
    settings: Settings
    engine: Engine


def _free_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _load_demo(engine: Engine, settings: Settings) -> None:
    clock = SystemClock()
    with unit_of_work(make_session_factory(engine)) as session:
        demo.ensure_provider(
            session, email=demo.PROVIDER_ADMIN_EMAIL, password=demo.DEMO_PASSWORD, now=clock.now()
        )
        demo.load(session, now=clock.now())
        for loader in _extra_demo_loaders():
            loader(session, now=clock.now(), settings=settings)
        session.commit()


@pytest.fixture(scope="session")
def live_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole application on a real socket, with the demo loaded."""
    data_dir = tmp_path_factory.mktemp(f"live-{backend}")
    pg: tuple[str, object] | None = None
    if backend == "sqlite":
        url = f"sqlite:///{data_dir / 'partnercenter.db'}"
    else:
        name, admin = create_pg_database()
        pg = (name, admin)
        url = _pg_database_url(name)
    sock = _free_socket()
    port = sock.getsockname()[1]
    settings = Settings(
        data_dir=data_dir,
        database_url=url,
        secret_key="live-server-secret-" + "s" * 32,
        key_encryption_key="q4WbEq3n2l2m6gN2mQ3C8rA1r8Yc3n0ZsK1r2a4u5cM=",
        base_url=f"http://127.0.0.1:{port}",
        log_json=False,
    )
    engine = make_engine(url)
    server: uvicorn.Server | None = None
    thread: threading.Thread | None = None
    try:
        migrate.upgrade(engine)
        _load_demo(engine, settings)
        app = create_app(
            settings, session_factory=make_session_factory(engine), clock=SystemClock()
        )
        server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        )
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="live-server", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                pytest.fail("the live server did not start", pytrace=False)
            time.sleep(0.05)
        yield LiveServer(f"http://127.0.0.1:{port}", backend, settings, engine)
    finally:
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout=15)
        sock.close()
        engine.dispose()
        if pg is not None:
            drop_pg_database(pg[0], pg[1])  # type: ignore[arg-type]


# Package scope: Playwright's sync API keeps an event loop running in the main thread, which
# must be gone before tests outside tests/browser call asyncio or anyio themselves.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for the browser tests."""
    if not Path(CHROMIUM).exists():
        message = f"Chromium not found at {CHROMIUM}: run ./scripts/test (it installs chromium)"
        if PG_MANDATORY:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
    yield b
    b.close()


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser profile (no cookies) with the given language."""
    contexts: list[BrowserContext] = []

    def open_(locale: str = "en-US") -> Page:
        ctx = browser.new_context(locale=locale)
        ctx.set_default_timeout(10_000)
        contexts.append(ctx)
        return ctx.new_page()

    yield open_
    report = getattr(request.node, "rep_call", None)
    for n, ctx in enumerate(contexts):
        if report is not None and report.failed:  # keep what the browser showed
            ARTIFACTS.mkdir(exist_ok=True)
            for i, pg in enumerate(ctx.pages):
                pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}-{i}.png"))
        ctx.close()


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":  # type: ignore[attr-defined]
        item.rep_call = report  # type: ignore[attr-defined]
    return report

"""Browser tests: the real app served by uvicorn on a free port, driven by Debian's Chromium.

One Chromium per test session (Playwright for Python, ``executable_path=/usr/bin/chromium``:
no browser download is possible here); a fresh browser context, so fresh cookies, per test.
The live server runs in a background thread against a freshly migrated database of each
backend (a SQLite file; with CI=true also a throwaway PostgreSQL database, dropped
afterwards), with the demo data loaded exactly as ``partnercenter demo`` loads it.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Response,
    expect,
    sync_playwright,
)
from sqlalchemy import Engine

from partnercenter import demo, migrate
from partnercenter.app import create_app
from partnercenter.cli.main import _extra_demo_loaders
from partnercenter.clock import Clock, SystemClock
from partnercenter.config import Settings
from partnercenter.db import make_engine, make_session_factory, unit_of_work
from tests.conftest import PG_MANDATORY, _pg_database_url, create_pg_database, drop_pg_database
from tests.live import Live, committed_database, live_app

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


@contextmanager
def api_client(url: str, email: str) -> Iterator[httpx.Client]:
    """An API client for the server at ``url`` with a bearer token of ``email`` (demo
    password), signed in at the server clock's current time."""
    with httpx.Client(base_url=url, timeout=30) as http:
        token = http.post(
            "/v1/auth/token",
            data={"grant_type": "password", "username": email, "password": demo.DEMO_PASSWORD},
        ).json()["access_token"]
        http.headers["Authorization"] = f"Bearer {token}"
        yield http


def sign_in(page: Page, url: str, email: str, lands_on: str | None = None) -> None:
    """Sign ``email`` in through the form with the demo password; wait until the page has
    left the form, or, with ``lands_on`` (a path such as ``/partner``), is that page."""
    page.goto(url + "/signin")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(demo.DEMO_PASSWORD)
    page.locator("form[action='/signin'] button[type=submit]").click()
    if lands_on is None:
        expect(page).not_to_have_url(re.compile(r"/signin"))
    else:
        expect(page).to_have_url(url + lands_on)


@contextmanager
def demo_live_app(backend: str, folder: Path, clock: Clock) -> Iterator[Live]:
    """The app on a real socket over a fresh committed database of the backend (in ``folder``
    for SQLite), the demo loaded; the test's own clock."""
    with (
        committed_database(backend, folder, "partnercenter.db") as url,
        live_app(url, folder, clock) as live,
    ):
        _load_demo(live.engine, live.settings)
        yield live


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


DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ARTIFACTS / "screenshots"
# axe-core's impacts that fail a test (moderate and minor are reported, not fatal).
FATAL_IMPACTS = ("serious", "critical")
# Pages that are not ours to fix (Swagger UI's own markup) are photographed, not audited.
NOT_AUDITED = ("/docs", "/redoc")


def audit_accessibility(page: Page, where: str = "") -> list[str]:
    """Run axe-core (axe-playwright-python's bundled axe.min.js) on the page as it is now.

    Returns one line per serious or critical violation: rule id, impact, the first nodes.
    """
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    problems = []
    for violation in results.response["violations"]:
        if violation.get("impact") in FATAL_IMPACTS:
            targets = [", ".join(n.get("target", [])) for n in violation["nodes"][:3]]
            problems.append(
                f"{where or page.url}: {violation['id']} ({violation['impact']}): "
                f"{violation['help']} at {targets}"
            )
    return problems


def assert_accessible(page: Page, where: str = "") -> None:
    """Fail on any serious or critical axe-core violation of the page as it is now."""
    problems = audit_accessibility(page, where)
    assert not problems, "Accessibility violations:\n" + "\n".join(problems)


def _slug(text: str, limit: int = 80) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit] or "root"


def snap(page: Page, name: str, *, phone: bool = False) -> None:
    """Photograph the page as it is now (an open dialog, a toast) and audit it with axe-core;
    with ``phone``, also at 390 px, failing if the page is then wider than the phone.

    Saved as ``test-artifacts/screenshots/<test>/states/<name>-<width>.png``.
    """
    test = os.environ.get("PYTEST_CURRENT_TEST", "test").split(" ", 1)[0].rsplit("::", 1)[-1]
    folder = SCREENSHOTS / _slug(test, 120) / "states"
    folder.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size or DESKTOP
    page.screenshot(path=str(folder / f"{_slug(name)}-{size['width']}.png"), full_page=True)
    assert_accessible(page, name)
    if phone:
        page.set_viewport_size(PHONE)
        try:
            shot = folder / f"{_slug(name)}-{PHONE['width']}.png"
            page.screenshot(path=str(shot), full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name}: {width}px wide on a phone"
        finally:
            page.set_viewport_size(size)


class PageVisits:
    """The pages a test's browsers opened (GET, HTML, 200), in order, without repeats."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def watch(self, page: Page) -> None:
        def seen(response: Response) -> None:
            request = response.request
            if (
                request.resource_type == "document"
                and request.method == "GET"
                and response.status == 200
                and request.frame == page.main_frame
                and "text/html" in (response.headers.get("content-type") or "")
            ):
                url = response.url.split("#", 1)[0]
                if "/downloads/" not in url and url not in self.urls:
                    self.urls.append(url)

        page.on("response", seen)


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# Page templates (path with ids replaced) already photographed in every variant this run.
_DONE_IN_FULL: set[str] = set()


def photograph_and_audit(context: BrowserContext, urls: list[str], folder: Path) -> list[str]:
    """Open each URL again in the test's own browser (same cookies): a full-page screenshot
    and axe-core in English at 1366x900; the first time a page (its path with ids replaced)
    is seen in the run, also in Spanish and both languages at 390 px.

    Returns the problems found: serious or critical accessibility violations, and pages
    wider than the window. Reopening is a GET, so a key that was shown once is not shown
    again (the page says so instead).
    """
    problems: list[str] = []
    folder.mkdir(parents=True, exist_ok=True)
    page = context.new_page()
    original = context.cookies()
    language = next((c for c in original if c["name"] == "pc_lang"), None)
    try:
        for n, url in enumerate(urls):
            parsed = urlsplit(url)
            name = f"{n:02d}-{_slug(parsed.path + ('-' + parsed.query if parsed.query else ''))}"
            template = f"{parsed.netloc}{_UUID.sub('{id}', parsed.path)}"
            full = template not in _DONE_IN_FULL
            _DONE_IN_FULL.add(template)
            variants = [
                (lang, label, size)
                for lang in ("en", "es")
                for label, size in (("desktop", DESKTOP), ("phone", PHONE))
                if full or (lang, label) == ("en", "desktop")
            ]
            for lang, label, size in variants:
                context.add_cookies(
                    [{"name": "pc_lang", "value": lang, "domain": parsed.hostname, "path": "/"}]
                )
                page.set_viewport_size(size)
                response = page.goto(url)
                if response is None or response.status != 200:
                    break
                page.screenshot(path=str(folder / f"{name}-{lang}-{label}.png"), full_page=True)
                if parsed.path in NOT_AUDITED:
                    continue
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > size["width"]:
                    problems.append(f"{url} ({lang}, {label}): page is {width}px wide")
                if label == "desktop":
                    # At desktop width every column is in view: no table scrolls sideways
                    # inside its frame (at phone width they may).
                    cut = page.evaluate(
                        "[...document.querySelectorAll('.table-wrap')]"
                        ".filter(f => f.scrollWidth > f.clientWidth + 1)"
                        ".map(f => f.getAttribute('aria-label') || 'table')"
                    )
                    if cut:
                        problems.append(f"{url} ({lang}, desktop): tables cut off: {cut}")
                    problems += audit_accessibility(page, f"{url} ({lang})")
    finally:
        page.close()
        context.clear_cookies(name="pc_lang")
        if language is not None:
            context.add_cookies([language])  # type: ignore[list-item]
    return problems


def _backend_of(request: pytest.FixtureRequest) -> str:
    """The database the test runs on. Pages are the same templates on both, so they are
    photographed and audited once, on SQLite, which keeps CI's time bounded."""
    callspec = getattr(request.node, "callspec", None)
    return str(callspec.params.get("backend", "sqlite")) if callspec else "sqlite"


@pytest.fixture
def open_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Callable[..., Page]]:
    """Open a page in a fresh browser profile (no cookies) with the given language, 1366x900.

    At the end of the test every page the test's browsers opened is photographed under
    ``test-artifacts/screenshots/<test>/`` and audited with axe-core (see
    :func:`photograph_and_audit`): a serious or critical violation, or a page wider than
    the window, fails the test.
    """
    contexts: list[tuple[BrowserContext, PageVisits]] = []

    def open_(locale: str = "en-US") -> Page:
        ctx = browser.new_context(locale=locale, viewport=DESKTOP)
        ctx.set_default_timeout(10_000)
        visits = PageVisits()
        contexts.append((ctx, visits))
        page = ctx.new_page()
        visits.watch(page)
        return page

    yield open_
    report = getattr(request.node, "rep_call", None)
    problems: list[str] = []
    for n, (ctx, visits) in enumerate(contexts):
        if report is not None and report.failed:  # keep what the browser showed
            ARTIFACTS.mkdir(exist_ok=True)
            for i, pg in enumerate(ctx.pages):
                pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{n}-{i}.png"))
        elif report is not None and _backend_of(request) == "sqlite":
            folder = SCREENSHOTS / _slug(request.node.name, 120) / f"browser{n}"
            started = time.monotonic()
            problems += photograph_and_audit(ctx, visits.urls, folder)
            with (SCREENSHOTS / "timing.tsv").open("a") as out:  # what the photographs cost
                spent = time.monotonic() - started
                out.write(f"{request.node.name}\t{len(visits.urls)}\t{spent:.1f}\n")
        ctx.close()
    assert not problems, "Pages with problems:\n" + "\n".join(problems)


@pytest.fixture
def page(open_page: Callable[..., Page]) -> Page:
    return open_page()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if report.when == "call":  # type: ignore[attr-defined]
        item.rep_call = report  # type: ignore[attr-defined]
    return report

"""The portals' frame around every page: error pages inside the layout, sign-in that returns
to the page after a session expires, the settings (gear) menu, and offline API docs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.orm import Session

from partnercenter.identity.models import WebSession
from partnercenter.identity.views import _safe_next
from partnercenter.permissions import Role
from tests.customers.web import csrf_of, sign_in
from tests.factories import PASSWORD, Factory
from tests.web import sign_in as sign_in_with


def _expire_sessions(session: Session) -> None:
    """Every browser session ends (long ago, by any clock)."""
    session.execute(update(WebSession).values(expires_at=datetime(2000, 1, 1, tzinfo=UTC)))
    session.commit()


def test_error_page_of_a_signed_in_user_keeps_the_layout_menu_and_language(
    client: TestClient, session: Session, factory: Factory
) -> None:
    partner = factory.partner()
    agent = factory.user(partner, Role.ADMIN_AGENT)
    foreign = factory.customer(factory.partner())
    sign_in(client, session, agent)
    client.cookies.set("pc_lang", "es")
    r = client.get(f"/partner/customers/{foreign.id}", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert '<nav class="sidenav"' in r.text  # the portal's menu
    assert 'href="/static/app.css"' in r.text
    assert '<html lang="es-ES">' in r.text and "No encontrado" in r.text
    assert 'data-testid="signed-in-user"' in r.text


def test_error_page_for_a_form_without_its_token_keeps_the_layout(
    client: TestClient, session: Session, factory: Factory
) -> None:
    agent = factory.user(factory.partner(), Role.ADMIN_AGENT)
    sign_in(client, session, agent)
    r = client.post("/partner/customers", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert '<nav class="sidenav"' in r.text and 'data-testid="settings-menu"' in r.text


def test_a_get_after_the_session_expired_returns_to_the_same_page(
    client: TestClient, session: Session, factory: Factory
) -> None:
    agent = factory.user(factory.partner(), Role.ADMIN_AGENT)
    sign_in(client, session, agent)
    _expire_sessions(session)
    r = client.get("/partner/customers?q=contoso", follow_redirects=False)
    assert r.status_code == 303
    nxt = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]
    assert nxt == "/partner/customers?q=contoso"
    form = client.get(r.headers["location"])
    assert 'name="next" value="/partner/customers?q=contoso"' in form.text
    back = client.post(
        "/signin",
        data={"email": agent.email, "password": PASSWORD, "next": nxt}
        | {"csrf_token": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert back.status_code == 303, back.text
    assert back.headers["location"] == "/partner/customers?q=contoso"


def test_a_post_after_the_session_expired_returns_to_the_form_page_not_a_405(
    client: TestClient, session: Session, factory: Factory
) -> None:
    agent = factory.user(factory.partner(), Role.ADMIN_AGENT)
    customer = factory.customer(agent.tenant)
    sign_in(client, session, agent)
    page = f"/partner/customers/{customer.id}/software"
    token = csrf_of(client.get(page).text)
    _expire_sessions(session)
    host = "testserver"
    r = client.post(
        f"/partner/customers/{customer.id}/cancel",
        data={"csrf_token": token},
        headers={"Referer": f"http://{host}{page}?item=x"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    nxt = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]
    assert nxt == f"{page}?item=x"
    # A Referer from another site is not followed: the portal's home instead.
    r = client.post(
        f"/partner/customers/{customer.id}/cancel",
        data={"csrf_token": token},
        headers={"Referer": f"https://evil.example{page}"},
        follow_redirects=False,
    )
    assert parse_qs(urlsplit(r.headers["location"]).query)["next"][0] == "/partner"
    # Signing in again lands on a page (GET), never "Method Not Allowed".
    signed = sign_in_with(client, agent.email, PASSWORD)
    assert signed.status_code == 303


def test_next_never_leaves_the_site() -> None:
    for bad in (
        "https://evil.example/",
        "//evil.example/",
        "/\\evil.example",
        "/ok\r\nSet-Cookie: x=1",
        "javascript:alert(1)",
        "",
        None,
        "/" + "a" * 2001,
    ):
        assert _safe_next(bad) is None, bad
    assert _safe_next("/partner/customers?q=a%20b") == "/partner/customers?q=a%20b"


def test_activity_log_is_in_the_gear_menu_and_the_side_menu(
    client: TestClient, session: Session, factory: Factory
) -> None:
    agent = factory.user(factory.partner(), Role.GLOBAL_ADMIN)
    sign_in(client, session, agent)
    page = client.get("/partner").text
    menu = re.search(r'data-testid="settings-menu".*?</details>', page, re.S)
    assert menu and 'href="/partner/activity-log"' in menu.group(0)
    assert page.count('href="/partner/activity-log"') == 2


def test_api_docs_are_served_without_any_cdn(client: TestClient) -> None:
    docs = client.get("/docs")
    assert docs.status_code == 200
    urls = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert "cdn" not in docs.text.lower()


def test_an_unknown_address_in_a_portal_keeps_the_signed_in_layout(
    client: TestClient, session: Session, factory: Factory
) -> None:
    agent = factory.user(factory.partner(), Role.ADMIN_AGENT)
    sign_in(client, session, agent)
    r = client.get("/partner/no-such-page", headers={"Accept": "text/html"})
    assert r.status_code == 404
    assert '<nav class="sidenav"' in r.text and 'data-testid="signed-in-user"' in r.text

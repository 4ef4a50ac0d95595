"""Signing in through the real page in Chromium, as demo users of each portal."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from partnercenter import demo
from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser


def _sign_in(
    page: Page, server: LiveServer, email: str, password: str = demo.DEMO_PASSWORD
) -> None:
    page.goto(server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(password)
    page.locator("form[action='/signin'] button[type=submit]").click()


def test_admin_agent_signs_in_and_sees_the_partner_portal(
    page: Page, live_server: LiveServer
) -> None:
    _sign_in(page, live_server, "admin.agent@fabrikam.example")
    expect(page).to_have_url(live_server.url + "/partner")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text(
        "Admin agent (Fabrikam Cloud Reseller)"
    )
    expect(page.locator("h1")).to_have_text("Partner Center")
    expect(page.get_by_test_id("roles")).to_have_text("Admin agent")
    menu = page.locator("nav.sidenav")
    expect(menu.get_by_role("link", name="Customers")).to_be_visible()
    expect(menu.get_by_role("link", name="User management")).to_have_count(0)
    expect(menu.get_by_role("link", name="Activity log")).to_have_count(0)  # seed: not Admin agent
    # Signing out ends the session: the portal sends the browser back to the sign-in page.
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto(live_server.url + "/partner")
    expect(page).to_have_url(re.compile(r"/signin\?next=/partner$"))


def test_wrong_password_and_unknown_user_show_the_same_generic_error(
    page: Page, live_server: LiveServer
) -> None:
    _sign_in(page, live_server, "global.admin@tailspin.example", "not-the-password")
    expect(page.get_by_test_id("signin-error")).to_have_text("The email or password is incorrect.")
    expect(page.locator("input[name=email]")).to_have_value("global.admin@tailspin.example")
    _sign_in(page, live_server, "nobody@tailspin.example", "not-the-password")
    expect(page.get_by_test_id("signin-error")).to_have_text("The email or password is incorrect.")
    expect(page.get_by_test_id("signed-in-user")).to_have_count(0)


def test_customer_global_admin_lands_in_the_admin_center(
    page: Page, live_server: LiveServer
) -> None:
    _sign_in(page, live_server, "global.admin@contoso.example")
    expect(page).to_have_url(live_server.url + "/admin")
    expect(page.locator("h1")).to_have_text("Admin Center")
    expect(page.get_by_test_id("signed-in-user")).to_contain_text("Contoso Ltd")
    # A customer's user is refused the partner portal.
    response = page.goto(live_server.url + "/partner")
    assert response is not None and response.status == 403


def test_provider_admin_lands_in_the_console_and_creates_a_partner(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    page = open_page()
    _sign_in(page, live_server, demo.PROVIDER_ADMIN_EMAIL)
    expect(page).to_have_url(live_server.url + "/provider")
    expect(page.locator("h1")).to_have_text("Provider console")
    page.locator("nav.sidenav").get_by_role("link", name="Partners").click()
    expect(page).to_have_url(live_server.url + "/provider/partners")
    suffix = live_server.backend
    page.locator("input[name=company_name]").fill(f"Adventure Works {suffix}")
    page.locator("select[name=country]").select_option("NZ")
    page.locator("input[name=admin_email]").fill(f"ga.{suffix}@adventure-works.example")
    page.locator("input[name=admin_name]").fill("Ada Works")
    page.locator("input[name=admin_password]").fill("adventure-password-1")
    page.get_by_role("button", name="Create partner").click()
    expect(page.get_by_test_id("flash")).to_have_text("Created.")
    expect(page.get_by_test_id("partners")).to_contain_text(f"Adventure Works {suffix}")
    # The new partner's Global admin signs in in another browser profile.
    other = open_page()
    _sign_in(other, live_server, f"ga.{suffix}@adventure-works.example", "adventure-password-1")
    expect(other).to_have_url(live_server.url + "/partner")
    expect(other.get_by_test_id("signed-in-user")).to_contain_text(
        f"Ada Works · Adventure Works {suffix}"
    )
    expect(other.locator("nav.sidenav").get_by_role("link", name="User management")).to_be_visible()


def test_language_switch_to_spanish(page: Page, live_server: LiveServer) -> None:
    page.goto(live_server.url + "/signin")
    expect(page.locator("h1")).to_have_text("Sign in")
    page.locator("#lang-switch").select_option("es")  # submits the form (app.js)
    expect(page.locator("h1")).to_have_text("Iniciar sesión")
    expect(page.locator("html")).to_have_attribute("lang", "es-ES")
    _sign_in(page, live_server, "global.admin@fabrikam.example")
    expect(page.locator("h1")).to_have_text("Centro de partners")
    expect(page.get_by_test_id("roles")).to_have_text("Administrador global")
    expect(page.locator("nav.sidenav")).to_contain_text("Administración de usuarios")
    page.locator("#lang-switch").select_option("en")
    expect(page.locator("h1")).to_have_text("Partner Center")


def test_a_spanish_browser_gets_spanish_pages(
    open_page: Callable[..., Page], live_server: LiveServer
) -> None:
    page = open_page("es-ES")
    page.goto(live_server.url + "/signin")
    expect(page.locator("h1")).to_have_text("Iniciar sesión")
    expect(page.get_by_role("button", name="Iniciar sesión")).to_be_visible()

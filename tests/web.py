"""Helpers for tests that drive the HTML pages the way a browser does (forms, cookies, CSRF)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from httpx import Response

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a csrf_token"
    return found.group(1)


def page_csrf(client: TestClient, path: str = "/signin") -> str:
    r = client.get(path)
    assert r.status_code == 200, (path, r.status_code)
    return csrf_of(r.text)


def sign_in(client: TestClient, email: str, password: str, **headers: str) -> Response:
    """Sign in through the page: fetch the form, post it back with its token."""
    token = page_csrf(client)
    return client.post(
        "/signin",
        data={"email": email, "password": password, "csrf_token": token, "next": ""},
        headers=headers,
        follow_redirects=False,
    )

"""HEAD wherever GET downloads: the API download and a copied link answer headers only.

A HEAD makes every check a download makes (sign-in, role, tenant, cancellation, the link's
signature and expiry) and answers the same headers without a body; it writes no activity
log record and does not count as a use of a copied link, since no byte was sent.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from tests.licensing.conftest import Purchase, Software
from tests.licensing.test_software_api import FILE, count, make_link

Headers = Callable[..., dict[str, str]]


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


def test_head_on_the_api_download_answers_its_headers_without_a_body(
    client: TestClient,
    session: Session,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    data = software.files[("2024", "en-US", "x64")]
    headers = auth_headers(purchase.agent)
    got = client.get(purchase.url("/download"), params=FILE, headers=headers)
    head = client.head(purchase.url("/download"), params=FILE, headers=headers)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    for name in ("etag", "accept-ranges", "content-type", "x-checksum-sha256"):
        assert head.headers[name] == got.headers[name], name
    assert head.headers["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    assert count(session, "download_software") == 1  # the GET's only


def test_head_makes_the_same_checks_as_get(
    client: TestClient, purchase: Purchase, auth_headers: Headers
) -> None:
    assert client.head(purchase.url("/download"), params=FILE).status_code == 401
    missing = client.head(
        purchase.url("/download"),
        params={"version": "2021", "language": "es-ES", "bitness": "x86"},
        headers=auth_headers(purchase.agent),
    )
    assert missing.status_code == 400
    assert missing.content == b""


def test_head_on_a_copied_link_answers_headers_and_does_not_use_it(
    client: TestClient,
    session: Session,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
    clock: FrozenClock,
) -> None:
    data = software.files[("2024", "en-US", "x64")]
    link = make_link(client, purchase, auth_headers(purchase.agent), expiresInMinutes=1)
    path = link["uri"].split("8000", 1)[1]
    anonymous = TestClient(client.app)
    head = anonymous.head(path)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["content-length"] == str(len(data))
    assert head.headers["accept-ranges"] == "bytes"
    assert head.headers["etag"]
    assert head.headers["content-type"]
    assert count(session, "download_software") == 0
    clock.advance(minutes=2)
    expired = anonymous.head(path)
    assert expired.status_code == 410
    assert expired.content == b""
    assert anonymous.head(path.replace(".", "x", 1)).status_code == 403

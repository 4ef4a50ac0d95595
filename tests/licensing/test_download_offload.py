"""Downloads handed to a front proxy (X-Accel-Redirect, X-Sendfile) or redirected to S3."""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio.to_thread
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from partnercenter.audit.models import AuditRecord
from partnercenter.config import Settings
from partnercenter.downloads import file_response
from partnercenter.permissions import Role
from partnercenter.storage import LocalStorage, S3Storage, Storage
from tests.licensing.conftest import Purchase, Software

FILE = {"version": "2024", "language": "en-US", "bitness": "x64"}
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def purchase(software: Software) -> Purchase:
    return software.purchase()


def _downloads(session: Session) -> list[AuditRecord]:
    return list(
        session.execute(
            select(AuditRecord).where(AuditRecord.operation_type == "download_software")
        ).scalars()
    )


def test_x_accel_redirect_hands_the_file_to_nginx_after_the_checks_and_the_audit(
    client: TestClient,
    session: Session,
    settings: Settings,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    settings.download_offload = "x-accel-redirect"
    data = software.files[("2024", "en-US", "x64")]
    headers = auth_headers(purchase.agent)
    r = client.get(purchase.url("/download"), params=FILE, headers=headers)
    assert r.status_code == 200
    assert r.content == b""
    target = r.headers["x-accel-redirect"]
    assert target.startswith("/_stored/")
    stored = settings.data_dir / "storage" / target.removeprefix("/_stored/")
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert r.headers["x-checksum-sha256"] == hashlib.sha256(data).hexdigest()
    assert "WindowsServer_2024_en-US_x64.iso" in r.headers["content-disposition"]
    # A Range is nginx's to answer: the application hands off the same way.
    ranged = client.get(
        purchase.url("/download"), params=FILE, headers={**headers, "Range": "bytes=0-9"}
    )
    assert ranged.status_code == 200 and ranged.headers["x-accel-redirect"] == target
    assert len(_downloads(session)) == 2
    # The checks still come first: another partner's agent gets 404 and no hand-off.
    stranger = software.factory.user(software.factory.partner("Elsewhere"), Role.ADMIN_AGENT)
    refused = client.get(purchase.url("/download"), params=FILE, headers=auth_headers(stranger))
    assert refused.status_code == 404
    assert "x-accel-redirect" not in refused.headers
    assert len(_downloads(session)) == 2


def test_x_sendfile_names_the_stored_file(
    client: TestClient,
    settings: Settings,
    software: Software,
    purchase: Purchase,
    auth_headers: Headers,
) -> None:
    settings.download_offload = "x-sendfile"
    data = software.files[("2024", "en-US", "x64")]
    r = client.get(purchase.url("/download"), params=FILE, headers=auth_headers(purchase.agent))
    assert r.status_code == 200 and r.content == b""
    with open(r.headers["x-sendfile"], "rb") as f:
        assert f.read() == data


def _app(settings: Settings, storage: Storage) -> Starlette:
    async def download(request: Request) -> Response:
        obj = await anyio.to_thread.run_sync(storage.stat, request.path_params["key"])
        return file_response(settings, storage, obj, filename="setup.iso")

    return Starlette(routes=[Route("/files/{key:path}", download, methods=["GET", "HEAD"])])


def test_s3_download_redirects_to_a_short_presigned_url(
    s3_storage: S3Storage, settings: Settings
) -> None:
    data = b"z" * 70_000
    s3_storage.put("products/setup.iso", io.BytesIO(data))
    settings.download_redirect_seconds = 60
    client = TestClient(_app(settings, s3_storage))
    r = client.get("/files/products/setup.iso", follow_redirects=False)
    assert r.status_code == 302
    location = r.headers["location"]
    query = parse_qs(urlsplit(location).query)
    if "X-Amz-Expires" in query:  # signature version 4
        assert query["X-Amz-Expires"] == ["60"]
    else:  # version 2: an absolute expiry
        assert 0 < int(query["Expires"][0]) - time.time() <= 61
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and fetched.content == data
    assert "setup.iso" in fetched.headers["content-disposition"]
    # Range works against the store itself.
    part = httpx.get(location, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]


def test_without_a_setting_the_application_sends_the_file_itself(
    s3_storage: S3Storage, local_storage: LocalStorage, settings: Settings
) -> None:
    for storage in (s3_storage, local_storage):
        storage.put("f.bin", io.BytesIO(b"q" * 5000))
        client = TestClient(_app(settings, storage))
        r = client.get("/files/f.bin")
        assert r.status_code == 200 and r.content == b"q" * 5000
        head = client.head("/files/f.bin")
        assert head.status_code == 200 and head.headers["content-length"] == "5000"
    # An offload setting leaves S3 files to the application (or its redirect).
    settings.download_offload = "x-accel-redirect"
    r = TestClient(_app(settings, s3_storage)).get("/files/f.bin")
    assert r.content == b"q" * 5000 and "x-accel-redirect" not in r.headers


def test_head_with_an_offload_answers_the_headers(
    local_storage: LocalStorage, settings: Settings
) -> None:
    local_storage.put("f.bin", io.BytesIO(b"h" * 321))
    settings.download_offload = "x-accel-redirect"
    head: Any = TestClient(_app(settings, local_storage)).head("/files/f.bin")
    assert head.status_code == 200
    assert head.headers["content-length"] == "321"

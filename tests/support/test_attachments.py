"""Attachments: allowed types recognised by content, disguised and oversized files refused,
at most five per request, stored in the file store and served back unchanged."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.support.files import MAX_FILE_BYTES
from partnercenter.support.models import SupportAttachment
from tests.support.conftest import Desk, refund_body

PDF = b"%PDF-1.7\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 17
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 20
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 50


def a_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("invoice.csv", "a,b\n1,2\n")
    return buf.getvalue()


def new_request(client: TestClient, desk: Desk) -> str:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def upload(
    client: TestClient, desk: Desk, rid: str, *files: tuple[str, bytes], who: str = "admin_agent"
) -> Any:
    return client.post(
        f"/v1/servicerequests/{rid}/attachments",
        files=[("files", (name, content, "application/octet-stream")) for name, content in files],
        headers=desk.h(who),
    )


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [
        ("statement.pdf", PDF, "application/pdf"),
        ("screen.png", PNG, "image/png"),
        ("photo.JPG", JPEG, "image/jpeg"),
        ("notes.txt", "Café, résumé, 5 €\n".encode(), "text/plain"),
        ("lines.csv", b"sku,amount\nA,1.00\n", "text/csv"),
        ("bundle.zip", a_zip(), "application/zip"),
    ],
)
def test_allowed_types_are_stored_and_served_back(
    client: TestClient, desk: Desk, name: str, content: bytes, content_type: str
) -> None:
    rid = new_request(client, desk)
    r = upload(client, desk, rid, (name, content))
    assert r.status_code == 201, r.text
    [link] = r.json()["items"]
    assert link["contentType"] == content_type
    assert link["size"] == len(content)
    got = client.get(link["uri"], headers=desk.h("support"))
    assert got.status_code == 200
    assert got.content == content
    assert got.headers["content-type"].startswith(content_type)
    assert got.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("invoice.pdf", EXE, "does not match"),
        ("invoice.pdf", PNG, "image/png"),
        ("screen.png", PDF, "application/pdf"),
        ("notes.txt", EXE, "does not match"),
        ("tool.exe", EXE, "only"),
        ("page.html", b"<html><script>alert(1)</script></html>", "only"),
        ("noextension", PDF, "only"),
        ("empty.pdf", b"", "empty"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "does not match"),
    ],
)
def test_disguised_or_unknown_files_are_refused(
    client: TestClient, desk: Desk, session: Session, name: str, content: bytes, words: str
) -> None:
    rid = new_request(client, desk)
    r = upload(client, desk, rid, (name, content))
    assert r.status_code == 415, r.text
    assert r.json()["code"] == 17007
    assert words in r.json()["description"]
    assert session.execute(select(SupportAttachment)).first() is None


def test_a_file_over_10_mib_is_refused_and_one_at_the_limit_is_kept(
    client: TestClient, desk: Desk
) -> None:
    rid = new_request(client, desk)
    too_big = b"%PDF-1.7\n" + b"0" * (MAX_FILE_BYTES - 8)
    assert len(too_big) == MAX_FILE_BYTES + 1
    r = upload(client, desk, rid, ("big.pdf", too_big))
    assert r.status_code == 413
    assert r.json()["code"] == 17006
    r = upload(client, desk, rid, ("limit.pdf", too_big[:MAX_FILE_BYTES]))
    assert r.status_code == 201
    assert r.json()["items"][0]["size"] == MAX_FILE_BYTES


def test_at_most_five_files_per_request(client: TestClient, desk: Desk, session: Session) -> None:
    rid = new_request(client, desk)
    assert upload(client, desk, rid, *[(f"p{i}.pdf", PDF) for i in range(3)]).status_code == 201
    r = upload(client, desk, rid, *[(f"q{i}.pdf", PDF) for i in range(3)])
    assert r.status_code == 400
    assert r.json()["code"] == 17008
    assert upload(client, desk, rid, ("q.pdf", PDF), ("r.pdf", PDF)).status_code == 201
    assert upload(client, desk, rid, ("s.pdf", PDF)).status_code == 400
    r = client.get(f"/v1/servicerequests/{rid}", headers=desk.h("admin_agent"))
    assert len(r.json()["fileLinks"]) == 5


def test_one_bad_file_stores_none_of_the_batch(
    client: TestClient, desk: Desk, session: Session
) -> None:
    rid = new_request(client, desk)
    r = upload(client, desk, rid, ("ok.pdf", PDF), ("bad.pdf", EXE))
    assert r.status_code == 415
    assert session.execute(select(SupportAttachment)).first() is None


def test_files_of_another_partner_are_not_found(client: TestClient, desk: Desk) -> None:
    rid = new_request(client, desk)
    [link] = upload(client, desk, rid, ("s.pdf", PDF)).json()["items"]
    assert client.get(link["uri"], headers=desk.h("other_agent")).status_code == 404
    assert upload(client, desk, rid, ("t.pdf", PDF), who="other_agent").status_code == 404
    assert client.get(link["uri"], headers=desk.h("helpdesk")).status_code == 200
    missing = link["uri"].rsplit("/", 1)[0] + "/00000000-0000-4000-8000-000000000000"
    assert client.get(missing, headers=desk.h("admin_agent")).status_code == 404


def test_file_names_lose_folders_and_odd_characters(client: TestClient, desk: Desk) -> None:
    rid = new_request(client, desk)
    r = upload(client, desk, rid, ("../../etc/pass wd<x>.pdf", PDF))
    assert r.status_code == 201
    assert r.json()["items"][0]["fileName"] == "pass wd_x_.pdf"

"""Pages answer with pages, the API with JSON, whatever a generic client accepts."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("accept", ["*/*", "", "text/html"])
def test_a_page_asked_for_signed_out_redirects_to_sign_in(client: TestClient, accept: str) -> None:
    r = client.get("/partner", headers={"Accept": accept}, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/signin?next=")


def test_a_page_asked_for_as_json_gets_the_error_body(client: TestClient) -> None:
    r = client.get("/partner", headers={"Accept": "application/json"}, follow_redirects=False)
    assert r.status_code == 401
    assert r.json()["code"] == 10401


@pytest.mark.parametrize("accept", ["*/*", "text/html"])
def test_the_api_always_answers_json(client: TestClient, accept: str) -> None:
    r = client.get("/v1/users/me", headers={"Accept": accept})
    assert r.status_code == 401
    assert r.json()["code"] == 10401

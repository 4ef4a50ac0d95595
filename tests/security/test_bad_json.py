"""A body that is not JSON, or no body at all, gets a 400 that says so and where."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.identity.models import User
from tests.factories import Factory, token_for

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def bearer(client: TestClient, factory: Factory, session: Session) -> dict[str, str]:
    admin: User = factory.provider_admin()
    session.commit()
    return {"Authorization": f"Bearer {token_for(client, admin)}", **JSON}


def _python_says(text: str) -> json.JSONDecodeError:
    """What Python's own parser reports for ``text`` (the expected line, column, position)."""
    with pytest.raises(json.JSONDecodeError) as caught:
        json.loads(text)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        '{"companyName": "Fabrikam", "country": "US"',  # never closed
        '{"companyName": "Fabrikam",\n  "country": US}',  # a bare word on line 2
        "{'companyName': 'Fabrikam'}",  # single quotes
        '{"companyName": "Fabrikam",}',  # a trailing comma
        "not json at all",
    ],
)
def test_malformed_json_says_it_is_not_json_and_where(
    client: TestClient, bearer: dict[str, str], text: str
) -> None:
    expected = _python_says(text)
    r = client.post("/v1/partners", content=text.encode(), headers=bearer)
    assert r.status_code == 400
    body = r.json()
    assert body["errorName"] == "invalid_input" and body["code"] == 10010
    assert body["source"] == "body"
    assert body["description"] == (
        f"The request body is not valid JSON: {expected.msg} at line {expected.lineno}, "
        f"column {expected.colno} (character {expected.pos})."
    )
    assert "JSON decode error" not in body["description"]
    where = body["data"][0]
    assert (where["field"], where["line"], where["column"], where["position"]) == (
        "body",
        expected.lineno,
        expected.colno,
        expected.pos,
    )


def test_the_position_counts_characters_not_bytes(
    client: TestClient, bearer: dict[str, str]
) -> None:
    text = '{"companyName": "Café München", "country": "DE" "x": 1}'
    expected = _python_says(text)
    r = client.post("/v1/partners", content=text.encode("utf-8"), headers=bearer)
    assert r.status_code == 400
    assert r.json()["data"][0]["position"] == expected.pos == text.index('"x"')
    assert r.json()["data"][0]["column"] == expected.colno


def test_a_missing_body_says_the_body_is_missing(
    client: TestClient, bearer: dict[str, str]
) -> None:
    r = client.post("/v1/partners", headers=bearer)
    assert r.status_code == 400
    assert r.json()["description"] == (
        "The request body is missing: this operation takes a JSON body."
    )
    assert r.json()["source"] == "body"


def test_a_field_error_still_names_the_field(client: TestClient, bearer: dict[str, str]) -> None:
    r = client.post("/v1/partners", content=b'{"country": "US"}', headers=bearer)
    assert r.status_code == 400
    assert r.json()["description"] == "Invalid input: companyName: Field required"
    assert r.json()["data"] == [{"field": "companyName", "message": "Field required"}]

"""The OpenAPI document lists the statuses the API answers, each error with our error body."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from partnercenter.openapi import ERROR_SCHEMA_NAME

ERROR_REF = f"#/components/schemas/{ERROR_SCHEMA_NAME}"


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in doc["paths"].items()
        for method, operation in operations.items()
    ]


def test_no_operation_documents_422_since_invalid_input_answers_400(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert [f"{m} {p}" for m, p, op in _operations(doc) if "422" in op["responses"]] == []
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    answer = client.get("/v1/servicerequests", params={"size": "many"})
    assert answer.status_code in {400, 401}


def test_every_error_response_carries_the_error_body(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    body = doc["components"]["schemas"][ERROR_SCHEMA_NAME]
    assert set(body["required"]) == {"code", "description", "data", "source"}
    for method, path, operation in _operations(doc):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                content = response["content"]
                if path.startswith("/v1"):
                    assert content["application/json"]["schema"] == {"$ref": ERROR_REF}, (
                        f"{method} {path} {status}"
                    )
                else:
                    assert content, f"{method} {path} {status}"


def test_statuses_follow_what_each_route_depends_on(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    responses = {f"{m} {p}": set(op["responses"]) for m, p, op in _operations(doc)}
    # Signed in, ids in the path, a body: 400, 401, 403, 404, 413 on top of the route's own.
    assert {"200", "400", "401", "403", "404", "413"} <= responses[
        "POST /v1/customers/{customer_id}/software/{item_id}/key"
    ]
    # The route's own statuses stay: a cart can be taken (409) or expired (410).
    assert {"409", "410"} <= responses["POST /v1/customers/{customer_id}/carts/{cart_id}/checkout"]
    assert {"401", "403"} <= responses["GET /v1/users/me"]
    assert "404" not in responses["GET /v1/users/me"]
    # A copied link needs no sign-in; its refusals are pages.
    link = doc["paths"]["/downloads/{token}"]["get"]["responses"]
    assert "401" not in link
    assert set(link["410"]["content"]) == {"text/html"}
    assert "503" in responses["GET /readyz"]


def test_the_document_answers_as_it_says_for_a_refusal(app: FastAPI, client: TestClient) -> None:
    """A real 401 and 404 have the documented body."""
    unauthenticated = client.get("/v1/users/me")
    assert unauthenticated.status_code == 401
    assert set(unauthenticated.json()) >= {"code", "description", "data", "source"}
    missing = client.get("/v1/nowhere")
    assert missing.status_code == 404
    assert set(missing.json()) >= {"code", "description", "data", "source"}

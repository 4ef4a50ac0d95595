"""``/docs`` names, for every /v1 operation, the Partner Center operation it mirrors."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from partnercenter.compat import MIRRORS


def test_every_api_operation_names_its_partner_center_counterpart(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    missing = []
    seen = set()
    for path, operations in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in operations.items():
            seen.add((method.upper(), path))
            if "x-partner-center" not in operation:
                missing.append(f"{method.upper()} {path}")
                continue
            mirrors = operation["x-partner-center"]
            first = operation["description"].splitlines()[0]
            assert (mirrors or "Extension") in first, (path, first)
    assert not missing, "Operations without x-partner-center (add them to compat.MIRRORS):\n" + (
        "\n".join(missing)
    )
    assert ("POST", "/v1/servicerequests/{agent_locale}") in seen
    # Every entry of the table is a real operation (none left behind by a removed route).
    assert {k for k in MIRRORS if k != ("GET", "/v1/sandbox/clock")} - seen <= {
        ("POST", "/v1/sandbox/clock")
    }


def test_docs_page_is_served(app: FastAPI, client: TestClient) -> None:
    assert client.get("/docs").status_code == 200

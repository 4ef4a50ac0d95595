"""Microsoft's documented request and response examples, replayed against the application.

Each file in ``documented/`` holds examples written from Partner Center's REST reference
(learn.microsoft.com, partner-center/developer), with our ids in place of Microsoft's:
the request as documented (PascalCase where the page uses it) and the documented response.
Every example is sent in order through the real app; the answer must have the documented
status, error code, and every documented field with the same name, nesting and JSON type.
A documented field we deliberately answer differently is listed in the example's
``differences`` with its reason, and each of those must appear in
``docs/dev/compatibility.md``. The report (operations, fields, pass or deliberate
difference) is printed at the end of the run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.clock import FrozenClock
from partnercenter.config import Settings
from partnercenter.identity.models import User
from partnercenter.permissions import Role
from tests.compat.conftest import Outcome, Report
from tests.factories import Factory
from tests.orders import catalog_data

HERE = Path(__file__).parent
EXAMPLES = sorted((HERE / "documented").glob("*.json"))
COMPATIBILITY_DOC = HERE.parents[1] / "docs" / "dev" / "compatibility.md"
PLACEHOLDER = re.compile(r"\{([A-Za-z]+)\}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def compare(
    documented: Any, actual: Any, path: str, skip: dict[str, str], problems: list[str]
) -> int:
    """Check ``actual`` has every documented field, nested alike, with the same JSON type.

    Returns how many documented fields were compared; a field listed in ``skip`` (a
    deliberate difference) is neither compared nor counted. ``null`` in the documentation
    matches any type, and ``null`` in an answer stands for an optional value not set.
    """
    if path in skip:
        return 0
    if documented is None or actual is None:
        return 0
    want, got = _json_type(documented), _json_type(actual)
    if want != got:
        problems.append(f"{path or '(body)'}: documented {want}, answered {got} ({actual!r:.60})")
        return 0
    count = 0
    if isinstance(documented, dict):
        for key, value in documented.items():
            child = f"{path}.{key}" if path else key
            if child in skip:
                continue
            count += 1
            if key not in actual:
                problems.append(f"{child}: documented, missing from the answer")
                continue
            count += compare(value, actual[key], child, skip, problems)
    elif isinstance(documented, list) and documented and actual:
        count += compare(documented[0], actual[0], f"{path}[]", skip, problems)
    return count


def _fill(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        whole = PLACEHOLDER.fullmatch(value)
        if whole and whole.group(1) in ids and not isinstance(ids[whole.group(1)], str):
            return ids[whole.group(1)]
        return PLACEHOLDER.sub(lambda m: str(ids.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _dig(body: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        body = body[int(part)] if isinstance(body, list) else body[part]
    return body


@pytest.fixture
def scene(
    client: TestClient,
    factory: Factory,
    session: Session,
    settings: Settings,
    clock: FrozenClock,
    auth_headers: Callable[[User], dict[str, str]],
) -> dict[str, Any]:
    """A reseller with a customer, a purchase in a closed month (so an invoice), a product."""
    catalog_data.load(session, settings=settings, now=clock.now(), keys=8)
    partner = factory.partner("Fabrikam")
    agent = factory.user(partner, Role.ADMIN_AGENT, Role.GLOBAL_ADMIN)
    customer = factory.customer(
        partner, name="Contoso", country="US", domain="contoso.onmicrosoft.com"
    )
    provider = factory.provider_admin()
    headers = auth_headers(agent)
    # Last month's purchase, invoiced by closing that month.
    month_start = clock.now()
    r = client.post(
        f"/v1/customers/{customer.id}/orders",
        json={
            "BillingCycle": "one_time",
            "LineItems": [{"OfferId": catalog_data.WINDOWS, "Quantity": 1}],
        },
        headers=headers,
    )
    assert r.status_code == 201, r.text
    invoiced_order = r.json()["id"]
    clock.set(
        datetime(
            month_start.year + (month_start.month == 12),
            month_start.month % 12 + 1,
            1,
            1,
            tzinfo=UTC,
        )
    )
    month = f"{month_start.year}-{month_start.month:02d}"
    # Signed in again at the new time: sign-ins are checked against the clock.
    headers = auth_headers(agent)
    provider_headers = auth_headers(provider)
    r = client.post(f"/v1/billing/periods/{month}/close", headers=provider_headers)
    assert r.status_code == 200, r.text
    invoice = client.get("/v1/invoices", headers=headers).json()["items"][0]
    return {
        "headers": headers,
        "ids": {
            "customerId": str(customer.id),
            "domain": customer.domain,
            "productId": "DG7GMGF0D3SJ",
            "skuId": "0001",
            "availabilityId": "US01",
            "catalogItemId": catalog_data.WINDOWS,
            "planItemId": catalog_data.SUSE,
            "invoicedOrderId": invoiced_order,
            "invoiceId": invoice["id"],
            "refundTopicId": 32000001,
            "billingTopicId": 32000004,
        },
    }


def _documented_differences() -> str:
    return COMPATIBILITY_DOC.read_text(encoding="utf-8") if COMPATIBILITY_DOC.exists() else ""


def test_documented_examples_replay(
    client: TestClient, scene: dict[str, Any], report: Report, backend: str
) -> None:
    ids: dict[str, Any] = dict(scene["ids"])
    doc_text = _documented_differences()
    failures: list[str] = []
    assert EXAMPLES, "no documented examples found"
    for file in EXAMPLES:
        for example in json.loads(file.read_text(encoding="utf-8")):
            failures += _replay(client, scene["headers"], example, ids, doc_text, report, backend)
    assert not failures, "Documented examples that do not hold:\n" + "\n".join(failures)


def _replay(
    client: TestClient,
    headers: dict[str, str],
    example: dict[str, Any],
    ids: dict[str, Any],
    doc_text: str,
    report: Report,
    backend: str,
) -> list[str]:
    req = _fill(example["request"], ids)
    method, path = req["method"], "/v1" + req["path"]
    name = f"{method} {example['request']['path']}"
    kwargs: dict[str, Any] = {"headers": {**headers, **req.get("headers", {})}}
    if "body" in req:
        kwargs["json"] = req["body"]
    r = client.request(method, path, **kwargs)
    want = example["response"]
    problems: list[str] = []
    if r.status_code != want["status"]:
        problems.append(
            f"status: documented {want['status']}, answered {r.status_code}: {r.text[:300]}"
        )
    body: Any = None
    if r.content and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
    differences: dict[str, str] = example.get("differences", {})
    fields = 0
    if "body" in want and body is not None and not problems:
        fields = compare(want["body"], body, "", differences, problems)
        if (
            "code" in want["body"]
            and isinstance(body, dict)
            and body.get("code") != want["body"]["code"]
        ):
            problems.append(f"code: documented {want['body']['code']}, answered {body.get('code')}")
    for field, reason in differences.items():
        if f"`{field}`" not in doc_text:
            problems.append(
                f"{field}: listed as a difference ({reason}) but not in compatibility.md"
            )
    for key, dotted in example.get("capture", {}).items():
        try:
            ids[key] = _dig(body, dotted)
        except (KeyError, IndexError, TypeError):
            problems.append(f"capture {key}: no {dotted} in the answer")
    result = "FAIL" if problems else ("difference" if differences else "pass")
    detail = "; ".join(problems)[:300] if problems else ", ".join(differences)
    report.add(Outcome("documented", backend, name, example["operation"], result, fields, detail))
    return [f"{example['operation']} ({name}):\n  " + "\n  ".join(problems)] if problems else []

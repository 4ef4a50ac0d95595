"""Filing support requests over the API: topics, roles, every field checked, refund limits,
foreign customers and orders, and the contact's mail through a real SMTP server."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.config import Settings
from partnercenter.support.models import MailOutbox, SupportRequest
from tests.support.conftest import Desk, Mailbox, refund_body


def file(client: TestClient, desk: Desk, who: str = "admin_agent", **changes: Any) -> Any:
    return client.post(
        "/v1/servicerequests", json=refund_body(desk, **changes), headers=desk.h(who)
    )


def test_topics_list_the_refund_topic_and_the_others(client: TestClient, desk: Desk) -> None:
    r = client.get("/v1/servicerequests/supporttopics", headers=desk.h("helpdesk"))
    assert r.status_code == 200
    names = {t["code"]: t["name"] for t in r.json()["items"]}
    assert all(isinstance(t["id"], int) for t in r.json()["items"])
    assert names["csp_refund"] == "CSP Purchase/Refund on behalf of customers"
    assert {"orders", "keys_downloads", "billing", "account"} <= set(names)


def test_admin_agent_files_a_refund_request_and_the_contact_gets_mail(
    client: TestClient, desk: Desk, session: Session, mailbox: Mailbox, settings: Settings
) -> None:
    r = file(client, desk)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "open"
    assert body["supportTopicId"] == "32000001"
    assert body["supportTopicCode"] == "csp_refund"
    assert body["refund"]["customerTenantId"] == str(desk.customer.id)
    assert body["refund"]["orderId"] == desk.order["id"]
    assert body["refund"]["amountRequested"] == "500.00"
    assert body["refund"]["currency"] == "USD"
    assert body["refund"]["status"] == "requested"
    assert "Refund reason: The customer bought the wrong edition." in body["description"]
    assert body["primaryContact"]["phoneNumber"] == "+1 425 555 0100"
    record = session.execute(
        select(AuditRecord).where(AuditRecord.operation_type == "create_support_request")
    ).scalar_one()
    assert record.resource_type == "support_request"
    assert record.tenant_id == desk.partner.id
    assert record.customer_id == desk.customer.id
    assert record.details["supportRequestId"] == body["id"]
    [message] = mailbox.to("ana@fabrikam.test")
    assert "Support request received" in message["Subject"]
    assert message["From"] == "Partner Center <support@partnercenter.test>"
    assert f"{settings.base_url}/partner/support/{body['id']}" in mailbox.text(message)
    outbox = session.execute(select(MailOutbox)).scalar_one()
    assert outbox.sent_at is not None, (outbox.attempts, outbox.last_error)
    assert outbox.attempts == 1


def test_helpdesk_and_global_admin_file_a_sales_agent_and_provider_cannot(
    client: TestClient, desk: Desk
) -> None:
    assert file(client, desk, "helpdesk").status_code == 201
    assert file(client, desk, "global_admin").status_code == 201
    for who in ("sales", "support"):
        r = file(client, desk, who)
        assert r.status_code == 403, who
        assert r.json()["code"] == 10403


def test_a_question_needs_no_refund_fields(client: TestClient, desk: Desk) -> None:
    body = refund_body(desk, supportTopicId="keys_downloads", description="It stops at 90 %.")
    body["refund"] = None
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("helpdesk"))
    assert r.status_code == 201, r.text
    assert r.json()["refund"] is None


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"title": "  "}, "title", "Required"),
        ({"title": "x" * 201}, "title", "At most 200"),
        ({"supportTopicId": "nonsense"}, "supportTopicId", "csp_refund"),
        ({"severity": "urgent"}, "severity", "critical, moderate or minimal"),
        (
            {
                "primaryContact": {
                    "firstName": "Ana",
                    "lastName": "G",
                    "email": "ana@",
                    "phoneNumber": "+1 425 555 0100",
                }
            },
            "primaryContact.email",
            "email address",
        ),
        (
            {
                "primaryContact": {
                    "firstName": "Ana",
                    "lastName": "G",
                    "email": "a@b.test",
                    "phoneNumber": "call me",
                }
            },
            "primaryContact.phoneNumber",
            "phone number",
        ),
        (
            {
                "primaryContact": {
                    "firstName": "",
                    "lastName": "G",
                    "email": "a@b.test",
                    "phoneNumber": "+1 425 555 0100",
                }
            },
            "primaryContact.firstName",
            "Required",
        ),
        ({"refund": {"reason": ""}}, "refund.reason", "Required"),
        ({"refund": {"amountRequested": "abc"}}, "refund.amountRequested", "not an amount"),
        ({"refund": {"amountRequested": "-5"}}, "refund.amountRequested", "more than zero"),
        ({"refund": {"amountRequested": "0"}}, "refund.amountRequested", "more than zero"),
        ({"refund": {"amountRequested": "1.234"}}, "refund.amountRequested", "decimals"),
        ({"refund": {"orderId": "12345"}}, "refund.orderId", "GUID"),
        ({"refund": {"orderId": ""}}, "refund.orderId", "order id or the subscription id"),
        ({"refund": {"domain": ""}}, "refund.customerTenantId", "tenant GUID or domain"),
    ],
)
def test_each_bad_field_is_named_with_what_is_wrong(
    client: TestClient,
    desk: Desk,
    session: Session,
    changes: dict[str, Any],
    field: str,
    words: str,
) -> None:
    r = file(client, desk, **changes)
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["code"] == 10010
    assert body["source"] == field
    problems = {p["field"]: p["message"] for p in body["data"]}
    assert words in problems[field], problems
    assert session.execute(select(SupportRequest)).first() is None


def test_several_bad_fields_are_all_listed(client: TestClient, desk: Desk) -> None:
    r = file(client, desk, title="", severity="", refund={"reason": "", "amountRequested": "x"})
    assert r.status_code == 400
    fields = {p["field"] for p in r.json()["data"]}
    assert {"title", "severity", "refund.reason", "refund.amountRequested"} <= fields


def test_amount_cannot_exceed_what_was_charged(client: TestClient, desk: Desk) -> None:
    charged = Decimal(desk.order["totals"]["gross"])
    r = file(client, desk, refund={"amountRequested": str(charged + Decimal("0.01"))})
    assert r.status_code == 400, r.text
    problem = r.json()["data"][0]
    assert problem["field"] == "refund.amountRequested"
    assert f"{charged:,} USD" in problem["message"]  # the amount as people read it
    assert file(client, desk, refund={"amountRequested": str(charged)}).status_code == 201


def test_foreign_customer_and_foreign_order_answer_404(client: TestClient, desk: Desk) -> None:
    r = file(client, desk, refund={"domain": "litware.onmicrosoft.com"})
    assert r.status_code == 404
    assert r.json()["source"] == "refund.customerTenantId"
    r = file(client, desk, refund={"orderId": desk.other_order["id"]})
    assert r.status_code == 404
    assert r.json()["source"] == "refund.orderId"
    r = file(client, desk, refund={"domain": None, "customerTenantId": str(desk.other_customer.id)})
    assert r.status_code == 404
    missing = "00000000-0000-4000-8000-000000000000"
    r = file(client, desk, refund={"orderId": missing})
    assert r.status_code == 404
    assert r.json()["source"] == "refund.orderId"


def test_refund_fields_on_another_topic_are_refused(client: TestClient, desk: Desk) -> None:
    r = file(client, desk, supportTopicId="billing", description="Wrong tax.")
    assert r.status_code == 400
    assert r.json()["source"] == "refund"


def test_unknown_fields_are_refused(client: TestClient, desk: Desk) -> None:
    r = file(client, desk, priority="high")
    assert r.status_code == 400
    assert r.json()["code"] == 10010

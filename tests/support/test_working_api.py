"""Working support requests over the API: the queue and its filters, assignment, the
conversation both ways, every status transition, and refund decisions with their credits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.clock import FrozenClock
from partnercenter.orders.models import Charge, ChargeType
from tests.support.conftest import Desk, Mailbox, refund_body


def file(client: TestClient, desk: Desk, who: str = "admin_agent", **changes: Any) -> str:
    r = client.post("/v1/servicerequests", json=refund_body(desk, **changes), headers=desk.h(who))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def question(client: TestClient, desk: Desk, topic: str = "billing", who: str = "helpdesk") -> str:
    body = refund_body(desk, supportTopicId=topic, description="Why is tax charged twice?")
    body["refund"] = None
    r = client.post("/v1/servicerequests", json=body, headers=desk.h(who))
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def patch(client: TestClient, desk: Desk, who: str, rid: str, **body: Any) -> Any:
    return client.patch(f"/v1/servicerequests/{rid}", json=body, headers=desk.h(who))


def operations(session: Session) -> list[str]:
    rows = session.execute(
        select(AuditRecord.operation_type)
        .where(AuditRecord.resource_type == "support_request")
        .order_by(AuditRecord.occurred_at, AuditRecord.seq)
    ).scalars()
    return list(rows)


def test_queue_filters_by_status_topic_partner_and_age(
    client: TestClient, desk: Desk, clock: FrozenClock
) -> None:
    old = file(client, desk)
    clock.advance(days=10)
    desk.headers.clear()  # the tokens expired with the days that passed
    new = question(client, desk)
    theirs_body = refund_body(desk, supportTopicId="account", description="Sign-in fails.")
    theirs_body["refund"] = None
    r = client.post("/v1/servicerequests", json=theirs_body, headers=desk.h("other_agent"))
    assert r.status_code == 201
    theirs = r.json()["id"]

    def ids(**params: Any) -> set[str]:
        r = client.get("/v1/servicerequests", params=params, headers=desk.h("support"))
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert ids() == {old, new, theirs}
    assert ids(supportTopicId="csp_refund") == {old}
    assert ids(partnerId=str(desk.partner.id)) == {old, new}
    assert ids(minAgeDays=7) == {old}
    assert ids(maxAgeDays=7) == {new, theirs}
    assert patch(client, desk, "support", new, status="in_progress").status_code == 200
    assert ids(status="in_progress") == {new}
    assert ids(status="open,in_progress") == {old, new, theirs}
    r = client.get("/v1/servicerequests", params={"status": "pending"}, headers=desk.h("support"))
    assert r.status_code == 400
    assert r.json()["source"] == "status"


def test_partners_see_only_their_own_requests_and_a_foreign_one_is_404(
    client: TestClient, desk: Desk
) -> None:
    mine = file(client, desk)
    r = client.get("/v1/servicerequests", headers=desk.h("global_admin"))
    assert [i["id"] for i in r.json()["items"]] == [mine]
    assert (
        client.get("/v1/servicerequests", headers=desk.h("other_agent")).json()["totalCount"] == 0
    )
    r = client.get(f"/v1/servicerequests/{mine}", headers=desk.h("other_agent"))
    assert r.status_code == 404
    assert r.json()["code"] == 17001
    assert patch(client, desk, "other_agent", mine, newNote={"text": "hi"}).status_code == 404
    r = client.get("/v1/servicerequests/not-a-guid", headers=desk.h("admin_agent"))
    assert r.status_code == 404
    assert client.get("/v1/servicerequests", headers=desk.h("sales")).status_code == 403
    assert client.get("/v1/servicerequests", headers=desk.h("billing_admin")).status_code == 403


def test_assignment_to_support_staff_only(client: TestClient, desk: Desk) -> None:
    rid = file(client, desk)
    r = patch(client, desk, "support", rid, assignedTo="me")
    assert r.status_code == 200
    assert r.json()["assignedTo"] == desk.user("support").email
    r = client.get("/v1/servicerequests", params={"assignedTo": "me"}, headers=desk.h("support"))
    assert [i["id"] for i in r.json()["items"]] == [rid]
    r = patch(client, desk, "support", rid, assignedTo=str(desk.user("support2").id))
    assert r.json()["assignedTo"] == desk.user("support2").email
    r = patch(client, desk, "support", rid, assignedTo=str(desk.user("admin_agent").id))
    assert r.status_code == 400
    assert r.json()["code"] == 17011
    assert patch(client, desk, "support", rid, assignedTo=None).json()["assignedTo"] is None
    r = patch(client, desk, "admin_agent", rid, assignedTo="me")
    assert r.status_code == 403


def test_conversation_both_ways_and_attention_needed_goes_back_to_support(
    client: TestClient, desk: Desk, session: Session, mailbox: Mailbox
) -> None:
    rid = question(client, desk)
    r = patch(
        client,
        desk,
        "support",
        rid,
        status="attention_needed",
        newNote={"text": "Which invoice number shows the double tax?"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "attention_needed"
    r = patch(client, desk, "helpdesk", rid, newNote={"text": "Invoice G000000007."})
    assert r.json()["status"] == "in_progress"
    r = client.get(f"/v1/servicerequests/{rid}", headers=desk.h("helpdesk"))
    notes = r.json()["notes"]
    assert [(n["side"], n["text"], n["statusChange"]) for n in notes] == [
        ("provider", "Which invoice number shows the double tax?", "attention_needed"),
        ("partner", "Invoice G000000007.", "in_progress"),
    ]
    assert patch(client, desk, "support", rid, status="resolved").json()["status"] == "resolved"
    assert patch(client, desk, "helpdesk", rid, status="closed").json()["status"] == "closed"
    r = patch(client, desk, "helpdesk", rid, newNote={"text": "one more thing"})
    assert r.status_code == 409
    assert r.json()["code"] == 17010
    assert operations(session) == [
        "create_support_request",
        "add_support_request_note",
        "update_support_request",
        "add_support_request_note",
        "update_support_request",
        "update_support_request",
        "update_support_request",
    ]
    # one mail on filing and one on each change, all to the contact
    assert len(mailbox.to("ana@fabrikam.test")) == 5
    texts = [mailbox.text(m) for m in mailbox.messages]
    assert any("Which invoice number shows the double tax?" in t for t in texts)
    assert any("Status: Resolved" in t for t in texts)


@pytest.mark.parametrize(
    ("path", "to", "ok"),
    [
        ([], "in_progress", True),
        ([], "attention_needed", True),
        ([], "resolved", True),
        ([], "closed", False),
        ([], "open", False),
        (["in_progress"], "open", False),
        (["in_progress"], "closed", False),
        (["attention_needed"], "in_progress", True),
        (["attention_needed"], "closed", False),
        (["resolved"], "closed", True),
        (["resolved"], "in_progress", True),
        (["resolved"], "attention_needed", False),
        (["resolved", "closed"], "in_progress", False),
    ],
)
def test_provider_status_transitions_are_enforced(
    client: TestClient, desk: Desk, path: list[str], to: str, ok: bool
) -> None:
    rid = question(client, desk)
    for step in path:
        assert patch(client, desk, "support", rid, status=step).status_code == 200, step
    r = patch(client, desk, "support", rid, status=to)
    if ok:
        assert r.status_code == 200, r.text
        assert r.json()["status"] == to
    else:
        assert r.status_code == 409, r.text
        assert r.json()["code"] in (17002, 17010)


def test_partner_can_only_close(client: TestClient, desk: Desk) -> None:
    rid = question(client, desk)
    for to in ("in_progress", "resolved", "attention_needed"):
        r = patch(client, desk, "helpdesk", rid, status=to)
        assert r.status_code == 409
        assert "partners can only close" in r.json()["description"]
    assert patch(client, desk, "helpdesk", rid, status="closed").json()["status"] == "closed"
    assert patch(client, desk, "helpdesk", rid, status="bogus").status_code == 409


def credits(session: Session) -> list[Charge]:
    return list(
        session.execute(
            select(Charge).where(Charge.charge_type == ChargeType.CUSTOMER_CREDIT)
        ).scalars()
    )


def test_support_asks_for_information_then_approves_part_of_the_refund(
    client: TestClient, desk: Desk, session: Session, mailbox: Mailbox
) -> None:
    rid = file(client, desk, refund={"amountRequested": "500.00"})
    r = patch(
        client,
        desk,
        "support",
        rid,
        status="attention_needed",
        newNote={"text": "Please attach the customer's confirmation."},
    )
    assert r.json()["status"] == "attention_needed"
    r = patch(client, desk, "admin_agent", rid, newNote={"text": "Attached."})
    assert r.json()["status"] == "in_progress"
    r = patch(
        client,
        desk,
        "support",
        rid,
        refund={"decision": "approve", "amountApproved": "300.00", "reason": "One seat used."},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "resolved"
    assert body["refund"]["status"] == "partially_approved"
    assert body["refund"]["amountApproved"] == "300.00"
    [credit] = credits(session)
    assert credit.gross_minor == -30000
    assert credit.net_minor + credit.tax_minor == -30000
    assert credit.partner_id == desk.partner.id
    assert credit.customer_id == desk.customer.id
    assert str(credit.order_id) == desk.order["id"]
    assert credit.credit_reason_code == "customerCredit"
    assert credit.reverses_charge_id is not None
    assert body["refund"]["creditChargeIds"] == [str(credit.id)]
    assert "approve_refund" in operations(session)
    last = mailbox.text(mailbox.to("ana@fabrikam.test")[-1])
    assert "300.00 USD of 500.00 USD will be credited" in last
    # the credit is among the partner's unbilled lines
    from partnercenter.billing import services as billing

    unbilled = billing.unbilled_lines(session, partner_id=desk.partner.id)
    assert any(
        line.gross_minor == -30000 and line.charge_type == "customerCredit" for line in unbilled
    )


def test_a_second_approval_is_refused_and_writes_no_second_credit(
    client: TestClient, desk: Desk, session: Session
) -> None:
    rid = file(client, desk)
    approve = {"decision": "approve"}
    assert patch(client, desk, "support", rid, refund=approve).status_code == 200
    r = patch(client, desk, "support2", rid, refund=approve)
    assert r.status_code == 409
    assert r.json()["code"] in (17003, 17010)
    r = patch(client, desk, "support", rid, status="closed")
    assert r.status_code == 200
    assert len(credits(session)) == 1


def test_approval_is_capped_by_earlier_credits_and_the_amount_asked(
    client: TestClient, desk: Desk, session: Session
) -> None:
    gross = Decimal(desk.order["totals"]["gross"])
    first = file(client, desk, refund={"amountRequested": str(gross)})
    second = file(client, desk, refund={"amountRequested": "100.00"})
    r = patch(
        client, desk, "support", second, refund={"decision": "approve", "amountApproved": "100.01"}
    )
    assert r.status_code == 400
    assert r.json()["source"] == "refund.amountApproved"
    assert patch(client, desk, "support", first, refund={"decision": "approve"}).status_code == 200
    r = patch(client, desk, "support", second, refund={"decision": "approve"})
    assert r.status_code == 400, r.text
    assert "0.00 USD" in r.json()["data"][0]["message"]
    assert len(credits(session)) == 1


def test_two_partial_refunds_of_one_line_in_the_same_month_are_both_credited(
    client: TestClient, desk: Desk, session: Session
) -> None:
    first = file(client, desk, refund={"amountRequested": "100.00"})
    second = file(client, desk, refund={"amountRequested": "50.00"})
    for rid in (first, second):
        r = patch(client, desk, "support", rid, refund={"decision": "approve"})
        assert r.status_code == 200, r.text
    written = credits(session)
    assert len(written) == 2
    assert len({c.billing_month for c in written}) == 1
    assert sorted(c.gross_minor for c in written) == [-10000, -5000]


def test_reject_needs_a_reason_and_resolves(
    client: TestClient, desk: Desk, session: Session
) -> None:
    rid = file(client, desk)
    r = patch(client, desk, "support", rid, refund={"decision": "reject"})
    assert r.status_code == 400
    assert r.json()["source"] == "refund.reason"
    r = patch(
        client,
        desk,
        "support",
        rid,
        refund={"decision": "reject", "reason": "Outside the refund policy."},
    )
    assert r.status_code == 200
    assert r.json()["refund"]["status"] == "rejected"
    assert r.json()["refund"]["decisionReason"] == "Outside the refund policy."
    assert r.json()["status"] == "resolved"
    assert credits(session) == []
    assert "reject_refund" in operations(session)


def test_refund_must_be_decided_before_resolving_and_only_for_refunds(
    client: TestClient, desk: Desk
) -> None:
    rid = file(client, desk)
    r = patch(client, desk, "support", rid, status="resolved")
    assert r.status_code == 409
    assert r.json()["code"] == 17005
    q = question(client, desk)
    r = patch(client, desk, "support", q, refund={"decision": "approve"})
    assert r.status_code == 409
    assert r.json()["code"] == 17004
    r = patch(client, desk, "admin_agent", rid, refund={"decision": "approve"})
    assert r.status_code == 403

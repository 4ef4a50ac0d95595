"""An approved refund on the invoice: the month's invoice carries the credit line, the totals
net it off, and a refund approved after the close goes to the next month."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.clock import FrozenClock
from tests.support.conftest import Desk, refund_body

DEC_2 = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def _approve(client: TestClient, desk: Desk, amount: str, approved: str) -> None:
    body = refund_body(desk, refund={"amountRequested": amount})
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    r = client.patch(
        f"/v1/servicerequests/{r.json()['id']}",
        json={"refund": {"decision": "approve", "amountApproved": approved}},
        headers=desk.h("support"),
    )
    assert r.status_code == 200, r.text


def test_the_refund_is_a_credit_line_on_the_months_invoice_and_later_ones_move_on(
    client: TestClient, desk: Desk, session: Session, clock: FrozenClock
) -> None:
    _approve(client, desk, "500.00", "300.00")
    clock.set(DEC_2)
    desk.headers.clear()  # the tokens expired with the month
    billing.start_close(session, month="2026-11", now=DEC_2)
    session.commit()
    billing.close_period(session, month="2026-11", now=DEC_2)
    session.commit()
    [invoice] = billing.list_invoices(session, partner_id=desk.partner.id)
    lines = billing.invoice_lines(session, invoice=invoice)
    credit = [line for line in lines if line.charge_type == "customerCredit"]
    assert len(credit) == 1
    assert credit[0].gross_minor == -30000
    assert credit[0].credit_reason_code == "customerCredit"
    charged = sum(line.gross_minor for line in lines if line.charge_type == "new")
    assert invoice.gross_minor == charged - 30000
    assert billing.verify(session).ok

    # November is closed: a refund approved now is credited in December.
    _approve(client, desk, "100.00", "100.00")
    unbilled = billing.unbilled_lines(session, partner_id=desk.partner.id)
    assert [(line.charge_type, line.gross_minor) for line in unbilled] == [
        ("customerCredit", -10000)
    ]
    assert billing.open_billing_month(session, now=DEC_2) == "2026-12"

"""A refund the cancel dialog sent to support: approving it cancels the purchase exactly as
a self-service cancellation would (keys and links revoked, item cancelled), with the
approved refund as its only credit."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.orders.models import Charge, ChargeType, Entitlement, EntitlementStatus
from tests.orders.cancel_helpers import set_support_limit
from tests.support.conftest import Desk, buy, refund_body


def test_approving_a_refund_from_the_cancel_dialog_cancels_the_purchase(
    client: TestClient, desk: Desk, session: Session
) -> None:
    set_support_limit(session, "DG7GMGF0D3SJ", 100_000, "USD")  # above USD 1,000.00
    session.commit()
    customer = desk.customer.id
    desk.order = buy(client, desk.h("admin_agent"), desk.customer, quantity=2)  # USD 1,945.00
    order_id = desk.order["id"]
    preview = client.get(
        f"/v1/customers/{customer}/orders/{order_id}/cancellation", headers=desk.h("admin_agent")
    ).json()
    assert preview["requiresSupportRequest"] is True
    link = preview["supportRequestUri"]
    assert f"order={order_id}" in link
    r = client.patch(
        f"/v1/customers/{customer}/orders/{order_id}",
        json={"status": "cancelled"},
        headers=desk.h("admin_agent"),
    )
    assert r.status_code == 400

    body = refund_body(desk, refund={"amountRequested": "1945.00", "cancelPurchase": True})
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    rid = r.json()["id"]
    assert r.json()["refund"]["cancelPurchase"] is True
    software = client.get(f"/v1/customers/{customer}/software", headers=desk.h("admin_agent"))
    [item] = [i for i in software.json()["items"] if i["orderId"] == order_id]
    assert item["status"] == "active"
    version = item["versions"][0]["version"]
    key = client.post(
        f"/v1/customers/{customer}/software/{item['id']}/key",
        json={"version": version},
        headers=desk.h("admin_agent"),
    )
    assert key.status_code == 200, key.text

    r = client.patch(
        f"/v1/servicerequests/{rid}",
        json={"refund": {"decision": "approve", "amountApproved": "1500.00"}},
        headers=desk.h("support"),
    )
    assert r.status_code == 200, r.text
    assert r.json()["refund"]["status"] == "partially_approved"

    order = client.get(f"/v1/customers/{customer}/orders/{order_id}", headers=desk.h("admin_agent"))
    assert order.json()["status"] == "cancelled"
    assert {line["quantity"] for line in order.json()["lineItems"]} == {0}
    entitlement = session.execute(
        select(Entitlement).where(Entitlement.order_id == uuid.UUID(order_id))
    ).scalar_one()
    session.refresh(entitlement)
    assert entitlement.status == EntitlementStatus.CANCELLED
    key = client.post(
        f"/v1/customers/{customer}/software/{item['id']}/key",
        json={"version": version},
        headers=desk.h("admin_agent"),
    )
    assert key.status_code == 410  # keys revoked, as after a self-service cancellation
    software = client.get(f"/v1/customers/{customer}/software", headers=desk.h("admin_agent"))
    [item] = [i for i in software.json()["items"] if i["orderId"] == order_id]
    assert item["status"] == "cancelled"
    charges = session.execute(
        select(Charge.charge_type, Charge.gross_minor).where(
            Charge.order_id == entitlement.order_id
        )
    ).all()
    kinds = sorted((c.value, g) for c, g in charges)
    assert kinds == [("customerCredit", -150000), ("new", 194500)]  # no "cancel" credit
    ops = session.execute(
        select(AuditRecord.operation_type, AuditRecord.details).where(
            AuditRecord.operation_type.in_(["cancel_order", "approve_refund"])
        )
    ).all()
    assert {op for op, _ in ops} == {"cancel_order", "approve_refund"}
    approve: dict[str, Any] = next(d for op, d in ops if op == "approve_refund")
    assert approve["purchaseCancelled"] is True
    # a second approval neither cancels again nor credits again
    r = client.patch(
        f"/v1/servicerequests/{rid}",
        json={"refund": {"decision": "approve"}},
        headers=desk.h("support2"),
    )
    assert r.status_code == 409
    credits = session.execute(
        select(Charge).where(Charge.charge_type == ChargeType.CUSTOMER_CREDIT)
    ).all()
    assert len(credits) == 1


def test_without_the_cancel_box_the_purchase_stays_active(
    client: TestClient, desk: Desk, session: Session
) -> None:
    r = client.post("/v1/servicerequests", json=refund_body(desk), headers=desk.h("admin_agent"))
    rid = r.json()["id"]
    r = client.patch(
        f"/v1/servicerequests/{rid}",
        json={"refund": {"decision": "approve"}},
        headers=desk.h("support"),
    )
    assert r.status_code == 200
    order = client.get(
        f"/v1/customers/{desk.customer.id}/orders/{desk.order['id']}", headers=desk.h("admin_agent")
    )
    assert order.json()["status"] == "completed"


def test_a_software_plan_refund_is_approved_without_cancelling_it(
    client: TestClient, desk: Desk, session: Session
) -> None:
    from partnercenter.support.models import SupportRequest
    from tests.orders import catalog_data

    r = client.post(
        f"/v1/customers/{desk.customer.id}/carts",
        json={"lineItems": [{"catalogItemId": catalog_data.SUSE, "quantity": 3}]},
        headers=desk.h("admin_agent"),
    )
    r = client.post(
        f"/v1/customers/{desk.customer.id}/carts/{r.json()['id']}/checkout",
        headers=desk.h("admin_agent"),
    )
    suse = r.json()["orders"][0]["id"]
    body = refund_body(
        desk, refund={"orderId": suse, "amountRequested": "100.00", "cancelPurchase": True}
    )
    r = client.post("/v1/servicerequests", json=body, headers=desk.h("admin_agent"))
    assert r.status_code == 201, r.text
    assert r.json()["refund"]["cancelPurchase"] is False  # never for a software plan
    # A request filed before this rule, with the box ticked, is approvable all the same.
    req = session.get(SupportRequest, uuid.UUID(r.json()["id"]))
    assert req is not None
    session.execute(
        SupportRequest.__table__.update()
        .where(SupportRequest.__table__.c.id == req.id)
        .values(cancel_purchase=True)
    )
    session.commit()
    r = client.patch(
        f"/v1/servicerequests/{req.id}",
        json={"refund": {"decision": "approve"}},
        headers=desk.h("support"),
    )
    assert r.status_code == 200, r.text
    order = client.get(
        f"/v1/customers/{desk.customer.id}/orders/{suse}", headers=desk.h("admin_agent")
    )
    assert order.json()["status"] == "completed"
    credit = session.execute(
        select(Charge).where(
            Charge.order_id == uuid.UUID(suse), Charge.charge_type == ChargeType.CUSTOMER_CREDIT
        )
    ).scalar_one()
    assert credit.gross_minor == -10_000 and credit.quantity == 3

"""Cancelling purchases over the API: windows around each deadline, credits, refusals, roles."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.models import KeyStatus, ProductKey
from partnercenter.clock import FrozenClock
from partnercenter.errors import DomainError
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant
from partnercenter.orders import cancellation
from partnercenter.orders.models import (
    Charge,
    ChargeType,
    Entitlement,
    EntitlementStatus,
    OrderStatus,
)
from partnercenter.permissions import Role
from tests.factories import Factory
from tests.orders.cancel_helpers import (
    RESERVATION,
    SQL_ANNUAL,
    SQL_JP,
    SQL_MONTHLY,
    SQL_MONTHLY_29,
    Buyer,
    add_cancellation_catalog,
    set_support_limit,
)
from tests.orders.catalog_data import AZURE, SUSE, WINDOWS, WINDOWS_AU
from tests.orders.conftest import Shop

Headers = Callable[..., dict[str, str]]


@dataclass
class CancelShop:
    shop: Shop
    buyer: Buyer
    jp: Tenant
    clock: FrozenClock

    def customer(self, market: str) -> Tenant:
        return {"US": self.shop.us, "AU": self.shop.au, "JP": self.jp}[market]


@pytest.fixture
def cshop(
    shop: Shop, client: TestClient, session: Session, factory: Factory, clock: FrozenClock
) -> CancelShop:
    add_cancellation_catalog(session, now=clock.now())
    jp = factory.customer(shop.partner, name="Tokyo Trading", country="JP")
    # A named token for two years: the tests move the clock back and forth across months.
    secret, _ = identity.create_named_token(
        session, user=shop.agent, name="cancellation tests", now=clock.now(), request=None, days=730
    )
    session.commit()
    return CancelShop(shop, Buyer(client, {"Authorization": f"Bearer {secret}"}), jp, clock)


def credits_of(session: Session, order_id: str) -> list[Charge]:
    session.expire_all()
    return list(
        session.execute(
            select(Charge)
            .where(Charge.charge_type == ChargeType.CANCEL, Charge.order_id == uuid.UUID(order_id))
            .order_by(Charge.created_at)
        ).scalars()
    )


def records(session: Session, operation: str) -> list[AuditRecord]:
    session.expire_all()
    return list(
        session.execute(
            select(AuditRecord).where(AuditRecord.operation_type == operation)
        ).scalars()
    )


D = timedelta(days=1)
S = timedelta(seconds=1)

# (case, offer, market, bought at, cancelled after, expected credit net/tax/gross or error code)
CASES: list[tuple[str, str, str, datetime, timedelta, tuple[str, str, str] | int]] = [
    (
        "perpetual day 0",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        0 * D,
        ("972.50", "0.00", "972.50"),
    ),
    (
        "perpetual day 1",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        1 * D,
        ("972.50", "0.00", "972.50"),
    ),
    (
        "perpetual day 29",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        29 * D,
        ("972.50", "0.00", "972.50"),
    ),
    (
        "perpetual 1 s before the deadline",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        30 * D - S,
        ("972.50", "0.00", "972.50"),
    ),
    (
        "perpetual at the deadline",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        30 * D,
        900117,
    ),
    (
        "perpetual 1 s after the deadline",
        WINDOWS,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        30 * D + S,
        900117,
    ),
    ("perpetual day 31", WINDOWS, "US", datetime(2026, 11, 2, 10, tzinfo=UTC), 31 * D, 900117),
    (
        "annual upfront day 0",
        SQL_ANNUAL,
        "US",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        0 * D,
        ("3650.00", "0.00", "3650.00"),
    ),
    (
        "annual upfront day 1",
        SQL_ANNUAL,
        "US",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        1 * D,
        ("3640.00", "0.00", "3640.00"),
    ),
    (
        "annual upfront day 29",
        SQL_ANNUAL,
        "US",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        29 * D,
        ("3360.00", "0.00", "3360.00"),
    ),
    (
        "annual upfront 1 s before the deadline",
        SQL_ANNUAL,
        "US",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        30 * D - S,
        ("3360.00", "0.00", "3360.00"),
    ),
    (
        "annual upfront at the deadline",
        SQL_ANNUAL,
        "US",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        30 * D,
        900117,
    ),
    (
        "monthly across the January month end, day 25",
        SQL_MONTHLY,
        "US",
        datetime(2026, 1, 20, 10, tzinfo=UTC),
        25 * D,
        ("60.00", "0.00", "60.00"),
    ),
    (
        "monthly 1 s before the deadline",
        SQL_MONTHLY,
        "US",
        datetime(2026, 1, 20, 10, tzinfo=UTC),
        30 * D - S,
        ("20.00", "0.00", "20.00"),
    ),
    (
        "monthly at the deadline",
        SQL_MONTHLY,
        "US",
        datetime(2026, 1, 20, 10, tzinfo=UTC),
        30 * D,
        900117,
    ),
    (
        # February 2027 has 28 days: day 29 is in the second monthly period (1 Mar to 1 Apr).
        "monthly, second period still inside the window, day 29",
        SQL_MONTHLY,
        "US",
        datetime(2027, 2, 1, 0, tzinfo=UTC),
        29 * D,
        ("300.00", "0.00", "300.00"),
    ),
    (
        "monthly in a leap-year February, day 10",
        SQL_MONTHLY_29,
        "US",
        datetime(2028, 2, 1, 0, tzinfo=UTC),
        10 * D,
        ("19.00", "0.00", "19.00"),
    ),
    (
        "monthly leap February, day 28 (29 Feb)",
        SQL_MONTHLY_29,
        "US",
        datetime(2028, 2, 1, 0, tzinfo=UTC),
        28 * D,
        ("1.00", "0.00", "1.00"),
    ),
    (
        "JPY annual day 7",
        SQL_JP,
        "JP",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        7 * D,
        ("9808", "981", "10789"),
    ),
    (
        "JPY annual at the deadline",
        SQL_JP,
        "JP",
        datetime(2026, 3, 10, 9, tzinfo=UTC),
        30 * D,
        900117,
    ),
    (
        "AU perpetual, price includes GST, day 3",
        WINDOWS_AU,
        "AU",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        3 * D,
        ("1000.00", "100.00", "1100.00"),
    ),
    (
        "AU perpetual day 29 (leap year)",
        WINDOWS_AU,
        "AU",
        datetime(2028, 2, 15, 10, tzinfo=UTC),
        29 * D,
        ("1000.00", "100.00", "1100.00"),
    ),
    (
        "AU perpetual 1 s after the deadline",
        WINDOWS_AU,
        "AU",
        datetime(2028, 2, 15, 10, tzinfo=UTC),
        30 * D + S,
        900117,
    ),
    (
        "Azure reservation day 4: full",
        RESERVATION,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        4 * D,
        ("3650.00", "0.00", "3650.00"),
    ),
    (
        "Azure reservation day 65: prorated less 12 %",
        RESERVATION,
        "US",
        datetime(2026, 11, 2, 10, tzinfo=UTC),
        65 * D,
        ("2640.00", "0.00", "2640.00"),
    ),
    ("software plan day 0", SUSE, "US", datetime(2026, 11, 2, 10, tzinfo=UTC), 0 * D, 800019),
]


@pytest.mark.parametrize(
    ("offer", "market", "bought", "after", "expected"),
    [pytest.param(*c[1:], id=c[0]) for c in CASES],
)
def test_cancellation_window_and_credit_by_day(
    cshop: CancelShop,
    session: Session,
    offer: str,
    market: str,
    bought: datetime,
    after: timedelta,
    expected: tuple[str, str, str] | int,
) -> None:
    customer = cshop.customer(market)
    cshop.clock.set(bought)
    order = cshop.buyer.buy(customer, (offer, 1))
    cshop.clock.set(bought + after)
    preview = cshop.buyer.preview(customer, order["id"])
    assert preview.status_code == 200, preview.text
    p = preview.json()
    r = cshop.buyer.cancel(customer, order["id"])
    if isinstance(expected, int):
        assert p["cancellable"] is False
        assert p["reasonCode"] == expected
        assert r.status_code == 400, r.text
        assert r.json()["code"] == expected
        if expected == 900117:
            assert p["daysRemaining"] == 0
            assert r.json()["description"] == "You have passed your 30-day cancellation window."
            assert r.json()["data"][0]["windowDays"] == 30
        assert credits_of(session, order["id"]) == []
        assert records(session, "cancel_order") == []
        again = cshop.buyer.client.get(
            f"/v1/customers/{customer.id}/orders/{order['id']}", headers=cshop.buyer.headers
        )
        assert again.json()["status"] == "completed"
        return
    net, tax, gross = expected
    assert p["cancellable"] is True, p
    assert p["credit"] == {
        "net": net,
        "tax": tax,
        "gross": gross,
        "currency": order["currencyCode"],
    }
    if p["deadline"] is not None:
        deadline = bought + 30 * D
        assert p["deadline"] == deadline.isoformat().replace("+00:00", "Z")
        left = deadline - (bought + after)
        assert p["daysRemaining"] == left.days + (1 if left % D else 0)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "cancelled"
    assert body["lineItems"][0]["quantity"] == 0
    assert body["lineItems"][0]["status"] == "cancelled"
    assert body["cancellation"]["credit"] == p["credit"]
    credits = credits_of(session, order["id"])
    assert len(credits) == 1
    credit = credits[0]
    new_charge = session.execute(
        select(Charge).where(
            Charge.order_id == uuid.UUID(order["id"]), Charge.charge_type == ChargeType.NEW
        )
    ).scalar_one()
    assert credit.reverses_charge_id == new_charge.id
    assert credit.credit_reason_code == "customer_cancellation"
    assert credit.gross_minor < 0 and credit.gross_minor == credit.net_minor + credit.tax_minor
    assert credit.billing_month == (bought + after).strftime("%Y-%m")


def test_the_window_preview_counts_days_remaining_down(cshop: CancelShop) -> None:
    cshop.clock.set(datetime(2026, 11, 2, 10, tzinfo=UTC))
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    seen = []
    for offset in (0 * D, 1 * D, 10 * D, 29 * D, 29 * D + 23 * timedelta(hours=1), 30 * D):
        cshop.clock.set(datetime(2026, 11, 2, 10, tzinfo=UTC) + offset)
        seen.append(cshop.buyer.preview(cshop.shop.us, order["id"]).json()["daysRemaining"])
    assert seen == [30, 29, 20, 1, 1, 0]


def test_cancelling_revokes_keys_entitlements_and_records_both_activities(
    cshop: CancelShop, session: Session
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 2))
    cshop.clock.advance(days=3)
    r = cshop.buyer.cancel(cshop.shop.us, order["id"])
    assert r.status_code == 200, r.text
    session.expire_all()
    ent = session.execute(
        select(Entitlement).where(Entitlement.order_id == uuid.UUID(order["id"]))
    ).one()[0]
    assert ent.status == EntitlementStatus.CANCELLED
    key = session.get(ProductKey, ent.product_key_id)
    assert key is not None and key.status == KeyStatus.REVOKED
    assert key.revoked_at == cshop.clock.now()
    (cancel_record,) = records(session, "cancel_order")
    assert cancel_record.resource_type == "order"
    assert cancel_record.tenant_id == cshop.shop.partner.id
    assert cancel_record.customer_id == cshop.shop.us.id
    assert cancel_record.details["orderId"] == order["id"]
    assert cancel_record.details["lines"][0]["credit"]["gross"] == "1945.00"
    (credit_record,) = records(session, "create_credit")
    assert credit_record.resource_type == "credit"
    assert credit_record.details["total"]["gross"] == "1945.00"
    assert credit_record.details["credits"][0]["gross"] == "-1945.00"
    # The activity log API shows both to the partner's Global admin.


def test_cancelling_one_line_keeps_the_order_completed_until_every_line_is(
    cshop: CancelShop, session: Session
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1), (AZURE, 2))
    r = cshop.buyer.cancel(cshop.shop.us, order["id"], lines=[1])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "completed"
    assert [(x["quantity"], x["status"]) for x in body["lineItems"]] == [
        (1, "active"),
        (0, "cancelled"),
    ]
    assert body["cancellation"]["cancelledLineItems"] == [1]
    p = cshop.buyer.preview(cshop.shop.us, order["id"]).json()
    assert p["cancellable"] is True
    assert [x["lineItemNumber"] for x in p["lineItems"]] == [0]
    again = cshop.buyer.cancel(cshop.shop.us, order["id"], lines=[1])
    assert again.status_code == 400 and again.json()["code"] == 800061
    r = cshop.buyer.cancel(cshop.shop.us, order["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled"
    assert len(credits_of(session, order["id"])) == 2
    assert cshop.buyer.cancel(cshop.shop.us, order["id"]).json()["code"] == 800061
    missing = cshop.buyer.cancel(cshop.shop.us, order["id"], lines=[7])
    assert missing.status_code == 400 and missing.json()["code"] == 12141


def test_a_second_cancellation_is_refused_and_credits_once(
    cshop: CancelShop, session: Session
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    assert cshop.buyer.cancel(cshop.shop.us, order["id"]).status_code == 200
    second = cshop.buyer.cancel(cshop.shop.us, order["id"])
    assert second.status_code == 400
    assert second.json()["code"] == 800061
    assert len(credits_of(session, order["id"])) == 1
    p = cshop.buyer.preview(cshop.shop.us, order["id"]).json()
    assert p["cancellable"] is False and p["reasonCode"] == 800061


def test_ms_request_id_replays_the_first_cancellation(cshop: CancelShop, session: Session) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    first = cshop.buyer.cancel(cshop.shop.us, order["id"], **{"MS-RequestId": "cancel-1"})
    second = cshop.buyer.cancel(cshop.shop.us, order["id"], **{"MS-RequestId": "cancel-1"})
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert len(credits_of(session, order["id"])) == 1
    assert len(records(session, "cancel_order")) == 1
    other = cshop.buyer.cancel(cshop.shop.us, order["id"], [0], **{"MS-RequestId": "cancel-1"})
    assert other.status_code == 409 and other.json()["code"] == 12101


def test_the_azure_refund_cap_limits_credits_per_customer_over_12_months(
    cshop: CancelShop, session: Session
) -> None:
    big = cshop.buyer.buy(cshop.shop.us, (RESERVATION, 12))  # USD 43,800.00
    small = cshop.buyer.buy(cshop.shop.us, (RESERVATION, 3))  # USD 10,950.00
    cshop.clock.advance(days=2)
    assert (
        cshop.buyer.cancel(cshop.shop.us, big["id"]).json()["cancellation"]["credit"]["gross"]
        == "43800.00"
    )
    p = cshop.buyer.preview(cshop.shop.us, small["id"]).json()
    assert p["credit"]["gross"] == "6200.00"  # 50,000 less 43,800 already refunded
    r = cshop.buyer.cancel(cshop.shop.us, small["id"])
    assert r.json()["cancellation"]["credit"]["gross"] == "6200.00"
    # A year later the first refund has left the rolling window.
    cshop.clock.advance(days=366)
    later = cshop.buyer.buy(cshop.shop.us, (RESERVATION, 1))
    cshop.clock.advance(hours=1)
    assert cshop.buyer.preview(cshop.shop.us, later["id"]).json()["credit"]["gross"] == "3650.00"


def test_above_the_providers_limit_a_support_request_is_needed(
    cshop: CancelShop, session: Session
) -> None:
    set_support_limit(session, "DG7GMGF0D3SJ", 100_000, "USD")  # USD 1,000.00
    session.commit()
    small = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))  # 972.50
    big = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 2))  # 1,945.00
    p = cshop.buyer.preview(cshop.shop.us, big["id"]).json()
    assert p["cancellable"] is False and p["requiresSupportRequest"] is True
    uri = (
        f"/partner/support/new?topic=csp_refund&customer={cshop.shop.us.domain}"
        f"&order={big['id']}&amount=1945.00&currency=USD"
    )
    assert p["supportRequestUri"] == uri
    r = cshop.buyer.cancel(cshop.shop.us, big["id"])
    assert r.status_code == 400
    assert r.json()["code"] == 12140 and r.json()["supportRequestUri"] == uri
    assert credits_of(session, big["id"]) == []
    assert cshop.buyer.cancel(cshop.shop.us, small["id"]).status_code == 200


@pytest.mark.parametrize(
    "roles",
    [
        (Role.GLOBAL_ADMIN,),
        (Role.SALES_AGENT,),
        (Role.HELPDESK_AGENT,),
        (Role.BILLING_ADMIN,),
        (Role.ACCOUNT_ADMIN,),
    ],
    ids=lambda r: "+".join(x.value for x in r),
)
def test_only_an_admin_agent_may_cancel(
    cshop: CancelShop,
    factory: Factory,
    auth_headers: Headers,
    session: Session,
    roles: tuple[Role, ...],
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    headers = auth_headers(factory.user(cshop.shop.partner, *roles))
    r = cshop.buyer.cancel(cshop.shop.us, order["id"], headers=headers)
    assert r.status_code == 403, r.text
    batch = cshop.buyer.client.post(
        f"/v1/customers/{cshop.shop.us.id}/orders:cancel",
        json={"orderIds": [order["id"]]},
        headers=headers,
    )
    assert batch.status_code == 403
    assert credits_of(session, order["id"]) == []


def test_another_partners_order_is_not_found(
    cshop: CancelShop, factory: Factory, auth_headers: Headers
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    other = factory.partner("Elsewhere")
    their_agent = auth_headers(factory.user(other, Role.ADMIN_AGENT))
    their_customer = factory.customer(other, name="Theirs")
    r = cshop.buyer.cancel(cshop.shop.us, order["id"], headers=their_agent)
    assert r.status_code == 404
    r = cshop.buyer.cancel(their_customer, order["id"], headers=their_agent)
    assert r.status_code == 404 and r.json()["code"] == 12111
    # Our own customer, but an order of another of our customers: also not found.
    r = cshop.buyer.cancel(cshop.shop.au, order["id"])
    assert r.status_code == 404
    assert cshop.buyer.preview(cshop.shop.au, order["id"]).status_code == 404
    assert cshop.buyer.cancel(cshop.shop.us, "not-a-guid").status_code == 404


def test_bad_status_is_refused(cshop: CancelShop) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    r = cshop.buyer.client.patch(
        f"/v1/customers/{cshop.shop.us.id}/orders/{order['id']}",
        json={"status": "completed"},
        headers=cshop.buyer.headers,
    )
    assert r.status_code == 400 and r.json()["code"] == 12142


def test_several_orders_in_one_request_are_each_judged_on_their_own(
    cshop: CancelShop, session: Session
) -> None:
    cshop.clock.set(datetime(2026, 10, 1, 10, tzinfo=UTC))
    old = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    cshop.clock.set(datetime(2026, 11, 2, 10, tzinfo=UTC))
    fresh = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    plan = cshop.buyer.buy(cshop.shop.us, (SUSE, 1))
    also = cshop.buyer.buy(cshop.shop.us, (AZURE, 1))
    missing = "8d1f5c3e-0000-4000-8000-000000000000"
    r = cshop.buyer.client.post(
        f"/v1/customers/{cshop.shop.us.id}/orders:cancel",
        json={"orderIds": [fresh["id"], old["id"], plan["id"], missing, also["id"]]},
        headers=cshop.buyer.headers,
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert [(i["orderId"], i["status"]) for i in items] == [
        (fresh["id"], "cancelled"),
        (old["id"], "failed"),
        (plan["id"], "failed"),
        (missing, "failed"),
        (also["id"], "cancelled"),
    ]
    assert [i.get("error", {}).get("code") for i in items] == [None, 900117, 800019, 12111, None]
    assert items[0]["order"]["cancellation"]["credit"]["gross"] == "972.50"
    assert len(credits_of(session, fresh["id"])) == 1
    assert credits_of(session, old["id"]) == []
    assert len(records(session, "cancel_order")) == 2


def test_cancelling_uses_the_policy_as_sold_not_as_changed_later(
    cshop: CancelShop, session: Session
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    set_support_limit(session, "DG7GMGF0D3SJ", 100, "USD")  # USD 1.00, after the sale
    session.commit()
    cshop.clock.advance(days=5)
    assert cshop.buyer.cancel(cshop.shop.us, order["id"]).status_code == 200


def test_the_credit_never_exceeds_what_is_left_after_earlier_credits(
    cshop: CancelShop, session: Session
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (SQL_ANNUAL, 1))
    charge = session.execute(
        select(Charge).where(Charge.order_id == uuid.UUID(order["id"]))
    ).scalar_one()
    # An earlier credit (for example an approved refund) of USD 3,500.00 against the charge.
    session.add(
        Charge(
            partner_id=charge.partner_id,
            customer_id=charge.customer_id,
            order_id=charge.order_id,
            order_line_id=charge.order_line_id,
            charge_type=ChargeType.CANCEL,
            currency="USD",
            net_minor=-350_000,
            tax_minor=0,
            gross_minor=-350_000,
            quantity=1,
            billing_month="2026-10",
            created_at=cshop.clock.now(),
            reverses_charge_id=charge.id,
            credit_reason_code="refund",
        )
    )
    session.commit()
    cshop.clock.advance(days=1)
    p = cshop.buyer.preview(cshop.shop.us, order["id"]).json()
    assert p["credit"]["gross"] == "150.00"  # 3,640.00 prorated, but only 150.00 is left
    total = session.execute(
        select(func.sum(Charge.gross_minor)).where(Charge.order_id == uuid.UUID(order["id"]))
    ).scalar_one()
    assert total == 15_000


def test_the_partners_activity_log_shows_the_cancellation_and_the_credit(
    cshop: CancelShop, factory: Factory, auth_headers: Headers
) -> None:
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    assert cshop.buyer.cancel(cshop.shop.us, order["id"]).status_code == 200
    admin = auth_headers(factory.user(cshop.shop.partner, Role.GLOBAL_ADMIN))
    r = cshop.buyer.client.get("/v1/auditrecords", headers=admin)
    assert r.status_code == 200, r.text
    mine = [
        (x["resourceType"], x["operationType"])
        for x in r.json()["items"]
        if {"key": "orderId", "value": order["id"]} in x["customizedData"]
    ]
    assert ("order", "cancel_order") in mine
    assert ("credit", "create_credit") in mine


def test_an_approved_support_request_cancels_past_the_window_without_a_self_service_credit(
    cshop: CancelShop, session: Session
) -> None:
    set_support_limit(session, "DG7GMGF0D3SJ", 100, "USD")
    session.commit()
    order = cshop.buyer.buy(cshop.shop.us, (WINDOWS, 1))
    cshop.clock.advance(days=40)
    assert cshop.buyer.cancel(cshop.shop.us, order["id"]).json()["code"] == 900117
    done = cancellation.cancel_order(
        session,
        actor=None,
        customer=cshop.shop.us,
        order_id=uuid.UUID(order["id"]),
        now=cshop.clock.now(),
        support_request_id="SR-1",
        issue_credit=False,
    )
    assert done.order.status == OrderStatus.CANCELLED
    assert done.credits == []
    (record,) = records(session, "cancel_order")
    assert record.details["supportRequestId"] == "SR-1"
    # A software plan stays "never", even for support.
    plan = cshop.buyer.buy(cshop.shop.us, (SUSE, 1))
    with pytest.raises(DomainError) as refused:
        cancellation.cancel_order(
            session,
            actor=None,
            customer=cshop.shop.us,
            order_id=uuid.UUID(plan["id"]),
            now=cshop.clock.now(),
            support_request_id="SR-2",
        )
    assert refused.value.code == 800019

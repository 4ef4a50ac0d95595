"""Cancelling a purchase: the window, the credit, revocation, in one race-safe transaction.

The rules are the order line's cancellation policy as sold (a snapshot of the product's
policy in the catalog); the arithmetic is :func:`partnercenter.billing.credits.assess`. The
formula, the sign convention of credits and worked examples are in ``docs/dev/cancellation.md``
and ``docs/dev/orders.md``.

A cancellation locks the order row first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's
``BEGIN IMMEDIATE`` serialises writers), so of two requests cancelling the same purchase the
second waits, then finds the lines cancelled and is refused with 800061: one cancellation,
one credit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.billing import services as billing
from partnercenter.billing.credits import Assessment, Refusal, Rules, assess, cap_credit
from partnercenter.catalog.models import CreditRule
from partnercenter.context import Actor, RequestInfo
from partnercenter.errors import DomainError
from partnercenter.i18n import N_, Money
from partnercenter.identity.models import Tenant
from partnercenter.licensing import services as licensing
from partnercenter.money import Price, from_minor, parse_amount
from partnercenter.orders.cancellation_errors import (
    CancellationWindowPassed,
    LineItemNotFound,
    OrderNotCancellable,
    ProductNotCancellable,
    SupportRequestRequired,
)
from partnercenter.orders.errors import OrderNotFound
from partnercenter.orders.models import (
    Charge,
    ChargeType,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
)

# The reason code a self-service cancellation's credit carries (``creditReasonCode``).
CANCELLATION_REASON = "customer_cancellation"
SUPPORT_REQUEST_PATH = "/partner/support/new"
SUPPORT_TOPIC = "csp_refund"


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- the policy as sold --------------------------------------------------------------------


@dataclass(frozen=True)
class LinePolicy:
    """An order line's cancellation policy, read from its JSON snapshot."""

    rules: Rules
    cap_amount: Decimal | None = None
    cap_currency: str | None = None
    cap_period_days: int | None = None
    support_request_above: Decimal | None = None
    support_request_currency: str | None = None

    @classmethod
    def from_snapshot(cls, snapshot: dict[str, Any] | None) -> LinePolicy:
        data = snapshot or {}
        cap = data.get("cap") or {}
        above = data.get("supportRequestAbove") or {}
        return cls(
            rules=Rules(
                window_days=data.get("windowDays"),
                credit_rule=CreditRule(data.get("creditRule", CreditRule.FULL.value)),
                full_credit_days=int(data.get("fullCreditDays") or 0),
                fee_percent=parse_amount(data.get("feePercent") or "0"),
            ),
            cap_amount=parse_amount(cap["amount"]) if cap.get("amount") is not None else None,
            cap_currency=cap.get("currency"),
            cap_period_days=cap.get("periodDays"),
            support_request_above=(
                parse_amount(above["amount"]) if above.get("amount") is not None else None
            ),
            support_request_currency=above.get("currency"),
        )


# --- judging one line ----------------------------------------------------------------------


@dataclass(frozen=True)
class LineJudgement:
    """What cancelling one line now would do."""

    line: OrderLine
    policy: LinePolicy
    assessment: Assessment
    basis: Charge | None  # the charge the credit gives back
    credit: Price  # after the refund cap
    already_cancelled: bool = False
    needs_support_request: bool = False

    @property
    def cancellable(self) -> bool:
        return not self.already_cancelled and self.assessment.cancellable

    @property
    def reason_code(self) -> str | None:
        if self.already_cancelled:
            return "already_cancelled"
        if self.assessment.refusal is not None:
            return self.assessment.refusal.value
        if self.needs_support_request:
            return SupportRequestRequired.name
        return None

    def to_json(self) -> dict[str, Any]:
        a = self.assessment
        return {
            "lineItemNumber": self.line.line_number,
            "offerId": self.line.catalog_item_id,
            "friendlyName": f"{self.line.product_title} {self.line.sku_title}",
            "status": self.line.status.value,
            "cancellable": self.cancellable and not self.needs_support_request,
            "daysRemaining": a.days_remaining if a.deadline is not None else None,
            "deadline": _iso(a.deadline) if a.deadline is not None else None,
            "windowDays": self.policy.rules.window_days,
            "credit": self.credit.to_json(),
            "requiresSupportRequest": self.needs_support_request,
            "reason": self.reason_code,
        }


def _price_of(charge: Charge) -> Price:
    cur = charge.currency
    return Price(
        from_minor(charge.net_minor, cur),
        from_minor(charge.tax_minor, cur),
        from_minor(charge.gross_minor, cur),
        cur,
    )


def _line_charges(session: Session, line: OrderLine) -> list[Charge]:
    return list(
        session.execute(
            select(Charge)
            .where(Charge.order_line_id == line.id)
            .order_by(Charge.created_at, Charge.id)
        ).scalars()
    )


def _basis_and_credited(line: OrderLine, charges: Sequence[Charge]) -> tuple[Charge | None, Price]:
    """The charge a credit gives back and what was already credited against it.

    One-time (upfront) billing: the line's first charge. Monthly and annual billing: the
    latest charge (the period in progress, or the one before at the same price while the
    current period's charge waits for its month's close). Credits are the negative charges
    that name it.
    """
    billed = [c for c in charges if c.gross_minor > 0 and c.reverses_charge_id is None]
    if not billed:
        return None, Price.zero(line.currency)
    basis = billed[-1] if line.billing_cycle in ("monthly", "annual") else billed[0]
    credited = Price.zero(line.currency)
    for c in charges:
        if c.reverses_charge_id == basis.id and c.gross_minor < 0:
            p = _price_of(c)
            credited = credited + Price(-p.net, -p.tax, -p.gross, p.currency)
    return basis, credited


def _cap_used(
    session: Session, *, customer_id: uuid.UUID, line: OrderLine, policy: LinePolicy, now: datetime
) -> Decimal:
    """Credits already given to the customer for this product type in the cap's period."""
    assert policy.cap_currency is not None
    since = now - timedelta(days=policy.cap_period_days or 365)
    total = session.execute(
        select(func.coalesce(func.sum(Charge.gross_minor), 0))
        .join(OrderLine, OrderLine.id == Charge.order_line_id)
        .where(
            Charge.customer_id == customer_id,
            Charge.charge_type == ChargeType.CANCEL,
            Charge.currency == policy.cap_currency,
            Charge.created_at >= since,
            OrderLine.product_type == line.product_type,
        )
    ).scalar_one()
    return -from_minor(int(total), policy.cap_currency)


def judge_line(
    session: Session,
    *,
    line: OrderLine,
    now: datetime,
    cap_spent_here: dict[str, Decimal] | None = None,
) -> LineJudgement:
    """Whether ``line`` can be cancelled at ``now`` and what it would credit."""
    policy = LinePolicy.from_snapshot(line.cancellation_policy)
    charges = _line_charges(session, line)
    basis, credited = _basis_and_credited(line, charges)
    charged = _price_of(basis) if basis is not None else Price.zero(line.currency)
    assessment = assess(
        rules=policy.rules,
        purchased_at=line.purchased_at,
        now=now,
        billing_cycle=line.billing_cycle,
        term_duration=line.term_duration,
        charged=charged,
        already_credited=credited,
    )
    credit = assessment.credit
    if (
        assessment.cancellable
        and policy.cap_amount is not None
        and policy.cap_currency == line.currency
    ):
        key = f"{line.product_type}:{line.currency}"
        spent = (cap_spent_here or {}).get(key, Decimal(0))
        order = line.order
        used = _cap_used(session, customer_id=order.customer_id, line=line, policy=policy, now=now)
        credit = cap_credit(credit, policy.cap_amount - used - spent)
    needs_support = (
        assessment.cancellable
        and policy.support_request_above is not None
        and policy.support_request_currency == line.currency
        and credit.gross > policy.support_request_above
    )
    return LineJudgement(
        line=line,
        policy=policy,
        assessment=assessment,
        basis=basis,
        credit=credit,
        already_cancelled=line.status == LineStatus.CANCELLED,
        needs_support_request=needs_support,
    )


# --- the preview ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Preview:
    """What cancelling the order (or some of its lines) now would do."""

    order: Order
    lines: list[LineJudgement]
    customer: Tenant
    credit: Price
    error: DomainError | None = None

    @property
    def cancellable(self) -> bool:
        return self.error is None

    @property
    def requires_support_request(self) -> bool:
        return isinstance(self.error, SupportRequestRequired)

    @property
    def deadline(self) -> datetime | None:
        deadlines = [j.assessment.deadline for j in self.lines if j.assessment.deadline]
        return min(deadlines) if deadlines else None

    @property
    def days_remaining(self) -> int | None:
        if self.deadline is None:
            return None
        return min(j.assessment.days_remaining for j in self.lines if j.assessment.deadline)

    @property
    def window_days(self) -> int | None:
        windows = [j.policy.rules.window_days for j in self.lines]
        known = [w for w in windows if w is not None]
        return min(known) if known else None

    @property
    def reason(self) -> str | None:
        return self.error.name if self.error is not None else None

    @property
    def support_request_uri(self) -> str | None:
        if isinstance(self.error, SupportRequestRequired):
            return self.error.support_request_uri
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "orderId": str(self.order.id),
            "customerId": str(self.order.customer_id),
            "orderStatus": self.order.status.value,
            "cancellable": self.cancellable,
            "daysRemaining": self.days_remaining,
            "deadline": _iso(self.deadline) if self.deadline else None,
            "windowDays": self.window_days,
            "credit": self.credit.to_json(),
            "requiresSupportRequest": self.requires_support_request,
            "supportRequestUri": self.support_request_uri,
            "reason": self.reason,
            "reasonCode": self.error.code if self.error is not None else None,
            "reasonDescription": self.error.description if self.error is not None else None,
            "lineItems": [j.to_json() for j in self.lines],
            "attributes": {"objectType": "CancellationPreview"},
        }


def support_request_uri(*, customer: Tenant, order: Order, amount: Price) -> str:
    """The support request form, filled with the customer, the order and the amount."""
    query = urlencode(
        {
            "topic": SUPPORT_TOPIC,
            "customer": customer.domain or str(customer.id),
            "order": str(order.id),
            "amount": str(amount.gross),
            "currency": amount.currency,
        }
    )
    return f"{SUPPORT_REQUEST_PATH}?{query}"


def _window_error(j: LineJudgement) -> CancellationWindowPassed:
    days = j.policy.rules.window_days
    deadline = j.assessment.deadline
    return CancellationWindowPassed(
        N_("You have passed your %(days)s-day cancellation window.", days=days or 0),
        data=[
            {
                "lineItemNumber": j.line.line_number,
                "windowDays": days,
                "purchaseDate": _iso(j.line.purchased_at),
                "deadline": _iso(deadline) if deadline else None,
            }
        ],
        source="lineItems",
    )


def _refusal(
    judgements: Sequence[LineJudgement],
    *,
    customer: Tenant,
    order: Order,
    total: Price,
    approved_by_support: bool = False,
) -> DomainError | None:
    """The first reason the lines cannot be cancelled together, most fundamental first.

    A cancellation a support request approved is not held to the window or the limit.
    """
    if not judgements or all(j.already_cancelled for j in judgements):
        return OrderNotCancellable(
            "The order can't be cancelled: it is already cancelled.",
            data=[{"orderId": str(order.id), "status": order.status.value}],
        )
    for j in judgements:
        if j.already_cancelled:
            return OrderNotCancellable(
                N_(
                    "The order can't be cancelled: line item %(number)s is already cancelled.",
                    number=j.line.line_number,
                ),
                data=[{"lineItemNumber": j.line.line_number, "status": "cancelled"}],
                source="lineItems",
            )
    for j in judgements:
        if j.assessment.refusal == Refusal.NOT_CANCELLABLE:
            return ProductNotCancellable(
                N_(
                    "%(product)s can't be cancelled: purchases of this product can never be "
                    "cancelled.",
                    product=j.line.product_title,
                ),
                data=[{"lineItemNumber": j.line.line_number, "productType": j.line.product_type}],
                source="lineItems",
            )
    for j in judgements:
        if j.assessment.refusal == Refusal.WINDOW_PASSED and not approved_by_support:
            return _window_error(j)
    for j in judgements:
        if j.assessment.refusal == Refusal.NOTHING_LEFT:
            return OrderNotCancellable(
                N_(
                    "The order can't be cancelled: line item %(number)s has nothing left to "
                    "credit.",
                    number=j.line.line_number,
                ),
                data=[{"lineItemNumber": j.line.line_number}],
                source="lineItems",
            )
    if any(j.needs_support_request for j in judgements) and not approved_by_support:
        uri = support_request_uri(customer=customer, order=order, amount=total)
        return SupportRequestRequired(
            N_(
                "Cancelling this order credits %(amount)s, more than can be cancelled here: "
                "file a customer support request.",
                amount=Money(total.gross, total.currency),
            ),
            support_request_uri=uri,
            data=[
                {
                    "lineItemNumber": j.line.line_number,
                    "credit": j.credit.to_json(),
                    "supportRequestAbove": str(j.policy.support_request_above),
                }
                for j in judgements
                if j.needs_support_request
            ],
        )
    return None


def _chosen_lines(order: Order, line_numbers: Iterable[int] | None) -> list[OrderLine]:
    if line_numbers is None:
        active = [line for line in order.lines if line.status == LineStatus.ACTIVE]
        return active or list(order.lines)
    by_number = {line.line_number: line for line in order.lines}
    chosen: list[OrderLine] = []
    for n in line_numbers:
        if n not in by_number:
            raise LineItemNotFound(
                f"The order has no line item {n}.",
                data=[{"lineItemNumber": n}],
                source="lineItems",
            )
        if by_number[n] not in chosen:
            chosen.append(by_number[n])
    return chosen


def _judge(
    session: Session,
    *,
    customer: Tenant,
    order: Order,
    line_numbers: Iterable[int] | None,
    now: datetime,
    approved_by_support: bool = False,
) -> Preview:
    lines = _chosen_lines(order, line_numbers)
    spent: dict[str, Decimal] = {}
    judgements: list[LineJudgement] = []
    for line in lines:
        j = judge_line(session, line=line, now=now, cap_spent_here=spent)
        judgements.append(j)
        if j.cancellable:
            key = f"{line.product_type}:{line.currency}"
            spent[key] = spent.get(key, Decimal(0)) + j.credit.gross
    total = Price.zero(order.currency)
    for j in judgements:
        if j.cancellable:
            total = total + j.credit
    error = _refusal(
        judgements,
        customer=customer,
        order=order,
        total=total,
        approved_by_support=approved_by_support,
    )
    return Preview(order=order, lines=judgements, customer=customer, credit=total, error=error)


def _order_of(
    session: Session, *, customer: Tenant, order_id: uuid.UUID, lock: bool = False
) -> Order:
    stmt = select(Order).where(Order.id == order_id)
    if lock:
        # The row lock makes racing cancellations of one order take turns; the loser then
        # reads the lines as the winner left them (populate_existing refreshes them).
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    order = session.execute(stmt).scalar_one_or_none()
    if order is None or order.customer_id != customer.id:
        raise OrderNotFound()
    if lock:
        for line in order.lines:
            session.refresh(line)
    return order


def preview(
    session: Session,
    *,
    customer: Tenant,
    order_id: uuid.UUID,
    now: datetime,
    line_numbers: Iterable[int] | None = None,
) -> Preview:
    """What cancelling the order's lines (all active ones by default) now would do."""
    order = _order_of(session, customer=customer, order_id=order_id)
    return _judge(session, customer=customer, order=order, line_numbers=line_numbers, now=now)


def cancellable_orders(session: Session, *, customer: Tenant, now: datetime) -> list[Preview]:
    """A preview of every order of the customer that still has an active line, newest first."""
    orders = session.execute(
        select(Order)
        .where(Order.customer_id == customer.id, Order.status == OrderStatus.COMPLETED)
        .order_by(Order.created_at.desc(), Order.id)
    ).scalars()
    return [_judge(session, customer=customer, order=o, line_numbers=None, now=now) for o in orders]


# --- cancelling ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancellation:
    """The outcome of a cancellation: the order as left, the credits written."""

    order: Order
    lines: list[LineJudgement]
    credits: list[Charge]
    credit: Price
    links_revoked: int

    def to_json(self) -> dict[str, Any]:
        from partnercenter.orders.services import order_json

        body = order_json(self.order)
        body["cancellation"] = {
            "cancelledLineItems": [j.line.line_number for j in self.lines],
            "credit": self.credit.to_json(),
            "credits": [
                {
                    "id": str(c.id),
                    "lineItemNumber": j.line.line_number,
                    "chargeType": c.charge_type.value,
                    "creditReasonCode": c.credit_reason_code,
                    "reversesChargeId": str(c.reverses_charge_id),
                    "billingMonth": c.billing_month,
                    "net": str(from_minor(c.net_minor, c.currency)),
                    "tax": str(from_minor(c.tax_minor, c.currency)),
                    "gross": str(from_minor(c.gross_minor, c.currency)),
                    "currency": c.currency,
                }
                for j in self.lines
                for c in self.credits
                if c.order_line_id == j.line.id
            ],
            "downloadLinksRevoked": self.links_revoked,
        }
        return body


def _record(
    session: Session,
    *,
    actor: Actor | None,
    request: RequestInfo | None,
    now: datetime,
    order: Order,
    customer: Tenant,
    resource_type: str,
    operation_type: str,
    details: dict[str, Any],
) -> None:
    audit.record(
        session,
        at=now,
        resource_type=resource_type,
        operation_type=operation_type,
        tenant_id=order.partner_id,
        actor=actor,
        request=request,
        customer_id=customer.id,
        customer_name=customer.name,
        details=details,
    )


def credit_billing_month(session: Session, *, now: datetime) -> str:
    """The open billing month a credit written at ``now`` is invoiced in ("YYYY-MM").

    Billing's rule: the clock's month, or the next open one once a close of it has begun.
    """
    return billing.open_billing_month(session, now=now)


def cancel_order(
    session: Session,
    *,
    actor: Actor | None,
    customer: Tenant,
    order_id: uuid.UUID,
    now: datetime,
    line_numbers: Iterable[int] | None = None,
    request: RequestInfo | None = None,
    support_request_id: str | None = None,
    issue_credit: bool = True,
) -> Cancellation:
    """Cancel the order's lines (all active ones by default), credit them, revoke access.

    One transaction: the order row is locked, the lines judged, cancelled lines go to
    quantity 0, a ``cancel`` charge with negative amounts names the charge it gives back,
    keys, entitlements and download links of each line are revoked, and the cancellation and
    the credit are written to the activity log. ``support_request_id``: an approved support
    request cancels above the self-service limit (its approval may write its own credit, then
    ``issue_credit`` is False). Raises 900117, 800019, 800061 or 12140 and writes nothing.
    """
    order = _order_of(session, customer=customer, order_id=order_id, lock=True)
    result = _judge(
        session,
        customer=customer,
        order=order,
        line_numbers=line_numbers,
        now=now,
        approved_by_support=support_request_id is not None,
    )
    if result.error is not None:
        raise result.error
    month = credit_billing_month(session, now=now)
    credits: list[Charge] = []
    links_revoked = 0
    for j in result.lines:
        line = j.line
        cancelled_quantity = line.quantity
        line.status = LineStatus.CANCELLED
        line.quantity = 0
        line.cancelled_at = now
        if issue_credit and j.basis is not None and j.credit.gross > 0:
            net, tax, gross = j.credit.minor()
            credits.append(
                Charge(
                    id=uuid.uuid4(),
                    partner_id=order.partner_id,
                    customer_id=order.customer_id,
                    order_id=order.id,
                    order_line_id=line.id,
                    charge_type=ChargeType.CANCEL,
                    currency=line.currency,
                    net_minor=-net,
                    tax_minor=-tax,
                    gross_minor=-gross,
                    quantity=cancelled_quantity,
                    billing_month=month,
                    created_at=now,
                    reverses_charge_id=j.basis.id,
                    credit_reason_code=CANCELLATION_REASON,
                )
            )
        links_revoked += licensing.revoke_purchase(session, order_line_id=line.id, now=now)
    if all(line.status == LineStatus.CANCELLED for line in order.lines):
        order.status = OrderStatus.CANCELLED
    session.add_all(credits)
    lines_detail = [
        {
            "lineItemNumber": j.line.line_number,
            "offerId": j.line.catalog_item_id,
            "product": f"{j.line.product_title} {j.line.sku_title}",
            "credit": j.credit.to_json() if issue_credit else None,
        }
        for j in result.lines
    ]
    _record(
        session,
        actor=actor,
        request=request,
        now=now,
        order=order,
        customer=customer,
        resource_type="order",
        operation_type="cancel_order",
        details={
            "orderId": str(order.id),
            "orderStatus": order.status.value,
            "lines": lines_detail,
            "credit": result.credit.to_json() if issue_credit else None,
            "supportRequestId": support_request_id,
            "downloadLinksRevoked": links_revoked,
        },
    )
    if credits:
        number_of = {j.line.id: j.line.line_number for j in result.lines}
        _record(
            session,
            actor=actor,
            request=request,
            now=now,
            order=order,
            customer=customer,
            resource_type="credit",
            operation_type="create_credit",
            details={
                "orderId": str(order.id),
                "creditReasonCode": CANCELLATION_REASON,
                "billingMonth": month,
                "currency": order.currency,
                "total": result.credit.to_json(),
                "credits": [
                    {
                        "chargeId": str(c.id),
                        "reversesChargeId": str(c.reverses_charge_id),
                        "lineItemNumber": number_of[c.order_line_id],
                        "net": str(from_minor(c.net_minor, c.currency)),
                        "tax": str(from_minor(c.tax_minor, c.currency)),
                        "gross": str(from_minor(c.gross_minor, c.currency)),
                    }
                    for c in credits
                ],
            },
        )
    # Flushed so a unique-constraint clash or a failed write surfaces here, in this request.
    session.flush()
    return Cancellation(
        order=order,
        lines=result.lines,
        credits=credits,
        credit=result.credit if issue_credit else Price.zero(order.currency),
        links_revoked=links_revoked,
    )


@dataclass(frozen=True)
class BatchItem:
    """One order of a batch cancellation: its cancellation or its error."""

    order_id: str
    cancellation: Cancellation | None = None
    error: DomainError | None = None

    def to_json(self) -> dict[str, Any]:
        if self.cancellation is not None:
            return {
                "orderId": self.order_id,
                "status": "cancelled",
                "order": self.cancellation.to_json(),
            }
        assert self.error is not None
        return {"orderId": self.order_id, "status": "failed", "error": self.error.body()}


def cancel_orders(
    session: Session,
    *,
    actor: Actor | None,
    customer: Tenant,
    order_ids: Sequence[str],
    now: datetime,
    request: RequestInfo | None = None,
) -> list[BatchItem]:
    """Cancel several orders of one customer, each judged on its own (savepoint per order).

    The orders are locked first, all together in id order, so two batches naming the same
    orders in different orders take turns instead of deadlocking.
    """
    wanted: list[uuid.UUID] = []
    for raw in order_ids:
        try:
            wanted.append(uuid.UUID(str(raw)))
        except ValueError:
            continue
    if wanted:
        session.execute(
            select(Order.id)
            .where(Order.id.in_(wanted), Order.customer_id == customer.id)
            .order_by(Order.id)
            .with_for_update()
        ).all()
    items: list[BatchItem] = []
    seen: set[str] = set()
    for raw in order_ids:
        try:
            oid = uuid.UUID(str(raw))
        except ValueError:
            items.append(BatchItem(str(raw), error=OrderNotFound()))
            continue
        if str(oid) in seen:
            items.append(
                BatchItem(
                    str(raw),
                    error=OrderNotCancellable(
                        "The order is named twice in this request.", source="orderIds"
                    ),
                )
            )
            continue
        seen.add(str(oid))
        savepoint = session.begin_nested()
        try:
            done = cancel_order(
                session, actor=actor, customer=customer, order_id=oid, now=now, request=request
            )
        except DomainError as exc:
            savepoint.rollback()
            items.append(BatchItem(str(raw), error=exc))
            continue
        savepoint.commit()
        items.append(BatchItem(str(raw), cancellation=done))
    return items

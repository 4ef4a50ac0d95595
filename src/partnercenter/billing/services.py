"""Monthly invoices: stamping charges with an open month, closing a month, reading invoices.

A month is closed in two transactions. :func:`start_close` marks its period ``closing`` (a
short transaction): from then on :func:`open_billing_month` stamps new charges with the next
month. :func:`close_period` then issues every invoice of the month in one transaction that
holds the period row ``FOR UPDATE``: a second close waits for it and finds the month closed.
Invoice lines are keyed by the charge they bill, so no charge is ever billed twice, and a
close of month M takes every charge not yet billed whose month is M or earlier, so a charge
that raced an earlier close is never lost. See ``docs/dev/billing.md``.
"""

from __future__ import annotations

import calendar
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ScalarSelect,
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.orm import Session, aliased

from partnercenter.audit import services as audit
from partnercenter.billing.credits import (
    add_months,
    billing_period,
    cycle_months,
    period_count,
    term_months,
)
from partnercenter.billing.errors import (
    EarlierPeriodOpen,
    InvalidBillingMonth,
    InvoiceNotFound,
    MonthNotEnded,
    NoOpenBillingMonth,
)
from partnercenter.billing.models import (
    BillingPeriod,
    DocumentType,
    Invoice,
    InvoiceLine,
    NumberSeries,
    PeriodState,
)
from partnercenter.context import Actor, RequestInfo
from partnercenter.i18n import N_, Moment
from partnercenter.identity.models import Tenant
from partnercenter.money import from_minor
from partnercenter.orders.models import Charge, ChargeType, Order, OrderLine
from partnercenter.permissions import TenantKind

INVOICE_SERIES = "G"
"""One gap-free series for invoices and credit notes: G000000001, G000000002, ..."""

HEADER_BATCH = 1000

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

Progress = Callable[[str, int, int], None]
"""``progress(step, done, total)``: called as a close advances (the CLI draws a bar)."""


# --- months --------------------------------------------------------------------------------


def parse_month(value: str) -> str:
    """A ``YYYY-MM`` month as given, or :class:`InvalidBillingMonth`."""
    text = (value or "").strip()
    if not _MONTH.match(text) or int(text[:4]) < 2000:
        raise InvalidBillingMonth(source="month")
    return text


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(month: str) -> datetime:
    return datetime(int(month[:4]), int(month[5:7]), 1, tzinfo=UTC)


def shift_month(month: str, months: int) -> str:
    return month_of(add_months(month_start(month), months))


def month_end(month: str) -> datetime:
    """The first instant after the month."""
    return month_start(shift_month(month, 1))


def months_between(earlier: str, later: str) -> int:
    return (int(later[:4]) - int(earlier[:4])) * 12 + int(later[5:7]) - int(earlier[5:7])


def month_label(month: str) -> str:
    return f"{calendar.month_abbr[int(month[5:7])]} {month[:4]}"


# --- periods -------------------------------------------------------------------------------


def _insert_ignoring_conflict(session: Session, table: Any, values: dict[str, Any]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING on PostgreSQL and SQLite."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        session.execute(pg_insert(table).values(**values).on_conflict_do_nothing())
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        session.execute(sqlite_insert(table).values(**values).on_conflict_do_nothing())


def _ensure_period(session: Session, month: str, now: datetime) -> None:
    _insert_ignoring_conflict(
        session,
        BillingPeriod.__table__,
        {"month": month, "state": PeriodState.OPEN.value, "created_at": now, "invoice_count": 0},
    )


def _period_state(session: Session, month: str, *, lock: str | None = None) -> PeriodState | None:
    stmt = select(BillingPeriod.state).where(BillingPeriod.month == month)
    if lock == "share":
        stmt = stmt.with_for_update(read=True)
    elif lock == "share_skip_locked":
        stmt = stmt.with_for_update(read=True, skip_locked=True)
    elif lock == "update":
        stmt = stmt.with_for_update()
    return session.execute(stmt).scalar_one_or_none()


def period_state_probe(now: datetime) -> ScalarSelect[Any]:
    """``now``'s billing period state as a scalar subquery, read as ``open_billing_month`` does.

    For a caller that reads other rows in the same statement (checkout reads it with the
    cart): the period row is held ``FOR SHARE`` (``SKIP LOCKED``: a running close's row reads
    as missing) until the transaction ends. Pass what it read to ``open_billing_month``.
    """
    return (
        select(BillingPeriod.state)
        .where(BillingPeriod.month == month_of(now))
        .with_for_update(read=True, skip_locked=True)
        .scalar_subquery()
    )


def open_billing_month(session: Session, *, now: datetime, probed: str | None = None) -> str:
    """The month a charge recorded ``now`` is billed in: ``now``'s month, or the next open one.

    Call it in the transaction that records the charge. It holds the open period's row
    ``FOR SHARE`` until that transaction ends, so a close waits for the charge to commit (and
    then bills it), and a charge recorded once a close has begun goes to the next month.
    ``probed``: the state ``period_state_probe(now)`` read in this transaction; when open, no
    statement is needed here.
    """
    month = month_of(now)
    if probed == PeriodState.OPEN:
        return month
    for _ in range(24):
        # One round trip on the common path: the period exists and is read under the share
        # lock at once. A running close holds the row FOR UPDATE for as long as it issues
        # invoices; SKIP LOCKED keeps a charge from waiting for it: the row then reads as
        # missing, and an unlocked read tells a closing month (go on to the next) from a
        # month with no period row yet.
        state = _period_state(session, month, lock="share_skip_locked")
        if state is None:
            state = _period_state(session, month)
            if state is None:
                _ensure_period(session, month, now)
                state = _period_state(session, month, lock="share")
            elif state == PeriodState.OPEN:
                # Locked while still open: a close is starting; wait for it to say so.
                state = _period_state(session, month, lock="share")
        if state == PeriodState.OPEN:
            return month
        month = shift_month(month, 1)
    raise NoOpenBillingMonth()


def get_period(session: Session, month: str) -> BillingPeriod | None:
    return session.get(BillingPeriod, month)


def _earlier_open_months(session: Session, month: str) -> list[str]:
    """Months before ``month`` with charges not yet billed, whose period is not closed."""
    line = InvoiceLine.__table__
    closed = select(BillingPeriod.month).where(BillingPeriod.state == PeriodState.CLOSED)
    stmt = (
        select(Charge.billing_month)
        .where(
            Charge.billing_month < month,
            Charge.billing_month.not_in(closed),
            ~exists().where(line.c.charge_id == Charge.id),
        )
        .distinct()
        .order_by(Charge.billing_month)
    )
    return list(session.execute(stmt).scalars())


def _check_closable(session: Session, month: str, now: datetime) -> None:
    if now < month_end(month):
        raise MonthNotEnded(
            N_(
                "%(month)s has not ended yet: it can be closed from %(moment)s on.",
                month=month,
                moment=Moment(month_end(month)),
            ),
            source="month",
        )
    earlier = _earlier_open_months(session, month)
    # Closed months are contiguous: a month skipped would never get its monthly charges.
    last_closed = session.execute(
        select(func.max(BillingPeriod.month)).where(BillingPeriod.state == PeriodState.CLOSED)
    ).scalar_one_or_none()
    if last_closed is not None and last_closed < month:
        gap = months_between(last_closed, month)
        earlier = sorted({*earlier, *(shift_month(last_closed, i) for i in range(1, gap))})
    if earlier:
        raise EarlierPeriodOpen(
            N_(
                "Close %(earlier)s before %(month)s: months are closed in order.",
                earlier=", ".join(earlier),
                month=month,
            ),
            data=earlier,
            source="month",
        )


def start_close(
    session: Session,
    *,
    month: str,
    now: datetime,
    actor: Actor | None = None,
    request: RequestInfo | None = None,
) -> PeriodState:
    """Mark the month ``closing`` so new charges go to the next month; returns its state.

    Commit before :func:`close_period`: that short transaction is all that waits for charges
    being recorded in the month, and all they wait for.
    """
    month = parse_month(month)
    _check_closable(session, month, now)
    _ensure_period(session, month, now)
    state = _period_state(session, month, lock="update")
    if state == PeriodState.OPEN:
        session.execute(
            update(BillingPeriod)
            .where(BillingPeriod.month == month)
            .values(state=PeriodState.CLOSING, closing_started_at=now)
        )
        audit.record(
            session,
            at=now,
            resource_type="billing_period",
            operation_type="start_billing_close",
            tenant_id=actor.tenant_id if actor else None,
            actor=actor,
            request=request,
            details={"month": month},
        )
        return PeriodState.CLOSING
    assert state is not None
    return state


# --- close ---------------------------------------------------------------------------------


@dataclass
class CurrencyTotal:
    currency: str
    invoices: int = 0
    net: Decimal = Decimal(0)
    tax: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)


@dataclass
class CloseResult:
    month: str
    already_closed: bool
    invoices_issued: int = 0
    lines_billed: int = 0
    cycle_charges_created: int = 0
    credit_notes: int = 0
    first_number: str | None = None
    last_number: str | None = None
    totals: dict[str, CurrencyTotal] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "state": PeriodState.CLOSED.value,
            "alreadyClosed": self.already_closed,
            "invoicesIssued": self.invoices_issued,
            "creditNotes": self.credit_notes,
            "linesBilled": self.lines_billed,
            "cycleChargesCreated": self.cycle_charges_created,
            "firstInvoiceNumber": self.first_number,
            "lastInvoiceNumber": self.last_number,
            "totals": [
                {
                    "currencyCode": t.currency,
                    "invoices": t.invoices,
                    "subtotal": str(t.net),
                    "taxTotal": str(t.tax),
                    "totalAmount": str(t.gross),
                }
                for t in sorted(self.totals.values(), key=lambda t: t.currency)
            ],
        }


RECURRING_CYCLES = ("monthly", "annual")
"""Billing cycles whose later periods are charged at month close (one_time: all at purchase)."""


def _cycle_charge_starts(line: OrderLine, month: str) -> datetime | None:
    """Start of the billing period of ``line`` that begins in ``month``, after the first.

    Periods are anchored on the purchase: a P3Y line billed annually and bought 2026-03-20
    starts periods on 2027-03-20 and 2028-03-20; one billed monthly, on the 20th of each of
    the 35 months after the purchase month. None when no later period starts in ``month``,
    or when it starts at or after the line's cancellation.
    """
    months = cycle_months(line.billing_cycle, line.term_duration)
    if months is None or line.billing_cycle not in RECURRING_CYCLES:
        return None
    elapsed = months_between(month_of(line.purchased_at), month)
    if elapsed < 1 or elapsed % months:
        return None
    k = elapsed // months
    if k >= period_count(line.billing_cycle, line.term_duration):
        return None
    start = add_months(line.purchased_at, elapsed)
    if line.cancelled_at is not None and start >= line.cancelled_at:
        return None  # never a period after the cancellation
    return start


def generate_cycle_charges(session: Session, *, month: str, now: datetime) -> int:
    """Record the charge of each recurring period that starts in ``month`` (idempotent).

    A line bought in month P is charged at purchase for its first period and here for each
    later one, in the month that period starts: a P1Y/P3Y term billed monthly for months
    P+1 .. P+11/35, one billed annually in P+12 and P+24 (P3Y). Each is written once (unique
    per line, type and month) with the amounts of the purchase charge (the price is per
    period), and never for a period that starts at or after the line's cancellation.
    """
    earliest = month_start(shift_month(month, -120))
    new = aliased(Charge)
    rows = session.execute(
        select(OrderLine, new)
        .join(new, and_(new.order_line_id == OrderLine.id, new.charge_type == ChargeType.NEW))
        .where(
            OrderLine.billing_cycle.in_(RECURRING_CYCLES),
            OrderLine.term_duration.is_not(None),
            OrderLine.purchased_at >= earliest,
            OrderLine.purchased_at < month_start(month),
        )
    ).all()
    created = 0
    for line, first in rows:
        start = _cycle_charge_starts(line, month)
        if start is None:
            continue
        before = session.execute(
            select(func.count())
            .select_from(Charge)
            .where(
                Charge.order_line_id == line.id,
                Charge.charge_type == ChargeType.CYCLE_CHARGE,
                Charge.billing_month == month,
            )
        ).scalar_one()
        if before:
            continue
        _insert_ignoring_conflict(
            session,
            Charge.__table__,
            {
                "id": uuid.uuid4(),
                "partner_id": first.partner_id,
                "customer_id": first.customer_id,
                "order_id": first.order_id,
                "order_line_id": line.id,
                "charge_type": ChargeType.CYCLE_CHARGE.value,
                "currency": first.currency,
                "net_minor": first.net_minor,
                "tax_minor": first.tax_minor,
                "gross_minor": first.gross_minor,
                "quantity": first.quantity,
                "billing_month": month,
                "created_at": now,
            },
        )
        created += 1
    return created


def _line_columns() -> list[str]:
    return [
        "charge_id",
        "partner_id",
        "invoice_month",
        "currency",
        "charge_month",
        "charge_type",
        "credit_reason_code",
        "reverses_charge_id",
        "customer_id",
        "customer_name",
        "customer_domain",
        "customer_country",
        "order_id",
        "order_date",
        "order_line_id",
        "line_number",
        "product_id",
        "sku_id",
        "availability_id",
        "product_name",
        "sku_name",
        "term_duration",
        "billing_cycle",
        "quantity",
        "unit_price_minor",
        "net_minor",
        "tax_minor",
        "gross_minor",
        "charged_at",
    ]


def _unbilled_select(invoice_month: Any, *, up_to: str | None) -> Select[Any]:
    """Charges not yet on any invoice, shaped as invoice lines (one statement, no Python)."""
    c = Charge.__table__
    line = InvoiceLine.__table__
    customer = Tenant.__table__.alias("customer")
    stmt = (
        select(
            c.c.id,
            c.c.partner_id,
            invoice_month,
            c.c.currency,
            c.c.billing_month,
            c.c.charge_type,
            c.c.credit_reason_code,
            c.c.reverses_charge_id,
            c.c.customer_id,
            customer.c.name,
            customer.c.domain,
            customer.c.country,
            c.c.order_id,
            Order.__table__.c.created_at,
            c.c.order_line_id,
            OrderLine.__table__.c.line_number,
            OrderLine.__table__.c.product_id,
            OrderLine.__table__.c.sku_id,
            OrderLine.__table__.c.availability_id,
            OrderLine.__table__.c.product_title,
            OrderLine.__table__.c.sku_title,
            OrderLine.__table__.c.term_duration,
            OrderLine.__table__.c.billing_cycle,
            c.c.quantity,
            OrderLine.__table__.c.unit_net_minor,
            c.c.net_minor,
            c.c.tax_minor,
            c.c.gross_minor,
            c.c.created_at,
        )
        .select_from(c)
        .join(OrderLine.__table__, OrderLine.__table__.c.id == c.c.order_line_id)
        .join(Order.__table__, Order.__table__.c.id == c.c.order_id)
        .join(customer, customer.c.id == c.c.customer_id)
        .where(~exists().where(line.c.charge_id == c.c.id))
    )
    if up_to is not None:
        stmt = stmt.where(c.c.billing_month <= up_to)
    return stmt


def _closed_result(session: Session, month: str) -> CloseResult:
    result = CloseResult(month=month, already_closed=True)
    for inv in session.execute(
        select(Invoice).where(Invoice.billing_month == month).order_by(Invoice.number)
    ).scalars():
        _count(result, inv)
    return result


def _count(result: CloseResult, inv: Invoice) -> None:
    total = result.totals.setdefault(inv.currency, CurrencyTotal(inv.currency))
    total.invoices += 1
    total.net += from_minor(inv.net_minor, inv.currency)
    total.tax += from_minor(inv.tax_minor, inv.currency)
    total.gross += from_minor(inv.gross_minor, inv.currency)
    result.invoices_issued += 1
    result.lines_billed += inv.line_count
    if inv.document_type == DocumentType.CREDIT_NOTE:
        result.credit_notes += 1
    result.first_number = result.first_number or inv.number
    result.last_number = inv.number


def _allocate_numbers(session: Session, count: int) -> int:
    """Reserve ``count`` consecutive numbers; the row stays locked until the commit."""
    _insert_ignoring_conflict(
        session, NumberSeries.__table__, {"series": INVOICE_SERIES, "next_value": 1}
    )
    first = session.execute(
        select(NumberSeries.next_value)
        .where(NumberSeries.series == INVOICE_SERIES)
        .with_for_update()
    ).scalar_one()
    session.execute(
        update(NumberSeries)
        .where(NumberSeries.series == INVOICE_SERIES)
        .values(next_value=first + count)
    )
    return int(first)


def format_number(value: int) -> str:
    return f"{INVOICE_SERIES}{value:09d}"


def close_period(
    session: Session,
    *,
    month: str,
    now: datetime,
    actor: Actor | None = None,
    request: RequestInfo | None = None,
    progress: Progress | None = None,
) -> CloseResult:
    """Issue every invoice of ``month`` in the caller's transaction (idempotent).

    Holds the period row ``FOR UPDATE``: a concurrent close waits, then finds it closed and
    returns what was issued without writing anything.
    """
    month = parse_month(month)
    report = progress or (lambda step, done, total: None)
    _check_closable(session, month, now)
    _ensure_period(session, month, now)
    state = _period_state(session, month, lock="update")
    if state == PeriodState.CLOSED:
        return _closed_result(session, month)

    report("charges", 0, 1)
    cycle = generate_cycle_charges(session, month=month, now=now)
    report("charges", 1, 1)

    # Every charge of this month or earlier not yet billed, as lines, in one statement. The
    # invoices they name are written next from the lines' sums (the foreign key is deferred).
    columns = _line_columns()
    report("lines", 0, 1)
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        # The anti-join probes invoice_lines while the statement fills it: with its statistics
        # from before (few rows) PostgreSQL picks a nested loop that rescans the growing table
        # for every charge. A hash anti-join is linear; this statement only.
        session.execute(text("SET LOCAL enable_nestloop = off"))
    session.execute(
        insert(InvoiceLine).from_select(columns, _unbilled_select(literal(month), up_to=month))
    )
    if postgres:
        session.execute(text("SET LOCAL enable_nestloop = on"))
    report("lines", 1, 1)

    line = InvoiceLine.__table__
    has_invoice = exists().where(
        Invoice.partner_id == line.c.partner_id,
        Invoice.billing_month == month,
        Invoice.currency == line.c.currency,
    )
    groups = session.execute(
        select(
            line.c.partner_id,
            line.c.currency,
            func.sum(line.c.net_minor),
            func.sum(line.c.tax_minor),
            func.sum(line.c.gross_minor),
            func.count(),
        )
        .where(line.c.invoice_month == month, ~has_invoice)
        .group_by(line.c.partner_id, line.c.currency)
        .order_by(line.c.partner_id, line.c.currency)
    ).all()
    partners = {
        row.id: row
        for row in session.execute(
            select(Tenant.id, Tenant.name, Tenant.country).where(Tenant.kind == TenantKind.PARTNER)
        )
    }
    result = CloseResult(month=month, already_closed=False, cycle_charges_created=cycle)
    first = _allocate_numbers(session, len(groups)) if groups else 0
    report("invoices", 0, len(groups))
    batch: list[dict[str, Any]] = []
    for index, (partner_id, currency, net, tax, gross, count) in enumerate(groups):
        partner = partners.get(partner_id)
        inv = Invoice(
            id=uuid.uuid4(),
            number=format_number(first + index),
            partner_id=partner_id,
            billing_month=month,
            currency=currency,
            document_type=DocumentType.CREDIT_NOTE if gross < 0 else DocumentType.INVOICE,
            net_minor=int(net),
            tax_minor=int(tax),
            gross_minor=int(gross),
            line_count=int(count),
            partner_name=partner.name if partner else "",
            partner_country=partner.country if partner else None,
            issued_at=now,
        )
        _count(result, inv)
        batch.append(
            {
                "id": inv.id,
                "number": inv.number,
                "partner_id": inv.partner_id,
                "billing_month": month,
                "currency": currency,
                "document_type": inv.document_type,
                "net_minor": inv.net_minor,
                "tax_minor": inv.tax_minor,
                "gross_minor": inv.gross_minor,
                "line_count": inv.line_count,
                "partner_name": inv.partner_name,
                "partner_country": inv.partner_country,
                "issued_at": now,
            }
        )
        if len(batch) >= HEADER_BATCH:
            session.execute(insert(Invoice), batch)
            batch = []
            report("invoices", index + 1, len(groups))
    if batch:
        session.execute(insert(Invoice), batch)
    report("invoices", len(groups), len(groups))

    session.execute(
        update(BillingPeriod)
        .where(BillingPeriod.month == month)
        .values(
            state=PeriodState.CLOSED,
            closed_at=now,
            closed_by=actor.user_id if actor else None,
            invoice_count=BillingPeriod.invoice_count + len(groups),
            closing_started_at=func.coalesce(BillingPeriod.closing_started_at, now),
        )
    )
    audit.record(
        session,
        at=now,
        resource_type="billing_period",
        operation_type="close_billing_period",
        tenant_id=actor.tenant_id if actor else None,
        actor=actor,
        request=request,
        details=result.to_json(),
    )
    return result


# --- verify --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    kind: str
    month: str
    partner_id: uuid.UUID | None
    currency: str
    expected: int
    found: int
    detail: str = ""


CLOSE_GRACE = timedelta(minutes=15)
"""How long a month may stay ``closing`` before it is reported stuck when no lock tells
(SQLite); on PostgreSQL a close in progress holds the period row, so a free row left
``closing`` for more than :data:`CLOSE_START_GRACE` is stuck whatever its age."""

CLOSE_START_GRACE = timedelta(minutes=1)
"""The time between :func:`start_close`'s commit and :func:`close_period` taking the row."""


@dataclass(frozen=True)
class StuckClose:
    """A month left ``closing`` by a close that stopped (killed, crashed, lost connection)."""

    month: str
    closing_started_at: datetime | None

    def describe(self) -> str:
        since = f" since {self.closing_started_at.isoformat()}" if self.closing_started_at else ""
        return (
            f"{self.month} is stuck in 'closing'{since}: its close stopped before it "
            f"finished. Run `partnercenter billing close {self.month}` to finish it."
        )


def stuck_closes(
    session: Session, *, now: datetime, grace: timedelta = CLOSE_GRACE
) -> list[StuckClose]:
    """Months in ``closing`` that no close is finishing, oldest first.

    :func:`close_period` issues a month in one transaction holding the period row ``FOR
    UPDATE``, so a close killed midway leaves no invoice, only the ``closing`` state that
    :func:`start_close` committed; closing the month again resumes it. On PostgreSQL a row
    that can be locked at once (``SKIP LOCKED``) has no close running; on SQLite, where one
    writer holds the whole database, a month ``closing`` for longer than ``grace`` is
    reported. ``now`` is the business clock the close itself stamped the start with.
    """
    rows = session.execute(
        select(BillingPeriod.month, BillingPeriod.closing_started_at)
        .where(BillingPeriod.state == PeriodState.CLOSING)
        .order_by(BillingPeriod.month)
    ).all()
    postgres = session.get_bind().dialect.name == "postgresql"
    stuck = []
    for month, started in rows:
        started_at = started.astimezone(UTC) if started is not None else None
        age = now - started_at if started_at is not None else None
        if postgres:
            free = session.execute(
                select(BillingPeriod.month)
                .where(BillingPeriod.month == month)
                .with_for_update(skip_locked=True)
            ).scalar_one_or_none()
            if free is None or (age is not None and age < CLOSE_START_GRACE):
                continue  # a close holds the row, or is about to take it
        elif age is not None and age < grace:
            continue
        stuck.append(StuckClose(month, started_at))
    return stuck


@dataclass
class VerifyReport:
    months: list[str]
    groups_checked: int = 0
    mismatches: list[Mismatch] = field(default_factory=list)
    stuck: list[StuckClose] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and not self.stuck


def verify(session: Session, *, now: datetime | None = None) -> VerifyReport:
    """Check every closed month: invoices equal the charges and credits recorded for it.

    Per closed month, partner and currency, three sums computed independently must agree:
    the charges stamped with the month (plus earlier ones billed late in it), the lines on its
    invoice, and the invoice's own totals. Each line must also equal the charge it bills.
    With ``now`` (the business clock), months left ``closing`` by a stopped close are
    reported too (:func:`stuck_closes`); the report is then not ``ok``.
    """
    if now is not None:
        stuck = stuck_closes(session, now=now)
        report = verify(session)
        report.stuck = stuck
        return report
    closed = list(
        session.execute(
            select(BillingPeriod.month)
            .where(BillingPeriod.state == PeriodState.CLOSED)
            .order_by(BillingPeriod.month)
        ).scalars()
    )
    report = VerifyReport(months=closed)
    if not closed:
        return report
    last_closed = closed[-1]
    c = Charge.__table__
    line = InvoiceLine.__table__

    # 1. Charges recorded for each closed month (by the month they were billed in, which is
    #    their own month unless they arrived after it closed), straight from the charges.
    billed_in = func.coalesce(line.c.invoice_month, c.c.billing_month)
    charge_sums = {
        (r.month, r.partner_id, r.currency): (int(r.net), int(r.tax), int(r.gross))
        for r in session.execute(
            select(
                billed_in.label("month"),
                c.c.partner_id,
                c.c.currency,
                func.sum(c.c.net_minor).label("net"),
                func.sum(c.c.tax_minor).label("tax"),
                func.sum(c.c.gross_minor).label("gross"),
            )
            .select_from(c.outerjoin(line, line.c.charge_id == c.c.id))
            .where(billed_in.in_(closed))
            .group_by(billed_in, c.c.partner_id, c.c.currency)
        )
    }
    # 2. The invoice lines, summed per invoice.
    line_sums = {
        (r.invoice_month, r.partner_id, r.currency): (int(r.net), int(r.tax), int(r.gross))
        for r in session.execute(
            select(
                line.c.invoice_month,
                line.c.partner_id,
                line.c.currency,
                func.sum(line.c.net_minor).label("net"),
                func.sum(line.c.tax_minor).label("tax"),
                func.sum(line.c.gross_minor).label("gross"),
            ).group_by(line.c.invoice_month, line.c.partner_id, line.c.currency)
        )
    }
    # 3. The invoices' own totals.
    header_sums = {
        (i.billing_month, i.partner_id, i.currency): (i.net_minor, i.tax_minor, i.gross_minor)
        for i in session.execute(select(Invoice)).scalars()
    }
    keys = set(charge_sums) | set(line_sums) | set(header_sums)
    for key in sorted(keys, key=lambda k: (k[0], str(k[1]), k[2])):
        month, partner_id, currency = key
        if month not in closed and key not in line_sums and key not in header_sums:
            continue
        report.groups_checked += 1
        zero = (0, 0, 0)
        charged = charge_sums.get(key, zero)
        for kind, found in (
            ("invoice_lines", line_sums.get(key, zero)),
            ("invoice_totals", header_sums.get(key, zero)),
        ):
            for part, expected_part, found_part in zip(
                ("net", "tax", "gross"), charged, found, strict=True
            ):
                if expected_part != found_part:
                    report.mismatches.append(
                        Mismatch(kind, month, partner_id, currency, expected_part, found_part, part)
                    )

    # 4. Each line equals the charge it bills, and no charge is billed before its month.
    for r in session.execute(
        select(line.c.charge_id, line.c.invoice_month, line.c.currency, line.c.partner_id)
        .join(c, c.c.id == line.c.charge_id)
        .where(
            or_(
                line.c.net_minor != c.c.net_minor,
                line.c.tax_minor != c.c.tax_minor,
                line.c.gross_minor != c.c.gross_minor,
                line.c.partner_id != c.c.partner_id,
                line.c.currency != c.c.currency,
                line.c.invoice_month < c.c.billing_month,
            )
        )
    ):
        report.mismatches.append(
            Mismatch(
                "line_differs_from_charge",
                r.invoice_month,
                r.partner_id,
                r.currency,
                0,
                0,
                str(r.charge_id),
            )
        )
    # 5. Every line bills a charge that exists (lines have no foreign key to charges).
    for r in session.execute(
        select(line.c.charge_id, line.c.invoice_month, line.c.currency, line.c.partner_id).where(
            ~exists().where(c.c.id == line.c.charge_id)
        )
    ):
        report.mismatches.append(
            Mismatch(
                "line_without_charge",
                r.invoice_month,
                r.partner_id,
                r.currency,
                0,
                0,
                str(r.charge_id),
            )
        )
    # 6. No charge of a closed month is left unbilled once a later month is closed too.
    for r in session.execute(
        select(c.c.id, c.c.billing_month, c.c.partner_id, c.c.currency).where(
            c.c.billing_month < last_closed,
            ~exists().where(line.c.charge_id == c.c.id),
        )
    ):
        report.mismatches.append(
            Mismatch(
                "charge_not_billed", r.billing_month, r.partner_id, r.currency, 0, 0, str(r.id)
            )
        )
    return report


# --- reading -------------------------------------------------------------------------------


def list_periods(session: Session) -> list[dict[str, Any]]:
    """Every billing period with its state and invoice totals per currency, newest first."""
    periods = list(
        session.execute(select(BillingPeriod).order_by(BillingPeriod.month.desc())).scalars()
    )
    totals: dict[str, list[CurrencyTotal]] = {}
    for r in session.execute(
        select(
            Invoice.billing_month,
            Invoice.currency,
            func.count(),
            func.sum(Invoice.net_minor),
            func.sum(Invoice.tax_minor),
            func.sum(Invoice.gross_minor),
        )
        .group_by(Invoice.billing_month, Invoice.currency)
        .order_by(Invoice.currency)
    ):
        month, currency, count, net, tax, gross = r
        totals.setdefault(month, []).append(
            CurrencyTotal(
                currency,
                int(count),
                from_minor(int(net), currency),
                from_minor(int(tax), currency),
                from_minor(int(gross), currency),
            )
        )
    pending: dict[str, list[CurrencyTotal]] = {}
    c = Charge.__table__
    line = InvoiceLine.__table__
    for row in session.execute(
        select(c.c.billing_month, c.c.currency, func.count(), func.sum(c.c.gross_minor))
        .where(~exists().where(line.c.charge_id == c.c.id))
        .group_by(c.c.billing_month, c.c.currency)
        .order_by(c.c.currency)
    ):
        month, currency, count, gross = tuple(row)
        pending.setdefault(month, []).append(
            CurrencyTotal(currency, int(count), gross=from_minor(int(gross), currency))
        )
    known = {p.month for p in periods}
    rows: list[dict[str, Any]] = [
        {
            "month": p.month,
            "state": p.state.value,
            "closedAt": p.closed_at,
            "invoiceCount": p.invoice_count,
            "totals": totals.get(p.month, []),
            "unbilled": pending.get(p.month, []),
        }
        for p in periods
    ]
    for month in sorted(set(pending) - known, reverse=True):
        rows.append(
            {
                "month": month,
                "state": PeriodState.OPEN.value,
                "closedAt": None,
                "invoiceCount": 0,
                "totals": [],
                "unbilled": pending[month],
            }
        )
    rows.sort(key=lambda r: r["month"], reverse=True)
    return rows


def list_invoices(
    session: Session, *, partner_id: uuid.UUID, limit: int | None = None, offset: int = 0
) -> Sequence[Invoice]:
    """The partner's invoices, newest month first (then by currency); a page when ``limit``."""
    stmt = (
        select(Invoice)
        .where(Invoice.partner_id == partner_id)
        .order_by(Invoice.billing_month.desc(), Invoice.currency, Invoice.number)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return session.execute(stmt).scalars().all()


def count_invoices(session: Session, *, partner_id: uuid.UUID) -> int:
    """How many invoices the partner has."""
    return int(
        session.execute(
            select(func.count()).select_from(Invoice).where(Invoice.partner_id == partner_id)
        ).scalar_one()
    )


def get_invoice(session: Session, *, partner_id: uuid.UUID, invoice_id: uuid.UUID) -> Invoice:
    """The partner's invoice; another partner's answers exactly like a missing one."""
    inv = session.get(Invoice, invoice_id)
    if inv is None or inv.partner_id != partner_id:
        raise InvoiceNotFound()
    return inv


def invoice_lines(session: Session, *, invoice: Invoice) -> Sequence[InvoiceLine]:
    return (
        session.execute(
            select(InvoiceLine)
            .where(
                InvoiceLine.partner_id == invoice.partner_id,
                InvoiceLine.invoice_month == invoice.billing_month,
                InvoiceLine.currency == invoice.currency,
            )
            .order_by(
                InvoiceLine.customer_name,
                InvoiceLine.customer_id,
                InvoiceLine.order_date,
                InvoiceLine.order_id,
                InvoiceLine.line_number,
                # a line's charges before its credits
                case((InvoiceLine.reverses_charge_id.is_(None), 0), else_=1),
                InvoiceLine.charged_at,
                InvoiceLine.charge_type,
            )
        )
        .scalars()
        .all()
    )


def unbilled_lines(session: Session, *, partner_id: uuid.UUID) -> list[InvoiceLine]:
    """The partner's charges and credits not yet on an invoice, shaped as (unsaved) lines."""
    stmt = _unbilled_select(Charge.__table__.c.billing_month, up_to=None).where(
        Charge.__table__.c.partner_id == partner_id
    )
    columns = _line_columns()
    lines = [
        InvoiceLine(**dict(zip(columns, row, strict=True))) for row in session.execute(stmt).all()
    ]
    lines.sort(
        key=lambda li: (li.customer_name, str(li.customer_id), li.order_date, li.line_number)
    )
    return lines


def monthly_totals(
    session: Session, *, partner_id: uuid.UUID, now: datetime, months: int = 12
) -> dict[str, list[tuple[str, Decimal]]]:
    """Invoiced totals per currency for each of the last ``months`` months up to ``now``'s."""
    last = month_of(now)
    first = shift_month(last, -(months - 1))
    wanted = [shift_month(first, i) for i in range(months)]
    found: dict[str, dict[str, int]] = {}
    for month, currency, gross in session.execute(
        select(Invoice.billing_month, Invoice.currency, func.sum(Invoice.gross_minor))
        .where(
            Invoice.partner_id == partner_id,
            Invoice.billing_month >= first,
            Invoice.billing_month <= last,
        )
        .group_by(Invoice.billing_month, Invoice.currency)
    ):
        found.setdefault(currency, {})[month] = int(gross)
    return {
        currency: [(m, from_minor(by_month.get(m, 0), currency)) for m in wanted]
        for currency, by_month in sorted(found.items())
    }


def charge_period(line: InvoiceLine) -> tuple[datetime, datetime]:
    """The service period a line bills (ChargeStartDate, ChargeEndDate), UTC.

    A charge covers its billing period (the purchase month's for ``new``, the one starting in
    its month for ``cycleCharge``); a credit runs from when it was issued to the end of the
    period in progress then. Perpetual software: the purchase instant.
    """
    purchased = line.order_date
    months = cycle_months(line.billing_cycle, line.term_duration)
    periods = period_count(line.billing_cycle, line.term_duration)
    charge_type = line.charge_type
    if months is None:
        if charge_type in (ChargeType.CANCEL.value, ChargeType.CUSTOMER_CREDIT.value):
            return line.charged_at, line.charged_at
        return purchased, purchased
    if charge_type in (ChargeType.CANCEL.value, ChargeType.CUSTOMER_CREDIT.value):
        end = billing_period(purchased, line.charged_at, months, periods=periods)[1]
        return min(line.charged_at, end), end
    k = 0
    if charge_type != ChargeType.NEW.value:
        k = min(max(months_between(month_of(purchased), line.charge_month), 0) // months, periods)
    return add_months(purchased, k * months), add_months(purchased, (k + 1) * months)


# --- documents -----------------------------------------------------------------------------


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _amount(minor: int, currency: str) -> str:
    return str(from_minor(int(minor), currency))


def invoice_json(invoice: Invoice) -> dict[str, Any]:
    base = f"/v1/invoices/{invoice.id}"
    currency = invoice.currency
    return {
        "id": str(invoice.id),
        "invoiceNumber": invoice.number,
        "documentType": invoice.document_type.value,
        "invoiceDate": iso_utc(invoice.issued_at),
        "billingMonth": invoice.billing_month,
        "billingPeriodStartDate": iso_utc(month_start(invoice.billing_month)),
        "billingPeriodEndDate": iso_utc(month_end(invoice.billing_month)),
        "currencyCode": currency,
        "subtotal": _amount(invoice.net_minor, currency),
        "taxTotal": _amount(invoice.tax_minor, currency),
        "totalCharges": _amount(invoice.gross_minor, currency),
        "totalAmount": _amount(invoice.gross_minor, currency),
        "lineItemCount": invoice.line_count,
        "partnerId": str(invoice.partner_id),
        "partnerName": invoice.partner_name,
        "links": {
            "self": {"uri": base, "method": "GET"},
            "lineItems": {"uri": f"{base}/lineitems", "method": "GET"},
            "lineItemsCsv": {"uri": f"{base}/lineitems.csv", "method": "GET"},
            "statement": {"uri": f"{base}/documents/statement", "method": "GET"},
        },
        "attributes": {"objectType": "Invoice"},
    }


def term_and_billing_cycle(line: InvoiceLine) -> str:
    months = term_months(line.term_duration)
    if months is None:
        term = "Perpetual"
    elif months % 12 == 0:
        term = f"{months // 12} Year{'s' if months > 12 else ''}"
    else:
        term = f"{months} Month{'s' if months > 1 else ''}"
    cycle = {"monthly": "Monthly", "annual": "Annual", "one_time": "One-Time"}.get(
        line.billing_cycle, line.billing_cycle
    )
    return f"{term} - {cycle} Payment"


BILLING_FREQUENCY = {"monthly": "Monthly", "annual": "Annual", "one_time": "OneTime"}


@dataclass(frozen=True)
class UnitPrices:
    """A line's price per unit, each shown only when it times the quantity is the row's amount.

    ``net``: per unit before tax, ``net x quantity == subtotal`` exactly (always so for a
    charge in a market whose prices exclude tax: the list price is the net). ``gross``: per
    unit with tax, ``gross x quantity == total`` exactly (always so for a charge in AU and BR,
    whose list prices include tax). A prorated credit usually has neither: its quantity is
    real, but no per-unit amount multiplies to it, so none is claimed. Minor units.
    """

    net: int | None
    gross: int | None


def unit_prices(line: InvoiceLine) -> UnitPrices:
    """The per-unit amounts of ``line`` that reconcile in its row (see :class:`UnitPrices`)."""
    quantity = line.quantity
    if quantity <= 0:
        return UnitPrices(None, None)
    net = line.net_minor // quantity if line.net_minor % quantity == 0 else None
    gross = line.gross_minor // quantity if line.gross_minor % quantity == 0 else None
    return UnitPrices(net, gross)


def _unit_amount(minor: int | None, currency: str) -> str | None:
    return None if minor is None else _amount(minor, currency)


def line_item_json(line: InvoiceLine, *, invoice_number: str = "") -> dict[str, Any]:
    """One line as Partner Center's one-time line item (camelCase)."""
    start, end = charge_period(line)
    currency = line.currency
    units = unit_prices(line)
    return {
        "lineItemId": str(line.charge_id),
        "partnerId": str(line.partner_id),
        "customerId": str(line.customer_id),
        "customerName": line.customer_name,
        "customerDomainName": line.customer_domain or "",
        "customerCountry": line.customer_country or "",
        "invoiceNumber": invoice_number,
        "orderId": str(line.order_id),
        "orderDate": iso_utc(line.order_date),
        "productId": line.product_id,
        "skuId": line.sku_id,
        "availabilityId": line.availability_id,
        "skuName": line.sku_name,
        "productName": line.product_name,
        "chargeType": line.charge_type,
        # Each unit price only when it times quantity is the row's subtotal (net) or total
        # (with tax): null otherwise (a tax-inclusive market's net, a prorated credit).
        "unitPrice": _unit_amount(units.net, currency),
        "unitPriceInclTax": _unit_amount(units.gross, currency),
        "quantity": line.quantity,
        "subtotal": _amount(line.net_minor, currency),
        "taxTotal": _amount(line.tax_minor, currency),
        "totalForCustomer": _amount(line.gross_minor, currency),
        "currency": currency,
        "chargeStartDate": iso_utc(start),
        "chargeEndDate": iso_utc(end),
        "creditReasonCode": line.credit_reason_code or "",
        "reversedLineItemId": str(line.reverses_charge_id) if line.reverses_charge_id else "",
        "billingFrequency": BILLING_FREQUENCY.get(line.billing_cycle, "OneTime"),
        "termAndBillingCycle": term_and_billing_cycle(line),
        "billingMonth": line.charge_month,
        "attributes": {"objectType": "OneTimeInvoiceLineItem"},
    }


CSV_FIELDS = [
    "PartnerId",
    "PartnerName",
    "CustomerId",
    "CustomerName",
    "CustomerDomainName",
    "CustomerCountry",
    "InvoiceNumber",
    "OrderId",
    "OrderDate",
    "ProductId",
    "SkuId",
    "AvailabilityId",
    "SkuName",
    "ProductName",
    "ChargeType",
    "UnitPrice",
    "UnitPriceInclTax",
    "Quantity",
    "Subtotal",
    "TaxTotal",
    "TotalForCustomer",
    "Currency",
    "ChargeStartDate",
    "ChargeEndDate",
    "CreditReasonCode",
    "BillingFrequency",
    "TermAndBillingCycle",
    "LineItemId",
    "ReversedLineItemId",
]


def _csv_cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A cell a spreadsheet would run as a formula is written as text.
    # (Full-width = + - @ too: some spreadsheets read them as their ASCII twins.)
    first = text[:1]
    if first in ("=", "+", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20") or (
        first == "-" and not _is_number(text)
    ):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


def lineitems_csv(invoice: Invoice, lines: Sequence[InvoiceLine]) -> str:
    """The reconciliation file: one row per line, Partner Center's one-time column names."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_FIELDS)
    for line in lines:
        item = line_item_json(line, invoice_number=invoice.number)
        item["partnerName"] = invoice.partner_name
        writer.writerow([_csv_cell(item[name[0].lower() + name[1:]]) for name in CSV_FIELDS])
    return out.getvalue()


def get_invoice_by_number(session: Session, *, partner_id: uuid.UUID, number: str) -> Invoice:
    """The partner's invoice by its number (``G000000001``, Partner Center's invoice id);
    another partner's answers exactly like a missing one (12904)."""
    inv = session.execute(
        select(Invoice).where(Invoice.number == number.strip().upper())
    ).scalar_one_or_none()
    if inv is None or inv.partner_id != partner_id:
        raise InvoiceNotFound()
    return inv

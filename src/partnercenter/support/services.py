"""Support requests: filing, the provider's queue, the conversation, statuses and refunds.

Partners (Global admin, Admin agent, Helpdesk agent) file requests and talk with provider
support; provider Support agents work the queue, ask for information, and approve (in full or
in part) or reject refunds. An approved refund is a ``customerCredit`` charge with negative
amounts on the partner's next invoice; when the request came from a cancellation that needed
it, approving also cancels the purchase. Every step is audited and written to the mail
outbox in the caller's transaction. See ``docs/dev/support.md``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnercenter.audit import services as audit
from partnercenter.billing import services as billing
from partnercenter.catalog.models import CreditRule
from partnercenter.context import Actor, RequestInfo
from partnercenter.customers import services as customers
from partnercenter.customers.errors import CustomerNotFound
from partnercenter.errors import DomainError, Forbidden, NotFound
from partnercenter.i18n import DEFAULT as DEFAULT_LANGUAGE
from partnercenter.i18n import N_, Lines, Message, Money, Verbatim, localize
from partnercenter.i18n import SUPPORTED as SUPPORTED_LANGUAGES
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant
from partnercenter.licensing import services as licensing
from partnercenter.licensing.errors import SoftwareItemNotFound
from partnercenter.money import MoneyError, from_minor, is_exact, parse_amount, to_minor
from partnercenter.orders import cancellation
from partnercenter.orders import services as orders
from partnercenter.orders.errors import OrderNotFound
from partnercenter.orders.models import Charge, ChargeType, LineStatus, Order, OrderLine
from partnercenter.permissions import Action, TenantKind
from partnercenter.storage import Storage
from partnercenter.support import mail
from partnercenter.support.errors import (
    AttachmentNotFound,
    AttachmentTooLarge,
    AttachmentTypeNotAllowed,
    InvalidAssignee,
    InvalidStatusTransition,
    InvalidSupportRequest,
    NotARefundRequest,
    RefundAlreadyDecided,
    RefundUndecided,
    RequestClosed,
    SupportRequestNotFound,
    TooManyAttachments,
)
from partnercenter.support.files import CheckedFile, IncomingFile, check_file
from partnercenter.support.models import (
    NoteAuthor,
    RefundStatus,
    RequestStatus,
    Severity,
    SupportAttachment,
    SupportNote,
    SupportRequest,
)

RESOURCE = "support_request"
MAX_FILES = 5
MAX_TITLE = 200
MAX_DESCRIPTION = 10_000
MAX_NOTE = 10_000
MAX_REASON = 2_000
REFUND_TOPIC = "csp_refund"
_EMAIL = re.compile(
    r"^[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$"
)
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,30}$")


@dataclass(frozen=True)
class Topic:
    """A type of problem a partner can report.

    ``number`` is the integer id Partner Center's SupportTopic resource documents (its
    ServiceRequest carries it as the string ``supportTopicId``); ``id`` is our readable code,
    accepted wherever the number is and shown beside it as ``code``.
    """

    id: str
    number: int
    name: str
    description: str
    refund: bool = False

    def to_json(self, gettext: Any = None) -> dict[str, Any]:
        tr = gettext or (lambda s: s)
        return {
            "id": self.number,
            "name": tr(self.name),
            "description": tr(self.description),
            "code": self.id,
            "attributes": {"objectType": "SupportTopic"},
        }


TOPICS: tuple[Topic, ...] = (
    Topic(
        REFUND_TOPIC,
        32000001,
        N_("CSP Purchase/Refund on behalf of customers"),
        N_("A refund or a cancellation that needs more information than the cancel dialog."),
        refund=True,
    ),
    Topic(
        "orders",
        32000002,
        N_("Orders and purchases"),
        N_("Carts, checkout, orders and their status."),
    ),
    Topic(
        "keys_downloads",
        32000003,
        N_("Product keys and downloads"),
        N_("Getting a product key, downloading software or a download link."),
    ),
    Topic(
        "billing",
        32000004,
        N_("Billing and invoices"),
        N_("Invoices, charges, credits and taxes."),
    ),
    Topic(
        "account",
        32000005,
        N_("Account, users and sign-in"),
        N_("Your partner account, its users and roles, signing in and API tokens."),
    ),
    Topic("other", 32000006, N_("Something else"), N_("Any other problem with Partner Center.")),
)
TOPICS_BY_ID = {t.id: t for t in TOPICS}
TOPICS_BY_NUMBER = {t.number: t for t in TOPICS}


def topic_for(ref: str | int | None) -> Topic | None:
    """The topic named by its number (``32000001`` or ``"32000001"``) or its code."""
    if ref is None or isinstance(ref, bool):
        return None
    if isinstance(ref, int):
        return TOPICS_BY_NUMBER.get(ref)
    text = ref.strip()
    if text.isdigit():
        return TOPICS_BY_NUMBER.get(int(text))
    return TOPICS_BY_ID.get(text.lower())


SEVERITY_LABELS: dict[Severity, str] = {
    Severity.CRITICAL: N_("Critical: business is stopped"),
    Severity.MODERATE: N_("Moderate: business is affected"),
    Severity.MINIMAL: N_("Minimal: a question or a small problem"),
}

STATUS_LABELS: dict[RequestStatus, str] = {
    RequestStatus.OPEN: N_("Open"),
    RequestStatus.IN_PROGRESS: N_("In progress"),
    RequestStatus.ATTENTION_NEEDED: N_("Attention needed"),
    RequestStatus.RESOLVED: N_("Resolved"),
    RequestStatus.CLOSED: N_("Closed"),
}

REFUND_STATUS_LABELS: dict[RefundStatus, str] = {
    RefundStatus.REQUESTED: N_("Requested"),
    RefundStatus.APPROVED: N_("Approved"),
    RefundStatus.PARTIALLY_APPROVED: N_("Partially approved"),
    RefundStatus.REJECTED: N_("Rejected"),
}

# Where provider support may move a request; partners may only close their own requests.
TRANSITIONS: dict[RequestStatus, frozenset[RequestStatus]] = {
    RequestStatus.OPEN: frozenset(
        {RequestStatus.IN_PROGRESS, RequestStatus.ATTENTION_NEEDED, RequestStatus.RESOLVED}
    ),
    RequestStatus.IN_PROGRESS: frozenset({RequestStatus.ATTENTION_NEEDED, RequestStatus.RESOLVED}),
    RequestStatus.ATTENTION_NEEDED: frozenset({RequestStatus.IN_PROGRESS, RequestStatus.RESOLVED}),
    RequestStatus.RESOLVED: frozenset({RequestStatus.CLOSED, RequestStatus.IN_PROGRESS}),
    RequestStatus.CLOSED: frozenset(),
}
ACTIVE_STATUSES = frozenset(
    {RequestStatus.OPEN, RequestStatus.IN_PROGRESS, RequestStatus.ATTENTION_NEEDED}
)


# --- input ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True)
class RefundDetails:
    """The structured description of a refund: customer, purchase, reason, amount."""

    customer: str = ""
    order_id: str = ""
    subscription_id: str = ""
    reason: str = ""
    amount: str = ""


@dataclass(frozen=True)
class NewRequest:
    topic_id: str = ""
    severity: str = ""
    title: str = ""
    description: str = ""
    contact: Contact = field(default_factory=Contact)
    refund: RefundDetails | None = None
    cancel_purchase: bool = False
    # No primary contact was given: the caller is the contact, as in Partner Center, and a
    # phone number is then optional.
    contact_is_caller: bool = False
    # The filer's language (``en``/``es``): mail to the contact is written in it.
    language: str = DEFAULT_LANGUAGE


@dataclass(frozen=True)
class RefundDecision:
    approve: bool
    amount: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class Changes:
    """What one update asks for; ``None`` leaves a part unchanged."""

    status: str | None = None
    note: str | None = None
    assign: bool = False
    assignee_id: uuid.UUID | None = None
    refund: RefundDecision | None = None


@dataclass(frozen=True)
class RefundTarget:
    """The purchase a refund is for, resolved and checked against the partner's customers."""

    customer: Tenant
    order: Order
    lines: list[OrderLine]
    entitlement_id: uuid.UUID | None


def _text(value: str | None) -> str:
    return (value or "").strip()


def _check_length(problems: dict[str, str], name: str, value: str, limit: int) -> None:
    if not value:
        problems[name] = N_("Required.")
    elif len(value) > limit:
        problems[name] = N_(
            "At most %(limit)s characters (this has %(length)s).", limit=limit, length=len(value)
        )


def _validate_fields(data: NewRequest) -> dict[str, str]:
    """Field problems that need no database: each field's own rules."""
    problems: dict[str, str] = {}
    topic = topic_for(data.topic_id)
    if topic is None:
        problems["supportTopicId"] = N_(
            "Choose a type of problem: %(topics)s.",
            topics=", ".join(f"{t.id} ({t.number})" for t in TOPICS),
        )
    if _text(data.severity) not in {s.value for s in Severity}:
        problems["severity"] = N_("Choose an impact: critical, moderate or minimal.")
    _check_length(problems, "title", _text(data.title), MAX_TITLE)
    description = _text(data.description)
    if topic is not None and topic.refund:
        if len(description) > MAX_DESCRIPTION:
            problems["description"] = N_("At most %(limit)s characters.", limit=MAX_DESCRIPTION)
    else:
        _check_length(problems, "description", description, MAX_DESCRIPTION)
    c = data.contact
    _check_length(problems, "primaryContact.firstName", _text(c.first_name), 100)
    _check_length(problems, "primaryContact.lastName", _text(c.last_name), 100)
    email = _text(c.email)
    if not email:
        problems["primaryContact.email"] = N_("Required.")
    elif len(email) > 320 or not _EMAIL.match(email):
        problems["primaryContact.email"] = N_("Not an email address such as name@contoso.com.")
    phone = _text(c.phone)
    if not phone and data.contact_is_caller:
        pass
    elif not phone:
        problems["primaryContact.phoneNumber"] = N_("Required.")
    elif not _PHONE.match(phone) or not 6 <= sum(ch.isdigit() for ch in phone) <= 15:
        problems["primaryContact.phoneNumber"] = N_(
            "Not a phone number: 6 to 15 digits, optionally starting with + (e.g. +1 425 555 0100)."
        )
    if topic is not None and topic.refund:
        r = data.refund or RefundDetails()
        if not _text(r.customer):
            problems["refund.customerTenantId"] = N_(
                "Required: the customer's tenant GUID or domain."
            )
        order_ref, sub_ref = _text(r.order_id), _text(r.subscription_id)
        if not order_ref and not sub_ref:
            problems["refund.orderId"] = N_("Required: the order id or the subscription id.")
        elif order_ref and sub_ref:
            problems["refund.orderId"] = N_("Give the order id or the subscription id, not both.")
        for name, ref in (("refund.orderId", order_ref), ("refund.subscriptionId", sub_ref)):
            if ref and name not in problems:
                try:
                    uuid.UUID(ref)
                except ValueError:
                    problems[name] = N_("Not an id: expected a GUID such as 0d6f2a4e-....")
        _check_length(problems, "refund.reason", _text(r.reason), MAX_REASON)
        amount_problem = _amount_problem(_text(r.amount))
        if amount_problem:
            problems["refund.amountRequested"] = amount_problem
    elif data.refund is not None and any(
        _text(v) for v in (data.refund.customer, data.refund.order_id, data.refund.amount)
    ):
        problems["refund"] = N_(
            "Refund details belong to the “%(topic)s” type of problem only.", topic=REFUND_TOPIC
        )
    return problems


def _amount_problem(raw: str) -> str | None:
    if not raw:
        return N_("Required: the amount to refund, e.g. 120.50.")
    try:
        amount = parse_amount(raw)
    except MoneyError:
        return N_(
            "“%(value)s” is not an amount: use digits and a decimal point, e.g. 120.50.", value=raw
        )
    if amount <= 0:
        return N_("The amount must be more than zero.")
    return None


def mail_language(lang: str | None) -> str:
    """The language a request's mail is written in: ``lang`` if supported, else English."""
    return lang if lang in SUPPORTED_LANGUAGES else DEFAULT_LANGUAGE


def _money(minor: int, currency: str) -> str:
    return f"{currency} {from_minor(minor, currency)}"


def _amount_of(minor: int, currency: str) -> Money:
    """An amount in minor units as people read it (``1,799.13 USD`` / ``1.799,13 USD``)."""
    return Money(from_minor(minor, currency), currency)


def _status(status: RequestStatus) -> Message:
    """A request status as its label, translated where it is shown."""
    return Message(STATUS_LABELS[status], {})


def _more_than_refundable(amount_minor: int, remaining_minor: int, currency: str) -> str:
    """The message for a refund above what is left: the amount, and what can still be given."""
    return N_(
        "%(amount)s is more than can still be refunded for this purchase: %(left)s (what was "
        "charged less earlier credits).",
        amount=_amount_of(amount_minor, currency),
        left=_amount_of(remaining_minor, currency),
    )


# --- cross-area helpers ----------------------------------------------------------------------


def _purchase_of_subscription(
    session: Session, *, customer: Tenant, subscription_id: uuid.UUID
) -> tuple[Order, OrderLine, uuid.UUID]:
    """The order and line a software subscription (purchase) id names, of this customer."""
    try:
        item = licensing.get_item(session, customer=customer, item_id=subscription_id)
    except SoftwareItemNotFound as exc:
        raise SoftwareItemNotFound(
            "No subscription with this id belongs to this customer.",
            source="refund.subscriptionId",
        ) from exc
    return item.order, item.line, item.id


def charged_less_credits(
    session: Session, *, line_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Per order line, what was charged less every credit given back, in minor units (gross).

    Reads the charges ledger; it belongs to ``billing.services`` and switches to it once that
    service is in the tree. Never below zero.
    """
    if not line_ids:
        return {}
    rows = session.execute(
        select(Charge.order_line_id, func.coalesce(func.sum(Charge.gross_minor), 0))
        .where(Charge.order_line_id.in_(list(line_ids)))
        .group_by(Charge.order_line_id)
    ).all()
    found = {line_id: max(0, int(total)) for line_id, total in rows}
    return {line_id: found.get(line_id, 0) for line_id in line_ids}


def _charged_parts(session: Session, *, line_id: uuid.UUID) -> tuple[int, int]:
    """The line's charged net and tax less credits (for splitting a refund's tax)."""
    row = session.execute(
        select(
            func.coalesce(func.sum(Charge.net_minor), 0),
            func.coalesce(func.sum(Charge.tax_minor), 0),
        ).where(Charge.order_line_id == line_id)
    ).one()
    return int(row[0]), int(row[1])


def _issue_customer_credit(
    session: Session,
    *,
    request: SupportRequest,
    line: OrderLine,
    order: Order,
    gross_minor: int,
    now: datetime,
) -> Charge:
    """A ``customerCredit`` charge (negative amounts) for part of a line, on the next invoice.

    Its tax is the line's charged tax share of the amount; it names the line's purchase charge.
    """
    month = billing.open_billing_month(session, now=now)
    charged_net, charged_tax = _charged_parts(session, line_id=line.id)
    charged_gross = charged_net + charged_tax
    tax = 0
    if charged_gross > 0 and charged_tax:
        tax = int(
            (Decimal(gross_minor) * Decimal(charged_tax) / Decimal(charged_gross)).quantize(
                Decimal(1), rounding=ROUND_HALF_UP
            )
        )
    original = (
        session.execute(
            select(Charge)
            .where(Charge.order_line_id == line.id, Charge.charge_type == ChargeType.NEW)
            .order_by(Charge.created_at)
        )
        .scalars()
        .first()
    )
    charge = Charge(
        id=uuid.uuid4(),
        partner_id=order.partner_id,
        customer_id=order.customer_id,
        order_id=order.id,
        order_line_id=line.id,
        charge_type=ChargeType.CUSTOMER_CREDIT,
        currency=order.currency,
        net_minor=-(gross_minor - tax),
        tax_minor=-tax,
        gross_minor=-gross_minor,
        # What was bought: the line itself goes to quantity 0 once cancelled.
        quantity=original.quantity if original else line.quantity,
        billing_month=month,
        created_at=now,
        reverses_charge_id=original.id if original else None,
        credit_reason_code="customerCredit",
    )
    session.add(charge)
    return charge


def _cancel_purchase_for_refund(
    session: Session,
    *,
    actor: Actor,
    req: SupportRequest,
    target: RefundTarget,
    now: datetime,
    info: RequestInfo | None,
) -> None:
    """Cancel the purchase exactly as self-service cancellation does, without its own credit.

    The approved refund is the credit; the cancellation revokes keys and download links and
    is held to neither the window nor the self-service limit (support approved it).
    """
    # A line that can never be cancelled (a software plan) is refunded without cancelling it.
    active = [
        line.line_number
        for line in target.lines
        if line.status == LineStatus.ACTIVE and line_can_be_cancelled(line)
    ]
    if not active:
        return
    cancellation.cancel_order(
        session,
        actor=actor,
        customer=target.customer,
        order_id=target.order.id,
        now=now,
        line_numbers=active,
        request=info,
        support_request_id=str(req.id),
        issue_credit=False,
    )


def line_can_be_cancelled(line: OrderLine) -> bool:
    """False for a line its policy as sold says can never be cancelled (credit rule ``none``
    or a 0-day window: SUSE and Red Hat software plans); the seed's rule."""
    rules = cancellation.LinePolicy.from_snapshot(line.cancellation_policy).rules
    return rules.credit_rule != CreditRule.NONE and rules.window_days != 0


def purchase_can_be_cancelled(
    session: Session, *, partner_id: uuid.UUID, customer: str, order_id: str, subscription_id: str
) -> bool | None:
    """Whether any line of the named purchase can be cancelled; None when it is not found.

    The support form offers "cancel the purchase when the refund is approved" only when True.
    """
    refund = RefundDetails(customer=customer, order_id=order_id, subscription_id=subscription_id)
    try:
        target = _resolve_target(session, partner_id=partner_id, refund=refund)
    except DomainError:
        return None
    return any(line_can_be_cancelled(line) for line in target.lines)


# --- filing --------------------------------------------------------------------------------


def _resolve_target(
    session: Session, *, partner_id: uuid.UUID, refund: RefundDetails, lock: bool = False
) -> RefundTarget:
    """The partner's customer and its order (or subscription); anything else is not found."""
    try:
        customer = customers.resolve_customer(
            session, partner_id=partner_id, ref=_text(refund.customer)
        )
    except CustomerNotFound as exc:
        raise CustomerNotFound(
            "No customer of yours has this tenant GUID or domain.",
            source="refund.customerTenantId",
        ) from exc
    entitlement_id: uuid.UUID | None = None
    if _text(refund.subscription_id):
        order, line, entitlement_id = _purchase_of_subscription(
            session, customer=customer, subscription_id=uuid.UUID(_text(refund.subscription_id))
        )
        lines = [line]
    else:
        try:
            order = orders.get_order(
                session, customer=customer, order_id=uuid.UUID(_text(refund.order_id))
            )
        except OrderNotFound as exc:
            raise OrderNotFound(
                "No order with this id belongs to this customer.", source="refund.orderId"
            ) from exc
        lines = list(order.lines)
    if lock:
        # Two approvals (or an approval and a cancellation) of one purchase queue on the order
        # row, as cancellation does, so neither sees the other's credits as still creditable.
        session.execute(select(Order.id).where(Order.id == order.id).with_for_update()).all()
    return RefundTarget(customer, order, lines, entitlement_id)


def creditable(session: Session, target: RefundTarget) -> dict[uuid.UUID, int]:
    """What can still be refunded on each line of the target, in minor units."""
    return charged_less_credits(session, line_ids=[line.id for line in target.lines])


def _refund_description(data: NewRequest, target: RefundTarget, amount_minor: int) -> str:
    r = data.refund or RefundDetails()
    parts = [
        f"Customer: {target.customer.name} ({target.customer.id}, {target.customer.domain})",
        f"Order ID: {target.order.id}",
    ]
    if target.entitlement_id:
        parts.append(f"Subscription ID: {target.entitlement_id}")
    parts += [
        f"Refund reason: {_text(r.reason)}",
        f"Amount requested: {_money(amount_minor, target.order.currency)}",
    ]
    return "\n".join(parts)


def written_description(req: SupportRequest) -> str | None:
    """What the person typed as a refund request's description, without the summary before it.

    Filing a refund stores, ahead of what was typed, an English summary written by the system
    (``_refund_description``: customer, order, subscription when there is one, reason and amount,
    one line each, the reason possibly over several lines); the API keeps returning that stored
    text unchanged. The portals show the summary in the reader's language from the request's
    own facts instead, followed by this typed part (verbatim, possibly ``""``).

    Returns ``None`` for a request that is not a refund or whose description does not start with
    that summary; then the stored description is shown as it is.
    """
    if req.refund_status is None or req.refund_reason is None:
        return None
    lines = req.description.split("\n")
    summary = 2 + (1 if req.entitlement_id else 0) + len(req.refund_reason.split("\n")) + 1
    if (
        len(lines) < summary
        or not lines[0].startswith("Customer: ")
        or not lines[summary - 1].startswith("Amount requested: ")
    ):
        return None
    return "\n".join(lines[summary:]).strip()


def file_request(
    session: Session,
    *,
    actor: Actor,
    data: NewRequest,
    files: Sequence[IncomingFile] = (),
    storage: Storage | None = None,
    now: datetime,
    info: RequestInfo | None = None,
    base_url: str = "",
) -> SupportRequest:
    """Check every field, then record the request, its files, an activity record and a mail."""
    if not actor.can(Action.FILE_SUPPORT_REQUEST):
        raise Forbidden()
    problems = _validate_fields(data)
    if len(files) > MAX_FILES:
        problems["attachments"] = N_(
            "At most %(limit)s files (you chose %(count)s).", limit=MAX_FILES, count=len(files)
        )
    checked: list[CheckedFile] = []
    for index, incoming in enumerate(files):
        try:
            checked.append(check_file(incoming))
        except (AttachmentTooLarge, AttachmentTypeNotAllowed) as exc:
            problems.setdefault("attachments", exc.description)
            problems[f"attachments[{index}]"] = exc.description
    if problems:
        raise InvalidSupportRequest(problems)
    topic = topic_for(data.topic_id)
    assert topic is not None  # checked by _validate_fields
    target: RefundTarget | None = None
    amount_minor: int | None = None
    description = _text(data.description)
    if topic.refund:
        assert data.refund is not None
        target = _resolve_target(session, partner_id=actor.tenant_id, refund=data.refund)
        currency = target.order.currency
        amount = parse_amount(_text(data.refund.amount))
        if not is_exact(amount, currency):
            raise InvalidSupportRequest(
                {
                    "refund.amountRequested": N_(
                        "Too many decimals for an amount in %(currency)s.", currency=currency
                    )
                }
            )
        amount_minor = to_minor(amount, currency)
        remaining = sum(creditable(session, target).values())
        if amount_minor > remaining:
            raise InvalidSupportRequest(
                {"refund.amountRequested": _more_than_refundable(amount_minor, remaining, currency)}
            )
        refund_text = _refund_description(data, target, amount_minor)
        description = f"{refund_text}\n\n{description}".strip() if description else refund_text
    c = data.contact
    req = SupportRequest(
        id=uuid.uuid4(),
        partner_id=actor.tenant_id,
        created_by=actor.user_id,
        created_by_email=actor.email,
        topic_id=topic.id,
        severity=Severity(_text(data.severity)),
        title=_text(data.title),
        description=description,
        status=RequestStatus.OPEN,
        contact_first_name=_text(c.first_name),
        contact_last_name=_text(c.last_name),
        contact_email=_text(c.email),
        contact_phone=_text(c.phone),
        contact_language=mail_language(data.language),
        customer_id=target.customer.id if target else None,
        order_id=target.order.id if target else None,
        entitlement_id=target.entitlement_id if target else None,
        refund_reason=_text(data.refund.reason) if target and data.refund else None,
        currency=target.order.currency if target else None,
        amount_requested_minor=amount_minor,
        refund_status=RefundStatus.REQUESTED if target else None,
        cancel_purchase=bool(
            data.cancel_purchase
            and target
            and any(line_can_be_cancelled(line) for line in target.lines)
        ),
        credit_charge_ids=[],
        created_at=now,
        updated_at=now,
        notes=[],
        attachments=[],
    )
    session.add(req)
    audit.record(
        session,
        at=now,
        resource_type=RESOURCE,
        operation_type="create_support_request",
        tenant_id=actor.tenant_id,
        actor=actor,
        request=info,
        customer_id=target.customer.id if target else None,
        customer_name=target.customer.name if target else None,
        details=_audit_details(req),
    )
    for file in checked:
        _store_attachment(
            session, req=req, actor=actor, file=file, storage=storage, now=now, info=info
        )
    mail.enqueue(
        session,
        request=req,
        subject=localize(
            N_("Support request received: %(title)s", title=req.title), req.contact_language
        ),
        body=localize(
            N_(
                "Hello %(name)s,\n\nWe received your support request “%(title)s” (%(id)s). "
                "Its status is: %(status)s.\n\nFollow it in Partner Center: %(link)s\n",
                name=req.contact_first_name,
                title=req.title,
                id=str(req.id),
                status=Message(STATUS_LABELS[req.status], {}),
                link=f"{base_url}/partner/support/{req.id}",
            ),
            req.contact_language,
        ),
        now=now,
    )
    return req


def _audit_details(req: SupportRequest, **extra: Any) -> dict[str, Any]:
    details: dict[str, Any] = {
        "supportRequestId": str(req.id),
        "supportTopicId": req.topic_id,
        "status": req.status.value,
    }
    if req.order_id:
        details["orderId"] = str(req.order_id)
    if req.amount_requested_minor is not None and req.currency:
        details["amountRequested"] = str(from_minor(req.amount_requested_minor, req.currency))
        details["currency"] = req.currency
    details.update(extra)
    return details


def _store_attachment(
    session: Session,
    *,
    req: SupportRequest,
    actor: Actor,
    file: CheckedFile,
    storage: Storage | None,
    now: datetime,
    info: RequestInfo | None,
) -> SupportAttachment:
    if storage is None:
        raise RuntimeError("attachments need a file store")
    import io

    attachment_id = uuid.uuid4()
    key = f"support/{req.id}/{attachment_id}"
    stored = storage.put(key, io.BytesIO(file.content))
    attachment = SupportAttachment(
        id=attachment_id,
        request_id=req.id,
        file_name=file.file_name,
        content_type=file.content_type,
        size=stored.size,
        sha256=stored.sha256,
        storage_key=key,
        uploaded_by=actor.user_id,
        uploaded_by_email=actor.email,
        uploaded_at=now,
    )
    req.attachments.append(attachment)
    audit.record(
        session,
        at=now,
        resource_type=RESOURCE,
        operation_type="add_support_request_attachment",
        tenant_id=req.partner_id,
        actor=actor,
        request=info,
        customer_id=req.customer_id,
        details=_audit_details(
            req, fileName=file.file_name, size=stored.size, sha256=stored.sha256
        ),
    )
    return attachment


def add_attachments(
    session: Session,
    *,
    actor: Actor,
    request_id: uuid.UUID,
    files: Sequence[IncomingFile],
    storage: Storage,
    now: datetime,
    info: RequestInfo | None = None,
) -> list[SupportAttachment]:
    """Attach files to a request (at most 5 in all), each checked by its content."""
    req = _locked(session, actor=actor, request_id=request_id)
    if req.status == RequestStatus.CLOSED:
        raise RequestClosed()
    if not files:
        raise InvalidSupportRequest({"files": N_("Choose at least one file.")})
    if len(req.attachments) + len(files) > MAX_FILES:
        raise TooManyAttachments(
            N_(
                "A support request can have at most %(limit)s files; this one has %(count)s "
                "and you sent %(sent)s.",
                limit=MAX_FILES,
                count=len(req.attachments),
                sent=len(files),
            ),
            source="files",
        )
    checked = [check_file(f) for f in files]
    added = [
        _store_attachment(
            session, req=req, actor=actor, file=f, storage=storage, now=now, info=info
        )
        for f in checked
    ]
    req.updated_at = now
    return added


def get_attachment(
    session: Session, *, actor: Actor, request_id: uuid.UUID, attachment_id: uuid.UUID
) -> SupportAttachment:
    req = get_request(session, actor=actor, request_id=request_id)
    for attachment in req.attachments:
        if attachment.id == attachment_id:
            return attachment
    raise AttachmentNotFound()


# --- reading -------------------------------------------------------------------------------


def _visible(actor: Actor) -> Any:
    if actor.can(Action.WORK_SUPPORT_QUEUE):
        return None
    if actor.tenant_kind == TenantKind.PARTNER and actor.can(Action.VIEW_SUPPORT_REQUESTS):
        return SupportRequest.partner_id == actor.tenant_id
    raise Forbidden()


def get_request(session: Session, *, actor: Actor, request_id: uuid.UUID) -> SupportRequest:
    """One request the actor may see; another partner's is not found."""
    condition = _visible(actor)
    req = session.get(SupportRequest, request_id)
    if req is None or (condition is not None and req.partner_id != actor.tenant_id):
        raise SupportRequestNotFound()
    return req


def _locked(session: Session, *, actor: Actor, request_id: uuid.UUID) -> SupportRequest:
    """The request, locked for this transaction so concurrent changes queue behind it."""
    get_request(session, actor=actor, request_id=request_id)
    return session.execute(
        select(SupportRequest)
        .where(SupportRequest.id == request_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


@dataclass(frozen=True)
class QueueFilter:
    status: str | None = None
    topic_id: str | None = None
    partner_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    min_age_days: int | None = None
    max_age_days: int | None = None
    assigned: str | None = None  # "me", "none" or a user id


def list_requests(
    session: Session,
    *,
    actor: Actor,
    filters: QueueFilter = QueueFilter(),
    now: datetime,
    offset: int = 0,
    limit: int = 100,
) -> tuple[Sequence[SupportRequest], int]:
    """Requests the actor may see, oldest first for the queue, with the total count."""
    condition = _visible(actor)
    query = select(SupportRequest)
    if condition is not None:
        query = query.where(condition)
    problems: dict[str, str] = {}
    if filters.status:
        statuses = [s.strip() for s in filters.status.split(",") if s.strip()]
        bad = [s for s in statuses if s not in {v.value for v in RequestStatus}]
        if bad:
            problems["status"] = N_(
                "Unknown status “%(status)s”: use %(statuses)s.",
                status=bad[0],
                statuses=", ".join(s.value for s in RequestStatus),
            )
        else:
            query = query.where(SupportRequest.status.in_([RequestStatus(s) for s in statuses]))
    if filters.topic_id:
        wanted = topic_for(filters.topic_id)
        if wanted is None:
            problems["supportTopicId"] = N_(
                "Unknown type of problem “%(topic)s”.", topic=filters.topic_id
            )
        query = query.where(SupportRequest.topic_id == (wanted.id if wanted else ""))
    if filters.customer_id is not None:
        query = query.where(SupportRequest.customer_id == filters.customer_id)
    if filters.partner_id is not None:
        query = query.where(SupportRequest.partner_id == filters.partner_id)
    ages: dict[str, int] = {}
    for name, days in (("minAgeDays", filters.min_age_days), ("maxAgeDays", filters.max_age_days)):
        if days is not None and not 0 <= days <= 36500:
            problems[name] = N_("A whole number of days from 0 to 36500.")
        elif days is not None:
            ages[name] = days  # only in-range ages: a huge one overflows the date arithmetic
    if "minAgeDays" in ages:
        query = query.where(SupportRequest.created_at <= now - timedelta(days=ages["minAgeDays"]))
    if "maxAgeDays" in ages:
        query = query.where(SupportRequest.created_at >= now - timedelta(days=ages["maxAgeDays"]))
    if filters.assigned:
        if filters.assigned == "me":
            query = query.where(SupportRequest.assigned_to == actor.user_id)
        elif filters.assigned == "none":
            query = query.where(SupportRequest.assigned_to.is_(None))
        else:
            try:
                query = query.where(SupportRequest.assigned_to == uuid.UUID(filters.assigned))
            except ValueError:
                problems["assignedTo"] = N_("Use me, none or a user id.")
    if problems:
        raise InvalidSupportRequest(problems)
    total = int(session.execute(select(func.count()).select_from(query.subquery())).scalar_one())
    rows = (
        session.execute(
            query.order_by(SupportRequest.created_at.desc(), SupportRequest.id)
            .offset(offset)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    return rows, total


def tenant_names(session: Session, ids: Sequence[uuid.UUID | None]) -> dict[uuid.UUID, Tenant]:
    """Partners and customers by id, for lists that show their names."""
    return customers.customer_by_ids(session, {i for i in ids if i is not None})


# --- working it ----------------------------------------------------------------------------


def _side(actor: Actor) -> NoteAuthor:
    return NoteAuthor.PROVIDER if actor.can(Action.WORK_SUPPORT_QUEUE) else NoteAuthor.PARTNER


def _add_note(
    req: SupportRequest, *, actor: Actor, body: str, now: datetime, status_change: str | None
) -> SupportNote:
    note = SupportNote(
        id=uuid.uuid4(),
        request_id=req.id,
        seq=len(req.notes) + 1,
        author_side=_side(actor),
        author_id=actor.user_id,
        author_email=actor.email,
        author_name=actor.display_name,
        body=body,
        status_change=status_change,
        created_at=now,
    )
    req.notes.append(note)
    return note


def _move(req: SupportRequest, to: RequestStatus, *, actor: Actor, now: datetime) -> None:
    provider = _side(actor) == NoteAuthor.PROVIDER
    if to == req.status:
        raise InvalidStatusTransition(
            N_("The support request's status is already %(status)s.", status=_status(to)),
            source="status",
        )
    # Partners close their own requests; nothing else is theirs to set.
    allowed = to in TRANSITIONS[req.status] if provider else to == RequestStatus.CLOSED
    if not allowed:
        raise InvalidStatusTransition(
            N_(
                "A support request cannot go from %(before)s to %(after)s.",
                before=_status(req.status),
                after=_status(to),
            )
            if provider
            else N_(
                "A support request cannot go from %(before)s to %(after)s "
                "(partners can only close a request).",
                before=_status(req.status),
                after=_status(to),
            ),
            source="status",
            data=[{"from": req.status.value, "to": to.value}],
        )
    if (
        provider
        and to in {RequestStatus.RESOLVED, RequestStatus.CLOSED}
        and req.refund_status == RefundStatus.REQUESTED
    ):
        raise RefundUndecided(source="status")
    req.status = to
    if to == RequestStatus.RESOLVED:
        req.resolved_at = now


def update_request(
    session: Session,
    *,
    actor: Actor,
    request_id: uuid.UUID,
    changes: Changes,
    now: datetime,
    info: RequestInfo | None = None,
    base_url: str = "",
) -> SupportRequest:
    """Apply a note, an assignment, a refund decision and a status change, in that order."""
    req = _locked(session, actor=actor, request_id=request_id)
    provider = _side(actor) == NoteAuthor.PROVIDER
    if (changes.assign or changes.refund is not None) and not provider:
        raise Forbidden(N_("Only provider support can assign requests and decide refunds."))
    if req.status == RequestStatus.CLOSED:
        raise RequestClosed()
    target_status: RequestStatus | None = None
    if changes.status is not None:
        try:
            target_status = RequestStatus(changes.status)
        except ValueError:
            raise InvalidSupportRequest(
                {
                    "status": N_(
                        "Unknown status: use %(statuses)s",
                        statuses=", ".join(s.value for s in RequestStatus),
                    )
                }
            ) from None
    note_text = _text(changes.note) if changes.note is not None else None
    if note_text is not None and (not note_text or len(note_text) > MAX_NOTE):
        raise InvalidSupportRequest(
            {
                "newNote.text": N_("Required.")
                if not note_text
                else N_("At most %(limit)s characters.", limit=MAX_NOTE)
            }
        )
    if not (note_text or changes.assign or changes.refund or target_status):
        raise InvalidSupportRequest(
            {"": N_("Nothing to change: give status, newNote, assignedTo or refund.")}
        )
    told: list[str] = []  # i18n.Message sentences, in both languages in the mail
    before = req.status
    if changes.assign:
        _assign(session, req=req, actor=actor, assignee_id=changes.assignee_id, now=now, info=info)
    if changes.refund is not None:
        told.append(
            _decide(session, req=req, actor=actor, decision=changes.refund, now=now, info=info)
        )
    if (
        target_status is None
        and note_text
        and not provider
        and req.status == RequestStatus.ATTENTION_NEEDED
    ):
        # The partner answered what support asked: the request goes back to support.
        target_status = RequestStatus.IN_PROGRESS
        req.status = RequestStatus.IN_PROGRESS
    elif target_status is not None and not (changes.refund and target_status == req.status):
        # (a decision already resolved the request: "resolved" beside it is no change)
        _move(req, target_status, actor=actor, now=now)
    if target_status is None and provider and req.status == RequestStatus.OPEN and note_text:
        # Support answering an open request has picked it up.
        _move(req, RequestStatus.IN_PROGRESS, actor=actor, now=now)
    status_change = req.status.value if req.status != before else None
    if note_text:
        _add_note(req, actor=actor, body=note_text, now=now, status_change=status_change)
        told.append(N_("%(name)s wrote:\n%(note)s", name=actor.display_name, note=note_text))
        audit.record(
            session,
            at=now,
            resource_type=RESOURCE,
            operation_type="add_support_request_note",
            tenant_id=req.partner_id,
            actor=actor,
            request=info,
            customer_id=req.customer_id,
            details=_audit_details(req, side=_side(actor).value),
        )
    if status_change:
        if not note_text:
            _add_note(
                req,
                actor=actor,
                body=f"Status changed from {before.value} to {req.status.value}.",
                now=now,
                status_change=status_change,
            )
        told.insert(0, N_("Status: %(status)s", status=Message(STATUS_LABELS[req.status], {})))
        audit.record(
            session,
            at=now,
            resource_type=RESOURCE,
            operation_type="update_support_request",
            tenant_id=req.partner_id,
            actor=actor,
            request=info,
            customer_id=req.customer_id,
            details=_audit_details(req, previousStatus=before.value),
        )
    req.updated_at = now
    if told:
        mail.enqueue(
            session,
            request=req,
            subject=localize(
                N_("Support request updated: %(title)s", title=req.title),
                mail_language(req.contact_language),
            ),
            body=localize(
                N_(
                    "Hello %(name)s,\n\nYour support request “%(title)s” (%(id)s) changed.\n\n"
                    "%(changes)s\n\nFollow it in Partner Center: %(link)s\n",
                    name=req.contact_first_name,
                    title=req.title,
                    id=str(req.id),
                    changes=Lines(told, "\n\n"),
                    link=f"{base_url}/partner/support/{req.id}",
                ),
                mail_language(req.contact_language),
            ),
            now=now,
        )
    return req


def _assign(
    session: Session,
    *,
    req: SupportRequest,
    actor: Actor,
    assignee_id: uuid.UUID | None,
    now: datetime,
    info: RequestInfo | None,
) -> None:
    email: str | None = None
    if assignee_id is not None:
        try:
            user = identity.get_user_in_tenant(
                session, tenant_id=actor.tenant_id, user_id=assignee_id
            )
        except NotFound:
            raise InvalidAssignee(source="assignedTo") from None
        if not identity.actor_for(user).can(Action.WORK_SUPPORT_QUEUE):
            raise InvalidAssignee(source="assignedTo")
        email = user.email
    req.assigned_to = assignee_id
    req.assigned_to_email = email
    audit.record(
        session,
        at=now,
        resource_type=RESOURCE,
        operation_type="assign_support_request",
        tenant_id=req.partner_id,
        actor=actor,
        request=info,
        customer_id=req.customer_id,
        details=_audit_details(req, assignedTo=email),
    )


def _decide(
    session: Session,
    *,
    req: SupportRequest,
    actor: Actor,
    decision: RefundDecision,
    now: datetime,
    info: RequestInfo | None,
) -> str:
    """Approve (in full or in part) or reject the refund; returns what the contact is told."""
    if req.refund_status is None or req.order_id is None or req.currency is None:
        raise NotARefundRequest(source="refund")
    if req.refund_status != RefundStatus.REQUESTED:
        raise RefundAlreadyDecided(
            N_(
                "The refund was already decided: %(status)s.",
                status=Message(REFUND_STATUS_LABELS[req.refund_status], {}),
            ),
            source="refund",
        )
    reason = _text(decision.reason)
    currency = req.currency
    assert req.amount_requested_minor is not None
    if not decision.approve:
        if not reason or len(reason) > MAX_REASON:
            raise InvalidSupportRequest(
                {"refund.reason": N_("Required: tell the partner why the refund is rejected.")}
                if not reason
                else {"refund.reason": N_("At most %(limit)s characters.", limit=MAX_REASON)}
            )
        req.refund_status = RefundStatus.REJECTED
        req.refund_decision_reason = reason
        req.refund_decided_by = actor.user_id
        req.refund_decided_at = now
        _move(req, RequestStatus.RESOLVED, actor=actor, now=now)
        audit.record(
            session,
            at=now,
            resource_type=RESOURCE,
            operation_type="reject_refund",
            tenant_id=req.partner_id,
            actor=actor,
            request=info,
            customer_id=req.customer_id,
            details=_audit_details(req, reason=reason),
        )
        return N_("The refund was rejected: %(reason)s", reason=reason)
    raw = _text(decision.amount) or str(from_minor(req.amount_requested_minor, currency))
    problem = _amount_problem(raw)
    if problem is None and not is_exact(parse_amount(raw), currency):
        problem = N_("Too many decimals for %(currency)s.", currency=currency)
    if problem:
        raise InvalidSupportRequest({"refund.amountApproved": problem})
    amount_minor = to_minor(parse_amount(raw), currency)
    if amount_minor > req.amount_requested_minor:
        raise InvalidSupportRequest(
            {
                "refund.amountApproved": N_(
                    "%(amount)s is more than the partner asked for (%(asked)s).",
                    amount=_amount_of(amount_minor, currency),
                    asked=_amount_of(req.amount_requested_minor, currency),
                )
            }
        )
    customer = session.get(Tenant, req.customer_id)
    assert customer is not None
    refund = RefundDetails(
        customer=str(req.customer_id),
        order_id="" if req.entitlement_id else str(req.order_id),
        subscription_id=str(req.entitlement_id) if req.entitlement_id else "",
    )
    target = _resolve_target(session, partner_id=req.partner_id, refund=refund, lock=True)
    remaining = creditable(session, target)
    if amount_minor > sum(remaining.values()):
        raise InvalidSupportRequest(
            {
                "refund.amountApproved": _more_than_refundable(
                    amount_minor, sum(remaining.values()), currency
                )
            }
        )
    if req.cancel_purchase:
        _cancel_purchase_for_refund(
            session, actor=actor, req=req, target=target, now=now, info=info
        )
    left = amount_minor
    charge_ids: list[str] = []
    for line in target.lines:
        part = min(left, remaining[line.id])
        if part <= 0:
            continue
        charge = _issue_customer_credit(
            session, request=req, line=line, order=target.order, gross_minor=part, now=now
        )
        charge_ids.append(str(charge.id))
        left -= part
    req.credit_charge_ids = charge_ids
    req.amount_approved_minor = amount_minor
    req.refund_status = (
        RefundStatus.APPROVED
        if amount_minor == req.amount_requested_minor
        else RefundStatus.PARTIALLY_APPROVED
    )
    req.refund_decision_reason = reason or None
    req.refund_decided_by = actor.user_id
    req.refund_decided_at = now
    _move(req, RequestStatus.RESOLVED, actor=actor, now=now)
    audit.record(
        session,
        at=now,
        resource_type=RESOURCE,
        operation_type="approve_refund",
        tenant_id=req.partner_id,
        actor=actor,
        request=info,
        customer_id=req.customer_id,
        customer_name=customer.name,
        details=_audit_details(
            req,
            amountApproved=str(from_minor(amount_minor, currency)),
            creditChargeIds=charge_ids,
            purchaseCancelled=req.cancel_purchase,
        ),
    )
    parts: list[str] = [
        N_(
            "The refund was approved: %(amount)s of %(requested)s will be credited on your "
            "next invoice.",
            amount=Money(from_minor(amount_minor, currency), currency),
            requested=Money(from_minor(req.amount_requested_minor or 0, currency), currency),
        )
    ]
    if req.cancel_purchase:
        parts.append(N_("The purchase is cancelled; its keys and download links are revoked."))
    if reason:
        return Lines([Lines(parts, " "), Verbatim(reason)], "\n")
    return Lines(parts, " ")

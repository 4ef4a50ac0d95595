"""Webhooks after Partner Center's webhook API: registration, events, signed delivery.

Rules from Partner Center's webhooks (``/webhooks/registration``, ``validationEvents``, the
``EventName`` / ``ResourceUri`` / ``ResourceChangeUtcDate`` payload): one registration per
partner, a URL and a list of event names, a test event (``test-created``). Events are written
in the transaction of the change, from the activity log record the change writes anyway (a
``before_flush`` hook), so an event exists exactly when its change committed. The payload names
the resource and never carries its contents: no product key can ever travel in a webhook.

Delivery (:func:`deliver_pending`, run by the background jobs) POSTs the JSON body with
``X-PartnerCenter-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``;
receivers check the HMAC and refuse a ``t`` older than five minutes (replay). A 2xx answer
delivers; anything else is retried with back-off and every attempt is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
from sqlalchemy import ColumnElement, inspect, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnercenter.audit.models import AuditRecord
from partnercenter.catalog.keys import KeyCipher
from partnercenter.config import Settings
from partnercenter.context import Actor
from partnercenter.errors import InvalidInput
from partnercenter.identity.models import Tenant
from partnercenter.permissions import TenantKind
from partnercenter.webhooks.errors import NoRegistration
from partnercenter.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookRegistration

log = logging.getLogger("partnercenter.webhooks")

TEST_EVENT = "test-created"
# Activity-log operation -> event name. Partner Center's names where it has the event
# (customer-created, invoice-ready, test-created); ours in the same style for the rest.
EVENTS_BY_OPERATION: dict[str, str] = {
    "create_customer": "customer-created",
    "create_order": "order-created",
    "cancel_order": "order-cancelled",
    "get_software_key": "product-key-revealed",
    "download_software": "software-downloaded",
    "get_software_download_link": "download-link-created",
    "create_credit": "credit-created",
    "close_billing_period": "invoice-ready",
    "create_support_request": "support-request-created",
    "update_support_request": "support-request-updated",
    "approve_refund": "refund-approved",
    "reject_refund": "refund-rejected",
}
EVENT_NAMES: tuple[str, ...] = (TEST_EVENT, *sorted(set(EVENTS_BY_OPERATION.values())))

CLAIM = timedelta(minutes=2)
MAX_ATTEMPTS = 10
TIMEOUT_SECONDS = 10.0
REPLAY_WINDOW_SECONDS = 300
SIGNATURE_HEADER = "X-PartnerCenter-Signature"


def retry_delay(attempts: int) -> timedelta:
    """The wait after ``attempts`` failed attempts: 30 s, 1 min, 2 min, ... at most an hour."""
    delay: timedelta = timedelta(seconds=30) * (2 ** max(attempts - 1, 0))
    return min(delay, timedelta(hours=1))


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def verify_signature(secret: str, body: bytes, header: str, *, now: float) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` within the replay window (receivers)."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > REPLAY_WINDOW_SECONDS:
        return False
    expected = sign(secret, body, timestamp)
    return hmac.compare_digest(expected, header)


def _context(registration_id: uuid.UUID) -> str:
    return f"webhook-secret:{registration_id}"


def _check(url: str, event_names: Sequence[str]) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname or len(url) > 2000:
        raise InvalidInput("WebhookUrl must be an absolute http(s) URL.", source="WebhookUrl")
    unknown = sorted(set(event_names) - set(EVENT_NAMES))
    if unknown:
        raise InvalidInput(
            f"Unknown event names: {', '.join(unknown)}. Choose from {', '.join(EVENT_NAMES)}.",
            data=unknown,
            source="WebhookEvents",
        )
    if not event_names:
        raise InvalidInput("Give at least one event name.", source="WebhookEvents")
    return list(dict.fromkeys(event_names))


def get_registration(session: Session, *, tenant_id: uuid.UUID) -> WebhookRegistration:
    """The tenant's registration; raises ``NoRegistration`` (404) when there is none."""
    reg = session.execute(
        select(WebhookRegistration).where(WebhookRegistration.tenant_id == tenant_id)
    ).scalar_one_or_none()
    if reg is None:
        raise NoRegistration()
    return reg


def register(
    session: Session,
    *,
    actor: Actor,
    settings: Settings,
    url: str,
    event_names: Sequence[str],
    now: datetime,
) -> tuple[WebhookRegistration, str]:
    """Create or replace the partner's registration; returns it and its new signing secret.

    The secret is shown once, here; a later registration (PUT) makes a new one.
    Raises ``InvalidInput`` for a bad URL or unknown event names.
    """
    names = _check(url, event_names)
    secret = "whsec_" + secrets.token_urlsafe(32)
    cipher = KeyCipher.from_settings(settings)
    reg = session.execute(
        select(WebhookRegistration).where(WebhookRegistration.tenant_id == actor.tenant_id)
    ).scalar_one_or_none()
    if reg is None:
        reg = WebhookRegistration(
            id=uuid.uuid4(), tenant_id=actor.tenant_id, created_at=now, secret_ciphertext=b""
        )
        session.add(reg)
    reg.url = url
    reg.event_names = names
    reg.updated_at = now
    reg.secret_ciphertext = cipher.encrypt(secret, context=_context(reg.id))
    _forget_known_registration(session, actor.tenant_id)
    return reg, secret


def delete_registration(session: Session, *, tenant_id: uuid.UUID) -> None:
    """Remove the tenant's registration and its deliveries (404 when there is none)."""
    session.delete(get_registration(session, tenant_id=tenant_id))
    _forget_known_registration(session, tenant_id)


def _forget_known_registration(session: Session, tenant_id: uuid.UUID) -> None:
    """The tenant's registration as loaded with the caller is stale once changed here."""
    tenant = session.identity_map.get(session.identity_key(Tenant, tenant_id))
    if tenant is not None:
        session.expire(tenant, ["webhook_registration"])


def _payload(
    event_name: str, resource_uri: str, resource_name: str, at: datetime
) -> dict[str, Any]:
    return {
        "EventName": event_name,
        "ResourceUri": resource_uri,
        "ResourceName": resource_name,
        "AuditUri": None,
        "ResourceChangeUtcDate": at.isoformat(),
    }


def send_test_event(session: Session, *, tenant_id: uuid.UUID, now: datetime) -> WebhookDelivery:
    """Queue a ``test-created`` event to the tenant's URL; its id is the correlation id."""
    reg = get_registration(session, tenant_id=tenant_id)
    delivery_id = uuid.uuid4()
    delivery = WebhookDelivery(
        id=delivery_id,
        registration_id=reg.id,
        tenant_id=tenant_id,
        event_name=TEST_EVENT,
        payload=_payload(
            TEST_EVENT, f"/v1/webhooks/registration/validationEvents/{delivery_id}", "test", now
        ),
        created_at=now,
        attempts=0,
    )
    session.add(delivery)
    return delivery


def get_delivery(
    session: Session, *, tenant_id: uuid.UUID, delivery_id: uuid.UUID
) -> WebhookDelivery | None:
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.tenant_id != tenant_id:
        return None
    return delivery


def list_deliveries(
    session: Session, *, tenant_id: uuid.UUID, limit: int = 100
) -> list[tuple[WebhookDelivery, list[WebhookAttempt]]]:
    """The tenant's latest deliveries, newest first, each with its attempts in order."""
    deliveries = list(
        session.execute(
            select(WebhookDelivery)
            .where(WebhookDelivery.tenant_id == tenant_id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        ).scalars()
    )
    attempts: dict[uuid.UUID, list[WebhookAttempt]] = {d.id: [] for d in deliveries}
    if deliveries:
        for a in session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(attempts)))
            .order_by(WebhookAttempt.attempted_at)
        ).scalars():
            attempts[a.delivery_id].append(a)
    return [(d, attempts[d.id]) for d in deliveries]


def troubled_deliveries(
    session: Session, *, limit: int = 200
) -> list[tuple[WebhookDelivery, str, str]]:
    """Every partner's deliveries that failed or are retrying, failed first, then the oldest.

    Each comes with the partner's name and the registration's URL: what the provider looks at
    when a receiver is down (the Background jobs page).
    """
    rows = session.execute(
        select(WebhookDelivery, Tenant.name, WebhookRegistration.url)
        .join(Tenant, Tenant.id == WebhookDelivery.tenant_id)
        .join(WebhookRegistration, WebhookRegistration.id == WebhookDelivery.registration_id)
        .where(
            WebhookDelivery.delivered_at.is_(None),
            or_(WebhookDelivery.failed_at.is_not(None), WebhookDelivery.attempts > 0),
        )
        .order_by(WebhookDelivery.failed_at.is_(None), WebhookDelivery.created_at)
        .limit(limit)
    ).all()
    return [(d, name, url) for d, name, url in rows]


def retry_delivery(session: Session, *, delivery_id: uuid.UUID) -> WebhookDelivery | None:
    """Give an undelivered delivery a fresh set of attempts, due now; None if unknown or
    delivered. The delivery id stays the same, so a receiver still drops a repeat."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.delivered_at is not None:
        return None
    delivery.failed_at = None
    delivery.next_attempt_at = None
    delivery.claimed_until = None
    delivery.attempts = 0
    return delivery


# --- events from the activity log, in the change's transaction ------------------------------


def _resource(record: AuditRecord) -> tuple[str, str]:
    details = record.details or {}
    if record.customer_id and details.get("orderId"):
        return f"/v1/customers/{record.customer_id}/orders/{details['orderId']}", "order"
    if details.get("month"):
        return f"/v1/invoices?month={details['month']}", "invoice"
    if record.resource_type == "support_request" and details.get("requestId"):
        return f"/v1/servicerequests/{details['requestId']}", "servicerequest"
    if record.customer_id:
        return f"/v1/customers/{record.customer_id}", record.resource_type
    return f"/v1/auditrecords?id={record.id}", record.resource_type


def queue_events(session: Session, records: Sequence[AuditRecord]) -> None:
    """Queue a delivery per registration that wants the event of each succeeded record.

    Called by ``audit.record`` in the change's transaction. The registrations of the
    partners concerned are usually known already: authentication loads the caller's
    tenant with its registration (``Tenant.webhook_registration``), so the common case
    runs no statement; otherwise they are read (one statement).
    """
    records = [
        r for r in records if r.operation_type in EVENTS_BY_OPERATION and r.status == "succeeded"
    ]
    if not records:
        return
    with session.no_autoflush:
        concerned = [(record, _partners_of(session, record)) for record in records]
        wanted: set[uuid.UUID] | None = None
        if all(partners is not None for _, partners in concerned):
            wanted = set().union(*(p for _, p in concerned if p is not None))
            if not wanted:
                return
        registrations = _known_registrations(session, wanted)
        if registrations is None:
            # Only the registrations of the partners these events concern (an invoice run
            # concerns every partner), so the lookup does not grow with the partners.
            query = select(WebhookRegistration)
            if wanted is not None:
                query = query.where(WebhookRegistration.tenant_id.in_(wanted))
            registrations = list(session.execute(query).scalars())
        if not registrations:
            return
        for record, partners in concerned:
            name = EVENTS_BY_OPERATION[record.operation_type]
            for reg in registrations:
                if name not in reg.event_names:
                    continue
                if partners is not None and reg.tenant_id not in partners:
                    continue
                uri, resource_name = _resource(record)
                session.add(
                    WebhookDelivery(
                        id=uuid.uuid4(),
                        registration_id=reg.id,
                        tenant_id=reg.tenant_id,
                        event_name=name,
                        payload=_payload(name, uri, resource_name, record.occurred_at),
                        created_at=record.occurred_at,
                        attempts=0,
                    )
                )


def _known_registrations(
    session: Session, partner_ids: set[uuid.UUID] | None
) -> list[WebhookRegistration] | None:
    """The partners' registrations if this transaction loaded them all already, else None."""
    if partner_ids is None:
        return None
    found: list[WebhookRegistration] = []
    for partner_id in partner_ids:
        tenant = session.identity_map.get(session.identity_key(Tenant, partner_id))
        if not isinstance(tenant, Tenant) or "webhook_registration" in inspect(tenant).unloaded:
            return None
        if tenant.webhook_registration is not None:
            found.append(tenant.webhook_registration)
    return found


def _partners_of(session: Session, record: AuditRecord) -> set[uuid.UUID] | None:
    """The partner tenants an event concerns; None for every partner (an invoice run)."""
    if record.tenant_id is None:
        return None
    found: set[uuid.UUID] = set()
    for tenant_id in {record.tenant_id, record.customer_id} - {None}:
        tenant = session.get(Tenant, tenant_id)
        if tenant is None:
            continue
        if tenant.kind == TenantKind.PARTNER:
            found.add(tenant.id)
        elif tenant.kind == TenantKind.CUSTOMER and tenant.parent_id is not None:
            found.add(tenant.parent_id)
    return found


# --- delivery ---------------------------------------------------------------------------------


def _due(now: datetime, real_now: datetime) -> list[ColumnElement[bool]]:
    """Undelivered, not given up, unclaimed and past its back-off.

    Claims are leases in real time (a sandbox clock moved forward must not free a delivery
    another worker is posting); the back-off is business time.
    """
    return [
        WebhookDelivery.delivered_at.is_(None),
        WebhookDelivery.failed_at.is_(None),
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < real_now),
        or_(WebhookDelivery.next_attempt_at.is_(None), WebhookDelivery.next_attempt_at <= now),
    ]


def _real_now() -> datetime:
    return datetime.now(UTC)


def deliver_pending(
    factory: sessionmaker[Session], settings: Settings, *, now: datetime, limit: int = 100
) -> int:
    """POST the deliveries that are due; returns how many were delivered (2xx).

    Safe in several processes: each delivery is claimed by a conditional update first.
    """
    delivered = 0
    cipher = KeyCipher.from_settings(settings)
    with factory() as session:
        ids = list(
            session.execute(
                select(WebhookDelivery.id)
                .where(*_due(now, _real_now()))
                .order_by(WebhookDelivery.created_at)
                .limit(limit)
            ).scalars()
        )
        session.rollback()
        with httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False) as client:
            for delivery_id in ids:
                real_now = _real_now()
                claimed = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, *_due(now, real_now))
                    .values(claimed_until=real_now + CLAIM)
                )
                session.commit()
                if getattr(claimed, "rowcount", 0) != 1:
                    continue  # another process has it
                delivery = session.get(WebhookDelivery, delivery_id)
                assert delivery is not None
                reg = session.get(WebhookRegistration, delivery.registration_id)
                assert reg is not None
                secret = cipher.decrypt(reg.secret_ciphertext, context=_context(reg.id))
                ok = _attempt(session, client, delivery, reg.url, secret, now)
                delivered += ok
                session.commit()
    return delivered


def _attempt(
    session: Session,
    client: httpx.Client,
    delivery: WebhookDelivery,
    url: str,
    secret: str,
    now: datetime,
) -> bool:
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, int(time.time())),
        "X-PartnerCenter-Event": delivery.event_name,
        "X-PartnerCenter-Delivery": str(delivery.id),
    }
    started = time.perf_counter()
    status: int | None = None
    error: str | None = None
    try:
        response = client.post(url, content=body, headers=headers)
        status = response.status_code
        if not 200 <= status < 300:
            error = f"HTTP {status}"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}"[:1000]
    elapsed = int((time.perf_counter() - started) * 1000)
    session.add(
        WebhookAttempt(
            id=uuid.uuid4(),
            delivery_id=delivery.id,
            attempted_at=now,
            status_code=status,
            error=error,
            duration_ms=elapsed,
        )
    )
    delivery.attempts += 1
    delivery.last_status = status
    delivery.last_error = error
    delivery.claimed_until = None
    if error is None:
        delivery.delivered_at = now
        return True
    log.warning("webhook not delivered", extra={"delivery": str(delivery.id), "error": error})
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.failed_at = now
    else:
        delivery.next_attempt_at = now + retry_delay(delivery.attempts)
    return False

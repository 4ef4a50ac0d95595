"""Webhook routes after Partner Center's: ``/v1/webhooks/registration`` (GET, POST, PUT,
DELETE), its ``events`` and ``validationEvents`` (a test event), and our delivery log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response

from partnercenter.context import Actor
from partnercenter.deps import NowDep, SessionDep, SettingsDep, require
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.webhooks import services
from partnercenter.webhooks.errors import DeliveryNotFound
from partnercenter.webhooks.models import WebhookDelivery, WebhookRegistration
from partnercenter.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    RegistrationIn,
    RegistrationOut,
    ValidationEventOut,
)

router = APIRouter(route_class=Route, tags=["webhooks"])

ManageDep = Annotated[Actor, Depends(require(Action.MANAGE_WEBHOOKS))]


def _out(reg: WebhookRegistration, secret: str | None = None) -> RegistrationOut:
    return RegistrationOut(
        SubscriberId=reg.id,
        WebhookUrl=reg.url,
        WebhookEvents=list(reg.event_names),
        SigningSecret=secret,
    )


def _status(d: WebhookDelivery) -> str:
    if d.delivered_at is not None:
        return "delivered"
    return "failed" if d.failed_at is not None else "pending"


def _kick(request: Request, background: BackgroundTasks, now: datetime) -> None:
    """Hand the committed delivery to the job runner, or deliver it after the response."""
    jobs = getattr(request.app.state, "jobs", None)
    if jobs is not None and jobs.webhooks_written():
        return
    state = request.app.state
    background.add_task(services.deliver_pending, state.session_factory, state.settings, now=now)


@router.get("/v1/webhooks/registration/events", response_model=list[str])
def list_events(actor: ManageDep) -> list[str]:
    """The event names a registration can ask for."""
    return list(services.EVENT_NAMES)


_NO_REGISTRATION: dict[int | str, dict[str, Any]] = {
    404: {"description": "The partner has no webhook registration"}
}


@router.get("/v1/webhooks/registration", response_model=RegistrationOut, responses=_NO_REGISTRATION)
def get_registration(session: SessionDep, actor: ManageDep) -> RegistrationOut:
    """The partner's registration (404 when there is none); the secret is not shown again."""
    return _out(services.get_registration(session, tenant_id=actor.tenant_id))


@router.post("/v1/webhooks/registration", response_model=RegistrationOut, status_code=201)
@router.put("/v1/webhooks/registration", response_model=RegistrationOut)
def register(
    body: RegistrationIn,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    actor: ManageDep,
) -> RegistrationOut:
    """Register (or replace) the URL and event names; answers a new signing secret, once."""
    reg, secret = services.register(
        session,
        actor=actor,
        settings=settings,
        url=body.WebhookUrl,
        event_names=body.WebhookEvents,
        now=now,
    )
    out = _out(reg, secret)
    session.commit()
    return out


@router.delete("/v1/webhooks/registration", status_code=204, responses=_NO_REGISTRATION)
def delete_registration(session: SessionDep, actor: ManageDep) -> Response:
    """Stop sending events to the partner (its delivery log goes with it)."""
    services.delete_registration(session, tenant_id=actor.tenant_id)
    session.commit()
    return Response(status_code=204)


@router.post(
    "/v1/webhooks/registration/validationEvents",
    response_model=ValidationEventOut,
    status_code=202,
    responses=_NO_REGISTRATION,
)
def send_test_event(
    request: Request,
    background: BackgroundTasks,
    session: SessionDep,
    now: NowDep,
    actor: ManageDep,
) -> ValidationEventOut:
    """Send a ``test-created`` event to the registered URL; follow it by its correlation id."""
    delivery = services.send_test_event(session, tenant_id=actor.tenant_id, now=now)
    out = ValidationEventOut(correlationId=delivery.id, status="pending")
    session.commit()
    _kick(request, background, now)
    return out


@router.get(
    "/v1/webhooks/registration/validationEvents/{correlation_id}",
    response_model=ValidationEventOut,
)
def get_test_event(
    correlation_id: uuid.UUID, session: SessionDep, actor: ManageDep
) -> ValidationEventOut:
    """Whether the test event was delivered (the receiver answered 2xx)."""
    d = services.get_delivery(session, tenant_id=actor.tenant_id, delivery_id=correlation_id)
    if d is None:
        raise DeliveryNotFound(source="correlationId")
    return ValidationEventOut(
        correlationId=d.id, status=_status(d), lastStatusCode=d.last_status, lastError=d.last_error
    )


@router.get("/v1/webhooks/deliveries", response_model=dict[str, list[DeliveryOut]])
def list_deliveries(
    session: SessionDep,
    actor: Annotated[Actor, Depends(require(Action.VIEW_WEBHOOK_DELIVERIES))],
) -> dict[str, list[DeliveryOut]]:
    """The latest deliveries, newest first, with every attempt and its outcome."""
    items = [
        DeliveryOut(
            id=d.id,
            eventName=d.event_name,
            createdAt=d.created_at,
            status=_status(d),
            nextAttemptAt=d.next_attempt_at if _status(d) == "pending" else None,
            attempts=[
                AttemptOut(
                    attemptedAt=a.attempted_at,
                    statusCode=a.status_code,
                    error=a.error,
                    durationMs=a.duration_ms,
                )
                for a in attempts
            ],
        )
        for d, attempts in services.list_deliveries(session, tenant_id=actor.tenant_id)
    ]
    return {"items": items}

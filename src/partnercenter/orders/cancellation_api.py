"""JSON routes: cancel an order (PATCH), preview a cancellation, cancel several orders."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from partnercenter import idempotency
from partnercenter.context import Actor
from partnercenter.customers.api import customer_for
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep
from partnercenter.deps import require as require_action
from partnercenter.errors import DomainError
from partnercenter.orders import cancellation
from partnercenter.orders.api import RawBody, RequestIdHeader, _replay_or_run
from partnercenter.orders.cancellation_errors import InvalidOrderStatus
from partnercenter.orders.errors import OrderNotFound
from partnercenter.orders.schemas import OrderOut
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.schemas import RequestModel

router = APIRouter(route_class=Route, prefix="/v1", tags=["cancellation"])

Canceller = Annotated[Actor, Depends(require_action(Action.CANCEL_PURCHASE))]
OrderViewer = Annotated[Actor, Depends(require_action(Action.VIEW_ORDERS))]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "900117 window passed; 800019 product can't be cancelled; 800061 order "
        "can't be cancelled (already cancelled, nothing left to credit); 12140 needs a "
        "customer support request (body carries supportRequestUri); 12141 no such line "
        "item; 12142 status other than cancelled; 10010 invalid input"
    },
    403: {"description": "Only an Admin agent may cancel a purchase"},
    404: {"description": "Unknown or foreign customer or order"},
    409: {"description": "12101 MS-RequestId reused for another request"},
}


class LineItemRef(RequestModel):
    model_config = ConfigDict(extra="ignore")
    lineItemNumber: int = Field(ge=0, le=10_000)


class OrderPatchIn(RequestModel):
    """Partner Center's order update: ``status: cancelled``, optionally some line items."""

    model_config = ConfigDict(extra="ignore")
    status: str
    lineItems: list[LineItemRef] | None = Field(default=None, max_length=1000)


class CancelOrdersIn(RequestModel):
    model_config = ConfigDict(extra="ignore")
    orderIds: list[str] = Field(min_length=1, max_length=100)


class CreditOut(BaseModel):
    net: str
    tax: str
    gross: str
    currency: str


class LineCancellationOut(BaseModel):
    lineItemNumber: int
    offerId: str
    friendlyName: str
    status: str
    cancellable: bool
    daysRemaining: int | None
    deadline: str | None
    windowDays: int | None
    credit: CreditOut
    requiresSupportRequest: bool
    reason: str | None


class CancellationPreviewOut(BaseModel):
    orderId: str
    customerId: str
    orderStatus: str
    cancellable: bool
    daysRemaining: int | None
    deadline: str | None
    windowDays: int | None
    credit: CreditOut
    requiresSupportRequest: bool
    supportRequestUri: str | None
    reason: str | None
    reasonCode: int | None
    reasonDescription: str | None
    lineItems: list[LineCancellationOut]
    attributes: dict[str, str]


class CreditChargeOut(BaseModel):
    id: str
    lineItemNumber: int
    chargeType: str
    creditReasonCode: str | None
    reversesChargeId: str
    billingMonth: str
    net: str
    tax: str
    gross: str
    currency: str


class CancellationOut(BaseModel):
    cancelledLineItems: list[int]
    credit: CreditOut
    credits: list[CreditChargeOut]
    downloadLinksRevoked: int


class CancelledOrderOut(OrderOut):
    cancellation: CancellationOut


class BatchErrorOut(BaseModel):
    code: int
    description: str
    data: list[Any]
    source: str
    errorName: str
    supportRequestUri: str | None = None


class BatchItemOut(BaseModel):
    orderId: str
    status: str = Field(description="cancelled or failed")
    order: CancelledOrderOut | None = None
    error: BatchErrorOut | None = None


class BatchOut(BaseModel):
    totalCount: int
    items: list[BatchItemOut]
    attributes: dict[str, str]


def _idempotent(
    session: Session,
    *,
    actor: Actor,
    request: Request,
    request_id: str | None,
    body: bytes,
    now: Any,
    run: Callable[[], dict[str, Any]],
) -> JSONResponse:
    """Run once per MS-RequestId, also when retries race the first attempt.

    A retry that arrived while the first attempt held the order's lock finds the order
    cancelled once it gets the lock; it then answers the first attempt's stored response
    instead of 800061.
    """
    try:
        return _replay_or_run(
            session,
            actor=actor,
            request=request,
            request_id=request_id,
            body=body,
            now=now,
            status_code=200,
            run=run,
        )
    except DomainError:
        if request_id is None:
            raise
        session.rollback()
        key = idempotency.request_key(
            tenant_id=actor.tenant_id,
            request_id=request_id,
            method=request.method,
            path=request.url.path,
            raw_body=body,
        )
        stored = idempotency.lookup(session, key) if key is not None else None
        if stored is None:
            raise
        return JSONResponse(stored.body, status_code=stored.status_code)


def _order_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OrderNotFound() from None


@router.patch(
    "/customers/{customer_id}/orders/{order_id}",
    response_model=CancelledOrderOut,
    responses=_ERRORS,
)
def cancel_order(
    customer_id: str,
    order_id: str,
    body: OrderPatchIn,
    request: Request,
    raw: RawBody,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Canceller,
    request_id: RequestIdHeader = None,
) -> JSONResponse:
    """Cancel a purchase: every active line, or the ``lineItems`` named.

    Cancelled lines go to quantity 0; the order becomes ``cancelled`` when every line is. A
    credit (charge type ``cancel``, negative amounts) waits for the next monthly invoice;
    keys and download links are revoked at once.
    """
    customer = customer_for(session, actor, customer_id)
    oid = _order_id(order_id)
    if body.status.strip().lower() not in {"cancelled", "canceled"}:
        raise InvalidOrderStatus(source="status")
    numbers = [li.lineItemNumber for li in body.lineItems] if body.lineItems else None
    return _idempotent(
        session,
        actor=actor,
        request=request,
        request_id=request_id,
        body=raw,
        now=now,
        run=lambda: cancellation.cancel_order(
            session,
            actor=actor,
            customer=customer,
            order_id=oid,
            line_numbers=numbers,
            now=now,
            request=info,
        ).to_json(),
    )


@router.get(
    "/customers/{customer_id}/orders/{order_id}/cancellation",
    response_model=CancellationPreviewOut,
    responses={404: _ERRORS[404], 403: {"description": "Roles without access to orders"}},
)
def preview_cancellation(
    customer_id: str, order_id: str, session: SessionDep, now: NowDep, actor: OrderViewer
) -> dict[str, Any]:
    """What cancelling the order now would do: days remaining, deadline, credit, refusal."""
    customer = customer_for(session, actor, customer_id)
    return cancellation.preview(
        session, customer=customer, order_id=_order_id(order_id), now=now
    ).to_json()


@router.post("/customers/{customer_id}/orders:cancel", response_model=BatchOut, responses=_ERRORS)
def cancel_orders(
    customer_id: str,
    body: CancelOrdersIn,
    request: Request,
    raw: RawBody,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    actor: Canceller,
    request_id: RequestIdHeader = None,
) -> JSONResponse:
    """Cancel several orders of the customer; each is judged and answered on its own."""
    customer = customer_for(session, actor, customer_id)

    def run() -> dict[str, Any]:
        items = cancellation.cancel_orders(
            session,
            actor=actor,
            customer=customer,
            order_ids=body.orderIds,
            now=now,
            request=info,
        )
        return {
            "totalCount": len(items),
            "items": [item.to_json() for item in items],
            "attributes": {"objectType": "Collection"},
        }

    return _idempotent(
        session,
        actor=actor,
        request=request,
        request_id=request_id,
        body=raw,
        now=now,
        run=run,
    )

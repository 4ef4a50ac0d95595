"""JSON routes: carts, checkout and order history of a customer."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from partnercenter import idempotency
from partnercenter.context import Actor
from partnercenter.customers.api import customer_for
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, SettingsDep, parse_uuid, require
from partnercenter.envelopes import FastJSONResponse, collection
from partnercenter.errors import DomainError
from partnercenter.identity.models import Tenant
from partnercenter.orders import services
from partnercenter.orders.errors import CartNotFound, OrderNotFound
from partnercenter.orders.schemas import CartIn, CartOut, CheckoutOut, OrderIn, OrderOut
from partnercenter.permissions import Action
from partnercenter.routing import Route

router = APIRouter(route_class=Route, prefix="/v1", tags=["orders"])

Buyer = Annotated[Actor, Depends(require(Action.BUY_FOR_CUSTOMER))]
OrderViewer = Annotated[Actor, Depends(require(Action.VIEW_ORDERS))]
RequestIdHeader = Annotated[
    str | None,
    Header(
        alias="MS-RequestId",
        description="Idempotency key: a retry with the same id and body returns the first "
        "response; the same id with another body answers 409.",
    ),
]

_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Invalid input (10010, 400013, 400018, 400019, 800070, 121xx)"},
    403: {"description": "The caller's roles do not allow buying"},
    404: {"description": "Unknown or foreign customer, cart or order"},
    409: {"description": "800064 cart being processed; 800065 cart submitted; 12101 reused id"},
    410: {"description": "12112 the cart has expired"},
}


async def raw_body(request: Request) -> bytes:
    """The request body as sent (hashed for MS-RequestId)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def _replay_or_run(
    session: Session,
    *,
    actor: Actor,
    request: Request,
    request_id: str | None,
    body: bytes,
    now: Any,
    status_code: int,
    run: Any,
) -> JSONResponse:
    """Run, remember the response under the MS-RequestId and commit; a repeat gets the first.

    The request id is not looked up first: the insert that remembers the response is the
    check (one statement on the common path). A repeat runs again, loses that insert, rolls
    its work back and answers the stored response; a repeat the current state refuses (the
    cart already ordered, the line already cancelled) answers the stored response too.
    """
    key = idempotency.request_key(
        tenant_id=actor.tenant_id,
        request_id=request_id,
        method=request.method,
        path=request.url.path,
        raw_body=body,
    )
    try:
        result = run()
    except DomainError:
        if key is None:
            raise
        session.rollback()
        stored = idempotency.lookup(session, key)
        if stored is None:
            raise
        return FastJSONResponse(stored.body, status_code=stored.status_code)
    if key is not None:
        stored = idempotency.remember(session, key, status_code=status_code, body=result, now=now)
        result, status_code = stored.body, stored.status_code
    session.commit()
    # The same bytes as JSONResponse for these plain JSON bodies, written in a third of the
    # time (tests/orders/test_checkout_api.py compares them).
    return FastJSONResponse(result, status_code=status_code)


def _cart_id(value: str) -> Any:
    try:
        return parse_uuid(value, "cart")
    except Exception:
        raise CartNotFound() from None


@dataclass(frozen=True)
class BuyingCall:
    """What every buying write shares: the buyer, the session, the clock and MS-RequestId.

    The routes that create or change carts and place orders differ only in the service they
    run; ``respond`` runs it under the request id (``_replay_or_run``) and commits.
    """

    session: Session
    actor: Actor
    request: Request
    raw: bytes
    now: datetime
    request_id: str | None

    def customer(self, customer_id: str) -> Tenant:
        """The buyer's customer named in the path (404 for anyone else's)."""
        return customer_for(self.session, self.actor, customer_id)

    def respond(self, run: Callable[[], dict[str, Any]], *, status_code: int) -> JSONResponse:
        """Run the service once per request id; a repeat answers the first response."""
        return _replay_or_run(
            self.session,
            actor=self.actor,
            request=self.request,
            request_id=self.request_id,
            body=self.raw,
            now=self.now,
            status_code=status_code,
            run=run,
        )


async def buying_call(
    request: Request,
    raw: RawBody,
    session: SessionDep,
    now: NowDep,
    actor: Buyer,
    request_id: RequestIdHeader = None,
) -> BuyingCall:
    """The shared part of a buying route's parameters (no I/O of its own)."""
    return BuyingCall(session, actor, request, raw, now, request_id)


Buying = Annotated[BuyingCall, Depends(buying_call)]


@router.post(
    "/customers/{customer_id}/carts",
    status_code=201,
    response_model=CartOut,
    responses=_ERRORS,
)
def create_cart(customer_id: str, body: CartIn, call: Buying) -> JSONResponse:
    """Create a cart: ``lineItems[{id, catalogItemId, quantity, billingCycle, termDuration}]``."""
    customer = call.customer(customer_id)

    def run() -> dict[str, Any]:
        cart = services.create_cart(
            call.session,
            actor=call.actor,
            customer=customer,
            lines=[line.model_dump() for line in body.lineItems],
            now=call.now,
        )
        return services.view_cart(
            call.session, customer=customer, cart=cart, now=call.now
        ).to_json()

    return call.respond(run, status_code=201)


@router.get("/customers/{customer_id}/carts/{cart_id}", response_model=CartOut)
def get_cart(
    customer_id: str, cart_id: str, session: SessionDep, now: NowDep, actor: Buyer
) -> dict[str, Any]:
    """The cart, priced now."""
    customer = customer_for(session, actor, customer_id)
    cart = services.get_cart(session, customer=customer, cart_id=_cart_id(cart_id))
    return services.view_cart(session, customer=customer, cart=cart, now=now).to_json()


@router.put(
    "/customers/{customer_id}/carts/{cart_id}",
    response_model=CartOut,
    responses=_ERRORS,
)
def update_cart(customer_id: str, cart_id: str, body: CartIn, call: Buying) -> JSONResponse:
    """Replace the cart's line items."""
    customer = call.customer(customer_id)
    cid = _cart_id(cart_id)

    def run() -> dict[str, Any]:
        cart = services.update_cart(
            call.session,
            customer=customer,
            cart_id=cid,
            lines=[line.model_dump() for line in body.lineItems],
            now=call.now,
        )
        return services.view_cart(
            call.session, customer=customer, cart=cart, now=call.now
        ).to_json()

    return call.respond(run, status_code=200)


@router.post(
    "/customers/{customer_id}/carts/{cart_id}/checkout",
    status_code=201,
    response_model=CheckoutOut,
    responses=_ERRORS,
)
def checkout(
    customer_id: str, cart_id: str, call: Buying, settings: SettingsDep, info: RequestInfoDep
) -> JSONResponse:
    """Check the cart out: one order with every line, or an error and nothing sold.

    Prices and market availability are checked again and a product key is reserved for each
    software line. A second checkout of the cart returns the first result.
    """
    # By id, the customer is read with the cart (one statement); a domain or name first.
    customer: Tenant | uuid.UUID
    try:
        customer = uuid.UUID(customer_id)
    except ValueError:
        customer = call.customer(customer_id)
    cid = _cart_id(cart_id)
    return call.respond(
        lambda: services.checkout(
            call.session,
            settings=settings,
            actor=call.actor,
            customer=customer,
            cart_id=cid,
            now=call.now,
            request=info,
        ),
        status_code=201,
    )


@router.get("/customers/{customer_id}/orders")
def list_orders(
    customer_id: str,
    session: SessionDep,
    actor: OrderViewer,
    billing_type: Annotated[
        str | None,
        Query(alias="billingType", description="Only orders of this billing cycle (one_time...)"),
    ] = None,
) -> dict[str, Any]:
    """The customer's order history, newest first.

    Partner Center: "Get all of a customer's orders" (``billingType`` filters by cycle).
    """
    customer = customer_for(session, actor, customer_id)
    cycle = services.billing_cycle_named(billing_type) if billing_type else None
    return collection(
        [
            services.order_json(o)
            for o in services.list_orders(session, customer=customer, billing_cycle=cycle)
        ]
    )


@router.post(
    "/customers/{customer_id}/orders",
    status_code=201,
    response_model=OrderOut,
    responses=_ERRORS,
)
def create_order(
    customer_id: str, body: OrderIn, call: Buying, settings: SettingsDep, info: RequestInfoDep
) -> JSONResponse:
    """Place an order directly, without a cart: the same checks, prices and keys as checkout.

    Partner Center: "Create an order for a customer" (``billingCycle`` applies to every line).
    """
    customer = call.customer(customer_id)
    cycle = services.billing_cycle_named(body.billingCycle) if body.billingCycle else None
    lines = [
        {
            "id": line.lineItemNumber,
            "catalogItemId": line.offerId,
            "quantity": line.quantity,
            "billingCycle": cycle,
            "termDuration": line.termDuration,
        }
        for line in body.lineItems
    ]

    def run() -> dict[str, Any]:
        cart = services.create_cart(
            call.session, actor=call.actor, customer=customer, lines=lines, now=call.now
        )
        result = services.checkout(
            call.session,
            settings=settings,
            actor=call.actor,
            customer=customer,
            cart_id=cart.id,
            now=call.now,
            request=info,
        )
        order: dict[str, Any] = result["orders"][0]
        return order

    return call.respond(run, status_code=201)


@router.get("/customers/{customer_id}/orders/{order_id}", response_model=OrderOut)
def get_order(
    customer_id: str, order_id: str, session: SessionDep, actor: OrderViewer
) -> dict[str, Any]:
    """One order with its line items."""
    customer = customer_for(session, actor, customer_id)
    try:
        oid = parse_uuid(order_id, "order")
    except Exception:
        raise OrderNotFound() from None
    return services.order_json(services.get_order(session, customer=customer, order_id=oid))


@router.get("/customers/{customer_id}/orders/{order_id}/provisioningstatus")
def order_provisioning_status(
    customer_id: str, order_id: str, session: SessionDep, actor: OrderViewer
) -> dict[str, Any]:
    """Each line's provisioning: software is fulfilled at checkout (its key is reserved).

    Partner Center: "Get order line item provisioning status".
    """
    customer = customer_for(session, actor, customer_id)
    try:
        oid = parse_uuid(order_id, "order")
    except Exception:
        raise OrderNotFound() from None
    order = services.get_order(session, customer=customer, order_id=oid)
    return collection(
        [
            {
                "lineItemNumber": line.line_number,
                "status": "fulfilled" if line.quantity > 0 else "cancelled",
                "quantityProvisioningInformation": [
                    {"quantity": line.quantity, "status": "fulfilled"}
                ],
                "attributes": {"objectType": "OrderLineItemProvisioningStatus"},
            }
            for line in order.lines
        ]
    )

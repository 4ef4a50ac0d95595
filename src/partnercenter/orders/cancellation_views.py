"""HTML routes: the cancel dialog (a page that works without JavaScript) and its confirmation."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from partnercenter.customers.views import page_customer, partner_page_user
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep
from partnercenter.errors import DomainError
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.views import OptionalUser
from partnercenter.orders import cancellation
from partnercenter.orders.cancellation import Preview
from partnercenter.orders.errors import OrderNotFound
from partnercenter.orders.models import Order
from partnercenter.orders.services import list_orders
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.web import check_csrf, render

router = APIRouter(route_class=Route, include_in_schema=False)


def _order_id(value: str | None) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise OrderNotFound() from None


def _purchase_orders(
    orders: list[Order], *, selected: Order | None, product: str | None
) -> list[Order]:
    """The orders of one purchase: those holding the selected order's (or the named) product."""
    if selected is not None:
        products = {line.product_id for line in selected.lines}
    elif product:
        products = {product}
    else:
        return orders
    return [o for o in orders if products & {line.product_id for line in o.lines}]


def _dialog(
    request: Request,
    session: Session,
    *,
    me: User,
    customer: Tenant,
    now: Any,
    order_id: uuid.UUID | None,
    product: str | None,
    error: DomainError | None = None,
    acknowledge_error: bool = False,
    also: list[str] | None = None,
    status: int = 200,
) -> Response:
    orders = list(list_orders(session, customer=customer))
    selected = next((o for o in orders if o.id == order_id), None)
    if order_id is not None and selected is None:
        raise OrderNotFound()
    choices = _purchase_orders(orders, selected=selected, product=product)
    if selected is None and choices:
        active = [o for o in choices if o.status.value == "completed"]
        selected = (active or choices)[0]
    preview: Preview | None = None
    if selected is not None:
        preview = cancellation.preview(session, customer=customer, order_id=selected.id, now=now)
    others = [
        p
        for p in cancellation.cancellable_orders(session, customer=customer, now=now)
        if selected is None or p.order.id != selected.id
    ]
    return render(
        request,
        "partner/cancel.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "software",
            "choices": choices,
            "selected": selected,
            "preview": preview,
            "others": others,
            "product": product or "",
            "error": error,
            "acknowledge_error": acknowledge_error,
            "also": set(also or []),
        },
        status=status,
    )


@router.get("/partner/customers/{customer_id}/cancel")
def cancel_dialog(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    order: str | None = None,
    product: str | None = None,
) -> Response:
    """The cancel dialog: Order number, days remaining, credit, the Important message."""
    me = partner_page_user(request, user, Action.CANCEL_PURCHASE)
    customer = page_customer(session, me, customer_id)
    return _dialog(
        request,
        session,
        me=me,
        customer=customer,
        now=now,
        order_id=_order_id(order),
        product=product,
    )


@router.post("/partner/customers/{customer_id}/cancel")
def submit_cancel(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    info: RequestInfoDep,
    csrf_token: Annotated[str, Form()] = "",
    order: Annotated[str, Form()] = "",
    product: Annotated[str, Form()] = "",
    also: Annotated[list[str] | None, Form()] = None,
    acknowledge: Annotated[str, Form()] = "",
) -> Response:
    """Cancel the chosen order (and any others ticked), then show the confirmation."""
    me = partner_page_user(request, user, Action.CANCEL_PURCHASE)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    order_id = _order_id(order)
    extra = [o for o in (also or []) if o and o != order]

    def again(error: DomainError | None = None, acknowledge_error: bool = False) -> Response:
        return _dialog(
            request,
            session,
            me=me,
            customer=customer,
            now=now,
            order_id=order_id,
            product=product or None,
            error=error,
            acknowledge_error=acknowledge_error,
            also=extra,
            status=400,
        )

    if order_id is None:
        return again(OrderNotFound())
    if acknowledge != "on":
        return again(acknowledge_error=True)
    actor = identity.actor_for(me)
    if not extra:
        try:
            done = cancellation.cancel_order(
                session, actor=actor, customer=customer, order_id=order_id, now=now, request=info
            )
        except DomainError as exc:
            session.rollback()
            return again(exc)
        session.commit()
        results = [cancellation.BatchItem(str(order_id), cancellation=done)]
    else:
        results = cancellation.cancel_orders(
            session,
            actor=actor,
            customer=customer,
            order_ids=[str(order_id), *extra],
            now=now,
            request=info,
        )
        session.commit()
    return render(
        request,
        "partner/cancel_done.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "software",
            "results": results,
        },
    )

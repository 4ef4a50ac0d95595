"""HTML routes: a customer's Add products page (browse, cart, review, place order) and
its Order history."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.services import ResolvedAvailability
from partnercenter.customers.views import page_customer, partner_page_user
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, SettingsDep
from partnercenter.errors import DomainError
from partnercenter.i18n import N_
from partnercenter.identity import services as identity
from partnercenter.identity.models import Tenant, User
from partnercenter.identity.views import OptionalUser
from partnercenter.orders import services
from partnercenter.orders.errors import CartNotFound
from partnercenter.orders.models import Cart, CartStatus
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.web import check_csrf, render

router = APIRouter(route_class=Route, include_in_schema=False)


@dataclass(frozen=True)
class OfferRow:
    """One thing the customer's market may buy: a SKU for one term and billing cycle."""

    item: ResolvedAvailability

    @property
    def catalog_item_id(self) -> str:
        return self.item.catalog_item_id


def _offers(
    session: Session, customer: Tenant, *, q: str = "", product_type: str = ""
) -> list[OfferRow]:
    """What the customer's market may buy, optionally narrowed (as Partner Center's Add
    products does) to one product type and to products, SKUs or catalog item ids containing
    ``q`` (case-insensitive)."""
    country = customer.country or ""
    needle = q.strip().casefold()
    rows: list[OfferRow] = []
    for product in catalog.list_products(session, country=country):
        for sku in catalog.list_skus(session, product_id=product.id, country=country):
            for item in catalog.list_availabilities(
                session, product_id=product.id, sku_id=sku.sku_id, country=country
            ):
                if product_type and item.product_type.value != product_type:
                    continue
                text = f"{item.product.title} {item.sku.title} {item.catalog_item_id}"
                if needle and needle not in text.casefold():
                    continue
                rows.append(OfferRow(item))
    return rows


def _product_types(session: Session, customer: Tenant) -> list[str]:
    """The product types on sale in the customer's market, for the type filter."""
    return sorted({o.item.product_type.value for o in _offers(session, customer)})


def _cart_of(session: Session, customer: Tenant, cart_id: str | None) -> Cart | None:
    if not cart_id:
        return None
    try:
        cid = uuid.UUID(cart_id)
    except ValueError:
        raise CartNotFound() from None
    return services.get_cart(session, customer=customer, cart_id=cid)


def _add_products_page(
    request: Request,
    session: Session,
    me: User,
    customer: Tenant,
    cart: Cart | None,
    now: Any,
    *,
    error: DomainError | None = None,
) -> Response:
    view = services.view_cart(session, customer=customer, cart=cart, now=now) if cart else None
    return render(
        request,
        "partner/add_products.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "add_products",
            "offers": _offers(
                session,
                customer,
                q=request.query_params.get("q", ""),
                product_type=request.query_params.get("type", ""),
            )
            if customer.country
            else [],
            "product_types": _product_types(session, customer) if customer.country else [],
            "offer_q": request.query_params.get("q", ""),
            "offer_type": request.query_params.get("type", ""),
            "cart": view,
            "pricing": services.pricing_json,
            "error": error,
        },
        status=error.status if error else 200,
    )


@router.get("/partner/customers/{customer_id}/add-products")
def add_products_page(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    cart: str | None = None,
) -> Response:
    me = partner_page_user(request, user, Action.BUY_FOR_CUSTOMER)
    customer = page_customer(session, me, customer_id)
    return _add_products_page(
        request, session, me, customer, _cart_of(session, customer, cart), now
    )


@router.post("/partner/customers/{customer_id}/add-products/lines")
def add_line(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    catalog_item_id: Annotated[str, Form()] = "",
    quantity: Annotated[str, Form()] = "1",
    cart_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.BUY_FOR_CUSTOMER)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    cart = _cart_of(session, customer, cart_id)
    try:
        try:
            qty = int(quantity)
        except ValueError:
            from partnercenter.errors import InvalidInput

            raise InvalidInput(
                N_("'%(quantity)s' is not a whole number.", quantity=quantity), source="quantity"
            ) from None
        new_line = {"catalogItemId": catalog_item_id, "quantity": qty}
        if cart is None or cart.status != CartStatus.ACTIVE or now >= cart.expires_at:
            # No cart yet, or the old one was ordered or has expired: start a new one.
            cart = services.create_cart(
                session,
                actor=identity.actor_for(me),
                customer=customer,
                lines=[{**new_line, "id": 0}],
                now=now,
            )
        else:
            lines = list(cart.line_items)
            next_id = max((int(x["id"]) for x in lines), default=-1) + 1
            services.update_cart(
                session,
                customer=customer,
                cart_id=cart.id,
                lines=[*lines, {**new_line, "id": next_id}],
                now=now,
            )
    except DomainError as exc:
        session.rollback()
        cart = _cart_of(session, customer, cart_id)
        return _add_products_page(request, session, me, customer, cart, now, error=exc)
    session.commit()
    return RedirectResponse(
        f"/partner/customers/{customer.id}/add-products?cart={cart.id}#review", status_code=303
    )


@router.post("/partner/customers/{customer_id}/add-products/lines/remove")
def remove_line(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    now: NowDep,
    cart_id: Annotated[str, Form()] = "",
    line_id: Annotated[int, Form()] = -1,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.BUY_FOR_CUSTOMER)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    cart = _cart_of(session, customer, cart_id)
    if cart is None:
        raise CartNotFound()
    remaining = [x for x in cart.line_items if int(x["id"]) != line_id]
    if not remaining:
        return RedirectResponse(f"/partner/customers/{customer.id}/add-products", status_code=303)
    try:
        services.update_cart(session, customer=customer, cart_id=cart.id, lines=remaining, now=now)
    except DomainError as exc:
        session.rollback()
        return _add_products_page(request, session, me, customer, cart, now, error=exc)
    session.commit()
    return RedirectResponse(
        f"/partner/customers/{customer.id}/add-products?cart={cart.id}#review", status_code=303
    )


@router.post("/partner/customers/{customer_id}/add-products/checkout")
def place_order(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    settings: SettingsDep,
    now: NowDep,
    info: RequestInfoDep,
    cart_id: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    me = partner_page_user(request, user, Action.BUY_FOR_CUSTOMER)
    check_csrf(request, csrf_token)
    customer = page_customer(session, me, customer_id)
    cart = _cart_of(session, customer, cart_id)
    if cart is None:
        raise CartNotFound()
    try:
        result = services.checkout(
            session,
            settings=settings,
            actor=identity.actor_for(me),
            customer=customer,
            cart_id=cart.id,
            now=now,
            request=info,
        )
    except DomainError as exc:
        session.rollback()
        cart = _cart_of(session, customer, cart_id)
        return _add_products_page(request, session, me, customer, cart, now, error=exc)
    session.commit()
    order_id = result["orders"][0]["id"]
    return RedirectResponse(
        f"/partner/customers/{customer.id}/orders?order={order_id}",
        status_code=303,
    )


@router.get("/partner/customers/{customer_id}/orders")
def order_history_page(
    customer_id: str,
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    order: str | None = None,
) -> Response:
    me = partner_page_user(request, user, Action.VIEW_ORDERS)
    customer = page_customer(session, me, customer_id)
    orders = [services.order_json(o) for o in services.list_orders(session, customer=customer)]
    return render(
        request,
        "partner/order_history.html",
        {
            "portal": "partner",
            "me": me,
            "customer": customer,
            "tab": "orders",
            "orders": orders,
            "placed": order,
        },
    )

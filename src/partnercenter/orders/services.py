"""Carts, checkout and orders: buying on behalf of a customer.

Checkout is one transaction: the cart row is locked (``SELECT ... FOR UPDATE`` on
PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises writers), every line is priced again and
checked against the customer's market, a product key is reserved for every software line,
and the order, its lines, charges, entitlements, activity record and the cart's stored result
are written together. A second checkout of the same cart returns that stored result.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Table, Uuid, bindparam, delete, func, insert, literal, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from partnercenter.audit import services as audit
from partnercenter.billing import services as billing
from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import BillingCycle
from partnercenter.catalog.services import SOFTWARE_TYPES, LineQuote
from partnercenter.config import Settings
from partnercenter.context import Actor, RequestInfo
from partnercenter.customers import services as customers
from partnercenter.errors import DomainError, InvalidInput
from partnercenter.i18n import N_
from partnercenter.identity.models import Tenant
from partnercenter.money import Price
from partnercenter.orders.errors import (
    CartAlreadySubmitted,
    CartBeingProcessed,
    CartExpired,
    CartNotFound,
    CurrencyMismatch,
    CustomerHasNoMarket,
    DuplicateLineId,
    MixedCurrencies,
    OrderNotFound,
)
from partnercenter.orders.models import (
    Cart,
    CartStatus,
    Charge,
    ChargeType,
    Entitlement,
    EntitlementStatus,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
)

CART_LIFETIME = timedelta(days=7)
# How long a checkout waits for another request holding the same cart before answering 800064.
CART_LOCK_TIMEOUT_MS = 20_000


def _table(model: type[Any]) -> Table:
    """The model's table, for Core statements."""
    table: Table = model.__table__
    return table


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


# --- pricing cart lines --------------------------------------------------------------------


@dataclass(frozen=True)
class PricedLine:
    """A cart line with its current quote."""

    id: int
    catalog_item_id: str
    quantity: int
    quote: LineQuote


def _market(customer: Tenant) -> str:
    if not customer.country:
        raise CustomerHasNoMarket()
    return customer.country


def price_lines(
    session: Session,
    *,
    customer: Tenant,
    lines: Sequence[dict[str, Any]],
    for_checkout: bool = False,
    catalog_stamp: str | None = None,
) -> list[PricedLine]:
    """Price every line in the customer's market; the first bad line raises, naming it.

    ``for_checkout``: read only the cart's SKUs and the market's selectors (one statement);
    the session must not list the catalog afterwards (see ``catalog.load_for_pricing``).
    ``catalog_stamp``: the catalog's version stamp read in this transaction
    (``catalog.version_stamp``); lines whose item ``catalog.pricing_cache`` holds under it
    are quoted from there, and when all are, the catalog is not read at all. Items read
    are stored there under the stamp read with them.
    """
    country = _market(customer)
    ids = [str(x.get("catalogItemId", "")) for x in lines]
    cache = catalog.pricing_cache
    cached = [
        cache.get(catalog_stamp, country, item_id) if catalog_stamp is not None else None
        for item_id in ids
    ]
    products: catalog.PricingCatalog | None = None
    if any(item is None for item in cached):
        # One query for every product of the cart; quoting then finds them in the session
        # (held here: the session's identity map only keeps objects someone references).
        parts = [item_id.split(":") for item_id in ids]
        products = catalog.load_for_pricing(
            session,
            product_ids=[p[0] for p in parts],
            country=country,
            sku_ids=[p[1] for p in parts if len(p) > 1] if for_checkout else None,
            availability_ids=[p[2] for p in parts if len(p) > 2] if for_checkout else None,
        )
    priced: list[PricedLine] = []
    seen_ids: set[int] = set()
    for index, line in enumerate(lines):
        line_id = line.get("id")
        line_id = index if line_id is None else int(line_id)
        if line_id in seen_ids:
            raise DuplicateLineId(
                f"Line items {line_id} appears twice in the cart.", source=f"lineItems[{index}].id"
            )
        seen_ids.add(line_id)
        try:
            known = cached[index]
            if known is not None:
                q = catalog.quote_item(
                    known,
                    catalog_item_id=ids[index],
                    quantity=line.get("quantity"),  # type: ignore[arg-type]
                    term_duration=line.get("termDuration"),
                    billing_cycle=line.get("billingCycle"),
                )
            else:
                assert products is not None, "the catalog is read when an item is not cached"
                q = catalog.quote(
                    session,
                    catalog_item_id=ids[index],
                    country=country,
                    quantity=line.get("quantity"),  # type: ignore[arg-type]
                    term_duration=line.get("termDuration"),
                    billing_cycle=line.get("billingCycle"),
                    rate=products.rate,
                )
                if catalog_stamp is not None and products.stamp is not None:
                    cache.put(products.stamp, country, ids[index], q.item)
            wanted_currency = line.get("currencyCode")
            if wanted_currency and str(wanted_currency).upper() != q.item.currency:
                raise CurrencyMismatch(
                    f"The currency {wanted_currency} does not match {q.item.currency}, the "
                    f"currency of {q.item.catalog_item_id} in market {country}.",
                    source="currencyCode",
                )
        except DomainError as exc:
            exc.source = f"lineItems[{index}].{exc.source or 'catalogItemId'}"
            exc.data = [*exc.data, {"lineItem": index}]
            raise
        priced.append(PricedLine(line_id, q.item.catalog_item_id, q.quantity, q))
    del products
    currencies = {p.quote.item.currency for p in priced}
    if len(currencies) > 1:
        raise MixedCurrencies(
            N_(
                "All items of one cart must be priced in the same currency; this cart mixes "
                "%(currencies)s.",
                currencies=", ".join(sorted(currencies)),
            ),
            source="lineItems",
        )
    return priced


def _stored_lines(priced: Sequence[PricedLine]) -> list[dict[str, Any]]:
    return [
        {
            "id": p.id,
            "catalogItemId": p.catalog_item_id,
            "quantity": p.quantity,
            "billingCycle": p.quote.billing_cycle.value,
            "termDuration": p.quote.term_duration,
            "currencyCode": p.quote.item.currency,
        }
        for p in priced
    ]


def pricing_json(quote: LineQuote) -> dict[str, Any]:
    unit, line = quote.unit_price, quote.line_price
    return {
        "currency": line.currency,
        "taxIncluded": quote.item.tax_inclusive,
        "unitNet": str(unit.net),
        "unitTax": str(unit.tax),
        "unitGross": str(unit.gross),
        "net": str(line.net),
        "tax": str(line.tax),
        "gross": str(line.gross),
    }


def total_of(prices: Sequence[Price], currency: str) -> Price:
    total = Price.zero(currency)
    for p in prices:
        total = total + p
    return total


# --- carts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CartView:
    """A cart with its lines priced now (a line that can no longer be sold carries its error)."""

    cart: Cart
    lines: list[tuple[dict[str, Any], LineQuote | None, DomainError | None]]
    expired: bool

    @property
    def currency(self) -> str | None:
        for _line, q, _err in self.lines:
            if q is not None:
                return q.item.currency
        return None

    @property
    def total(self) -> Price | None:
        currency = self.currency
        if currency is None:
            return None
        return total_of([q.line_price for _l, q, _e in self.lines if q is not None], currency)

    def to_json(self) -> dict[str, Any]:
        currency = self.currency or ""
        total = self.total
        items = []
        groups: dict[str, str] = {}  # checkout makes one order per billing cycle
        for line, q, err in self.lines:
            cycle = q.billing_cycle.value if q else str(line.get("billingCycle") or "")
            group = groups.setdefault(cycle, str(len(groups)))
            item: dict[str, Any] = {
                "id": line["id"],
                "catalogItemId": line["catalogItemId"],
                "friendlyName": (f"{q.item.product.title} {q.item.sku.title}" if q else ""),
                "quantity": line["quantity"],
                "billingCycle": line.get("billingCycle") or "",
                "termDuration": line.get("termDuration"),
                "currencyCode": line.get("currencyCode") or currency,
                "pricing": pricing_json(q) if q else None,
                "orderGroup": group,
                "participants": [],
                "provisioningContext": {},
            }
            if err is not None:
                item["error"] = {"code": err.code, "description": err.description}
            items.append(item)
        status = "Expired" if self.expired and self.cart.status == CartStatus.ACTIVE else None
        return {
            "id": str(self.cart.id),
            "customerId": str(self.cart.customer_id),
            "status": status or self.cart.status.value.capitalize(),
            "creationTimestamp": _iso(self.cart.created_at),
            "lastModifiedTimestamp": _iso(self.cart.updated_at),
            "expirationTimestamp": _iso(self.cart.expires_at),
            "lineItems": items,
            "totals": (
                {
                    "currency": currency,
                    "net": str(total.net),
                    "tax": str(total.tax),
                    "gross": str(total.gross),
                }
                if total
                else {"currency": currency, "net": "0", "tax": "0", "gross": "0"}
            ),
            "attributes": {"objectType": "Cart"},
        }


def view_cart(session: Session, *, customer: Tenant, cart: Cart, now: datetime) -> CartView:
    """The cart priced now; a line no longer on sale keeps its error instead of a price."""
    lines: list[tuple[dict[str, Any], LineQuote | None, DomainError | None]] = []
    for line in cart.line_items:
        try:
            priced = price_lines(session, customer=customer, lines=[line])
            lines.append((line, priced[0].quote, None))
        except DomainError as exc:
            lines.append((line, None, exc))
    return CartView(cart, lines, expired=now >= cart.expires_at)


def create_cart(
    session: Session,
    *,
    actor: Actor,
    customer: Tenant,
    lines: Sequence[dict[str, Any]],
    now: datetime,
) -> Cart:
    """A new cart for the customer; every line is checked and priced in its market now."""
    priced = price_lines(session, customer=customer, lines=lines)
    cart = Cart(
        id=uuid.uuid4(),
        partner_id=actor.tenant_id,
        customer_id=customer.id,
        created_by=actor.user_id,
        status=CartStatus.ACTIVE,
        line_items=_stored_lines(priced),
        created_at=now,
        updated_at=now,
        expires_at=now + CART_LIFETIME,
    )
    session.add(cart)
    return cart


def delete_expired_carts(session: Session, *, now: datetime) -> int:
    """Delete carts that expired before ``now`` without being checked out; returns how many.

    Checked-out carts stay: their order points at them and replays its checkout result.
    """
    result = session.execute(
        delete(Cart).where(Cart.status == CartStatus.ACTIVE, Cart.expires_at < now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def get_cart(session: Session, *, customer: Tenant, cart_id: uuid.UUID) -> Cart:
    """One of the customer's carts; another customer's cart is not found."""
    cart = session.get(Cart, cart_id)
    if cart is None or cart.customer_id != customer.id:
        raise CartNotFound()
    return cart


def update_cart(
    session: Session,
    *,
    customer: Tenant,
    cart_id: uuid.UUID,
    lines: Sequence[dict[str, Any]],
    now: datetime,
) -> Cart:
    """Replace the cart's lines (checked and priced again); the cart lives 7 more days."""
    cart, _, _, _ = _locked_cart(session, customer=customer, cart_id=cart_id)
    if cart.status != CartStatus.ACTIVE:
        raise CartAlreadySubmitted()
    if now >= cart.expires_at:
        raise CartExpired()
    priced = price_lines(session, customer=customer, lines=lines)
    cart.line_items = _stored_lines(priced)
    cart.updated_at = now
    cart.expires_at = now + CART_LIFETIME
    return cart


_LOCK_STATEMENTS: dict[tuple[str, bool, str | None], Any] = {}


def _lock_statement(dialect: str, *, by_id: bool, billing_now: datetime | None) -> Any:
    """``_locked_cart``'s statement, built once per database, shape and billing month.

    Parameters ``cart_id``, ``customer_id`` and ``partner_id`` (the last only ``by_id``).
    Built once and kept: building it and its cache key cost more CPU than running it.
    """
    month = billing.month_of(billing_now) if billing_now is not None else None
    key = (dialect, by_id, month)
    stmt = _LOCK_STATEMENTS.get(key)
    if stmt is not None:
        return stmt
    probe: Any = literal(None)
    stamp: Any = literal(None)
    if billing_now is not None:
        probe, stamp = billing.period_state_probe(billing_now), catalog.version_stamp()
    cart_id = bindparam("cart_id", type_=Uuid())
    customer_id = bindparam("customer_id", type_=Uuid())
    if by_id:
        stmt = (
            select(Cart, probe, stamp, Tenant)
            .join(Tenant, Tenant.id == Cart.customer_id)
            .where(
                Cart.id == cart_id,
                customers.is_partner_customer(bindparam("partner_id", type_=Uuid()), customer_id),
            )
        )
    else:
        stmt = select(Cart, probe, stamp).where(Cart.id == cart_id, Cart.customer_id == customer_id)
    if dialect == "postgresql":
        # The transaction's lock timeout is set by the locking statement itself (one round
        # trip): the WHERE clause runs before the row lock is waited for.
        stmt = stmt.where(
            func.set_config("lock_timeout", str(CART_LOCK_TIMEOUT_MS), True).is_not(None)
        )
    stmt = stmt.with_for_update(of=Cart).execution_options(populate_existing=True)
    if len(_LOCK_STATEMENTS) >= 16:  # months go by: keep only the recent ones
        _LOCK_STATEMENTS.clear()
    _LOCK_STATEMENTS[key] = stmt
    return stmt


def _locked_cart(
    session: Session,
    *,
    customer: Tenant | uuid.UUID,
    cart_id: uuid.UUID,
    partner_id: uuid.UUID | None = None,
    billing_now: datetime | None = None,
) -> tuple[Cart, Tenant, str | None, str | None]:
    """The cart locked for this transaction, its customer, a billing period's state and the
    catalog's version stamp.

    One statement: the cart row locked (waits for a request holding it, then 800064); the
    customer when given by id (``partner_id``'s customer, by
    ``customers.is_partner_customer``); with ``billing_now`` (checkout), billing's period
    probe (``billing.period_state_probe``) and the catalog's stamp
    (``catalog.version_stamp``, for ``catalog.pricing_cache``), else None for both.
    """
    by_id = not isinstance(customer, Tenant)
    assert not by_id or partner_id is not None, "a customer given by id needs its partner"
    stmt = _lock_statement(session.get_bind().dialect.name, by_id=by_id, billing_now=billing_now)
    params: dict[str, uuid.UUID | None] = {
        "cart_id": cart_id,
        "customer_id": customer.id if isinstance(customer, Tenant) else customer,
    }
    if by_id:
        params["partner_id"] = partner_id
    try:
        row = session.execute(stmt, params).first()
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == "55P03":  # lock_not_available
            raise CartBeingProcessed() from None
        raise
    if row is None:
        if not isinstance(customer, Tenant) and partner_id is not None:
            # The customer's own 404 comes first, as when it is looked up alone.
            customers.get_customer(session, partner_id=partner_id, customer_id=customer)
        raise CartNotFound()
    found = customer if isinstance(customer, Tenant) else row[3]
    return row[0], found, row[1], row[2]


# --- checkout ------------------------------------------------------------------------------


def checkout(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    customer: Tenant | uuid.UUID,
    cart_id: uuid.UUID,
    now: datetime,
    request: RequestInfo | None = None,
) -> dict[str, Any]:
    """Turn the cart into orders, all lines or none; returns ``{orders, orderErrors}``.

    One order per billing cycle in the cart (Partner Center's rule for a mixed cart).
    ``customer``: the customer, or its id (then read with the cart; 404 12001 when it is not
    one of the actor's partner's customers).

    A cart already checked out returns its first result and writes nothing.
    """
    cart, customer, period_state, catalog_stamp = _locked_cart(
        session, customer=customer, cart_id=cart_id, partner_id=actor.tenant_id, billing_now=now
    )
    if cart.status == CartStatus.ORDERED and cart.checkout_result is not None:
        return cart.checkout_result
    if now >= cart.expires_at:
        raise CartExpired()
    if not cart.line_items:
        raise InvalidInput("The cart has no line items.", source="lineItems")
    priced = price_lines(
        session,
        customer=customer,
        lines=cart.line_items,
        for_checkout=True,
        catalog_stamp=catalog_stamp,
    )
    # Partner Center makes one order per billing cycle when a cart mixes them.
    by_cycle: dict[str, list[PricedLine]] = {}
    for p in priced:
        by_cycle.setdefault(p.quote.billing_cycle.value, []).append(p)
    # Billing's rule: the clock's month, or the next open one once a close of it has begun.
    billing_month = billing.open_billing_month(session, now=now, probed=period_state)
    placed = [
        _place_order(
            session,
            settings=settings,
            actor=actor,
            customer=customer,
            cart=cart,
            cycle=cycle,
            priced=group,
            billing_month=billing_month,
            now=now,
            request=request,
        )
        for cycle, group in by_cycle.items()
    ]
    result = {
        "orders": placed,
        "orderErrors": [],
        "attributes": {"objectType": "CartCheckoutResult"},
    }
    # One Core update (no unit of work); the loaded cart is told its new committed values.
    session.execute(_MARK_ORDERED, {"cart": cart.id, "result": result, "at": now})
    for name, value in (
        ("status", CartStatus.ORDERED),
        ("checkout_result", result),
        ("updated_at", now),
    ):
        set_committed_value(cart, name, value)
    return result


_CARTS = _table(Cart)
# The cart checked out, with the response a repeat returns (built once, a Core statement).
_MARK_ORDERED = (
    update(_CARTS)
    .where(_CARTS.c.id == bindparam("cart", type_=_CARTS.c.id.type))
    .values(
        status=CartStatus.ORDERED,
        checkout_result=bindparam("result", type_=_CARTS.c.checkout_result.type),
        updated_at=bindparam("at", type_=_CARTS.c.updated_at.type),
    )
)


# The order's Core inserts, built once: a statement built per call has its cache key worked
# out again on every execution (SQLAlchemy keeps it on the statement object).
_INSERT_ORDER = insert(_table(Order))
_INSERT_LINES = insert(_table(OrderLine))
_INSERT_CHARGES = insert(_table(Charge))
_INSERT_ENTITLEMENTS = insert(_table(Entitlement))


def _place_order(
    session: Session,
    *,
    settings: Settings,
    actor: Actor,
    customer: Tenant,
    cart: Cart,
    cycle: str,
    priced: Sequence[PricedLine],
    billing_month: Any,
    now: datetime,
    request: RequestInfo | None,
) -> dict[str, Any]:
    """One order of a checkout: the cart's lines of one billing cycle, charged and entitled.

    Written with Core inserts (no unit of work, no ORM objects: the order's JSON is made
    from the rows inserted): the order, its lines, their charges, then for each software
    line its key and entitlement, four statements plus one per key. Returns the order's
    JSON (:func:`order_json`).
    """
    currency = priced[0].quote.item.currency
    order_id = uuid.uuid4()
    total = total_of([p.quote.line_price for p in priced], currency)
    order_net, order_tax, order_gross = total.minor()
    order_row: dict[str, Any] = {
        "id": order_id,
        "partner_id": cart.partner_id,
        "customer_id": customer.id,
        "cart_id": cart.id,
        "billing_cycle": cycle,
        "created_by": actor.user_id,
        "status": OrderStatus.COMPLETED,
        "currency": currency,
        "market": _market(customer),
        "tax_included": priced[0].quote.item.tax_inclusive,
        "net_minor": order_net,
        "tax_minor": order_tax,
        "gross_minor": order_gross,
        "created_at": now,
    }
    line_rows: list[dict[str, Any]] = []
    charge_rows: list[dict[str, Any]] = []
    for number, p in enumerate(priced):
        item = p.quote.item
        unit_net, unit_tax, unit_gross = p.quote.unit_price.minor()
        net, tax, gross = p.quote.line_price.minor()
        line_id = uuid.uuid4()
        line_rows.append(
            {
                "id": line_id,
                "order_id": order_id,
                "line_number": number,
                "catalog_item_id": item.catalog_item_id,
                "product_id": item.product.id,
                "sku_id": item.sku.sku_id,
                "availability_id": item.availability.availability_id,
                "sku_pk": item.sku.id,
                "product_type": item.product_type.value,
                "product_title": item.product.title,
                "sku_title": item.sku.title,
                "quantity": p.quantity,
                "term_duration": p.quote.term_duration,
                "billing_cycle": p.quote.billing_cycle.value,
                "currency": currency,
                "unit_net_minor": unit_net,
                "unit_tax_minor": unit_tax,
                "unit_gross_minor": unit_gross,
                "net_minor": net,
                "tax_minor": tax,
                "gross_minor": gross,
                "status": LineStatus.ACTIVE,
                "purchased_at": now,
                "cancellation_policy": catalog.cancellation_policy(item.product).to_json(),
                "cancelled_at": None,
            }
        )
        charge_rows.append(
            {
                "id": uuid.uuid4(),
                "partner_id": cart.partner_id,
                "customer_id": customer.id,
                "order_id": order_id,
                "order_line_id": line_id,
                "charge_type": ChargeType.NEW,
                "currency": currency,
                "net_minor": net,
                "tax_minor": tax,
                "gross_minor": gross,
                "quantity": p.quantity,
                "billing_month": billing_month,
                "created_at": now,
                "reverses_charge_id": None,
                "credit_reason_code": None,
            }
        )
    # The order, then its lines, then their charges: each points at the one before.
    session.execute(_INSERT_ORDER, order_row)
    session.execute(_INSERT_LINES, line_rows)
    session.execute(_INSERT_CHARGES, charge_rows)
    entitlement_rows: list[dict[str, Any]] = []
    for p, line in zip(priced, line_rows, strict=True):
        if p.quote.item.product_type not in SOFTWARE_TYPES:
            continue
        key_id = None
        if p.quote.item.sku.key_source.value != "none":
            # Any failure (out of keys) aborts the whole checkout's transaction.
            key_id = catalog.reserve_key(
                session,
                settings=settings,
                product_id=line["product_id"],
                sku_id=line["sku_id"],
                version=None,
                order_line_ref=str(line["id"]),
                now=now,
                sku=p.quote.item.sku,
            )
        entitlement_rows.append(
            {
                # The line's id: Partner Center's order line names its subscription by id,
                # and a software subscription here is the entitlement of one line.
                "id": line["id"],
                "partner_id": cart.partner_id,
                "customer_id": customer.id,
                "order_id": order_id,
                "order_line_id": line["id"],
                "product_id": line["product_id"],
                "sku_pk": line["sku_pk"],
                "product_key_id": key_id,
                "status": EntitlementStatus.ACTIVE,
                "created_at": now,
            }
        )
    if entitlement_rows:
        session.execute(_INSERT_ENTITLEMENTS, entitlement_rows)
    lines = [SimpleNamespace(**row) for row in line_rows]
    audit.record(
        session,
        at=now,
        resource_type="order",
        operation_type="create_order",
        tenant_id=cart.partner_id,
        actor=actor,
        request=request,
        customer_id=customer.id,
        customer_name=customer.name,
        details={
            "orderId": str(order_id),
            "cartId": str(cart.id),
            "currency": currency,
            "total": str(total.gross),
            "lines": [
                {
                    "lineItemNumber": line.line_number,
                    "offerId": line.catalog_item_id,
                    "quantity": line.quantity,
                    "product": f"{line.product_title} {line.sku_title}",
                }
                for line in lines
            ],
        },
    )
    return _order_json(SimpleNamespace(**order_row), lines)


# --- orders --------------------------------------------------------------------------------


def order_json(order: Order) -> dict[str, Any]:
    """Partner Center's order resource, with our prices and totals beside it.

    Documented fields (Partner Center "Order resources"): ``id``, ``alternateId``,
    ``referenceCustomerId``, ``billingCycle``, ``transactionType``, ``lineItems``,
    ``currencyCode``, ``currencySymbol``, ``creationDate``, ``status``, ``links`` (``self``,
    ``provisioningStatus``), ``attributes``. Each line's ``subscriptionId`` is the software
    subscription it became (``/customers/{id}/subscriptions/{subscriptionId}``).
    """
    return _order_json(order, order.lines)


@functools.lru_cache(maxsize=64)
def _currency_symbol(currency: str) -> str:
    """The currency's symbol as written in US English (``$``, ``€``), from babel's data."""
    from babel.numbers import get_currency_symbol

    return get_currency_symbol(currency, locale="en_US")


def _order_json(order: Any, lines: Sequence[Any]) -> dict[str, Any]:
    """:func:`order_json` of anything with an order's and its lines' attributes (checkout
    answers from the rows it inserted, without building ORM objects)."""
    from partnercenter.envelopes import link
    from partnercenter.money import from_minor

    cur = order.currency
    base = f"/v1/customers/{order.customer_id}/orders/{order.id}"

    def amount(minor: int) -> str:
        return str(from_minor(minor, cur))

    return {
        "id": str(order.id),
        "alternateId": order.id.hex[:12],
        "referenceCustomerId": str(order.customer_id),
        "billingCycle": order.billing_cycle,
        "transactionType": "UserPurchase",
        "creationDate": _iso(order.created_at),
        "status": order.status.value,
        "currencyCode": cur,
        "currencySymbol": _currency_symbol(cur),
        "links": {
            "self": link(base),
            "provisioningStatus": link(base + "/provisioningstatus"),
        },
        "lineItems": [
            {
                "lineItemNumber": line.line_number,
                "offerId": line.catalog_item_id,
                "subscriptionId": str(line.id),
                "transactionType": "new",
                "links": {
                    "product": link(f"/v1/products/{line.product_id}"),
                    "sku": link(f"/v1/products/{line.product_id}/skus/{line.sku_id}"),
                    "availability": link(
                        f"/v1/products/{line.product_id}/skus/{line.sku_id}"
                        f"/availabilities/{line.availability_id}"
                    ),
                },
                "productId": line.product_id,
                "skuId": line.sku_id,
                "friendlyName": f"{line.product_title} {line.sku_title}",
                "productType": line.product_type,
                "quantity": line.quantity,
                "termDuration": line.term_duration,
                "billingCycle": line.billing_cycle,
                "purchaseDate": _iso(line.purchased_at),
                "status": line.status.value,
                "pricing": {
                    "currency": cur,
                    "taxIncluded": order.tax_included,
                    "unitNet": amount(line.unit_net_minor),
                    "unitTax": amount(line.unit_tax_minor),
                    "unitGross": amount(line.unit_gross_minor),
                    "net": amount(line.net_minor),
                    "tax": amount(line.tax_minor),
                    "gross": amount(line.gross_minor),
                },
            }
            for line in lines
        ],
        "totals": {
            "currency": cur,
            "net": amount(order.net_minor),
            "tax": amount(order.tax_minor),
            "gross": amount(order.gross_minor),
        },
        "attributes": {"objectType": "Order"},
    }


def billing_cycle_named(text: str) -> str:
    """A billing cycle as Partner Center names it (``one_time``, ``OneTime``, ``Annual``).

    Raises InvalidInput (10010) for a name that is not a billing cycle.
    """
    value = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text.strip()).lower()
    known = {c.value for c in BillingCycle}
    if value not in known:
        raise InvalidInput(
            f"{text[:40]!r} is not a billing cycle: use " + ", ".join(sorted(known)) + ".",
            source="billingType",
        )
    return value


def list_orders(
    session: Session, *, customer: Tenant, billing_cycle: str | None = None
) -> Sequence[Order]:
    """The customer's orders, newest first, with their lines; optionally of one cycle."""
    query = select(Order).where(Order.customer_id == customer.id)
    if billing_cycle is not None:
        query = query.where(Order.billing_cycle == billing_cycle)
    return (
        session.execute(
            query.options(selectinload(Order.lines)).order_by(Order.created_at.desc(), Order.id)
        )
        .scalars()
        .all()
    )


def get_order(session: Session, *, customer: Tenant, order_id: uuid.UUID) -> Order:
    """One of the customer's orders; another customer's order is not found."""
    order = session.get(Order, order_id)
    if order is None or order.customer_id != customer.id:
        raise OrderNotFound()
    return order

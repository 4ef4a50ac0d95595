"""Billing test data: orders, lines and charges written straight into the orders tables.

The ledger writes the rows the orders area writes at checkout (an order, its line and the
line's ``new`` charge) and credits the way cancellation does (a negative ``cancel`` charge
naming the charge it reverses), so the close can be tested on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from partnercenter.billing import services as billing
from partnercenter.catalog.models import CreditRule, KeySource, Product, ProductType, Sku
from partnercenter.clock import FrozenClock
from partnercenter.db import make_engine, make_session_factory
from partnercenter.identity.models import Tenant
from partnercenter.money import to_minor
from partnercenter.orders.models import (
    Charge,
    ChargeType,
    LineStatus,
    Order,
    OrderLine,
    OrderStatus,
)
from tests.factories import Factory


@dataclass
class Purchase:
    order: Order
    line: OrderLine
    charge: Charge


class Ledger:
    """Writes purchases and credits for billing tests."""

    def __init__(self, session: Session, factory: Factory, clock: FrozenClock) -> None:
        self.session = session
        self.factory = factory
        self.clock = clock
        self._skus: dict[str, Sku] = {}

    def sku(self, product_id: str = "DG7GMGF0DVT4", sku_id: str = "0001") -> Sku:
        key = f"{product_id}:{sku_id}"
        if key not in self._skus:
            now = self.clock.now()
            product = self.session.get(Product, product_id)
            if product is None:
                product = Product(
                    id=product_id,
                    title=f"Windows Server {product_id[-4:]}",
                    product_type=ProductType.PERPETUAL_SOFTWARE,
                    cancel_window_days=30,
                    cancel_credit_rule=CreditRule.FULL,
                    created_at=now,
                    updated_at=now,
                )
                self.session.add(product)
            sku = Sku(
                id=uuid.uuid4(),
                product_id=product_id,
                sku_id=sku_id,
                title=f"Standard {sku_id}",
                key_source=KeySource.NONE,
            )
            self.session.add(sku)
            self.session.flush()
            self._skus[key] = sku
        return self._skus[key]

    def purchase(
        self,
        partner: Tenant,
        customer: Tenant,
        *,
        unit_net: str = "100.00",
        tax_rate: str = "0.10",
        quantity: int = 1,
        currency: str = "USD",
        billing_cycle: str = "one_time",
        term: str | None = None,
        at: datetime | None = None,
        month: str | None = None,
        product_id: str = "DG7GMGF0DVT4",
    ) -> Purchase:
        """An order of one line and its ``new`` charge, stamped with the open month."""
        at = at or self.clock.now()
        sku = self.sku(product_id)
        unit = Decimal(unit_net)
        unit_net_minor = to_minor(unit, currency)
        unit_tax_minor = to_minor(unit * Decimal(tax_rate), currency)
        net, tax = unit_net_minor * quantity, unit_tax_minor * quantity
        order = Order(
            id=uuid.uuid4(),
            partner_id=partner.id,
            customer_id=customer.id,
            cart_id=self._cart(partner, customer, at),
            status=OrderStatus.COMPLETED,
            currency=currency,
            market=customer.country or "US",
            tax_included=False,
            net_minor=net,
            tax_minor=tax,
            gross_minor=net + tax,
            created_at=at,
        )
        line = OrderLine(
            id=uuid.uuid4(),
            order_id=order.id,
            line_number=0,
            catalog_item_id=f"{product_id}:{sku.sku_id}:0001",
            product_id=product_id,
            sku_id=sku.sku_id,
            availability_id="0001",
            sku_pk=sku.id,
            product_type="perpetual_software",
            product_title=f"Windows Server {product_id[-4:]}",
            sku_title=sku.title,
            quantity=quantity,
            term_duration=term,
            billing_cycle=billing_cycle,
            currency=currency,
            unit_net_minor=unit_net_minor,
            unit_tax_minor=unit_tax_minor,
            unit_gross_minor=unit_net_minor + unit_tax_minor,
            net_minor=net,
            tax_minor=tax,
            gross_minor=net + tax,
            status=LineStatus.ACTIVE,
            purchased_at=at,
            cancellation_policy={},
        )
        order.lines = [line]
        self.session.add(order)
        self.session.flush()
        charge = Charge(
            id=uuid.uuid4(),
            partner_id=partner.id,
            customer_id=customer.id,
            order_id=order.id,
            order_line_id=line.id,
            charge_type=ChargeType.NEW,
            currency=currency,
            net_minor=net,
            tax_minor=tax,
            gross_minor=net + tax,
            quantity=quantity,
            billing_month=month or billing.open_billing_month(self.session, now=at),
            created_at=at,
        )
        self.session.add(charge)
        self.session.flush()
        return Purchase(order, line, charge)

    def credit(
        self,
        purchase: Purchase,
        *,
        fraction: str = "1",
        at: datetime | None = None,
        charge_type: ChargeType = ChargeType.CANCEL,
        reason: str = "cancel_within_window",
        month: str | None = None,
        cancel_line: bool = True,
    ) -> Charge:
        """A negative charge reversing ``fraction`` of the purchase's charge."""
        at = at or self.clock.now()
        share = Decimal(fraction)
        original = purchase.charge
        net = -int((Decimal(original.net_minor) * share).to_integral_value())
        tax = -int((Decimal(original.tax_minor) * share).to_integral_value())
        credit = Charge(
            id=uuid.uuid4(),
            partner_id=original.partner_id,
            customer_id=original.customer_id,
            order_id=original.order_id,
            order_line_id=original.order_line_id,
            charge_type=charge_type,
            currency=original.currency,
            net_minor=net,
            tax_minor=tax,
            gross_minor=net + tax,
            quantity=original.quantity,
            billing_month=month or billing.open_billing_month(self.session, now=at),
            created_at=at,
            reverses_charge_id=original.id,
            credit_reason_code=reason,
        )
        self.session.add(credit)
        if cancel_line and charge_type == ChargeType.CANCEL:
            purchase.line.status = LineStatus.CANCELLED
            purchase.line.cancelled_at = at
        self.session.flush()
        return credit

    def _cart(self, partner: Tenant, customer: Tenant, at: datetime) -> uuid.UUID:
        from partnercenter.orders.models import Cart, CartStatus

        cart = Cart(
            id=uuid.uuid4(),
            partner_id=partner.id,
            customer_id=customer.id,
            status=CartStatus.ORDERED,
            line_items=[],
            created_at=at,
            updated_at=at,
            expires_at=at,
        )
        self.session.add(cart)
        self.session.flush()
        return cart.id


@pytest.fixture
def ledger(session: Session, factory: Factory, clock: FrozenClock) -> Ledger:
    return Ledger(session, factory, clock)


def two_partners_bought_in_november(url: str, *, credit_half: bool = False) -> None:
    """Commit, on the migrated database at ``url``, partners Alpha and Beta, each with one
    customer who bought for 10.00 USD and one who bought in EUR on 15 November 2026; with
    ``credit_half``, half of Beta's USD purchase is credited."""
    engine = make_engine(url)
    clock = FrozenClock(datetime(2026, 11, 15, 12, 0, tzinfo=UTC))
    with make_session_factory(engine)() as session:
        factory = Factory(session, clock)
        ledger = Ledger(session, factory, clock)
        for name in ("Alpha", "Beta"):
            partner = factory.partner(name)
            bought = ledger.purchase(partner, factory.customer(partner), unit_net="10.00")
            ledger.purchase(partner, factory.customer(partner), currency="EUR")
        if credit_half:
            ledger.credit(bought, fraction="0.5")
        session.commit()
    engine.dispose()

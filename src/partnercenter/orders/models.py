"""Carts, orders and their lines, charges for invoicing, and entitlements.

Amounts are integer minor units beside a currency code. See ``docs/dev/orders.md``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnercenter.db import Base, UTCDateTime, new_id, str_enum


class CartStatus(StrEnum):
    ACTIVE = "active"
    ORDERED = "ordered"


class OrderStatus(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class LineStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class ChargeType(StrEnum):
    NEW = "new"
    CANCEL = "cancel"
    # A monthly-billed subscription's charge for each later month of its term (billing close).
    CYCLE_CHARGE = "cycleCharge"
    # An approved refund from a support request.
    CUSTOMER_CREDIT = "customerCredit"


class EntitlementStatus(StrEnum):
    ACTIVE = "active"
    CANCELLED = "cancelled"


class Cart(Base):
    """A customer's cart: line items as the API gives them, until checkout or expiry."""

    __tablename__ = "carts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[CartStatus] = mapped_column(str_enum(CartStatus, "cart_status"))
    # [{id, catalogItemId, quantity, billingCycle, termDuration, currencyCode?}]
    line_items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The first checkout's response: a second checkout of the cart returns it unchanged.
    checkout_result: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Order(Base):
    """An order placed for a customer by checking out a cart."""

    __tablename__ = "orders"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    # One order per billing cycle of a cart (Partner Center splits a mixed cart that way);
    # unique together, so a second checkout can never sell the cart twice.
    cart_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("carts.id", ondelete="RESTRICT"))
    # Orders written before carts were split by cycle were all one; one_time (perpetual
    # software) is the default when a writer does not name one.
    billing_cycle: Mapped[str] = mapped_column(String(20), default="one_time")
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    status: Mapped[OrderStatus] = mapped_column(str_enum(OrderStatus, "order_status"))
    currency: Mapped[str] = mapped_column(String(3))
    market: Mapped[str] = mapped_column(String(2))
    tax_included: Mapped[bool] = mapped_column(Boolean)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.line_number", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_orders_customer_id_created_at", "customer_id", "created_at"),
        UniqueConstraint("cart_id", "billing_cycle"),
    )


class OrderLine(Base):
    """One line of an order, with the price and the cancellation policy as sold."""

    __tablename__ = "order_lines"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    line_number: Mapped[int] = mapped_column(Integer)
    catalog_item_id: Mapped[str] = mapped_column(String(130))
    product_id: Mapped[str] = mapped_column(String(40))
    sku_id: Mapped[str] = mapped_column(String(40))
    availability_id: Mapped[str] = mapped_column(String(40))
    sku_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_skus.id", ondelete="RESTRICT"), index=True
    )
    product_type: Mapped[str] = mapped_column(String(40))
    product_title: Mapped[str] = mapped_column(String(200))
    sku_title: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    term_duration: Mapped[str | None] = mapped_column(String(8))
    billing_cycle: Mapped[str] = mapped_column(String(20))
    currency: Mapped[str] = mapped_column(String(3))
    unit_net_minor: Mapped[int] = mapped_column(BigInteger)
    unit_tax_minor: Mapped[int] = mapped_column(BigInteger)
    unit_gross_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[LineStatus] = mapped_column(str_enum(LineStatus, "line_status"))
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The product's cancellation policy when sold; cancellation reads this, not the catalog.
    cancellation_policy: Mapped[dict[str, Any]] = mapped_column(JSON)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    order: Mapped[Order] = relationship(back_populates="lines")

    __table_args__ = (UniqueConstraint("order_id", "line_number"),)


class Charge(Base):
    """An amount the partner owes (or is credited), one per order line, ready for invoicing."""

    __tablename__ = "charges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), index=True
    )
    charge_type: Mapped[ChargeType] = mapped_column(str_enum(ChargeType, "charge_type"))
    currency: Mapped[str] = mapped_column(String(3))
    net_minor: Mapped[int] = mapped_column(BigInteger)
    tax_minor: Mapped[int] = mapped_column(BigInteger)
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    # The month the charge is invoiced in, "YYYY-MM" (UTC), from the injected clock.
    billing_month: Mapped[str] = mapped_column(String(7))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # A credit (negative amounts) names the charge it gives back and why; see docs/dev/orders.md.
    reverses_charge_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("charges.id", ondelete="RESTRICT"), index=True
    )
    credit_reason_code: Mapped[str | None] = mapped_column(String(40))

    __table_args__ = (
        Index("ix_charges_partner_id_billing_month", "partner_id", "billing_month"),
        # One purchase, cycle or cancellation charge per line and month: a retried or racing
        # writer cannot bill twice. Approved refunds (customerCredit) may be several.
        Index(
            "uq_charges_line_type_month",
            "order_line_id",
            "charge_type",
            "billing_month",
            unique=True,
            postgresql_where=text("charge_type <> 'customerCredit'"),
            sqlite_where=text("charge_type <> 'customerCredit'"),
        ),
    )


class Entitlement(Base):
    """What a software line grants the customer: the product, SKU and its reserved key."""

    __tablename__ = "entitlements"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    partner_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tenants.id", ondelete="RESTRICT"), index=True
    )
    order_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("orders.id", ondelete="RESTRICT"))
    order_line_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("order_lines.id", ondelete="RESTRICT"), unique=True
    )
    product_id: Mapped[str] = mapped_column(String(40))
    sku_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalog_skus.id", ondelete="RESTRICT"))
    product_key_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("catalog_product_keys.id", ondelete="RESTRICT"), unique=True
    )
    status: Mapped[EntitlementStatus] = mapped_column(
        str_enum(EntitlementStatus, "entitlement_status")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

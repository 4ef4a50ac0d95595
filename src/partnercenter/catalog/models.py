"""Catalog tables: products, SKUs, availabilities per market, tax rates, artifacts, keys.

Amounts are integer minor units beside a currency code; percentages and tax rates are
integers in parts per million (20 % = 200000) so they stay exact on every database.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from partnercenter.db import Base, UTCDateTime, new_id, str_enum


class ProductType(StrEnum):
    AZURE_RESERVATION = "azure_reservation"
    SERVER_SUBSCRIPTION = "server_subscription"
    PERPETUAL_SOFTWARE = "perpetual_software"
    SOFTWARE_PLAN = "software_plan"


class CreditRule(StrEnum):
    """How much of the price a cancellation inside the window credits."""

    FULL = "full"
    PRORATED = "prorated"
    PRORATED_LESS_FEE = "prorated_less_fee"
    NONE = "none"


class BillingCycle(StrEnum):
    ONE_TIME = "one_time"
    MONTHLY = "monthly"
    ANNUAL = "annual"


class KeySource(StrEnum):
    """Where a SKU's product keys come from."""

    INVENTORY = "inventory"
    GENERATOR = "generator"
    NONE = "none"


class KeyStatus(StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    REVOKED = "revoked"


class Bitness(StrEnum):
    X64 = "x64"
    X86 = "x86"
    ARM64 = "arm64"


class Product(Base):
    """A product (Windows Server 2022, Reserved VM Instances, ...) and its cancellation policy."""

    __tablename__ = "catalog_products"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    product_type: Mapped[ProductType] = mapped_column(str_enum(ProductType, "product_type"))
    publisher: Mapped[str] = mapped_column(String(200), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Cancellation policy (SPEC 7): read by cancellation and billing.
    cancel_window_days: Mapped[int | None] = mapped_column(Integer)
    cancel_full_credit_days: Mapped[int] = mapped_column(Integer, default=0)
    cancel_credit_rule: Mapped[CreditRule] = mapped_column(str_enum(CreditRule, "credit_rule"))
    cancel_fee_ppm: Mapped[int] = mapped_column(Integer, default=0)
    cancel_cap_minor: Mapped[int | None] = mapped_column(BigInteger)
    cancel_cap_currency: Mapped[str | None] = mapped_column(String(3))
    cancel_cap_period_days: Mapped[int | None] = mapped_column(Integer)
    support_request_above_minor: Mapped[int | None] = mapped_column(BigInteger)
    support_request_above_currency: Mapped[str | None] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    skus: Mapped[list[Sku]] = relationship(
        back_populates="product", order_by="Sku.position", cascade="all, delete-orphan"
    )


class Sku(Base):
    """A product's SKU (Standard, Datacenter, D2s v5 East US, ...)."""

    __tablename__ = "catalog_skus"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    product_id: Mapped[str] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE"), index=True
    )
    sku_id: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    unit: Mapped[str] = mapped_column(String(60), default="")
    min_quantity: Mapped[int] = mapped_column(Integer, default=1)
    max_quantity: Mapped[int] = mapped_column(Integer, default=1)
    key_source: Mapped[KeySource] = mapped_column(str_enum(KeySource, "key_source"))
    low_stock_threshold: Mapped[int] = mapped_column(Integer, default=10)
    # Downloadable versions, newest first (e.g. ["2022", "2019", "2016"]).
    versions: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    product: Mapped[Product] = relationship(back_populates="skus")
    availabilities: Mapped[list[Availability]] = relationship(
        back_populates="sku", order_by="Availability.position", cascade="all, delete-orphan"
    )

    __table_args__ = (UniqueConstraint("product_id", "sku_id"),)


class Availability(Base):
    """A SKU on sale in a set of markets, for one term and billing cycle, at one price."""

    __tablename__ = "catalog_availabilities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    sku_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_skus.id", ondelete="CASCADE"), index=True
    )
    availability_id: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    currency: Mapped[str] = mapped_column(String(3))
    # None for perpetual software; otherwise an ISO 8601 duration: P1M, P1Y, P3Y.
    term_duration: Mapped[str | None] = mapped_column(String(8))
    billing_cycle: Mapped[BillingCycle] = mapped_column(str_enum(BillingCycle, "billing_cycle"))
    # Price of one unit per billing cycle (upfront: the whole term), tax as the market has it.
    list_price_minor: Mapped[int] = mapped_column(BigInteger)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    sku: Mapped[Sku] = relationship(back_populates="availabilities")
    market_rows: Mapped[list[AvailabilityMarket]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AvailabilityMarket.market"
    )

    @property
    def markets(self) -> list[str]:
        return [m.market for m in self.market_rows]

    __table_args__ = (UniqueConstraint("sku_pk", "availability_id"),)


class AvailabilityMarket(Base):
    """One market selector of an availability: a country ("US") or "currency:EUR"."""

    __tablename__ = "catalog_availability_markets"

    availability_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_availabilities.id", ondelete="CASCADE"), primary_key=True
    )
    market: Mapped[str] = mapped_column(String(16), primary_key=True)

    __table_args__ = (Index("ix_catalog_availability_markets_market", "market"),)


class TaxRate(Base):
    """The tax rate of one market, edited by the provider; a market without a row has 0 %."""

    __tablename__ = "catalog_tax_rates"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    rate_ppm: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CatalogVersion(Base):
    """One row whose ``stamp`` changes in every transaction that writes what pricing reads.

    Database triggers (migration 0024) give it a new random stamp on any insert, update or
    delete of products, SKUs, availabilities, their markets and tax rates, in the writing
    transaction itself, whoever writes (this app on any node, the CLI, plain SQL). A random
    stamp rather than a counter: a rolled-back write cannot hand a later, different catalog
    the stamp an earlier one was cached under. Checkout reads it with the cart (no extra
    statement) and keys its process cache of priced catalog items on it
    (``catalog.services.pricing_cache``). A migration that rebuilds one of those tables on
    SQLite (``batch_alter_table`` copy) drops its triggers and must create them again
    (``tests/catalog/test_catalog_version.py`` fails otherwise).
    """

    __tablename__ = "catalog_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    stamp: Mapped[str] = mapped_column(String(32))


class Artifact(Base):
    """A downloadable file of a software SKU: one version, language and bitness."""

    __tablename__ = "catalog_artifacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    sku_pk: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_skus.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(16))
    bitness: Mapped[Bitness] = mapped_column(str_enum(Bitness, "bitness"))
    file_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(1024))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    sku: Mapped[Sku] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("sku_pk", "version", "language", "bitness"),)


class ProductKey(Base):
    """A product key, AES-GCM encrypted; the fingerprint (HMAC) finds duplicates unseen."""

    __tablename__ = "catalog_product_keys"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    sku_pk: Mapped[uuid.UUID] = mapped_column(ForeignKey("catalog_skus.id", ondelete="RESTRICT"))
    version: Mapped[str] = mapped_column(String(40))
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[KeyStatus] = mapped_column(str_enum(KeyStatus, "key_status"))
    generated: Mapped[bool] = mapped_column(Boolean, default=False)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reserved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    order_line_ref: Mapped[str | None] = mapped_column(String(100), index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        Index("ix_catalog_product_keys_sku_pk_version_status", "sku_pk", "version", "status"),
        # Reservation takes the oldest available key: one probe of this index (0018).
        Index(
            "ix_catalog_product_keys_available",
            "sku_pk",
            "version",
            "imported_at",
            "id",
            postgresql_where=text("status = 'available'"),
            sqlite_where=text("status = 'available'"),
        ),
    )

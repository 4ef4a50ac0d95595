"""A small catalog for order tests: software with keys, a software plan, an Azure reservation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.orm import Session

from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import (
    Availability,
    AvailabilityMarket,
    BillingCycle,
    CreditRule,
    KeySource,
    Product,
    ProductType,
    Sku,
)
from partnercenter.config import Settings

WINDOWS = "DG7GMGF0D3SJ:0001:US01"  # perpetual software, inventory keys
WINDOWS_AU = "DG7GMGF0D3SJ:0001:AU01"
WINDOWS_BR = "DG7GMGF0D3SJ:0001:BR01"
SUSE = "DZH318Z0BQ3Q:0002:P1YA"  # software plan, generated keys, markets billed in USD
SUSE_AU = "DZH318Z0BQ3Q:0002:P1YAU"  # the same in markets billed in AUD
AZURE = "DZH318Z0BQ4L:D2S:P1Y"  # Azure reservation, no keys, US and Andorra


@dataclass(frozen=True)
class Offer:
    availability_id: str
    markets: tuple[str, ...]
    currency: str
    price_minor: int
    term: str | None
    cycle: BillingCycle


def add_product(
    session: Session,
    *,
    now: datetime,
    product_id: str,
    title: str,
    product_type: ProductType,
    sku_id: str,
    sku_title: str,
    key_source: KeySource,
    offers: list[Offer],
    versions: list[str] | None = None,
    max_quantity: int = 10,
    window_days: int | None = 30,
    credit_rule: CreditRule = CreditRule.FULL,
) -> Product:
    product = Product(
        id=product_id,
        title=title,
        description="",
        product_type=product_type,
        publisher="Northwind",
        position=0,
        is_active=True,
        cancel_window_days=window_days,
        cancel_full_credit_days=0,
        cancel_credit_rule=credit_rule,
        cancel_fee_ppm=0,
        created_at=now,
        updated_at=now,
    )
    sku = Sku(
        product_id=product_id,
        sku_id=sku_id,
        title=sku_title,
        description="",
        position=0,
        unit="license",
        min_quantity=1,
        max_quantity=max_quantity,
        key_source=key_source,
        low_stock_threshold=1,
        versions=versions or [],
        is_active=True,
    )
    for i, offer in enumerate(offers):
        sku.availabilities.append(
            Availability(
                availability_id=offer.availability_id,
                position=i,
                currency=offer.currency,
                term_duration=offer.term,
                billing_cycle=offer.cycle,
                list_price_minor=offer.price_minor,
                is_active=True,
                market_rows=[AvailabilityMarket(market=m) for m in offer.markets],
            )
        )
    product.skus.append(sku)
    session.add(product)
    session.flush()  # the SKU's id is needed to import keys
    return product


def load(session: Session, *, settings: Settings, now: datetime, keys: int = 3) -> None:
    """The test catalog, with ``keys`` Windows Server 2022 keys in inventory."""
    add_product(
        session,
        now=now,
        product_id="DG7GMGF0D3SJ",
        title="Windows Server 2022",
        product_type=ProductType.PERPETUAL_SOFTWARE,
        sku_id="0001",
        sku_title="Standard",
        key_source=KeySource.INVENTORY,
        versions=["2022", "2019"],
        offers=[
            Offer("US01", ("US",), "USD", 97_250, None, BillingCycle.ONE_TIME),
            Offer("AU01", ("AU",), "AUD", 110_000, None, BillingCycle.ONE_TIME),
            Offer("BR01", ("BR",), "BRL", 500_000, None, BillingCycle.ONE_TIME),
        ],
    )
    add_product(
        session,
        now=now,
        product_id="DZH318Z0BQ3Q",
        title="SUSE Linux Enterprise Server",
        product_type=ProductType.SOFTWARE_PLAN,
        sku_id="0002",
        sku_title="Priority",
        key_source=KeySource.GENERATOR,
        versions=["15"],
        window_days=0,
        credit_rule=CreditRule.NONE,
        offers=[
            Offer("P1YA", ("currency:USD",), "USD", 79_999, "P1Y", BillingCycle.ANNUAL),
            Offer("P1YAU", ("currency:AUD",), "AUD", 120_001, "P1Y", BillingCycle.ANNUAL),
        ],
    )
    add_product(
        session,
        now=now,
        product_id="DZH318Z0BQ4L",
        title="Reserved VM Instance",
        product_type=ProductType.AZURE_RESERVATION,
        sku_id="D2S",
        sku_title="D2s v5 East US",
        key_source=KeySource.NONE,
        max_quantity=100,
        window_days=None,
        credit_rule=CreditRule.PRORATED_LESS_FEE,
        offers=[Offer("P1Y", ("US", "AD"), "USD", 123_456, "P1Y", BillingCycle.ONE_TIME)],
    )
    if keys:
        rows = "\n".join(f"2022,WS22K-{i:05d}-AAAAA-BBBBB-CCCCC" for i in range(keys))
        catalog.import_keys(
            session,
            settings=settings,
            product_id="DG7GMGF0D3SJ",
            sku_id="0001",
            csv_text="version,key\n" + rows,
            now=now,
            actor=None,
        )
    catalog.set_tax_rate(session, country="AU", percent=Decimal(10), now=now, actor=None)
    catalog.set_tax_rate(session, country="BR", percent=Decimal(17), now=now, actor=None)
    catalog.set_tax_rate(session, country="DE", percent=Decimal(19), now=now, actor=None)
    session.flush()  # visible to the app's sessions once the test commits

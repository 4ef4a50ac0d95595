"""Response and request shapes of the catalog API (Partner Center's field names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from babel.numbers import get_currency_name
from pydantic import BaseModel, ConfigDict

from partnercenter.catalog import services as catalog
from partnercenter.catalog.models import Artifact, Product, Sku
from partnercenter.envelopes import link
from partnercenter.money import currency_symbol
from partnercenter.schemas import RequestModel

TERM_DESCRIPTIONS = {"P1M": "One-Month commitment", "P1Y": "One-Year commitment",
                     "P3Y": "Three-Year commitment", None: "Perpetual"}  # fmt: skip
PRODUCT_TYPE_NAMES = {
    "azure_reservation": "Azure reservation",
    "server_subscription": "Server subscription",
    "perpetual_software": "Perpetual software",
    "software_plan": "Software plan",
}


class Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class PriceOut(BaseModel):
    net: str
    tax: str
    gross: str
    currency: str
    listPrice: str
    taxRate: str
    taxInclusive: bool


class TermOut(BaseModel):
    duration: str | None
    description: str
    billingCycle: str


class CurrencyOut(BaseModel):
    code: str
    symbol: str
    name: str = ""


class AvailabilityOut(BaseModel):
    id: str
    productId: str
    skuId: str
    catalogItemId: str
    country: str
    segment: str = "commercial"
    isPurchasable: bool = True
    defaultCurrency: CurrencyOut
    terms: list[TermOut]
    price: PriceOut
    links: dict[str, Any] = {}
    attributes: dict[str, str] = {"objectType": "Availability"}


class ProductTypeOut(BaseModel):
    id: str
    displayName: str
    targetView: str


class ProductOut(BaseModel):
    id: str
    title: str
    description: str
    publisherName: str
    productType: ProductTypeOut
    cancellationPolicy: dict[str, Any]
    links: dict[str, Any]
    attributes: dict[str, str] = {"objectType": "Product"}


class SkuOut(BaseModel):
    id: str
    productId: str
    title: str
    description: str
    unit: str
    minimumQuantity: int
    maximumQuantity: int
    isTrial: bool = False
    keySource: str
    versions: list[str]
    supportedBillingCycles: list[str]
    links: dict[str, Any]
    attributes: dict[str, str] = {"objectType": "Sku"}


class ArtifactOut(BaseModel):
    id: uuid.UUID
    productId: str
    skuId: str
    version: str
    language: str
    bitness: str
    fileName: str
    size: int
    sha256: str
    uploadedAt: datetime


class TaxRateIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    percent: Decimal


class TaxRateOut(BaseModel):
    country: str
    name: str
    currency: str
    percent: str
    taxInclusive: bool
    azureReservationsAvailable: bool


def product_out(product: Product, country: str | None = None) -> ProductOut:
    qs = f"?country={country}" if country else ""
    return ProductOut(
        id=product.id,
        title=product.title,
        description=product.description,
        publisherName=product.publisher,
        productType=ProductTypeOut(
            id=product.product_type.value,
            displayName=PRODUCT_TYPE_NAMES[product.product_type.value],
            targetView=catalog.TARGET_VIEW_OF_TYPE[product.product_type],
        ),
        cancellationPolicy=catalog.cancellation_policy(product).to_json(),
        links={
            "skus": link(f"/v1/products/{product.id}/skus{qs}"),
            "self": link(f"/v1/products/{product.id}{qs}"),
        },
    )


def sku_out(sku: Sku, country: str | None = None) -> SkuOut:
    qs = f"?country={country}" if country else ""
    cycles = sorted({a.billing_cycle.value for a in sku.availabilities if a.is_active})
    return SkuOut(
        id=sku.sku_id,
        productId=sku.product_id,
        title=sku.title,
        description=sku.description,
        unit=sku.unit,
        minimumQuantity=sku.min_quantity,
        maximumQuantity=sku.max_quantity,
        keySource=sku.key_source.value,
        versions=list(sku.versions),
        supportedBillingCycles=cycles,
        links={
            "availabilities": link(
                f"/v1/products/{sku.product_id}/skus/{sku.sku_id}/availabilities{qs}"
            ),
            "self": link(f"/v1/products/{sku.product_id}/skus/{sku.sku_id}{qs}"),
        },
    )


def availability_out(item: catalog.ResolvedAvailability) -> AvailabilityOut:
    a = item.availability
    price = item.unit_price
    return AvailabilityOut(
        id=a.availability_id,
        productId=item.product.id,
        skuId=item.sku.sku_id,
        catalogItemId=item.catalog_item_id,
        country=item.country,
        defaultCurrency=CurrencyOut(
            code=item.currency,
            symbol=currency_symbol(item.currency),
            name=get_currency_name(item.currency, locale="en_US"),
        ),
        links={
            "self": link(
                f"/v1/products/{item.product.id}/skus/{item.sku.sku_id}"
                f"/availabilities/{a.availability_id}?country={item.country}"
            )
        },
        terms=[
            TermOut(
                duration=a.term_duration,
                description=TERM_DESCRIPTIONS.get(a.term_duration, a.term_duration or ""),
                billingCycle=a.billing_cycle.value,
            )
        ],
        price=PriceOut(
            **price.to_json(),
            listPrice=str(item.list_price),
            taxRate=str(item.tax_rate),
            taxInclusive=item.tax_inclusive,
        ),
    )


def artifact_out(artifact: Artifact) -> ArtifactOut:
    return ArtifactOut(
        id=artifact.id,
        productId=artifact.sku.product_id,
        skuId=artifact.sku.sku_id,
        version=artifact.version,
        language=artifact.language,
        bitness=artifact.bitness.value,
        fileName=artifact.file_name,
        size=artifact.size,
        sha256=artifact.sha256,
        uploadedAt=artifact.uploaded_at,
    )


def tax_rate_out(market: catalog.MarketInfo) -> TaxRateOut:
    return TaxRateOut(
        country=market.country,
        name=market.name,
        currency=market.currency,
        percent=str(market.tax_percent),
        taxInclusive=market.tax_inclusive,
        azureReservationsAvailable=market.azure_reservations,
    )

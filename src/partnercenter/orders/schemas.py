"""Request and response shapes of the carts and orders API (Partner Center's field names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from partnercenter.schemas import RequestModel

MAX_CART_LINES = 50


class CartLineIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    id: int | None = Field(default=None, ge=0, le=10_000)
    catalogItemId: str = Field(min_length=1, max_length=130)
    quantity: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    billingCycle: str | None = Field(default=None, max_length=20)
    termDuration: str | None = Field(default=None, max_length=8)
    currencyCode: str | None = Field(default=None, max_length=3)


class CartIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    lineItems: list[CartLineIn] = Field(min_length=1, max_length=MAX_CART_LINES)


class OrderLineIn(RequestModel):
    model_config = ConfigDict(extra="ignore")

    lineItemNumber: int | None = Field(default=None, ge=0, le=10_000)
    offerId: str = Field(min_length=1, max_length=130, description="The catalog item id")
    quantity: int = Field(ge=-1_000_000_000, le=1_000_000_000)
    termDuration: str | None = Field(default=None, max_length=8)
    friendlyName: str | None = Field(default=None, max_length=200)


class OrderIn(RequestModel):
    """Partner Center's create-order body: ``{referenceCustomerId, billingCycle, lineItems}``."""

    model_config = ConfigDict(extra="ignore")

    referenceCustomerId: str | None = Field(default=None, max_length=100)
    billingCycle: str | None = Field(default=None, max_length=20)
    lineItems: list[OrderLineIn] = Field(min_length=1, max_length=MAX_CART_LINES)


class PricingOut(BaseModel):
    """Amounts as decimal strings in the currency's minor unit (exact, never floats)."""

    currency: str
    taxIncluded: bool
    unitNet: str
    unitTax: str
    unitGross: str
    net: str
    tax: str
    gross: str


class TotalsOut(BaseModel):
    currency: str
    net: str
    tax: str
    gross: str


class CartLineOut(BaseModel):
    id: int
    catalogItemId: str
    friendlyName: str
    quantity: int
    billingCycle: str
    termDuration: str | None
    currencyCode: str
    pricing: PricingOut | None = Field(
        description="The price now; null when the item can no longer be sold (see error)."
    )
    error: dict[str, Any] | None = None
    orderGroup: str = Field(description="Lines of one group become one order (billing cycle)")
    participants: list[dict[str, str]] = []
    provisioningContext: dict[str, str] = {}


class CartOut(BaseModel):
    id: str
    customerId: str
    status: str
    creationTimestamp: str
    lastModifiedTimestamp: str
    expirationTimestamp: str
    lineItems: list[CartLineOut]
    totals: TotalsOut
    attributes: dict[str, str] = {"objectType": "Cart"}


class LinkOut(BaseModel):
    uri: str
    method: str
    headers: list[dict[str, str]]


class OrderLinksOut(BaseModel):
    self: LinkOut
    provisioningStatus: LinkOut


class OrderLineOut(BaseModel):
    lineItemNumber: int
    offerId: str
    subscriptionId: str
    transactionType: str
    links: dict[str, LinkOut] = Field(description="product, sku and availability")
    productId: str
    skuId: str
    friendlyName: str
    productType: str
    quantity: int
    termDuration: str | None
    billingCycle: str
    purchaseDate: str
    status: str
    pricing: PricingOut


class OrderOut(BaseModel):
    id: str
    alternateId: str
    referenceCustomerId: str
    billingCycle: str
    transactionType: str
    creationDate: str
    status: str
    currencyCode: str
    currencySymbol: str
    links: OrderLinksOut
    lineItems: list[OrderLineOut]
    totals: TotalsOut
    attributes: dict[str, str] = {"objectType": "Order"}


class OrderErrorOut(BaseModel):
    orderGroupId: str
    code: int
    description: str


class CheckoutOut(BaseModel):
    orders: list[OrderOut]
    orderErrors: list[OrderErrorOut]
    attributes: dict[str, str] = {"objectType": "CartCheckoutResult"}

"""Response shapes of the invoices and billing periods API (Partner Center's field names).

Invoice and line item amounts are JSON numbers as Partner Center documents them, written
exactly from ``Decimal`` (never through a binary float); the close and period summaries keep
decimal strings.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, WithJsonSchema

# An amount: a JSON number written exactly from a Decimal (envelopes.exact_json).
Amount = Annotated[Decimal, WithJsonSchema({"type": "number", "example": 243.6})]


class LinkOut(BaseModel):
    uri: str
    method: str = "GET"
    headers: list[dict[str, str]] = []


class InvoiceDetailOut(BaseModel):
    invoiceLineItemType: str
    billingProvider: str
    links: dict[str, LinkOut]
    attributes: dict[str, str] = {"objectType": "InvoiceDetail"}


class InvoiceOut(BaseModel):
    id: str  # the invoice number, e.g. G000000001 (Partner Center's invoice id)
    invoiceId: str
    invoiceNumber: str
    invoiceType: str
    paidAmount: Amount
    currencySymbol: str
    pdfDownloadLink: str
    invoiceDetails: list[InvoiceDetailOut]
    documentType: str
    invoiceDate: str
    billingMonth: str
    billingPeriodStartDate: str
    billingPeriodEndDate: str
    currencyCode: str
    subtotal: Amount
    taxTotal: Amount
    totalCharges: Amount
    totalAmount: Amount
    lineItemCount: int
    partnerId: str
    partnerName: str
    links: dict[str, LinkOut]
    attributes: dict[str, str] = {"objectType": "Invoice"}


class LineItemOut(BaseModel):
    """A one-time invoice line item, named as Partner Center's reconciliation file names it."""

    lineItemId: str
    partnerId: str
    customerId: str
    customerName: str
    customerDomainName: str
    customerCountry: str
    invoiceNumber: str
    orderId: str
    orderDate: str
    productId: str
    skuId: str
    availabilityId: str
    skuName: str
    productName: str
    chargeType: str
    chargeTypeCode: str
    # Null when the unit times quantity would not land on the row's amount (docs/dev/billing.md).
    unitPrice: Amount | None
    unitPriceInclTax: Amount | None = None
    effectiveUnitPrice: Amount | None
    unitType: str
    quantity: int
    billableQuantity: int
    subtotal: Amount
    taxTotal: Amount
    totalForCustomer: Amount
    currency: str
    pricingCurrency: str
    subscriptionId: str
    subscriptionDescription: str
    alternateId: str
    billingProvider: str
    invoiceLineItemType: str
    chargeStartDate: str
    chargeEndDate: str
    creditReasonCode: str
    reversedLineItemId: str
    billingFrequency: str
    termAndBillingCycle: str
    billingMonth: str
    attributes: dict[str, str] = {"objectType": "OneTimeInvoiceLineItem"}


class InvoiceCollectionOut(BaseModel):
    totalCount: int
    items: list[InvoiceOut]
    links: dict[str, Any] = {}
    attributes: dict[str, str] = {"objectType": "Collection"}


class LineItemCollectionOut(BaseModel):
    totalCount: int
    items: list[LineItemOut]
    links: dict[str, Any] = {}
    attributes: dict[str, str] = {"objectType": "Collection"}


class CurrencyTotalOut(BaseModel):
    currencyCode: str
    invoices: int
    subtotal: str
    taxTotal: str
    totalAmount: str


class CloseResultOut(BaseModel):
    month: str
    state: str
    alreadyClosed: bool
    invoicesIssued: int
    creditNotes: int
    linesBilled: int
    cycleChargesCreated: int
    firstInvoiceNumber: str | None
    lastInvoiceNumber: str | None
    totals: list[CurrencyTotalOut]


class PeriodOut(BaseModel):
    month: str
    state: str
    closedAt: str | None
    invoiceCount: int
    totals: list[CurrencyTotalOut]
    unbilledTotals: list[CurrencyTotalOut]


class PeriodCollectionOut(BaseModel):
    totalCount: int
    items: list[PeriodOut]
    links: dict[str, Any] = {}
    attributes: dict[str, str] = {"objectType": "Collection"}

"""Response shapes of the invoices and billing periods API (Partner Center's field names).

Amounts are decimal strings in the currency's minor unit (exact, never floats).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class LinkOut(BaseModel):
    uri: str
    method: str = "GET"


class InvoiceOut(BaseModel):
    id: str
    invoiceNumber: str
    documentType: str
    invoiceDate: str
    billingMonth: str
    billingPeriodStartDate: str
    billingPeriodEndDate: str
    currencyCode: str
    subtotal: str
    taxTotal: str
    totalCharges: str
    totalAmount: str
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
    unitPrice: str | None
    unitPriceInclTax: str | None = None
    quantity: int
    subtotal: str
    taxTotal: str
    totalForCustomer: str
    currency: str
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

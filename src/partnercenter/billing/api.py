"""JSON routes: a partner's invoices, their lines, PDF and CSV; the provider's month close."""

from __future__ import annotations

import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any

from babel.numbers import get_currency_symbol
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from partnercenter.billing import pdf, services
from partnercenter.billing.models import Invoice
from partnercenter.billing.schemas import (
    CloseResultOut,
    InvoiceCollectionOut,
    InvoiceOut,
    LineItemCollectionOut,
    PeriodCollectionOut,
)
from partnercenter.context import Actor, RequestInfo
from partnercenter.deps import NowDep, RequestInfoDep, SessionDep, parse_uuid, require
from partnercenter.envelopes import collection, exact_json, link, relative_uri
from partnercenter.errors import InvalidInput
from partnercenter.identity import services as identity
from partnercenter.permissions import Action
from partnercenter.routing import Route
from partnercenter.web import gettext_for

router = APIRouter(route_class=Route, prefix="/v1", tags=["invoices"])

_READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No valid bearer token or session (10401)"},
    403: {"description": "The caller is not a Billing admin or Global admin of a partner"},
}
_INVOICE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_READ_ERRORS,
    404: {"description": "No such invoice for the caller's partner (12904)"},
}
_CLOSE_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The month is not YYYY-MM (12901)"},
    401: {"description": "No valid bearer token or session (10401)"},
    403: {"description": "The caller is not a provider admin"},
    409: {
        "description": "The month has not ended (12902), or an earlier month is still open "
        "(12903, data lists the months)"
    },
}

Reader = Annotated[Actor, Depends(require(Action.VIEW_INVOICES))]
Closer = Annotated[Actor, Depends(require(Action.CLOSE_BILLING_PERIOD))]
PeriodViewer = Annotated[Actor, Depends(require(Action.VIEW_BILLING_PERIODS))]


def _invoice(session: Session, actor: Actor, invoice_id: str) -> Invoice:
    """The invoice named by its number (Partner Center's id, ``G000000001``) or its GUID."""
    if _UUID.match(invoice_id.strip()):
        return services.get_invoice(
            session, partner_id=actor.tenant_id, invoice_id=parse_uuid(invoice_id, "invoice")
        )
    return services.get_invoice_by_number(session, partner_id=actor.tenant_id, number=invoice_id)


_UUID = re.compile(r"^[0-9a-fA-F]{8}-?(?:[0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
ONE_TIME = "one_time"
BILLING_LINE_ITEMS = "billing_line_items"
# Partner Center's reconciliation charge types for ours (a cancellation is cancelImmediate).
CHARGE_TYPES = {
    "new": "new",
    "cancel": "cancelImmediate",
    "cycleCharge": "cycleCharge",
    "customerCredit": "customerCredit",
}
_PROVIDERS = {
    "onetime": ONE_TIME,
    "office": "office",
    "azure": "azure",
    "marketplace": "marketplace",
}
_LINE_ITEM_TYPES = {"billinglineitems": BILLING_LINE_ITEMS, "usagelineitems": "usage_line_items"}

SizeParam = Annotated[
    int | None, Query(ge=0, le=2000, description="Items per page (0 or absent: all)")
]
OffsetParam = Annotated[int, Query(ge=0, description="Items to skip")]


def _number(text: str) -> Decimal:
    """One of our exact amount strings as the Decimal it is (written as a JSON number)."""
    return Decimal(text)


def invoice_out(invoice: Invoice) -> dict[str, Any]:
    """Partner Center's Invoice: the id is the invoice number, amounts are numbers.

    Partner Center: "Invoice resources" (``id``, ``invoiceDate``, ``paidAmount``,
    ``totalCharges``, ``currencyCode``, ``currencySymbol``, ``pdfDownloadLink``,
    ``invoiceDetails``, ``documentType``, ``links``). Ours beside them: ``invoiceNumber``,
    ``subtotal``, ``taxTotal``, ``totalAmount``, billing month and period, partner.
    """
    body = services.invoice_json(invoice)
    number = invoice.number
    base = f"/v1/invoices/{number}"
    for name in ("subtotal", "taxTotal", "totalCharges", "totalAmount"):
        body[name] = _number(body[name])
    body.update(
        {
            "id": number,
            "invoiceId": str(invoice.id),
            "paidAmount": Decimal(0),
            "currencySymbol": get_currency_symbol(invoice.currency, locale="en_US"),
            "pdfDownloadLink": relative_uri(f"{base}/documents/statement"),
            "invoiceType": "OneTime",
            "invoiceDetails": [
                {
                    "invoiceLineItemType": BILLING_LINE_ITEMS,
                    "billingProvider": ONE_TIME,
                    "links": {"self": link(f"{base}/lineitems/OneTime/BillingLineItems")},
                    "attributes": {"objectType": "InvoiceDetail"},
                }
            ],
            "links": {
                "self": link(base),
                "lineItems": link(f"{base}/lineitems"),
                "lineItemsCsv": link(f"{base}/lineitems.csv"),
                "statement": link(f"{base}/documents/statement"),
            },
        }
    )
    return body


def line_item_out(line: Any, *, invoice_number: str = "") -> dict[str, Any]:
    """Partner Center's OneTimeInvoiceLineItem: amounts as numbers, documented charge types.

    Partner Center: "Invoice line item resources" / reconciliation file fields. The raw
    charge type stays beside it as ``chargeTypeCode``.
    """
    body = services.line_item_json(line, invoice_number=invoice_number)
    for name in ("unitPrice", "unitPriceInclTax", "subtotal", "taxTotal", "totalForCustomer"):
        if body[name] is not None:
            body[name] = _number(body[name])
    code = body["chargeType"]
    body.update(
        {
            "chargeType": CHARGE_TYPES.get(code, code),
            "chargeTypeCode": code,
            "subscriptionId": str(line.order_line_id),
            "subscriptionDescription": f"{line.product_name} {line.sku_name}".strip(),
            "alternateId": line.order_id.hex[:12],
            "effectiveUnitPrice": body["unitPrice"],
            "unitType": "Licenses",
            "billableQuantity": line.quantity,
            "pricingCurrency": line.currency,
            "billingProvider": ONE_TIME,
            "invoiceLineItemType": BILLING_LINE_ITEMS,
            # Documented fields that do not apply to a software reseller's one-time lines:
            # no MPN programme, one publisher per product, no promotions or exchange.
            "mpnId": "",
            "resellerMpnId": "",
            "publisherName": "",
            "publisherId": "",
            "priceAdjustmentDescription": "",
            "discountDetails": "",
            "pcToBCExchangeRate": Decimal(1),
            "pcToBCExchangeRateDate": body["orderDate"],
            "meterDescription": "",
            "reservationOrderId": "",
            "promotionId": "",
        }
    )
    return body


def _page(
    items: Sequence[Any], *, offset: int, size: int | None, render: Any, path: str
) -> Response:
    chosen = list(items[offset : offset + size] if size else items[offset:])
    body = collection([render(x) for x in chosen], total=len(items))
    following = offset + len(chosen)
    if size and following < len(items):
        body["links"]["next"] = link(f"{path}?size={size}&offset={following}")
    return exact_json(body)


@router.get("/invoices", response_model=InvoiceCollectionOut, responses=_READ_ERRORS)
def list_invoices(
    session: SessionDep, actor: Reader, size: SizeParam = None, offset: OffsetParam = 0
) -> Response:
    """The partner's invoices and credit notes, newest month first.

    Partner Center: "Get a collection of invoices" (``size``, ``offset``).
    """
    invoices = services.list_invoices(session, partner_id=actor.tenant_id)
    return _page(invoices, offset=offset, size=size, render=invoice_out, path="/v1/invoices")


@router.get(
    "/invoices/unbilled/lineitems", response_model=LineItemCollectionOut, responses=_READ_ERRORS
)
def unbilled_line_items(
    session: SessionDep,
    actor: Reader,
    provider: Annotated[str | None, Query(description="OneTime")] = None,
    invoiceLineItemType: Annotated[str | None, Query(description="BillingLineItems")] = None,
    currencyCode: Annotated[str | None, Query(max_length=3)] = None,
    period: Annotated[str | None, Query(description="current")] = None,
    size: SizeParam = None,
    offset: OffsetParam = 0,
) -> Response:
    """Charges and credits recorded but not yet on an invoice (the current month's).

    Partner Center: "Get invoice unbilled reconciliation line items" (``provider=onetime``,
    ``invoiceLineItemType=billinglineitems``, ``currencyCode``, ``period=current``).
    """
    named = provider is not None or invoiceLineItemType is not None
    if named and _kind(provider or "onetime", invoiceLineItemType or "billinglineitems") is None:
        return _page([], offset=0, size=None, render=line_item_out, path="")
    lines = services.unbilled_lines(session, partner_id=actor.tenant_id)
    if currencyCode:
        lines = [li for li in lines if li.currency == currencyCode.strip().upper()]
    return _page(
        lines,
        offset=offset,
        size=size,
        render=line_item_out,
        path="/v1/invoices/unbilled/lineitems",
    )


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, responses=_INVOICE_ERRORS)
def get_invoice(invoice_id: str, session: SessionDep, actor: Reader) -> Response:
    """One invoice, by number (``G000000001``) or GUID. Partner Center: "Get invoice by ID"."""
    return exact_json(invoice_out(_invoice(session, actor, invoice_id)))


@router.get(
    "/invoices/{invoice_id}/lineitems",
    response_model=LineItemCollectionOut,
    responses=_INVOICE_ERRORS,
)
def invoice_line_items(
    invoice_id: str,
    session: SessionDep,
    actor: Reader,
    size: SizeParam = None,
    offset: OffsetParam = 0,
) -> Response:
    """The invoice's lines: charges and credits with Partner Center's line item fields."""
    invoice = _invoice(session, actor, invoice_id)
    lines = services.invoice_lines(session, invoice=invoice)
    return _page(
        lines,
        offset=offset,
        size=size,
        render=lambda li: line_item_out(li, invoice_number=invoice.number),
        path=f"/v1/invoices/{invoice.number}/lineitems",
    )


def _kind(provider: str, line_item_type: str) -> str | None:
    """Which of Partner Center's (provider, line item type) lists this is: ours is one-time
    billing lines; the other documented ones are empty; anything else is refused."""
    p = _PROVIDERS.get(provider.replace("_", "").strip().lower())
    t = _LINE_ITEM_TYPES.get(line_item_type.replace("_", "").strip().lower())
    if p is None or t is None:
        raise InvalidInput(
            f"Unknown line items {provider}/{line_item_type}: use OneTime/BillingLineItems "
            "(Office, Azure and Marketplace are empty here).",
            source="invoiceLineItemType" if p else "provider",
        )
    return "ours" if (p, t) == (ONE_TIME, BILLING_LINE_ITEMS) else None


@router.get(
    "/invoices/{invoice_id}/lineitems/{provider}/{invoice_line_item_type}",
    response_model=LineItemCollectionOut,
    responses=_INVOICE_ERRORS,
)
def invoice_line_items_by_kind(
    invoice_id: str,
    provider: str,
    invoice_line_item_type: str,
    session: SessionDep,
    actor: Reader,
    size: SizeParam = None,
    offset: OffsetParam = 0,
) -> Response:
    """The invoice's line items of one provider and type, as Partner Center pages them.

    Partner Center: "Get invoice billed reconciliation line items"
    (``/invoices/{id}/lineitems/OneTime/BillingLineItems?size=&offset=``).
    """
    invoice = _invoice(session, actor, invoice_id)
    kind = _kind(provider, invoice_line_item_type)
    lines = services.invoice_lines(session, invoice=invoice) if kind else []
    return _page(
        lines,
        offset=offset,
        size=size,
        render=lambda li: line_item_out(li, invoice_number=invoice.number),
        path=f"/v1/invoices/{invoice.number}/lineitems/{provider}/{invoice_line_item_type}",
    )


@router.get(
    "/invoices/{invoice_id}/lineitems.csv",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "Reconciliation file"},
        **_INVOICE_ERRORS,
    },
)
def invoice_line_items_csv(invoice_id: str, session: SessionDep, actor: Reader) -> Response:
    """The reconciliation file (CSV) with Partner Center's one-time line item columns."""
    invoice = _invoice(session, actor, invoice_id)
    body = services.lineitems_csv(invoice, services.invoice_lines(session, invoice=invoice))
    return Response(
        body.encode("utf-8-sig"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}-lineitems.csv"'},
    )


def statement_response(request: Request, session: Session, invoice: Invoice) -> Response:
    provider = identity.get_provider(session)
    body = pdf.render_statement(
        invoice=invoice,
        lines=services.invoice_lines(session, invoice=invoice),
        provider_name=provider.name if provider else "",
        provider_country=provider.country if provider else None,
        gettext=gettext_for(request),
    )
    return Response(
        body,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{invoice.number}.pdf"'},
    )


@router.get(
    "/invoices/{invoice_id}/documents/statement",
    response_class=Response,
    responses={
        200: {"content": {"application/pdf": {}}, "description": "The invoice PDF"},
        **_INVOICE_ERRORS,
    },
)
def invoice_statement(
    invoice_id: str, request: Request, session: SessionDep, actor: Reader
) -> Response:
    """The invoice as a PDF document."""
    return statement_response(request, session, _invoice(session, actor, invoice_id))


@router.get(
    "/billing/periods",
    response_model=PeriodCollectionOut,
    responses={403: {"description": "The caller is not a provider admin"}},
)
def list_periods(session: SessionDep, actor: PeriodViewer) -> dict[str, Any]:
    """Billing periods with their state and totals per currency (provider)."""
    return collection([period_json(p) for p in services.list_periods(session)])


def period_json(row: dict[str, Any]) -> dict[str, Any]:
    def totals(items: list[services.CurrencyTotal]) -> list[dict[str, Any]]:
        return [
            {
                "currencyCode": t.currency,
                "invoices": t.invoices,
                "subtotal": str(t.net),
                "taxTotal": str(t.tax),
                "totalAmount": str(t.gross),
            }
            for t in items
        ]

    closed_at = row["closedAt"]
    return {
        "month": row["month"],
        "state": row["state"],
        "closedAt": services.iso_utc(closed_at) if closed_at else None,
        "invoiceCount": row["invoiceCount"],
        "totals": totals(row["totals"]),
        "unbilledTotals": totals(row["unbilled"]),
    }


def close_month(
    session: Session, *, month: str, now: Any, actor: Actor, info: RequestInfo
) -> services.CloseResult:
    """Both transactions of a close: mark the month closing, then issue its invoices."""
    services.start_close(session, month=month, now=now, actor=actor, request=info)
    session.commit()
    result = services.close_period(session, month=month, now=now, actor=actor, request=info)
    session.commit()
    return result


@router.post(
    "/billing/periods/{month}/close", response_model=CloseResultOut, responses=_CLOSE_ERRORS
)
def close_period(
    month: str, session: SessionDep, now: NowDep, info: RequestInfoDep, actor: Closer
) -> dict[str, Any]:
    """Issue every invoice of the month (idempotent: a closed month answers what it issued)."""
    return close_month(session, month=month, now=now, actor=actor, info=info).to_json()

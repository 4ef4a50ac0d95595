"""JSON routes: a partner's invoices, their lines, PDF and CSV; the provider's month close."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
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
from partnercenter.envelopes import collection
from partnercenter.identity import services as identity
from partnercenter.permissions import Action
from partnercenter.web import gettext_for

router = APIRouter(prefix="/v1", tags=["invoices"])

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
    return services.get_invoice(
        session, partner_id=actor.tenant_id, invoice_id=parse_uuid(invoice_id, "invoice")
    )


@router.get("/invoices", response_model=InvoiceCollectionOut, responses=_READ_ERRORS)
def list_invoices(session: SessionDep, actor: Reader) -> dict[str, Any]:
    """The partner's invoices and credit notes, newest month first."""
    invoices = services.list_invoices(session, partner_id=actor.tenant_id)
    return collection([services.invoice_json(i) for i in invoices])


@router.get(
    "/invoices/unbilled/lineitems", response_model=LineItemCollectionOut, responses=_READ_ERRORS
)
def unbilled_line_items(session: SessionDep, actor: Reader) -> dict[str, Any]:
    """Charges and credits recorded but not yet on an invoice (the current month's)."""
    lines = services.unbilled_lines(session, partner_id=actor.tenant_id)
    return collection([services.line_item_json(li) for li in lines])


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, responses=_INVOICE_ERRORS)
def get_invoice(invoice_id: str, session: SessionDep, actor: Reader) -> dict[str, Any]:
    return services.invoice_json(_invoice(session, actor, invoice_id))


@router.get(
    "/invoices/{invoice_id}/lineitems",
    response_model=LineItemCollectionOut,
    responses=_INVOICE_ERRORS,
)
def invoice_line_items(invoice_id: str, session: SessionDep, actor: Reader) -> dict[str, Any]:
    """The invoice's lines: charges and credits with Partner Center's line item fields."""
    invoice = _invoice(session, actor, invoice_id)
    lines = services.invoice_lines(session, invoice=invoice)
    return collection([services.line_item_json(li, invoice_number=invoice.number) for li in lines])


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
